/* spf_record.c: the SPF record parser (RFC 7208 section 12 grammar).  A
 * record is parsed completely before it is evaluated, so that a syntax
 * error anywhere gives permerror (section 4.6). */
#include "msgauth/policy/spf_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

bool spf_is_record(const char *s, size_t n)
{
    return n >= 6 && strncasecmp(s, "v=spf1", 6) == 0 && (n == 6 || s[6] == ' ');
}

static bool is_alnum(char c) { return isalnum((unsigned char)c) != 0; }

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    bool alpha = false, dash = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-')
            dash = true;
        else if (!is_alnum(s[i]))
            return false;
        else if (isalpha((unsigned char)s[i]))
            alpha = true;
    }
    if (!dash)
        return alpha;
    return is_alnum(s[0]) && is_alnum(s[n - 1]);
}

bool spf_domain_spec_ok(const char *s, size_t n)
{
    if (n == 0 || !spf_macro_syntax_ok(s, n, false))
        return false;
    /* Walk tokens to find where the literal tail after the last macro-expand starts. */
    size_t tail = 0;
    bool last_macro = false;
    for (size_t i = 0; i < n;) {
        if (s[i] == '%') {
            if (s[i + 1] == '{') {
                const char *c = memchr(s + i, '}', n - i);
                i = (size_t)(c - s) + 1;
            } else {
                i += 2;
            }
            tail = i;
            last_macro = true;
        } else {
            i++;
            last_macro = false;
        }
    }
    if (last_macro)
        return true;
    size_t e = n;
    if (e > tail && s[e - 1] == '.')
        e--;
    size_t b = e;
    while (b > tail && s[b - 1] != '.')
        b--;
    if (b == tail)      /* no '.' before the toplabel in the literal tail */
        return false;
    return toplabel_ok(s + b, e - b);
}

bool spf_domain_ok(const char *name, bool need_dot)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    size_t lab = 0;
    int labels = 1;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '.') {
            if (lab == 0)
                return false;
            lab = 0;
            labels++;
        } else if (++lab > 63) {
            return false;
        }
    }
    if (lab == 0)
        return false;
    return !need_dot || labels > 1;
}

/* "/" ( "0" / %x31-39 0*2DIGIT ) with value <= max; s points after '/'. */
static bool cidr_ok(const char *s, size_t n, int max, int *out)
{
    if (n == 0 || n > 3)
        return false;
    if (s[0] == '0' && n > 1)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Split "[:domain-spec][/c4][//c6]" (a, mx) */
static status parse_a_mx(const char *rest, size_t n, spf_term *t, arena *a, char **err)
{
    size_t e = n;
    /* trailing //cidr6 */
    size_t d = e;
    while (d > 0 && isdigit((unsigned char)rest[d - 1]))
        d--;
    if (d >= 2 && d < e && rest[d - 1] == '/' && rest[d - 2] == '/') {
        if (!cidr_ok(rest + d, e - d, 128, &t->cidr6)) {
            *err = "invalid IPv6 CIDR length";
            return ST_FAIL;
        }
        e = d - 2;
        d = e;
        while (d > 0 && isdigit((unsigned char)rest[d - 1]))
            d--;
    }
    if (d >= 1 && d < e && rest[d - 1] == '/' && !(d >= 2 && rest[d - 2] == '/')) {
        if (!cidr_ok(rest + d, e - d, 32, &t->cidr4)) {
            *err = "invalid IPv4 CIDR length";
            return ST_FAIL;
        }
        e = d - 1;
    }
    if (e == 0)
        return ST_OK;
    if (rest[0] != ':') {
        *err = arena_printf(a, "invalid mechanism \"%s\"", t->text);
        return ST_FAIL;
    }
    t->dspec = rest + 1;
    t->dlen = e - 1;
    if (!spf_domain_spec_ok(t->dspec, t->dlen)) {
        *err = arena_printf(a, "invalid domain-spec in \"%s\"", t->text);
        return ST_FAIL;
    }
    return ST_OK;
}

static status parse_ip(const char *rest, size_t n, bool six, spf_term *t, arena *a, char **err)
{
    if (n < 2 || rest[0] != ':') {
        *err = arena_printf(a, "invalid mechanism \"%s\"", t->text);
        return ST_FAIL;
    }
    rest++, n--;
    const char *slash = memchr(rest, '/', n);
    size_t alen = slash ? (size_t)(slash - rest) : n;
    if (slash && !cidr_ok(slash + 1, n - alen - 1, six ? 128 : 32, six ? &t->cidr6 : &t->cidr4)) {
        *err = arena_printf(a, "invalid CIDR length in \"%s\"", t->text);
        return ST_FAIL;
    }
    char *addr = arena_strndup(a, rest, alen);
    if (six) {
        if (inet_pton(AF_INET6, addr, t->net) != 1) {
            *err = arena_printf(a, "invalid IPv6 address in \"%s\"", t->text);
            return ST_FAIL;
        }
    } else {
        memset(t->net, 0, 10);
        t->net[10] = t->net[11] = 0xff;
        if (inet_pton(AF_INET, addr, t->net + 12) != 1) {
            *err = arena_printf(a, "invalid IPv4 address in \"%s\"", t->text);
            return ST_FAIL;
        }
    }
    return ST_OK;
}

static const struct { const char *name; spf_mech m; } mechs[] = {
    { "all", SPF_M_ALL }, { "include", SPF_M_INCLUDE }, { "a", SPF_M_A },
    { "mx", SPF_M_MX }, { "ptr", SPF_M_PTR }, { "ip4", SPF_M_IP4 },
    { "ip6", SPF_M_IP6 }, { "exists", SPF_M_EXISTS },
};

static status parse_directive(const char *s, size_t n, spf_term *t, arena *a, char **err)
{
    t->text = arena_strndup(a, s, n);
    t->qual = '+';
    t->cidr4 = 32;
    t->cidr6 = 128;
    if (n && strchr("+-~?", s[0])) {
        t->qual = s[0];
        s++, n--;
    }
    size_t nl = 0;
    while (nl < n && s[nl] != ':' && s[nl] != '/')
        nl++;
    int found = -1;
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (strlen(mechs[i].name) == nl && strncasecmp(s, mechs[i].name, nl) == 0)
            found = (int)i;
    if (found < 0) {
        *err = arena_printf(a, "unknown mechanism \"%s\"", t->text);
        return ST_FAIL;
    }
    t->mech = mechs[found].m;
    const char *rest = s + nl;
    size_t rn = n - nl;
    switch (t->mech) {
    case SPF_M_ALL:
        if (rn) {
            *err = arena_printf(a, "invalid mechanism \"%s\"", t->text);
            return ST_FAIL;
        }
        return ST_OK;
    case SPF_M_INCLUDE:
    case SPF_M_EXISTS:
    case SPF_M_PTR:
        if (rn == 0 && t->mech == SPF_M_PTR)
            return ST_OK;
        if (rn < 2 || rest[0] != ':' || !spf_domain_spec_ok(rest + 1, rn - 1)) {
            *err = arena_printf(a, "invalid domain-spec in \"%s\"", t->text);
            return ST_FAIL;
        }
        t->dspec = rest + 1;
        t->dlen = rn - 1;
        return ST_OK;
    case SPF_M_A:
    case SPF_M_MX:
        return parse_a_mx(rest, rn, t, a, err);
    case SPF_M_IP4:
        return parse_ip(rest, rn, false, t, a, err);
    case SPF_M_IP6:
        return parse_ip(rest, rn, true, t, a, err);
    }
    return ST_FAIL;
}

status spf_record_parse(const char *s, size_t n, arena *a, spf_record *r, char **err)
{
    memset(r, 0, sizeof *r);
    if (!spf_is_record(s, n)) {
        *err = "not an SPF record";
        return ST_FAIL;
    }
    /* count terms for the array */
    int cap = 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ')
            cap++;
    r->terms = arena_calloc(a, sizeof(spf_term) * (size_t)cap);
    size_t i = 6;
    while (i < n) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t b = i;
        while (i < n && s[i] != ' ')
            i++;
        const char *t = s + b;
        size_t tl = i - b;
        /* modifier: name "=" ...; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
        size_t k = 0;
        if (isalpha((unsigned char)t[0])) {
            k = 1;
            while (k < tl && (isalnum((unsigned char)t[k]) || t[k] == '-' || t[k] == '_' || t[k] == '.'))
                k++;
        }
        if (k > 0 && k < tl && t[k] == '=') {
            const char *v = t + k + 1;
            size_t vl = tl - k - 1;
            if ((k == 8 && strncasecmp(t, "redirect", 8) == 0) ||
                (k == 3 && strncasecmp(t, "exp", 3) == 0)) {
                bool redir = k == 8;
                if ((redir && r->redirect) || (!redir && r->exp)) {
                    *err = arena_printf(a, "duplicate %s modifier", redir ? "redirect" : "exp");
                    return ST_FAIL;
                }
                if (!spf_domain_spec_ok(v, vl)) {
                    *err = arena_printf(a, "invalid domain-spec in \"%.*s\"", (int)tl, t);
                    return ST_FAIL;
                }
                if (redir) {
                    r->redirect = v;
                    r->redirect_len = vl;
                } else {
                    r->exp = v;
                    r->exp_len = vl;
                }
            } else if (!spf_macro_syntax_ok(v, vl, true)) {
                *err = arena_printf(a, "invalid macro-string in modifier \"%.*s\"", (int)tl, t);
                return ST_FAIL;
            }
            continue;
        }
        if (parse_directive(t, tl, &r->terms[r->nterms], a, err) != ST_OK)
            return ST_FAIL;
        r->nterms++;
    }
    return ST_OK;
}

status spf_record_check(const char *record, arena *a, char **err)
{
    spf_record r;
    return spf_record_parse(record, strlen(record), a, &r, err);
}
