/* session.c: the SMTP server dialogue.  Commands are read one line at a
 * time with a timeout; replies are buffered and flushed when the server
 * needs more input (PIPELINING).  Only CRLF.CRLF ends DATA: a bare LF or
 * CR never ends a message, and from hosts not listed in
 * smtp_accept_bare_newline_hosts a message containing one is refused. */
#include "smtp/session.h"
#include "acl/acl.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "message/fixups.h"
#include "message/msgbuild.h"
#include "message/rewrite.h"
#include "smtp/local.h"
#include "smtp/reclog.h"
#include "smtp/io.h"
#include "deliver/deliver.h"
#include "dns/host.h"
#include "smtp/smtp_cmd.h"
#include "spool/spool.h"

#include "core/timefmt.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <pwd.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SMTP_CMD_MAX 16384        /* longest command line accepted */
#define SMTP_DATA_LINE_MAX 998    /* RFC 5322 line limit, excluding CRLF */

typedef struct session {
    const smtp_params *p;
    smtp_io io;
    arena *a;                     /* connection arena */
    acl_session acl;
    const char *host;             /* our name in replies */
    const char *peer;             /* "H=(helo) [ip]:port" for logs */
    bool esmtp, helo_seen, pipelining, dsn_advertised, chunking;
    int unknown_count, synprot_count, nonmail_count;
    /* transaction */
    bool mail_given;
    const char *sender;
    unsigned long long declared_size;
    int body_8bit;
    int dsn_ret;
    const char *dsn_envid;
    spool_msg *msg;
    int rcpt_count, rcpt_rejected;
    bool bdat_active;
    int dfd;
    msgbuild mb;
    gstr bdat_line;
    bool bdat_cr;
    bool bare_newline;
    int messages;
    bool msgid_created;
    const char *local_login;
    time_t started;
} session;

static const char *opt_expand(enum main_opt o, const char *dflt, arena *a)
{
    const char *v = cfg_str(o);
    if (!v)
        v = dflt;
    if (!v)
        return NULL;
    char *out, *err;
    if (expand_string(v, a, &out, &err) != ST_OK) {
        log_write(LOG_MAIN | LOG_PANIC, "expansion of %s failed: %s", main_optdefs[o].name, err ? err : "");
        return NULL;
    }
    return out;
}

/* -bh prints its reasoning on stderr, as Exim does. */
static void bh_note(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bh_note(session *s, const char *fmt, ...)
{
    if (s->p->mode != SMTP_BH)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs(">>> ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool host_in(session *s, enum main_opt o, const char *dflt)
{
    const char *list = cfg_str(o);
    if (!list)
        list = dflt;
    if (!list || !*list) {
        bh_note(s, "host in %s? no (option unset)", main_optdefs[o].name);
        return false;
    }
    const char *ip = s->p->remote_ip ? s->p->remote_ip : "";
    char *err = NULL;
    const char *val = NULL;
    status st = match_ip(ip, list, ps.scratch, &val, &err);
    if (st == ST_DEFER || st == ST_ERROR)
        log_write(LOG_MAIN, "%s: host list check deferred or failed for %s: %s",
                  main_optdefs[o].name, ip, err ? err : "");
    if (st == ST_OK)
        bh_note(s, "host in %s? yes (matched \"%s\")", main_optdefs[o].name, val ? val : list);
    else
        bh_note(s, "host in %s? no (end of list)", main_optdefs[o].name);
    return st == ST_OK;
}

/* ---- replies ------------------------------------------------------------ */

static void reply(session *s, const char *code, const char *text)
{
    /* multi-line texts: "code-line" for all but the last */
    const char *p = text;
    bool multi = !s->acl.controls.no_multiline_responses;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (nl && multi) {
            io_printf(&s->io, "%s-%.*s\r\n", code, (int)(nl - p), p);
            p = nl + 1;
            continue;
        }
        io_printf(&s->io, "%s %s\r\n", code, nl ? arena_strndup(ps.scratch, p, (size_t)(nl - p)) : p);
        break;
    }
}

static void replyf(session *s, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void replyf(session *s, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t = arena_vprintf(ps.scratch, fmt, ap);
    va_end(ap);
    reply(s, code, t);
}

static void set_peer(session *s)
{
    gstr g;
    gstr_init(&g, s->a, 64);
    gstr_cat(&g, "H=");
    if (ps.sender_host_name && *ps.sender_host_name)
        gstr_printf(&g, "%s ", ps.sender_host_name);
    if (ps.sender_helo_name)
        gstr_printf(&g, "(%s) ", ps.sender_helo_name);
    if (s->p->remote_ip)
        gstr_printf(&g, "[%s]", s->p->remote_ip);
    else
        gstr_cat(&g, "local");
    s->peer = g.s;
}

/* $sender_host_name: PTR with forward confirmation, once per connection
 * (host_lookup at connect, helo_lookup_domains at HELO) */
static void lookup_host_name(session *s)
{
    char *derr = NULL;
    dns_resolver *res = dns_process_resolver(&derr, ps.conn);
    if (!res) {
        log_write(LOG_MAIN, "host name lookup for %s: %s", s->p->remote_ip, derr ? derr : "no resolver");
        return;
    }
    dns_iface di = dns_iface_unbound(res);
    host_name_result hr;
    memset(&hr, 0, sizeof hr);
    status hs = host_name_lookup(&di, s->p->remote_ip, ps.conn, &hr);
    ps.host_lookup_done = true;
    if (hs == ST_OK) {
        ps.sender_host_name = hr.name;
    } else {
        ps.host_lookup_failed = hs == ST_FAIL;
        if (hs == ST_FAIL && logsel_on(&cfg->logsel, LS_HOST_LOOKUP_FAILED))
            log_write(LOG_MAIN, "no host name found for IP address %s", s->p->remote_ip);
    }
    set_peer(s);
}

/* The rejectlog gets the envelope and the headers of a message refused
 * after DATA, as Exim writes them. */
static void reject_headers(session *s)
{
    gstr g;
    gstr_init(&g, ps.scratch, 1024);
    gstr_printf(&g, "Envelope-from: <%s>\n", s->sender ? s->sender : "");
    for (int i = 0; i < s->msg->n_rcpt; i++)
        gstr_printf(&g, "Envelope-to: <%s>\n", s->msg->rcpt[i].address);
    for (const spool_header *h = s->msg->headers; h; h = h->next)
        gstr_printf(&g, "%c %.*s", h->type, (int)h->len, h->text);
    if (g.len && g.s[g.len - 1] == '\n')
        gstr_truncate(&g, g.len - 1);
    log_write(LOG_REJECT | LOG_NOMAIN, "%s", g.s);
}

/* An ACL message longer than 75 characters is broken into lines for the
 * reply, as Exim does: each line is cut at a space within its first 75
 * characters (but after its 35th), preferring the last space that follows
 * a colon, else the last space; failing that, at the next space. */
static const char *split_long(const char *msg, arena *a)
{
    if (!msg || strlen(msg) <= 75)
        return msg;
    char *m = arena_strdup(a, msg);
    char *line = m;
    for (;;) {
        char *p = line;
        int n = 0;
        while (n < 75 && *p && *p != '\n')
            p++, n++;
        if (!*p)
            break;
        if (*p == '\n') {
            line = p + 1;
            continue;
        }
        char *cut = NULL;
        for (char *t = p; t > line + 35; t--)
            if (*t == ' ') {
                if (t[-1] == ':') {
                    cut = t;
                    break;
                }
                if (!cut)
                    cut = t;
            }
        if (!cut)
            for (char *t = p + 1; *t; t++)
                if (*t == ' ' || *t == '\n') {
                    cut = t;
                    break;
                }
        if (!cut)
            break;
        *cut = '\n';
        line = cut + 1;
    }
    return m;
}

/* Where a rejection is logged: main+reject unless log_reject_target said otherwise. */
static int reject_logs(const acl_result *r)
{
    return r->log_reject_target_set ? r->log_reject_target : (LOG_MAIN | LOG_REJECT);
}

/* An ACL verdict as an SMTP reply.  Returns true when accepted. */
static bool acl_reply(session *s, acl_where where, enum main_opt opt, const char *what,
                      const char *ok_code, const char *ok_text, bool *drop)
{
    acl_result r;
    memset(&r, 0, sizeof r);
    *drop = false;
    const char *aclname = cfg_str(opt);
    if (aclname)
        bh_note(s, "using ACL \"%s\"", aclname);
    status st = acl_check(where, aclname, &s->acl, ps.scratch, &r);
    if (aclname)
        bh_note(s, "end of ACL \"%s\": %s", aclname,
                st == ST_OK ? "ACCEPT" : st == ST_DISCARD ? "DISCARD" : st == ST_FAIL ? "DENY" : "DEFER");
    if (st == ST_OK || st == ST_DISCARD) {
        if (ok_code)
            reply(s, ok_code, r.user_message && where != ACL_WHERE_DATA ? r.user_message : ok_text);
        return true;
    }
    const char *msg = split_long(r.user_message, ps.scratch);
    const char *why = r.log_message ? r.log_message : r.user_message;
    int logs = reject_logs(&r);
    const char *who = s->peer;
    if (where == ACL_WHERE_RCPT || where == ACL_WHERE_DATA)
        who = arena_printf(ps.scratch, "%s F=<%s>", s->peer, s->sender ? s->sender : "");
    if (where == ACL_WHERE_DATA && s->msg)
        who = arena_printf(ps.scratch, "%s %s", s->msg->id, who);   /* the id leads "after DATA" lines */
    /* A message may start with its own reply code (and enhanced code):
     * used when its class matches the verdict, as Exim does. */
    bool temp = st == ST_DEFER || st == ST_ERROR;
    const char *code = temp ? "451" : where == ACL_WHERE_VRFY ? "252" : where == ACL_WHERE_CONNECT ? "554" : "550";
    if (msg && strlen(msg) > 4 && isdigit((unsigned char)msg[0]) && isdigit((unsigned char)msg[1]) &&
        isdigit((unsigned char)msg[2]) && msg[3] == ' ' && msg[0] == code[0]) {
        code = arena_strndup(ps.scratch, msg, 3);
        msg += 4;
    }
    if (temp) {
        if (st == ST_ERROR)
            log_write(LOG_MAIN | LOG_PANIC, "%s %s: ACL error: %s", s->peer, what, r.error ? r.error : "unknown");
        reply(s, code, msg && st == ST_DEFER ? msg : "Temporary local problem - please try later");
        if (logs)
            log_write(logs, "%s temporarily rejected %s%s%s", who, what, why ? ": " : "", why ? why : "");
        return false;
    }
    reply(s, code, msg ? msg : "Administrative prohibition");
    if (logs)
        log_write(logs, "%s rejected %s%s%s", who, what, why ? ": " : "", why ? why : "");
    if ((logs & LOG_REJECT) && where == ACL_WHERE_DATA && s->msg && logsel_on(&cfg->logsel, LS_REJECTED_HEADER))
        reject_headers(s);
    *drop = r.drop || where == ACL_WHERE_CONNECT;
    return false;
}

static void flush_for_acl(void *ctx)
{
    io_flush(ctx);
}

/* ---- transaction -------------------------------------------------------- */

static void reset_transaction(session *s)
{
    if (s->msg && s->dfd >= 0) {
        spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
        spool_abandon(&ss, s->msg->id, s->dfd);
    }
    s->dfd = -1;
    s->msg = NULL;
    s->mail_given = false;
    s->sender = NULL;
    s->declared_size = 0;
    s->dsn_ret = 0;
    s->dsn_envid = NULL;
    s->rcpt_count = s->rcpt_rejected = 0;
    s->bdat_active = false;
    s->bare_newline = false;
    ps.sender_address = NULL;
    ps.recipients = NULL;
    ps.recipients_count = 0;
    ps.local_part = ps.domain = NULL;
    ps.message_id = NULL;
    ps.message_size = -1;
    ps.msg_headers = NULL;
    acl_session_message_reset(&s->acl);
    expand_reset_message();
    state_message_done();
}

static spool_msg *new_message(session *s)
{
    spool_msg *m = arena_calloc(ps.msg, sizeof *m);
    spool_new_id(m->id);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    m->received = tv.tv_sec;
    m->received_usec = tv.tv_usec;
    m->login = cfg_str(MO_exim_user) ? cfg_str(MO_exim_user) : "postern";
    m->uid = (long)getuid();
    m->gid = (long)getgid();
    m->sender = s->sender;
    m->helo_name = ps.sender_helo_name;
    m->host_address = ps.sender_host_address;
    m->host_port = ps.sender_host_port;
    m->interface_address = ps.interface_address;
    m->interface_port = ps.interface_port;
    m->received_protocol = ps.received_protocol;
    m->deliver_firsttime = true;
    m->dsn_ret = s->dsn_ret;
    m->dsn_envid = s->dsn_envid;
    if (!s->p->remote_ip)
        m->local = true;
    ps.message_id = m->id;
    return m;
}

/* May header addresses from this client be qualified?  (Exim decides
 * with sender_/recipient_unqualified_hosts; local input always may.) */
static bool unqualified_ok(enum main_opt o)
{
    const char *list = cfg_str(o);
    char *err = NULL;
    return list && *list && match_ip(ps.sender_host_address ? ps.sender_host_address : "", list,
                                     ps.scratch, NULL, &err) == ST_OK;
}

/* ACL add_header requests, after the data ACL. */
static void apply_acl_headers(session *s, spool_msg *m)
{
    for (acl_header *h = s->acl.headers; h; h = h->next) {
        if (h->where == ACL_HDR_REMOVE)
            continue;
        size_t n = strlen(h->text);
        char *t = arena_alloc(ps.msg, n + 2);
        memcpy(t, h->text, n);
        if (!n || t[n - 1] != '\n')
            t[n++] = '\n';
        t[n] = '\0';
        if (h->where == ACL_HDR_APPEND) {
            spool_add_header(m, ps.msg, spool_header_type(t), t, n);
        } else {
            spool_header *nh = arena_calloc(ps.msg, sizeof *nh);
            nh->type = spool_header_type(t);
            nh->text = t;
            nh->len = n;
            spool_header **pp = &m->headers;
            if (h->where == ACL_HDR_AFTER_RECEIVED)
                while (*pp && (*pp)->type == 'P')
                    pp = &(*pp)->next;
            nh->next = *pp;
            *pp = nh;
        }
    }
}

/* The message has been read: run the data ACL, commit, reply. */
static bool finish_message(session *s)
{
    spool_msg *m = s->msg;
    status st = mb_finish(&s->mb);
    ps.message_size = (long)s->mb.size;
    ps.body_linecount = s->mb.body_lines;
    if (s->mb.too_big) {
        replyf(s, "552", "Message size exceeds maximum permitted");
        if (logsel_on(&cfg->logsel, LS_SIZE_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: message too big: read=%llu max=%lld",
                  s->peer, s->sender, s->mb.size, cfg_int(MO_message_size_limit));
        reset_transaction(s);
        return true;
    }
    if (s->mb.header_too_big) {
        reply(s, "552", "Message header too large");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: header too large", s->peer, s->sender);
        reset_transaction(s);
        return true;
    }
    if (s->bare_newline) {
        reply(s, "550", "5.5.2 Message refused: bare LF or CR line ending (use CRLF)");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: bare newline in message", s->peer, s->sender);
        reset_transaction(s);
        return true;
    }
    if (st != ST_OK) {
        reply(s, "451", "Temporary local problem - please try later");
        log_write(LOG_MAIN | LOG_PANIC, "%s F=<%s> temporarily rejected: cannot write spool data file", s->peer, s->sender);
        reset_transaction(s);
        return true;
    }
    {
        /* local (-bs) and submission-mode messages get Exim's fix-ups;
         * every message the rewrite rules, before the data ACL runs */
        struct passwd *pw = s->p->remote_ip ? NULL : getpwuid(getuid());
        fixup_ctx fx = {
            .local = s->p->remote_ip == NULL, .submission = s->acl.controls.submission,
            .suppress = s->acl.controls.suppress_local_fixups,
            .trusted = s->p->remote_ip ? true : local_caller_trusted(getuid(), getgid(), pw ? pw->pw_name : NULL),
            .login = pw ? arena_strdup(ps.msg, pw->pw_name) : NULL,
            .qualify_domain = cfg_str(MO_qualify_domain), .primary_hostname = cfg_str(MO_primary_hostname),
            .local_from_check = cfg_bool(MO_local_from_check),
            .local_sender_retain = cfg_bool(MO_local_sender_retain),
            .submission_domain = s->acl.controls.submission_domain,
            .authenticated_id = ps.authenticated_id,
            .rewrite = true,
            .unqualified_sender = !s->p->remote_ip || unqualified_ok(MO_sender_unqualified_hosts),
            .unqualified_recipient = !s->p->remote_ip || unqualified_ok(MO_recipient_unqualified_hosts),
        };
        s->msgid_created = !mb_find_header(m, "Message-ID");
        msg_fixups(m, &fx, ps.msg);
        s->msgid_created = s->msgid_created && mb_find_header(m, "Message-ID");
        s->local_login = fx.login;
        s->sender = ps.sender_address = m->sender;
        for (int i = 0; i < m->n_rcpt && i < ps.recipients_count; i++)
            ps.recipients[i] = m->rcpt[i].address;
    }
    received_header_add(m, s->p->remote_ip, NULL, s->sender);
    ps.msg_headers = m->headers;
    bool drop = false;
    if (!acl_reply(s, ACL_WHERE_DATA, MO_acl_smtp_data, "after DATA", NULL, NULL, &drop)) {
        reset_transaction(s);
        return !drop;
    }
    apply_acl_headers(s, m);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    m->complete_sec = tv.tv_sec;
    m->complete_usec = tv.tv_usec;
    if (s->acl.controls.freeze)
        m->frozen = tv.tv_sec;
    if (s->p->mode == SMTP_BH) {
        replyf(s, "250", "OK id=%s", m->id);
        io_printf(&s->io, "\r\n**** SMTP testing: that is not a real message id!\r\n\r\n");
        reset_transaction(s);
        return true;
    }
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    spool_keep_acl_vars(m, ps.acl_c, ps.acl_m, ps.msg);
    char *err = NULL;
    if (spool_commit(&ss, m, s->dfd, ps.scratch, &err) != ST_OK) {
        reply(s, "451", "Temporary local problem - please try later");
        log_write(LOG_MAIN | LOG_PANIC, "%s: spool commit failed: %s", m->id, err ? err : "");
        reset_transaction(s);
        return true;
    }
    close(s->dfd);
    s->dfd = -1;
    reclog rl = {
        .m = m, .host = s->p->remote_ip ? s->peer : NULL, .host_port = s->p->remote_port,
        .iface = s->p->local_ip, .iface_port = s->p->local_port,
        .user = s->p->remote_ip ? NULL : s->local_login, .protocol = ps.received_protocol,
        .size = s->mb.size, .msgid_created = s->msgid_created,
        .receive_secs = (double)(tv.tv_sec - m->received) + (tv.tv_usec - m->received_usec) / 1e6,
    };
    log_received(&rl);
    if (cfg_bool(MO_message_logs))
        spool_msglog(&ss, m->id, arena_printf(ps.scratch, "Received from %s %s P=%s S=%llu",
                                              *m->sender ? m->sender : "<>", s->peer,
                                              ps.received_protocol, s->mb.size));
    replyf(s, "250", "OK id=%s", m->id);
    s->messages++;
    /* delivery: the daemon starts it (it keeps the privilege local
     * deliveries need); a -bs caller starts it here */
    bool queue = s->acl.controls.queue_only || cfg_bool(MO_queue_only) || m->frozen;
    if (!queue) {
        if (ps.deliver_notify_fd >= 0) {
            char line[SPOOL_ID_LEN + 2];
            int n = snprintf(line, sizeof line, "%s\n", m->id);
            if (write(ps.deliver_notify_fd, line, (size_t)n) != n)
                log_write(LOG_MAIN, "%s: could not ask the daemon to deliver (it will wait for a queue run)", m->id);
        } else if (s->p->mode == SMTP_BS) {
            io_flush(&s->io);
            deliver_after_receive(m->id, false, false);
        }
    }
    s->msg = NULL;          /* committed: reset must not remove it */
    reset_transaction(s);
    return true;
}

static bool start_message(session *s)
{
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    s->msg = new_message(s);
    for (int i = 0; i < ps.recipients_count; i++)
        ; /* recipients were added to s->msg at RCPT time when it existed */
    char *err = NULL;
    if (s->p->mode == SMTP_BH) {
        s->dfd = open("/dev/null", O_WRONLY | O_CLOEXEC);   /* nothing is queued */
    } else {
        s->dfd = spool_open_data(&ss, s->msg->id, ps.scratch, &err);
        if (s->dfd < 0) {
            log_write(LOG_MAIN | LOG_PANIC, "%s", err ? err : "cannot open spool file");
            reply(s, "451", "Temporary local problem - please try later");
            s->msg = NULL;
            return false;
        }
    }
    long long limit = 0;
    const char *ls = cfg_str(MO_message_size_limit);
    if (ls) {
        char *out, *e;
        if (expand_string(ls, ps.scratch, &out, &e) == ST_OK)
            opt_parse_int(out, &limit);
    }
    mb_init(&s->mb, s->msg, s->dfd, ps.msg, (unsigned long long)limit);
    return true;
}

/* ---- DATA --------------------------------------------------------------- */

/* Read the message after 354: lines end with CRLF; only "." alone on a
 * CRLF-terminated line ends it.  Returns false when the connection is gone. */
static bool read_data(session *s, bool accept_bare)
{
    gstr line;
    gstr_init(&line, ps.msg, 1024);
    /* A "." line ends the data only when the line before it ended in a
     * real CRLF (the CRLF of the DATA command counts): CRLF "." CRLF. */
    bool after_crlf = true;
    for (;;) {
        /* collect one line up to CRLF; a bare LF or CR inside is data */
        bool line_after_crlf = after_crlf;
        gstr_reset(&line);
        bool got_crlf = false;
        for (;;) {
            int c = io_getc(&s->io);
            if (c < 0) {
                if (c == IO_TIMEOUT) {
                    replyf(s, "421", "%s SMTP incoming data timeout - closing connection.", s->host);
                    log_write(LOG_MAIN, "SMTP data timeout (message abandoned) on connection from %s F=<%s>",
                              s->peer, s->sender);
                } else {
                    if (logsel_on(&cfg->logsel, LS_LOST_INCOMING_CONNECTION))
                        log_write(LOG_MAIN, "SMTP connection from %s lost while reading message data", s->peer);
                }
                io_flush(&s->io);
                return false;
            }
            if (c == '\r') {
                int d = io_getc(&s->io);
                if (d == '\n') {
                    got_crlf = true;
                    break;
                }
                if (d >= 0)
                    s->io.rpos--;        /* look at it again on the next round */
                if (accept_bare) {
                    /* a bare CR is a line break, normalized; never an end of data */
                    mb_line(&s->mb, line.s, line.len);
                    gstr_reset(&line);
                    line_after_crlf = false;
                } else {
                    s->bare_newline = true;
                    gstr_catc(&line, '\r');
                }
                continue;
            }
            if (c == '\n') {
                if (!accept_bare) {
                    s->bare_newline = true;
                    gstr_catc(&line, '\n');   /* kept as data in the refused message */
                    continue;
                }
                /* normalized to a line break; never an end of data */
                mb_line(&s->mb, line.s, line.len);
                gstr_reset(&line);
                line_after_crlf = false;
                continue;
            }
            gstr_catc(&line, (char)c);
            if (line.len > 1024 * 1024) {
                /* absurd line: keep reading, but count it as too long */
                mb_line(&s->mb, line.s, line.len);
                gstr_reset(&line);
            }
        }
        after_crlf = got_crlf;
        if (got_crlf && line_after_crlf && line.len == 1 && line.s[0] == '.')
            break;
        const char *p = line.s;
        size_t n = line.len;
        if (n && p[0] == '.') {
            p++;
            n--;
        }
        mb_line(&s->mb, p, n);
    }
    return true;
}

/* ---- BDAT --------------------------------------------------------------- */

static void bdat_sink(void *ctx, const unsigned char *p, size_t n)
{
    session *s = ctx;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (s->bdat_cr) {
            s->bdat_cr = false;
            if (c == '\n') {
                mb_line(&s->mb, s->bdat_line.s, s->bdat_line.len);
                gstr_reset(&s->bdat_line);
                continue;
            }
            s->bare_newline = true;
            gstr_catc(&s->bdat_line, '\r');
        }
        if (c == '\r') {
            s->bdat_cr = true;
            continue;
        }
        if (c == '\n')
            s->bare_newline = true;
        gstr_catc(&s->bdat_line, (char)c);
    }
}

/* ---- command parsing helpers ------------------------------------------- */

static bool arg_is(const char *cmd, const char *verb, const char **rest)
{
    size_t n = strlen(verb);
    if (strncasecmp(cmd, verb, n) != 0)
        return false;
    if (cmd[n] && cmd[n] != ' ' && cmd[n] != '\t')
        return false;
    const char *r = cmd + n;
    while (*r == ' ' || *r == '\t')
        r++;
    *rest = r;
    return true;
}

static bool synprot(session *s, const char *code, const char *msg)
{
    long long max = cfg_int(MO_smtp_max_synprot_errors);
    if (max > 0 && ++s->synprot_count > max) {
        /* the error itself, then the reason for closing, under one code */
        replyf(s, code, "%s\nToo many syntax or protocol errors", msg);
        log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many syntax or protocol errors "
                  "(last command was \"%.100s\")", s->peer, ps.smtp_command ? ps.smtp_command : "");
        return false;
    }
    reply(s, code, msg);
    return true;
}

static void ehlo_reply(session *s, bool ehlo)
{
    const char *greet = ps.sender_helo_name;
    if (!ehlo) {
        replyf(s, "250", "%s Hello %s%s%s%s", s->host, greet, s->p->remote_ip ? " [" : "",
               s->p->remote_ip ? s->p->remote_ip : "", s->p->remote_ip ? "]" : "");
        return;
    }
    gstr g;
    gstr_init(&g, ps.scratch, 256);
    gstr_printf(&g, "%s Hello %s%s%s%s\n", s->host, greet, s->p->remote_ip ? " [" : "",
                s->p->remote_ip ? s->p->remote_ip : "", s->p->remote_ip ? "]" : "");
    long long limit = 0;
    const char *ls = cfg_str(MO_message_size_limit);
    char *out, *err;
    if (ls && expand_string(ls, ps.scratch, &out, &err) == ST_OK)
        opt_parse_int(out, &limit);
    if (limit > 0)
        gstr_printf(&g, "SIZE %lld\n", limit);
    else
        gstr_cat(&g, "SIZE\n");
    if (cfg_bool(MO_accept_8bitmime))
        gstr_cat(&g, "8BITMIME\n");
    s->pipelining = host_in(s, MO_pipelining_advertise_hosts, "*") && !s->acl.controls.no_pipelining;
    if (s->pipelining)
        gstr_cat(&g, "PIPELINING\n");
    s->chunking = host_in(s, MO_chunking_advertise_hosts, "*");
    if (s->chunking)
        gstr_cat(&g, "CHUNKING\n");
    s->dsn_advertised = host_in(s, MO_dsn_advertise_hosts, NULL);
    if (s->dsn_advertised)
        gstr_cat(&g, "DSN\n");
    gstr_cat(&g, "HELP");
    reply(s, "250", g.s);
}

static bool valid_helo(const char *name)
{
    if (!*name)
        return false;
    if (name[0] == '[') {
        size_t n = strlen(name);
        return n > 2 && name[n - 1] == ']';
    }
    const char *extra = cfg_str(MO_helo_allow_chars);
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' &&
            !(extra && strchr(extra, *p)))
            return false;
    return true;
}

/* ---- the command loop --------------------------------------------------- */

int smtp_session(const smtp_params *p)
{
    session S, *s = &S;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->a = ps.conn;
    s->started = time(NULL);
    s->dfd = -1;
    gstr_init(&s->bdat_line, ps.conn, 256);
    long long cmd_timeout = 5 * 60;
    const char *rt = cfg_str(MO_smtp_receive_timeout);
    if (rt) {
        char *out, *err;
        long long t;
        if (expand_string(rt, ps.scratch, &out, &err) == ST_OK && opt_parse_time(out, &t) == ST_OK)
            cmd_timeout = t;
    }
    io_init(&s->io, p->in, p->out, (int)cmd_timeout);
    s->acl.flush = flush_for_acl;
    s->acl.flush_ctx = &s->io;

    ps.sender_host_address = p->remote_ip ? arena_strdup(ps.conn_t, p->remote_ip) : NULL;
    ps.sender_host_port = p->remote_port;
    ps.interface_address = p->local_ip ? arena_strdup(ps.conn, p->local_ip) : NULL;
    ps.interface_port = p->local_port;
    ps.host_checking = p->mode == SMTP_BH;
    ps.message_size = -1;
    const char *active = opt_expand(MO_smtp_active_hostname, NULL, ps.conn);
    s->host = active && *active ? active : cfg_str(MO_primary_hostname);
    ps.smtp_active_hostname = s->host;
    ps.received_protocol = p->remote_ip ? "smtp" : "local-smtp";
    set_peer(s);

    if (p->mode == SMTP_BH)
        fprintf(stderr, "\n**** SMTP testing session as if from host %s\n"
                        "**** but without any ident (RFC 1413) callback.\n"
                        "**** This is not for real!\n\n", p->remote_ip ? p->remote_ip : "(local)");
    bool log_conn = logsel_on(&cfg->logsel, LS_SMTP_CONNECTION) && p->remote_ip;
    if (log_conn)
        log_write(LOG_MAIN, "SMTP connection from [%s]:%d (TCP/IP connection count = %d)",
                  p->remote_ip, p->remote_port, p->connection_count);
    if (p->drop_limit_reached) {
        replyf(s, "421", "%s %s", s->host, p->drop_reason ? p->drop_reason : "Too many concurrent SMTP connections; please try again later.");
        io_flush(&s->io);
        return 1;
    }

    if (p->remote_ip && host_in(s, MO_host_reject_connection, NULL)) {
        reply(s, "554", "SMTP service not available");
        if (logsel_on(&cfg->logsel, LS_CONNECTION_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "refused connection from [%s] (host_reject_connection)", p->remote_ip);
        io_flush(&s->io);
        return 1;
    }
    if (p->remote_ip && host_in(s, MO_host_lookup, NULL))
        lookup_host_name(s);
    bool drop = false;
    /* synchronization is checked on TCP/IP connections only (not -bs/-bh) */
    bool enforce_sync = cfg_bool(MO_smtp_enforce_sync) && p->mode == SMTP_DAEMON;
    /* connect ACL, then the banner */
    if (!acl_reply(s, ACL_WHERE_CONNECT, MO_acl_smtp_connect, "connection", NULL, NULL, &drop)) {
        io_flush(&s->io);
        return 1;
    }
    if (enforce_sync && p->remote_ip && io_input_pending(&s->io)) {
        reply(s, "554", "SMTP synchronization error");
        log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (input sent without waiting for greeting): "
                  "rejected connection from %s", s->peer);
        io_flush(&s->io);
        return 1;
    }
    const char *banner = opt_expand(MO_smtp_banner, NULL, ps.scratch);
    if (!banner) {
        char date[TIMEFMT_DATE_LEN];
        time_t now = time(NULL);
        timefmt_rfc5322(now, date, sizeof date);
        banner = arena_printf(ps.scratch, "%s ESMTP postern %s %s", s->host, POSTERN_VERSION, date);
    }
    reply(s, "220", banner);
    io_flush(&s->io);

    gstr line;
    gstr_init(&line, ps.conn, 512);
    int rc = 0;
    for (;;) {
        arena_reset(ps.scratch);
        bool too_long, bare_lf;
        int r = io_read_line(&s->io, &line, SMTP_CMD_MAX, &too_long, &bare_lf);
        if (r == IO_TIMEOUT) {
            replyf(s, "421", "%s SMTP command timeout - closing connection", s->host);
            log_write(LOG_MAIN, "SMTP command timeout on connection from %s", s->peer);
            rc = 1;
            break;
        }
        if (r < 0) {
            if (s->mail_given || s->rcpt_count)
                log_write(LOG_MAIN, "unexpected disconnection while reading SMTP command from %s", s->peer);
            rc = 1;
            break;
        }
        const char *cmd = line.s;
        const char *arg;
        ps.smtp_command = arena_strdup(ps.scratch, cmd);
        if (too_long) {
            if (!synprot(s, "500", "Command line too long"))
                break;
            continue;
        }
        if (arg_is(cmd, "HELO", &arg) || arg_is(cmd, "EHLO", &arg)) {
            bool ehlo = toupper((unsigned char)cmd[0]) == 'E';
            if (!*arg || !valid_helo(arg)) {
                if (!synprot(s, "501", *arg ? "Syntactically invalid HELO argument(s)" : "HELO/EHLO requires domain address"))
                    break;
                continue;
            }
            reset_transaction(s);
            ps.sender_helo_name = arena_strdup(ps.conn_t, arg);
            ps.received_protocol = p->remote_ip ? (ehlo ? "esmtp" : "smtp") : (ehlo ? "local-esmtp" : "local-smtp");
            set_peer(s);
            /* a client calling itself by our name or address gets its real name looked up */
            if (p->remote_ip && !ps.sender_host_name && !ps.host_lookup_done) {
                const char *hl = cfg_str(MO_helo_lookup_domains);
                char *merr = NULL;
                if (hl && *hl && match_domain(arg, hl, ps.scratch, NULL, &merr) == ST_OK) {
                    bh_note(s, "HELO name %s is in helo_lookup_domains: looking up the host name", arg);
                    lookup_host_name(s);
                }
            }
            /* helo_verify_hosts: the name must match the client (refused
             * otherwise); helo_try_verify_hosts: only $helo_verified */
            bool must = p->remote_ip && host_in(s, MO_helo_verify_hosts, NULL);
            if (p->remote_ip && (must || host_in(s, MO_helo_try_verify_hosts, NULL))) {
                char *derr = NULL;
                dns_resolver *res = dns_process_resolver(&derr, ps.conn);
                bool dnssec = false;
                status hv = ST_FAIL;
                if (res) {
                    dns_iface di = dns_iface_unbound(res);
                    hv = host_verify_helo(&di, arg, p->remote_ip, NULL, ps.conn, &dnssec);
                }
                ps.helo_verified = hv == ST_OK;
                if (must && hv != ST_OK) {
                    /* as Exim: the name given stays in the log identity */
                    bool temp = hv == ST_DEFER;
                    log_write(LOG_MAIN | LOG_REJECT, "%srejected \"%s %s\" from %s", temp ? "temporarily " : "",
                              ehlo ? "EHLO" : "HELO", arg, s->peer + 2);
                    reply(s, temp ? "450" : "550", ehlo ? "EHLO argument does not match calling host"
                                                        : "HELO argument does not match calling host");
                    continue;
                }
            }
            if (!acl_reply(s, ACL_WHERE_HELO, MO_acl_smtp_helo, arena_printf(ps.scratch, "EHLO or HELO %s", arg),
                           NULL, NULL, &drop)) {
                ps.sender_helo_name = NULL;
                if (drop)
                    break;
                continue;
            }
            s->helo_seen = true;
            s->esmtp = ehlo;
            ehlo_reply(s, ehlo);
        } else if (arg_is(cmd, "MAIL", &arg)) {
            if (!s->helo_seen && host_in(s, MO_hosts_require_helo, "*")) {
                log_write(LOG_MAIN | LOG_REJECT, "rejected MAIL from %s: no HELO/EHLO given",
                          s->p->remote_ip ? s->peer + 2 : "local");
                if (!synprot(s, "503", "HELO or EHLO required"))
                    break;
                continue;
            }
            if (s->mail_given) {
                if (!synprot(s, "503", "Sender already given"))
                    break;
                continue;
            }
            dns_process_new_message();
            arg = rewrite_smtp_arg(arg, ps.conn_t);      /* "S" rewrite rules */
            smtp_mail_args ma;
            const char *perr = smtp_parse_mail(arg, s->esmtp, ps.conn_t, &ma);
            if (perr) {
                if (!synprot(s, "501", perr))
                    break;
                continue;
            }
            if (ma.ret || ma.envid) {
                if (!s->dsn_advertised) {
                    if (!synprot(s, "501", "DSN parameters not advertised"))
                        break;
                    continue;
                }
            }
            long long limit = 0;
            const char *ls = cfg_str(MO_message_size_limit);
            char *out, *err;
            if (ls && expand_string(ls, ps.scratch, &out, &err) == ST_OK)
                opt_parse_int(out, &limit);
            if (limit > 0 && ma.size > (unsigned long long)limit) {
                reply(s, "552", "Message size exceeds maximum permitted");
                if (logsel_on(&cfg->logsel, LS_SIZE_REJECT))
                    log_write(LOG_MAIN | LOG_REJECT, "%s rejected MAIL FROM:<%s>: message too big: size=%llu max=%lld",
                          s->peer, ma.address, ma.size, limit);
                continue;
            }
            if (*ma.address && !strchr(ma.address, '@')) {
                ma.address = arena_printf(ps.conn_t, "%s@%s", ma.address, cfg_str(MO_qualify_domain));
            }
            s->sender = ma.address;
            ps.sender_address = ma.address;
            s->dsn_ret = ma.ret;
            s->dsn_envid = ma.envid;
            s->declared_size = ma.size;
            if (!acl_reply(s, ACL_WHERE_MAIL, MO_acl_smtp_mail, arena_printf(ps.scratch, "MAIL <%s>", ma.address),
                           "250", "OK", &drop)) {
                s->sender = NULL;
                ps.sender_address = NULL;
                if (drop)
                    break;
                continue;
            }
            s->mail_given = true;
            s->msg = NULL;
        } else if (arg_is(cmd, "RCPT", &arg)) {
            if (!s->mail_given) {
                if (!synprot(s, "503", "sender not yet given"))
                    break;
                continue;
            }
            arg = rewrite_smtp_arg(arg, ps.msg_t);       /* "S" rewrite rules */
            smtp_rcpt_args ra;
            const char *perr = smtp_parse_rcpt(arg, ps.msg_t, &ra);
            if (perr) {
                if (!synprot(s, "501", perr))
                    break;
                continue;
            }
            if ((ra.notify || ra.orcpt) && !s->dsn_advertised) {
                if (!synprot(s, "501", "DSN parameters not advertised"))
                    break;
                continue;
            }
            if (!strchr(ra.address, '@')) {
                if (p->remote_ip) {
                    replyf(s, "501", "<%s>: recipient address must contain a domain", ra.address);
                    continue;
                }
                ra.address = arena_printf(ps.msg_t, "%s@%s", ra.address, cfg_str(MO_qualify_recipient));
            }
            long long rmax = 0;
            const char *rm = cfg_str(MO_recipients_max);
            char *out, *err;
            if (rm && expand_string(rm, ps.scratch, &out, &err) == ST_OK)
                opt_parse_int(out, &rmax);
            if (rmax > 0 && s->rcpt_count >= rmax) {
                reply(s, "452", "too many recipients");
                continue;
            }
            const char *at = strrchr(ra.address, '@');
            ps.local_part = arena_strndup(ps.msg_t, ra.address, (size_t)(at - ra.address));
            ps.domain = arena_strdup(ps.msg_t, at + 1);
            if (!acl_reply(s, ACL_WHERE_RCPT, MO_acl_smtp_rcpt, arena_printf(ps.scratch, "RCPT <%s>", ra.address),
                           "250", "Accepted", &drop)) {
                s->rcpt_rejected++;
                if (drop)
                    break;
                continue;
            }
            if (!s->msg) {
                s->msg = arena_calloc(ps.msg, sizeof *s->msg);
            }
            spool_rcpt sr = { ra.address, ra.orcpt, ra.notify, NULL, -1 };
            spool_add_rcpt(s->msg, ps.msg, &sr);
            const char **nr = arena_alloc(ps.msg, sizeof *nr * (size_t)(s->rcpt_count + 1));
            if (s->rcpt_count)
                memcpy(nr, ps.recipients, sizeof *nr * (size_t)s->rcpt_count);
            nr[s->rcpt_count++] = ra.address;
            ps.recipients = nr;
            ps.recipients_count = s->rcpt_count;
        } else if (arg_is(cmd, "DATA", &arg) || arg_is(cmd, "BDAT", &arg)) {
            bool bdat = toupper((unsigned char)cmd[0]) == 'B';
            unsigned long long chunk = 0;
            bool last = false;
            if (bdat) {
                char *e;
                chunk = strtoull(arg, &e, 10);
                while (*e == ' ')
                    e++;
                if (e == arg || (*e && strcasecmp(e, "LAST") != 0)) {
                    if (!synprot(s, "501", "BDAT requires a size and optionally LAST"))
                        break;
                    continue;
                }
                last = *e != '\0';
                if (!s->chunking) {
                    /* not advertised: consume the chunk and refuse */
                    io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
                    if (!synprot(s, "503", "BDAT command used when CHUNKING not advertised"))
                        break;
                    continue;
                }
            } else if (*arg) {
                if (!synprot(s, "501", "DATA must have no arguments"))
                    break;
                continue;
            }
            if (!s->bdat_active && (!s->mail_given || s->rcpt_count == 0)) {
                if (bdat)
                    io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
                if (!synprot(s, "503", s->mail_given ? "valid RCPT command must precede DATA" : "MAIL command must precede DATA"))
                    break;
                continue;
            }
            if (!s->bdat_active) {
                /* first DATA/BDAT: predata ACL, spool file */
                spool_msg *pre = s->msg;
                if (!acl_reply(s, ACL_WHERE_PREDATA, MO_acl_smtp_predata, "DATA", NULL, NULL, &drop)) {
                    if (bdat)
                        io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
                    reset_transaction(s);
                    if (drop)
                        break;
                    continue;
                }
                if (!start_message(s)) {
                    if (bdat)
                        io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
                    reset_transaction(s);
                    continue;
                }
                for (int i = 0; pre && i < pre->n_rcpt; i++)
                    spool_add_rcpt(s->msg, ps.msg, &pre->rcpt[i]);
                if (bdat) {
                    s->bdat_active = true;
                    s->bdat_cr = false;
                    gstr_reset(&s->bdat_line);
                    ps.received_protocol = p->remote_ip ? "esmtp" : "local-esmtp";
                }
            }
            if (!bdat) {
                reply(s, "354", "Enter message, ending with \".\" on a line by itself");
                io_flush(&s->io);
                bool accept_bare = host_in(s, MO_smtp_accept_bare_newline_hosts, NULL);
                if (!read_data(s, accept_bare)) {
                    reset_transaction(s);
                    rc = 1;
                    break;
                }
                if (!finish_message(s))
                    break;
                continue;
            }
            int rr = io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
            if (rr < 0) {
                log_write(LOG_MAIN, "SMTP connection from %s lost while reading BDAT data", s->peer);
                reset_transaction(s);
                rc = 1;
                break;
            }
            if (!last) {
                replyf(s, "250", "%llu byte chunk received", chunk);
                continue;
            }
            if (s->bdat_line.len || s->bdat_cr) {
                /* the last line had no CRLF: keep it as data */
                if (s->bdat_cr)
                    gstr_catc(&s->bdat_line, '\r');
                mb_line(&s->mb, s->bdat_line.s, s->bdat_line.len);
                gstr_reset(&s->bdat_line);
            }
            s->bdat_active = false;
            if (!finish_message(s))
                break;
        } else if (arg_is(cmd, "RSET", &arg)) {
            reset_transaction(s);
            reply(s, "250", "Reset OK");
        } else if (arg_is(cmd, "NOOP", &arg)) {
            reply(s, "250", "OK");
        } else if (arg_is(cmd, "QUIT", &arg)) {
            acl_result r;
            memset(&r, 0, sizeof r);
            acl_check(ACL_WHERE_QUIT, cfg_str(MO_acl_smtp_quit), &s->acl, ps.scratch, &r);
            replyf(s, "221", "%s closing connection", s->host);
            if (log_conn)
                log_write(LOG_MAIN, "SMTP connection from %s closed by QUIT", s->peer);
            break;
        } else if (arg_is(cmd, "VRFY", &arg)) {
            if (!acl_reply(s, ACL_WHERE_VRFY, MO_acl_smtp_vrfy, arena_printf(ps.scratch, "VRFY %s", arg),
                           "252", "Administrative prohibition", &drop) && drop)
                break;
        } else if (arg_is(cmd, "EXPN", &arg)) {
            if (!acl_reply(s, ACL_WHERE_EXPN, MO_acl_smtp_expn, arena_printf(ps.scratch, "EXPN %s", arg),
                           "550", "Administrative prohibition", &drop) && drop)
                break;
        } else if (arg_is(cmd, "HELP", &arg)) {
            reply(s, "214", "Commands supported:\nHELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP");
        } else {
            long long max = cfg_int(MO_smtp_max_unknown_commands);
            if (max > 0 && ++s->unknown_count > max) {
                reply(s, "500", "Too many unrecognized commands");
                log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many unrecognized commands "
                          "(last was \"%.100s\")", s->peer, cmd);
                rc = 1;
                break;
            }
            reply(s, "500", "unrecognized command");
        }
        /* Synchronization: a command that may not be pipelined must not be
         * followed by input before its reply. */
        if (enforce_sync && !s->acl.controls.no_enforce_sync && p->remote_ip && s->io.rpos < s->io.rlen) {
            bool pipelineable = s->pipelining &&
                (arg_is(cmd, "MAIL", &arg) || arg_is(cmd, "RCPT", &arg) || arg_is(cmd, "RSET", &arg) ||
                 arg_is(cmd, "NOOP", &arg) || arg_is(cmd, "BDAT", &arg));
            if (!pipelineable && !arg_is(cmd, "DATA", &arg)) {
                reply(s, "554", "SMTP synchronization error");
                log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (next input sent too soon: "
                          "pipelining was%s advertised): rejected \"%.100s\" %s", s->pipelining ? "" : " not", cmd, s->peer);
                rc = 1;
                break;
            }
        }
    }
    if (s->messages == 0 && !s->mail_given && p->remote_ip && logsel_on(&cfg->logsel, LS_SMTP_NO_MAIL))
        log_write(LOG_MAIN, "no MAIL in %sSMTP connection from %s D=%lds", rc ? "" : "", s->peer,
                  (long)(time(NULL) - s->started));
    reset_transaction(s);
    io_flush(&s->io);
    return rc;
}
