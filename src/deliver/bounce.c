/* bounce.c: delivery failure reports (RFC 3464 multipart/report), with
 * the seed's DSN extra information: Remote-MTA as X-ip with the port when
 * it is not 25, the remote greeting and EHLO/HELO response (also when the
 * failure came at RCPT time), and X-Exim-Diagnostic.  The human-readable
 * texts of bounces and delay warnings can come from the template files
 * named by bounce_message_file and warn_message_file. */
#include "deliver/bounce.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "deliver/submit.h"
#include "message/msgbuild.h"
#include "transport/write.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bool to_gstr(void *ctx, const char *p, size_t n)
{
    gstr_catn(ctx, p, n);
    return true;
}

/* The status code for an address: 5.x.x from a 5xx reply, else 5.0.0. */
static const char *status_of(const address_item *a, arena *ar)
{
    const char *m = a->message ? strstr(a->message, ": 5") : NULL;
    if (m) {
        const char *p = m + 2;
        /* "550 5.1.1 ..." */
        const char *sp = strchr(p, ' ');
        if (sp && sp[1] == '5' && sp[2] == '.') {
            size_t n = strcspn(sp + 1, " ");
            if (n < 12)
                return arena_strndup(ar, sp + 1, n);
        }
    }
    return "5.0.0";
}

static const char *diagnostic_code(const address_item *a, arena *ar)
{
    if (!a->message || !a->remote_reply_5xx)
        return NULL;
    const char *p = strstr(a->message, ": 5");
    return p ? arena_strdup(ar, p + 2) : NULL;
}

static const char *const kind_action[] = { "failed", "delayed", "delivered", "relayed" };

/* From: of bounces and warnings: dsn_from, expanded (Exim's default text
 * if the expansion fails, which is logged) */
static const char *dsn_from(arena *a)
{
    static const char dflt[] = "Mail Delivery System <Mailer-Daemon@$qualify_domain>";
    const char *f = cfg_str(MO_dsn_from) ? cfg_str(MO_dsn_from) : dflt;
    char *x = NULL, *e = NULL;
    if (expand_string(f, a, &x, &e) == ST_OK && x && *x)
        return x;
    log_write(LOG_MAIN | LOG_PANIC, "failed to expand dsn_from \"%s\": %s", f, e ? e : "empty result");
    return expand_string(dflt, a, &x, &e) == ST_OK ? x
           : arena_printf(a, "Mail Delivery System <Mailer-Daemon@%s>", cfg_str(MO_qualify_domain));
}

/* X-Failed-Recipients: the failed addresses, as Exim lists them (bounce
 * processors such as Mailman read it) */
static const char *failed_recipients(const address_item *failed, arena *a)
{
    gstr g;
    gstr_init(&g, a, 128);
    gstr_cat(&g, "X-Failed-Recipients: ");
    for (const address_item *f = failed; f; f = f->next)
        gstr_printf(&g, "%s%s", f == failed ? "" : ",\n  ", f->address);
    gstr_cat(&g, "\n");
    return g.s;
}

/* References: the original's References (at most its first and last
 * REFS_KEEP-1 ids) and its Message-ID, so that the report threads with the
 * message; none when the original has no Message-ID */
#define REFS_KEEP 12
static const char *references(const spool_msg *orig, arena *a)
{
    spool_header *mid = mb_find_header((spool_msg *)orig, "Message-ID");
    if (!mid)
        return NULL;
    const char *ids[REFS_KEEP + 1];
    int n = 0;
    spool_header *refs = mb_find_header((spool_msg *)orig, "References");
    const char *sources[2] = { refs ? strchr(refs->text, ':') + 1 : NULL, strchr(mid->text, ':') + 1 };
    for (int k = 0; k < 2; k++) {
        for (const char *p = sources[k]; p && (p = strchr(p, '<'));) {
            const char *e = strchr(p, '>');
            if (!e)
                break;
            const char *id = arena_strndup(a, p, (size_t)(e - p + 1));
            if (strpbrk(id, " \t\r\n") == NULL) {
                if (n < REFS_KEEP)
                    ids[n++] = id;
                else                        /* keep the first, shift the rest */
                    memmove(&ids[1], &ids[2], (REFS_KEEP - 2) * sizeof ids[0]), ids[REFS_KEEP - 1] = id;
            }
            p = e + 1;
        }
    }
    if (n == 0)
        return NULL;
    gstr g;
    gstr_init(&g, a, 128);
    gstr_cat(&g, "References:");
    for (int i = 0; i < n; i++)
        gstr_printf(&g, "%s%s", i ? "\n " : " ", ids[i]);
    gstr_cat(&g, "\n");
    return g.s;
}

/* ---- bounce_message_file and warn_message_file ---------------------------
 * A template file is a series of text items separated by lines that are
 * exactly "****".  Each item is expanded when it is used.  An empty or
 * missing item, or one whose expansion fails (logged to the main and panic
 * logs), leaves the built-in text in its place; so does a file that cannot
 * be read.
 *   bounce_message_file: header lines, the text before the failed
 *     addresses, the text before output returned by pipes (we return none:
 *     read and skipped), the text introducing the returned message (put at
 *     the end of the text/plain part); further items are ignored.
 *   warn_message_file: header lines, the text before the delayed
 *     addresses, the text after them. */

#define DSN_TEMPLATE_MAX (1024 * 1024)  /* bytes of a template file */

/* The text of the template file named by option o (its name is optname;
 * reason says which messages it is for), or NULL (logged) if there is none
 * to use. */
static const char *template_read(enum main_opt o, const char *optname, const char *reason, arena *a)
{
    const char *opt = cfg_str(o);
    if (!opt)
        return NULL;
    char *path = NULL, *e = NULL;
    if (expand_string(opt, a, &path, &e) != ST_OK || !path || !*path) {
        log_write(LOG_MAIN | LOG_PANIC, "Failed to expand %s: '%s'%s%s", optname, opt, e ? ": " : "", e ? e : "");
        return NULL;
    }
    if (*path != '/' || is_tainted(path)) {
        log_write(LOG_MAIN | LOG_PANIC, "%s is not %s after expansion: '%s'", optname,
                  *path == '/' ? "untainted" : "absolute", path);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    const char *why = NULL;
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size > DSN_TEMPLATE_MAX)
        why = "file too large";
    gstr g;
    gstr_init(&g, a, why ? 1 : (size_t)st.st_size + 1);
    char buf[8192];
    ssize_t n;
    while (!why && (n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            why = strerror(errno);
        else if (g.len + (size_t)n > DSN_TEMPLATE_MAX)
            why = "file too large";
        else
            gstr_catn(&g, buf, (size_t)n);
    }
    if (fd >= 0)
        close(fd);
    if (why) {
        log_write(LOG_MAIN | LOG_PANIC, "Failed to open %s for %s message texts: %s", path, reason, why);
        return NULL;
    }
    return g.s;
}

/* The next item of a template (*cur: where it starts; NULL when there is
 * no template), expanded; NULL for an empty or missing item and when the
 * expansion fails.  which names the item in the log. */
static const char *template_item(const char **cur, const char *which, arena *a)
{
    const char *p = *cur;
    if (!p || !*p)
        return NULL;
    const char *start = p, *end;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == 4 && memcmp(p, "****", 4) == 0) {
            end = p;
            p += len + (nl ? 1 : 0);
            break;
        }
        p += len + (nl ? 1 : 0);
        if (!*p) {
            end = p;
            break;
        }
    }
    *cur = p;
    if (end == start)
        return NULL;
    char *x = NULL, *e = NULL;
    if (expand_string(arena_strndup(a, start, (size_t)(end - start)), a, &x, &e) == ST_OK && x)
        return x;
    log_write(LOG_MAIN | LOG_PANIC, "Failed to expand string from bounce_message_file or warn_message_file (%s): %s",
              which, e ? e : "");
    return NULL;
}

/* A header item as header lines: up to its first empty line (where the
 * header of a message ends), each line ending in \n.  NULL when there is
 * no item; "" when it expands to nothing (no Subject: then, as in Exim). */
static const char *template_headers(const char *t, arena *a)
{
    if (!t)
        return NULL;
    const char *blank = t[0] == '\n' ? t : strstr(t, "\n\n");
    size_t n = blank ? (size_t)(blank - t) : strlen(t);
    while (n && isspace((unsigned char)t[n - 1]))
        n--;
    return n ? arena_printf(a, "%.*s\n", (int)n, t) : "";
}

/* Text from a template into the body, its last line ended. */
static void cat_lines(gstr *g, const char *t)
{
    gstr_cat(g, t);
    if (*t && t[strlen(t) - 1] != '\n')
        gstr_catc(g, '\n');
}

/* $warn_message_delay: the delay_warning time that has now passed, as Exim
 * shows it ("<n> minutes" while the message is under two hours old, else
 * "<n> hours").  The times are ages; after the last, warnings repeat at
 * the interval between the last two. */
#define DELAY_TIMES_MAX 32
static const char *warn_delay(time_t age, arena *a)
{
    long long t[DELAY_TIMES_MAX];
    int n = 0, sep = 0;
    const char *list = cfg_str(MO_delay_warning);
    char *it;
    while (list && n < DELAY_TIMES_MAX && (it = list_next(&list, &sep, a)))
        if (opt_parse_time(it, &t[n]) == ST_OK && t[n] > 0)
            n++;
    long long shown = age;
    int passed = 0;
    while (passed < n && age >= t[passed])
        passed++;
    if (passed > 0) {
        shown = t[passed - 1];
        long long gap = n > 1 ? t[n - 1] - t[n - 2] : t[n - 1];
        if (passed == n && gap > 0)
            shown += gap * ((age - shown) / gap);
    }
    return age < 120 * 60 ? arena_printf(a, "%lld minutes", shown / 60) : arena_printf(a, "%lld hours", shown / 3600);
}

static const char warn_final_text[] =
    "No action is required on your part. Delivery attempts will continue for\n"
    "some time, and this warning may be repeated at intervals if the message\n"
    "remains undelivered. Eventually the mail delivery software will give up,\n"
    "and when that happens, the message will be returned to you.\n";

/* The texts a template gives for a report (NULL: the built-in text) */
typedef struct dsn_texts {
    bool template;        /* a template file is in use */
    const char *headers;  /* header lines replacing Subject: */
    const char *intro;    /* the text/plain part up to the addresses */
    const char *final;    /* after the addresses */
} dsn_texts;

static void texts_load(dsn_texts *t, dsn_kind kind, arena *a)
{
    *t = (dsn_texts){ 0 };
    const char *cur = kind == DSN_FAILED ? template_read(MO_bounce_message_file, "bounce_message_file", "error", a)
                    : kind == DSN_DELAYED ? template_read(MO_warn_message_file, "warn_message_file", "warning", a)
                    : NULL;
    if (!cur)
        return;
    t->template = true;
    t->headers = template_headers(template_item(&cur, "header", a), a);
    t->intro = template_item(&cur, "intro", a);
    if (kind == DSN_FAILED) {
        (void)template_item(&cur, "generated text", a);      /* no output of pipes is returned */
        t->final = template_item(&cur, "copy", a);
    } else {
        t->final = template_item(&cur, "final", a);
        if (!t->final)
            t->final = warn_final_text;
    }
}

/* The text/plain part up to the list of addresses: the template's item,
 * else the built-in text (which for a warning ends with the final text
 * when no template is in use, where a template puts it after the list). */
static void text_intro(gstr *body, const spool_msg *orig, dsn_kind kind, const dsn_texts *t)
{
    if (t->intro) {
        cat_lines(body, t->intro);
        gstr_cat(body, "\n");
        return;
    }
    gstr_cat(body, "This message was created automatically by mail delivery software.\n\n");
    if (kind == DSN_FAILED && cfg_str(MO_bounce_message_text))
        gstr_printf(body, "%s\n\n", cfg_str(MO_bounce_message_text));
    if (kind == DSN_FAILED) {
        gstr_cat(body, "A message that you sent could not be delivered to one or more of its\n"
                       "recipients. This is a permanent error. The following address(es) failed:\n\n");
    } else if (kind == DSN_DELAYED) {
        gstr_printf(body, "A message that you sent has not yet been delivered to one or more of its\n"
                          "recipients after more than %ld minutes on the queue on %s.\n\n",
                    (long)(time(NULL) - orig->received) / 60, cfg_str(MO_primary_hostname));
        if (!t->template)
            gstr_printf(body, "%s\n", warn_final_text);
        gstr_cat(body, "The following address(es) are still waiting:\n\n");
    } else {
        gstr_cat(body, "Your message has been delivered to the following recipient(s):\n\n");
    }
}

const char *dsn_send(const spool_msg *orig, address_item *failed, dsn_kind kind, int data_fd, arena *a, char **err)
{
    const char *host = cfg_str(MO_primary_hostname);
    const char *to = orig->sender;
    for (address_item *f = failed; f; f = f->next)
        if (f->errors_to && *f->errors_to) {
            to = f->errors_to;
            break;
        }
    /* $bounce_recipient, $warn_message_*: for dsn_from and the templates */
    const char *saved[3] = { ps.bounce_recipient, ps.warn_message_delay, ps.warn_message_recipients };
    if (kind == DSN_FAILED) {
        ps.bounce_recipient = to;
    } else if (kind == DSN_DELAYED) {
        ps.warn_message_delay = warn_delay(time(NULL) - orig->received, a);
        ps.warn_message_recipients = to;
    }
    dsn_texts t;
    texts_load(&t, kind, a);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    const char *boundary = arena_printf(a, "%ld-postern-%ld", (long)tv.tv_sec, (long)tv.tv_usec);
    const char *hdrs[] = {
        kind == DSN_FAILED ? failed_recipients(failed, a) : NULL,
        arena_printf(a, "Auto-Submitted: auto-replied\n"),
        arena_printf(a, "From: %s\n", dsn_from(a)),
        cfg_str(MO_errors_reply_to) ? arena_printf(a, "Reply-To: %s\n", cfg_str(MO_errors_reply_to)) : NULL,
        arena_printf(a, "To: %s\n", to),
        references(orig, a),
        arena_printf(a, "Content-Type: multipart/report; report-type=delivery-status; boundary=%s\n", boundary),
        arena_printf(a, "MIME-Version: 1.0\n"),
        t.headers ? t.headers
        : kind == DSN_FAILED ? arena_printf(a, "Subject: Mail delivery failed: returning message to sender\n")
        : kind == DSN_DELAYED ? arena_printf(a, "Subject: Warning: message %s delayed %ld minutes\n", orig->id,
                                             (long)(time(NULL) - orig->received) / 60)
        : arena_printf(a, "Subject: Delivery Status Notification\n"),
    };
    gstr hg;
    gstr_init(&hg, a, 1024);
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        if (hdrs[i])
            gstr_cat(&hg, hdrs[i]);

    gstr body;
    gstr_init(&body, a, 4096);
    gstr_printf(&body, "--%s\nContent-type: text/plain; charset=us-ascii\n\n", boundary);
    text_intro(&body, orig, kind, &t);
    for (address_item *f = failed; f; f = f->next) {
        gstr_printf(&body, "  %s\n", f->address);
        if (f->host_used)
            gstr_printf(&body, "    host %s [%s]%s\n", f->host_used, f->host_address_used ? f->host_address_used : "",
                        f->port_used && f->port_used != 25 ? arena_printf(a, ":%d", f->port_used) : "");
        if (f->message)
            gstr_printf(&body, "    %s\n", f->message);
    }
    if (t.final) {
        gstr_cat(&body, "\n");
        cat_lines(&body, t.final);
    }
    gstr_printf(&body, "\n--%s\nContent-type: message/delivery-status\n\n", boundary);
    gstr_printf(&body, "Reporting-MTA: dns; %s\n", host);
    if (orig->dsn_envid)
        gstr_printf(&body, "Original-Envelope-ID: %s\n", orig->dsn_envid);
    gstr_printf(&body, "X-Postern-Queue-ID: %s\n", orig->id);
    for (address_item *f = failed; f; f = f->next) {
        gstr_cat(&body, "\n");
        if (f->dsn_orcpt)
            gstr_printf(&body, "Original-Recipient: %s\n", f->dsn_orcpt);
        gstr_printf(&body, "Action: %s\nFinal-Recipient: rfc822;%s\nStatus: %s\n", kind_action[kind], f->address,
                    kind == DSN_FAILED ? status_of(f, a) : kind == DSN_DELAYED ? "4.0.0" : "2.0.0");
        if (kind != DSN_FAILED && kind != DSN_DELAYED) {
            if (f->host_used)
                gstr_printf(&body, "Remote-MTA: dns; %s\n", f->host_used);
            continue;
        }
        if (f->host_used) {
            gstr_printf(&body, "Remote-MTA: dns; %s\n", f->host_used);
            if (f->host_address_used) {
                if (f->port_used && f->port_used != 25)
                    gstr_printf(&body, "Remote-MTA: X-ip; [%s]:%d\n", f->host_address_used, f->port_used);
                else
                    gstr_printf(&body, "Remote-MTA: X-ip; [%s]\n", f->host_address_used);
            }
            if (f->smtp_greeting)
                gstr_printf(&body, "X-Remote-MTA-smtp-greeting: X-str; %s\n", f->smtp_greeting);
            if (f->helo_response)
                gstr_printf(&body, "X-Remote-MTA-helo-response: X-str; %s\n", f->helo_response);
        }
        if (f->message)
            gstr_printf(&body, "X-Exim-Diagnostic: X-str; %s\n", f->message);
        const char *dc = diagnostic_code(f, a);
        if (dc)
            gstr_printf(&body, "Diagnostic-Code: smtp; %s\n", dc);
    }
    /* the original: whole for failures (unless RET=HDRS), headers otherwise */
    bool headers_only = kind != DSN_FAILED || orig->dsn_ret == SPOOL_RET_HDRS || !cfg_bool(MO_bounce_return_body);
    gstr_printf(&body, "\n--%s\nContent-type: %s\n\n", boundary, headers_only ? "text/rfc822-headers" : "message/rfc822");
    if (cfg_bool(MO_bounce_return_message)) {
        /* the returned copy starts with Return-path:, as Exim's does */
        write_opts wo = { .headers_only = headers_only,
                          .top_headers = arena_printf(a, "Return-path: <%s>\n", orig->sender) };
        unsigned long long n;
        gstr orig_text;
        gstr_init(&orig_text, a, 4096);
        if (transport_write_message(orig, data_fd, &wo, to_gstr, &orig_text, &n, a, err) == ST_OK) {
            long long limit = cfg_int(MO_bounce_return_size_limit);
            if (limit > 0 && (long long)orig_text.len > limit) {
                gstr_truncate(&orig_text, (size_t)limit);
                gstr_printf(&orig_text, "\n------ The body of the message is %llu characters long; only the first\n"
                                        "------ %lld or so are included here.\n", n, limit);
            }
            gstr_cat(&body, orig_text.s);
        }
    }
    gstr_printf(&body, "\n--%s--\n", boundary);

    ps.bounce_recipient = saved[0];
    ps.warn_message_delay = saved[1];
    ps.warn_message_recipients = saved[2];

    submit_msg sm = { .sender = "", .rcpts = &to, .nrcpt = 1, .headers = hg.s, .body = body.s, .ref_id = orig->id };
    const char *id = deliver_submit_local(&sm, a, err);
    if (!id)
        return NULL;
    return id;
}
