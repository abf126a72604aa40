/* bounce.c: delivery failure reports (RFC 3464 multipart/report), with
 * the seed's DSN extra information: Remote-MTA as X-ip with the port when
 * it is not 25, the remote greeting and EHLO/HELO response (also when the
 * failure came at RCPT time), and X-Exim-Diagnostic. */
#include "deliver/bounce.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "message/msgbuild.h"
#include "transport/write.h"

#include "core/timefmt.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

const char *dsn_send(const spool_msg *orig, address_item *failed, dsn_kind kind, int data_fd, arena *a, char **err)
{
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    const char *host = cfg_str(MO_primary_hostname);
    const char *to = orig->sender;
    for (address_item *f = failed; f; f = f->next)
        if (f->errors_to && *f->errors_to) {
            to = f->errors_to;
            break;
        }
    spool_msg *b = arena_calloc(a, sizeof *b);
    spool_new_id(b->id);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    b->received = tv.tv_sec;
    b->received_usec = tv.tv_usec;
    b->login = cfg_str(MO_exim_user) ? cfg_str(MO_exim_user) : "postern";
    b->uid = (long)geteuid();
    b->gid = (long)getegid();
    b->sender = "";
    b->local = true;
    b->localerror = true;
    b->received_protocol = "local";
    b->deliver_firsttime = true;
    spool_rcpt r = { to, NULL, 0, NULL, -1 };
    spool_add_rcpt(b, a, &r);

    char date[TIMEFMT_DATE_LEN];
    timefmt_rfc5322(b->received, date, sizeof date);
    const char *boundary = arena_printf(a, "%ld-postern-%s", (long)tv.tv_sec, b->id);

    const char *hdrs[] = {
        arena_printf(a, "Received: from %s by %s with local (postern %s)\n\tid %s\n\tfor %s; %s\n",
                     b->login, host, POSTERN_VERSION, b->id, to, date),
        kind == DSN_FAILED ? failed_recipients(failed, a) : NULL,
        arena_printf(a, "Auto-Submitted: auto-replied\n"),
        arena_printf(a, "From: %s\n", dsn_from(a)),
        cfg_str(MO_errors_reply_to) ? arena_printf(a, "Reply-To: %s\n", cfg_str(MO_errors_reply_to)) : NULL,
        arena_printf(a, "To: %s\n", to),
        references(orig, a),
        arena_printf(a, "Content-Type: multipart/report; report-type=delivery-status; boundary=%s\n", boundary),
        arena_printf(a, "MIME-Version: 1.0\n"),
        kind == DSN_FAILED ? arena_printf(a, "Subject: Mail delivery failed: returning message to sender\n")
        : kind == DSN_DELAYED ? arena_printf(a, "Subject: Warning: message %s delayed %ld minutes\n", orig->id,
                                             (long)(time(NULL) - orig->received) / 60)
        : arena_printf(a, "Subject: Delivery Status Notification\n"),
        arena_printf(a, "Message-Id: <E%s@%s>\n", b->id, host),
        arena_printf(a, "Date: %s\n", date),
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
        if (hdrs[i])
            spool_add_header(b, a, spool_header_type(hdrs[i]), hdrs[i], strlen(hdrs[i]));

    gstr body;
    gstr_init(&body, a, 4096);
    gstr_printf(&body, "--%s\nContent-type: text/plain; charset=us-ascii\n\n", boundary);
    gstr_cat(&body, "This message was created automatically by mail delivery software.\n\n");
    if (kind == DSN_FAILED && cfg_str(MO_bounce_message_text))
        gstr_printf(&body, "%s\n\n", cfg_str(MO_bounce_message_text));
    if (kind == DSN_FAILED)
        gstr_cat(&body, "A message that you sent could not be delivered to one or more of its\n"
                        "recipients. This is a permanent error. The following address(es) failed:\n\n");
    else if (kind == DSN_DELAYED)
        gstr_printf(&body, "A message that you sent has not yet been delivered to one or more of its\n"
                           "recipients after more than %ld minutes on the queue on %s.\n\n"
                           "No action is required on your part. Delivery attempts will continue for\n"
                           "some time, and this warning may be repeated at intervals if the message\n"
                           "remains undelivered. Eventually the mail delivery software will give up,\n"
                           "and when that happens, the message will be returned to you.\n\n"
                           "The following address(es) are still waiting:\n\n",
                    (long)(time(NULL) - orig->received) / 60, host);
    else
        gstr_cat(&body, "Your message has been delivered to the following recipient(s):\n\n");
    for (address_item *f = failed; f; f = f->next) {
        gstr_printf(&body, "  %s\n", f->address);
        if (f->host_used)
            gstr_printf(&body, "    host %s [%s]%s\n", f->host_used, f->host_address_used ? f->host_address_used : "",
                        f->port_used && f->port_used != 25 ? arena_printf(a, ":%d", f->port_used) : "");
        if (f->message)
            gstr_printf(&body, "    %s\n", f->message);
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
        write_opts wo = { .headers_only = headers_only };
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

    int dfd = spool_open_data(&ss, b->id, a, err);
    if (dfd < 0)
        return NULL;
    msgbuild mb;
    mb_init(&mb, b, dfd, a, 0);
    /* the headers are already on b: feed only the body lines */
    mb.in_headers = false;
    const char *p = body.s, *end = body.s + body.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
        mb_line(&mb, p, k);
        p += k + (nl ? 1 : 0);
    }
    if (mb_finish(&mb) != ST_OK) {
        *err = "cannot write bounce data file";
        spool_abandon(&ss, b->id, dfd);
        return NULL;
    }
    gettimeofday(&tv, NULL);
    b->complete_sec = tv.tv_sec;
    b->complete_usec = tv.tv_usec;
    if (spool_commit(&ss, b, dfd, a, err) != ST_OK) {
        spool_abandon(&ss, b->id, dfd);
        return NULL;
    }
    close(dfd);
    log_write(LOG_MAIN, "%s <= <> R=%s U=%s P=local S=%llu", b->id, orig->id, b->login, mb.size);
    if (kind == DSN_FAILED)
        log_write(LOG_MAIN, "%s Error message sent to %s", orig->id, to);
    else if (kind == DSN_DELAYED)
        log_write(LOG_MAIN, "%s Warning message sent to %s", orig->id, to);
    else
        log_write(LOG_MAIN, "%s DSN: success message sent to %s", orig->id, to);
    return arena_strdup(a, b->id);
}
