/* smtp.c: the smtp transport.  A run gets a batch of addresses with one
 * host list; it tries the hosts in order (hosts_randomize, hosts_max_try,
 * hosts_max_try_hardlimit, serialize_hosts, allow_localhost), then the
 * fallback hosts for what is still deferred, and on each connection speaks
 * SMTP or LMTP (protocol = lmtp): EHLO/LHLO with HELO fallback
 * (hosts_avoid_esmtp), PIPELINING (hosts_avoid_pipelining), SIZE, DSN,
 * CHUNKING (hosts_try_chunking), per-recipient LMTP replies, with the
 * command, data and final timeouts.  Results, messages, error numbers and
 * the per-host log lines are Exim's.  It keeps the connection open for the
 * next batch or a message waiting for the same host (connection reuse). */
#include "transport/transport.h"
#include "deliver/retry.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "route/route.h"
#include "smtp/client.h"
#include "tls/tls.h"
#include "auth/auth.h"
#include "transport/smtp_wait.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SMTP_CHUNK_SPLIT 8192          /* larger messages send their headers in a BDAT of their own */
#define SMTP_HOSTS_MAX 1000            /* host items from one lookup or list */
#define SERIALIZE_LIMIT 1

/* ---- one run of the transport -------------------------------------------- */

typedef struct run {
    const driver_inst *t;
    tp_ctx *ctx;
    address_item *addrs;       /* the addresses of this run (Envelope-to: lists them all) */
    bool lmtp;
    int defport;
    int cmd_timeout, data_timeout, final_timeout;
    smtp_connect_opts conn;
    bool update_waiting;       /* list the message as waiting for these hosts */
    bool message_defer;        /* the last host deferred this message only */
    int hosts_total, hosts_serial, hosts_fail, hosts_defer;
} run;

/* One attempt at one host: the addresses still to deliver, each with its
 * state: 'P' pending, 'A' accepted by RCPT, 'X' finished here. */
typedef struct sess {
    run *r;
    host_item *h;
    int port;
    smtp_client c;
    bool reused;
    bool no_tls;               /* this attempt goes in clear (after a failed TLS session) */
    bool retry_clear;          /* the TLS session failed: try again in clear (tls_tempfail_tryclear) */
    bool stale;                /* the kept connection was found closed at MAIL: open a fresh one */
    address_item **v;
    char *st;
    int n;
    bool pipelined;            /* replies now read belong to a pipelined batch */
    bool in_data;              /* the message is being (or has been) written: c.written counts it */
    bool completed;            /* an address got a final answer (the connection may carry more) */
    const char *greeting, *helo_response;
} sess;

static long long opt_n(const driver_inst *t, const char *name, long long dflt)
{
    const optval *v = driver_opt(t, name);
    return v ? v->n : dflt;
}

static const char *errstr(int e)
{
    return e > 0 ? strerror(e) : "unknown error";
}

/* Does host h match a host list option of the transport (Exim's check
 * against a given host: names by the host's name, IPs by its address)? */
static bool host_in(run *r, const char *opt, const host_item *h)
{
    const char *list = NULL;
    char *err = NULL;
    if (tp_opt_expand(r->t, opt, r->ctx, &list, &err) != ST_OK || !list || !*list || !h->address)
        return false;
    const char *save_name = ps.sender_host_name;
    ps.sender_host_name = h->name;
    const char *val;
    status st = match_ip(h->address, list, r->ctx->a, &val, &err);
    ps.sender_host_name = save_name;
    return st == ST_OK;
}

/* ---- host lists ---------------------------------------------------------- */

static void shuffle(host_item **v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        host_item *x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
}

/* A host list option (hosts, fallback_hosts): items as in manualroute's
 * route_list ("name", "name:port" with the colon doubled in a colon list,
 * "[ip]:port"); a "+" item separates groups whose orders hosts_randomize
 * shuffles separately (without hosts_randomize it is ignored). */
static host_item *parse_host_list(const char *list, bool randomize, arena *a)
{
    host_item *v[SMTP_HOSTS_MAX];
    int n = 0, group = 0;
    int sep = 0;
    char *it;
    while ((it = list_next(&list, &sep, a)) && n < SMTP_HOSTS_MAX) {
        if (!strcmp(it, "+")) {
            if (randomize)
                shuffle(v + group, n - group);
            group = n;
            continue;
        }
        if (!*it)
            continue;
        host_item *h = arena_calloc(a, sizeof *h);
        h->mx = -1;
        char *colon = strrchr(it, ':');
        if (it[0] == '[') {
            char *rb = strchr(it, ']');
            if (rb) {
                *rb = '\0';
                if (rb[1] == ':')
                    h->port = atoi(rb + 2);
                it++;
            }
        } else if (colon && strchr(it, ':') == colon) {
            *colon = '\0';
            h->port = atoi(colon + 1);
        }
        h->name = it;
        v[n++] = h;
    }
    if (randomize)
        shuffle(v + group, n - group);
    for (int i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    return n ? v[0] : NULL;
}

/* A copy of a router's host list (the transport may reorder it), shuffled
 * with hosts_randomize when it did not come from MX records. */
static host_item *copy_hosts(const host_item *src, bool randomize, arena *a)
{
    host_item *v[SMTP_HOSTS_MAX];
    int n = 0;
    for (; src && n < SMTP_HOSTS_MAX; src = src->next) {
        host_item *h = arena_alloc(a, sizeof *h);
        *h = *src;
        v[n++] = h;
    }
    if (randomize && n && v[0]->mx < 0)
        shuffle(v, n);
    for (int i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    return n ? v[0] : NULL;
}

/* Is ip one of this host's addresses: local_interfaces (default: every
 * interface) and extra_local_interfaces, as Exim decides "local host"? */
static bool ip_is_local(const char *ip, arena *a)
{
    const char *lists[2] = { cfg_str(MO_local_interfaces), cfg_str(MO_extra_local_interfaces) };
    if (!lists[0])
        lists[0] = "<; 0.0.0.0 ; ::0";
    unsigned char want[16];
    int wfam;
    if (!ip_parse(ip, want, &wfam, NULL))
        return false;
    for (int i = 0; i < 2; i++) {
        const char *l = lists[i];
        int sep = 0;
        char *it;
        while (l && (it = list_next(&l, &sep, a))) {
            /* "[ip]:port", "ip.port" or a plain address */
            if (it[0] == '[') {
                char *rb = strchr(it, ']');
                if (rb)
                    *rb = '\0';
                it++;
            }
            unsigned char b[16];
            int fam;
            if (!ip_parse(it, b, &fam, NULL)) {
                char *dot = strrchr(it, '.');
                if (!dot)
                    continue;
                *dot = '\0';
                if (!ip_parse(it, b, &fam, NULL))
                    continue;
            }
            static const unsigned char zero[16];
            if (!memcmp(b, zero, fam == 4 ? 4 : 16)) {
                if (fam == wfam && match_local_interface(ip))
                    return true;        /* a wildcard: every interface of the family */
            } else if (fam == wfam && !memcmp(b, want, fam == 4 ? 4 : 16)) {
                return true;
            }
        }
    }
    return false;
}

/* Look up the addresses of h (a name without one): by getaddrinfo()
 * (gethostbyname) or the DNS, IPv6 first as Exim does.  A multihomed host
 * becomes several items with the same name.  ST_OK, ST_DEFER (try
 * again), ST_FAIL (no such host). */
static status lookup_host(run *r, host_item *h)
{
    arena *a = r->ctx->a;
    unsigned char buf[16];
    if (inet_pton(AF_INET, h->name, buf) == 1 || inet_pton(AF_INET6, h->name, buf) == 1) {
        h->address = h->name;
        return ST_OK;
    }
    const char *addrs[SMTP_HOSTS_MAX];
    int n = 0;
    bool deferred = false;
    bool want6 = route_want_aaaa(h->name, a);
    if (tp_opt_bool(r->t, "gethostbyname")) {
        static const int fams[2] = { AF_INET6, AF_INET };
        for (int f = want6 ? 0 : 1; f < 2; f++) {
            struct addrinfo hints = { .ai_family = fams[f], .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
            int e = getaddrinfo(h->name, NULL, &hints, &res);
            if (e == EAI_AGAIN)
                deferred = true;
            if (e != 0)
                continue;
            for (ai = res; ai && n < SMTP_HOSTS_MAX; ai = ai->ai_next) {
                char txt[INET6_ADDRSTRLEN];
                const void *p = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                         : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
                if (!inet_ntop(ai->ai_family, p, txt, sizeof txt))
                    continue;
                bool dup = false;
                for (int i = 0; i < n && !dup; i++)
                    dup = !strcmp(addrs[i], txt);
                if (!dup)
                    addrs[n++] = arena_strdup(a, txt);
            }
            freeaddrinfo(res);
        }
    } else {
        char *err = NULL;
        dns_resolver *res = dns_process_resolver(&err, a);
        if (!res)
            return ST_DEFER;
        dns_iface dns = dns_iface_unbound(res);
        static const int types[2] = { DNS_T_AAAA, DNS_T_A };
        for (int t = want6 ? 0 : 1; t < 2; t++) {
            dns_answer ans;
            status st = dns.lookup(dns.ctx, h->name, types[t], a, &ans);
            if (st == ST_DEFER)
                deferred = true;
            if (st != ST_OK)
                continue;
            for (int i = 0; i < ans.nrr && n < SMTP_HOSTS_MAX; i++)
                if (ans.rr[i].text)
                    addrs[n++] = ans.rr[i].text;
            if (ans.sec == DNS_SEC_SECURE)
                h->dnssec = true;
        }
    }
    if (!n)
        return deferred ? ST_DEFER : ST_FAIL;
    h->address = addrs[0];
    host_item *tail = h;
    for (int i = 1; i < n; i++) {
        host_item *x = arena_alloc(a, sizeof *x);
        *x = *h;
        x->address = addrs[i];
        x->next = tail->next;
        tail->next = x;
        tail = x;
    }
    return ST_OK;
}

/* ---- results --------------------------------------------------------------- */

static void mark_host(sess *s, address_item *a)
{
    a->host_used = s->h->name;
    a->host_address_used = s->h->address;
    a->port_used = s->port;
    a->smtp_greeting = s->greeting;
    a->helo_response = s->helo_response;
    const tls_info *ti = s->c.tls ? tls_get_info(s->c.tls) : NULL;
    a->tls_cipher = ti ? ti->cipher : NULL;
    a->tls_peerdn = ti ? ti->peerdn : NULL;
    a->tls_verified = ti && ti->certificate_verified;
    a->authenticator = s->c.authenticator;
}

/* Exim's set_errno: every address still open in this attempt gets the
 * result (and the host, unless with_host is false). */
static void set_open(sess *s, status st, int err, const char *msg, bool pass, bool with_host)
{
    for (int i = 0; i < s->n; i++) {
        if (s->st[i] == 'X')
            continue;
        address_item *a = s->v[i];
        a->result = st;
        a->basic_errno = err;
        if (msg) {
            a->message = msg;
            a->pass_message = pass;
        }
        if (with_host)
            mark_host(s, a);
        s->st[i] = 'X';
    }
}

/* The per-host log line (and message log line) of a deferral. */
static void write_logs(run *r, const host_item *h, int port, const char *msg, int err)
{
    gstr g;
    gstr_init(&g, r->ctx->a, 128);
    gstr_printf(&g, "H=%s [%s]", h->name, h->address);
    if (logsel_on(&cfg->logsel, LS_OUTGOING_PORT))
        gstr_printf(&g, ":%d", port);
    if (msg) {
        gstr_printf(&g, ": %s", msg);
        if (err > 0)
            gstr_printf(&g, ": %s", strerror(err));
    } else {
        gstr_printf(&g, " %s", errstr(err));
    }
    log_write(LOG_MAIN, "%s %s", r->ctx->m->id, g.s);
    spool_msglog(r->ctx->ss, r->ctx->m->id, g.s);
}

/* " (N bytes written)" of the message data so far, as Exim adds to a
 * timeout's message; "" before any. */
static const char *bytes_written(sess *s)
{
    return s->in_data && s->c.written ? arena_printf(s->r->ctx->a, " (%llu bytes written)", s->c.written) : "";
}

/* How an exchange failed: a reply, a failed read, a failed command write
 * or a failed write of the message data. */
enum { F_READ, F_CMD, F_DATA };

/* What a failure means, as Exim words it; *err gets the error number,
 * *code the reply's first digit ('4' without a reply), *pass whether the
 * text came from the server. */
static const char *failure(sess *s, const smtp_reply *rp, int how, const char *cmd, int *err, char *code, bool *pass)
{
    arena *a = s->r->ctx->a;
    const char *pl = s->pipelined ? "pipelined " : "";
    *code = '4';
    *pass = false;
    if (how == F_CMD) {
        *err = s->c.os_errno;
        return arena_printf(a, "smtp send to %s [%s] failed: %s", s->h->name, s->h->address, errstr(*err));
    }
    if (how == F_DATA) {
        *err = s->c.os_errno;
        if (*err == ETIMEDOUT)
            return arena_printf(a, "SMTP timeout after %s%s%s", pl, cmd, bytes_written(s));
        if (*err == ECONNRESET || *err == 0) {
            *err = ERRNO_SMTPCLOSED;
            return arena_printf(a, "Remote host closed connection in response to %s%s", pl, cmd);
        }
        return arena_printf(a, "%s [%s]", s->h->name, s->h->address);
    }
    if (rp && rp->code) {
        *err = 0;
        *code = rp->first_line[0];
        *pass = true;
        return arena_printf(a, "SMTP error from remote mail server after %s%s: %s", pl, cmd, rp->first_line);
    }
    *err = s->c.read_error;
    if (*err == ETIMEDOUT)
        return arena_printf(a, "SMTP timeout after %s%s%s", pl, cmd, bytes_written(s));
    if (*err == ERRNO_SMTPFORMAT) {
        const char *t = s->c.last_reply && !strncmp(s->c.last_reply, "malformed SMTP reply: ", 22)
                        ? s->c.last_reply + 22 : "";
        while (isspace((unsigned char)*t))
            t++;
        return *t ? arena_printf(a, "Malformed SMTP reply in response to %s%s: %s", pl, cmd, t)
                  : arena_printf(a, "Malformed SMTP reply (an empty line) in response to %s%s", pl, cmd);
    }
    *err = ERRNO_SMTPCLOSED;
    return arena_printf(a, "Remote host closed connection in response to %s%s", pl, cmd);
}

/* ---- the connection kept for reuse --------------------------------------- */

typedef struct smtp_kept {
    smtp_client c;
    const driver_inst *t;
    char host[256], ip[64];
    int port;
    int messages;              /* transactions sent over it */
    bool in_use;               /* taken by a transaction now */
    bool open_tx;              /* a transaction was left open (every RCPT refused): RSET first */
} smtp_kept;

static long long max_messages(const driver_inst *t)
{
    return opt_n(t, "connection_max_messages", 500);
}

/* Use the kept connection for host h if it goes there: RSET first (it may
 * have timed out, or a transaction may be open). */
static bool take_kept(const driver_inst *t, const host_item *h, int port, smtp_client *c)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k || k->in_use || k->t != t || k->port != port || !h->address || strcmp(k->ip, h->address) != 0 ||
        !h->name || strcasecmp(k->host, h->name) != 0)
        return false;
    if (!smtp_kept_ready())
        return false;
    *c = k->c;
    k->in_use = true;
    return true;
}

/* The transaction's connection is closed: a kept one in use goes with it. */
static void conn_closed(smtp_client *c)
{
    smtp_client_close(c);
    if (ps.smtp_kept && ps.smtp_kept->in_use)
        ps.smtp_kept = NULL;
}

/* QUIT and close, without waiting for the reply (as Exim: the server
 * may still be reading a message we gave up on). */
static void quit_close(smtp_client *c)
{
    if (c->fd >= 0 && smtp_client_send(c, "QUIT\r\n") == ST_OK) {
        char buf[512];
        shutdown(c->fd, SHUT_WR);
        for (int i = 0; i < 16 && recv(c->fd, buf, sizeof buf, MSG_DONTWAIT) > 0; i++)
            ;
    }
    conn_closed(c);
}

/* After a transaction: keep the connection for the next batch or a
 * message waiting for this host, unless the transport allows only one
 * message per connection or this one has carried its maximum. */
static void keep_or_quit(const driver_inst *t, const host_item *h, int port, smtp_client *c, bool open_tx)
{
    long long max = max_messages(t);
    smtp_kept *k = ps.smtp_kept;
    int sent = 1;
    if (k && k->in_use) {
        sent = k->messages + 1;
        ps.smtp_kept = NULL;            /* replaced below (or closed) */
    }
    if (max == 1 || (max > 0 && sent >= max) || !h->name || !h->address || strlen(h->address) >= sizeof k->ip) {
        quit_close(c);
        return;
    }
    if (ps.smtp_kept && ps.deliver_continuing) {
        /* this process was given a connection to send one message down:
         * that one stays (the parent goes on with it); this one ends */
        quit_close(c);
        return;
    }
    if (ps.smtp_kept)
        smtp_kept_close(true);          /* another host's: one is kept at a time */
    k = arena_calloc(ps.conn, sizeof *k);
    k->c = *c;
    k->c.a = ps.conn;
    k->c.greeting = c->greeting ? arena_strdup(ps.conn, c->greeting) : NULL;
    k->c.helo_response = c->helo_response ? arena_strdup(ps.conn, c->helo_response) : NULL;
    k->c.last_reply = NULL;
    k->c.peer = c->peer ? arena_strdup(ps.conn, c->peer) : NULL;
    k->t = t;
    snprintf(k->host, sizeof k->host, "%s", h->name);
    snprintf(k->ip, sizeof k->ip, "%s", h->address);
    k->port = port;
    k->messages = sent;
    k->open_tx = open_tx;
    ps.smtp_kept = k;
}

bool smtp_kept_host(const char **tpname, const char **host)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k || k->c.tls)
        return false;
    *tpname = k->t->name;
    *host = k->host;
    return true;
}

/* Has the peer closed the connection (or said something, e.g. a 421,
 * while nothing was asked)?  Looked at without sending anything. */
static bool peer_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) != 0;
}

bool smtp_kept_ready(void)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k)
        return false;
    long long max = max_messages(k->t);
    if (max > 0 && k->messages >= max) {
        smtp_kept_close(true);
        return false;
    }
    /* after a completed transaction the next MAIL follows at once, as in
     * Exim; an open one is reset first */
    smtp_reply r;
    if ((k->c.tls ? tls_peer_gone(k->c.tls) : peer_gone(k->c.fd)) ||
        (k->open_tx && (smtp_client_send(&k->c, "RSET\r\n") != ST_OK ||
                        smtp_client_read(&k->c, &r) != ST_OK || r.code != 250))) {
        smtp_kept_close(false);
        return false;
    }
    k->open_tx = false;
    return true;
}

void smtp_kept_close(bool quit)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k)
        return;
    if (quit) {
        smtp_reply q;
        if (smtp_client_send(&k->c, "QUIT\r\n") == ST_OK)
            smtp_client_read(&k->c, &q);
    }
    smtp_client_close(&k->c);
    ps.smtp_kept = NULL;
}

int smtp_kept_fd(void)
{
    return ps.smtp_kept ? ps.smtp_kept->c.fd : -1;
}

void smtp_kept_sent(void)
{
    if (ps.smtp_kept)
        ps.smtp_kept->messages++;
}

void smtp_kept_forget(void)
{
    smtp_kept *k = ps.smtp_kept;
    if (k && k->c.fd >= 0)
        close(k->c.fd);
    ps.smtp_kept = NULL;
}

/* ---- the SMTP/LMTP session ------------------------------------------------ */

static bool client_sink(void *ctx, const char *p, size_t n)
{
    return smtp_client_write(ctx, p, n) == ST_OK;
}

static bool count_sink(void *ctx, const char *p, size_t n)
{
    (void)p;
    *(unsigned long long *)ctx += n;
    return true;
}

/* Setting up failed (greeting, EHLO/LHLO/HELO): a 5xx fails the addresses
 * when this is the last host, anything else defers them; the caller logs
 * the host line.  Exim's handling of a failure before MAIL. */
static status setup_failed(sess *s, const smtp_reply *rp, int how, const char *cmd)
{
    int err;
    char code;
    bool pass;
    const char *msg = failure(s, rp, how, cmd, &err, &code, &pass);
    bool send_quit = how == F_READ && rp && rp->code;
    set_open(s, s->h->next || code != '5' ? ST_DEFER : ST_FAIL, err, msg, pass, err != ECONNREFUSED);
    if (send_quit)
        quit_close(&s->c);
    else
        conn_closed(&s->c);
    return ST_DEFER;
}

/* dscp: a number (0-0x3F) or one of Exim's names; -1 when unset or
 * unknown (Exim ignores those). */
static int dscp_tos(run *r)
{
    const char *v = NULL;
    char *err = NULL;
    if (tp_opt_expand(r->t, "dscp", r->ctx, &v, &err) != ST_OK || !v)
        return -1;
    while (isspace((unsigned char)*v))
        v++;
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    char *s = arena_strndup(r->ctx->a, v, n);
    if (!*s)
        return -1;
    char *end;
    long num = strtol(s, &end, 0);
    if (end != s && !*end)
        return num >= 0 && num <= 0x3F ? (int)(num << 2) : -1;
    static const struct { const char *name; int tos; } names[] = {
        { "af11", IPTOS_DSCP_AF11 }, { "af12", IPTOS_DSCP_AF12 }, { "af13", IPTOS_DSCP_AF13 },
        { "af21", IPTOS_DSCP_AF21 }, { "af22", IPTOS_DSCP_AF22 }, { "af23", IPTOS_DSCP_AF23 },
        { "af31", IPTOS_DSCP_AF31 }, { "af32", IPTOS_DSCP_AF32 }, { "af33", IPTOS_DSCP_AF33 },
        { "af41", IPTOS_DSCP_AF41 }, { "af42", IPTOS_DSCP_AF42 }, { "af43", IPTOS_DSCP_AF43 },
        { "ef", IPTOS_DSCP_EF }, { "lowcost", IPTOS_LOWCOST }, { "lowdelay", IPTOS_LOWDELAY },
        { "mincost", IPTOS_MINCOST }, { "reliability", IPTOS_RELIABILITY }, { "throughput", IPTOS_THROUGHPUT },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name))
            return names[i].tos;
    return -1;
}

/* Connect, greeting, EHLO (LHLO; HELO after a refused EHLO or for
 * hosts_avoid_esmtp) and the extensions this host may use. */
/* What the EHLO reply offers, less what the transport will not use. */
static void ehlo_features(sess *s, const char *text)
{
    run *r = s->r;
    smtp_client_parse_ehlo(&s->c, text);
    if (s->c.pipelining && host_in(r, "hosts_avoid_pipelining", s->h))
        s->c.pipelining = false;
    if (s->c.chunking && !host_in(r, "hosts_try_chunking", s->h))
        s->c.chunking = false;
    if (s->c.size && opt_n(r->t, "size_addition", 1024) < 0)
        s->c.size = false;
}

/* An smtp transport option expanded for the host, or NULL (unset, empty,
 * or a failed expansion, which *bad notes). */
static const char *tls_opt(run *r, const char *name, bool *bad)
{
    const char *v = NULL;
    char *err = NULL;
    status st = tp_opt_expand(r->t, name, r->ctx, &v, &err);
    if (st != ST_OK && st != ST_FAIL_FORCED)
        *bad = true;
    return st == ST_OK && v && *v ? v : NULL;
}

/* STARTTLS when the server offers it (unless hosts_avoid_tls), then EHLO
 * again inside the session.  hosts_require_tls: no TLS means a deferral.
 * A refused STARTTLS goes on in clear (a 4xx only with
 * tls_tempfail_tryclear); a failed handshake defers, and the caller tries
 * the host again in clear when tls_tempfail_tryclear allows it. */
static status start_tls(sess *s, const char *helo)
{
    run *r = s->r;
    arena *a = r->ctx->a;
    bool require = host_in(r, "hosts_require_tls", s->h);
    bool tryclear = tp_opt_bool(r->t, "tls_tempfail_tryclear") && !require;
    if (!s->c.esmtp || !s->c.starttls || s->no_tls || host_in(r, "hosts_avoid_tls", s->h)) {
        if (!require)
            return ST_OK;
        set_open(s, ST_DEFER, ERRNO_TLSREQUIRED,
                 arena_printf(a, "a TLS session is required, but %s", s->c.starttls ? "an attempt to start TLS failed"
                                                                                      : "the server did not offer TLS support"),
                 false, true);
        quit_close(&s->c);
        return ST_DEFER;
    }
    smtp_reply rp;
    if (smtp_client_send(&s->c, "STARTTLS\r\n") != ST_OK)
        return setup_failed(s, NULL, F_CMD, "STARTTLS");
    if (smtp_client_read(&s->c, &rp) != ST_OK || (rp.code / 100 == 4 && !tryclear))
        return setup_failed(s, &rp, F_READ, "STARTTLS");
    if (rp.code / 100 != 2) {
        /* refused: on in clear, unless TLS is required */
        if (!require)
            return ST_OK;
        set_open(s, ST_DEFER, ERRNO_TLSREQUIRED, "a TLS session is required, but an attempt to start TLS failed",
                 false, true);
        quit_close(&s->c);
        return ST_DEFER;
    }
    bool bad = false;
    tls_client_opts o = {
        .certificate = tls_opt(r, "tls_certificate", &bad),
        .privatekey = tls_opt(r, "tls_privatekey", &bad),
        .require_ciphers = tls_opt(r, "tls_require_ciphers", &bad),
        .verify_certificates = tls_opt(r, "tls_verify_certificates", &bad),
        .sni = tls_opt(r, "tls_sni", &bad),
        .verify_require = host_in(r, "tls_verify_hosts", s->h),
    };
    o.verify_try = !o.verify_require && host_in(r, "tls_try_verify_hosts", s->h);
    o.verify_name = host_in(r, "tls_verify_cert_hostnames", s->h) ? s->h->name : NULL;
    char *err = NULL;
    tls_conn *t = NULL;
    if (bad)
        err = "(TLS options): an option of the transport failed to expand";
    if (bad || tls_client_start(s->c.fd, r->cmd_timeout, &o, &t, a, &err) != ST_OK) {
        set_open(s, ST_DEFER, ERRNO_TLSFAILURE, arena_printf(a, "TLS session: %s", err), false, true);
        conn_closed(&s->c);                 /* no QUIT: the session is in an unknown state */
        s->retry_clear = tryclear;
        return ST_DEFER;
    }
    s->c.tls = t;
    s->c.rpos = s->c.rlen = 0;
    ps.tls_out = *tls_get_info(t);
    /* what was learnt in clear is forgotten: EHLO again */
    const char *cmd = arena_printf(a, "EHLO %s", helo);
    if (smtp_client_send(&s->c, "%s\r\n", cmd) != ST_OK)
        return setup_failed(s, NULL, F_CMD, cmd);
    if (smtp_client_read(&s->c, &rp) != ST_OK || rp.code / 100 != 2)
        return setup_failed(s, &rp, F_READ, cmd);
    s->helo_response = s->c.helo_response = rp.first_line;
    s->c.pipelining = s->c.size = s->c.eightbit = s->c.dsn = s->c.chunking = s->c.ignorequota = s->c.starttls =
        s->c.smtputf8 = false;
    s->c.auth_mechs = NULL;
    ehlo_features(s, rp.text);
    return ST_OK;
}

/* The authenticator's way to the server. */
static bool auth_command(void *ctx, const char *line, int *code, const char **text)
{
    sess *s = ctx;
    smtp_reply rp;
    if (smtp_client_send(&s->c, "%s\r\n", line) != ST_OK || smtp_client_read(&s->c, &rp) != ST_OK) {
        *code = 0;
        *text = s->c.last_reply;
        return false;
    }
    *code = rp.code;
    *text = rp.code == 334 ? rp.text : rp.first_line + (strlen(rp.first_line) > 4 ? 4 : 0);
    return true;
}

/* Does the server offer mechanism name (in its AUTH keyword)? */
static bool offers(const char *mechs, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = mechs; p && *p;) {
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " ");
        if (k == n && !strncasecmp(p, name, n))
            return true;
        p += k;
    }
    return false;
}

/* SMTP AUTH for hosts in hosts_try_auth or hosts_require_auth: each
 * authenticator with a client side whose mechanism the server offers, in
 * the configuration's order, until one works.  A 5xx moves on to the next
 * (logged); a 4xx or a lost connection ends the attempt at this host.
 * hosts_require_auth and no success: deferred. */
static status authenticate(sess *s)
{
    run *r = s->r;
    arena *a = r->ctx->a;
    bool require = host_in(r, "hosts_require_auth", s->h);
    if (!require && !host_in(r, "hosts_try_auth", s->h))
        return ST_OK;
    const char *why = "server did not advertise AUTH support";
    if (s->c.auth_mechs && s->c.esmtp) {
        why = "no common mechanisms were found";
        auth_client_chan ch = { auth_command, s };
        for (const driver_inst *au = cfg->drivers[DC_AUTH]; au; au = au->next) {
            if (!auth_has_client(au) || !offers(s->c.auth_mechs, auth_public_name(au, a)))
                continue;
            why = "authentication attempt(s) failed";
            const char *msg = NULL;
            auth_rc rc = auth_client(au, &ch, a, &msg);
            if (rc == AUTH_OK) {
                s->c.authenticator = au->name;
                return ST_OK;
            }
            if (rc == AUTH_ERROR) {
                set_open(s, ST_DEFER, ERRNO_AUTHPROB, msg, false, true);
                quit_close(&s->c);
                return ST_DEFER;
            }
            if (rc == AUTH_DEFER) {
                smtp_reply rp = { .code = s->c.last_code, .text = s->c.last_reply, .first_line = s->c.last_reply };
                return setup_failed(s, s->c.last_code ? &rp : NULL, F_READ, arena_printf(a, "AUTH %s",
                                                                                       auth_public_name(au, a)));
            }
            log_write(LOG_MAIN, "%s %s authenticator failed H=%s [%s] %s", r->ctx->m->id, au->name, s->h->name,
                      s->h->address, msg ? msg : "");
        }
    }
    if (!require)
        return ST_OK;
    set_open(s, ST_DEFER, ERRNO_AUTHFAIL, arena_printf(a, "authentication required but %s", why), false, true);
    quit_close(&s->c);
    return ST_DEFER;
}

static status open_session(sess *s)
{
    run *r = s->r;
    tp_ctx *ctx = r->ctx;
    char *err = NULL;
    smtp_connect_opts co = r->conn;
    co.tos = dscp_tos(r);               /* expanded with $host set, as Exim does */
    /* interface: the first address of the host's family */
    const char *ilist = NULL;
    status ist = tp_opt_expand(r->t, "interface", ctx, &ilist, &err);
    if (ist != ST_OK && ist != ST_FAIL_FORCED) {
        set_open(s, ST_DEFER, ERRNO_EXPANDFAIL,
                 arena_printf(ctx->a, "failed to expand \"interface\" option for %s transport: %s", r->t->name,
                              err ? err : ""), false, false);
        return ST_ERROR;
    }
    co.interface = NULL;
    if (ist == ST_OK && ilist) {
        int sep = 0;
        char *it;
        bool v6 = strchr(s->h->address, ':') != NULL;
        while ((it = list_next(&ilist, &sep, ctx->a))) {
            unsigned char b[16];
            bool is4 = inet_pton(AF_INET, it, b) == 1, is6 = !is4 && inet_pton(AF_INET6, it, b) == 1;
            if (!is4 && !is6) {
                set_open(s, ST_DEFER, 0,
                         arena_printf(ctx->a, "\"%s\" is not a valid IP address for the \"interface\" option for %s "
                                      "transport", it, r->t->name), false, false);
                return ST_ERROR;
            }
            if (is6 == v6) {
                co.interface = it;
                break;
            }
        }
    }
    if (smtp_client_connect_opts(&s->c, s->h->address, s->port, &co, r->cmd_timeout, ctx->a, &err) != ST_OK) {
        /* no host in the address: Exim logs only the host line */
        set_open(s, ST_DEFER, s->c.os_errno ? s->c.os_errno : ERRNO_UNKNOWNERROR, s->c.os_errno ? NULL : err, false,
                 false);
        conn_closed(&s->c);
        return ST_DEFER;
    }
    smtp_reply rp;
    const char *cmd = "initial connection";
    if (smtp_client_read(&s->c, &rp) != ST_OK || rp.code / 100 != 2) {
        if (rp.code)
            s->greeting = s->c.greeting = rp.first_line;
        return setup_failed(s, &rp, F_READ, cmd);
    }
    s->greeting = s->c.greeting = rp.first_line;
    const char *helo = NULL;
    status hst = tp_opt_expand(r->t, "helo_data", ctx, &helo, &err);
    if (hst != ST_OK) {
        set_open(s, ST_DEFER, ERRNO_EXPANDFAIL,
                 arena_printf(ctx->a, "failed to expand helo_data: %s", err ? err : ""), false, false);
        quit_close(&s->c);
        return ST_DEFER;
    }
    if (!helo)
        helo = cfg_str(MO_primary_hostname);
    bool esmtp = !host_in(r, "hosts_avoid_esmtp", s->h);
    bool ehlo_sent = false;
    const char *ehlo_reply = NULL;
    if (esmtp) {
        cmd = arena_printf(ctx->a, "%s %s", r->lmtp ? "LHLO" : "EHLO", helo);
        if (smtp_client_send(&s->c, "%s\r\n", cmd) != ST_OK)
            return setup_failed(s, NULL, F_CMD, cmd);
        ehlo_sent = true;
        if (smtp_client_read(&s->c, &rp) != ST_OK || r->lmtp) {
            if (rp.code)
                s->helo_response = s->c.helo_response = rp.first_line;
            if (rp.code / 100 != 2)
                return setup_failed(s, &rp, F_READ, cmd);
        }
        if (rp.code / 100 != 2) {
            esmtp = false;              /* EHLO refused: HELO */
            ehlo_reply = rp.first_line;
        }
    }
    if (!esmtp) {
        cmd = arena_printf(ctx->a, "HELO %s", helo);
        if (smtp_client_send(&s->c, "%s\r\n", cmd) != ST_OK)
            return setup_failed(s, NULL, F_CMD, cmd);
        if (smtp_client_read(&s->c, &rp) != ST_OK || rp.code / 100 != 2) {
            if (rp.code)
                s->helo_response = s->c.helo_response = rp.first_line;
            if (!rp.code && ehlo_sent && s->c.read_error == ERRNO_SMTPCLOSED) {
                set_open(s, ST_DEFER, ERRNO_SMTPCLOSED,
                         arena_printf(ctx->a, "Remote host closed connection in response to %s (EHLO response was: %s)",
                                      cmd, ehlo_reply ? ehlo_reply : ""), false, true);
                conn_closed(&s->c);
                return ST_DEFER;
            }
            return setup_failed(s, &rp, F_READ, cmd);
        }
    }
    s->helo_response = s->c.helo_response = rp.first_line;
    if (esmtp) {
        s->c.esmtp = true;
        ehlo_features(s, rp.text);
        if (s->c.ignorequota && !(r->lmtp && tp_opt_bool(r->t, "lmtp_ignore_quota")))
            s->c.ignorequota = false;
    }
    status st = r->lmtp ? ST_OK : start_tls(s, helo);
    return st == ST_OK ? authenticate(s) : st;
}

/* The MAIL command's text (without CRLF). */
static const char *mail_command(sess *s)
{
    run *r = s->r;
    spool_msg *m = r->ctx->m;
    gstr g;
    gstr_init(&g, r->ctx->a, 128);
    gstr_printf(&g, "MAIL FROM:<%s>", m->sender);
    struct stat sb;
    if (s->c.size && fstat(r->ctx->data_fd, &sb) == 0 && sb.st_size > SPOOL_ID_LEN + 3) {
        /* the message's size as Exim counts it (headers, the blank line,
         * the body), one more byte per line for CRLF, and size_addition */
        long long size = (long long)sb.st_size - (SPOOL_ID_LEN + 3) + 1;
        long long lines = m->body_linecount;
        for (const spool_header *hh = m->headers; hh; hh = hh->next)
            if (hh->type != '*')
                for (size_t i = 0; i < hh->len; i++)
                    lines += hh->text[i] == '\n';
        for (const spool_header *hh = m->headers; hh; hh = hh->next)
            if (hh->type != '*')
                size += (long long)hh->len;
        gstr_printf(&g, " SIZE=%lld", size + lines + opt_n(r->t, "size_addition", 1024));
    }
    /* an international message to a server that takes one (else it goes
     * as it is, Exim's utf8_downconvert = -1 for ASCII addresses) */
    if (m->smtputf8 && s->c.smtputf8)
        gstr_cat(&g, " SMTPUTF8");
    /* (AUTH= goes last, below) */
    if (s->c.dsn) {
        if (m->dsn_ret)
            gstr_printf(&g, " RET=%s", m->dsn_ret == SPOOL_RET_HDRS ? "HDRS" : "FULL");
        if (m->dsn_envid)
            gstr_printf(&g, " ENVID=%s", m->dsn_envid);
    }
    /* an authenticated connection passes on the message's authenticated
     * sender (xtext) */
    if (s->c.authenticator && ps.authenticated_sender && *ps.authenticated_sender) {
        gstr_cat(&g, " AUTH=");
        for (const unsigned char *p = (const unsigned char *)ps.authenticated_sender; *p; p++)
            if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
                gstr_printf(&g, "+%02X", *p);
            else
                gstr_catc(&g, (char)*p);
    }
    return g.s;
}

static const char *rcpt_command(sess *s, const address_item *a)
{
    gstr g;
    gstr_init(&g, s->r->ctx->a, 128);
    gstr_printf(&g, "RCPT TO:<%s>%s", a->address, s->c.ignorequota ? " IGNOREQUOTA" : "");
    if (s->c.dsn) {
        if (a->dsn_flags) {
            gstr_cat(&g, " NOTIFY=");
            if (a->dsn_flags & SPOOL_DSN_NEVER) {
                gstr_cat(&g, "NEVER");
            } else {
                static const struct { unsigned bit; const char *w; } nf[] = {
                    { SPOOL_DSN_SUCCESS, "SUCCESS" }, { SPOOL_DSN_FAILURE, "FAILURE" }, { SPOOL_DSN_DELAY, "DELAY" } };
                bool first = true;
                for (size_t k = 0; k < 3; k++)
                    if (a->dsn_flags & nf[k].bit) {
                        gstr_printf(&g, "%s%s", first ? "" : ",", nf[k].w);
                        first = false;
                    }
            }
        }
        if (a->dsn_orcpt)               /* only one the client gave (Exim makes none up) */
            gstr_printf(&g, " ORCPT=%s", a->dsn_orcpt);
    }
    return g.s;
}

/* A failure from MAIL on that concerns the whole transaction (Exim's
 * "message errors": a reply to MAIL, DATA or the end of data, or a
 * timeout after MAIL or the end of data, or the connection lost after the
 * end of data): 5xx fails, anything else defers (logged for the host,
 * and the host is not to blame).  Other failures defer with the host to
 * blame: ST_DEFER. */
static status tx_failed(sess *s, const smtp_reply *rp, int how, const char *cmd)
{
    int err;
    char code;
    bool pass;
    const char *msg = failure(s, rp, how, cmd, &err, &code, &pass);
    bool reply = how == F_READ && rp && rp->code;
    bool mail = !strncmp(cmd, "MAIL", 4), eod = !strncmp(cmd, "end ", 4);
    bool message_error = reply || (err == ETIMEDOUT && how == F_READ && (mail || eod)) ||
                         (err == ERRNO_SMTPCLOSED && how == F_READ && eod);
    if (how == F_READ && err == ETIMEDOUT && !strncmp(cmd, "RCPT", 4)) {
        /* a RCPT that times out: the address may be the problem, not the host */
        set_open(s, ST_DEFER, ETIMEDOUT, arena_printf(s->r->ctx->a, "SMTP timeout after %s", cmd), false, true);
        s->r->update_waiting = false;
        conn_closed(&s->c);
        return ST_OK;
    }
    if (s->reused && mail && !reply && err != ETIMEDOUT) {
        /* a kept connection the peer closed before our MAIL reached it
         * (its FIN was still on its way when we looked): nothing was
         * accepted, so the transaction goes over a new connection */
        s->stale = true;
        conn_closed(&s->c);
        return ST_DEFER;
    }
    if (reply && code == '4')
        err = mail ? ERRNO_MAIL4XX : ERRNO_DATA4XX;
    if (message_error && code == '5') {
        set_open(s, ST_FAIL, err, msg, pass, true);
    } else if (message_error) {
        write_logs(s->r, s->h, s->port, err > 0 ? arena_printf(s->r->ctx->a, "%s: %s", msg, strerror(err)) : msg, 0);
        set_open(s, ST_DEFER, err, msg, pass, true);
        s->r->message_defer = true;
    } else {
        set_open(s, ST_DEFER, err, msg, pass, true);
    }
    if (reply)
        quit_close(&s->c);
    else
        conn_closed(&s->c);
    return message_error ? ST_OK : ST_DEFER;
}

/* The reply to one RCPT. */
static void rcpt_result(sess *s, int i, const smtp_reply *rp)
{
    address_item *a = s->v[i];
    run *r = s->r;
    mark_host(s, a);
    if (rp->code / 100 == 2) {
        s->st[i] = 'A';
        return;
    }
    s->st[i] = 'X';
    /* Exim names the command without its parameters */
    a->message = arena_printf(r->ctx->a, "SMTP error from remote mail server after RCPT TO:<%s>: %s", a->address,
                              rp->first_line);
    a->pass_message = true;
    a->remote_reply_5xx = rp->code / 100 == 5;
    if (rp->code / 100 == 5) {
        a->result = ST_FAIL;
        s->completed = true;
        return;
    }
    a->result = ST_DEFER;
    a->basic_errno = ERRNO_RCPT4XX;
    if (s->h->next) {
        /* more hosts to try: the host line now (the last one's goes in the address's) */
        if (logsel_on(&cfg->logsel, LS_OUTGOING_PORT))
            log_write(LOG_MAIN, "%s H=%s [%s]:%d %s", r->ctx->m->id, s->h->name, s->h->address, s->port, a->message);
        else
            log_write(LOG_MAIN, "%s H=%s [%s]: %s", r->ctx->m->id, s->h->name, s->h->address, a->message);
    }
    r->update_waiting = false;
    a->retry_address_key = tp_opt_bool(r->t, "address_retry_include_sender")
                           ? arena_printf(r->ctx->a, "R:%s:<%s>", a->address, r->ctx->m->sender)
                           : arena_printf(r->ctx->a, "R:%s", a->address);
}

/* Write the message (DATA: dot-stuffed, without the final dot; BDAT: as
 * it is), or one part of it. */
static bool send_message(sess *s, const write_opts *base, bool bdat, int part)
{
    write_opts wo = *base;
    wo.dot_stuff = !bdat;
    wo.headers_only = part == 1;
    wo.body_only = part == 2;
    char *err = NULL;
    unsigned long long bytes;
    /* a DATA body is corked: it goes out in full segments with the final
     * dot, which is written uncorked right after */
    s->c.more = !bdat;
    bool ok = transport_write_message(s->r->ctx->m, s->r->ctx->data_fd, &wo, client_sink, &s->c, &bytes,
                                      s->r->ctx->a, &err) == ST_OK;
    s->c.more = false;
    return ok;
}

static unsigned long long message_bytes(sess *s, const write_opts *base, int part)
{
    write_opts wo = *base;
    wo.dot_stuff = false;
    wo.headers_only = part == 1;
    wo.body_only = part == 2;
    unsigned long long n = 0, bytes;
    char *err = NULL;
    transport_write_message(s->r->ctx->m, s->r->ctx->data_fd, &wo, count_sink, &n, &bytes, s->r->ctx->a, &err);
    return n;
}

/* The final reply (SMTP) or replies (LMTP: one per accepted recipient). */
static status final_replies(sess *s, const char *data_cmd)
{
    run *r = s->r;
    smtp_reply rp;
    s->c.timeout = r->final_timeout;
    const char *cmd = "end of data";
    if (!r->lmtp) {
        if (smtp_client_read(&s->c, &rp) != ST_OK || rp.code / 100 != 2)
            return tx_failed(s, &rp, F_READ, cmd);
        for (int i = 0; i < s->n; i++)
            if (s->st[i] == 'A') {
                address_item *a = s->v[i];
                a->result = ST_OK;
                a->message = NULL;
                a->smtp_confirmation = rp.first_line;
                a->dsn_passed_on = s->c.dsn;
                mark_host(s, a);
                s->st[i] = 'X';
            }
        s->completed = true;
        return ST_OK;
    }
    for (int i = 0; i < s->n; i++) {
        if (s->st[i] != 'A')
            continue;
        if (smtp_client_read(&s->c, &rp) != ST_OK)
            return tx_failed(s, &rp, F_READ, cmd);
        address_item *a = s->v[i];
        mark_host(s, a);
        s->st[i] = 'X';
        if (rp.code / 100 == 2) {
            a->result = ST_OK;
            a->message = NULL;
            a->smtp_confirmation = rp.first_line;
            s->completed = true;
            continue;
        }
        a->message = arena_printf(r->ctx->a, "LMTP error after %s: %s", data_cmd, rp.first_line);
        a->pass_message = true;
        a->remote_reply_5xx = rp.code / 100 == 5;
        a->result = rp.code / 100 == 5 ? ST_FAIL : ST_DEFER;
        if (a->result == ST_DEFER)
            a->retry_address_key = arena_printf(r->ctx->a, "R:%s", a->address);
    }
    return ST_OK;
}

/* One transaction: MAIL, the RCPTs and the message, pipelined when the
 * server allows it (DATA in the same batch; with CHUNKING the first BDAT
 * and its data too).  ST_OK: the host answered (each address has its
 * result, some may be deferred); ST_DEFER: a problem with the host (all
 * deferred). */
static status transaction(sess *s)
{
    run *r = s->r;
    tp_ctx *ctx = r->ctx;
    arena *a = ctx->a;
    smtp_client *c = &s->c;
    bool pipe = c->pipelining, bdat = c->chunking;
    smtp_reply rp;
    c->timeout = r->cmd_timeout;
    s->pipelined = false;

    const char *mail = mail_command(s);
    const char **rcpts = arena_alloc(a, sizeof *rcpts * (size_t)(s->n + 1));
    for (int i = 0; i < s->n; i++)
        rcpts[i] = rcpt_command(s, s->v[i]);

    /* the message: what the transport adds is fixed once for all passes */
    write_opts wo = { .crlf = true };
    wo.top_headers = tp_top_headers(r->t, r->addrs, ctx);
    wo.add_headers = tp_added_headers(r->t, r->addrs, ctx);
    wo.remove_headers = tp_removed_headers(r->t, r->addrs, ctx);
    /* BDAT: a message larger than SMTP_CHUNK_SPLIT sends its headers in
     * a chunk of their own first, so refused recipients are known before
     * the body goes (Exim does the same) */
    unsigned long long hsize = 0, bsize = 0;
    bool split = false;
    if (bdat) {
        hsize = message_bytes(s, &wo, 1);
        bsize = message_bytes(s, &wo, 2);
        split = hsize + bsize > SMTP_CHUNK_SPLIT && hsize > 0;
    }
    const char *data_cmd = !bdat ? "DATA" : arena_printf(a, "BDAT %llu LAST", split ? bsize : hsize + bsize);
    const char *first_bdat = split ? arena_printf(a, "BDAT %llu", hsize) : data_cmd;
    int accepted = 0;
    bool sent = false;          /* the message (or its last chunk) has gone */

    if (pipe) {
        /* MAIL, RCPTs and DATA (or the first BDAT and its data) in one go */
        gstr g;
        gstr_init(&g, a, 512);
        gstr_printf(&g, "%s\r\n", mail);
        for (int i = 0; i < s->n; i++)
            gstr_printf(&g, "%s\r\n", rcpts[i]);
        gstr_printf(&g, "%s\r\n", bdat ? first_bdat : "DATA");
        s->pipelined = true;
        if (smtp_client_write(c, g.s, g.len) != ST_OK)
            return tx_failed(s, NULL, F_CMD, mail);
        if (bdat) {
            c->written = 0;
            s->in_data = true;
            c->timeout = r->data_timeout;
            if (!send_message(s, &wo, true, split ? 1 : 0))
                return tx_failed(s, NULL, F_DATA, "sending data block");
            c->timeout = r->cmd_timeout;
            sent = !split;
        }
        if (smtp_client_read(c, &rp) != ST_OK || rp.code / 100 != 2) {
            /* the server has answered the rest too: read it, then give up */
            bool got = rp.code != 0;
            for (int i = 0; got && i <= s->n; i++) {
                smtp_reply x;
                got = smtp_client_read(c, &x) == ST_OK;
            }
            return tx_failed(s, &rp, F_READ, mail);
        }
        for (int i = 0; i < s->n; i++) {
            if (smtp_client_read(c, &rp) != ST_OK)
                return tx_failed(s, &rp, F_READ, arena_printf(a, "RCPT TO:<%s>", s->v[i]->address));
            rcpt_result(s, i, &rp);
            accepted += rp.code / 100 == 2;
        }
        if (!sent) {
            /* the reply to DATA (or to the headers' BDAT) */
            const char *cmd = bdat ? first_bdat : "DATA";
            bool ok = smtp_client_read(c, &rp) == ST_OK && rp.code / 100 == (bdat ? 2 : 3);
            if (!accepted) {
                /* nobody to send to: a DATA the server took anyway is ended */
                if (ok && !bdat && (smtp_client_write(c, ".\r\n", 3) != ST_OK || smtp_client_read(c, &rp) != ST_OK)) {
                    conn_closed(c);
                    return ST_OK;
                }
                goto no_recipients;
            }
            if (!ok)
                return tx_failed(s, &rp, F_READ, cmd);
        }
        s->pipelined = sent;    /* a single BDAT's reply still comes in the batch */
    } else {
        if (smtp_client_send(c, "%s\r\n", mail) != ST_OK)
            return tx_failed(s, NULL, F_CMD, mail);
        if (smtp_client_read(c, &rp) != ST_OK || rp.code / 100 != 2)
            return tx_failed(s, &rp, F_READ, mail);
        for (int i = 0; i < s->n; i++) {
            if (smtp_client_send(c, "%s\r\n", rcpts[i]) != ST_OK)
                return tx_failed(s, NULL, F_CMD, rcpts[i]);
            if (smtp_client_read(c, &rp) != ST_OK)
                return tx_failed(s, &rp, F_READ, arena_printf(a, "RCPT TO:<%s>", s->v[i]->address));
            rcpt_result(s, i, &rp);
            accepted += rp.code / 100 == 2;
        }
        if (!accepted)
            goto no_recipients;
        if (!bdat) {
            if (smtp_client_send(c, "DATA\r\n") != ST_OK)
                return tx_failed(s, NULL, F_CMD, "DATA");
            if (smtp_client_read(c, &rp) != ST_OK || rp.code != 354)
                return tx_failed(s, &rp, F_READ, "DATA");
        } else if (split) {
            if (smtp_client_send(c, "%s\r\n", first_bdat) != ST_OK)
                return tx_failed(s, NULL, F_CMD, first_bdat);
            c->written = 0;
            s->in_data = true;
            c->timeout = r->data_timeout;
            if (!send_message(s, &wo, true, 1))
                return tx_failed(s, NULL, F_DATA, "sending data block");
            c->timeout = r->cmd_timeout;
            if (smtp_client_read(c, &rp) != ST_OK || rp.code / 100 != 2)
                return tx_failed(s, &rp, F_READ, first_bdat);
        }
    }

    if (!sent) {
        /* the message (DATA: dot-stuffed, then the dot), or its last chunk */
        if (bdat && smtp_client_send(c, "%s\r\n", data_cmd) != ST_OK)
            return tx_failed(s, NULL, F_CMD, data_cmd);
        if (!s->in_data)
            c->written = 0;
        else                            /* the headers' chunk went: count on, without the command */
            c->written -= strlen(data_cmd) + 2;
        s->in_data = true;
        c->timeout = r->data_timeout;
        bool ok = !bdat ? send_message(s, &wo, false, 0) && smtp_client_write(c, ".\r\n", 3) == ST_OK
                        : send_message(s, &wo, true, split ? 2 : 0);
        if (!ok)
            return tx_failed(s, NULL, F_DATA, "sending data block");
    } else if (!accepted) {
        /* a pipelined BDAT with every recipient refused: its reply does not matter */
        smtp_client_read(c, &rp);
        goto no_recipients;
    }
    for (int i = 0; i < s->n; i++)
        if (s->st[i] == 'A')
            s->v[i]->flags |= (bdat ? AF_CHUNKING : 0) | (pipe ? AF_PIPELINING : 0);
    status st = final_replies(s, data_cmd);
    if (st != ST_OK || c->fd < 0)
        return st;
    c->timeout = r->cmd_timeout;        /* what a kept connection waits for (RSET, QUIT) */
    if (s->completed)
        keep_or_quit(r->t, s->h, s->port, c, false);
    else
        quit_close(c);
    return ST_OK;

no_recipients:
    /* every RCPT refused: the connection may carry more only when one of
     * them was final (a 5xx), as in Exim */
    s->pipelined = false;
    if (s->completed)
        keep_or_quit(r->t, s->h, s->port, c, true);
    else
        quit_close(c);
    return ST_OK;
}

/* One attempt at one host for the addresses pending in v (n of them).
 * ST_OK: the host answered (addresses have results); ST_DEFER: a problem
 * with the host (the caller logs it and tries the next); ST_ERROR: give
 * up the run. */
static status try_host(run *r, address_item **v, int n, host_item *h, int port)
{
    tp_ctx *ctx = r->ctx;
    if (!n)
        return ST_OK;
    sess S = { .r = r, .h = h, .port = port, .v = v, .n = n }, *s = &S;
    s->st = arena_alloc(ctx->a, (size_t)n + 1);
    for (int i = 0; i < n; i++) {
        /* clear what an earlier host left (not the host: as in Exim, an
         * address that cannot reach this one still names the last host
         * that answered for it) */
        address_item *a = v[i];
        a->basic_errno = 0;
        a->message = NULL;
        a->pass_message = false;
        a->remote_reply_5xx = false;
        a->smtp_greeting = a->helo_response = NULL;
        a->retry_address_key = NULL;
        a->flags &= ~(unsigned)(AF_CONT_CONN | AF_CHUNKING | AF_PIPELINING);
        s->st[i] = 'P';
    }
    r->message_defer = false;
    status st;
    if (take_kept(r->t, h, port, &s->c)) {
        s->reused = true;
        s->greeting = s->c.greeting;
        s->helo_response = s->c.helo_response;
        for (int i = 0; i < n; i++)
            v[i]->flags |= AF_CONT_CONN;
    } else if ((st = open_session(s)) != ST_OK) {
        if (!s->retry_clear)
            return st;
        /* the TLS session failed and tls_tempfail_tryclear allows it: a new
         * connection, in clear */
        log_write(LOG_MAIN, "%s %s: delivering unencrypted to H=%s [%s] (not in hosts_require_tls)", r->ctx->m->id,
                  v[0]->message ? v[0]->message : "TLS session failed", h->name, h->address);
        s->retry_clear = false;
        s->no_tls = true;
        for (int i = 0; i < n; i++) {
            v[i]->result = ST_DEFER;
            v[i]->basic_errno = 0;
            v[i]->message = NULL;
            s->st[i] = 'P';
        }
        if ((st = open_session(s)) != ST_OK)
            return st;
    }
    st = transaction(s);
    if (s->stale) {
        s->stale = s->reused = false;
        for (int i = 0; i < n; i++) {
            v[i]->flags &= ~(unsigned)AF_CONT_CONN;
            s->st[i] = 'P';
        }
        if ((st = open_session(s)) != ST_OK)
            return st;
        st = transaction(s);
    }
    for (int i = 0; i < n; i++)
        if (s->st[i] != 'X') {          /* nothing may stay open */
            v[i]->result = ST_DEFER;
            if (!v[i]->message)
                v[i]->message = "SMTP transaction ended without a result";
        }
    return st;
}

/* ---- the host loop ------------------------------------------------------------ */

static bool ip_is_address(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Exim's retry key for a host: "T:name:ip" ("T:name" without
 * retry_include_ip_address), then ":port" unless 25 and "/interface" when
 * the transport binds to one. */
static const char *retry_host_key(run *r, const host_item *h, int port)
{
    arena *a = r->ctx->a;
    const char *pis = port == 25 ? "" : arena_printf(a, ":%d", port);
    const char *ilist = NULL;
    char *err = NULL;
    if (tp_opt_expand(r->t, "interface", r->ctx, &ilist, &err) == ST_OK && ilist && *ilist) {
        int sep = 0;
        char *it;
        bool v6 = strchr(h->address, ':') != NULL;
        while ((it = list_next(&ilist, &sep, a)))
            if ((strchr(it, ':') != NULL) == v6) {
                pis = arena_printf(a, "%s/%s", pis, it);
                break;
            }
    }
    /* a name that is an IP address, and an IPv6 address, go in [] */
    const char *name = ip_is_address(h->name) ? arena_printf(a, "[%s]", h->name) : h->name;
    const char *ip = strchr(h->address, ':') ? arena_printf(a, "[%s]", h->address) : h->address;
    return tp_opt_bool(r->t, "retry_include_ip_address") ? arena_printf(a, "T:%s:%s%s", name, ip, pis)
                                                         : arena_printf(a, "T:%s%s", name, pis);
}

/* The longest retry time (last cutoff) of the first retry rule for a host
 * name; -1 when no rule applies. */
static long host_retry_cutoff(const char *name, arena *a)
{
    for (const retry_rule *rr = cfg->retries; rr; rr = rr->next) {
        if (strcmp(rr->error, "*") != 0 || strchr(rr->pattern, '@'))
            continue;
        const char *val;
        char *e;
        if (strcmp(rr->pattern, "*") != 0 && match_domain(name, rr->pattern, a, &val, &e) != ST_OK)
            continue;
        long cut = -1;
        for (int i = 0; i < rr->nparams; i++)
            if (rr->params[i].cutoff > cut)
                cut = rr->params[i].cutoff;
        return cut;
    }
    return -1;
}

/* The addresses of a batch as a vector (to relink the list afterwards). */
static address_item **addr_vec(address_item *addrs, int *n, arena *a)
{
    int k = 0;
    for (address_item *x = addrs; x; x = x->next)
        k++;
    address_item **v = arena_alloc(a, sizeof *v * (size_t)(k + 1));
    k = 0;
    for (address_item *x = addrs; x; x = x->next)
        v[k++] = x;
    *n = k;
    return v;
}

static void relink(address_item **v, int n)
{
    for (int i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
}

static bool any_deferred(const address_item *addrs)
{
    for (; addrs; addrs = addrs->next)
        if (addrs->result == ST_DEFER)
            return true;
    return false;
}

/* Is a host whose address the transport looked up this machine (one of
 * its interface addresses, or named in hosts_treat_as_local)? */
static bool host_is_local(run *r, const host_item *h)
{
    const char *tal = cfg_str(MO_hosts_treat_as_local);
    char *e;
    const char *val;
    if (tal && match_domain(h->name, tal, r->ctx->a, &val, &e) == ST_OK)
        return true;
    for (const host_item *x = h; x && x->name == h->name; x = x->next)
        if (ip_is_local(x->address, r->ctx->a))
            return true;
    return false;
}

/* Try the hosts in order for the deferred addresses of addrs.  ST_ERROR
 * when the run must stop (a configuration problem, a local host). */
static status try_hosts(run *r, address_item *addrs, host_item *hostlist)
{
    r->addrs = addrs;
    tp_ctx *ctx = r->ctx;
    long long max_try = opt_n(r->t, "hosts_max_try", 5);
    long long hard = opt_n(r->t, "hosts_max_try_hardlimit", 50);
    int unexpired = 0, total = 0;
    int naddr = 0;
    for (address_item *a = addrs; a; a = a->next)
        naddr++;
    address_item **v = arena_alloc(ctx->a, sizeof *v * (size_t)(naddr + 1));
    /* a process given a kept connection sends down it only: other hosts
     * are skipped, unless none of them is the connection's */
    bool only_kept = ps.deliver_continuing && ps.smtp_kept, kept_found = false;
    const char *failed_key = NULL, *failed_msg = NULL;
    int failed_errno = 0;
    r->hosts_total = r->hosts_serial = r->hosts_fail = r->hosts_defer = 0;
again:;
    host_item *next;
    for (host_item *h = hostlist; h && unexpired < max_try && total < hard; h = next) {
        next = h->next;
        if (!h->address) {
            if (h->unusable)
                continue;
            status ls = lookup_host(r, h);
            if (ls != ST_OK) {
                if (ls == ST_DEFER)
                    r->hosts_defer++;
                else
                    r->hosts_fail++;
                h->unusable = true;
                for (address_item *a = addrs; a; a = a->next)
                    if (a->result == ST_DEFER) {
                        a->basic_errno = ERRNO_UNKNOWNHOST;
                        a->message = arena_printf(ctx->a, "failed to lookup IP address for %s", h->name);
                    }
                continue;
            }
            if (host_is_local(r, h) && !tp_opt_bool(r->t, "allow_localhost")) {
                for (address_item *a = addrs; a; a = a->next) {
                    a->result = ST_DEFER;
                    a->basic_errno = ERRNO_HOST_IS_LOCAL;
                    a->message = arena_printf(ctx->a, "%s transport found host %s to be local", r->t->name, h->name);
                }
                return ST_ERROR;
            }
            next = h->next;
        }
        int port = h->port ? h->port : r->defport;
        bool kept_here = ps.smtp_kept && !strcmp(ps.smtp_kept->ip, h->address) && ps.smtp_kept->port == port &&
                         ps.smtp_kept->t == r->t && !strcasecmp(ps.smtp_kept->host, h->name);
        if (only_kept && !kept_here)
            continue;
        kept_found = kept_found || kept_here;
        /* a host (or this message on it) before its retry time is skipped */
        if (!kept_here && !ps.deliver_force) {
            const char *key = retry_host_key(r, h, port);
            if (!retry_host_usable(key, arena_printf(ctx->a, "%s:%s", key, ctx->m->id), addrs->domain,
                                   (time_t)ctx->m->received, time(NULL), ctx->a))
                continue;
        }
        r->hosts_total++;
        ps.deliver_host = h->name;
        ps.deliver_host_address = h->address;

        /* serialize_hosts: skip a host another process is talking to */
        const char *serial = NULL;
        if (!kept_here && host_in(r, "serialize_hosts", h)) {
            serial = arena_printf(ctx->a, "host-serialize-%s", h->name);
            if (!smtp_serialize_start(serial, SERIALIZE_LIMIT, ctx->a)) {
                r->hosts_serial++;
                continue;
            }
        }
        /* hosts_max_try: at its limit, a later host with another MX
         * preference is tried next without counting this one */
        if (++unexpired >= max_try)
            for (host_item *x = h->next; x; x = x->next)
                if (x->mx != h->mx) {
                    next = x;
                    unexpired--;
                    break;
                }
        total++;
        int n = 0;
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_DEFER)
                v[n++] = a;
        status st = try_host(r, v, n, h, port);
        if (serial)
            smtp_serialize_end(serial, ctx->a);
        if (st == ST_ERROR)
            return ST_ERROR;
        const char *key = retry_host_key(r, h, port);
        /* the host tried before this one failed: its record is written now
         * (the address keeps only the last host's) */
        if (failed_key)
            retry_host_failed(failed_key, addrs->domain, failed_errno, failed_msg, (time_t)ctx->m->received, ctx->a);
        failed_key = NULL;
        if (st == ST_DEFER && n) {
            failed_key = key;
            failed_errno = v[0]->basic_errno;
            failed_msg = v[0]->message;
        }
        for (int i = 0; i < n; i++) {
            v[i]->retry_host_key = key;
            v[i]->retry_host_defer = st == ST_DEFER;
            v[i]->retry_message_key = r->message_defer ? arena_printf(ctx->a, "%s:%s", key, ctx->m->id) : NULL;
        }
        if (r->message_defer)
            r->update_waiting = false;
        if (st == ST_DEFER && n)
            write_logs(r, h, port, v[0]->message, v[0]->basic_errno);
        if (!any_deferred(addrs))
            return ST_OK;
        if (only_kept)
            break;                      /* no other host for a given connection */
        /* a message older than the host's retry times does not count
         * against hosts_max_try (all hosts get a try before it times out) */
        if (next) {
            long cut = host_retry_cutoff(h->name, ctx->a);
            if (cut < 0 || time(NULL) - ctx->m->received > cut)
                unexpired--;
        }
    }
    if (only_kept && !kept_found) {
        /* the connection goes nowhere this message wants: its own
         * connections (the given one stays with the process that has it) */
        only_kept = false;
        goto again;
    }
    /* every host busy with another process (serialize_hosts): the message
     * is not listed as waiting for them (Exim does not send it down that
     * process's connection) */
    if (r->hosts_total && r->hosts_serial == r->hosts_total)
        r->update_waiting = false;
    /* deferred without a word from any host */
    for (address_item *a = addrs; a; a = a->next) {
        if (a->result != ST_DEFER || a->message || (a->basic_errno != 0 && a->basic_errno != ERRNO_UNKNOWNERROR))
            continue;
        a->basic_errno = ERRNO_HRETRY;
        const char *fmt = r->hosts_total == 0 ? "retry time not reached for any host%s"
                          : r->hosts_fail == r->hosts_total ? "all host address lookups%s failed permanently"
                          : r->hosts_defer == r->hosts_total ? "all host address lookups%s failed temporarily"
                          : r->hosts_serial == r->hosts_total ? "connection limit reached for all hosts%s"
                          : r->hosts_fail + r->hosts_defer == r->hosts_total ? "all host address lookups%s failed"
                          : "some host address lookups failed and retry time not reached for other hosts or "
                            "connection limit reached%s";
        a->message = arena_printf(ctx->a, fmt, a->domain ? arena_printf(ctx->a, " for '%s'", a->domain) : "");
    }
    return ST_OK;
}

/* ---- the transport ----------------------------------------------------------- */

/* The port: the option (expanded), by number or service name; the
 * default follows the protocol. */
static bool get_port(run *r, address_item *addrs)
{
    const char *p = NULL;
    char *err = NULL;
    if (tp_opt_expand(r->t, "port", r->ctx, &p, &err) != ST_OK) {
        for (address_item *a = addrs; a; a = a->next)
            a->message = arena_printf(r->ctx->a, "failed to expand \"%s\" (\"port\" option) for %s transport: %s",
                                      tp_opt(r->t, "port"), r->t->name, err ? err : "");
        return false;
    }
    if (!p)
        p = r->lmtp ? "lmtp" : "smtp";
    if (isdigit((unsigned char)*p)) {
        char *end;
        long v = strtol(p, &end, 0);
        if (*end || v <= 0 || v > 65535) {
            for (address_item *a = addrs; a; a = a->next)
                a->message = arena_printf(r->ctx->a, "invalid port number for %s transport: %s", r->t->name, p);
            return false;
        }
        r->defport = (int)v;
        return true;
    }
    struct servent *se = getservbyname(p, "tcp");
    if (se) {
        r->defport = ntohs((uint16_t)se->s_port);
        return true;
    }
    /* names a system may lack in /etc/services */
    static const struct { const char *name; int port; } known[] = {
        { "smtp", 25 }, { "lmtp", 24 }, { "submission", 587 }, { "smtps", 465 }, { "submissions", 465 } };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcasecmp(p, known[i].name)) {
            r->defport = known[i].port;
            return true;
        }
    for (address_item *a = addrs; a; a = a->next)
        a->message = arena_printf(r->ctx->a, "TCP port \"%s\" is not defined for %s transport", p, r->t->name);
    return false;
}

/* $domain only when every address has the same one, $local_part (and
 * the other single-address variables) only for a single address. */
static void set_batch_vars(const driver_inst *t, address_item *addrs)
{
    tp_set_vars(t, addrs);
    if (!addrs->next)
        return;
    ps.local_part = NULL;
    ps.local_part_prefix = ps.local_part_suffix = NULL;
    ps.original_local_part = ps.original_domain = NULL;
    for (address_item *a = addrs->next; a; a = a->next)
        if (ps.domain && (!a->domain || strcmp(ps.domain, a->domain) != 0))
            ps.domain = NULL;
}

/* The fallback hosts of a batch: the router's fallback_hosts (not
 * expanded), else the transport's. */
static host_item *fallback_hosts(run *r, address_item *addrs, bool randomize)
{
    const char *l = NULL;
    const optval *v = addrs->router ? driver_opt(addrs->router, "fallback_hosts") : NULL;
    if (v && v->s && *v->s)
        l = v->s;
    if (!l)
        l = tp_opt(r->t, "fallback_hosts");
    return l && *l ? parse_host_list(l, randomize, r->ctx->a) : NULL;
}

/* One run for addresses with one domain (or with multi_domain).
 * Returns the batch, relinked in the order its results are logged. */
static address_item *run_batch(run *r, address_item *addrs)
{
    const driver_inst *t = r->t;
    tp_ctx *ctx = r->ctx;
    set_batch_vars(t, addrs);
    if (!get_port(r, addrs))
        return addrs;
    bool randomize = tp_opt_bool(t, "hosts_randomize");
    host_item *hosts = NULL;
    if (!addrs->hosts || (tp_opt_bool(t, "hosts_override") && tp_opt(t, "hosts"))) {
        const char *list = NULL;
        char *err = NULL;
        if (!tp_opt(t, "hosts")) {
            for (address_item *a = addrs; a; a = a->next)
                a->message = arena_printf(ctx->a, "%s transport called with no hosts set", t->name);
            return addrs;
        }
        if (tp_opt_expand(t, "hosts", ctx, &list, &err) != ST_OK) {
            for (address_item *a = addrs; a; a = a->next)
                a->message = arena_printf(ctx->a, "failed to expand list of hosts \"%s\" in %s transport: %s",
                                          tp_opt(t, "hosts"), t->name, err ? err : "");
            return addrs;
        }
        if (!(hosts = parse_host_list(list, randomize, ctx->a))) {
            for (address_item *a = addrs; a; a = a->next)
                a->message = arena_printf(ctx->a, "%s transport has empty hosts setting", t->name);
            return addrs;
        }
    } else {
        hosts = copy_hosts(addrs->hosts, randomize && !ps.deliver_continuing, ctx->a);
    }
    ps.deliver_host = hosts->name;
    ps.deliver_host_address = hosts->address;
    r->update_waiting = true;
    if (try_hosts(r, addrs, hosts) == ST_ERROR || !any_deferred(addrs))
        return addrs;
    /* still deferred: list the message as waiting for these hosts, so a
     * delivery that gets through to one sends it down the same
     * connection (not when a connection carries one message only) */
    if (r->update_waiting && max_messages(t) != 1)
        smtp_wait_add(t->name, hosts, ctx->m->id, ctx->a);
    /* what is still deferred goes to the fallback hosts (the router's,
     * else the transport's), as a run of its own */
    host_item *fb = fallback_hosts(r, addrs, randomize);
    if (!fb)
        return addrs;
    int n;
    address_item **order = addr_vec(addrs, &n, ctx->a);
    address_item *fbl = NULL, **tail = &fbl;
    /* in reverse order: Exim collects them one by one at the front of
     * its fallback chain, and its fallback run sends them that way */
    for (int i = n - 1; i >= 0; i--)
        if (order[i]->result == ST_DEFER) {
            order[i]->flags |= AF_FALLBACK_RUN;
            *tail = order[i];
            tail = &order[i]->next;
        }
    *tail = NULL;

    r->update_waiting = true;
    ps.deliver_host = fb->name;
    ps.deliver_host_address = fb->address;
    status fst = try_hosts(r, fbl, fb);
    /* logged as Exim logs its two runs: what the batch's own hosts took,
     * then the fallback run's addresses in the order it sent them */
    address_item **logv = arena_alloc(ctx->a, sizeof *logv * (size_t)(n + 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!(order[i]->flags & AF_FALLBACK_RUN))
            logv[k++] = order[i];
    for (address_item *x = fbl; x; x = x->next)
        logv[k++] = x;
    for (int i = 0; i < n; i++)
        order[i]->flags &= ~(unsigned)AF_FALLBACK_RUN;
    relink(logv, k);
    if (fst != ST_ERROR && r->update_waiting && any_deferred(logv[0]) && max_messages(t) != 1)
        smtp_wait_add(t->name, fb, ctx->m->id, ctx->a);
    return logv[0];
}

status transport_smtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    for (address_item *a = addrs; a; a = a->next) {
        a->result = ST_DEFER;
        a->message = NULL;
        a->basic_errno = 0;
        a->retry_host_key = a->retry_message_key = a->retry_address_key = NULL;
        a->retry_host_defer = false;
    }
    tp_set_vars(t, addrs);
    run R = { .t = t, .ctx = ctx }, *r = &R;
    const char *proto = tp_opt(t, "protocol");
    if (proto && (!strcasecmp(proto, "smtps") || !strcasecmp(proto, "submissions"))) {
        for (address_item *a = addrs; a; a = a->next)
            a->message = arena_printf(ctx->a, "%s transport: protocol = %s (TLS on connect) is not supported by "
                                      "this postern", t->name, proto);
        return ST_OK;
    }
    r->lmtp = proto && !strcasecmp(proto, "lmtp");
    r->cmd_timeout = (int)opt_n(t, "command_timeout", 300);
    r->data_timeout = (int)opt_n(t, "data_timeout", 300);
    r->final_timeout = (int)opt_n(t, "final_timeout", 600);
    r->conn.connect_timeout = (int)opt_n(t, "connect_timeout", 300);
    r->conn.keepalive = tp_opt_bool(t, "keepalive");

    /* a message with longer lines than the transport may send fails */
    if (ctx->m->max_received_linelength > opt_n(t, "message_linelength_limit", 998)) {
        for (address_item *a = addrs; a; a = a->next) {
            a->result = ST_FAIL;
            a->basic_errno = ERRNO_SMTPFORMAT;
            a->message = "message has lines too long for transport";
            a->pass_message = true;
        }
        return ST_OK;
    }

    /* multi_domain false: one domain per run (in the order they come) */
    bool multi = tp_opt_bool(t, "multi_domain");
    bool mixed = false;
    for (address_item *a = addrs->next; a; a = a->next)
        if (strcmp(a->domain ? a->domain : "", addrs->domain ? addrs->domain : "") != 0)
            mixed = true;
    if (multi || !mixed) {
        ctx->log_order = run_batch(r, addrs);
    } else {
        int n;
        address_item **order = addr_vec(addrs, &n, ctx->a);
        bool *done = arena_calloc(ctx->a, (size_t)n);
        address_item **grouped = arena_alloc(ctx->a, sizeof *grouped * (size_t)(n + 1));
        int ng = 0;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            address_item *head = NULL, **tail = &head;
            for (int j = i; j < n; j++)
                if (!done[j] && !strcmp(order[j]->domain ? order[j]->domain : "",
                                        order[i]->domain ? order[i]->domain : "")) {
                    done[j] = true;
                    *tail = order[j];
                    tail = &order[j]->next;
                }
            *tail = NULL;
            for (address_item *x = run_batch(r, head); x; x = x->next)
                grouped[ng++] = x;
        }
        /* the batch in the order the runs went */
        relink(grouped, ng);
        ctx->log_order = grouped[0];
    }

    return ST_OK;
}
