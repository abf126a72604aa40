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

/* Diagnostic-Code: the remote server's reply (what follows the first
 * ": " of a message that may go to the sender), continuation lines marked
 * as RFC 3461 says; NULL when there is none. */
static const char *diagnostic_code(const address_item *a, arena *ar)
{
    if (!a->pass_message || !a->message)
        return NULL;
    const char *s = strstr(a->message, ": ");
    if (!s)
        return NULL;
    gstr g;
    gstr_init(&g, ar, 128);
    size_t cnt = strlen("Diagnostic-Code: smtp; ");
    for (s += 2; *s; cnt++) {
        if (cnt > 950) {
            gstr_cat(&g, "[truncated]");
            break;
        }
        if (*s == '\\' && s[1] == 'n') {
            gstr_cat(&g, "\n ");
            s += 2;
            cnt++;
        } else {
            gstr_catc(&g, *s++);
        }
    }
    return g.s;
}

#define DSN_BUFFER 8192          /* Exim rounds bounce_return_size_limit up to this */

#define DSN_WRAP_COLS 79          /* Exim's width for the DSN extra-information lines */
#define DSN_WRAP_MAX 1023         /* and their length limit */

/* An extra-information field as Exim writes it: folded before column 79
 * at the last blank (after the first ten characters; otherwise cut at
 * the column), at "\n" or a newline in the value, continuation lines
 * starting with one space, at most 1023 characters. */
static void dsn_put_wrapped(gstr *b, const char *name, const char *value)
{
    gstr g;
    gstr_init(&g, b->a, 128);
    gstr_cat(&g, name);
    gstr_cat(&g, value);
    const char *s = g.s;
    size_t start = b->len;
    for (size_t col = 0;; col = 1) {
        const char *t = NULL;
        size_t tail = 0;
        const char *bs = strstr(s, "\\n"), *nl = strchr(s, '\n');
        if (bs && (!nl || bs < nl))
            t = bs, tail = 2;
        else if (nl)
            t = nl, tail = 1;
        else
            t = s + strlen(s);
        if (col + (size_t)(t - s) > DSN_WRAP_COLS) {
            const char *u = s + DSN_WRAP_COLS - col;
            while (u > s + 10 && !isspace((unsigned char)*u))
                u--;
            if (u > s + 10) {
                const char *e = u;
                while (e > s + 1 && isspace((unsigned char)e[-1]))
                    e--;
                gstr_catn(b, s, (size_t)(e - s));
                s = u + 1;
                while (*s && isspace((unsigned char)*s))
                    s++;
            } else if (col < DSN_WRAP_COLS) {
                gstr_catn(b, s, DSN_WRAP_COLS - col);
                s += DSN_WRAP_COLS - col;
            }
        } else {
            gstr_catn(b, s, (size_t)(t - s));
            s = t + tail;
        }
        if (!*s)
            break;
        if (b->len - start >= DSN_WRAP_MAX) {
            gstr_truncate(b, start + DSN_WRAP_MAX);
            break;
        }
        gstr_cat(b, "\n ");
    }
    gstr_catc(b, '\n');
}

static const char *const kind_action[] = { "failed", "delayed", "delivered", "delivered" };

/* One recipient's block of the message/delivery-status part */
static void dsn_recipient(gstr *b, const address_item *f, dsn_kind kind, arena *a)
{
    const address_item *top = f;
    while (top->parent)
        top = top->parent;
    if (f->dsn_orcpt)
        gstr_printf(b, "Original-Recipient: %s\n", f->dsn_orcpt);
    gstr_printf(b, "Action: %s\nFinal-Recipient: rfc822;%s\nStatus: %s\n", kind_action[kind], top->address,
                kind == DSN_FAILED ? "5.0.0" : kind == DSN_DELAYED ? "4.0.0" : "2.0.0");
    const char *dc = diagnostic_code(f, a);
    if (kind == DSN_FAILED) {
        if (f->host_used) {
            gstr_printf(b, "Remote-MTA: dns; %s\n", f->host_used);
            /* the seed's DSN extra information, also for failures at RCPT */
            if (f->host_address_used) {
                if (f->port_used && f->port_used != 25)
                    gstr_printf(b, "Remote-MTA: X-ip; [%s]:%d\n", f->host_address_used, f->port_used);
                else
                    gstr_printf(b, "Remote-MTA: X-ip; [%s]\n", f->host_address_used);
            }
            if (f->smtp_greeting && *f->smtp_greeting)
                dsn_put_wrapped(b, "X-Remote-MTA-smtp-greeting: X-str; ", f->smtp_greeting);
            if (f->helo_response && *f->helo_response)
                dsn_put_wrapped(b, "X-Remote-MTA-helo-response: X-str; ", f->helo_response);
            if (f->pass_message && f->message && *f->message)
                dsn_put_wrapped(b, "X-Exim-Diagnostic: X-str; ", f->message);
            if (dc)
                gstr_printf(b, "Diagnostic-Code: smtp; %s\n", dc);
        } else if (f->pass_message && f->message && *f->message) {
            dsn_put_wrapped(b, "X-Exim-Diagnostic: X-str; ", f->message);
        }
    } else if (kind == DSN_DELAYED) {
        if (f->host_used) {
            gstr_printf(b, "Remote-MTA: dns; %s\n", f->host_used);
            if (dc)
                gstr_printf(b, "Diagnostic-Code: smtp; %s\n", dc);
        }
    } else if (f->host_used) {
        gstr_printf(b, "Remote-MTA: dns; %s\nDiagnostic-Code: smtp; 250 Ok\n", f->host_used);
    } else {
        gstr_printf(b, "Diagnostic-Code: X-Exim; relayed via non %s router\n", kind == DSN_RELAYED ? "DSN" : "SMTP");
    }
    gstr_cat(b, "\n");
}

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
    int n = 0;
    for (const address_item *f = failed; f; f = f->next) {
        if (n >= 50) {                  /* a new header every 50 recipients */
            gstr_cat(&g, "\n");
            n = 0;
        }
        bool pfr = (f->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && f->parent;
        gstr_printf(&g, "%s%s", n++ == 0 ? "X-Failed-Recipients: " : ",\n  ", pfr ? f->parent->address : f->address);
    }
    if (n)
        gstr_cat(&g, "\n");
    return g.s;
}

/* The address as the text part of a report shows it (Exim's layout):
 * "  address", for a pipe or file "  pipe to |cmd\n    generated by
 * parent", "(generated from X)" when the original recipient differs, and
 * the host it failed at. */
static void print_address(gstr *g, const address_item *f, const char *si, const char *sc, const char *se)
{
    const address_item *top = f;
    while (top->parent)
        top = top->parent;
    const char *printed = f->address;
    gstr_cat(g, si);
    if ((f->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && f->parent) {
        const char *what = f->address[0] == '>' ? "mail" : f->address[0] == '|' ? "pipe" : "save";
        gstr_printf(g, "%s to %s%sgenerated by ", what, f->address + (f->address[0] == '>'), sc);
        printed = f->parent->address;
    }
    gstr_cat(g, printed);
    if (top != f && strcasecmp(top->address, printed) != 0)
        gstr_printf(g, "%s(%sgenerated from %s)", sc, top != f->parent ? "ultimately " : "", top->address);
    if (f->host_used)
        gstr_printf(g, "\n    host %s [%s]", f->host_used, f->host_address_used ? f->host_address_used : "");
    gstr_cat(g, se);
}

/* Why an address failed, as the sender may see it: the message when it
 * may go out (replies of remote servers, :fail: texts), else the
 * user_message; folded after ": " past column 45, "\\n" starting a new
 * line, cut at 254 characters (Exim's layout). */
static void print_error(gstr *g, const address_item *f, const char *t)
{
    const char *s = f->pass_message ? f->message : NULL;
    if (!s && !(s = f->user_message))
        return;
    size_t count = strlen(t);
    gstr_printf(g, "\n    %s", t);
    while (*s) {
        if (*s == '\\' && s[1] == 'n') {
            gstr_cat(g, "\n    ");
            s += 2;
            count = 0;
            continue;
        }
        gstr_catc(g, *s);
        count++;
        if (*s++ == ':' && isspace((unsigned char)*s) && count > 45) {
            gstr_cat(g, "\n   ");
            count = 0;
        } else if (count > 254) {
            gstr_cat(g, "[truncated]");
            break;
        }
    }
}

/* References: the original's References (at most its first and last
 * REFS_KEEP-1 ids) and its Message-ID, so that the report threads with the
 * message; none when the original has no Message-ID */
#define REFS_KEEP 12
static const char *references(const spool_msg *orig, arena *a)
{
    /* the original's References (else its In-Reply-To), at most REFS_KEEP
     * ids keeping the first, then its Message-ID, on one line (Exim) */
    spool_header *mid = mb_find_header((spool_msg *)orig, "Message-ID");
    spool_header *refs = mb_find_header((spool_msg *)orig, "References");
    if (!refs)
        refs = mb_find_header((spool_msg *)orig, "In-Reply-To");
    if (!mid && !refs)
        return NULL;
    const char *ids[REFS_KEEP];
    int n = 0;
    size_t use = strlen("References:");
    for (const char *p = refs ? strchr(refs->text, ':') + 1 : NULL; p && (p = strchr(p, '<'));) {
        const char *e = strchr(p, '>');
        if (!e)
            break;
        const char *id = arena_strndup(a, p, (size_t)(e - p + 1));
        p = e + 1;
        if (strpbrk(id, " \t\r\n"))
            continue;
        if (n == REFS_KEEP || use + strlen(id) + (size_t)n > 998) {
            if (n > 1) {                    /* keep the first, drop the second */
                use -= strlen(ids[1]);
                memmove(&ids[1], &ids[2], (size_t)(n - 2) * sizeof ids[0]);
                ids[n - 1] = id;
            }
        } else {
            ids[n++] = id;
        }
        use += strlen(id);
    }
    gstr g;
    gstr_init(&g, a, 128);
    gstr_cat(&g, "References:");
    for (int i = 0; i < n; i++)
        gstr_printf(&g, " %s", ids[i]);
    if (mid) {
        const char *v = strchr(mid->text, ':') + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        gstr_printf(&g, " %s", v);          /* keeps its newline */
    } else {
        gstr_cat(&g, "\n");
    }
    return g.s;
}

const char *dsn_report_headers(const spool_msg *orig, const char *to, arena *a)
{
    gstr g;
    gstr_init(&g, a, 256);
    const char *rt = cfg_str(MO_errors_reply_to);
    if (rt && *rt)
        gstr_printf(&g, "Reply-To: %s\n", rt);
    gstr_printf(&g, "Auto-Submitted: auto-replied\nFrom: %s\nTo: %s\n", dsn_from(a), to);
    const char *refs = references(orig, a);
    if (refs)
        gstr_cat(&g, refs);
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
    const char *generated; /* introduces the output of pipes (bounces) */
    const char *final;    /* after the addresses (warnings) */
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
        t->generated = template_item(&cur, "generated text", a);
        (void)template_item(&cur, "copy", a);   /* read, but Exim no longer uses it */
    } else {
        t->final = template_item(&cur, "final", a);
    }
}

/* The text/plain part up to the list of addresses: the template's item,
 * else Exim's built-in text. */
static void text_intro(gstr *body, const spool_msg *orig, dsn_kind kind, const dsn_texts *t, bool to_sender,
                       const address_item *list)
{
    if (t->intro) {
        gstr_cat(body, t->intro);
        return;
    }
    gstr_cat(body, "This message was created automatically by mail delivery software.\n");
    if (kind == DSN_FAILED) {
        if (cfg_str(MO_bounce_message_text))
            gstr_cat(body, cfg_str(MO_bounce_message_text));
        if (to_sender)
            gstr_cat(body, "\nA message that you sent could not be delivered to one or more of its\n"
                           "recipients. This is a permanent error. The following address(es) failed:\n");
        else
            gstr_printf(body, "\nA message sent by\n\n  <%s>\n\n"
                              "could not be delivered to one or more of its recipients. The following\n"
                              "address(es) failed:\n", orig->sender);
        return;
    }
    /* a delay warning */
    if (to_sender)
        gstr_cat(body, "A message that you sent has not yet been delivered to one or more of its\n"
                       "recipients after more than ");
    else
        gstr_printf(body, "A message sent by\n\n  <%s>\n\n"
                          "has not yet been delivered to one or more of its recipients after more than \n",
                    orig->sender);
    gstr_printf(body, "%s on the queue on %s.\n\nThe message identifier is:     %s\n", ps.warn_message_delay,
                cfg_str(MO_primary_hostname), orig->id);
    for (const spool_header *h = orig->headers; h; h = h->next) {
        if (h->type == '*')
            continue;
        if (!strncasecmp(h->text, "Subject:", 8))
            gstr_printf(body, "The subject of the message is: %s", h->text + 9);
        else if (!strncasecmp(h->text, "Date:", 5))
            gstr_printf(body, "The date of the message is:    %s", h->text + 6);
    }
    gstr_cat(body, "\n");
    gstr_printf(body, "The address%s to which the message has not yet been delivered %s:\n",
                list && list->next ? "es" : "", list && list->next ? "are" : "is");
}

const char *dsn_send(const spool_msg *orig, address_item *failed, dsn_kind kind, int data_fd, arena *a, char **err)
{
    const char *host = cfg_str(MO_primary_hostname);
    /* the caller groups addresses by where their report goes */
    const char *to = failed && failed->errors_to && *failed->errors_to ? failed->errors_to : orig->sender;
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
    bool to_sender = !strcasecmp(to, orig->sender);

    /* headers, in Exim's order for each kind of report */
    gstr hg;
    gstr_init(&hg, a, 1024);
    const char *reply_to = cfg_str(MO_errors_reply_to) ? arena_printf(a, "Reply-To: %s\n", cfg_str(MO_errors_reply_to)) : "";
    const char *refs = references(orig, a);
    const char *mime = arena_printf(a, "Content-Type: multipart/report; report-type=delivery-status; boundary=%s\n"
                                       "MIME-Version: 1.0\n", boundary);
    if (kind == DSN_FAILED) {
        gstr_cat(&hg, failed_recipients(failed, a));
        gstr_printf(&hg, "%sAuto-Submitted: auto-replied\nFrom: %s\nTo: %s\n%s%s", reply_to, dsn_from(a), to,
                    refs ? refs : "", mime);
        gstr_cat(&hg, t.headers ? t.headers
                      : to_sender ? "Subject: Mail delivery failed: returning message to sender\n"
                                  : "Subject: Mail delivery failed\n");
    } else if (kind == DSN_DELAYED) {
        gstr_printf(&hg, "%sAuto-Submitted: auto-replied\nFrom: %s\nTo: %s\n%s%s", reply_to, dsn_from(a), to,
                    refs ? refs : "", mime);
        gstr_cat(&hg, t.headers ? t.headers
                      : arena_printf(a, "Subject: Warning: message %s delayed %s\n", orig->id, ps.warn_message_delay));
    } else {
        gstr_printf(&hg, "%sFrom: %s\nAuto-Submitted: auto-generated\nTo: %s\nSubject: Delivery Status Notification\n%s%s",
                    reply_to, dsn_from(a), to, refs ? refs : "", mime);
    }

    gstr body;
    gstr_init(&body, a, 4096);
    gstr_printf(&body, "--%s\nContent-type: text/plain; charset=us-ascii\n\n", boundary);
    /* the machine-readable part lists the addresses in the order Exim
     * does: those with returned output first, then the others, each group
     * in reverse */
    int nf = 0;
    for (address_item *f = failed; f; f = f->next)
        nf++;
    address_item **dsn_order = arena_alloc(a, sizeof *dsn_order * (size_t)(nf + 1));
    int k = 0;
    for (int pass = 0; pass < 2; pass++) {
        int start = k;
        for (address_item *f = failed; f; f = f->next)
            if ((f->return_output != NULL) == (pass == 0))
                dsn_order[k++] = f;
        for (int i = start, j = k - 1; i < j; i++, j--) {
            address_item *x = dsn_order[i];
            dsn_order[i] = dsn_order[j];
            dsn_order[j] = x;
        }
    }
    if (kind == DSN_FAILED) {
        text_intro(&body, orig, kind, &t, to_sender, failed);
        gstr_cat(&body, "\n");
        int outputs = 0;
        for (address_item *f = failed; f; f = f->next) {
            print_address(&body, f, "  ", "\n    ", "");
            print_error(&body, f, "");
            gstr_cat(&body, "\n");
            if (f->return_output)
                outputs++;
        }
        gstr_cat(&body, "\n");
        if (outputs) {
            /* text from pipes (return_output, return_fail_output) */
            if (t.generated)
                gstr_cat(&body, t.generated);
            else
                gstr_printf(&body, "The following text was generated during the delivery attempt%s:\n",
                            outputs > 1 ? "s" : "");
            for (address_item *f = failed; f; f = f->next) {
                if (!f->return_output)
                    continue;
                gstr_cat(&body, "\n");
                print_address(&body, f, "------ ", "\n       ", " ------\n");
                gstr_cat(&body, "\n");
                gstr_cat(&body, f->return_output);
            }
            gstr_cat(&body, "\n");
        }
        gstr_printf(&body, "--%s\nContent-type: message/delivery-status\n\nReporting-MTA: dns; %s\n", boundary, host);
    } else if (kind == DSN_DELAYED) {
        text_intro(&body, orig, kind, &t, to_sender, failed);
        gstr_cat(&body, "\n");
        for (address_item *f = failed; f; f = f->next) {
            print_address(&body, f, "  ", "\n    ", "");
            print_error(&body, f, "Delay reason: ");
            gstr_cat(&body, "\n");
        }
        gstr_cat(&body, "\n");
        if (t.template) {
            if (t.final)
                gstr_cat(&body, t.final);
        } else {
            gstr_cat(&body, warn_final_text);
        }
        gstr_printf(&body, "\n--%s\nContent-type: message/delivery-status\n\nReporting-MTA: dns; %s\n", boundary, host);
    } else {
        gstr_cat(&body, "This message was created automatically by mail delivery software.\n"
                        " ----- The following addresses had successful delivery notifications -----\n");
        for (address_item *f = failed; f; f = f->next)
            gstr_printf(&body, "<%s> (relayed %s)\n\n", f->address,
                        kind == DSN_RELAYED ? "to non-DSN-aware mailer" : "via non \"Remote SMTP\" router");
        gstr_printf(&body, "--%s\nContent-type: message/delivery-status\n\nReporting-MTA: dns; %s\n", boundary, host);
    }
    if (orig->dsn_envid)
        gstr_printf(&body, "Original-Envelope-ID: %s\n", orig->dsn_envid);
    gstr_cat(&body, "\n");
    for (int i = 0; i < (kind == DSN_FAILED ? nf : 0); i++)
        dsn_recipient(&body, dsn_order[i], kind, a);
    if (kind != DSN_FAILED)
        for (address_item *f = failed; f; f = f->next)
            dsn_recipient(&body, f, kind, a);
    /* The original: for a failure the whole message, unless RET=HDRS, or
     * bounce_return_body is off, or it is over bounce_return_size_limit or
     * has lines longer than bounce_return_linesize_limit (then its headers
     * and a note why, as Exim); for other reports its headers. */
    bool headers_only = kind != DSN_FAILED;
    const char *note = NULL;
    static const char limit_note[] = "X-Exim-DSN-Information: Due to administrative limits only headers are returned\n";
    if (kind == DSN_FAILED) {
        struct stat sb;
        long long limit = cfg_int(MO_bounce_return_size_limit);
        if (orig->dsn_ret == SPOOL_RET_HDRS)
            headers_only = true;
        else if (!cfg_bool(MO_bounce_return_body)) {
            headers_only = true;
            if (orig->dsn_ret == SPOOL_RET_FULL)
                note = limit_note;
        } else if (orig->max_received_linelength > cfg_int(MO_bounce_return_linesize_limit) ||
                   (limit > 0 && fstat(data_fd, &sb) == 0 &&
                    (long long)sb.st_size > (limit / DSN_BUFFER + 1) * DSN_BUFFER)) {
            headers_only = true;
            note = limit_note;
        }
    }
    gstr_printf(&body, "--%s\nContent-type: %s\n\n", boundary, headers_only ? "text/rfc822-headers" : "message/rfc822");
    {   /* (bounce_return_message is not consulted: Exim ignores it too) */
        /* the returned copy starts with Return-path:, as Exim's does */
        write_opts wo = { .headers_only = headers_only,
                          .top_headers = arena_printf(a, "Return-path: <%s>\n", orig->sender),
                          .add_headers = note };
        unsigned long long n;
        gstr orig_text;
        gstr_init(&orig_text, a, 4096);
        if (transport_write_message(orig, data_fd, &wo, to_gstr, &orig_text, &n, a, err) == ST_OK)
            gstr_cat(&body, orig_text.s);
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
