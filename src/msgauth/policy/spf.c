/* spf.c: SPF check_host() (RFC 7208 sections 4 and 5): record selection,
 * mechanism evaluation with the DNS-lookup and void-lookup limits,
 * include/redirect recursion, exp= explanations, and spf_guess. */
#include "msgauth/policy/spf_int.h"
#include "core/gstr.h"
#include "msgauth/policy/idna.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct spf_ctx {
    const spf_query *q;
    const dns_iface *dns;
    arena *a;
    unsigned char ip[16];
    bool v6;
    const char *sender, *local, *sender_dom;
    int dns_mech, voids;
    const char *problem;
    const char *mechanism;    /* deciding term at the top-level evaluation */
    bool ptr_done;
    const char *ptr_name;     /* %{p} */
    const char *top_record;   /* the record of the checked domain */
    struct timespec start;    /* for SPF_MAX_SECONDS */
} spf_ctx;

typedef struct level_res {
    spf_result r;
    const char *exp;          /* evaluated exp= text for fail, or NULL */
} level_res;

static level_res check_host(spf_ctx *c, const char *domain, int depth, bool in_include,
                            const char *record_override);

/* ---- DNS helpers ------------------------------------------------------- */

/* Names go to the resolver in presentation form: bytes that are not
 * printable (a macro can put spaces into a name) become \DDD. */
static const char *presentation(arena *a, const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    for (; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
            break;
    if (!*p)
        return name;
    gstr g;
    gstr_init(&g, a, strlen(name) + 16);
    for (p = (const unsigned char *)name; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
            gstr_printf(&g, "\\%03u", *p);
        else
            gstr_catc(&g, (char)*p);
    }
    return g.s;
}

static status lookup(spf_ctx *c, const char *name, int type, dns_answer *ans)
{
    memset(ans, 0, sizeof *ans);
    name = presentation(c->a, name);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - c->start.tv_sec > SPF_MAX_SECONDS) {
        ans->st = ST_DEFER;
        ans->why = "SPF evaluation took too long";
        return ST_DEFER;
    }
    status st = c->dns->lookup(c->dns->ctx, name, type, c->a, ans);
    ans->st = st;
    return st;
}

/* Count a void lookup; true when the limit is now exceeded. */
static bool void_hit(spf_ctx *c)
{
    if (++c->voids > SPF_MAX_VOID) {
        c->problem = "too many void DNS lookups (RFC 7208 4.6.4)";
        return true;
    }
    return false;
}

static bool ip_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rem = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rem == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

/* Does the client address match addr (text) under the term's CIDR lengths? */
static bool addr_matches(spf_ctx *c, const char *addr, int cidr4, int cidr6)
{
    unsigned char b[16];
    bool v6;
    if (!spf_ip_parse(addr, b, &v6) || v6 != c->v6)
        return false;
    if (!c->v6)
        return ip_match(c->ip + 12, b + 12, cidr4);
    return ip_match(c->ip, b, cidr6);
}

static const char *rev_name(spf_ctx *c)
{
    if (!c->v6)
        return arena_printf(c->a, "%u.%u.%u.%u.in-addr.arpa", c->ip[15], c->ip[14],
                            c->ip[13], c->ip[12]);
    gstr g;
    gstr_init(&g, c->a, 80);
    static const char hx[] = "0123456789abcdef";
    for (int k = 15; k >= 0; k--)
        gstr_printf(&g, "%c.%c.", hx[c->ip[k] & 15], hx[c->ip[k] >> 4]);
    gstr_cat(&g, "ip6.arpa");
    return g.s;
}

static bool name_is_sub(const char *name, const char *dom)
{
    size_t nl = strlen(name), dl = strlen(dom);
    if (nl && name[nl - 1] == '.')
        nl--;
    if (dl && dom[dl - 1] == '.')
        dl--;
    if (nl == dl)
        return strncasecmp(name, dom, nl) == 0;
    return nl > dl && name[nl - dl - 1] == '.' && strncasecmp(name + nl - dl, dom, dl) == 0;
}

/* Validated names of the client (RFC 7208 5.5): PTR names whose A/AAAA
 * include the client address; at most SPF_MAX_PTR_NAMES are tried.
 * Returns the count; names in out[]. *defer on a PTR lookup failure. */
static int validated_names(spf_ctx *c, const char **out, int max)
{
    dns_answer ans;
    if (lookup(c, rev_name(c), DNS_T_PTR, &ans) != ST_OK)
        return 0;
    int n = 0;
    for (int i = 0; i < ans.nrr && i < SPF_MAX_PTR_NAMES && n < max; i++) {
        const char *nm = ans.rr[i].text;
        if (!nm || !*nm)
            continue;
        dns_answer aa;
        if (lookup(c, nm, c->v6 ? DNS_T_AAAA : DNS_T_A, &aa) != ST_OK)
            continue;
        for (int j = 0; j < aa.nrr; j++)
            if (aa.rr[j].text && addr_matches(c, aa.rr[j].text, 32, 128)) {
                out[n++] = nm;
                break;
            }
    }
    return n;
}

static const char *ptr_macro(void *ctx, const char *domain)
{
    spf_ctx *c = ctx;
    if (c->ptr_done)
        return c->ptr_name;
    const char *names[SPF_MAX_PTR_NAMES];
    int n = validated_names(c, names, SPF_MAX_PTR_NAMES);
    c->ptr_name = "unknown";
    const char *sub = NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        const char *nm = (l && names[i][l - 1] == '.') ? arena_strndup(c->a, names[i], l - 1) : names[i];
        if (domain && strcasecmp(nm, domain) == 0) {
            c->ptr_name = nm;
            c->ptr_done = true;
            return nm;
        }
        if (!sub && domain && name_is_sub(nm, domain))
            sub = nm;
        if (i == 0)
            c->ptr_name = nm;
    }
    if (sub)
        c->ptr_name = sub;
    c->ptr_done = true;
    return c->ptr_name;
}

static void macro_ctx(spf_ctx *c, const char *domain, bool in_exp, spf_macro_ctx *m)
{
    memset(m, 0, sizeof *m);
    m->sender = c->sender;
    m->local = c->local;
    m->sender_dom = c->sender_dom;
    m->domain = domain;
    m->ip = c->q->ip;
    m->helo = c->q->helo;
    m->receiver = c->q->receiver;
    m->now = c->q->now ? c->q->now : time(NULL);
    m->in_exp = in_exp;
    m->ptr_name = ptr_macro;
    m->ptr_ctx = c;
}

/* Expand a domain-spec to a name to query (RFC 7208 7.3 truncation). */
static const char *target_name(spf_ctx *c, const char *dspec, size_t dlen, const char *domain,
                               bool *err)
{
    *err = false;
    if (!dspec)
        return domain;
    spf_macro_ctx m;
    macro_ctx(c, domain, false, &m);
    char *out, *e;
    if (spf_macro_expand(dspec, dlen, &m, c->a, &out, &e) != ST_OK) {
        c->problem = e;
        *err = true;
        return NULL;
    }
    size_t n = strlen(out);
    if (n && out[n - 1] == '.')
        out[--n] = 0;
    while (n > 253) {
        char *dot = strchr(out, '.');
        if (!dot)
            break;
        out = dot + 1;
        n = strlen(out);
    }
    return out;
}

/* ---- mechanisms -------------------------------------------------------- */

enum { M_NOMATCH, M_MATCH, M_TEMP, M_PERM };

static int mech_a(spf_ctx *c, const char *name, int cidr4, int cidr6)
{
    if (!spf_domain_ok(name, false))
        return M_NOMATCH;
    dns_answer ans;
    status st = lookup(c, name, c->v6 ? DNS_T_AAAA : DNS_T_A, &ans);
    if (st == ST_DEFER) {
        c->problem = arena_printf(c->a, "DNS failure looking up %s: %s", name,
                                  ans.why ? ans.why : "timeout");
        return M_TEMP;
    }
    if (st != ST_OK || ans.nrr == 0)
        return void_hit(c) ? M_PERM : M_NOMATCH;
    for (int i = 0; i < ans.nrr; i++)
        if (ans.rr[i].text && addr_matches(c, ans.rr[i].text, cidr4, cidr6))
            return M_MATCH;
    return M_NOMATCH;
}

static int mech_mx(spf_ctx *c, const char *name, int cidr4, int cidr6)
{
    if (!spf_domain_ok(name, false))
        return M_NOMATCH;
    dns_answer ans;
    status st = lookup(c, name, DNS_T_MX, &ans);
    if (st == ST_DEFER) {
        c->problem = arena_printf(c->a, "DNS failure looking up MX %s", name);
        return M_TEMP;
    }
    if (st != ST_OK || ans.nrr == 0)
        return void_hit(c) ? M_PERM : M_NOMATCH;
    /* RFC 7208 4.6.4: no more than SPF_MAX_MX_NAMES address lookups per
     * mx.  More MX names than that is permerror whatever their order (the
     * DNS returns them in any order, so stopping at the first match would
     * make the result random; pyspf decides the same way). */
    int names = 0;
    for (int i = 0; i < ans.nrr; i++)
        names += ans.rr[i].text && *ans.rr[i].text && strcmp(ans.rr[i].text, ".") != 0;
    if (names > SPF_MAX_MX_NAMES) {
        c->problem = arena_printf(c->a, "more than %d MX names for %s", SPF_MAX_MX_NAMES, name);
        return M_PERM;
    }
    for (int i = 0; i < ans.nrr; i++) {
        const char *h = ans.rr[i].text;
        if (!h || !*h || strcmp(h, ".") == 0)
            continue;
        dns_answer aa;
        st = lookup(c, h, c->v6 ? DNS_T_AAAA : DNS_T_A, &aa);
        if (st == ST_DEFER) {
            c->problem = arena_printf(c->a, "DNS failure looking up %s", h);
            return M_TEMP;
        }
        if (st != ST_OK || aa.nrr == 0) {
            /* every query made for a mechanism counts (RFC 7208 4.6.4) */
            if (void_hit(c))
                return M_PERM;
            continue;
        }
        for (int j = 0; j < aa.nrr; j++)
            if (aa.rr[j].text && addr_matches(c, aa.rr[j].text, cidr4, cidr6))
                return M_MATCH;
    }
    return M_NOMATCH;
}

static int mech_ptr(spf_ctx *c, const char *name)
{
    const char *names[SPF_MAX_PTR_NAMES];
    dns_answer ans;
    status st = lookup(c, rev_name(c), DNS_T_PTR, &ans);
    if (st == ST_NOTFOUND)
        return void_hit(c) ? M_PERM : M_NOMATCH;
    if (st != ST_OK)
        return M_NOMATCH;
    int n = 0;
    for (int i = 0; i < ans.nrr && i < SPF_MAX_PTR_NAMES; i++) {
        const char *nm = ans.rr[i].text;
        if (!nm || !*nm)
            continue;
        dns_answer aa;
        st = lookup(c, nm, c->v6 ? DNS_T_AAAA : DNS_T_A, &aa);
        if (st == ST_NOTFOUND && void_hit(c))
            return M_PERM;
        if (st != ST_OK)
            continue;
        for (int j = 0; j < aa.nrr; j++)
            if (aa.rr[j].text && addr_matches(c, aa.rr[j].text, 32, 128)) {
                names[n++] = nm;
                break;
            }
    }
    for (int i = 0; i < n; i++)
        if (name_is_sub(names[i], name))
            return M_MATCH;
    return M_NOMATCH;
}

static int mech_exists(spf_ctx *c, const char *name)
{
    if (!spf_domain_ok(name, false))
        return M_NOMATCH;
    dns_answer ans;
    status st = lookup(c, name, DNS_T_A, &ans);
    if (st == ST_DEFER) {
        c->problem = arena_printf(c->a, "DNS failure looking up %s", name);
        return M_TEMP;
    }
    if (st != ST_OK || ans.nrr == 0)
        return void_hit(c) ? M_PERM : M_NOMATCH;
    return M_MATCH;
}

static spf_result qual_result(char q)
{
    switch (q) {
    case '-': return SPF_FAIL;
    case '~': return SPF_SOFTFAIL;
    case '?': return SPF_NEUTRAL;
    default: return SPF_PASS;
    }
}

/* ---- explanation ------------------------------------------------------- */

static const char *eval_exp(spf_ctx *c, const spf_record *r, const char *domain)
{
    bool err;
    const char *name = target_name(c, r->exp, r->exp_len, domain, &err);
    if (err || !name || !*name || !spf_domain_ok(name, false))
        return NULL;
    dns_answer ans;
    if (lookup(c, name, DNS_T_TXT, &ans) != ST_OK || ans.nrr != 1)
        return NULL;
    spf_macro_ctx m;
    macro_ctx(c, domain, true, &m);
    char *out, *e;
    if (spf_macro_expand(ans.rr[0].text, ans.rr[0].text_len, &m, c->a, &out, &e) != ST_OK)
        return NULL;
    return out;
}

/* ---- check_host -------------------------------------------------------- */

static level_res res(spf_result r) { return (level_res){ r, NULL }; }

static bool has_p_macro(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '%' && s[i + 1] == '{' && (s[i + 2] == 'p' || s[i + 2] == 'P'))
            return true;
    return false;
}

/* Fetch the domain's one SPF record.  SPF_PASS here means "found". */
static spf_result fetch_record(spf_ctx *c, const char *domain, const char **rec, size_t *len)
{
    dns_answer ans;
    status st = lookup(c, domain, DNS_T_TXT, &ans);
    if (st == ST_DEFER) {
        c->problem = arena_printf(c->a, "DNS failure looking up TXT %s", domain);
        return SPF_TEMPERROR;
    }
    if (st != ST_OK)
        return SPF_NONE;
    int found = 0;
    for (int i = 0; i < ans.nrr; i++) {
        if (!ans.rr[i].text || !spf_is_record(ans.rr[i].text, ans.rr[i].text_len))
            continue;
        if (++found == 1) {
            *rec = ans.rr[i].text;
            *len = ans.rr[i].text_len;
        }
    }
    if (found > 1) {
        c->problem = arena_printf(c->a, "more than one SPF record for %s", domain);
        return SPF_PERMERROR;
    }
    return found ? SPF_PASS : SPF_NONE;
}

static level_res check_host(spf_ctx *c, const char *domain, int depth, bool in_include,
                            const char *record_override)
{
    if (depth > SPF_MAX_RECURSION) {
        c->problem = "SPF recursion too deep";
        return res(SPF_PERMERROR);
    }
    const char *rec = record_override;
    size_t rlen = rec ? strlen(rec) : 0;
    if (!rec) {
        spf_result fr = fetch_record(c, domain, &rec, &rlen);
        if (fr != SPF_PASS)
            return res(fr);
    }
    if (depth == 0 && !c->top_record)
        c->top_record = arena_strndup(c->a, rec, rlen);
    if (memchr(rec, 0, rlen)) {
        c->problem = "NUL in SPF record";
        return res(SPF_PERMERROR);
    }
    spf_record r;
    char *err;
    if (spf_record_parse(rec, rlen, c->a, &r, &err) != ST_OK) {
        c->problem = arena_printf(c->a, "%s: %s", domain, err);
        return res(SPF_PERMERROR);
    }

    /* A record that includes itself can only loop: permerror whether or
     * not evaluation would reach that include (pyspf decides the same). */
    for (int i = 0; i < r.nterms; i++) {
        spf_term *t = &r.terms[i];
        if (t->mech != SPF_M_INCLUDE || !t->dspec || has_p_macro(t->dspec, t->dlen))
            continue;                       /* %{p} would cost lookups */
        spf_macro_ctx m;
        macro_ctx(c, domain, false, &m);
        char *target, *e;
        if (spf_macro_expand(t->dspec, t->dlen, &m, c->a, &target, &e) == ST_OK &&
            strcasecmp(target, domain) == 0) {
            c->problem = arena_printf(c->a, "%s includes itself", domain);
            return res(SPF_PERMERROR);
        }
    }

    for (int i = 0; i < r.nterms; i++) {
        spf_term *t = &r.terms[i];
        int m = M_NOMATCH;
        bool terr = false;
        const char *name = NULL;
        switch (t->mech) {
        case SPF_M_INCLUDE: case SPF_M_A: case SPF_M_MX: case SPF_M_PTR: case SPF_M_EXISTS:
            if (++c->dns_mech > SPF_MAX_DNS_MECH) {
                c->problem = "more than 10 DNS-querying terms (RFC 7208 4.6.4)";
                return res(SPF_PERMERROR);
            }
            name = target_name(c, t->dspec, t->dlen, domain, &terr);
            if (terr)
                return res(SPF_PERMERROR);
            break;
        default:
            break;
        }
        switch (t->mech) {
        case SPF_M_ALL:
            m = M_MATCH;
            break;
        case SPF_M_IP4:
            m = (!c->v6 && ip_match(c->ip + 12, t->net + 12, t->cidr4)) ? M_MATCH : M_NOMATCH;
            break;
        case SPF_M_IP6:
            /* an IPv4 client matches an ip6 network only inside the
             * IPv4-mapped block ::ffff:0:0/96 (RFC 4291 2.5.5.2) */
            if (c->v6 || (t->cidr6 >= 96 && ip_match(t->net, c->ip, 96)))
                m = ip_match(c->ip, t->net, t->cidr6) ? M_MATCH : M_NOMATCH;
            break;
        case SPF_M_A:
            m = mech_a(c, name, t->cidr4, t->cidr6);
            break;
        case SPF_M_MX:
            m = mech_mx(c, name, t->cidr4, t->cidr6);
            break;
        case SPF_M_PTR:
            m = mech_ptr(c, name);
            break;
        case SPF_M_EXISTS:
            m = mech_exists(c, name);
            break;
        case SPF_M_INCLUDE: {
            if (!spf_domain_ok(name, false)) {
                c->problem = arena_printf(c->a, "invalid include target \"%s\"", name);
                return res(SPF_PERMERROR);
            }
            level_res ir = check_host(c, name, depth + 1, true, NULL);
            switch (ir.r) {
            case SPF_PASS: m = M_MATCH; break;
            case SPF_FAIL: case SPF_SOFTFAIL: case SPF_NEUTRAL: m = M_NOMATCH; break;
            case SPF_TEMPERROR: m = M_TEMP; break;
            case SPF_NONE:
                c->problem = arena_printf(c->a, "included domain %s has no SPF record", name);
                m = M_PERM;
                break;
            default: m = M_PERM; break;
            }
            break;
        }
        }
        if (m == M_TEMP)
            return res(SPF_TEMPERROR);
        if (m == M_PERM)
            return res(SPF_PERMERROR);
        if (m == M_MATCH) {
            level_res lr = res(qual_result(t->qual));
            if (depth == 0)
                c->mechanism = t->text;
            if (lr.r == SPF_FAIL && !in_include && r.exp)
                lr.exp = eval_exp(c, &r, domain);
            return lr;
        }
    }

    if (r.redirect) {
        if (++c->dns_mech > SPF_MAX_DNS_MECH) {
            c->problem = "more than 10 DNS-querying terms (RFC 7208 4.6.4)";
            return res(SPF_PERMERROR);
        }
        bool terr;
        const char *name = target_name(c, r.redirect, r.redirect_len, domain, &terr);
        if (terr)
            return res(SPF_PERMERROR);
        if (!spf_domain_ok(name, true)) {
            c->problem = arena_printf(c->a, "invalid redirect target \"%s\"", name);
            return res(SPF_PERMERROR);
        }
        level_res rr = check_host(c, name, depth + 1, in_include, NULL);
        if (rr.r == SPF_NONE) {
            c->problem = arena_printf(c->a, "redirect target %s has no SPF record", name);
            rr.r = SPF_PERMERROR;
        }
        if (depth == 0 && !c->mechanism)
            c->mechanism = arena_printf(c->a, "redirect=%.*s", (int)r.redirect_len, r.redirect);
        return rr;
    }
    if (depth == 0)
        c->mechanism = "default";
    return res(SPF_NEUTRAL);
}

/* ---- entry ------------------------------------------------------------- */

void spf_check(const spf_query *q, const dns_iface *dns, arena *a, spf_outcome *out)
{
    memset(out, 0, sizeof *out);
    spf_ctx c = { .q = q, .dns = dns, .a = a };
    clock_gettime(CLOCK_MONOTONIC, &c.start);
    out->identity = q->helo_identity ? "helo" : "mailfrom";

    const char *helo = q->helo && *q->helo ? q->helo : NULL;
    const char *sender = q->helo_identity ? NULL : q->sender;
    if (!sender || !*sender)
        sender = arena_printf(a, "postmaster@%s", helo ? helo : "unknown");
    const char *at = strrchr(sender, '@');
    if (at) {
        c.local = at == sender ? "postmaster" : arena_strndup(a, sender, (size_t)(at - sender));
        c.sender_dom = at + 1;
    } else {
        c.local = "postmaster";
        c.sender_dom = sender;
    }
    c.sender = at && at != sender ? sender : arena_printf(a, "%s@%s", c.local, c.sender_dom);
    out->sender = c.sender;

    /* the domain checked, U-labels as A-labels (RFC 8616); a trailing dot
     * is ignored */
    const char *al = idna_to_alabel(c.sender_dom, a);
    if (al)
        c.sender_dom = al;
    char *domain = arena_strdup(a, c.sender_dom);
    size_t dl = strlen(domain);
    if (dl && domain[dl - 1] == '.')
        domain[--dl] = 0;
    out->domain = domain;

    if (!spf_ip_parse(q->ip, c.ip, &c.v6)) {
        out->result = SPF_PERMERROR;
        out->problem = "client IP address is not valid";
        return;
    }
    if (!spf_domain_ok(domain, true) || domain[0] == '[') {
        out->result = SPF_NONE;
        out->problem = "identity is not a valid domain name";
        return;
    }

    level_res lr = check_host(&c, domain, 0, false, NULL);
    if (lr.r == SPF_NONE && q->guess && !c.problem) {
        c.dns_mech = c.voids = 0;
        c.mechanism = NULL;
        level_res g = check_host(&c, domain, 0, false, q->guess);
        if (g.r != SPF_PERMERROR && g.r != SPF_NONE) {
            lr = g;
            out->guessed = true;
        }
    }
    out->result = lr.r;
    out->mechanism = (lr.r == SPF_NONE || lr.r == SPF_TEMPERROR || lr.r == SPF_PERMERROR)
                         ? NULL : c.mechanism;
    if (lr.r == SPF_TEMPERROR || lr.r == SPF_PERMERROR)
        out->problem = c.problem ? c.problem : "error";
    if (lr.r == SPF_FAIL) {
        if (lr.exp) {
            out->explanation = lr.exp;
            out->exp_from_record = true;
        } else {
            spf_macro_ctx m;
            macro_ctx(&c, domain, true, &m);
            char *e, *txt;
            const char *tmpl = q->default_exp ? q->default_exp : SPF_DEFAULT_SMTP_TEMPLATE;
            if (spf_macro_expand(tmpl, strlen(tmpl), &m, a, &txt, &e) == ST_OK)
                out->explanation = txt;
            else
                out->explanation = tmpl;
        }
    }
    out->dns_mech = c.dns_mech;
    out->record = c.top_record;
    out->void_lookups = c.voids;
}
