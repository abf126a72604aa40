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
#include <arpa/inet.h>

#define SMTP_CMD_MAX 16384        /* longest command line accepted */
#define SMTP_DATA_LINE_MAX 998    /* RFC 5322 line limit, excluding CRLF */
#define SMTP_HISTORY 20           /* commands remembered for the C= list (Exim's) */

typedef struct session {
    const smtp_params *p;
    smtp_io io;
    arena *a;                     /* connection arena */
    acl_session acl;
    const char *host;             /* our name in replies */
    const char *peer;             /* Exim's host_and_ident(TRUE): "H=(helo) [ip]", "U=login" */
    const char *who;              /* ... and without the flag: "(helo) [ip]", "login" */
    const char *ident;            /* $sender_ident: the -bs caller's login, else NULL */
    bool esmtp, helo_seen, pipelining, pipe_connect, dsn_advertised, chunking;
    bool log_conn, enforce_sync;  /* per connection, from the host lists */
    bool helo_verify_required, helo_try_verify, helo_accept_junk;
    bool unqualified_sender, unqualified_recipient;
    int unknown_count, synprot_count, nonmail_count;
    const char *had[SMTP_HISTORY];   /* the last commands, a ring from had_n % SMTP_HISTORY */
    unsigned had_n;
    /* what the previous command was, for pipelined errors (Exim's last_was_*) */
    bool was_rcpt, was_rej_mail, last_was_rcpt, last_was_rej_mail;
    bool rcpt_in_progress;        /* the RCPT's first reply is yet to be seen */
    const char *rcpt_resp;        /* the first RCPT reply of the transaction */
    bool rcpt_resp_differs;       /* ... and a later one was different */
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

/* A domain list check, traced under -bh as Exim does. */
static bool domain_in(session *s, const char *domain, enum main_opt o)
{
    const char *val = NULL;
    char *err = NULL;
    status st = match_domain(domain, cfg_str(o), ps.scratch, &val, &err);
    if (st == ST_OK)
        bh_note(s, "%s in %s? yes (matched \"%s\")", domain, main_optdefs[o].name, val ? val : "");
    else
        bh_note(s, "%s in %s? no (end of list)", domain, main_optdefs[o].name);
    return st == ST_OK;
}

/* ---- replies ------------------------------------------------------------ */

/* The first reply to each RCPT: when every one was the same, a DATA
 * without recipients repeats it (Exim's rcpt_smtp_response). */
static void rcpt_response(session *s, const char *text)
{
    s->rcpt_in_progress = false;
    if (!s->rcpt_resp)
        s->rcpt_resp = arena_strdup(ps.msg, text);
    else if (strcmp(s->rcpt_resp, text) != 0)
        s->rcpt_resp_differs = true;
}

static void reply(session *s, const char *code, const char *text)
{
    if (s->rcpt_in_progress)
        rcpt_response(s, arena_printf(ps.scratch, "%s %s", code, text));
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

/* Lines that more will follow under the same code ("code-text"). */
static void reply_more(session *s, const char *code, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        io_printf(&s->io, "%s-%.*s\r\n", code, (int)n, p);
        p += n + (p[n] == '\n');
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
    if (!s->p->remote_ip) {
        s->who = s->ident ? s->ident : "unknown";
        s->peer = arena_printf(s->a, "U=%s", s->who);
        return;
    }
    gstr g;
    gstr_init(&g, s->a, 64);
    gstr_cat(&g, "H=");
    if (ps.sender_host_name && *ps.sender_host_name)
        gstr_printf(&g, "%s ", ps.sender_host_name);
    if (ps.sender_helo_name)
        gstr_printf(&g, "(%s) ", ps.sender_helo_name);
    gstr_printf(&g, "[%s]", s->p->remote_ip);
    if (s->ident)
        gstr_printf(&g, " U=%s", s->ident);
    s->peer = g.s;
    s->who = g.s + 2;
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
    else if (where == ACL_WHERE_RCPT || where == ACL_WHERE_VRFY || where == ACL_WHERE_EXPN)
        bh_note(s, "ACL is NULL: implicit DENY");
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
    const char *text = !temp ? (msg ? msg : "Administrative prohibition")
                             : msg && st == ST_DEFER ? msg : "Temporary local problem - please try later";
    if (where == ACL_WHERE_RCPT && s->rcpt_in_progress)
        rcpt_response(s, text);          /* the text alone, as Exim records it */
    reply(s, code, text);
    if (temp) {
        if (st == ST_ERROR)
            log_write(LOG_MAIN | LOG_PANIC, "%s %s: ACL error: %s", s->peer, what, r.error ? r.error : "unknown");
        if (logs)
            log_write(logs, "%s temporarily rejected %s%s%s", who, what, why ? ": " : "", why ? why : "");
        return false;
    }
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
    s->rcpt_resp = NULL;
    s->rcpt_resp_differs = s->rcpt_in_progress = false;
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

/* Exim's fix-ups for local (-bs) and submission-mode messages, and for
 * every message the rewrite rules, before the data ACL runs. */
static void apply_fixups(session *s, spool_msg *m)
{
    struct passwd *pw = s->p->remote_ip ? NULL : getpwuid(getuid());
    fixup_ctx fx = {
        .local = s->p->remote_ip == NULL, .smtp = true, .submission = s->acl.controls.submission,
        .suppress = s->acl.controls.suppress_local_fixups,
        .trusted = s->p->remote_ip ? true : local_caller_trusted(getuid(), getgid(), pw ? pw->pw_name : NULL),
        .login = pw ? arena_strdup(ps.msg, pw->pw_name) : NULL,
        .fullname = s->p->fullname ? s->p->fullname : local_caller_name(pw, ps.msg),
        .name_forced = s->p->fullname != NULL,
        .qualify_domain = cfg_str(MO_qualify_domain), .primary_hostname = cfg_str(MO_primary_hostname),
        .local_from_check = cfg_bool(MO_local_from_check),
        .local_sender_retain = cfg_bool(MO_local_sender_retain),
        .submission_domain = s->acl.controls.submission_domain,
        .authenticated_id = ps.authenticated_id,
        .rewrite = true,
        .unqualified_sender = s->unqualified_sender,
        .unqualified_recipient = s->unqualified_recipient,
    };
    s->msgid_created = !mb_find_header(m, "Message-ID");
    msg_fixups(m, &fx, ps.msg);
    s->msgid_created = s->msgid_created && mb_find_header(m, "Message-ID");
    s->local_login = fx.login;
    s->sender = ps.sender_address = m->sender;
    for (int i = 0; i < m->n_rcpt && i < ps.recipients_count; i++)
        ps.recipients[i] = m->rcpt[i].address;
}

/* Over message_size_limit: logged with the size read (Exim counts lines
 * with LF endings), the envelope and the headers as fixed up so far. */
static void refuse_too_big(session *s)
{
    apply_fixups(s, s->msg);
    reply(s, "552", "Message size exceeds maximum permitted");
    if (!logsel_on(&cfg->logsel, LS_SIZE_REJECT))
        return;
    bool named = s->p->remote_ip || s->ident;
    log_write(LOG_MAIN | LOG_REJECT, "%s rejected from <%s>%s%s: message too big: read=%llu max=%llu",
              s->msg->id, s->sender, named ? " " : "", named ? s->peer : "", s->mb.lf_size, s->mb.size_limit);
    if (logsel_on(&cfg->logsel, LS_REJECTED_HEADER))
        reject_headers(s);
}

/* A message refused once read (size, headers, bare newlines, spool). */
static bool refused_after_data(session *s, status st)
{
    if (s->mb.too_big)
        refuse_too_big(s);
    else if (s->mb.header_too_big) {
        reply(s, "552", "Message header too large");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: header too large", s->peer, s->sender);
    } else if (s->bare_newline) {
        reply(s, "550", "5.5.2 Message refused: bare LF or CR line ending (use CRLF)");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: bare newline in message", s->peer, s->sender);
    } else if (st != ST_OK) {
        reply(s, "451", "Temporary local problem - please try later");
        log_write(LOG_MAIN | LOG_PANIC, "%s F=<%s> temporarily rejected: cannot write spool data file", s->peer, s->sender);
    } else {
        return false;
    }
    reset_transaction(s);
    return true;
}

/* Delivery of an accepted message: the daemon starts it (it keeps the
 * privilege local deliveries need); a -bs caller starts it here, and with
 * -odi waits for it before reading the next command (Exim). */
static void start_delivery(session *s, const spool_msg *m)
{
    const smtp_params *p = s->p;
    bool queue_only = cfg_bool(MO_queue_only) && !(p->deliver_mode && cfg_bool(MO_queue_only_override));
    if (s->acl.controls.queue_only || queue_only || p->queue_only || m->frozen)
        return;
    if (ps.deliver_notify_fd >= 0) {
        char line[SPOOL_ID_LEN + 2];
        int n = snprintf(line, sizeof line, "%s\n", m->id);
        if (write(ps.deliver_notify_fd, line, (size_t)n) != n)
            log_write(LOG_MAIN, "%s: could not ask the daemon to deliver (it will wait for a queue run)", m->id);
    } else if (p->mode == SMTP_BS) {
        io_flush(&s->io);
        if (p->deliver_mode == 'i')
            deliver_now(m->id);
        else
            deliver_after_receive(m->id, false, true);
    }
}

/* The message has been read: run the data ACL, commit, reply. */
static bool finish_message(session *s)
{
    spool_msg *m = s->msg;
    status st = mb_finish(&s->mb);
    ps.message_size = (long)s->mb.size;
    ps.body_linecount = s->mb.body_lines;
    if (refused_after_data(s, st))
        return true;
    apply_fixups(s, m);
    received_header_add(m, s->p->remote_ip, s->ident, s->sender);
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
    start_delivery(s, m);
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
    mb_init(&s->mb, s->msg, s->dfd, ps.msg, (unsigned long long)receive_size_limit());
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

/* The commands Exim remembers for the C= list of a drop line. */
static void had_command(session *s, const char *cmd)
{
    static const char *const names[] = { "DATA", "BDAT", "EHLO", "EXPN", "HELO", "HELP", "MAIL",
                                         "NOOP", "QUIT", "RCPT", "RSET", "VRFY" };
    const char *rest;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (arg_is(cmd, names[i], &rest)) {
            s->had[s->had_n++ % SMTP_HISTORY] = names[i];
            return;
        }
}

/* " C=HELO,RCPT,...", oldest first; " C=...," once some were forgotten */
static const char *had_list(session *s)
{
    gstr g;
    gstr_init(&g, ps.scratch, 128);
    gstr_cat(&g, s->had_n > SMTP_HISTORY ? " C=..." : " C=");
    unsigned first = s->had_n > SMTP_HISTORY ? s->had_n - SMTP_HISTORY : 0;
    for (unsigned i = first; i < s->had_n; i++)
        gstr_printf(&g, "%s%s", i == first ? "" : ",", s->had[i % SMTP_HISTORY]);
    return g.s;
}

/* Count a syntax or protocol error; past smtp_max_synprot_errors the
 * drop is logged and false returned (the caller closes the connection). */
static bool synprot_count(session *s)
{
    if (++s->synprot_count <= cfg_int(MO_smtp_max_synprot_errors))
        return true;
    log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many syntax or protocol errors "
              "(last command was \"%s\", %s)", s->who, ps.smtp_command ? ps.smtp_command : "", had_list(s));
    return false;
}

/* A syntax or protocol error: logged when log_selector asks, answered and
 * counted.  Returns false when the connection is to be dropped; the reply
 * then says why under the same code. */
static bool synprot(session *s, bool syntax, const char *code, const char *msg)
{
    if (logsel_on(&cfg->logsel, syntax ? LS_SMTP_SYNTAX_ERROR : LS_SMTP_PROTOCOL_ERROR))
        log_write(LOG_MAIN, "SMTP %s error in \"%s\" %s %s", syntax ? "syntax" : "protocol",
                  ps.smtp_command ? ps.smtp_command : "", s->peer, msg);
    if (synprot_count(s)) {
        reply(s, code, msg);
        return true;
    }
    replyf(s, code, "%s\nToo many syntax or protocol errors", msg);
    return false;
}

/* The EHLO keywords in Exim's order; each host list is checked (and
 * traced under -bh) only when Exim checks it. */
static void ehlo_keywords(session *s, gstr *g)
{
    long long limit = receive_size_limit();
    if (limit > 0)
        gstr_printf(g, "SIZE %lld\n", limit);
    else
        gstr_cat(g, "SIZE\n");
    if (cfg_bool(MO_accept_8bitmime))
        gstr_cat(g, "8BITMIME\n");
    s->dsn_advertised = host_in(s, MO_dsn_advertise_hosts, NULL);
    if (s->dsn_advertised)
        gstr_cat(g, "DSN\n");
    if (cfg_str(MO_acl_smtp_vrfy))
        gstr_cat(g, "VRFY\n");
    if (cfg_str(MO_acl_smtp_expn))
        gstr_cat(g, "EXPN\n");
    s->pipelining = !s->acl.controls.no_pipelining && host_in(s, MO_pipelining_advertise_hosts, "*");
    if (s->pipelining)
        gstr_cat(g, "PIPELINING\n");
    if (s->pipelining && s->pipe_connect)
        gstr_cat(g, "PIPECONNECT\n");
    s->chunking = host_in(s, MO_chunking_advertise_hosts, "*");
    if (s->chunking)
        gstr_cat(g, "CHUNKING\n");
    gstr_cat(g, "HELP");
}

/* "Hello" names the caller (ident, for -bs) and the client: its looked-up
 * name, else the HELO name, and its address. */
static void ehlo_reply(session *s, bool ehlo)
{
    gstr g;
    gstr_init(&g, ps.scratch, 256);
    gstr_printf(&g, "%s Hello %s%s%s", s->host, s->ident ? s->ident : "", s->ident ? " at " : "",
                ps.sender_host_name ? ps.sender_host_name : ps.sender_helo_name);
    if (s->p->remote_ip)
        gstr_printf(&g, " [%s]", s->p->remote_ip);
    if (ehlo) {
        gstr_catc(&g, '\n');
        ehlo_keywords(s, &g);
    }
    reply(s, "250", g.s);
}

/* Exim's check of a HELO argument: anything from helo_accept_junk_hosts;
 * else an address literal ([ip], [IPv4:ip], [IPv6:ip]) or letters, digits,
 * dots, hyphens and the characters in helo_allow_chars. */
static bool valid_helo(session *s, const char *name)
{
    if (s->helo_accept_junk)
        return true;
    if (name[0] == '[') {
        size_t n = strlen(name);
        if (n < 3 || name[n - 1] != ']')
            return false;
        const char *ip = name + 1;
        if (strncasecmp(ip, "IPv6:", 5) == 0 || strncasecmp(ip, "IPv4:", 5) == 0)
            ip += 5;
        unsigned char buf[16];
        char *lit = arena_strndup(ps.scratch, ip, (size_t)(name + n - 1 - ip));
        return inet_pton(AF_INET, lit, buf) == 1 || inet_pton(AF_INET6, lit, buf) == 1;
    }
    const char *extra = cfg_str(MO_helo_allow_chars);
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && !(extra && strchr(extra, *p)))
            return false;
    return *name != '\0';
}

/* ---- HELO and EHLO ------------------------------------------------------ */

/* What a command handler tells the loop: go on, end the session (QUIT,
 * an ACL drop: exit 0) or drop it (exit 1). */
typedef enum cmd_rc { CMD_NEXT, CMD_END, CMD_DROP } cmd_rc;

/* A client calling itself by our name or address gets its real name
 * looked up; helo_verify_hosts: the name must match the client (refused
 * otherwise); helo_try_verify_hosts: only $helo_verified.  False when
 * refused (the reply has been sent). */
static bool helo_checks(session *s, const char *verb, const char *arg)
{
    const char *hl = cfg_str(MO_helo_lookup_domains);
    if (!ps.sender_host_name && hl && *hl && domain_in(s, arg, MO_helo_lookup_domains) && !ps.host_lookup_done)
        lookup_host_name(s);
    if (!s->helo_verify_required && !s->helo_try_verify)
        return true;
    char *derr = NULL;
    dns_resolver *res = dns_process_resolver(&derr, ps.conn);
    bool dnssec = false;
    status hv = ST_FAIL;
    if (res) {
        dns_iface di = dns_iface_unbound(res);
        hv = host_verify_helo(&di, arg, s->p->remote_ip, NULL, ps.conn, &dnssec);
    }
    ps.helo_verified = hv == ST_OK;
    if (!s->helo_verify_required || hv == ST_OK)
        return true;
    bool temp = hv == ST_DEFER;
    replyf(s, temp ? "451" : "550", "%s argument does not match calling host", verb);
    log_write(LOG_MAIN | LOG_REJECT, "%srejected \"%s %s\" from %s", temp ? "temporarily " : "", verb, arg, s->who);
    return false;
}

static cmd_rc cmd_helo(session *s, bool ehlo, const char *arg)
{
    const char *verb = ehlo ? "EHLO" : "HELO";
    if (!valid_helo(s, arg)) {
        replyf(s, "501", "Syntactically invalid %s argument(s)", verb);
        log_write(LOG_MAIN | LOG_REJECT, "rejected %s from %s: syntactically invalid argument(s): %s",
                  verb, s->who, *arg ? arg : "(no argument given)");
        return synprot_count(s) ? CMD_NEXT : CMD_DROP;
    }
    ps.sender_helo_name = arena_strdup(ps.conn_t, arg);
    set_peer(s);
    if (s->p->remote_ip && !helo_checks(s, verb, arg))
        return CMD_NEXT;          /* as Exim: the name given stays in the log identity */
    bool drop = false;
    if (!acl_reply(s, ACL_WHERE_HELO, MO_acl_smtp_helo, arena_printf(ps.scratch, "EHLO or HELO %s", arg),
                   NULL, NULL, &drop)) {
        ps.sender_helo_name = NULL;
        set_peer(s);
        return drop ? CMD_END : CMD_NEXT;
    }
    reset_transaction(s);
    s->helo_seen = true;
    s->esmtp = ehlo;
    ehlo_reply(s, ehlo);
    ps.received_protocol = s->p->remote_ip ? (ehlo ? "esmtp" : "smtp") : (ehlo ? "local-esmtp" : "local-smtp");
    return CMD_NEXT;
}

/* ---- connection start ------------------------------------------------- */

/* What Exim decides about a remote host when it connects, in its order
 * (-bh traces each list). */
static void host_flags(session *s)
{
    bool nolog = host_in(s, MO_hosts_connection_nolog, NULL);
    s->log_conn = logsel_on(&cfg->logsel, LS_SMTP_CONNECTION) && !nolog;
    if (host_in(s, MO_host_lookup, NULL))
        lookup_host_name(s);
}

static void host_flags_after_reject(session *s)
{
    s->unqualified_sender = host_in(s, MO_sender_unqualified_hosts, NULL);
    s->unqualified_recipient = host_in(s, MO_recipient_unqualified_hosts, NULL);
    s->helo_verify_required = host_in(s, MO_helo_verify_hosts, NULL);
    if (!s->helo_verify_required)
        s->helo_try_verify = host_in(s, MO_helo_try_verify_hosts, NULL);
    s->helo_accept_junk = host_in(s, MO_helo_accept_junk_hosts, NULL);
}

/* Connection checks, the connect ACL and the banner.  False when the
 * connection is refused (the reply has been sent). */
static bool start_session(session *s)
{
    const smtp_params *p = s->p;
    if (p->mode == SMTP_BH)
        printf("\n**** SMTP testing session as if from host %s\n"
               "**** but without any ident (RFC 1413) callback.\n"
               "**** This is not for real!\n\n", p->remote_ip ? p->remote_ip : "(local)");
    fflush(stdout);
    s->unqualified_sender = s->unqualified_recipient = !p->remote_ip;
    if (p->remote_ip)
        host_flags(s);
    if (s->log_conn)
        log_write(LOG_MAIN, "SMTP connection from [%s]:%d (TCP/IP connection count = %d)",
                  p->remote_ip, p->remote_port, p->connection_count);
    if (p->drop_limit_reached) {
        replyf(s, "421", "%s %s", s->host, p->drop_reason ? p->drop_reason : "Too many concurrent SMTP connections; please try again later.");
        return false;
    }
    if (p->remote_ip && host_in(s, MO_host_reject_connection, NULL)) {
        reply(s, "554", "SMTP service not available");
        if (logsel_on(&cfg->logsel, LS_CONNECTION_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "refused connection from %s (host_reject_connection)", s->who);
        return false;
    }
    if (p->remote_ip)
        host_flags_after_reject(s);
    /* synchronization is checked on TCP/IP connections only (not -bs/-bh) */
    s->enforce_sync = cfg_bool(MO_smtp_enforce_sync) && p->mode == SMTP_DAEMON;
    bool drop = false;
    if (!acl_reply(s, ACL_WHERE_CONNECT, MO_acl_smtp_connect, "connection", NULL, NULL, &drop))
        return false;
    /* PIPECONNECT: a client may send EHLO (and what follows) before the banner */
    s->pipe_connect = p->remote_ip && host_in(s, MO_pipelining_connect_advertise_hosts, "*");
    if (s->enforce_sync && !s->pipe_connect && io_input_pending(&s->io)) {
        reply(s, "554", "SMTP synchronization error");
        log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (input sent without waiting for greeting): "
                  "rejected connection from %s", s->peer);
        return false;
    }
    const char *banner = opt_expand(MO_smtp_banner, NULL, ps.scratch);
    if (!banner) {
        char date[TIMEFMT_DATE_LEN];
        timefmt_rfc5322(time(NULL), date, sizeof date);
        banner = arena_printf(ps.scratch, "%s ESMTP postern %s %s", s->host, POSTERN_VERSION, date);
    }
    reply(s, "220", banner);
    return true;
}

/* ---- MAIL, RCPT ---------------------------------------------------------- */

static cmd_rc cmd_mail(session *s, const char *arg)
{
    s->was_rej_mail = true;               /* until accepted */
    if (!s->helo_seen && host_in(s, MO_hosts_require_helo, "*")) {
        reply(s, "503", "HELO or EHLO required");
        log_write(LOG_MAIN | LOG_REJECT, "rejected MAIL from %s: no HELO/EHLO given", s->who);
        return CMD_NEXT;
    }
    if (s->mail_given)
        return synprot(s, false, "503", "sender already given") ? CMD_NEXT : CMD_DROP;
    s->rcpt_resp = NULL;
    s->rcpt_resp_differs = false;
    dns_process_new_message();
    arg = rewrite_smtp_arg(arg, ps.conn_t);      /* "S" rewrite rules */
    smtp_mail_args ma;
    const char *perr = smtp_parse_mail(arg, s->esmtp, ps.conn_t, &ma);
    if (!perr && (ma.ret || ma.envid) && !s->dsn_advertised)
        perr = "DSN parameters not advertised";
    if (perr)
        return synprot(s, true, "501", perr) ? CMD_NEXT : CMD_DROP;
    long long limit = receive_size_limit();
    if (limit > 0 && ma.size > (unsigned long long)limit) {
        reply(s, "552", "Message size exceeds maximum permitted");
        if (logsel_on(&cfg->logsel, LS_SIZE_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "rejected MAIL FROM:<%s> %s: message too big: size=%llu max=%lld",
                      ma.address, s->peer, ma.size, limit);
        return CMD_NEXT;
    }
    if (*ma.address && !strchr(ma.address, '@'))
        ma.address = arena_printf(ps.conn_t, "%s@%s", ma.address, cfg_str(MO_qualify_domain));
    s->sender = ps.sender_address = ma.address;
    s->dsn_ret = ma.ret;
    s->dsn_envid = ma.envid;
    s->declared_size = ma.size;
    bool drop = false;
    if (!acl_reply(s, ACL_WHERE_MAIL, MO_acl_smtp_mail, arena_printf(ps.scratch, "MAIL <%s>", ma.address),
                   "250", "OK", &drop)) {
        s->sender = ps.sender_address = NULL;
        return drop ? CMD_END : CMD_NEXT;
    }
    s->was_rej_mail = false;
    s->mail_given = true;
    s->msg = NULL;
    return CMD_NEXT;
}

/* RCPT before MAIL: after a refused MAIL in a pipelined group it is no
 * new error (Exim). */
static cmd_rc rcpt_without_sender(session *s)
{
    if (s->pipelining && s->last_was_rej_mail) {
        reply(s, "503", "sender not yet given");
        s->was_rej_mail = true;
        return CMD_NEXT;
    }
    s->was_rcpt = false;
    return synprot(s, false, "503", "sender not yet given") ? CMD_NEXT : CMD_DROP;
}

static void add_recipient(session *s, const smtp_rcpt_args *ra)
{
    if (!s->msg)
        s->msg = arena_calloc(ps.msg, sizeof *s->msg);
    spool_rcpt sr = { ra->address, ra->orcpt, ra->notify, NULL, -1 };
    spool_add_rcpt(s->msg, ps.msg, &sr);
    const char **nr = arena_alloc(ps.msg, sizeof *nr * (size_t)(s->rcpt_count + 1));
    if (s->rcpt_count)
        memcpy(nr, ps.recipients, sizeof *nr * (size_t)s->rcpt_count);
    nr[s->rcpt_count++] = ra->address;
    ps.recipients = nr;
    ps.recipients_count = s->rcpt_count;
}

static cmd_rc cmd_rcpt(session *s, const char *arg)
{
    s->was_rcpt = s->rcpt_in_progress = true;
    if (!s->mail_given)
        return rcpt_without_sender(s);
    arg = rewrite_smtp_arg(arg, ps.msg_t);       /* "S" rewrite rules */
    smtp_rcpt_args ra;
    const char *perr = smtp_parse_rcpt(arg, ps.msg_t, &ra);
    if (!perr && (ra.notify || ra.orcpt) && !s->dsn_advertised)
        perr = "DSN parameters not advertised";
    if (perr)
        return synprot(s, true, "501", perr) ? CMD_NEXT : CMD_DROP;
    if (!strchr(ra.address, '@')) {
        if (!s->unqualified_recipient && strcasecmp(ra.address, "postmaster") != 0) {
            replyf(s, "501", "<%s>: recipient address must contain a domain", ra.address);
            return CMD_NEXT;
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
        return CMD_NEXT;
    }
    const char *at = strrchr(ra.address, '@');
    ps.local_part = arena_strndup(ps.msg_t, ra.address, (size_t)(at - ra.address));
    ps.domain = arena_strdup(ps.msg_t, at + 1);
    bool drop = false;
    if (!acl_reply(s, ACL_WHERE_RCPT, MO_acl_smtp_rcpt, arena_printf(ps.scratch, "RCPT <%s>", ra.address),
                   "250", "Accepted", &drop)) {
        s->rcpt_rejected++;
        return drop ? CMD_END : CMD_NEXT;
    }
    add_recipient(s, &ra);
    return CMD_NEXT;
}

/* ---- DATA, BDAT ---------------------------------------------------------- */

/* DATA or BDAT with no accepted recipient.  When every RCPT got the same
 * refusal it is repeated; straight after a pipelined RCPT this is no new
 * protocol error (Exim). */
static cmd_rc data_without_rcpt(session *s, const char *verb)
{
    if (!s->rcpt_resp_differs && s->rcpt_resp)
        reply_more(s, "503", arena_printf(ps.scratch, "All RCPT commands were rejected with this error:\n%s",
                                          s->rcpt_resp));
    if (s->pipelining && s->last_was_rcpt) {
        replyf(s, "503", "Valid RCPT command must precede %s", verb);
        return CMD_NEXT;
    }
    return synprot(s, false, "503", arena_printf(ps.scratch, "valid RCPT command must precede %s", verb))
           ? CMD_NEXT : CMD_DROP;
}

/* The predata ACL and the spool file, before the first DATA/BDAT chunk. */
static bool data_start(session *s, bool bdat, bool *drop)
{
    spool_msg *pre = s->msg;
    if (!acl_reply(s, ACL_WHERE_PREDATA, MO_acl_smtp_predata, "DATA", NULL, NULL, drop))
        return false;
    if (!start_message(s))
        return false;
    for (int i = 0; pre && i < pre->n_rcpt; i++)
        spool_add_rcpt(s->msg, ps.msg, &pre->rcpt[i]);
    if (bdat) {
        s->bdat_active = true;
        s->bdat_cr = false;
        gstr_reset(&s->bdat_line);
        ps.received_protocol = s->p->remote_ip ? "esmtp" : "local-esmtp";
    }
    return true;
}

static cmd_rc cmd_data(session *s, const char *arg)
{
    s->pipe_connect = false;
    if (*arg)
        return synprot(s, true, "501", "DATA must have no arguments") ? CMD_NEXT : CMD_DROP;
    if (s->rcpt_count == 0)
        return data_without_rcpt(s, "DATA");
    bool drop = false;
    if (!data_start(s, false, &drop)) {
        reset_transaction(s);
        return drop ? CMD_END : CMD_NEXT;
    }
    reply(s, "354", "Enter message, ending with \".\" on a line by itself");
    io_flush(&s->io);
    bool accept_bare = host_in(s, MO_smtp_accept_bare_newline_hosts, NULL);
    if (!read_data(s, accept_bare)) {
        reset_transaction(s);
        return CMD_DROP;
    }
    return finish_message(s) ? CMD_NEXT : CMD_END;
}

/* Is a BDAT chunk refused (it is read all the same)?  *rc: what next. */
static bool bdat_refused(session *s, cmd_rc *rc)
{
    bool drop = false;
    if (!s->chunking) {
        *rc = synprot(s, false, "503", "BDAT command used when CHUNKING not advertised") ? CMD_NEXT : CMD_DROP;
    } else if (!s->bdat_active && s->rcpt_count == 0) {
        *rc = data_without_rcpt(s, "BDAT");
    } else if (!s->bdat_active && !data_start(s, true, &drop)) {
        reset_transaction(s);
        *rc = drop ? CMD_END : CMD_NEXT;
    } else {
        return false;
    }
    return true;
}

/* BDAT <size> [LAST] */
static cmd_rc cmd_bdat(session *s, const char *arg)
{
    s->pipe_connect = false;
    char *e;
    unsigned long long chunk = strtoull(arg, &e, 10);
    while (*e == ' ')
        e++;
    if (e == arg || (*e && strcasecmp(e, "LAST") != 0))
        return synprot(s, true, "501", "BDAT requires a size and optionally LAST") ? CMD_NEXT : CMD_DROP;
    bool last = *e != '\0';
    cmd_rc rc;
    if (bdat_refused(s, &rc)) {
        io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
        return rc;
    }
    if (io_read_n(&s->io, (size_t)chunk, bdat_sink, s) < 0) {
        log_write(LOG_MAIN, "SMTP connection from %s lost while reading BDAT data", s->peer);
        reset_transaction(s);
        return CMD_DROP;
    }
    if (!last) {
        replyf(s, "250", "%llu byte chunk received", chunk);
        return CMD_NEXT;
    }
    if (s->bdat_line.len || s->bdat_cr) {
        /* the last line had no CRLF: keep it as data */
        if (s->bdat_cr)
            gstr_catc(&s->bdat_line, '\r');
        mb_line(&s->mb, s->bdat_line.s, s->bdat_line.len);
        gstr_reset(&s->bdat_line);
    }
    s->bdat_active = false;
    return finish_message(s) ? CMD_NEXT : CMD_END;
}

/* ---- the other commands -------------------------------------------------- */

static cmd_rc cmd_quit(session *s)
{
    acl_result r;
    memset(&r, 0, sizeof r);
    acl_check(ACL_WHERE_QUIT, cfg_str(MO_acl_smtp_quit), &s->acl, ps.scratch, &r);
    replyf(s, "221", "%s closing connection", s->host);
    if (s->log_conn)
        log_write(LOG_MAIN, "SMTP connection from %s closed by QUIT", s->peer);
    return CMD_END;
}

static cmd_rc cmd_unknown(session *s, const char *cmd)
{
    if (s->unknown_count++ < cfg_int(MO_smtp_max_unknown_commands))
        return synprot(s, true, "500", "unrecognized command") ? CMD_NEXT : CMD_DROP;
    reply(s, "500", "Too many unrecognized commands");
    log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many unrecognized commands (last was \"%s\")",
              s->who, cmd);
    return CMD_END;
}

static cmd_rc command(session *s, const char *cmd)
{
    const char *arg;
    bool drop = false;
    had_command(s, cmd);
    if (arg_is(cmd, "HELO", &arg) || arg_is(cmd, "EHLO", &arg))
        return cmd_helo(s, toupper((unsigned char)cmd[0]) == 'E', arg);
    if (arg_is(cmd, "MAIL", &arg))
        return cmd_mail(s, arg);
    if (arg_is(cmd, "RCPT", &arg))
        return cmd_rcpt(s, arg);
    if (arg_is(cmd, "DATA", &arg))
        return cmd_data(s, arg);
    if (arg_is(cmd, "BDAT", &arg))
        return cmd_bdat(s, arg);
    if (arg_is(cmd, "QUIT", &arg))
        return cmd_quit(s);
    if (arg_is(cmd, "RSET", &arg)) {
        reset_transaction(s);
        reply(s, "250", "Reset OK");
    } else if (arg_is(cmd, "NOOP", &arg)) {
        reply(s, "250", "OK");
    } else if (arg_is(cmd, "VRFY", &arg)) {
        if (!acl_reply(s, ACL_WHERE_VRFY, MO_acl_smtp_vrfy, arena_printf(ps.scratch, "VRFY %s", arg),
                       "252", "Administrative prohibition", &drop) && drop)
            return CMD_END;
    } else if (arg_is(cmd, "EXPN", &arg)) {
        if (!acl_reply(s, ACL_WHERE_EXPN, MO_acl_smtp_expn, arena_printf(ps.scratch, "EXPN %s", arg),
                       "550", "Administrative prohibition", &drop) && drop)
            return CMD_END;
    } else if (arg_is(cmd, "HELP", &arg)) {
        reply(s, "214", "Commands supported:\nHELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP");
    } else {
        return cmd_unknown(s, cmd);
    }
    return CMD_NEXT;
}

/* Synchronization: a command that may not be pipelined must not be
 * followed by input before its reply (TCP/IP only).  HELO/EHLO may, from a
 * PIPECONNECT client, until the first DATA. */
static bool in_sync(session *s, const char *cmd)
{
    const char *arg;
    if (!s->enforce_sync || s->acl.controls.no_enforce_sync || s->io.rpos >= s->io.rlen)
        return true;
    bool pipelineable = (s->pipelining && (arg_is(cmd, "MAIL", &arg) || arg_is(cmd, "RCPT", &arg) ||
                                           arg_is(cmd, "RSET", &arg) || arg_is(cmd, "NOOP", &arg) ||
                                           arg_is(cmd, "BDAT", &arg))) ||
                        (s->pipe_connect && (arg_is(cmd, "HELO", &arg) || arg_is(cmd, "EHLO", &arg)));
    if (pipelineable || arg_is(cmd, "DATA", &arg))
        return true;
    reply(s, "554", "SMTP synchronization error");
    log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (next input sent too soon: "
              "pipelining was%s advertised): rejected \"%.100s\" %s", s->pipelining ? "" : " not", cmd, s->peer);
    return false;
}

/* End of input or a timeout while waiting for a command. */
static void input_lost(session *s, int r)
{
    char d[32];
    opt_format_time((long long)(time(NULL) - s->started), d, sizeof d);
    if (r == IO_TIMEOUT) {
        replyf(s, "421", "%s SMTP command timeout - closing connection", s->host);
        log_write(LOG_MAIN, "SMTP command timeout on connection from %s", s->peer);
    } else if (s->mail_given || s->rcpt_count) {
        log_write(LOG_MAIN, "unexpected %s while reading SMTP command from %s D=%s",
                  s->p->remote_ip ? "disconnection" : "EOF", s->who, d);
    }
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
    if (p->mode == SMTP_BS) {
        /* -bs: the caller is known by its login ($sender_ident), as Exim */
        struct passwd *pw = getpwuid(getuid());
        s->ident = pw ? arena_strdup(ps.conn, pw->pw_name) : NULL;
    }
    set_peer(s);

    bool started = start_session(s);
    io_flush(&s->io);
    if (!started)
        return 0;

    gstr line;
    gstr_init(&line, ps.conn, 512);
    cmd_rc next = CMD_NEXT;
    while (next == CMD_NEXT) {
        arena_reset(ps.scratch);
        bool too_long, bare_lf;
        int r = io_read_line(&s->io, &line, SMTP_CMD_MAX, &too_long, &bare_lf);
        if (r < 0) {
            input_lost(s, r);
            next = CMD_DROP;
            break;
        }
        ps.smtp_command = arena_strdup(ps.scratch, line.s);
        s->last_was_rcpt = s->was_rcpt;
        s->last_was_rej_mail = s->was_rej_mail;
        s->was_rcpt = s->was_rej_mail = false;
        next = too_long ? (synprot(s, true, "500", "Command line too long") ? CMD_NEXT : CMD_DROP)
                        : command(s, line.s);
        if (next == CMD_NEXT && !in_sync(s, line.s))
            next = CMD_DROP;
    }
    if (s->messages == 0 && !s->mail_given && p->remote_ip && logsel_on(&cfg->logsel, LS_SMTP_NO_MAIL))
        log_write(LOG_MAIN, "no MAIL in SMTP connection from %s D=%lds", s->peer, (long)(time(NULL) - s->started));
    reset_transaction(s);
    io_flush(&s->io);
    return next == CMD_DROP;
}

