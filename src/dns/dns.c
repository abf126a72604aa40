/* dns.c: the resolver of postern over libunbound (DESIGN.md section 6).
 *
 * libunbound validates DNSSEC itself against the configured trust anchors,
 * so the status of each answer does not depend on a remote AD bit.  Queries
 * run asynchronously in a libunbound thread while we wait on its file
 * descriptor with our own deadline (retrans x retry), so a server that never
 * answers costs a bounded time and gives ST_DEFER, never "no record".
 * Temporary failures are remembered for the life of the resolver, so many
 * addresses in one dead domain do not each wait for the deadline. */
#include "dns/dns.h"

#include "core/list.h"
#include "core/log.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <idn2.h>
#include <arpa/inet.h>
#include <pcre2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

enum { FAIL_CACHE_SIZE = 64 };

typedef struct fail_entry {
    char *name;
    int type;
    status st;
    const char *why;
} fail_entry;

struct dns_resolver {
    struct ub_ctx *ctx;
    pid_t pid;
    arena *a;                     /* resolver lifetime */
    dns_options o;
    bool validating;
    const char *validation;       /* dns_resolver_validation() text */
    int retrans, retry;           /* in force now */
    unsigned count, max;
    pcre2_code *names_re;
    fail_entry fails[FAIL_CACHE_SIZE];
    int nfails, next_fail;
};

static const char *const passthrough_zones[] = {
    "test.", "invalid.", "onion.", "home.arpa.", "0.in-addr.arpa.",
    "254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.", "d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.",
    "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",
};

static bool file_readable(const char *p) { return access(p, R_OK) == 0; }

/* Build and configure a libunbound context for o.  NULL with *err. */
static struct ub_ctx *make_ctx(const dns_options *o, bool *validating, char **err, arena *a)
{
    struct ub_ctx *ctx = ub_ctx_create();
    char buf[96];
    int rc;
    if (!ctx) {
        *err = arena_strdup(a, "cannot create libunbound context");
        return NULL;
    }
#define SET(opt, val)                                                        \
    if ((rc = ub_ctx_set_option(ctx, opt, val)) != 0) {                      \
        *err = arena_printf(a, "libunbound option %s%s: %s", opt, val,       \
                            ub_strerror(rc));                                 \
        goto fail;                                                           \
    }
    /* tests and local resolvers live on loopback */
    SET("do-not-query-localhost:", "no");
    SET("edns-buffer-size:", "1232");
    /* keep the order the server sent, as a stub resolver (and Exim) does */
    SET("rrset-roundrobin:", "no");
    /* We always forward (dns_servers or resolv.conf), as Exim uses the system
       resolver: names that libunbound would answer locally (RFC 6761 test.,
       invalid., the documentation and private reverse zones) go upstream. */
    SET("unblock-lan-zones:", "yes");
    SET("insecure-lan-zones:", "yes");
    for (size_t i = 0; i < sizeof passthrough_zones / sizeof passthrough_zones[0]; i++) {
        snprintf(buf, sizeof buf, "%s transparent", passthrough_zones[i]);
        SET("local-zone:", buf);
    }
    int retrans = o->retrans > 0 ? o->retrans : DNS_DEFAULT_RETRANS;
    snprintf(buf, sizeof buf, "%d", retrans * 1000);
    /* never back off beyond one of our tries */
    ub_ctx_set_option(ctx, "infra-cache-max-rtt:", buf);

    const char *ta = o->dnssec_off ? ""
                   : o->trust_anchor_file ? o->trust_anchor_file : DNS_DEFAULT_TRUST_ANCHOR;
    /* the default key missing (dns-root-data not installed): no validation;
       a file that was named must be there */
    if (!o->trust_anchor_file && *ta && !file_readable(ta))
        ta = "";
    *validating = false;
    if (*ta) {
        if (!file_readable(ta)) {
            *err = arena_printf(a, "dns_trust_anchor_file %s: %s", ta, strerror(errno));
            goto fail;
        }
        if ((rc = ub_ctx_add_ta_file(ctx, ta)) != 0) {
            *err = arena_printf(a, "dns_trust_anchor_file %s: %s", ta, ub_strerror(rc));
            goto fail;
        }
        *validating = true;
    } else {
        SET("module-config:", "iterator");
    }

    if (o->servers && *o->servers) {
        /* colon list of "ip" or "ip@port"; IPv6 addresses need "<;" lists
           or doubled colons as usual in Exim lists */
        const char *l = o->servers;
        int sep = 0;
        char *item;
        int n = 0;
        arena *tmp = arena_new("dns-servers", false);
        while ((item = list_next(&l, &sep, tmp))) {
            if ((rc = ub_ctx_set_fwd(ctx, item)) != 0) {
                *err = arena_printf(a, "dns_servers item \"%s\": %s", item, ub_strerror(rc));
                arena_free(tmp);
                goto fail;
            }
            n++;
        }
        arena_free(tmp);
        if (n == 0) {
            *err = arena_strdup(a, "dns_servers is empty");
            goto fail;
        }
    } else if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
        *err = arena_printf(a, "reading /etc/resolv.conf: %s", ub_strerror(rc));
        goto fail;
    }
    if ((rc = ub_ctx_async(ctx, 1)) != 0) {
        *err = arena_printf(a, "libunbound threads: %s", ub_strerror(rc));
        goto fail;
    }
#undef SET
    return ctx;
fail:
    ub_ctx_delete(ctx);
    return NULL;
}

/* "timeout:N" and "attempts:N" from an options string of resolv.conf */
static void parse_res_options(const char *p, int *retrans, int *retry)
{
    while (p && *p) {
        while (*p == ' ' || *p == '\t')
            p++;
        int v;
        if (sscanf(p, "timeout:%d", &v) == 1 && v > 0)
            *retrans = v > 30 ? 30 : v;             /* glibc's RES_MAXRETRANS */
        else if (sscanf(p, "attempts:%d", &v) == 1 && v > 0)
            *retry = v > 5 ? 5 : v;                 /* glibc's RES_MAXRETRY */
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
}

static void resolv_options(int *retrans, int *retry)
{
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "options", 7) == 0 && (line[7] == ' ' || line[7] == '\t'))
                parse_res_options(line + 8, retrans, retry);
        fclose(f);
    }
    parse_res_options(getenv("RES_OPTIONS"), retrans, retry);
}

dns_resolver *dns_resolver_new(const dns_options *o, char **err, arena *a)
{
    static const dns_options none = { 0 };
    if (!o)
        o = &none;
    dns_resolver *r = arena_calloc(a, sizeof *r);
    r->a = a;
    r->o = *o;
    /* keep the strings we need for re-creation after fork */
    if (o->servers)
        r->o.servers = arena_strdup(a, o->servers);
    if (o->trust_anchor_file)
        r->o.trust_anchor_file = arena_strdup(a, o->trust_anchor_file);
    /* unset dns_retrans / dns_retry: the system resolver's settings, as
       Exim gets them from libc (resolv.conf "options timeout: attempts:",
       RES_OPTIONS) */
    int sys_retrans = DNS_DEFAULT_RETRANS, sys_retry = DNS_DEFAULT_RETRY;
    resolv_options(&sys_retrans, &sys_retry);
    if (r->o.retrans <= 0)
        r->o.retrans = sys_retrans;
    if (r->o.retry <= 0)
        r->o.retry = sys_retry;
    r->retrans = r->o.retrans;
    r->retry = r->o.retry;
    r->max = o->max_lookups > 0 ? (unsigned)o->max_lookups : DNS_MAX_LOOKUPS;
    if (o->check_names_pattern && *o->check_names_pattern) {
        int ec;
        PCRE2_SIZE eo;
        r->names_re = pcre2_compile((PCRE2_SPTR)o->check_names_pattern,
                                    PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (!r->names_re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            *err = arena_printf(a, "dns_check_names_pattern: %s at offset %zu", msg, eo);
            return NULL;
        }
    }
    r->ctx = make_ctx(&r->o, &r->validating, err, a);
    if (!r->ctx) {
        if (r->names_re)
            pcre2_code_free(r->names_re);
        return NULL;
    }
    r->pid = getpid();
    return r;
}

void dns_resolver_free(dns_resolver *r)
{
    if (!r)
        return;
    if (r->ctx && r->pid == getpid())
        ub_ctx_delete(r->ctx);
    r->ctx = NULL;
    if (r->names_re)
        pcre2_code_free(r->names_re);
    r->names_re = NULL;
}

void dns_resolver_timeouts(dns_resolver *r, int retrans, int retry)
{
    r->retrans = retrans > 0 ? retrans : r->o.retrans;
    r->retry = retry > 0 ? retry : r->o.retry;
}

unsigned dns_lookup_count(const dns_resolver *r) { return r->count; }
void dns_lookup_count_reset(dns_resolver *r) { r->count = 0; }

typedef struct pending {
    bool done;
    int err;
    struct ub_result *res;
} pending;

static void on_result(void *arg, int err, struct ub_result *res)
{
    pending *p = arg;
    p->done = true;
    p->err = err;
    p->res = res;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const fail_entry *fail_cached(const dns_resolver *r, const char *name, int type)
{
    for (int i = 0; i < r->nfails; i++)
        if (r->fails[i].type == type && strcasecmp(r->fails[i].name, name) == 0)
            return &r->fails[i];
    return NULL;
}

static void fail_remember(dns_resolver *r, const char *name, int type, status st, const char *why)
{
    fail_entry *e = &r->fails[r->next_fail];
    r->next_fail = (r->next_fail + 1) % FAIL_CACHE_SIZE;
    if (r->nfails < FAIL_CACHE_SIZE)
        r->nfails++;
    e->name = arena_strdup(r->a, name);
    e->type = type;
    e->st = st;
    e->why = arena_strdup(r->a, why ? why : "");
}

static bool is_ip_literal(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static bool has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s & 0x80)
            return true;
    return false;
}

/* UTF-8 name -> A-labels (IDNA2008 lookup with NFC, ASCII lower-cased
   first as the library wants); NULL when it cannot be converted */
static const char *to_alabel(const char *name, arena *a)
{
    char *lc = arena_strdup(a, name);
    for (char *p = lc; *p; p++)
        if (!((unsigned char)*p & 0x80))
            *p = (char)tolower((unsigned char)*p);
    char *out = NULL;
    if (idn2_lookup_u8((const uint8_t *)lc, (uint8_t **)&out, IDN2_NFC_INPUT) != IDN2_OK)
        return NULL;
    const char *r = arena_strdup(a, out);
    idn2_free(out);
    return r;
}

static status finish(dns_answer *out, status st, const char *why)
{
    out->st = st;
    out->why = why;
    return st;
}

/* Run one query on r->ctx and wait at most retrans x retry seconds.
 * Returns 0 with p filled (p->done false on timeout, the query then
 * cancelled), or a libunbound error code. */
static int resolve_wait(dns_resolver *r, const char *name, int type, pending *p)
{
    int id = 0;
    int rc = ub_resolve_async(r->ctx, name, type, 1, p, on_result, &id);
    if (rc != 0)
        return rc;
    long deadline = now_ms() + 1000L * r->retrans * r->retry;
    int fd = ub_fd(r->ctx);
    while (!p->done) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int n = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (rc = ub_process(r->ctx)) != 0) {
            ub_cancel(r->ctx, id);
            return rc;
        }
    }
    if (!p->done)
        ub_cancel(r->ctx, id);
    return 0;
}

/* With the default trust anchor (not one the administrator named): if the
 * chain of trust fails at the root key itself because the servers give no
 * DNSKEY for the root (a plain authoritative server, or a forwarder that
 * drops DNSSEC data), every answer would be bogus; this process then
 * resolves without validation (answers "indeterminate", as Exim behind a
 * non-validating resolver).  An anchor named in dns_trust_anchor_file is
 * never dropped. */
static bool drop_default_anchor(dns_resolver *r, const struct ub_result *res)
{
    if (r->o.trust_anchor_file || !res->bogus || !res->why_bogus)
        return false;
    const char *w = strstr(res->why_bogus, "no DNSKEY rrset");
    if (!w || !strstr(w, " for trust anchor . "))
        return false;
    dns_options o = r->o;
    o.trust_anchor_file = "";
    char *err = NULL;
    bool validating;
    struct ub_ctx *ctx = make_ctx(&o, &validating, &err, r->a);
    if (!ctx)
        return false;
    ub_ctx_delete(r->ctx);
    r->ctx = ctx;
    r->validating = false;
    r->validation = "off (the DNS servers give no DNSKEY for the root trust anchor)";
    return true;
}

const char *dns_resolver_validation(const dns_resolver *r)
{
    return r->validation ? r->validation : r->validating ? "on" : "off";
}

status dns_lookup(dns_resolver *r, const char *name, int type, arena *a, dns_answer *out)
{
    memset(out, 0, sizeof *out);
    out->rcode = -1;
    out->canon = name;
    out->sec = DNS_SEC_INDETERMINATE;
    if (!name || !*name || strlen(name) > DNS_MAX_NAME)
        return finish(out, ST_FAIL, "malformed DNS name");
    /* names are looked up as given (a single trailing dot is allowed),
       except that UTF-8 names become A-labels first, as Exim built with
       I18N does */
    if (has_8bit(name)) {
        const char *al = to_alabel(name, a);
        if (!al)
            return finish(out, ST_NOTFOUND, "name cannot be converted to an A-label");
        name = al;
        out->canon = name;
    }

    if (r->names_re && type != DNS_T_PTR && type != DNS_T_TXT) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->names_re, NULL);
        int rc = pcre2_match(r->names_re, (PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc < 0)
            return finish(out, ST_NOTFOUND, "name fails dns_check_names_pattern");
    }
    /* never resolve an IP literal as a name (some resolvers answer A-for-A) */
    if ((type == DNS_T_A || type == DNS_T_AAAA) && is_ip_literal(name))
        return finish(out, ST_NOTFOUND, "IP literal is not a DNS name");

    const fail_entry *fe = fail_cached(r, name, type);
    if (fe)
        return finish(out, fe->st, fe->why);

    if (r->count >= r->max)
        return finish(out, ST_DEFER, arena_printf(a, "DNS lookup limit (%u) reached", r->max));
    r->count++;

    if (r->pid != getpid()) {
        /* forked: the libunbound thread stayed with the parent */
        char *err = NULL;
        r->ctx = make_ctx(&r->o, &r->validating, &err, r->a);
        r->pid = getpid();
        r->nfails = r->next_fail = 0;
        r->validation = NULL;
        if (!r->ctx)
            return finish(out, ST_DEFER, err);
    }

    pending p = { 0 };
    int rc = resolve_wait(r, name, type, &p);
    if (rc == 0 && p.done && p.err == 0 && p.res && drop_default_anchor(r, p.res)) {
        ub_resolve_free(p.res);
        memset(&p, 0, sizeof p);
        rc = resolve_wait(r, name, type, &p);
    }
    if (rc != 0)
        /* a name libunbound cannot even parse is a permanent failure */
        return finish(out, rc == UB_SYNTAX ? ST_FAIL : ST_DEFER,
                      arena_printf(a, "resolver: %s", ub_strerror(rc)));
    status st;
    const char *why;
    if (!p.done) {
        st = ST_DEFER;
        why = arena_printf(a, "DNS lookup of %s (%s) timed out", name, dns_type_name(type));
        out->rcode = -1;
    } else if (p.err != 0 || !p.res) {
        st = p.err == UB_SYNTAX ? ST_FAIL : ST_DEFER;
        why = arena_printf(a, "resolver: %s", ub_strerror(p.err));
        if (p.res)
            ub_resolve_free(p.res);
    } else {
        struct ub_result *res = p.res;
        if (res->bogus) {
            out->sec = DNS_SEC_BOGUS;
            out->rcode = res->rcode;
            st = ST_DEFER;
            why = arena_printf(a, "DNSSEC validation failed for %s: %s", name,
                               res->why_bogus ? res->why_bogus : "bogus");
        } else if (!res->answer_packet || res->answer_len <= 0) {
            out->rcode = res->rcode;
            st = res->rcode == 3 ? ST_NOTFOUND : ST_DEFER;
            out->nxdomain = res->rcode == 3;
            why = res->rcode == 3 ? "no such name" : "no answer from DNS";
        } else {
            st = dns_answer_parse(res->answer_packet, (size_t)res->answer_len,
                                  name, type, a, out);
            why = out->why;
            out->sec = res->secure ? DNS_SEC_SECURE
                     : r->validating ? DNS_SEC_INSECURE : DNS_SEC_INDETERMINATE;
        }
        ub_resolve_free(res);
    }
    if (st == ST_DEFER && out->sec != DNS_SEC_BOGUS && type != DNS_T_TLSA &&
        r->o.again_means_nonexist && r->o.again_means_nonexist(r->o.again_ctx, name)) {
        out->nxdomain = true;
        return finish(out, ST_NOTFOUND, "temporary error, dns_again_means_nonexist");
    }
    if (st == ST_DEFER || st == ST_FAIL)
        fail_remember(r, name, type, st, why);
    if (st != ST_OK) {
        out->nrr = 0;
        out->why = why;
    }
    out->st = st;
    return st;
}

static status iface_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    return dns_lookup(ctx, name, type, a, out);
}

dns_iface dns_iface_unbound(dns_resolver *r)
{
    return (dns_iface){ .lookup = iface_lookup, .ctx = r };
}
