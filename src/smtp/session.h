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
} smtp_params;

/* Run the dialogue to the end; returns 0 (or 1 when the connection ended
 * abnormally: timeout, drop, I/O error). */
int smtp_session(const smtp_params *p);

#endif
