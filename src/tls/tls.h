/* tls.h: TLS sessions over OpenSSL for the SMTP server (STARTTLS) and,
 * later, the smtp transport: contexts built from the configuration, the
 * handshake, reads and writes with a timeout, and what Exim's $tls_in_*
 * variables and log fields show about a session.
 *
 * A session runs on a read and a write descriptor (the same socket for
 * the daemon, stdin and stdout for -bs), which it makes non-blocking:
 * every wait is a poll() bounded by the caller's timeout. */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include "core/arena.h"
#include "core/state.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_conn tls_conn;

/* What a session is, in Exim's terms ($tls_in_*, $tls_out_*, X=, CV=, ...). */
typedef tls_vars tls_info;

/* How the server side is set up for one connection: the main options
 * (tls_certificate, tls_privatekey, tls_require_ciphers, tls_dhparam,
 * tls_eccurve, openssl_options, tls_verify_certificates), and whether the
 * client's certificate is asked for (tls_try_verify_hosts) or required
 * (tls_verify_hosts). */
typedef struct tls_server_opts {
    bool verify_try;
    bool verify_require;
} tls_server_opts;

/* Start TLS as the server on rfd/wfd: the context is made, then
 * go_ahead (if not NULL) is called to say so in clear ("220 TLS go
 * ahead"; NULL for tls_on_connect_ports), then the handshake.  ST_OK: *out
 * is the session; ST_DEFER: the configuration could not be used (*err
 * says why, as "(what): reason"; go_ahead was not called: Exim's "454 TLS
 * currently unavailable"); ST_FAIL: the handshake failed (*err:
 * "(SSL_accept): reason"). */
status tls_server_start(int rfd, int wfd, int timeout, const tls_server_opts *o, void (*go_ahead)(void *),
                        void *arg, tls_conn **out, arena *a, char **err);

/* The client side (the smtp transport), from its options as expanded for
 * the host: tls_certificate/tls_privatekey (a client certificate, or
 * NULL), tls_require_ciphers, tls_verify_certificates ("system", a file
 * or a directory), tls_sni; the certificate is checked against
 * verify_name (tls_verify_cert_hostnames, or NULL for no name check),
 * required to verify (tls_verify_hosts) or only looked at
 * (tls_try_verify_hosts). */
typedef struct tls_client_opts {
    const char *certificate, *privatekey;
    const char *require_ciphers;
    const char *verify_certificates;
    const char *sni;
    const char *verify_name;
    bool verify_require, verify_try;
} tls_client_opts;

/* Start TLS as the client on fd (after the server's 220 to STARTTLS).
 * ST_OK: *out; ST_DEFER: the handshake or the set-up failed (*err as
 * "(SSL_connect): reason"). */
status tls_client_start(int fd, int timeout, const tls_client_opts *o, tls_conn **out, arena *a, char **err);

/* A kept connection: has the peer closed it, or sent something while
 * nothing was asked?  (What TLS itself sends, e.g. session tickets, is
 * not "something".)  Does not block. */
bool tls_peer_gone(tls_conn *c);

/* Read up to n bytes: >0 bytes, 0 the peer closed (TLS close or EOF),
 * -1 an error, -2 the timeout (seconds, 0: none) passed. */
ssize_t tls_read(tls_conn *c, void *buf, size_t n, int timeout);
/* Write all n bytes: false on error or timeout. */
bool tls_write(tls_conn *c, const void *buf, size_t n, int timeout);
/* Decrypted bytes waiting, or encrypted ones readable now. */
bool tls_pending(tls_conn *c);
/* End the session (a close_notify when send_shutdown) and free it; the
 * descriptors stay open. */
void tls_close(tls_conn *c, bool send_shutdown);
const tls_info *tls_get_info(const tls_conn *c);

/* openssl_options: "+name -name ..." into SSL_OP_* bits on top of
 * OpenSSL's defaults; false with *err for an unknown name.  (Pure: unit
 * tested.) */
bool tls_parse_openssl_options(const char *s, unsigned long long *set, unsigned long long *clear, const char **err);

#endif
