/* client.h: the SMTP client protocol layer used by the smtp transport:
 * connect with a timeout, read (multi-line) replies, send commands, and
 * remember what a DSN needs (greeting, EHLO/HELO response). */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>

#define SMTP_CLIENT_REPLY_MAX (64 * 1024)

struct tls_conn;

typedef struct smtp_client {
    int fd;
    struct tls_conn *tls;      /* after STARTTLS: reads and writes go through it */
    int timeout;               /* seconds per read/write */
    char rbuf[8192];
    size_t rpos, rlen;
    arena *a;
    const char *peer;          /* "[ip]:port" for messages */
    /* what the server said */
    const char *greeting;
    const char *helo_response;
    bool esmtp, pipelining, size, eightbit, dsn, chunking, ignorequota, starttls, smtputf8;
    const char *auth_mechs;    /* the AUTH keyword's mechanisms, or NULL */
    const char *authenticator; /* the authenticator this connection authenticated with, or NULL */
    int last_code;
    const char *last_reply;    /* whole reply text, lines joined by "\n" */
    int os_errno;              /* errno of a failed connect or write (ETIMEDOUT: timed out) */
    int read_error;            /* why the last read failed: ETIMEDOUT, ERRNO_SMTPCLOSED (-18)
                                * or ERRNO_SMTPFORMAT (-19, malformed reply); 0 after a reply */
    unsigned long long written;/* bytes written since the caller last cleared it */
    bool more;                 /* more follows at once (a message body): writes are
                                * corked (MSG_MORE) until one without it */
} smtp_client;

/* How to make an outgoing TCP connection (the smtp transport's options). */
typedef struct smtp_connect_opts {
    const char *interface;     /* local IP address to bind to, or NULL */
    int connect_timeout;       /* seconds; 0: the system's own */
    bool keepalive;            /* SO_KEEPALIVE */
    int tos;                   /* IP_TOS / IPV6_TCLASS byte (DSCP << 2); -1: leave alone */
} smtp_connect_opts;

typedef struct smtp_reply {
    int code;                  /* 0: no reply (timeout/connection lost) */
    const char *text;          /* all lines, "\n"-joined, without codes */
    const char *first_line;    /* "250 text" as received (for C= and messages) */
} smtp_reply;

/* Connect to ip:port. ST_DEFER with *err on failure. */
status smtp_client_connect(smtp_client *c, const char *ip, int port, const char *interface,
                           int connect_timeout, int timeout, arena *a, char **err);
status smtp_client_connect_opts(smtp_client *c, const char *ip, int port, const smtp_connect_opts *o, int timeout,
                                arena *a, char **err);
/* Connect to a Unix-domain socket (LMTP). */
status smtp_client_connect_unix(smtp_client *c, const char *path, int timeout, arena *a, char **err);
status smtp_client_read(smtp_client *c, smtp_reply *r);
status smtp_client_send(smtp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
status smtp_client_write(smtp_client *c, const char *p, size_t n);
void smtp_client_close(smtp_client *c);
/* Parse an EHLO (or LHLO) response's extension keywords into c. */
void smtp_client_parse_ehlo(smtp_client *c, const char *text);

#endif
