/* session.h: one SMTP server session (RFC 5321 with ESMTP extensions),
 * shared by the daemon's children, -bs (stdin/stdout) and -bh (host
 * checking: full dialogue and ACLs, nothing queued). */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <stdbool.h>

typedef enum smtp_mode { SMTP_DAEMON, SMTP_BS, SMTP_BH } smtp_mode;

typedef struct smtp_params {
    smtp_mode mode;
    int in, out;
    const char *remote_ip;     /* NULL for a local -bs caller */
    int remote_port;
    const char *local_ip;
    int local_port;
    bool drop_limit_reached;   /* daemon: over smtp_accept_max etc. (answer 421) */
    const char *drop_reason;
    int connection_count;      /* daemon: connections including this one */
    bool queue_only;           /* -bs: -odq */
    char deliver_mode;         /* -bs: 'i' (-odi, -odf: deliver before the next command), 'b', 0 */
    const char *fullname;      /* -bs: -F, the caller's name for a generated From: */
} smtp_params;

/* Run the dialogue to the end; returns the exit status Exim's -bs has:
 * 0, or 1 when the connection ended abnormally (end of input without
 * QUIT, timeout, too many syntax or protocol errors, I/O error). */
int smtp_session(const smtp_params *p);

#endif
