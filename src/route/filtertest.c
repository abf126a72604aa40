/* filtertest.c: -bf (a user's filter or .forward file) and -bF (a system
 * filter): the test message on standard input is read as Exim's filter
 * testing reads it (an mbox "From " line may give the sender, a
 * Return-path: header the return path, the local fix-ups are applied),
 * the envelope is shown, and the filter says what it would do.  Nothing
 * is delivered, logged or written. */
#include "route/filter.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand.h"
#include "message/fixups.h"
#include "spool/spool.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define FILTER_TEST_MAX_INPUT (256L * 1024 * 1024)   /* bytes of test message read */
#define FILTER_TEST_MAX_FILE (16L * 1024 * 1024)     /* bytes of a filter file */

/* Exim's default uucp_from_pattern */
static const char uucp_default[] =
    "^From\\s+(\\S+)\\s+(?:[a-zA-Z]{3},?\\s+)?[a-zA-Z]{3}\\s+\\d?\\d\\s+\\d?\\d:\\d\\d";

static char *read_fd(FILE *f, size_t max, size_t *len)
{
    gstr g;
    gstr_init(&g, ps.msg_t, 4096);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (g.len + n > max)
            n = max - g.len;
        gstr_catn(&g, buf, n);
        if (g.len >= max)
            break;
    }
    *len = g.len;
    return g.s;
}

static char *read_file(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = arena_printf(ps.msg, "failed to open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t len;
    char *t = read_fd(f, FILTER_TEST_MAX_FILE, &len);
    fclose(f);
    /* the filter file is the administrator's or the user's own text, not
     * message data: it may be expanded */
    return arena_strndup(ps.msg, t, len);
}

/* Does the first line match uucp_from_pattern?  Then $1.. are set and
 * uucp_from_sender (default $1) gives the sender. */
static const char *uucp_sender(const char *line, size_t len)
{
    const char *pat = cfg_str(MO_uucp_from_pattern);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(pat ? pat : uucp_default), PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!re)
        return NULL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)line, len, 0, 0, md, NULL);
    const char *sender = NULL;
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int n = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
        if (n > EXPAND_MAX_NUMVARS)
            n = EXPAND_MAX_NUMVARS;
        for (int i = 0; i < n; i++)
            ps.exp_num[i] = ov[2 * i] == PCRE2_UNSET ? ""
                            : arena_strndup(ps.msg_t, line + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        ps.exp_nmax = n;
        const char *how = cfg_str(MO_uucp_from_sender);
        char *out, *err;
        if (!how)
            sender = n > 1 ? ps.exp_num[1] : "";
        else if (expand_string(how, ps.msg, &out, &err) == ST_OK)
            sender = out;
        ps.exp_nmax = 0;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return sender;
}

static const char *qualify(const char *addr, const char *domain)
{
    if (!addr || !*addr)
        return addr;
    char *err;
    int dom;
    const char *a = expand_extract_address(ps.msg_t, addr, &err, &dom);
    if (!a)
        a = addr;
    return dom < 0 && *a ? arena_printf(ps.msg_t, "%s@%s", a, domain) : a;
}

static bool header_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':')
        i++;
    if (i == 0)
        return false;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < len && line[i] == ':';
}

typedef struct test_msg {
    spool_msg m;
    const char *sender;        /* from the "From " line, or NULL */
    const char *return_path;   /* from Return-path:, or NULL */
    bool from_line;
} test_msg;

/* Headers (CRs before newlines dropped), then the body as it is; a line
 * that is not a header ends the headers and, as in Exim's filter test, is
 * not part of the body variables. */
static void parse_message(const char *in, size_t len, bool dot_ends, test_msg *tm)
{
    const char *p = in, *end = in + len;
    long size = 0;
    bool first = true;
    gstr hdr;
    gstr_init(&hdr, ps.msg_t, 256);
    for (;;) {
        if (p >= end)
            goto done;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (dot_ends && ll == 1 && *p == '.')
            goto done;
        size += (long)ll + (nl ? 1 : 0);
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (first && ll > 5 && strncmp(line, "From ", 5) == 0) {
            const char *s = uucp_sender(line, ll);
            if (s) {
                first = false;
                tm->from_line = true;
                tm->sender = s;
                continue;
            }
        }
        first = false;
        if (hdr.len && ll && (line[0] == ' ' || line[0] == '\t')) {
            gstr_catc(&hdr, '\n');
            gstr_catn(&hdr, line, ll);
            continue;
        }
        if (hdr.len) {
            gstr_catc(&hdr, '\n');
            spool_add_header(&tm->m, ps.msg_t, spool_header_type(hdr.s), hdr.s, hdr.len);
            gstr_init(&hdr, ps.msg_t, 256);
        }
        if (ll && header_line(line, ll)) {
            gstr_catn(&hdr, line, ll);
            continue;
        }
        break;                         /* the empty line, or the first body line */
    }
    /* the body, byte for byte; a "." line ends it unless -i */
    {
        long header_size = size;
        const char *b = p, *q = p;
        while (q < end) {
            if (dot_ends && *q == '.' && (q == b || q[-1] == '\n') && (q + 1 == end || q[1] == '\n'))
                break;
            q++;
        }
        long lines = 0;
        for (const char *r = b; r < q; r++)
            lines += *r == '\n';
        if (q > b && q[-1] != '\n')
            lines++;
        filter_set_body_vars(b, (size_t)(q - b));
        size = header_size + (long)(q - b);
        ps.body_linecount = lines;
        ps.message_size = size;
        return;
    }
done:
    if (hdr.len) {
        gstr_catc(&hdr, '\n');
        spool_add_header(&tm->m, ps.msg_t, spool_header_type(hdr.s), hdr.s, hdr.len);
    }
    filter_set_body_vars("", 0);
    ps.body_linecount = 0;
    ps.message_size = size;
}

/* The Return-path: header gives $return_path (without <>). */
static const char *return_path_header(spool_msg *m)
{
    for (spool_header *h = m->headers; h; h = h->next) {
        if (h->type == '*' || strncasecmp(h->text, "Return-path:", 12) != 0)
            continue;
        const char *s = h->text + 12, *e = h->text + h->len;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e - s >= 2 && *s == '<' && e[-1] == '>') {
            s++;
            e--;
        }
        return arena_strndup(ps.msg_t, s, (size_t)(e - s));
    }
    return NULL;
}

static bool run_one(const char *path, const char *text, bool system)
{
    int kind = filter_kind(text);
    if (system && kind == FILTER_FORWARD)
        kind = FILTER_EXIM;
    printf("Testing %s file \"%s\"\n\n",
           kind == FILTER_EXIM ? "Exim filter" : kind == FILTER_SIEVE ? "Sieve filter" : "forward file", path);
    if (kind == FILTER_FORWARD)
        return redirect_test_list(text, stdout);
    if (kind == FILTER_SIEVE) {
        printf("exim: Sieve filtering not available\n");
        return false;
    }
    filter_opts o = { .flags = FO_REWRITE, .test = stdout, .a = ps.msg, .first_delivery = true };
    if (system)
        o.flags |= FO_DEFER | FO_FAIL | FO_FREEZE | FO_SYSTEM;
    filter_result r;
    filter_outcome out = filter_interpret(text, &o, &r);
    return out != FF_ERROR;
}

int filter_test_mode(const filter_test_args *t)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    const char *login = pw ? arena_strdup(ps.msg, pw->pw_name) : arena_printf(ps.msg, "uid%ld", (long)uid);
    const char *home = pw ? arena_strdup(ps.msg, pw->pw_dir) : NULL;
    const char *fullname = pw && pw->pw_gecos ? arena_strndup(ps.msg, pw->pw_gecos, strcspn(pw->pw_gecos, ",")) : NULL;
    const char *qd = cfg_str(MO_qualify_domain), *qr = cfg_str(MO_qualify_recipient);

    char *err = NULL, *stext = NULL, *utext = NULL;
    if ((t->system_file && !(stext = read_file(t->system_file, &err))) ||
        (t->user_file && !(utext = read_file(t->user_file, &err)))) {
        fprintf(stderr, "postern: %s\n", err);
        return EXIT_FAILURE;
    }

    size_t len;
    char *in = read_fd(stdin, FILTER_TEST_MAX_INPUT, &len);
    test_msg tm;
    memset(&tm, 0, sizeof tm);
    spool_new_id(tm.m.id);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    tm.m.received = tv.tv_sec;
    tm.m.local = true;
    parse_message(in, len, t->dot_ends, &tm);

    const char *sender = t->sender ? qualify(t->sender, qd) : NULL;
    if (!sender && tm.sender) {
        sender = qualify(tm.sender, qd);
        printf("Sender taken from \"From \" line\n");
    }
    if (!sender)
        sender = arena_printf(ps.msg, "%s@%s", login, qd);
    if (!tm.m.headers)
        printf("Warning: no message headers read\n");
    const char *rp = return_path_header(&tm.m);
    if (rp)
        printf("Return-path taken from \"Return-path:\" header line\n");

    tm.m.sender = sender;
    fixup_ctx fx = {
        .local = true, .trusted = true, .login = tm.from_line && !t->sender ? NULL : login, .fullname = fullname,
        .qualify_domain = qd, .primary_hostname = cfg_str(MO_primary_hostname),
        .local_from_check = cfg_bool(MO_local_from_check), .local_sender_retain = cfg_bool(MO_local_sender_retain),
    };
    msg_fixups(&tm.m, &fx, ps.msg_t);

    /* the envelope, as Exim makes it up for a test */
    ps.message_id = tm.m.id;
    ps.sender_address = sender;
    ps.msg_headers = tm.m.headers;
    ps.received_protocol = "local";
    ps.domain = ps.original_domain = t->domain ? t->domain : qr;
    ps.local_part = ps.original_local_part = t->local_part ? t->local_part : login;
    ps.local_part_prefix = t->prefix;
    ps.local_part_suffix = t->suffix;
    ps.home_dir = home;
    if (!rp) {
        printf("Return-path copied from sender\n");
        rp = sender;
    } else {
        printf("Return-path = %s\n", *rp ? rp : "<>");
    }
    ps.return_path = rp;
    printf("Sender      = %s\n", *sender ? sender : "<>");
    const char *rcpt = arena_printf(ps.msg, "%s%s%s@%s", t->prefix ? t->prefix : "", ps.local_part,
                                    t->suffix ? t->suffix : "", ps.domain);
    ps.recipients = arena_alloc(ps.msg, sizeof *ps.recipients);
    ps.recipients[0] = rcpt;
    ps.recipients_count = 1;
    printf("Recipient   = %s\n", rcpt);
    if (t->prefix)
        printf("Prefix    = %s\n", t->prefix);
    if (t->suffix)
        printf("Suffix    = %s\n", t->suffix);
    if (chdir("/") != 0)
        return EXIT_FAILURE;

    bool ok = true;
    if (stext)
        ok = run_one(t->system_file, stext, true);
    /* what the system filter left in $n0.. is $sn0.. for the user's */
    memcpy(ps.filter_sn, ps.filter_n, sizeof ps.filter_sn);
    if (ok && utext)
        ok = run_one(t->user_file, utext, false);
    fflush(stdout);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
