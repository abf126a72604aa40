/* tls.c: OpenSSL sessions for STARTTLS (see tls.h). */
#include "tls/tls.h"
#include "config/config.h"
#include "core/list.h"
#include "core/state.h"
#include "expand/expand.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

struct tls_conn {
    SSL *ssl;
    SSL_CTX *ctx;
    int rfd, wfd;
    int rflags, wflags;        /* the descriptors' flags before, restored at the end */
    tls_info info;
};

/* ---- openssl_options ------------------------------------------------------ */

static const struct { const char *name; unsigned long long op; } ssl_ops[] = {
    { "all", SSL_OP_ALL },
    { "allow_unsafe_legacy_renegotiation", SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION },
    { "cipher_server_preference", SSL_OP_CIPHER_SERVER_PREFERENCE },
    { "dont_insert_empty_fragments", SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS },
    { "enable_middlebox_compat", SSL_OP_ENABLE_MIDDLEBOX_COMPAT },
    { "ignore_unexpected_eof", SSL_OP_IGNORE_UNEXPECTED_EOF },
    { "legacy_server_connect", SSL_OP_LEGACY_SERVER_CONNECT },
    { "no_anti_replay", SSL_OP_NO_ANTI_REPLAY },
    { "no_compression", SSL_OP_NO_COMPRESSION },
    { "no_renegotiation", SSL_OP_NO_RENEGOTIATION },
    { "no_session_resumption_on_renegotiation", SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION },
    { "no_sslv2", 0 },                     /* (SSLv2 is gone from OpenSSL 3) */
    { "no_sslv3", SSL_OP_NO_SSLv3 },
    { "no_ticket", SSL_OP_NO_TICKET },
    { "no_tlsv1", SSL_OP_NO_TLSv1 },
    { "no_tlsv1_1", SSL_OP_NO_TLSv1_1 },
    { "no_tlsv1_2", SSL_OP_NO_TLSv1_2 },
    { "no_tlsv1_3", SSL_OP_NO_TLSv1_3 },
    { "prioritize_chacha", SSL_OP_PRIORITIZE_CHACHA },
    { "single_dh_use", 0 },                /* (always so in OpenSSL 3) */
    { "single_ecdh_use", 0 },
    { "tls_rollback_bug", SSL_OP_TLS_ROLLBACK_BUG },
};

bool tls_parse_openssl_options(const char *s, unsigned long long *set, unsigned long long *clear, const char **err)
{
    *set = *clear = 0;
    while (s && *s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        char sign = *s;
        if (sign != '+' && sign != '-') {
            *err = "each openssl_options item must start with + or -";
            return false;
        }
        const char *name = ++s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        size_t n = (size_t)(s - name);
        size_t i = 0;
        while (i < sizeof ssl_ops / sizeof ssl_ops[0] &&
               (strlen(ssl_ops[i].name) != n || strncasecmp(ssl_ops[i].name, name, n) != 0))
            i++;
        if (i == sizeof ssl_ops / sizeof ssl_ops[0]) {
            *err = "unknown openssl_options item";
            return false;
        }
        if (sign == '+') {
            *set |= ssl_ops[i].op;
            *clear &= ~ssl_ops[i].op;
        } else {
            *clear |= ssl_ops[i].op;
            *set &= ~ssl_ops[i].op;
        }
    }
    return true;
}

/* ---- the server's context ------------------------------------------------- */

static const char *ssl_error(arena *a)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    if (!e)
        return "unknown OpenSSL error";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return arena_strdup(a, buf);
}

/* An option's value, expanded now; NULL when unset or empty.  *failed on an
 * expansion failure (with *err). */
static const char *opt_expand(enum main_opt o, arena *a, bool *failed, char **err)
{
    const char *name = main_optdefs[o].name;
    const char *v = cfg_str(o);
    if (!v || !*v)
        return NULL;
    char *out = NULL, *e = NULL;
    if (expand_string(v, a, &out, &e) != ST_OK) {
        *failed = true;
        *err = arena_printf(a, "(%s): failed to expand \"%s\": %s", name, v, e ? e : "");
        return NULL;
    }
    return out && *out ? out : NULL;
}

/* No tls_certificate: a self-signed certificate made now for
 * primary_hostname (as Exim does), with a fresh P-256 key. */
static bool selfsigned(SSL_CTX *ctx, arena *a, char **err)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = false;
    if (!key || !x)
        goto done;
    unsigned char serial[8];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
        BN_free(bn);
        goto done;
    }
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 60L * 60 * 24 * 30);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    const char *cn = cfg_str(MO_primary_hostname);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"postern (self-signed)", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)(cn && *cn ? cn : "localhost"), -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, key, EVP_sha256()))
        goto done;
    ok = SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
done:
    if (!ok)
        *err = arena_printf(a, "(self-signed certificate): %s", ssl_error(a));
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

/* tls_certificate and tls_privatekey: lists, paired in order (one pair
 * per key type); a missing key means the key is in the certificate file. */
static bool load_certs(SSL_CTX *ctx, const char *certs, const char *keys, arena *a, char **err)
{
    int cs = 0, ks = 0;
    char *c, *k;
    while ((c = list_next(&certs, &cs, a))) {
        k = keys ? list_next(&keys, &ks, a) : NULL;
        if (SSL_CTX_use_certificate_chain_file(ctx, c) != 1) {
            *err = arena_printf(a, "(SSL_CTX_use_certificate_chain_file file=%s): %s", c, ssl_error(a));
            return false;
        }
        const char *kf = k && *k ? k : c;
        if (SSL_CTX_use_PrivateKey_file(ctx, kf, SSL_FILETYPE_PEM) != 1) {
            *err = arena_printf(a, "(SSL_CTX_use_PrivateKey_file file=%s): %s", kf, ssl_error(a));
            return false;
        }
    }
    return true;
}

/* tls_verify_certificates: "system", a file of CA certificates, or a
 * directory of them. */
static bool load_cas(SSL_CTX *ctx, const char *cas, arena *a, char **err)
{
    if (!cas || !strcmp(cas, "system"))
        return SSL_CTX_set_default_verify_paths(ctx) == 1 ||
               (*err = arena_printf(a, "(tls_verify_certificates system): %s", ssl_error(a)), false);
    struct stat sb;
    bool dir = stat(cas, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : cas, dir ? cas : NULL) != 1) {
        *err = arena_printf(a, "(tls_verify_certificates %s): %s", cas, ssl_error(a));
        return false;
    }
    if (!dir) {
        /* the CAs a client is told it may present certificates from */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cas);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    return true;
}

static int sni_cb(SSL *ssl, int *al, void *arg)
{
    (void)al;
    tls_conn *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name && !c->info.sni)
        c->info.sni = arena_strdup(ps.conn, name);
    return SSL_TLSEXT_ERR_OK;
}

/* Accept any client certificate during the handshake: whether it verified
 * is looked at afterwards (tls_try_verify_hosts goes on without one). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static SSL_CTX *server_ctx(tls_conn *c, const tls_server_opts *o, arena *a, char **err)
{
    bool failed = false;
    const char *certs = opt_expand(MO_tls_certificate, a, &failed, err);
    const char *keys = failed ? NULL : opt_expand(MO_tls_privatekey, a, &failed, err);
    const char *ciphers = failed ? NULL : opt_expand(MO_tls_require_ciphers, a, &failed, err);
    const char *dh = failed ? NULL : opt_expand(MO_tls_dhparam, a, &failed, err);
    const char *curves = failed ? NULL : opt_expand(MO_tls_eccurve, a, &failed, err);
    const char *cas = failed ? NULL : opt_expand(MO_tls_verify_certificates, a, &failed, err);
    if (failed)
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *err = arena_printf(a, "(SSL_CTX_new): %s", ssl_error(a));
        return NULL;
    }
    unsigned long long set = 0, clear = 0;
    const char *perr = NULL;
    const char *ops = cfg_str(MO_openssl_options);
    if (!tls_parse_openssl_options(ops, &set, &clear, &perr)) {
        *err = arena_printf(a, "(openssl_options \"%s\"): %s", ops, perr);
        goto fail;
    }
    SSL_CTX_set_options(ctx, set);
    SSL_CTX_clear_options(ctx, clear);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    if (!(certs ? load_certs(ctx, certs, keys, a, err) : selfsigned(ctx, a, err)))
        goto fail;
    if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        *err = arena_printf(a, "(SSL_CTX_set_cipher_list \"%s\"): %s", ciphers, ssl_error(a));
        goto fail;
    }
    if (dh && strcasecmp(dh, "none") != 0) {
        BIO *f = BIO_new_file(dh, "r");
        EVP_PKEY *p = f ? PEM_read_bio_Parameters(f, NULL) : NULL;
        BIO_free(f);
        if (!p || SSL_CTX_set0_tmp_dh_pkey(ctx, p) != 1) {
            EVP_PKEY_free(p);
            *err = arena_printf(a, "(tls_dhparam %s): not usable DH parameters", dh);
            goto fail;
        }
    } else if (!dh) {
        SSL_CTX_set_dh_auto(ctx, 1);
    }
    if (curves && strcasecmp(curves, "auto") != 0 && SSL_CTX_set1_groups_list(ctx, curves) != 1) {
        *err = arena_printf(a, "(tls_eccurve \"%s\"): %s", curves, ssl_error(a));
        goto fail;
    }
    if (o->verify_try || o->verify_require) {
        if (!load_cas(ctx, cas, a, err))
            goto fail;
        /* tls_verify_hosts: no certificate, or one that does not verify,
         * ends the handshake; tls_try_verify_hosts: noted only */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->verify_require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           o->verify_require ? NULL : verify_cb);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, c);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);    /* no resumption: no TLS 1.3 tickets either */
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- I/O ------------------------------------------------------------------ */

static int wait_io(tls_conn *c, int want, time_t deadline)
{
    struct pollfd p = { .fd = want == SSL_ERROR_WANT_WRITE ? c->wfd : c->rfd,
                        .events = want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
    for (;;) {
        int ms = -1;
        if (deadline) {
            time_t left = deadline - time(NULL);
            if (left <= 0)
                return 0;
            ms = (int)left * 1000;
        }
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

/* SSL_accept or SSL_connect until done, each wait bounded by the timeout;
 * false with *err ("(SSL_accept): reason"). */
static bool handshake(tls_conn *c, bool server, int timeout, arena *a, char **err)
{
    const char *what = server ? "SSL_accept" : "SSL_connect";
    time_t deadline = timeout > 0 ? time(NULL) + timeout : 0;
    for (;;) {
        ERR_clear_error();
        int r = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
        if (r == 1)
            return true;
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && wait_io(c, e, deadline) > 0)
            continue;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            *err = arena_printf(a, "(%s): timed out", what);
        else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
            *err = arena_printf(a, "(%s): TCP connection closed by peer", what);
        else
            *err = arena_printf(a, "(%s): %s", what, ssl_error(a));
        return false;
    }
}

static void set_nonblock(int fd, int *saved)
{
    *saved = fcntl(fd, F_GETFL);
    if (*saved >= 0)
        fcntl(fd, F_SETFL, *saved | O_NONBLOCK);
}

static void fill_info(tls_conn *c, arena *a)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    const char *v = SSL_get_version(c->ssl);
    /* Exim writes "TLSv1.3" as "TLS1.3" */
    char ver[32];
    size_t o = 0;
    for (const char *p = v; *p && o + 1 < sizeof ver; p++)
        if (!(*p == 'v' && p > v && p[-1] == 'S'))
            ver[o++] = *p;
    ver[o] = '\0';
    c->info.ver = arena_strdup(a, ver);
    c->info.bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
    c->info.cipher = arena_printf(a, "%s:%s:%d", ver, ci ? SSL_CIPHER_get_name(ci) : "unknown", c->info.bits);
    const char *std = ci ? SSL_CIPHER_standard_name(ci) : NULL;
    c->info.cipher_std = std ? arena_strdup(a, std) : NULL;
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    if (peer) {
        c->info.peercert = true;
        c->info.certificate_verified = SSL_get_verify_result(c->ssl) == X509_V_OK;
        char buf[1024];
        X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf);
        c->info.peerdn = arena_strdup(a, buf);
        X509_free(peer);
    }
}

status tls_server_start(int rfd, int wfd, int timeout, const tls_server_opts *o, void (*go_ahead)(void *),
                        void *arg, tls_conn **out, arena *a, char **err)
{
    tls_conn *c = arena_calloc(a, sizeof *c);
    c->rfd = rfd;
    c->wfd = wfd;
    if (!(c->ctx = server_ctx(c, o, a, err)))
        return ST_DEFER;
    if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_rfd(c->ssl, rfd) || !SSL_set_wfd(c->ssl, wfd)) {
        *err = arena_printf(a, "(SSL_new): %s", ssl_error(a));
        if (c->ssl)
            SSL_free(c->ssl);
        SSL_CTX_free(c->ctx);
        return ST_DEFER;
    }
    if (go_ahead)
        go_ahead(arg);
    set_nonblock(rfd, &c->rflags);
    set_nonblock(wfd, &c->wflags);
    if (!handshake(c, true, timeout, a, err)) {
        tls_close(c, false);
        return ST_FAIL;
    }
    fill_info(c, a);
    *out = c;
    return ST_OK;
}

status tls_client_start(int fd, int timeout, const tls_client_opts *o, tls_conn **out, arena *a, char **err)
{
    tls_conn *c = arena_calloc(a, sizeof *c);
    c->rfd = c->wfd = fd;
    c->rflags = c->wflags = -1;
    if (!(c->ctx = SSL_CTX_new(TLS_client_method()))) {
        *err = arena_printf(a, "(SSL_CTX_new): %s", ssl_error(a));
        return ST_DEFER;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_VERSION);
    unsigned long long set = 0, clear = 0;
    const char *perr = NULL;
    const char *ops = cfg_str(MO_openssl_options);
    if (!tls_parse_openssl_options(ops, &set, &clear, &perr)) {
        *err = arena_printf(a, "(openssl_options \"%s\"): %s", ops, perr);
        goto fail;
    }
    SSL_CTX_set_options(c->ctx, set);
    SSL_CTX_clear_options(c->ctx, clear);
    if (o->certificate && !load_certs(c->ctx, o->certificate, o->privatekey, a, err))
        goto fail;
    if (o->require_ciphers && SSL_CTX_set_cipher_list(c->ctx, o->require_ciphers) != 1) {
        *err = arena_printf(a, "(SSL_CTX_set_cipher_list \"%s\"): %s", o->require_ciphers, ssl_error(a));
        goto fail;
    }
    if ((o->verify_require || o->verify_try) && !load_cas(c->ctx, o->verify_certificates, a, err))
        goto fail;
    /* tls_verify_hosts: an unverified certificate ends the handshake;
     * tls_try_verify_hosts: it is only noted (CV=no) */
    SSL_CTX_set_verify(c->ctx, o->verify_require ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_fd(c->ssl, fd)) {
        *err = arena_printf(a, "(SSL_new): %s", ssl_error(a));
        goto fail;
    }
    if (o->sni && *o->sni)
        SSL_set_tlsext_host_name(c->ssl, o->sni);
    if (o->verify_name && *o->verify_name && (o->verify_require || o->verify_try)) {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(c->ssl, o->verify_name);
    }
    set_nonblock(fd, &c->rflags);
    if (!handshake(c, false, timeout, a, err)) {
        tls_close(c, false);
        return ST_DEFER;
    }
    fill_info(c, a);
    /* the server's certificate: verified against the CAs (and the name) */
    c->info.certificate_verified = c->info.peercert && SSL_get_verify_result(c->ssl) == X509_V_OK &&
                                   (o->verify_require || o->verify_try);
    if (o->sni && *o->sni)
        c->info.sni = arena_strdup(a, o->sni);
    *out = c;
    return ST_OK;
fail:
    if (c->ssl)
        SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    return ST_DEFER;
}

bool tls_peer_gone(tls_conn *c)
{
    if (SSL_pending(c->ssl) > 0)
        return true;
    struct pollfd p = { .fd = c->rfd, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0)
        return false;
    char b;
    ERR_clear_error();
    int r = SSL_peek(c->ssl, &b, 1);
    if (r > 0)
        return true;
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    return !(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
}

ssize_t tls_read(tls_conn *c, void *buf, size_t n, int timeout)
{
    time_t deadline = timeout > 0 ? time(NULL) + timeout : 0;
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w = wait_io(c, e, deadline);
            if (w > 0)
                continue;
            return w == 0 ? -2 : -1;
        }
        if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
            return 0;                   /* the connection closed without close_notify */
        ERR_clear_error();
        return -1;
    }
}

bool tls_write(tls_conn *c, const void *buf, size_t n, int timeout)
{
    time_t deadline = timeout > 0 ? time(NULL) + timeout : 0;
    const char *p = buf;
    while (n) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && wait_io(c, e, deadline) > 0)
            continue;
        ERR_clear_error();
        return false;
    }
    return true;
}

bool tls_pending(tls_conn *c)
{
    if (SSL_pending(c->ssl) > 0)
        return true;
    struct pollfd p = { .fd = c->rfd, .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

void tls_close(tls_conn *c, bool send_shutdown)
{
    if (!c)
        return;
    if (c->ssl) {
        if (send_shutdown) {
            ERR_clear_error();
            SSL_shutdown(c->ssl);       /* one try: the peer's reply is not awaited */
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->ctx) {
        SSL_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    if (c->rflags >= 0)
        fcntl(c->rfd, F_SETFL, c->rflags);
    if (c->wflags >= 0 && c->wfd != c->rfd)
        fcntl(c->wfd, F_SETFL, c->wflags);
    ERR_clear_error();
}

const tls_info *tls_get_info(const tls_conn *c)
{
    return &c->info;
}
