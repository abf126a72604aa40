/* host.c: host names and MX questions over a dns_iface (see host.h). */
#include "dns/host.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <netdb.h>
#include <pcre2.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 16-byte form; IPv4 as ::ffff:a.b.c.d so both spellings compare equal */
static bool ip16(const char *s, unsigned char out[16])
{
    unsigned char v4[4];
    if (inet_pton(AF_INET, s, v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

bool host_ip_equal(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    return a && b && ip16(a, x) && ip16(b, y) && memcmp(x, y, 16) == 0;
}

status host_addresses(const dns_iface *dns, const char *name, arena *a,
                      const char ***addrs, bool *secure)
{
    static const int types[] = { DNS_T_AAAA, DNS_T_A };
    int n = 0, cap = 8;
    const char **list = arena_alloc(a, (size_t)cap * sizeof *list);
    bool deferred = false, sec = true;
    for (int t = 0; t < 2; t++) {
        dns_answer ans;
        status st = dns->lookup(dns->ctx, name, types[t], a, &ans);
        if (st == ST_DEFER || st == ST_FAIL) {
            deferred = deferred || st == ST_DEFER;
            continue;
        }
        if (st != ST_OK)
            continue;
        if (ans.sec != DNS_SEC_SECURE)
            sec = false;
        for (int i = 0; i < ans.nrr; i++) {
            if (!ans.rr[i].text)
                continue;
            if (n + 1 >= cap) {
                const char **nl = arena_alloc(a, (size_t)cap * 2 * sizeof *nl);
                memcpy(nl, list, (size_t)n * sizeof *nl);
                list = nl;
                cap *= 2;
            }
            list[n++] = ans.rr[i].text;
        }
    }
    list[n] = NULL;
    *addrs = list;
    if (secure)
        *secure = n > 0 && sec;
    if (n)
        return ST_OK;
    return deferred ? ST_DEFER : ST_NOTFOUND;
}

status host_find_byname(const char *name, bool want6, arena *a, const char ***addrs, const char **canonical)
{
    int n = 0, cap = 8;
    const char **list = arena_alloc(a, (size_t)cap * sizeof *list);
    bool temp = false;
    *canonical = name;
    for (int af = want6 ? AF_INET6 : AF_INET;; af = AF_INET) {
        struct hostent *he = gethostbyname2(name, af);
        if (!he)
            temp = temp || h_errno == TRY_AGAIN || h_errno == NO_RECOVERY;
        if (he && he->h_name && *he->h_name && strcmp(he->h_name, name) != 0)
            *canonical = arena_strdup(a, he->h_name);
        for (char **p = he ? he->h_addr_list : NULL; p && *p; p++) {
            char text[INET6_ADDRSTRLEN];
            if (!inet_ntop(he->h_length == 4 ? AF_INET : AF_INET6, *p, text, sizeof text))
                continue;
            if (n + 1 >= cap) {
                const char **nl = arena_alloc(a, (size_t)cap * 2 * sizeof *nl);
                memcpy(nl, list, (size_t)n * sizeof *nl);
                list = nl;
                cap *= 2;
            }
            list[n++] = arena_strdup(a, text);
        }
        if (af == AF_INET)
            break;
    }
    list[n] = NULL;
    *addrs = list;
    return n ? ST_OK : temp ? ST_DEFER : ST_NOTFOUND;
}

status host_name_has_ip(const dns_iface *dns, const char *name, const char *ip, arena *a)
{
    const char **addrs;
    status st = host_addresses(dns, name, a, &addrs, NULL);
    if (st == ST_DEFER)
        return ST_DEFER;
    if (st != ST_OK)
        return ST_FAIL;
    for (int i = 0; addrs[i]; i++)
        if (host_ip_equal(addrs[i], ip))
            return ST_OK;
    return ST_FAIL;
}

static bool ldh_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.')
            return false;
    return true;
}

status host_name_lookup(const dns_iface *dns, const char *ip, arena *a, host_name_result *out)
{
    memset(out, 0, sizeof *out);
    out->aliases = arena_calloc(a, sizeof *out->aliases);
    char *rev = dns_reverse_name(ip, NULL, a);
    if (!rev) {
        out->msg = " (failed to find host name from IP address)";
        return ST_FAIL;
    }
    dns_answer ans;
    status st = dns->lookup(dns->ctx, rev, DNS_T_PTR, a, &ans);
    if (st == ST_DEFER)
        return ST_DEFER;
    int n = 0;
    const char **names = arena_calloc(a, (size_t)(st == ST_OK ? ans.nrr + 1 : 1) * sizeof *names);
    if (st == ST_OK)
        for (int i = 0; i < ans.nrr; i++) {
            const char *t = ans.rr[i].text;
            if (!t || !ldh_name(t))
                continue;               /* empty or odd names: no such name */
            char *lc = arena_strdup(a, t);
            for (char *p = lc; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            names[n++] = lc;
        }
    if (n == 0) {
        out->msg = " (failed to find host name from IP address)";
        return ST_FAIL;
    }
    out->dnssec = ans.sec == DNS_SEC_SECURE;

    /* forward confirmation: keep only the names that resolve back to ip */
    const char **ok = arena_calloc(a, (size_t)(n + 1) * sizeof *ok);
    int nok = 0;
    for (int i = 0; i < n; i++) {
        const char **addrs;
        bool sec = false;
        status fs = host_addresses(dns, names[i], a, &addrs, &sec);
        if (fs == ST_DEFER)
            return ST_DEFER;
        if (fs != ST_OK)
            continue;
        if (!sec)
            out->dnssec = false;
        for (int j = 0; addrs[j]; j++)
            if (host_ip_equal(addrs[j], ip)) {
                ok[nok++] = names[i];
                break;
            }
    }
    if (nok == 0) {
        out->dnssec = false;
        out->msg = arena_printf(a, " (%s does not match any IP address for %s)", ip, names[0]);
        return ST_FAIL;
    }
    out->name = ok[0];
    out->aliases = ok + 1;
    return ST_OK;
}

status host_verify_helo(const dns_iface *dns, const char *helo, const char *ip,
                        const host_name_result *known, arena *a, bool *dnssec)
{
    bool sec = false;
    if (dnssec)
        *dnssec = false;
    if (!helo)
        return ST_FAIL;
    if (!ip)
        return ST_OK;                   /* -bs without an address */
    if (helo[0] == '[') {
        /* literal: the text must start with the address (Exim's prefix test) */
        size_t l = strlen(ip);
        if (strncmp(helo + 1, ip, l) == 0)
            return ST_OK;
        if (strncasecmp(ip, "::ffff:", 7) == 0 && strncmp(helo + 1, ip + 7, l - 7) == 0)
            return ST_OK;
        return ST_FAIL;
    }
    host_name_result hn;
    status rs = ST_OK;
    if (!known) {
        rs = host_name_lookup(dns, ip, a, &hn);
        known = &hn;
    }
    if (known->name) {
        if (strcasecmp(known->name, helo) == 0) {
            if (dnssec)
                *dnssec = known->dnssec;
            return ST_OK;
        }
        for (const char **al = known->aliases; al && *al; al++)
            if (strcasecmp(*al, helo) == 0) {
                if (dnssec)
                    *dnssec = known->dnssec;
                return ST_OK;
            }
    }
    const char **addrs;
    if (host_addresses(dns, helo, a, &addrs, &sec) == ST_OK)
        for (int i = 0; addrs[i]; i++)
            if (strcmp(addrs[i], ip) == 0) {
                if (dnssec)
                    *dnssec = sec;
                return ST_OK;
            }
    return rs == ST_DEFER ? ST_DEFER : ST_FAIL;
}

typedef struct mxh {
    const char *name;
    unsigned pref;
    const char *addr;       /* NULL: no address found */
} mxh;

static int mx_cmp(const void *x, const void *y)
{
    const mxh *p = x, *q = y;
    return (p->pref > q->pref) - (p->pref < q->pref);
}

status host_mx_match(const dns_iface *dns, const char *domain, enum host_mx_mode mode,
                     const host_mx_local *local, arena *a)
{
    dns_answer mx;
    status st = dns->lookup(dns->ctx, domain, DNS_T_MX, a, &mx);
    if (st == ST_DEFER)
        return ST_DEFER;
    if (st != ST_OK)
        return ST_FAIL;

    /* one entry per (MX host, address), in preference order */
    int n = 0, cap = mx.nrr * 2 + 2;
    mxh *h = arena_alloc(a, (size_t)cap * sizeof *h);
    mxh *byname = arena_alloc(a, (size_t)mx.nrr * sizeof *byname);
    for (int i = 0; i < mx.nrr; i++)
        byname[i] = (mxh){ mx.rr[i].text ? mx.rr[i].text : "", mx.rr[i].pref, NULL };
    qsort(byname, (size_t)mx.nrr, sizeof *byname, mx_cmp);
    for (int i = 0; i < mx.nrr; i++) {
        const char **addrs = NULL;
        status as = *byname[i].name ? host_addresses(dns, byname[i].name, a, &addrs, NULL)
                                    : ST_NOTFOUND;
        int na = 0;
        while (as == ST_OK && addrs[na])
            na++;
        if (n + na + 1 > cap) {
            cap = (n + na + 1) * 2;
            mxh *nh = arena_alloc(a, (size_t)cap * sizeof *nh);
            memcpy(nh, h, (size_t)n * sizeof *nh);
            h = nh;
        }
        if (na == 0) {
            h[n++] = byname[i];         /* no address: still marks its group */
            continue;
        }
        for (int j = 0; j < na; j++) {
            if (local && local->ignore && local->ignore(local->ctx, addrs[j]))
                continue;
            h[n++] = (mxh){ byname[i].name, byname[i].pref, addrs[j] };
        }
    }

    /* find the first local host; is it in the lowest-preference group? */
    bool found_local = false, lowest = false;
    for (int i = 0; i < n && !found_local; i++) {
        bool is_local = local && local->local_name && local->local_name(local->ctx, h[i].name);
        if (!is_local && h[i].addr) {
            if (strcmp(h[i].addr, "0.0.0.0") == 0)
                is_local = true;
            for (int j = 0; !is_local && local && local->local_ips && local->local_ips[j]; j++)
                if (host_ip_equal(h[i].addr, local->local_ips[j]))
                    is_local = true;
        }
        if (is_local) {
            found_local = true;
            lowest = h[i].pref == h[0].pref;
        }
    }
    bool primary = found_local && lowest;       /* Exim: HOST_FOUND_LOCAL */
    bool removed = found_local && !lowest;      /* local secondary MX removed */
    switch (mode) {
    case HOST_MX_ANY: return primary || removed ? ST_OK : ST_FAIL;
    case HOST_MX_PRIMARY: return primary ? ST_OK : ST_FAIL;
    case HOST_MX_SECONDARY: return removed ? ST_OK : ST_FAIL;
    }
    return ST_FAIL;
}

status host_ctx_names(host_ctx *c, arena *a, const char *const **names)
{
    if (!c->name_done) {
        c->name_done = true;
        c->name_st = c->ip ? host_name_lookup(c->dns, c->ip, a, &c->name) : ST_FAIL;
    }
    if (c->name_st == ST_DEFER)
        return ST_DEFER;
    if (c->name_st != ST_OK || !c->name.name)
        return ST_NOTFOUND;
    int n = 1;
    while (c->name.aliases && c->name.aliases[n - 1])
        n++;
    const char **l = arena_alloc(a, (size_t)(n + 1) * sizeof *l);
    l[0] = c->name.name;
    for (int i = 1; i < n; i++)
        l[i] = c->name.aliases[i - 1];
    l[n] = NULL;
    *names = l;
    return ST_OK;
}

static bool has_suffix_ci(const char *s, const char *suf)
{
    size_t ls = strlen(s), lf = strlen(suf);
    return lf <= ls && strcasecmp(s + ls - lf, suf) == 0;
}

static bool plain_name(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
            return false;
    return true;
}

status host_list_item(host_ctx *c, const char *item, arena *a, char **err)
{
    if (strcmp(item, "@[]") == 0) {
        for (int i = 0; c->ip && c->local_ips && c->local_ips[i]; i++)
            if (host_ip_equal(c->ip, c->local_ips[i]))
                return ST_OK;
        return ST_FAIL;
    }
    const char *name = strcmp(item, "@") == 0 ? c->primary_hostname : item;
    unsigned char b[16];
    if (!name || !*name || strchr(name, ';') || strchr(name, '/') ||
        inet_pton(AF_INET, name, b) == 1 || inet_pton(AF_INET6, name, b) == 1)
        return ST_DECLINED;         /* addresses, networks, lookups: the matcher's */

    if (plain_name(name)) {
        /* a complete name: its addresses against the client's */
        if (!c->ip)
            return ST_FAIL;
        const char **addrs;
        status st = host_addresses(c->dns, name, a, &addrs, NULL);
        if (st == ST_DEFER)
            return ST_DEFER;
        if (st != ST_OK)
            return ST_NOTFOUND;
        for (int i = 0; addrs[i]; i++)
            if (host_ip_equal(addrs[i], c->ip))
                return ST_OK;
        return ST_FAIL;
    }

    /* a pattern for the client's names; as in Exim, a name that cannot be
       found, even for a temporary reason, is "unknown" here */
    const char *const *names;
    if (host_ctx_names(c, a, &names) != ST_OK)
        return ST_NOTFOUND;
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    if (name[0] == '^') {
        int ec;
        PCRE2_SIZE eo;
        re = pcre2_compile((PCRE2_SPTR)name, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &ec, &eo,
                           NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            *err = arena_printf(a, "regular expression error in \"%s\": %s at offset %zu",
                                name, msg, eo);
            return ST_ERROR;
        }
        md = pcre2_match_data_create_from_pattern(re, NULL);
    }
    bool hit = false;
    for (int i = 0; names[i] && !hit; i++) {
        if (re)
            hit = pcre2_match(re, (PCRE2_SPTR)names[i], PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
        else if (name[0] == '*')
            hit = has_suffix_ci(names[i], name + 1);
        else
            hit = strcasecmp(names[i], name) == 0;
    }
    if (re) {
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
    return hit ? ST_OK : ST_FAIL;
}
