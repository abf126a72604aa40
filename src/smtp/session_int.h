/* session_int.h: what the two halves of the SMTP server share: the
 * session (session.c: the connection, the commands, the replies;
 * session_data.c: a transaction's message, from DATA or BDAT to the
 * spool). */
#ifndef POSTERN_SESSION_INT_H
#define POSTERN_SESSION_INT_H

#include "smtp/session.h"
#include "acl/acl.h"
#include "config/config.h"
#include "core/gstr.h"
#include "message/msgbuild.h"
#include "smtp/io.h"
#include "spool/spool.h"

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
    bool tls_advertised;          /* STARTTLS was in an EHLO reply */
    bool smtputf8_advertised;     /* ... and SMTPUTF8 */
    bool auth_advertised;         /* ... and AUTH */
    const struct driver_inst *auth_by;   /* the authenticator the client authenticated with */
    const struct driver_inst *auth_offered[16];   /* the authenticators advertised */
    int n_auth_offered;
    bool smtputf8;                /* the transaction's MAIL had SMTPUTF8 */
    struct tls_conn *tls;         /* the TLS session after STARTTLS, or NULL */
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

/* What a command handler tells the loop: go on, end the session (QUIT,
 * an ACL drop: exit 0) or drop it (exit 1). */
typedef enum cmd_rc { CMD_NEXT, CMD_END, CMD_DROP } cmd_rc;

/* session.c */
void ses_reply(session *s, const char *code, const char *text);
/* a line of a multi-line reply ("250-...") */
void ses_reply_more(session *s, const char *code, const char *text);
void ses_replyf(session *s, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Is the client in the host list option o (dflt when unset)? */
bool ses_host_in(session *s, enum main_opt o, const char *dflt);
/* The rejectlog's copy of the message's headers. */
void ses_reject_headers(session *s);
/* Run the ACL option opt for a command and answer it (ok_code/ok_text
 * when it accepts); false when refused (*drop: the session must end). */
bool ses_acl_reply(session *s, acl_where where, enum main_opt opt, const char *what,
                   const char *ok_code, const char *ok_text, bool *drop);
/* A syntax or protocol error: counted, answered; false when the session
 * has had too many and must be dropped. */
bool ses_synprot(session *s, bool syntax, const char *code, const char *msg);

/* session_data.c */
void ses_reset_transaction(session *s);
cmd_rc ses_cmd_data(session *s, const char *arg);
cmd_rc ses_cmd_bdat(session *s, const char *arg);

#endif
