/* auth.h: SMTP AUTH (RFC 4954) through Exim's authenticators, both sides:
 * the server (the AUTH command of src/smtp) and the client (the smtp
 * transport's hosts_try_auth/hosts_require_auth).
 *
 * Drivers: plaintext and cram_md5 (auth.c); dovecot (the server side, over
 * a Unix or TCP socket to Dovecot's auth service) is being written.
 * A driver never writes to the SMTP connection itself: the server side
 * gets an auth_chan (send a challenge, read the client's line), the client
 * side an auth_client_chan (send a line, read the reply). */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include "config/config.h"
#include "core/arena.h"
#include <stdbool.h>
#include <stddef.h>

/* Exim's results of an authentication. */
typedef enum auth_rc {
    AUTH_OK,          /* 235 Authentication succeeded */
    AUTH_FAIL,        /* 535 Incorrect authentication data (client: refused, try the next) */
    AUTH_DEFER,       /* 435 Unable to authenticate at present (client: a temporary failure) */
    AUTH_CANCELLED,   /* 501 Authentication cancelled ("*" from the client) */
    AUTH_BAD64,       /* 501 Invalid base64 data */
    AUTH_UNEXPECTED,  /* 553 Initial data not expected */
    AUTH_LOST,        /* the connection went away */
    AUTH_ERROR,       /* client: a configuration problem (an expansion failed) */
} auth_rc;

/* The server's way to the client: send "334 " and the base64 of data
 * (len bytes), read the client's answer line (without CRLF, still in
 * base64).  false: the connection is lost. */
typedef struct auth_chan {
    bool (*challenge)(void *ctx, const char *data, size_t len, const char **line);
    void *ctx;
} auth_chan;

/* The client's way to the server: send line (without CRLF) and read the
 * reply.  false: the connection is lost or timed out. */
typedef struct auth_client_chan {
    bool (*command)(void *ctx, const char *line, int *code, const char **text);
    void *ctx;
} auth_client_chan;

/* base64 (RFC 4648).  decode: the length, or -1 for invalid input; the
 * result is NUL-terminated (it may contain NULs). */
char *auth_b64encode(const char *data, size_t len, arena *a);
long auth_b64decode(const char *text, arena *a, char **out);

/* One round: send challenge, get the client's data, decoded.  "*" is
 * AUTH_CANCELLED, bad base64 AUTH_BAD64. */
auth_rc auth_get_data(const auth_chan *ch, const char *challenge, size_t clen, arena *a, char **data, size_t *dlen);

/* The authenticator's public name (public_name, else its name), upper case. */
const char *auth_public_name(const driver_inst *au, arena *a);
/* Has it a server side (plaintext: server_condition; cram_md5:
 * server_secret; dovecot: server_socket)?  A client side (plaintext:
 * client_send; cram_md5: client_name and client_secret)? */
bool auth_has_server(const driver_inst *au);
bool auth_has_client(const driver_inst *au);

/* The server side of au for "AUTH <mechanism> [initial]": initial is the
 * text after the mechanism (NULL: none; "=": empty).  Sets $auth1..$auth4
 * (ps.auth_vars) on the way; server_condition, server_set_id and the rest
 * are the caller's (src/smtp), as in Exim.  *msg: why it was not OK, for
 * the log (may stay NULL). */
auth_rc auth_server(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a, const char **msg);

/* The drivers' server entry points (auth_server picks one). */
auth_rc auth_server_plaintext(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a,
                              const char **msg);
auth_rc auth_server_cram_md5(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a,
                             const char **msg);
/* (dovecot.c, not yet in the build: the dovecot driver is unavailable) */
auth_rc auth_server_dovecot(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a,
                            const char **msg);

/* server_condition (plaintext, and dovecot after success), expanded:
 * true/yes/1 AUTH_OK, false/no/0 or a forced failure AUTH_FAIL, an
 * expansion failure AUTH_DEFER (*msg), anything else AUTH_DEFER. */
auth_rc auth_check_condition(const driver_inst *au, const char *opt, arena *a, const char **msg);

/* The client side of au against a server that offers its mechanism:
 * AUTH_OK, AUTH_FAIL (refused: the caller tries another), AUTH_DEFER (a
 * temporary reply or a lost connection), AUTH_ERROR (an expansion failed;
 * *msg).  *msg also gets the server's reply when not OK. */
auth_rc auth_client(const driver_inst *au, const auth_client_chan *ch, arena *a, const char **msg);

#endif
