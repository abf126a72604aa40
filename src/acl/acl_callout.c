/* acl_callout.c: callout verification.  An address that routing verified
 * and sent to an smtp transport with hosts is checked by asking those
 * hosts: greeting, EHLO (HELO), MAIL FROM, optionally a random local part
 * first, RCPT TO, optionally postmaster, QUIT.  2xx verifies, 5xx fails,
 * anything else (4xx, no connection, a timeout) defers; the next host is
 * tried until one gives an answer.  Results go to the "callout" hints
 * database (a domain record and an address record, as Exim keeps them)
 * and are reused until they expire. */
#include "acl/acl_callout.h"
#include "acl/acl_int.h"
#include "config/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "route/route.h"
#include "smtp/client.h"
#include "spool/hints.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <lmdb.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CALLOUT_MAP_SIZE (16UL * 1024 * 1024)

/* ---- the cache ------------------------------------------------------------- */

enum { CC_UNKNOWN, CC_ACCEPT, CC_REJECT, CC_REJECT_MFNULL };

typedef struct dom_rec {
    int result, pm_result, random_result;
    long long stamp, pm_stamp, random_stamp;
} dom_rec;

typedef struct addr_rec {
    int result;
    long long stamp;
} addr_rec;

static MDB_env *cache_open(arena *a, MDB_txn **txn, MDB_dbi *dbi)
{
    char *err = NULL;
    const char *path = hints_path("callout", a, &err);
    MDB_env *env = NULL;
    unsigned d;
    if (!path || hints_open(path, CALLOUT_MAP_SIZE, false, &env, txn, &d, a) != 0)
        return NULL;
    *dbi = d;
    return env;
}

/* Records are text: "d result pm random stamp pmstamp randomstamp" or
 * "a result stamp". */
static bool cache_get(MDB_txn *txn, MDB_dbi dbi, const char *key, arena *a, char type, long long *f, int nf)
{
    key = acl_hint_key(a, "", key);
    MDB_val k = { strlen(key), (void *)key }, v;
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size < 2)
        return false;
    char *s = arena_strndup(a, v.mv_data, v.mv_size);
    if (s[0] != type)
        return false;
    char *p = s + 1;
    for (int i = 0; i < nf; i++) {
        char *end;
        f[i] = strtoll(p, &end, 10);
        if (end == p)
            return false;
        p = end;
    }
    return true;
}

static void cache_put(MDB_txn *txn, MDB_dbi dbi, const char *key, arena *a, const char *val)
{
    key = acl_hint_key(a, "", key);
    MDB_val k = { strlen(key), (void *)key }, v = { strlen(val), (void *)val };
    (void)mdb_put(txn, dbi, &k, &v, 0);
}

static bool get_domain(MDB_txn *txn, MDB_dbi dbi, const char *domain, arena *a, dom_rec *r)
{
    long long f[6];
    if (!cache_get(txn, dbi, domain, a, 'd', f, 6))
        return false;
    *r = (dom_rec){ (int)f[0], (int)f[1], (int)f[2], f[3], f[4], f[5] };
    long long now = time(NULL);
    bool negative = r->result != CC_ACCEPT || r->pm_result == CC_REJECT;
    long long expire = cfg_int(negative ? MO_callout_domain_negative_expire : MO_callout_domain_positive_expire);
    if (now - r->stamp > expire)
        return false;
    if (r->result != CC_REJECT) {
        if (now - r->pm_stamp > expire)
            r->pm_result = CC_UNKNOWN;
        if (now - r->random_stamp > expire)
            r->random_result = CC_UNKNOWN;
    }
    return true;
}

static bool get_address(MDB_txn *txn, MDB_dbi dbi, const char *key, arena *a, addr_rec *r)
{
    long long f[2];
    if (!cache_get(txn, dbi, key, a, 'a', f, 2))
        return false;
    r->result = (int)f[0];
    r->stamp = f[1];
    long long expire = cfg_int(r->result != CC_ACCEPT ? MO_callout_negative_expire : MO_callout_positive_expire);
    return time(NULL) - r->stamp <= expire;
}

/* ---- the state of one callout --------------------------------------------- */

typedef struct co {
    arena *a;
    const callout_opts *o;
    const address_item *ad;
    bool recipient;
    const char *address;       /* what RCPT TO names */
    const char *from;          /* MAIL FROM */
    const char *pm_mailfrom;
    callout_result *res;
    dom_rec newdom;
    addr_rec newaddr;
    int old_dom_result;
    /* the dialogue with the current host */
    smtp_client c;
    const char *last_cmd;      /* Exim's big_buffer: the last command sent */
    const char *buffer;        /* the last reply, whole ("" none) */
    const char *reply_text;    /* the last reply's lines without their codes */
    int err;                   /* 0: a reply came; else why not (errno or ERRNO_*) */
    bool send_quit;
} co;

/* The reply as Exim keeps it: every line with its code, "\n"-joined. */
static const char *whole_reply(arena *a, const smtp_reply *rp)
{
    if (!strchr(rp->text, '\n'))
        return rp->first_line;
    char code[4];
    snprintf(code, sizeof code, "%03d", rp->code);
    const char *p = rp->text, *out = "";
    while (p) {
        const char *nl = strchr(p, '\n');
        out = arena_printf(a, "%s%s%s%c%.*s", out, *out ? "\n" : "", code, nl ? '-' : ' ',
                           (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
        p = nl ? nl + 1 : NULL;
    }
    return out;
}

static int reply(co *x, const char *cmd, const char **msg);

/* Send a command and read its reply: the reply's class ('2', '4', '5'),
 * or 0 (x->err says why). */
static int command(co *x, const char *cmd, const char **msg)
{
    x->last_cmd = cmd;
    if (smtp_client_send(&x->c, "%s\r\n", cmd) != ST_OK) {
        x->err = x->c.os_errno ? x->c.os_errno : ERRNO_SMTPCLOSED;
        if (msg)
            *msg = arena_printf(x->a, "smtp send failed: %s", strerror(x->err > 0 ? x->err : EPIPE));
        x->send_quit = false;
        return 0;
    }
    return reply(x, cmd, msg);
}

/* Read one reply for cmd (sent already): its class, or 0 (x->err). */
static int reply(co *x, const char *cmd, const char **msg)
{
    smtp_reply rp;
    if (smtp_client_read(&x->c, &rp) != ST_OK) {
        x->err = x->c.read_error ? x->c.read_error : ERRNO_SMTPCLOSED;
        if (msg)
            *msg = x->err == ETIMEDOUT ? arena_printf(x->a, "SMTP timeout after %s", cmd)
                                       : arena_printf(x->a, "Remote host closed connection in response to %s", cmd);
        if (x->err == ETIMEDOUT)
            x->send_quit = false;
        return 0;
    }
    x->err = 0;
    x->buffer = whole_reply(x->a, &rp);
    x->reply_text = rp.text;
    return rp.first_line[0];
}

/* MAIL FROM and RCPT TO (sent together when the server offers
 * PIPELINING): 'o' RCPT accepted, 'f' RCPT refused (5xx), 'd' RCPT
 * deferred (4xx), 'm' MAIL not accepted, 0 no reply. */
static int mail_rcpt(co *x, const char *from, const char *rcpt, const char **msg)
{
    const char *mail = arena_printf(x->a, "MAIL FROM:<%s>", from);
    const char *cmd = arena_printf(x->a, "RCPT TO:<%s>", rcpt);
    int r;
    if (x->c.pipelining) {
        x->last_cmd = mail;
        if (smtp_client_send(&x->c, "%s\r\n%s\r\n", mail, cmd) != ST_OK) {
            x->err = x->c.os_errno ? x->c.os_errno : ERRNO_SMTPCLOSED;
            *msg = arena_printf(x->a, "smtp send failed: %s", strerror(x->err > 0 ? x->err : EPIPE));
            x->send_quit = false;
            return 0;
        }
        r = reply(x, mail, msg);
        if (r != '2') {
            if (r) {                         /* the RCPT's reply is read and dropped */
                const char *b = x->buffer;
                (void)reply(x, cmd, NULL);
                x->buffer = b;
                x->err = 0;
            }
            return r ? 'm' : 0;
        }
        x->last_cmd = cmd;
        r = reply(x, cmd, msg);
    } else {
        r = command(x, mail, msg);
        if (r != '2')
            return r ? 'm' : 0;
        r = command(x, cmd, msg);
    }
    if (r == '2')
        return 'o';
    if (r == 0)
        return 0;
    *msg = arena_printf(x->a, "SMTP error from remote mail server after %s: %s", cmd,
                        strchr(x->buffer, '\n') ? arena_strndup(x->a, x->buffer, strcspn(x->buffer, "\n"))
                                                : x->buffer);
    return r == '5' ? 'f' : 'd';
}

/* The port for host h: its own, else the transport's "port" (expanded). */
static int host_port(const driver_inst *t, const host_item *h, arena *a)
{
    if (h->port)
        return h->port;
    const optval *v = driver_opt(t, "port");
    char *p = NULL, *err = NULL;
    if (!v || !v->s || expand_string(v->s, a, &p, &err) != ST_OK || !p)
        p = "smtp";
    if (isdigit((unsigned char)*p)) {
        long n = strtol(p, NULL, 10);
        return n > 0 && n < 65536 ? (int)n : 25;
    }
    struct servent *se = getservbyname(p, "tcp");
    return se ? ntohs((uint16_t)se->s_port) : 25;
}

/* The transport's interface for this host's family, or NULL. */
static const char *host_interface(const driver_inst *t, const host_item *h, arena *a)
{
    const optval *v = driver_opt(t, "interface");
    char *list = NULL, *err = NULL;
    if (!v || !v->s || expand_string(v->s, a, &list, &err) != ST_OK || !list)
        return NULL;
    bool v6 = strchr(h->address, ':') != NULL;
    int sep = 0;
    const char *l = list;
    char *it;
    while ((it = list_next(&l, &sep, a))) {
        unsigned char b[16];
        if ((v6 ? inet_pton(AF_INET6, it, b) : inet_pton(AF_INET, it, b)) == 1)
            return it;
    }
    return NULL;
}

/* Connect, greeting, EHLO/HELO.  0: ready for MAIL; else 'f' (a 5xx:
 * the set-up was refused), 'd' (anything else); *msg says what. */
static int setup(co *x, const host_item *h, const char **msg)
{
    const driver_inst *t = x->ad->transport;
    int port = host_port(t, h, x->a);
    smtp_connect_opts copt = { .interface = host_interface(t, h, x->a),
                               .connect_timeout = x->o->connect >= 0 ? x->o->connect : x->o->timeout,
                               .tos = -1 };
    char *err = NULL;
    x->send_quit = true;
    x->buffer = "";
    x->last_cmd = "initial connection";
    if (smtp_client_connect_opts(&x->c, h->address, port, &copt, x->o->timeout, x->a, &err) != ST_OK) {
        x->err = x->c.os_errno ? x->c.os_errno : ERRNO_UNKNOWNERROR;
        x->send_quit = false;
        *msg = x->c.os_errno ? strerror(x->c.os_errno) : (err ? err : "connection failed");
        return 'd';
    }
    smtp_reply rp;
    if (smtp_client_read(&x->c, &rp) != ST_OK) {
        x->err = x->c.read_error ? x->c.read_error : ERRNO_SMTPCLOSED;
        if (x->err == ETIMEDOUT)
            x->send_quit = false;
        *msg = x->err == ETIMEDOUT ? "SMTP timeout after initial connection"
                                   : "Remote host closed connection in response to initial connection";
        return 'd';
    }
    x->err = 0;
    x->buffer = whole_reply(x->a, &rp);
    if (rp.code / 100 != 2) {
        *msg = arena_printf(x->a, "SMTP error from remote mail server after initial connection: %s", rp.first_line);
        return rp.code / 100 == 5 ? 'f' : 'd';
    }
    const optval *hv = driver_opt(t, "helo_data");
    char *helo = NULL;
    if (!hv || !hv->s || expand_string(hv->s, x->a, &helo, &err) != ST_OK || !helo || !*helo)
        helo = (char *)(cfg_str(MO_primary_hostname) ? cfg_str(MO_primary_hostname) : "localhost");
    const char *cmd = arena_printf(x->a, "EHLO %s", helo);
    int r = command(x, cmd, msg);
    if (r != '2' && r != 0)
        r = command(x, (cmd = arena_printf(x->a, "HELO %s", helo)), msg);
    if (r == 0)
        return 'd';
    if (r != '2') {
        *msg = arena_printf(x->a, "SMTP error from remote mail server after %s: %s", cmd, x->buffer);
        return r == '5' ? 'f' : 'd';
    }
    if (cmd[0] == 'E')
        smtp_client_parse_ehlo(&x->c, x->reply_text);   /* PIPELINING */
    return 0;
}

static void quit_close(co *x)
{
    if (x->c.fd < 0)
        return;
    if (x->send_quit && smtp_client_send(&x->c, "QUIT\r\n") == ST_OK) {
        smtp_reply rp;
        x->c.timeout = 1;                   /* a short wait for the reply, which is not needed */
        (void)smtp_client_read(&x->c, &rp);
    }
    smtp_client_close(&x->c);
}

/* One host: *done when the business was completed (an answer to RCPT, or
 * a refusal of the set-up); the result in x->res->st. */
static bool one_host(co *x, const host_item *h, const char *random_lp)
{
    callout_result *res = x->res;
    const char **failure = &res->failure;
    const char *msg = NULL;
    bool done = false;
    status yield = ST_OK;
    memset(&x->c, 0, sizeof x->c);
    x->c.fd = -1;
    int s = setup(x, h, &msg);
    if (s) {
        if (s == 'f' && (x->err == 0 || x->err == ERRNO_SMTPCLOSED)) {
            res->nsfail = true;
            x->newdom.result = CC_REJECT;
            done = true;
            yield = ST_FAIL;
        }
        goto no_conn;
    }
    x->newdom.result = x->old_dom_result == CC_REJECT_MFNULL ? CC_REJECT_MFNULL : CC_ACCEPT;
    if (random_lp) {
        x->newdom.random_stamp = time(NULL);
        int r = mail_rcpt(x, x->from, arena_printf(x->a, "%s@%s", random_lp, x->ad->domain), &msg);
        if (r == 'o') {
            x->newdom.random_result = CC_ACCEPT;    /* no point asking about the real one */
            *failure = "random";
            done = true;
            msg = NULL;
            goto no_conn;
        }
        if (r == 'f') {
            x->newdom.random_result = CC_REJECT;
            msg = NULL;
            done = command(x, "RSET", NULL) == '2';
            if (!done) {
                /* the connection is unusable: a new one, without the random check */
                quit_close(x);
                return one_host(x, h, NULL);
            }
        }
    } else {
        done = true;
    }
    if (done) {
        done = false;
        switch (mail_rcpt(x, x->from, x->address, &msg)) {
        case 'o':
            done = true;
            x->newaddr.result = CC_ACCEPT;
            break;
        case 'f':
            done = true;
            yield = ST_FAIL;
            *failure = "recipient";
            x->newaddr.result = CC_REJECT;
            break;
        case 'm':
            *failure = "mail";
            if (x->buffer[0] == '5') {
                res->nsfail = true;
                if (!*x->from)
                    x->newdom.result = CC_REJECT_MFNULL;
            }
            break;
        default:
            break;
        }
    }
    if (done && x->pm_mailfrom) {
        done = command(x, "RSET", NULL) == '2';
        if (done) {
            const char *pmsg = NULL;
            done = mail_rcpt(x, x->pm_mailfrom, arena_printf(x->a, "postmaster@%s", x->ad->domain), &pmsg) == 'o';
            if (pmsg && !msg)
                msg = pmsg;
            if (!done && x->o->fullpostmaster && x->err == 0)
                done = command(x, "RCPT TO:<postmaster>", NULL) == '2';
            x->newdom.pm_stamp = time(NULL);
            if (done)
                x->newdom.pm_result = CC_ACCEPT;
            else if (x->err == 0 && x->buffer[0] == '5') {
                *failure = "postmaster";
                res->pmfail = true;
                x->newdom.pm_result = CC_REJECT;
            }
        }
    }
no_conn:
    if (x->err == 0 && x->c.fd >= 0) {
        const char *buf = *x->buffer ? x->buffer : "connection dropped";
        if (!msg)
            msg = arena_printf(x->a, "response to \"%s\" was: %s", x->last_cmd, buf);
        res->user_message = x->recipient ? arena_printf(x->a, "Callout verification failed:\n%s", buf)
                                         : arena_printf(x->a, "Called:   %s\nSent:     %s\nResponse: %s", h->address,
                                                        x->last_cmd, buf);
        if (buf[0] == '5') {
            yield = ST_FAIL;
            done = true;
        }
    }
    quit_close(x);
    if (!done || yield != ST_OK)
        res->message = arena_printf(x->a, "%s [%s] : %s", h->name ? h->name : h->address, h->address,
                                    msg ? msg : "");
    res->st = yield;
    return done;
}

/* The transport's own hosts, when they replace the router's (Exim: the
 * router gave none, or hosts_override). */
static host_item *transport_hosts(const driver_inst *t, host_item *router_hosts, arena *a)
{
    const optval *v = driver_opt(t, "hosts");
    if (!v || !v->s)
        return router_hosts;
    const optval *ov = driver_opt(t, "hosts_override");
    if (router_hosts && !(ov && ov->n))
        return router_hosts;
    char *list = NULL, *err = NULL;
    if (expand_string(v->s, a, &list, &err) != ST_OK || !list) {
        log_write(LOG_MAIN | LOG_PANIC, "failed to expand list of hosts \"%s\" in %s transport for callout: %s",
                  v->s, t->name, err ? err : "");
        return NULL;
    }
    host_item *first = NULL, **tail = &first;
    int sep = ':';
    const char *l = list;
    char *it;
    while ((it = list_next(&l, &sep, a))) {
        host_item *h = arena_calloc(a, sizeof *h);
        h->name = it;
        h->mx = -1;
        unsigned char b[16];
        if (inet_pton(AF_INET, it, b) == 1 || inet_pton(AF_INET6, it, b) == 1)
            h->address = it;
        *tail = h;
        tail = &h->next;
    }
    route_ctx ctx = { .a = a, .verify = true };
    dns_resolver *res = dns_process_resolver(&err, a);
    if (res)
        ctx.dns = dns_iface_unbound(res);
    for (host_item *h = first; h; h = h->next)
        if (!h->address) {
            host_item one = *h;
            one.next = NULL;
            if (route_lookup_hosts(&one, &ctx, &err) == ST_OK)
                h->address = one.address;    /* the first address (more are not tried) */
        }
    return first;
}

/* The cache, before any connection: true when it gives the answer. */
static bool cache_lookup(co *x, const char *key, const char **pm)
{
    arena *a = x->a;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = cache_open(a, &txn, &dbi);
    if (!env)
        return false;
    bool answered = false;
    dom_rec d;
    addr_rec ar;
    callout_result *res = x->res;
    const char **failure = &res->failure;
    if (get_domain(txn, dbi, x->ad->domain, a, &d)) {
        x->old_dom_result = d.result;
        if (d.result == CC_REJECT || (!*x->from && d.result == CC_REJECT_MFNULL)) {
            res->nsfail = true;
            res->user_message = "(result of an earlier callout reused).";
            res->st = ST_FAIL;
            *failure = "mail";
            answered = true;
            goto out;
        }
        if (x->o->random) {
            if (d.random_result == CC_ACCEPT) {
                *failure = "random";
                answered = true;
                goto out;
            }
            if (d.random_result != CC_REJECT)
                goto out;
            x->newdom.random_result = CC_REJECT;
            x->newdom.random_stamp = d.random_stamp;
        }
        if (*pm) {
            if (d.pm_result == CC_REJECT) {
                res->pmfail = true;
                res->st = ST_FAIL;
                *failure = "postmaster";
                res->user_message = "(result of earlier verification reused).";
                answered = true;
                goto out;
            }
            if (d.pm_result == CC_UNKNOWN)
                goto out;
            *pm = NULL;
            x->newdom.pm_result = CC_ACCEPT;
            x->newdom.pm_stamp = d.pm_stamp;
        }
    }
    if (get_address(txn, dbi, key, a, &ar)) {
        answered = true;
        if (ar.result != CC_ACCEPT) {
            res->user_message = "Previous (cached) callout verification failure";
            *failure = "recipient";
            res->st = ST_FAIL;
        }
    }
out:
    hints_close(env, txn, false);
    return answered;
}

static void cache_write(co *x, bool done, const char *key)
{
    if (x->newdom.result == CC_UNKNOWN && !(done && x->newaddr.result != CC_UNKNOWN))
        return;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = cache_open(x->a, &txn, &dbi);
    if (!env)
        return;
    long long now = time(NULL);
    if (x->newdom.result != CC_UNKNOWN)
        cache_put(txn, dbi, x->ad->domain, x->a,
                  arena_printf(x->a, "d %d %d %d %lld %lld %lld", x->newdom.result, x->newdom.pm_result,
                               x->newdom.random_result, now, x->newdom.pm_stamp, x->newdom.random_stamp));
    if (done && x->newaddr.result != CC_UNKNOWN)
        cache_put(txn, dbi, key, x->a, arena_printf(x->a, "a %d %lld", x->newaddr.result, now));
    hints_close(env, txn, true);
}

bool callout_run(const address_item *routed, const char *address, bool recipient, const callout_opts *o, arena *a,
                 callout_result *res)
{
    memset(res, 0, sizeof *res);
    res->st = ST_OK;
    if (o->timeout <= 0 || !routed || !routed->transport || ps.host_checking)
        return false;                  /* -bh: no callouts, as Exim without -bhc */
    const driver_inst *t = routed->transport;
    if (!t->info || strcmp(t->info->name, "smtp") != 0) {
        if (routed->hosts)
            log_write(LOG_MAIN | LOG_PANIC, "callout transport '%s': %s is non-smtp", t->name,
                      t->info ? t->info->name : "?");
        return false;
    }
    /* expansions see the routed address ($domain, $local_part, $host ...) */
    const char *save_lp = ps.local_part, *save_dom = ps.domain;
    route_set_vars(routed);
    host_item *hosts = transport_hosts(t, routed->hosts, a);
    if (!hosts) {
        ps.local_part = save_lp;
        ps.domain = save_dom;
        return false;
    }
    co x = { .a = a, .o = o, .ad = routed, .recipient = recipient, .address = routed->address, .res = res,
             .pm_mailfrom = o->pm_mailfrom, .old_dom_result = CC_ACCEPT };
    const char *key;
    if (recipient) {
        if (o->use_sender || o->use_postmaster) {
            x.from = o->use_sender ? (ps.sender_address ? ps.sender_address : "")
                                   : arena_printf(a, "postmaster@%s", cfg_str(MO_qualify_domain)
                                                  ? cfg_str(MO_qualify_domain) : cfg_str(MO_primary_hostname));
            key = arena_printf(a, "%s/<%s>", x.address, x.from);
        } else {
            x.from = "";
            key = x.address;
        }
    } else {
        x.from = o->se_mailfrom ? o->se_mailfrom : "";
        key = *x.from ? arena_printf(a, "%s/<%s>", x.address, x.from) : x.address;
    }
    bool done = false;
    if (!o->no_cache && cache_lookup(&x, key, &x.pm_mailfrom))
        goto end;
    const char *random_lp = NULL;
    if (o->random && x.newdom.random_result != CC_REJECT) {
        const char *rl = cfg_str(MO_callout_random_local_part);
        char *out = NULL, *err = NULL;
        if (rl && expand_string(rl, a, &out, &err) != ST_OK)
            log_write(LOG_MAIN | LOG_PANIC, "failed to expand callout_random_local_part: %s", err ? err : "");
        else
            random_lp = out;
    }
    int overall = o->overall >= 0 ? o->overall : 4 * o->timeout;
    time_t start = time(NULL);
    for (const host_item *h = hosts; h && !done; h = h->next) {
        if (!h->address)
            continue;
        if (time(NULL) - start >= overall)
            break;
        ps.deliver_host = h->name;
        ps.deliver_host_address = h->address;
        ps.transport_name = t->name;
        done = one_host(&x, h, random_lp);
        ps.deliver_host = ps.deliver_host_address = NULL;
        ps.transport_name = NULL;
    }
    if (!o->no_cache)
        cache_write(&x, done, key);
    if (!done) {
        const char *dull = arena_printf(a, "Could not complete %s verify callout", recipient ? "recipient" : "sender");
        res->st = ST_DEFER;
        res->message = hosts->next || !res->message ? dull : arena_printf(a, "%s: %s", dull, res->message);
        res->user_message =
            cfg_bool(MO_smtp_return_error_details)
                ? arena_printf(a, "%s for <%s>.\nThe mail server(s) for the domain may be temporarily unreachable, "
                               "or\nthey may be permanently unreachable from this server. In the latter case,\n%s",
                               dull, x.address,
                               recipient ? "the address will never be accepted."
                                         : "you need to change the address or create an MX record for its domain\n"
                                           "if it is supposed to be generally accessible from the Internet.\n"
                                           "Talk to your mail administrator for details.")
                : dull;
        res->callout_defer = true;
    }
end:
    ps.local_part = save_lp;
    ps.domain = save_dom;
    return true;
}
