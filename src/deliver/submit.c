/* submit.c: queueing a message that delivery itself makes (bounces,
 * delay warnings, DSN success notices, autoreply messages): a new spool
 * message from header lines and a body, logged with "<=" like any other
 * arrival.  The caller starts its delivery. */
#include "deliver/submit.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "message/msgbuild.h"
#include "smtp/reclog.h"
#include "core/state.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

/* Split header text into fields (a line and its continuation lines) and
 * add each to m. */
static void add_headers(spool_msg *m, const char *text, arena *a)
{
    const char *p = text;
    while (p && *p) {
        const char *e = p;
        for (;;) {
            const char *nl = strchr(e, '\n');
            if (!nl) {
                e += strlen(e);
                break;
            }
            e = nl + 1;
            if (*e != ' ' && *e != '\t')
                break;
        }
        if (e > p && strchr(p, ':') && strchr(p, ':') < e) {
            char *h = arena_strndup(a, p, (size_t)(e - p));
            size_t n = (size_t)(e - p);
            if (h[n - 1] != '\n')
                h = arena_printf(a, "%s\n", h), n++;
            spool_add_header(m, a, spool_header_type(h), h, n);
        }
        p = e;
    }
}

static bool has_header(const spool_msg *m, const char *name)
{
    size_t n = strlen(name);
    for (const spool_header *h = m->headers; h; h = h->next)
        if (h->type != '*' && h->len > n && !strncasecmp(h->text, name, n) && h->text[n] == ':')
            return true;
    return false;
}

const char *deliver_submit_local(const submit_msg *s, arena *a, char **err)
{
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    const char *host = cfg_str(MO_primary_hostname);
    if (s->nrcpt <= 0) {
        *err = "no recipients";
        return NULL;
    }
    spool_msg *b = arena_calloc(a, sizeof *b);
    spool_new_id(b->id);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    b->received = tv.tv_sec;
    b->received_usec = tv.tv_usec;
    b->login = s->login ? s->login : cfg_str(MO_exim_user) ? cfg_str(MO_exim_user) : "postern";
    b->uid = (long)geteuid();
    b->gid = (long)getegid();
    b->sender = s->sender ? s->sender : "";
    b->local = true;
    b->localerror = true;
    b->received_protocol = "local";
    b->deliver_firsttime = true;
    for (int i = 0; i < s->nrcpt; i++) {
        spool_rcpt r = { s->rcpts[i], NULL, 0, NULL, -1 };
        spool_add_rcpt(b, a, &r);
    }
    char date[TIMEFMT_DATE_LEN];
    timefmt_rfc5322(b->received, date, sizeof date);
    /* the Received: header as for any local submission (received_header_text),
     * with the variables of this new message, not of the one being delivered */
    proc_state saved = ps;
    ps.message_id = b->id;
    ps.sender_address = b->sender;
    ps.received_protocol = "local";
    ps.sender_helo_name = ps.sender_host_address = ps.sender_host_name = NULL;
    received_header_add(b, NULL, b->login, b->sender);
    ps.message_id = saved.message_id;
    ps.sender_address = saved.sender_address;
    ps.received_protocol = saved.received_protocol;
    ps.sender_helo_name = saved.sender_helo_name;
    ps.sender_host_address = saved.sender_host_address;
    ps.sender_host_name = saved.sender_host_name;
    add_headers(b, s->headers, a);
    if (!has_header(b, "Message-Id")) {
        const char *h = arena_printf(a, "Message-Id: <E%s@%s>\n", b->id, host);
        spool_add_header(b, a, spool_header_type(h), h, strlen(h));
    }
    if (!has_header(b, "Date")) {
        const char *h = arena_printf(a, "Date: %s\n", date);
        spool_add_header(b, a, spool_header_type(h), h, strlen(h));
    }

    int dfd = spool_open_data(&ss, b->id, a, err);
    if (dfd < 0)
        return NULL;
    msgbuild mb;
    mb_init(&mb, b, dfd, a, 0);
    mb.in_headers = false;      /* the headers are on b already */
    const char *p = s->body ? s->body : "", *end = p + strlen(p);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
        mb_line(&mb, p, k);
        p += k + (nl ? 1 : 0);
    }
    if (mb_finish(&mb) != ST_OK) {
        *err = "cannot write the data file";
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
    log_write(LOG_MAIN, "%s <= %s%s%s U=%s P=local S=%llu", b->id, *b->sender ? b->sender : "<>",
              s->ref_id ? " R=" : "", s->ref_id ? s->ref_id : "", b->login, mb.size);
    return arena_strdup(a, b->id);
}
