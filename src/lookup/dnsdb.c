/* dnsdb.c: the dnsdb lookup (query-style): DNS records as lookup data,
 * with Exim's query syntax (see dnsdb.h).  The lookup succeeds when any
 * name of the list gives data; temporary errors follow the defer_ modifier;
 * dnssec_strict treats an answer that is not DNSSEC-secure as temporary. */
#include "lookup/dnsdb.h"

#include "core/gstr.h"
#include "core/list.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    T_ADDRESSES = -1,   /* a+: AAAA then A */
    T_CSA = -2, T_MXH = -3, T_ZNS = -4,
};
enum mode { M_STRICT, M_LAX, M_NEVER };
enum { MAX_TLSA_HEX = 8192 };   /* bytes of TLSA data shown */

static const struct { const char *name; int type; } types[] = {
    { "a", DNS_T_A }, { "a+", T_ADDRESSES }, { "aaaa", DNS_T_AAAA },
    { "cname", DNS_T_CNAME }, { "csa", T_CSA }, { "mx", DNS_T_MX },
    { "mxh", T_MXH }, { "ns", DNS_T_NS }, { "ptr", DNS_T_PTR },
    { "soa", DNS_T_SOA }, { "spf", DNS_T_SPF }, { "srv", DNS_T_SRV },
    { "tlsa", DNS_T_TLSA }, { "txt", DNS_T_TXT }, { "zns", T_ZNS },
};

int dnsdb_read_time(const char *s, char term, const char **end)
{
    long total = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        long v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            if (v > 100000000L)
                return -1;
        }
        long mult = 1;
        switch (*p) {
        case 'w': mult = 7 * 86400; p++; break;
        case 'd': mult = 86400; p++; break;
        case 'h': mult = 3600; p++; break;
        case 'm': mult = 60; p++; break;
        case 's': p++; break;
        default: break;
        }
        total += v * mult;
        if (total > 0x7fffffffL)
            return -1;
    }
    if (*p && *p != term)
        return -1;
    *end = p;
    return (int)total;
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static status look(dnsdb_env *e, const char *name, int type, arena *a, dns_answer *ans)
{
    return e->dns.lookup(e->dns.ctx, name, type, a, ans);
}

/* SOA and ZNS: drop leading labels until something is found (never the root) */
static status walk_up(dnsdb_env *e, const char *name, int type, arena *a, dns_answer *ans)
{
    const char *d = name;
    for (;;) {
        status st = look(e, d, type, a, ans);
        if (st != ST_NOTFOUND)
            return st;
        const char *dot = strchr(d, '.');
        if (!dot || !dot[1])
            return ST_NOTFOUND;
        d = dot + 1;
    }
}

/* Client SMTP Authorization: _client._smtp.<name>, then assertions of
 * parent domains from the top down.  *found is the name whose record
 * answered. */
static status csa_lookup(dnsdb_env *e, const char *name, arena *a, dns_answer *ans,
                         const char **found)
{
    status st = look(e, arena_printf(a, "_client._smtp.%s", name), DNS_T_SRV, a, ans);
    if (st == ST_OK || st == ST_DEFER) {
        if (st == ST_OK)
            *found = name;
        return st;
    }
    const char *suff = strrchr(name, '.');
    if (!suff)
        return ST_NOTFOUND;
    int limit = e->csa_search_limit > 0 ? e->csa_search_limit : 5;
    bool ipv6 = false;
    if (strcasecmp(suff, ".arpa") == 0) {
        if (suff - 8 > name && strcasecmp(suff - 8, ".in-addr.arpa") == 0) {
            suff -= 8;
            limit = 3;
        } else if (suff - 4 > name && strcasecmp(suff - 4, ".ip6.arpa") == 0) {
            suff -= 4;
            ipv6 = true;
            limit = 3;
        }
    }
    if (ans->nxdomain)
        return ST_NOTFOUND;
    for (int i = 0; i < limit; i++) {
        if (ipv6) {
            if (suff - 8 <= name)
                return ST_NOTFOUND;
            suff -= 8;
        } else {
            do
                if (--suff <= name)
                    return ST_NOTFOUND;
            while (*suff != '.');
        }
        st = look(e, arena_printf(a, "_client._smtp.%s", suff + 1), DNS_T_SRV, a, ans);
        if (st == ST_DEFER)
            return st;
        if (st != ST_OK)
            continue;
        for (int j = 0; j < ans->nrr; j++)
            if (ans->rr[j].pref == 1 && (ans->rr[j].port & 1)) {
                *found = suff + 1;
                return ST_OK;
            }
    }
    return ST_NOTFOUND;
}

static void append_listele(gstr *g, char sep, const char *item)
{
    if (g->len)
        gstr_catc(g, sep);
    for (const char *p = item; *p; p++) {
        if (*p == sep)
            gstr_catc(g, sep);
        gstr_catc(g, *p);
    }
}

static void format_rr(gstr *y, int type, const dns_rr *rr, char outsep, const char *outsep2,
                      const char *domain, const char *found)
{
    if (type == DNS_T_A || type == DNS_T_AAAA || type == T_ADDRESSES) {
        if (rr->text)
            append_listele(y, outsep, rr->text);
        return;
    }
    if (type == T_CSA) {
        if (rr->pref != 1)
            return;
        const char *code;
        if (strcasecmp(found, domain) != 0)
            code = rr->port & 1 ? "X " : "? ";
        else if (rr->weight > 3)
            return;
        else
            code = rr->weight < 2 ? "N " : rr->weight == 2 ? "Y " : "? ";
        if (y->len)
            gstr_catc(y, outsep);
        gstr_cat(y, code);
        gstr_cat(y, rr->text);
        return;
    }
    if (y->len)
        gstr_catc(y, outsep);
    switch (type) {
    case DNS_T_TXT: case DNS_T_SPF: {
        size_t off = 0;
        for (int i = 0; i < rr->nstrings && off + 1 < rr->rdlen; i++) {
            if (outsep2 && *outsep2 && i > 0)
                gstr_catc(y, *outsep2);
            gstr_catn(y, rr->strings[i], rr->string_lens[i]);
            off += 1 + rr->string_lens[i];
            if (!outsep2)
                break;
        }
        break;
    }
    case DNS_T_TLSA: {
        gstr_printf(y, "%u%c%u%c%u%c", rr->tlsa_usage, *outsep2, rr->tlsa_selector, *outsep2,
                    rr->tlsa_mtype, *outsep2);
        size_t n = rr->rdlen - 3 > MAX_TLSA_HEX ? MAX_TLSA_HEX : rr->rdlen - 3;
        for (size_t i = 0; i < n; i++)
            gstr_printf(y, "%02x", rr->rdata[3 + i]);
        break;
    }
    case DNS_T_MX:
        gstr_printf(y, "%u%c%s", rr->pref, *outsep2, rr->text);
        break;
    case T_MXH:
        gstr_cat(y, rr->text);
        break;
    case DNS_T_SRV:
        gstr_printf(y, "%u%c%u%c%u%c%s", rr->pref, *outsep2, rr->weight, *outsep2, rr->port,
                    *outsep2, rr->text);
        break;
    case DNS_T_SOA:
        gstr_cat(y, rr->text);
        if (outsep2)
            gstr_printf(y, "%c%s%c%u%c%u%c%u%c%u%c%u", *outsep2, rr->text2, *outsep2,
                        rr->soa_serial, *outsep2, rr->soa_refresh, *outsep2, rr->soa_retry,
                        *outsep2, rr->soa_expire, *outsep2, rr->soa_minimum);
        break;
    default:            /* CNAME, NS, ZNS, PTR */
        gstr_cat(y, rr->text ? rr->text : "");
        break;
    }
}

static status syntax(char **err, arena *a, const char *msg)
{
    *err = arena_strdup(a, msg);
    return ST_DEFER;
}

static const char *skip_ws(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* A parsed query: separators, modifiers, type, and the list of names. */
typedef struct dnsdb_query {
    enum mode defer_mode, dnssec_mode;
    char outsep;
    const char *outsep2;
    int retrans, retry;
    int type;
    const char *list;
} dnsdb_query;

/* ST_OK, or ST_DEFER with *err for a syntax error (as Exim) */
static status parse_query(const char *q, dnsdb_query *pq, arena *a, char **err)
{
    enum mode defer_mode = M_LAX, dnssec_mode = M_LAX;
    char outsep = '\n';
    const char *outsep2 = NULL;
    int retrans = 0, retry = 0;

    q = skip_ws(q);
    if (*q == '>') {
        if (!q[1])
            return syntax(err, a, "dnsdb: missing separator after '>'");
        outsep = q[1];
        q += 2;
        if (*q == ',') {
            if (!q[1])
                return syntax(err, a, "dnsdb: missing separator after ','");
            outsep2 = arena_strndup(a, q + 1, 1);
            q += 2;
        } else if (*q == ';') {
            outsep2 = "";
            q++;
        }
        q = skip_ws(q);
    }
    for (;;) {
        if (strncasecmp(q, "defer_", 6) == 0) {
            q += 6;
            if (strncasecmp(q, "strict", 6) == 0) { defer_mode = M_STRICT; q += 6; }
            else if (strncasecmp(q, "lax", 3) == 0) { defer_mode = M_LAX; q += 3; }
            else if (strncasecmp(q, "never", 5) == 0) { defer_mode = M_NEVER; q += 5; }
            else return syntax(err, a, "unsupported dnsdb defer behaviour");
        } else if (strncasecmp(q, "dnssec_", 7) == 0) {
            q += 7;
            if (strncasecmp(q, "strict", 6) == 0) { dnssec_mode = M_STRICT; q += 6; }
            else if (strncasecmp(q, "lax", 3) == 0) { dnssec_mode = M_LAX; q += 3; }
            else if (strncasecmp(q, "never", 5) == 0) { dnssec_mode = M_NEVER; q += 5; }
            else return syntax(err, a, "unsupported dnsdb dnssec behaviour");
        } else if (strncasecmp(q, "retrans_", 8) == 0) {
            const char *end;
            int t = dnsdb_read_time(q + 8, ',', &end);
            if (t <= 0)
                return syntax(err, a, "unsupported dnsdb timeout value");
            retrans = t;
            q = end;
        } else if (strncasecmp(q, "retry_", 6) == 0) {
            char *end;
            long n = strtol(q + 6, &end, 0);
            if (n < 0 || n > 1000)
                return syntax(err, a, "unsupported dnsdb retry count");
            retry = (int)n;
            q = end;
        } else {
            break;
        }
        q = skip_ws(q);
        if (*q++ != ',')
            return syntax(err, a, "dnsdb modifier syntax error");
        q = skip_ws(q);
    }

    int type = DNS_T_TXT;
    const char *eq = strchr(q, '=');
    if (eq) {
        const char *tend = eq;
        while (tend > q && isspace((unsigned char)tend[-1]))
            tend--;
        size_t len = (size_t)(tend - q);
        size_t i;
        for (i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strlen(types[i].name) == len && strncasecmp(q, types[i].name, len) == 0)
                break;
        if (i == sizeof types / sizeof types[0])
            return syntax(err, a, "unsupported DNS record type");
        type = types[i].type;
        q = skip_ws(eq + 1);
    }

    *pq = (dnsdb_query){ defer_mode, dnssec_mode, outsep, outsep2, retrans, retry, type, q };
    return ST_OK;
}

/* Look up one name of the list (both types for a+) and append its data to
 * y.  ST_OK to go on (*failrc may become ST_DEFER), ST_DEFER to stop: a
 * defer under defer_strict, or a result too long. */
static status one_name(dnsdb_env *e, const dnsdb_query *pq, const char *domain, gstr *y,
                       status *failrc, arena *a, char **err)
{
    int type = pq->type;
    int searchtype = type == T_CSA ? DNS_T_SRV : type == T_MXH ? DNS_T_MX
                   : type == T_ZNS ? DNS_T_NS : type;
    do {
        const char *found = domain;
        dns_answer ans;
        status st;
        if (type == T_ADDRESSES) {
            searchtype = searchtype == T_ADDRESSES ? DNS_T_AAAA : DNS_T_A;
            st = look(e, domain, searchtype, a, &ans);
        } else if (type == T_ZNS || type == DNS_T_SOA) {
            st = walk_up(e, domain, searchtype, a, &ans);
        } else if (type == T_CSA) {
            st = csa_lookup(e, domain, a, &ans, &found);
        } else {
            st = look(e, domain, searchtype, a, &ans);
        }
        bool secure = st == ST_OK && ans.sec == DNS_SEC_SECURE;
        e->dnssec_auth = pq->dnssec_mode == M_NEVER ? NULL : secure ? "yes" : "no";
        if (st == ST_NOTFOUND)
            continue;
        if (st != ST_OK || (pq->dnssec_mode == M_STRICT && !secure)) {
            /* Exim gives no message for a DNS defer ("gave DEFER: "); the
               reason goes to e->why for debugging and logs */
            e->why = st != ST_OK && ans.why ? ans.why : "DNSSEC: answer not authenticated";
            if (pq->defer_mode == M_STRICT) {
                *err = "";
                return ST_DEFER;
            }
            if (pq->defer_mode == M_LAX) {
                *failrc = ST_DEFER;
                *err = "";
            }
            continue;
        }
        for (int i = 0; i < ans.nrr; i++)
            if (ans.rr[i].type == searchtype)
                format_rr(y, type == T_ADDRESSES ? DNS_T_A : type, &ans.rr[i], pq->outsep,
                          pq->outsep2, domain, found);
        if (y->len > DNSDB_MAX_RESULT) {
            *err = arena_printf(a, "dnsdb result longer than %d bytes", DNSDB_MAX_RESULT);
            return ST_DEFER;
        }
    } while (type == T_ADDRESSES && searchtype != DNS_T_A);
    return ST_OK;
}

status dnsdb_run(dnsdb_env *e, const char *query, arena *a, char **result, char **err)
{
    dnsdb_query pq;
    if (parse_query(query, &pq, a, err) != ST_OK)
        return ST_DEFER;
    int type = pq.type;
    if (!pq.outsep2) {
        if (type == DNS_T_SPF)
            pq.outsep2 = "";
        else if (type == DNS_T_SRV || type == DNS_T_MX || type == DNS_T_TLSA)
            pq.outsep2 = " ";
    }
    /* compatibility: ptr= one IPv6 address is not split at its colons */
    const char *list = pq.list;
    bool single = type == DNS_T_PTR && *list != '<' && is_ip(list), done = false;
    if ((pq.retrans || pq.retry) && e->timeouts)
        e->timeouts(e->dns.ctx, pq.retrans, pq.retry);

    gstr y;
    gstr_init(&y, a, 256);
    status failrc = ST_NOTFOUND, rc = ST_OK;
    int sep = 0;
    for (;;) {
        char *item;
        if (single) {
            item = done ? NULL : arena_strdup(a, list);
            done = true;
        } else {
            item = list_next(&list, &sep, a);
        }
        if (!item)
            break;
        const char *domain = item;
        if ((type == DNS_T_PTR || type == T_CSA) && is_ip(domain))
            domain = dns_reverse_name(domain, NULL, a);
        if ((rc = one_name(e, &pq, domain, &y, &failrc, a, err)) != ST_OK)
            break;
    }
    if (rc == ST_OK) {
        if (y.len == 0)
            rc = failrc;
        else
            *result = y.s;
    }
    if ((pq.retrans || pq.retry) && e->timeouts)
        e->timeouts(e->dns.ctx, 0, 0);
    return rc;
}

/* --- the driver --------------------------------------------------------- */
/* Tests and fuzzers build the engine alone (-DDNSDB_ENGINE_ONLY). */
#ifndef DNSDB_ENGINE_ONLY
#include "config/config.h"
#include "lookup/lookup.h"

static void set_timeouts(void *ctx, int retrans, int retry)
{
    dns_resolver_timeouts(ctx, retrans, retry);
}

static status dnsdb_find(const char *file, const char *key, const char *opts, arena *a,
                         char **result, char **err)
{
    if (!*file)
        return ST_NOTFOUND;             /* an empty query, as Exim 4.99 */
    dns_resolver *r = dnsdb_process_resolver(err, a);
    if (!r)
        return ST_DEFER;
    dnsdb_env env = { .dns = dns_iface_unbound(r), .timeouts = set_timeouts,
                      .csa_search_limit = (int)cfg_int(MO_dns_csa_search_limit) };
    status st = dnsdb_run(&env, file, a, result, err);
    dns_set_lookup_dnssec_authenticated(env.dnssec_auth);
    return st;
}

const lookup_driver lookup_dnsdb = {
    .name = "dnsdb",
    .query_style = true,
    .find = dnsdb_find,
};
#endif
