/* match.c: Exim list matching (domain, host/IP, address, local part).
 *
 * Walks a list item by item: "!" negates, "+name" refers to a named list
 * (itself walked recursively), "^..." is a regular expression, "type;data"
 * a lookup, and the remaining forms depend on the list type.  As in Exim,
 * when no item matches and the last item was negative, the list matches. */
#include "match.h"
#include "expand.h"
#include "config/config.h"
#include "core/list.h"
#include "lookup/lookup.h"
#include "core/state.h"
#include "dns/dns.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MATCH_MAX_DEPTH 20     /* nesting of named lists */

typedef enum mkind { MK_DOMAIN, MK_LP, MK_ADDR, MK_IP } mkind;

typedef struct mctx {
    mkind kind;
    arena *a;
    bool caseless;
    const char **value;
    char **err;
    int depth;
    bool ignore_unknown, include_unknown;   /* host lists: +ignore_unknown, +include_unknown */
    bool ip_only;           /* match_ip condition: a host name item fails the list */
} mctx;

bool ip_parse(const char *s, unsigned char addr[16], int *family, int *mask)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (mask)
        *mask = -1;
    else if (slash)
        return false;
    char *pct = strchr(buf, '%');
    if (pct && strchr(buf, ':'))
        *pct = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1)
        *family = 4;
    else if (inet_pton(AF_INET6, buf, addr) == 1)
        *family = 6;
    else
        return false;
    if (slash) {
        const char *p = slash + 1;
        if (!isdigit((unsigned char)*p))
            return false;
        int m = 0;
        while (isdigit((unsigned char)*p)) {
            if (m < 1000)
                m = m * 10 + (*p - '0');
            p++;
        }
        if (*p)
            return false;
        int max = *family == 4 ? 32 : 128;
        *mask = m > max ? max : m;
    }
    return true;
}

bool ip_in_net(const unsigned char *ip, int fam, const unsigned char *net, int nfam, int bits)
{
    if (fam != nfam)
        return false;
    int max = fam == 4 ? 32 : 128;
    if (bits > max)
        bits = max;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        unsigned char m = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((ip[i] & m) != (net[i] & m))
            return false;
    }
    return true;
}

static int re_match(const char *subj, const char *re, bool caseless, mctx *m)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        *m->err = arena_printf(m->a, "regular expression error in \"%s\": %s at offset %d", re, msg, (int)eo);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, strlen(subj), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0 ? 1 : 0;
}

/* Is ip (text) one of this host's interface addresses ("@[]")? */
bool match_local_interface(const char *ip)
{
    unsigned char a[16];
    int fa;
    if (!ip_parse(ip, a, &fa, NULL))
        return false;
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0)
        return false;
    bool hit = false;
    for (i = ifs; i && !hit; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        if (i->ifa_addr->sa_family == AF_INET && fa == 4)
            hit = memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, 4) == 0;
        else if (i->ifa_addr->sa_family == AF_INET6 && fa == 6)
            hit = memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a, 16) == 0;
    }
    freeifaddrs(ifs);
    return hit;
}

static status walk(mctx *m, const char *subject, const char *list);

/* "@mx_any", "@mx_primary", "@mx_secondary" (optionally "/ignore=<ip
 * list>"): do the domain's MX records point to this host?  Primary means
 * one of the lowest-preference MX hosts.  ST_OK, ST_FAIL, ST_DEFER. */
static status mx_match(mctx *m, const char *domain, const char *pat)
{
    const char *p = pat + 4;
    int kind;
    if (strncasecmp(p, "any", 3) == 0)
        kind = 0, p += 3;
    else if (strncasecmp(p, "primary", 7) == 0)
        kind = 1, p += 7;
    else if (strncasecmp(p, "secondary", 9) == 0)
        kind = 2, p += 9;
    else
        return ST_FAIL;
    const char *ignore = NULL;
    if (strncasecmp(p, "/ignore=", 8) == 0)
        ignore = p + 8;
    else if (*p)
        return ST_FAIL;
    if (ps.exp_forbid & EXPAND_FORBID_DNS) {
        *m->err = arena_printf(m->a, "DNS lookup of \"%s\" deferred", domain);
        return ST_DEFER;
    }
    char *e = NULL;
    dns_resolver *r = dns_process_resolver(&e, m->a);
    if (!r) {
        *m->err = arena_printf(m->a, "DNS lookup of \"%s\" deferred", domain);
        return ST_DEFER;
    }
    dns_answer mx;
    if (dns_lookup(r, domain, DNS_T_MX, m->a, &mx) != ST_OK && mx.st == ST_DEFER) {
        *m->err = arena_printf(m->a, "DNS lookup of \"%s\" deferred", domain);
        return ST_DEFER;
    }
    if (mx.st != ST_OK || mx.nrr == 0)
        return ST_FAIL;
    unsigned lowest = ~0u;
    for (int i = 0; i < mx.nrr; i++)
        if (mx.rr[i].pref < lowest)
            lowest = mx.rr[i].pref;
    bool local_primary = false, local_other = false;
    for (int i = 0; i < mx.nrr; i++) {
        static const int types[] = {DNS_T_A, DNS_T_AAAA};
        bool local = false;
        for (int t = 0; t < 2 && !local; t++) {
            dns_answer ad;
            if (dns_lookup(r, mx.rr[i].text, types[t], m->a, &ad) != ST_OK || ad.st != ST_OK)
                continue;
            for (int j = 0; j < ad.nrr && !local; j++) {
                if (ignore) {
                    char *e2 = NULL;
                    mctx im = {.kind = MK_IP, .a = m->a, .err = &e2, .ip_only = true};
                    if (walk(&im, ad.rr[j].text, ignore) == ST_OK)
                        continue;
                }
                local = match_local_interface(ad.rr[j].text);
            }
        }
        if (local) {
            if (mx.rr[i].pref == lowest)
                local_primary = true;
            else
                local_other = true;
        }
    }
    bool hit = kind == 0 ? (local_primary || local_other) : kind == 1 ? local_primary
                                                                       : (local_other && !local_primary);
    return hit ? ST_OK : ST_FAIL;
}

/* Set $0 (and $1) after a wildcard domain match, as Exim does. */
static void set_wild_numbers(const char *subject, size_t wildlen, arena *a)
{
    char *lc = arena_strdup(a, subject);
    for (char *p = lc; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    ps.exp_num[0] = lc;
    ps.exp_num[1] = arena_strndup(a, lc, wildlen);
    ps.exp_nmax = 2;
}

/* Regex match setting $0..$n from the captures. */
static int re_match_set(const char *subj, const char *re, bool caseless, arena *a, char **err)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        *err = arena_printf(a, "regular expression error in \"%s\": %s at offset %d", re, msg, (int)eo);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, strlen(subj), 0, 0, md, NULL);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int n = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
        if (n > EXPAND_MAX_NUMVARS)
            n = EXPAND_MAX_NUMVARS;
        for (int i = 0; i < n; i++)
            ps.exp_num[i] = ov[2 * i] == PCRE2_UNSET ? "" :
                arena_strndup(a, subj + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        ps.exp_nmax = n;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0 ? 1 : 0;
}

bool match_domain_pattern(const char *subject, const char *pattern, arena *a)
{
    if (pattern[0] == '^') {
        char *err = NULL;
        mctx m = {.a = a, .err = &err};
        return re_match(subject, pattern, true, &m) == 1;
    }
    if (pattern[0] == '*') {
        size_t sl = strlen(subject), pl = strlen(pattern + 1);
        return sl >= pl && strcasecmp(subject + sl - pl, pattern + 1) == 0;
    }
    if (strcmp(pattern, "@") == 0) {
        const char *h = cfg ? cfg_str(MO_primary_hostname) : NULL;
        return h && strcasecmp(subject, h) == 0;
    }
    return strcasecmp(subject, pattern) == 0;
}

/* Is item a "type;data" lookup?  Returns 1 and fills spec/data, 0 if not
 * a lookup, -1 on error. */
static int as_lookup(const char *item, mctx *m, lookup_spec *sp, const char **data, int *netbits)
{
    const char *semi = strchr(item, ';');
    if (!semi || semi == item)
        return 0;
    for (const char *p = item; p < semi; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_*@(),=.", *p))
            return 0;
    char *type = arena_strndup(m->a, item, (size_t)(semi - item));
    if (netbits) {
        *netbits = -1;
        if (strncmp(type, "net", 3) == 0 && (isdigit((unsigned char)type[3]) || type[3] == '-')) {
            char *p = type + 3;
            int b = -2;
            if (isdigit((unsigned char)*p)) {
                b = 0;
                while (isdigit((unsigned char)*p))
                    b = b * 10 + (*p++ - '0');
            }
            if (*p == '-') {
                *netbits = b;
                type = p + 1;
            }
        }
    }
    if (lookup_parse_type(type, sp, m->a, m->err) != ST_OK)
        return -1;
    const char *d = semi + 1;
    while (isspace((unsigned char)*d))
        d++;
    *data = d;
    return 1;
}

static status do_lookup(mctx *m, const lookup_spec *sp, const char *data, const char *key, const char **val)
{
    char *res = NULL, *err = NULL;
    if (sp->drv->query_style && (ps.exp_forbid & EXPAND_FORBID_QUERY)) {
        *m->err = arena_strdup(m->a, "lookup expansions are not permitted");
        return ST_DEFER;
    }
    status st = lookup_search(sp, data, key, m->a, &res, &err);
    if (st == ST_OK) {
        if (val)
            *val = res;
        return ST_OK;
    }
    if (st == ST_NOTFOUND)
        return ST_FAIL;
    *m->err = err;
    return st == ST_ERROR ? ST_DEFER : st;
}


static status named(mctx *m, const char *subject, const char *name)
{
    static const list_kind nk[] = {[MK_DOMAIN] = NL_DOMAIN, [MK_LP] = NL_LOCALPART,
                                   [MK_ADDR] = NL_ADDRESS, [MK_IP] = NL_HOST};
    static const char *const kn[] = {[MK_DOMAIN] = "domain", [MK_LP] = "local part",
                                     [MK_ADDR] = "address", [MK_IP] = "host"};
    const named_list *nl = cfg ? config_named_list(nk[m->kind], name) : NULL;
    if (!nl) {
        *m->err = arena_printf(m->a, "unknown named %s list \"+%s\"", kn[m->kind], name);
        return ST_ERROR;
    }
    if (m->depth >= MATCH_MAX_DEPTH) {
        *m->err = arena_printf(m->a, "named lists nested too deeply at \"+%s\"", name);
        return ST_ERROR;
    }
    const char *list = nl->value ? nl->value : "";
    if (strchr(list, '$') || strchr(list, '\\')) {
        char *e, *x;
        status st = expand_string(list, m->a, &x, &e);
        if (st != ST_OK) {
            *m->err = arena_printf(m->a, "failed to expand named list \"%s\": %s", name, e);
            return ST_DEFER;
        }
        list = x;
    }
    m->depth++;
    const char **saved = m->value;
    const char *sub = NULL;
    m->value = &sub;
    status st = walk(m, subject, list);
    m->value = saved;
    m->depth--;
    if (st == ST_OK && m->value)
        *m->value = m->kind == MK_IP ? NULL : sub;
    return st;
}

/* One non-negated item.  ST_OK match, ST_FAIL no match, else error. */
static status item_domain(mctx *m, const char *d, const char *it)
{
    lookup_spec sp;
    const char *data;
    if (it[0] == '+' && it[1])
        return named(m, d, it + 1);
    if (it[0] == '^') {
        int r = re_match_set(d, it, true, m->a, m->err);
        if (r > 0 && m->value)
            *m->value = it;
        return r < 0 ? ST_ERROR : r ? ST_OK : ST_FAIL;
    }
    int l = as_lookup(it, m, &sp, &data, NULL);
    if (l < 0)
        return ST_ERROR;
    if (l > 0) {
        if (!*d && !sp.drv->query_style)
            return ST_FAIL;
        const char *v = NULL;
        status st = do_lookup(m, &sp, data, d, &v);
        if (st == ST_OK && m->value)
            *m->value = v;
        return st;
    }
    if (strcmp(it, "@[]") == 0) {
        /* a domain literal holding one of this host's addresses */
        size_t dl = strlen(d);
        if (dl < 3 || d[0] != '[' || d[dl - 1] != ']')
            return ST_FAIL;
        char *ip = arena_strndup(m->a, d + 1, dl - 2);
        if (strncasecmp(ip, "ipv6:", 5) == 0)
            ip += 5;
        if (!match_local_interface(ip))
            return ST_FAIL;
        if (m->value)
            *m->value = it;
        return ST_OK;
    }
    if (strncmp(it, "@mx_", 4) == 0) {
        status st = mx_match(m, d, it);
        if (st == ST_OK && m->value)
            *m->value = it;
        return st;
    }
    if (match_domain_pattern(d, it, m->a)) {
        if (m->value)
            *m->value = it;
        if (it[0] == '*')
            set_wild_numbers(d, strlen(d) - strlen(it + 1), m->a);
        return ST_OK;
    }
    return ST_FAIL;
}

status match_domain_one(const char *subject, const char *pattern, arena *a, const char **value, char **err)
{
    char *dummy = NULL;
    const char *v = NULL;
    mctx m = {.kind = MK_DOMAIN, .a = a, .caseless = true, .value = &v, .err = err ? err : &dummy};
    status st = item_domain(&m, subject, pattern);
    if (value)
        *value = st == ST_OK ? v : NULL;
    return st;
}

static status item_lp(mctx *m, const char *lp, const char *it)
{
    lookup_spec sp;
    const char *data;
    if (it[0] == '+' && it[1])
        return named(m, lp, it + 1);
    if (it[0] == '^') {
        int r = re_match(lp, it, m->caseless, m);
        if (r > 0 && m->value)
            *m->value = it;
        return r < 0 ? ST_ERROR : r ? ST_OK : ST_FAIL;
    }
    int l = as_lookup(it, m, &sp, &data, NULL);
    if (l < 0)
        return ST_ERROR;
    if (l > 0) {
        const char *v = NULL;
        status st = do_lookup(m, &sp, data, lp, &v);
        if (st == ST_OK && m->value)
            *m->value = v;
        return st;
    }
    bool hit;
    if (it[0] == '*') {
        size_t sl = strlen(lp), pl = strlen(it + 1);
        hit = sl >= pl && (m->caseless ? strcasecmp(lp + sl - pl, it + 1) : strcmp(lp + sl - pl, it + 1)) == 0;
    } else {
        hit = (m->caseless ? strcasecmp(lp, it) : strcmp(lp, it)) == 0;
    }
    if (hit && m->value)
        *m->value = it;
    return hit ? ST_OK : ST_FAIL;
}

static status item_addr(mctx *m, const char *addr, const char *it)
{
    lookup_spec sp;
    const char *data;
    if (strcmp(it, "+caseful") == 0) {
        m->caseless = false;
        return ST_FAIL;
    }
    if (it[0] == '+' && it[1])
        return named(m, addr, it + 1);
    if (!*it)
        return *addr ? ST_FAIL : ST_OK;
    if (it[0] == '^') {
        int r = re_match(addr, it, m->caseless, m);
        if (r > 0 && m->value)
            *m->value = it;
        return r < 0 ? ST_ERROR : r ? ST_OK : ST_FAIL;
    }
    const char *at = strrchr(addr, '@');
    if (it[0] == '@' && it[1] == '@') {
        int l = as_lookup(it + 2, m, &sp, &data, NULL);
        if (l <= 0)
            return l < 0 ? ST_ERROR : ST_FAIL;
        if (!at)
            return ST_FAIL;
        const char *v = NULL;
        status st = do_lookup(m, &sp, data, at + 1, &v);
        if (st != ST_OK)
            return st;
        char *lp = arena_strndup(m->a, addr, (size_t)(at - addr));
        mctx sub = *m;
        sub.kind = MK_LP;
        sub.value = NULL;
        return walk(&sub, lp, v);
    }
    int l = as_lookup(it, m, &sp, &data, NULL);
    if (l < 0)
        return ST_ERROR;
    if (l > 0) {
        if (!*addr && !sp.drv->query_style)
            return ST_FAIL;
        sp.partial = -1;
        const char *v = NULL;
        status st = do_lookup(m, &sp, data, addr, &v);
        if (st == ST_OK && m->value)
            *m->value = v;
        return st;
    }
    if (!at) {
        *m->err = arena_printf(m->a, "no @ found in the subject of an address list match: subject=\"%s\" pattern=\"%s\"", addr, it);
        return ST_FAIL;
    }
    const char *pat = strrchr(it, '@');
    const char *dom = at + 1;
    status st;
    mctx dm = *m;
    dm.kind = MK_DOMAIN;
    dm.value = NULL;
    if (!pat) {
        /* domain only */
        st = item_domain(&dm, dom, it);
    } else {
        char *plp = arena_strndup(m->a, it, (size_t)(pat - it));
        char *slp = arena_strndup(m->a, addr, (size_t)(at - addr));
        mctx lm = *m;
        lm.kind = MK_LP;
        lm.value = NULL;
        if (!(plp[0] == '*' && !plp[1]) && item_lp(&lm, slp, plp) != ST_OK)
            return ST_FAIL;
        st = *(pat + 1) ? item_domain(&dm, dom, pat + 1) : ST_FAIL;
    }
    if (st == ST_OK && m->value)
        *m->value = it;
    return st;
}

static status item_ip(mctx *m, const char *ip, const char *it)
{
    lookup_spec sp;
    const char *data;
    int bits;
    if (strcmp(it, "+ignore_unknown") == 0 || strcmp(it, "+include_unknown") == 0) {
        m->ignore_unknown = it[2] == 'g';
        m->include_unknown = it[2] == 'n';
        return ST_FAIL;
    }
    if (strcmp(it, "+ignore_defer") == 0 || strcmp(it, "+include_defer") == 0)
        return ST_FAIL;
    if (it[0] == '+' && it[1])
        return named(m, ip, it + 1);
    if (!*it)
        return *ip ? ST_FAIL : ST_OK;
    if (strcmp(it, "*") == 0)
        return ST_OK;
    if (!*ip)
        return ST_FAIL;
    unsigned char a[16], n[16];
    int fa, fn, mask;
    if (!ip_parse(ip, a, &fa, NULL))
        return ST_FAIL;
    if (ip_parse(it, n, &fn, &mask))
        return ip_in_net(a, fa, n, fn, mask < 0 ? (fn == 4 ? 32 : 128) : mask) ? ST_OK : ST_FAIL;
    int l = as_lookup(it, m, &sp, &data, &bits);
    if (l < 0)
        return ST_ERROR;
    if (l > 0) {
        const char *key = ip;
        if (bits >= 0) {
            int max = fa == 4 ? 32 : 128;
            if (bits > max)
                bits = max;
            unsigned char mk[16] = {0};
            for (int i = 0, b = bits; b > 0; i++, b -= 8)
                mk[i] = a[i] & (b >= 8 ? 0xff : (unsigned char)(0xff << (8 - b)));
            char buf[64];
            inet_ntop(fa == 4 ? AF_INET : AF_INET6, mk, buf, sizeof buf);
            key = arena_printf(m->a, "%s/%d", buf, bits);
        }
        const char *v = NULL;
        status st = do_lookup(m, &sp, data, key, &v);
        return st;
    }
    if (strcmp(it, "@[]") == 0)
        return match_local_interface(ip) ? ST_OK : ST_FAIL;
    if (strncmp(it, "@mx_", 4) == 0)
        return ST_FAIL;
    if (!m->ip_only) {
        /* Host lists (ACL "hosts =" etc.): a wildcard or regex is matched
         * against the client's host name when it is known; a plain name is
         * looked up (A or AAAA) and its addresses compared. */
        const char *hn = ps.sender_host_name;
        if (it[0] == '*' || it[0] == '^') {
            if (hn && *hn)
                return match_domain_pattern(hn, it, m->a) ? ST_OK : ST_FAIL;
        } else {
            if (hn && *hn && strcasecmp(hn, it) == 0)
                return ST_OK;
            char *e = NULL;
            dns_resolver *r = ps.exp_forbid & EXPAND_FORBID_DNS ? NULL : dns_process_resolver(&e, m->a);
            if (r) {
                dns_answer ans;
                if (dns_lookup(r, it, fa == 4 ? DNS_T_A : DNS_T_AAAA, m->a, &ans) == ST_OK &&
                    ans.st == ST_OK) {
                    for (int i = 0; i < ans.nrr; i++) {
                        unsigned char b[16];
                        int fb;
                        if (ans.rr[i].text && ip_parse(ans.rr[i].text, b, &fb, NULL) &&
                            ip_in_net(a, fa, b, fb, fa == 4 ? 32 : 128))
                            return ST_OK;
                    }
                    return ST_FAIL;
                }
                if (ans.st == ST_NOTFOUND)
                    return ST_FAIL;
            }
        }
    }
    /* The subject's name is not known (or, for the match_ip condition, never
     * looked at): as in Exim the whole list fails, unless told otherwise. */
    if (m->ignore_unknown)
        return ST_FAIL;
    if (m->include_unknown)
        return ST_OK;
    return ST_NOTFOUND;
}

static status walk(mctx *m, const char *subject, const char *list)
{
    int sep = 0;
    bool last_neg = false;
    char *it;
    while ((it = list_next(&list, &sep, m->a))) {
        bool neg = false;
        while (*it == '!') {
            neg = !neg;
            it++;
            while (isspace((unsigned char)*it))
                it++;
        }
        last_neg = neg;
        status st;
        switch (m->kind) {
        case MK_DOMAIN: st = item_domain(m, subject, it); break;
        case MK_LP: st = item_lp(m, subject, it); break;
        case MK_ADDR: st = item_addr(m, subject, it); break;
        default: st = item_ip(m, subject, it); break;
        }
        if (st == ST_OK)
            return neg ? ST_FAIL : ST_OK;
        if (st != ST_FAIL)
            return st;   /* ST_NOTFOUND: the whole list fails (unknown host name) */
    }
    return last_neg ? ST_OK : ST_FAIL;
}

static status run(mkind k, const char *subject, const char *list, bool caseless, arena *a,
                  const char **value, char **err, bool ip_only)
{
    char *dummy = NULL;
    const char *v = NULL;
    mctx m = {.kind = k, .a = a, .caseless = caseless, .value = &v, .err = err ? err : &dummy,
              .ip_only = ip_only};
    status st = walk(&m, subject, list);
    if (st == ST_NOTFOUND)
        st = ST_FAIL;
    if (value)
        *value = st == ST_OK ? v : NULL;
    return st;
}

status match_domain(const char *domain, const char *list, arena *a, const char **value, char **err)
{
    return run(MK_DOMAIN, domain, list, true, a, value, err, false);
}

status match_local_part(const char *lp, const char *list, bool caseless, arena *a,
                        const char **value, char **err)
{
    return run(MK_LP, lp, list, caseless, a, value, err, false);
}

status match_address(const char *addr, const char *list, bool caseless, arena *a,
                     const char **value, char **err)
{
    return run(MK_ADDR, addr, list, caseless, a, value, err, false);
}

status match_ip(const char *ip, const char *list, arena *a, const char **value, char **err)
{
    return run(MK_IP, ip, list, true, a, value, err, false);
}

status match_ip_only(const char *ip, const char *list, arena *a, const char **value, char **err)
{
    return run(MK_IP, ip, list, true, a, value, err, true);
}
