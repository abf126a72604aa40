/* session_data.c: a transaction's message in the SMTP server: DATA and
 * BDAT, the message read into the spool (only CRLF.CRLF ends DATA), the
 * ACL headers and fix-ups, the size limit, the final reply after the
 * message is durable, and the delivery that follows. */
#include "smtp/session_int.h"
#include "core/log.h"
#include "core/state.h"
#include "deliver/deliver.h"
#include "expand/expand.h"
#include "message/fixups.h"
#include "message/rewrite.h"
#include "smtp/local.h"
#include "smtp/reclog.h"
#include "core/timefmt.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- transaction -------------------------------------------------------- */

void ses_reset_transaction(session *s)
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
    s->smtputf8 = ps.message_smtputf8 = false;
    ps.authenticated_sender = NULL;
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
    m->tls_cipher = ps.tls_in.cipher;
    m->tls_certificate_verified = ps.tls_in.certificate_verified;
    m->tls_peerdn = ps.tls_in.peerdn;
    m->tls_sni = ps.tls_in.sni;
    m->tls_ver = ps.tls_in.ver;
    m->smtputf8 = s->smtputf8;
    m->host_auth = ps.sender_host_authenticated;
    m->host_auth_pubname = ps.sender_host_auth_pubname;
    m->auth_id = ps.authenticated_id;
    m->auth_sender = ps.authenticated_sender;
    m->ident = s->ident;                 /* -bs: the caller's login (from the passwd file: untainted) */
    m->allow_unqualified_sender = s->unqualified_sender;
    m->allow_unqualified_recipient = s->unqualified_recipient;
    m->deliver_firsttime = true;
    m->dsn_ret = s->dsn_ret;
    m->dsn_envid = s->dsn_envid;
    if (!s->p->remote_ip)        /* -bs: locally submitted unless the caller is trusted */
        m->local = !local_caller_trusted(getuid(), getgid(), s->local_login);
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
    ses_reply(s, "552", "Message size exceeds maximum permitted");
    if (!logsel_on(&cfg->logsel, LS_SIZE_REJECT))
        return;
    bool named = s->p->remote_ip || s->ident;
    log_write(LOG_MAIN | LOG_REJECT, "%s rejected from <%s>%s%s: message too big: read=%llu max=%llu",
              s->msg->id, s->sender, named ? " " : "", named ? s->peer : "", s->mb.lf_size, s->mb.size_limit);
    if (logsel_on(&cfg->logsel, LS_REJECTED_HEADER))
        ses_reject_headers(s);
}

/* A message refused once read (size, headers, bare newlines, spool). */
static bool refused_after_data(session *s, status st)
{
    if (s->mb.too_big)
        refuse_too_big(s);
    else if (s->mb.header_too_big) {
        ses_reply(s, "552", "Message header too large");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: header too large", s->peer, s->sender);
    } else if (s->bare_newline) {
        ses_reply(s, "550", "5.5.2 Message refused: bare LF or CR line ending (use CRLF)");
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> rejected after DATA: bare newline in message", s->peer, s->sender);
    } else if (st != ST_OK) {
        ses_reply(s, "451", "Temporary local problem - please try later");
        log_write(LOG_MAIN | LOG_PANIC, "%s F=<%s> temporarily rejected: cannot write spool data file", s->peer, s->sender);
    } else {
        return false;
    }
    ses_reset_transaction(s);
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
    if (!ses_acl_reply(s, ACL_WHERE_DATA, MO_acl_smtp_data, "after DATA", NULL, NULL, &drop)) {
        ses_reset_transaction(s);
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
        ses_replyf(s, "250", "OK id=%s", m->id);
        io_printf(&s->io, "\r\n**** SMTP testing: that is not a real message id!\r\n\r\n");
        ses_reset_transaction(s);
        return true;
    }
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    spool_keep_acl_vars(m, ps.acl_c, ps.acl_m, ps.msg);
    char *err = NULL;
    if (spool_commit(&ss, m, s->dfd, ps.scratch, &err) != ST_OK) {
        ses_reply(s, "451", "Temporary local problem - please try later");
        log_write(LOG_MAIN | LOG_PANIC, "%s: spool commit failed: %s", m->id, err ? err : "");
        ses_reset_transaction(s);
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
    ses_replyf(s, "250", "OK id=%s", m->id);
    s->messages++;
    start_delivery(s, m);
    s->msg = NULL;          /* committed: reset must not remove it */
    ses_reset_transaction(s);
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
            ses_reply(s, "451", "Temporary local problem - please try later");
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
                    ses_replyf(s, "421", "%s SMTP incoming data timeout - closing connection.", s->host);
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

/* ---- DATA, BDAT ---------------------------------------------------------- */

/* DATA or BDAT with no accepted recipient.  When every RCPT got the same
 * refusal it is repeated; straight after a pipelined RCPT this is no new
 * protocol error (Exim). */
static cmd_rc data_without_rcpt(session *s, const char *verb)
{
    if (!s->rcpt_resp_differs && s->rcpt_resp)
        ses_reply_more(s, "503", arena_printf(ps.scratch, "All RCPT commands were rejected with this error:\n%s",
                                          s->rcpt_resp));
    if (s->pipelining && s->last_was_rcpt) {
        ses_replyf(s, "503", "Valid RCPT command must precede %s", verb);
        return CMD_NEXT;
    }
    return ses_synprot(s, false, "503", arena_printf(ps.scratch, "valid RCPT command must precede %s", verb))
           ? CMD_NEXT : CMD_DROP;
}

/* The predata ACL and the spool file, before the first DATA/BDAT chunk. */
static bool data_start(session *s, bool bdat, bool *drop)
{
    spool_msg *pre = s->msg;
    if (!ses_acl_reply(s, ACL_WHERE_PREDATA, MO_acl_smtp_predata, "DATA", NULL, NULL, drop))
        return false;
    if (!start_message(s))
        return false;
    for (int i = 0; pre && i < pre->n_rcpt; i++)
        spool_add_rcpt(s->msg, ps.msg, &pre->rcpt[i]);
    if (bdat) {
        s->bdat_active = true;
        s->bdat_cr = false;
        gstr_reset(&s->bdat_line);
        ps.received_protocol = arena_printf(ps.conn, "%sesmtp%s", s->p->remote_ip ? "" : "local-", s->tls ? "s" : "");
    }
    return true;
}

cmd_rc ses_cmd_data(session *s, const char *arg)
{
    s->pipe_connect = false;
    if (*arg)
        return ses_synprot(s, true, "501", "DATA must have no arguments") ? CMD_NEXT : CMD_DROP;
    if (s->rcpt_count == 0)
        return data_without_rcpt(s, "DATA");
    bool drop = false;
    if (!data_start(s, false, &drop)) {
        ses_reset_transaction(s);
        return drop ? CMD_END : CMD_NEXT;
    }
    ses_reply(s, "354", "Enter message, ending with \".\" on a line by itself");
    io_flush(&s->io);
    bool accept_bare = ses_host_in(s, MO_smtp_accept_bare_newline_hosts, NULL);
    if (!read_data(s, accept_bare)) {
        ses_reset_transaction(s);
        return CMD_DROP;
    }
    return finish_message(s) ? CMD_NEXT : CMD_END;
}

/* Is a BDAT chunk refused (it is read all the same)?  *rc: what next. */
static bool bdat_refused(session *s, cmd_rc *rc)
{
    bool drop = false;
    if (!s->chunking) {
        *rc = ses_synprot(s, false, "503", "BDAT command used when CHUNKING not advertised") ? CMD_NEXT : CMD_DROP;
    } else if (!s->bdat_active && s->rcpt_count == 0) {
        *rc = data_without_rcpt(s, "BDAT");
    } else if (!s->bdat_active && !data_start(s, true, &drop)) {
        ses_reset_transaction(s);
        *rc = drop ? CMD_END : CMD_NEXT;
    } else {
        return false;
    }
    return true;
}

/* BDAT <size> [LAST] */
cmd_rc ses_cmd_bdat(session *s, const char *arg)
{
    s->pipe_connect = false;
    char *e;
    unsigned long long chunk = strtoull(arg, &e, 10);
    while (*e == ' ')
        e++;
    if (e == arg || (*e && strcasecmp(e, "LAST") != 0))
        return ses_synprot(s, true, "501", "BDAT requires a size and optionally LAST") ? CMD_NEXT : CMD_DROP;
    bool last = *e != '\0';
    cmd_rc rc;
    if (bdat_refused(s, &rc)) {
        io_read_n(&s->io, (size_t)chunk, bdat_sink, s);
        return rc;
    }
    if (io_read_n(&s->io, (size_t)chunk, bdat_sink, s) < 0) {
        log_write(LOG_MAIN, "SMTP connection from %s lost while reading BDAT data", s->peer);
        ses_reset_transaction(s);
        return CMD_DROP;
    }
    if (!last) {
        ses_replyf(s, "250", "%llu byte chunk received", chunk);
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
