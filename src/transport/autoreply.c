/* autoreply.c: the autoreply transport.  It delivers nothing: it makes a
 * new message (a vacation reply, say) from its options and hands it to
 * the delivery process, which queues it with the empty envelope sender
 * (as Exim does, against reply loops).  One message per address.
 *
 * The options from, reply_to, to, cc, bcc, subject, headers, text, file,
 * log, once and once_repeat are expanded; a failed expansion, or a
 * non-printing character in a header value or file name, fails the
 * address (Exim's rule; a lookup that defers defers instead).  never_mail
 * drops matching addresses from to/cc/bcc; with none left nothing is sent.
 * once (To: only) suppresses a repeat to the same To: text, for ever or
 * until once_repeat has passed.  The recipients are taken from the To:,
 * Cc: and Bcc: lines of the reply, as Exim's "-t" resubmission does, and
 * Bcc: is not sent.  The reply gets In-Reply-To: and References: from the
 * original's Message-ID (and References or In-Reply-To), and
 * Auto-Submitted: auto-replied; return_message appends the original
 * (the transport's header options apply to that copy), its body cut at
 * bounce_return_size_limit.  Because Exim resubmits the reply as the
 * transport's user, that user's fix-ups apply: a missing From: is made
 * from the user's login, and an untrusted user whose login is not the
 * From: address gets a Sender: (local_from_check, local_sender_retain). */
#include "transport/transport.h"
#include "transport/autoreply.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "msgauth/mail.h"
#include "smtp/local.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AR_FILE_MAX (16L * 1024 * 1024)   /* bytes of "file" put in a reply */
#define AR_MAX_RCPTS 256                  /* recipients of one reply (what the delivery process takes) */
#define AR_REFS_MAX 12                    /* message ids kept in References: */
#define AR_LINE_MAX 998                   /* RFC 5322 line length, for References: */

enum { CK_TEXT, CK_HDR, CK_FILE };        /* what an expanded value must look like */

typedef struct reply {
    const char *from, *reply_to, *to, *cc, *bcc, *subject, *headers, *text, *file, *log, *once;
    long long once_repeat;
} reply;

static status set_result(address_item *a, status st, const char *msg)
{
    a->result = st;
    a->message = msg;
    return st;
}

static bool printing(int c)
{
    return isprint(c) || (c > 127 && cfg_bool(MO_print_topbitchars));
}

/* Expand option name into *out (NULL when unset) and check its content. */
static bool expand_opt(const driver_inst *t, const char *name, int check, address_item *a, tp_ctx *ctx,
                       const char **out)
{
    const char *raw = tp_opt(t, name);
    char *res, *err = NULL;
    *out = NULL;
    if (!raw)
        return true;
    status st = expand_string(raw, ctx->a, &res, &err);
    if (st != ST_OK) {
        set_result(a, st == ST_DEFER ? ST_DEFER : ST_FAIL,
                   arena_printf(ctx->a, "Expansion of \"%s\" failed in %s transport: %s", raw, t->name, err ? err : ""));
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)res; check != CK_TEXT && *p; p++) {
        if (printing(*p) || (check == CK_HDR && *p == '\n' && (p[1] == ' ' || p[1] == '\t')))
            continue;
        set_result(a, ST_FAIL, arena_printf(ctx->a, "Expansion of \"%s\" in %s transport contains non-printing "
                                                    "character %d", raw, t->name, *p));
        return false;
    }
    *out = res;
    return true;
}

static bool expand_all(const driver_inst *t, address_item *a, tp_ctx *ctx, reply *r)
{
    if (a->reply) {
        /* from a filter's mail or vacation command: its values (expanded
         * and checked there) make the whole message; the transport's
         * own options for the message are not used */
        const reply_item *ri = a->reply;
        *r = (reply){ .from = ri->from, .reply_to = ri->reply_to, .to = ri->to, .cc = ri->cc, .bcc = ri->bcc,
                      .subject = ri->subject, .headers = ri->headers, .text = ri->text, .file = ri->file,
                      .log = ri->logfile, .once = ri->oncelog, .once_repeat = ri->once_repeat };
        if (r->headers) {
            size_t n = strlen(r->headers);
            while (n && r->headers[n - 1] == '\n')
                n--;
            r->headers = n ? arena_strndup(is_tainted(r->headers) ? ps.msg_t : ctx->a, r->headers, n) : NULL;
        }
        return true;
    }
    const char *repeat;
    if (!expand_opt(t, "from", CK_HDR, a, ctx, &r->from) || !expand_opt(t, "reply_to", CK_HDR, a, ctx, &r->reply_to) ||
        !expand_opt(t, "to", CK_HDR, a, ctx, &r->to) || !expand_opt(t, "cc", CK_HDR, a, ctx, &r->cc) ||
        !expand_opt(t, "bcc", CK_HDR, a, ctx, &r->bcc) || !expand_opt(t, "subject", CK_HDR, a, ctx, &r->subject) ||
        !expand_opt(t, "headers", CK_TEXT, a, ctx, &r->headers) || !expand_opt(t, "text", CK_TEXT, a, ctx, &r->text) ||
        !expand_opt(t, "file", CK_FILE, a, ctx, &r->file) || !expand_opt(t, "log", CK_FILE, a, ctx, &r->log) ||
        !expand_opt(t, "once", CK_FILE, a, ctx, &r->once) || !expand_opt(t, "once_repeat", CK_FILE, a, ctx, &repeat))
        return false;
    r->once_repeat = 0;
    if (repeat && opt_parse_time(repeat, &r->once_repeat) != ST_OK) {
        set_result(a, ST_FAIL, arena_printf(ctx->a, "Invalid time value \"%s\" for \"once_repeat\" in %s transport",
                                            repeat, t->name));
        return false;
    }
    /* a trailing newline would end the header section early */
    if (r->headers) {
        size_t n = strlen(r->headers);
        while (n && r->headers[n - 1] == '\n')
            n--;
        r->headers = n ? arena_strndup(ctx->a, r->headers, n) : NULL;
    }
    return true;
}

/* ---- never_mail ----------------------------------------------------------- */

/* The end of the address starting at s: the next comma outside quotes,
 * comments and <...>, or the end of the string. */
static const char *address_end(const char *s)
{
    int paren = 0;
    bool quoted = false, angle = false;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
        } else if (quoted) {
            quoted = *s != '"';
        } else if (paren) {
            paren += *s == '(' ? 1 : *s == ')' ? -1 : 0;
        } else if (*s == '"') {
            quoted = true;
        } else if (*s == '(') {
            paren = 1;
        } else if (*s == '<') {
            angle = true;
        } else if (*s == '>') {
            angle = false;
        } else if (*s == ',' && !angle) {
            break;
        }
    }
    return s;
}

/* list (a header value) without the addresses that match never_mail;
 * NULL when none is left.  An address that cannot be parsed stops the
 * scan (the rest is kept), as Exim does. */
static const char *drop_never_mail(const char *list, const char *never, arena *a)
{
    gstr g;
    gstr_init(&g, a, strlen(list) + 1);
    const char *s = list;
    while (*s) {
        const char *e = address_end(s);
        const char *next = *e ? e + 1 : e;
        mail_addr *ad;
        if (mail_addr_list(a, s, (size_t)(e - s), &ad) < 1) {
            gstr_cat(&g, s);
            break;
        }
        const char *addr = *ad[0].domain ? arena_printf(a, "%s@%s", ad[0].local, ad[0].domain) : ad[0].local;
        const char *v;
        char *err;
        if (match_address(addr, never, true, a, &v, &err) != ST_OK)
            gstr_catn(&g, s, (size_t)(next - s));
        s = next;
    }
    size_t n = g.len;
    while (n && (isspace((unsigned char)g.s[n - 1]) || g.s[n - 1] == ','))
        n--;
    gstr_truncate(&g, n);
    for (const char *p = g.s; *p; p++)
        if (!isspace((unsigned char)*p))
            return g.s;
    return NULL;
}

/* ---- the reply's header lines ---------------------------------------------- */

/* The first live header of the original named name, or NULL. */
static const spool_header *orig_header(const tp_ctx *ctx, const char *name)
{
    size_t n = strlen(name);
    for (const spool_header *h = ctx->m->headers; h; h = h->next)
        if (h->type != '*' && h->len > n && strncasecmp(h->text, name, n) == 0 && h->text[n] == ':')
            return h;
    return NULL;
}

/* One message id ("<...>", after white space and comments) from *p, or
 * NULL when there is none. */
static const char *next_msgid(const char **p, arena *a)
{
    const char *s = *p;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s != '(')
            break;
        for (int depth = 0; *s; s++) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '(')
                depth++;
            else if (*s == ')' && --depth == 0) {
                s++;
                break;
            }
        }
    }
    if (*s != '<')
        return NULL;
    size_t n = strcspn(s + 1, "<> \t\r\n");
    if (s[1 + n] != '>' || n == 0)
        return NULL;
    *p = s + n + 2;
    return arena_strndup(a, s, n + 2);
}

/* In-Reply-To: the original's Message-ID; References: the ids of its
 * References: (or else In-Reply-To:), at most AR_REFS_MAX with the first
 * kept when some must go, then its Message-ID; on one line as Exim writes
 * them. */
static void add_threading(gstr *g, const tp_ctx *ctx)
{
    const spool_header *mid = orig_header(ctx, "Message-ID");
    const char *id = NULL;
    if (mid) {
        id = strchr(mid->text, ':') + 1;
        while (isspace((unsigned char)*id))
            id++;
        gstr_printf(g, "In-Reply-To: %s", id);
        if (!*id || id[strlen(id) - 1] != '\n')
            gstr_catc(g, '\n');
    }
    const spool_header *refs = orig_header(ctx, "References");
    if (!refs)
        refs = orig_header(ctx, "In-Reply-To");
    if (!refs && !id)
        return;
    const char *ids[AR_REFS_MAX];
    int n = 0;
    size_t use = strlen("References:") + (id ? strlen(id) + 1 : 0);
    const char *p = refs ? strchr(refs->text, ':') + 1 : "";
    const char *one;
    while ((one = next_msgid(&p, ctx->a))) {
        size_t len = strlen(one);
        if (n == AR_REFS_MAX || use + len + (size_t)n > AR_LINE_MAX) {
            if (n < 2)
                continue;
            use -= strlen(ids[1]);           /* drop the second, keep the root */
            memmove(&ids[1], &ids[2], (size_t)(n - 2) * sizeof ids[0]);
            ids[n - 1] = one;
        } else {
            ids[n++] = one;
        }
        use += len;
    }
    gstr_cat(g, "References:");
    for (int i = 0; i < n; i++)
        gstr_printf(g, " %s", ids[i]);
    if (id)
        gstr_printf(g, " %s%s", id, *id && id[strlen(id) - 1] == '\n' ? "" : "\n");
    else
        gstr_catc(g, '\n');
}

/* A header field starting at p: its end (after its last line). */
static const char *field_end(const char *p)
{
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            return p + strlen(p);
        p = nl + 1;
        if (*p != ' ' && *p != '\t')
            return p;
    }
}

static bool field_is(const char *f, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(f, name, n) == 0 && f[n] == ':';
}

typedef struct rcpts {
    const char *list[AR_MAX_RCPTS];
    int n;
} rcpts;

static void rcpt_add(rcpts *r, const char *value, size_t len, arena *a)
{
    mail_addr *ad;
    int k = mail_addr_list(a, value, len, &ad);
    for (int i = 0; i < k && r->n < AR_MAX_RCPTS; i++) {
        const char *addr = arena_printf(a, "%s@%s", ad[i].local, *ad[i].domain ? ad[i].domain : cfg_str(MO_qualify_recipient));
        bool dup = false;
        for (int j = 0; j < r->n && !dup; j++)
            dup = strcasecmp(r->list[j], addr) == 0;
        if (!dup)
            r->list[r->n++] = addr;
    }
}

/* Does the value of a From: field name exactly the address me? */
static bool from_is(const char *value, size_t len, const char *login, const char *me, arena *a)
{
    mail_addr *ad;
    if (mail_addr_list(a, value, len, &ad) != 1)
        return false;
    if (!*ad[0].domain)
        return strcasecmp(ad[0].local, login) == 0;
    return strcasecmp(arena_printf(a, "%s@%s", ad[0].local, ad[0].domain), me) == 0;
}

/* The final header text: the recipients from To:, Cc: and Bcc: (Bcc:
 * itself left out), then the fix-ups of a message submitted locally by
 * the transport's user (see the top of the file). */
static const char *finish_headers(const char *text, rcpts *r, tp_ctx *ctx)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    const char *login = pw ? arena_strdup(ctx->a, pw->pw_name) : arena_printf(ctx->a, "%ld", (long)uid);
    const char *name = login;
    if (pw && pw->pw_gecos && *pw->pw_gecos && *pw->pw_gecos != ',')
        name = arena_strndup(ctx->a, pw->pw_gecos, strcspn(pw->pw_gecos, ","));
    bool trusted = local_caller_trusted(uid, getgid(), login);
    const char *me = arena_printf(ctx->a, "%s@%s", login, cfg_str(MO_qualify_domain));
    gstr g;
    gstr_init(&g, ctx->a, strlen(text) + 128);
    const char *from = NULL;
    size_t from_len = 0;
    for (const char *p = text; *p;) {
        const char *e = field_end(p);
        const char *colon = memchr(p, ':', (size_t)(e - p));
        size_t vlen = colon ? (size_t)(e - colon - 1) : 0;
        if (colon && (field_is(p, "To") || field_is(p, "Cc") || field_is(p, "Bcc")))
            rcpt_add(r, colon + 1, vlen, ctx->a);
        bool drop = field_is(p, "Bcc") || (field_is(p, "Sender") && !trusted && !cfg_bool(MO_local_sender_retain));
        if (colon && field_is(p, "From") && !from) {
            from = colon + 1;
            from_len = vlen;
        }
        if (!drop)
            gstr_catn(&g, p, (size_t)(e - p));
        p = e;
    }
    if (!from)
        gstr_printf(&g, trusted ? "From: %s\n" : "From: %s <%s>\n", trusted ? me : name, me);
    else if (!trusted && cfg_bool(MO_local_from_check) && !from_is(from, from_len, login, me, ctx->a))
        gstr_printf(&g, "Sender: %s <%s>\n", name, me);
    return g.s;
}

static const char *build_headers(const reply *r, rcpts *rc, tp_ctx *ctx)
{
    gstr g;
    gstr_init(&g, ctx->a, 512);
    const struct { const char *name, *value; } f[] = {
        { "From", r->from }, { "Reply-To", r->reply_to }, { "To", r->to },
        { "Cc", r->cc }, { "Bcc", r->bcc }, { "Subject", r->subject },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].value)
            gstr_printf(&g, "%s: %s\n", f[i].name, f[i].value);
    add_threading(&g, ctx);
    gstr_cat(&g, "Auto-Submitted: auto-replied\n");
    if (r->headers)
        gstr_printf(&g, "%s\n", r->headers);
    return finish_headers(g.s, rc, ctx);
}

/* ---- the reply's body ------------------------------------------------------ */

/* Read the file (each line expanded when file_expand is set; a line that
 * fails to expand is used as it is). */
static void add_file(gstr *body, FILE *f, bool expand, tp_ctx *ctx)
{
    char line[16384];
    size_t total = 0;
    while (total < (size_t)AR_FILE_MAX && fgets(line, sizeof line, f)) {
        const char *s = line;
        char *out, *err;
        if (expand && expand_string(line, ctx->a, &out, &err) == ST_OK)
            s = out;
        gstr_cat(body, s);
        total += strlen(line);
    }
}

/* A write_fn collecting the original message with its body cut at limit
 * bytes (stops the writer once it is reached). */
typedef struct copy_sink {
    gstr *g;
    bool in_body;
    char last;                 /* previous header byte, to see the blank line */
    size_t hdr;                /* header bytes so far */
    unsigned long long body, limit;
    bool cut;
} copy_sink;

static bool copy_write(void *vctx, const char *p, size_t n)
{
    copy_sink *c = vctx;
    size_t i = 0;
    while (!c->in_body && i < n) {
        char ch = p[i++];
        gstr_catc(c->g, ch);
        if (ch == '\n' && (c->last == '\n' || c->hdr == 0))
            c->in_body = true;
        c->hdr++;
        c->last = ch;
    }
    size_t k = n - i;
    if (c->limit && c->body + k > c->limit) {
        k = (size_t)(c->limit - c->body);
        c->cut = true;
    }
    gstr_catn(c->g, p + i, k);
    c->body += k;
    return !c->cut;
}

static void add_original(gstr *body, const driver_inst *t, address_item *a, tp_ctx *ctx)
{
    bool hdr_only = tp_opt_bool(t, "headers_only"), body_only = tp_opt_bool(t, "body_only");
    const char *rubric = hdr_only ? "------ This is a copy of the message's header lines.\n"
                         : body_only ? "------ This is a copy of the body of the message, without the headers.\n"
                         : "------ This is a copy of the message, including all the headers.\n";
    long long limit = cfg_int(MO_bounce_return_size_limit);
    struct stat st;
    /* Exim compares the size of the data file with the limit rounded up
     * to its read buffer (8 KB) and rounds the size it names to 1000 */
    long long max = (limit / 8192 + 1) * 8192;
    if (limit > 0 && !hdr_only && fstat(ctx->data_fd, &st) == 0 && (long long)st.st_size > max)
        gstr_printf(body, "\n%s------ The body of the message is %lld characters long; only the first\n"
                          "------ %lld or so are included here.\n\n", rubric, (long long)st.st_size, (max / 1000) * 1000);
    else
        gstr_printf(body, "\n%s\n", rubric);
    write_opts wo = { .headers_only = hdr_only, .body_only = body_only };
    wo.top_headers = tp_top_headers(t, a, ctx);
    wo.add_headers = tp_added_headers(t, a, ctx);
    char *err = NULL;
    const char *hr;
    tp_opt_expand(t, "headers_remove", ctx, &hr, &err);
    wo.remove_headers = hr;
    copy_sink c = { .g = body, .in_body = body_only, .limit = limit > 0 ? (unsigned long long)limit : 0 };
    unsigned long long bytes;
    transport_write_message(ctx->m, ctx->data_fd, &wo, copy_write, &c, &bytes, ctx->a, &err);
}

/* ---- the transport --------------------------------------------------------- */

/* never_mail: drop matching addresses from to, cc and bcc.  false (with
 * the address's result set) when the expansion fails. */
static bool apply_never_mail(const driver_inst *t, address_item *a, tp_ctx *ctx, reply *r)
{
    const char *never = tp_opt(t, "never_mail");
    if (!never)
        return true;
    char *nm, *err = NULL;
    status st = expand_string(never, ctx->a, &nm, &err);
    if (st != ST_OK) {
        set_result(a, st == ST_DEFER ? ST_DEFER : ST_FAIL,
                   arena_printf(ctx->a, "Failed to expand \"%s\" for \"never_mail\" in %s transport: %s", never,
                                t->name, err ? err : ""));
        return false;
    }
    r->to = r->to ? drop_never_mail(r->to, nm, ctx->a) : NULL;
    r->cc = r->cc ? drop_never_mail(r->cc, nm, ctx->a) : NULL;
    r->bcc = r->bcc ? drop_never_mail(r->bcc, nm, ctx->a) : NULL;
    return true;
}

/* File names made from outside data are refused, as appendfile does. */
static bool untainted_names(const driver_inst *t, address_item *a, tp_ctx *ctx, const reply *r)
{
    const struct { const char *path, *what; } named[] = { { r->once, "once file" }, { r->log, "logfile" }, { r->file, "file" } };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (named[i].path && *named[i].path && is_tainted(named[i].path)) {
            a->basic_errno = EACCES;
            set_result(a, ST_DEFER, arena_printf(ctx->a, "Tainted '%s' (%s for %s transport) not permitted",
                                                 named[i].path, named[i].what, t->name));
            return false;
        }
    return true;
}

/* The once check: *answered is set when this To: had a reply recently
 * enough (that is logged and once is closed); otherwise once stays open
 * for the update.  ST_DEFER when the record cannot be opened. */
static status check_once(const driver_inst *t, address_item *a, tp_ctx *ctx, const reply *r, ar_once *once,
                         mode_t mode, time_t now, bool *answered)
{
    *answered = false;
    if (!r->once || !*r->once || !r->to)
        return ST_OK;
    time_t then = 0;
    char *err = NULL;
    long long size = tp_opt_int(t, "once_file_size");
    if (ar_once_open(once, r->once, r->to, size, mode, &then, ctx->a, &err) != ST_OK)
        return set_result(a, ST_DEFER, arena_printf(ctx->a, "Failed to open %s file %s when sending message from %s "
                                                            "transport: %s", size > 0 ? "\"once\"" : "LMDB", r->once,
                                                    t->name, err ? err : ""));
    if (then == 0 || (r->once_repeat > 0 && now - then >= r->once_repeat))
        return ST_OK;
    ar_once_finish(once, false, now);
    if (r->log)
        ar_log_append(r->log, mode, arena_printf(ctx->a, "%s\n  previously sent to %.200s\n",
                                                 ar_log_stamp(now, ctx->a), r->to));
    *answered = true;
    return ST_OK;
}

static void log_reply(const reply *r, mode_t mode, time_t now, arena *a)
{
    gstr l;
    gstr_init(&l, a, 256);
    gstr_printf(&l, "%s\n", ar_log_stamp(now, a));
    const struct { const char *name, *value; } f[] = {
        { "From: ", r->from }, { "To: ", r->to }, { "Cc: ", r->cc }, { "Bcc: ", r->bcc },
        { "Subject: ", r->subject }, { "", r->headers },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].value)
            gstr_printf(&l, "  %s%s\n", f[i].name, f[i].value);
    ar_log_append(r->log, mode, l.s);
}

static status autoreply_one(const driver_inst *t, address_item *a, tp_ctx *ctx)
{
    tp_set_vars(t, a);
    a->result = ST_OK;
    a->message = NULL;
    reply r;
    if (!expand_all(t, a, ctx, &r) || !apply_never_mail(t, a, ctx, &r))
        return a->result;
    if (tp_opt(t, "never_mail") && !r.to && !r.cc && !r.bcc)
        return ST_OK;                    /* every recipient was dropped: nothing to send */
    if (!untainted_names(t, a, ctx, &r))
        return a->result;
    mode_t mode = (mode_t)(driver_opt(t, "mode") ? driver_opt(t, "mode")->n : 0600);
    time_t now = time(NULL);
    ar_once once = { .fd = -1 };
    bool answered;
    status st = check_once(t, a, ctx, &r, &once, mode, now, &answered);
    if (st != ST_OK || answered)
        return st;
    FILE *ff = r.file ? fopen(r.file, "re") : NULL;
    int ferr = errno;
    if (r.file && !ff && !tp_opt_bool(t, "file_optional")) {
        ar_once_finish(&once, false, now);
        a->basic_errno = ferr;
        return set_result(a, ST_DEFER, arena_printf(ctx->a, "Failed to open file %s when sending message from %s "
                                                            "transport: %s", r.file, t->name, strerror(ferr)));
    }
    rcpts rc = { .n = 0 };
    const char *headers = build_headers(&r, &rc, ctx);
    gstr body;
    gstr_init(&body, ctx->a, 1024);
    if (r.text && *r.text)
        gstr_printf(&body, "%s%s", r.text, r.text[strlen(r.text) - 1] == '\n' ? "" : "\n");
    if (ff) {
        /* a filter's file is expanded with the filter's restrictions */
        unsigned save_forbid = ps.exp_forbid;
        if (a->reply)
            ps.exp_forbid |= a->reply->expand_forbid;
        add_file(&body, ff, a->reply ? a->reply->file_expand : tp_opt_bool(t, "file_expand"), ctx);
        ps.exp_forbid = save_forbid;
        fclose(ff);
    }
    if (tp_opt_bool(t, "return_message") || (a->reply && a->reply->return_message))
        add_original(&body, t, a, ctx);
    /* no recipients (e.g. to = $sender_address for a bounce): nothing is
     * sent and that is not an error, as with Exim */
    char *err = NULL;
    tp_generated gen = { .sender = "", .rcpts = rc.list, .nrcpt = rc.n, .headers = headers, .body = body.s };
    st = rc.n ? tp_generate_message(ctx, &gen, &err) : ST_OK;
    ar_once_finish(&once, true, now);      /* whatever happened: rather one reply too few */
    if (st != ST_OK)
        return set_result(a, ST_DEFER, arena_printf(ctx->a, "Failed to send message from %s transport: %s", t->name,
                                                    err ? err : ""));
    if (r.log)
        log_reply(&r, mode, now, ctx->a);
    return ST_OK;
}

/* Each address of a batch gets its own reply. */
status transport_autoreply(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    status worst = ST_OK;
    for (address_item *a = addrs; a; a = a->next) {
        status st = autoreply_one(t, a, ctx);
        if (st != ST_OK)
            worst = st;
    }
    return worst;
}
