/* conditions.c: expansion conditions (the first part of ${if ...}). */
#include "expand_int.h"
#include "expand.h"
#include "match.h"
#include "core/list.h"
#include "core/log.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <crypt.h>
#include <errno.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void skip_ws(const char **sp)
{
    while (isspace((unsigned char)**sp))
        (*sp)++;
}

bool x_number(const char *s, long long *out)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (e == s || errno)
        return false;
    long long mul = 1;
    switch (tolower((unsigned char)*e)) {
    case 'k': mul = 1024; e++; break;
    case 'm': mul = 1024 * 1024; e++; break;
    case 'g': mul = 1024LL * 1024 * 1024; e++; break;
    default: break;
    }
    if (__builtin_mul_overflow(v, mul, &v))
        return false;               /* too large (Exim: overflow) */
    while (isspace((unsigned char)*e))
        e++;
    if (*e)
        return false;
    *out = v;
    return true;
}

static status cond_int(xs *x, const char *s, long long *v)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p) {
        *v = 0;
        return ST_OK;
    }
    if (!isdigit((unsigned char)*p) && !((*p == '-' || *p == '+') && isdigit((unsigned char)p[1])))
        return xfail(x, "integer expected but %s found", xq(x, s));
    if (!x_number(s, v)) {
        errno = 0;
        char *e;
        (void)strtoll(p, &e, 10);
        if (errno == ERANGE)
            return xfail(x, "absolute value of integer %s is too large (overflow)", xq(x, s));
        return xfail(x, "invalid integer %s", xq(x, s));
    }
    return ST_OK;
}

void x_set_numbers_clear(void)
{
    ps.exp_nmax = 0;
}

status x_regex_match(xs *x, const char *subject, bool subj_tainted, const char *re,
                     bool caseless, bool set_numbers, bool *matched)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        return xfail(x, "regular expression error in %s: %s at offset %d", xq(x, re), msg, (int)eo);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    *matched = rc >= 0;
    if (rc >= 0 && set_numbers) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int n = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
        if (n > EXPAND_MAX_NUMVARS)
            n = EXPAND_MAX_NUMVARS;
        arena *na = x_arena(x, subj_tainted || is_tainted(subject));
        for (int i = 0; i < n; i++) {
            if (ov[2 * i] == PCRE2_UNSET)
                ps.exp_num[i] = "";
            else
                ps.exp_num[i] = arena_strndup(na, subject + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        }
        ps.exp_nmax = n;
    } else if (rc < -1) {
        pcre2_match_data_free(md);
        pcre2_code_free(code);
        return xfail(x, "regular expression matching error %d for \"%s\"", rc, re);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return ST_OK;
}

/* ---- crypteq ---------------------------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Compare a digest with its base64 or hex rendering. */
static bool digest_eq(const unsigned char *d, size_t n, const char *enc)
{
    size_t el = strlen(enc);
    if (el == 2 * n) {
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        for (size_t i = 0; i < n; i++)
            sprintf(hex + 2 * i, "%02x", d[i]);
        return strcasecmp(hex, enc) == 0;
    }
    unsigned char out[EVP_MAX_MD_SIZE + 3];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = enc; *p && *p != '='; p++) {
        int v = b64val((unsigned char)*p);
        if (v < 0)
            return false;
        acc = ((acc << 6) | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= sizeof out)
                return false;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o == n && memcmp(out, d, n) == 0;
}

static status cond_crypteq(xs *x, const char *plain, const char *enc, bool *res)
{
    const char *md = NULL;
    if (strncasecmp(enc, "{md5}", 5) == 0)
        md = "MD5", enc += 5;
    else if (strncasecmp(enc, "{sha1}", 6) == 0)
        md = "SHA1", enc += 6;
    else if (strncasecmp(enc, "{sha256}", 8) == 0)
        md = "SHA256", enc += 8;
    if (md) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_Digest(plain, strlen(plain), d, &n, EVP_get_digestbyname(md), NULL);
        *res = digest_eq(d, n, enc);
        return ST_OK;
    }
    bool c16 = false;
    if (strncasecmp(enc, "{crypt}", 7) == 0)
        enc += 7;
    else if (strncasecmp(enc, "{crypt16}", 9) == 0) {
        enc += 9;
        c16 = true;
    } else if (enc[0] == '{')
        return xfail(x, "unknown encryption mechanism in %s", xq(x, enc));
    if (strlen(enc) < 2) {
        *res = false;
        return ST_OK;
    }
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    /* crypt_rn: libxcrypt; not intercepted by ASan (whose crypt_r hook hides libcrypt) */
    const char *c = crypt_rn(plain, enc, &cd, (int)sizeof cd);
    if (c && c16 && c[0] != '*' && strlen(plain) > 8) {
        /* crypt16: the second 8 characters are crypted with a salt made of
         * the first two hash characters of the first block */
        char full[32], salt2[3];
        snprintf(full, 14, "%s", c);
        salt2[0] = full[2];
        salt2[1] = full[3];
        salt2[2] = 0;
        struct crypt_data cd2;
        memset(&cd2, 0, sizeof cd2);
        const char *c2 = crypt_rn(plain + 8, salt2, &cd2, (int)sizeof cd2);
        if (!c2 || c2[0] == '*') {
            c = NULL;
        } else {
            snprintf(full + 13, 12, "%s", c2 + 2);
            *res = strcmp(full, enc) == 0;
            return ST_OK;
        }
    }
    *res = c && c[0] != '*' && strcmp(c, enc) == 0;
    return ST_OK;
}

/* ---- the condition table ------------------------------------------------ */

enum ctype {
    C_EQ, C_EQI, C_LT, C_LTI, C_LE, C_LEI, C_GT, C_GTI, C_GE, C_GEI,
    C_NL, C_NLE, C_NE, C_NG, C_NGE,
    C_MATCH, C_MADDR, C_MDOM, C_MIP, C_MLP, C_INLIST, C_INLISTI, C_CRYPTEQ,
    C_ISIP, C_ISIP4, C_ISIP6, C_BOOL, C_BOOLLAX, C_EXISTS,
    C_AND, C_OR, C_FORALL, C_FORANY, C_FIRSTDEL, C_QUEUERUN, C_ACL, C_NOTCOMPILED,
};

status x_run_acl(xs *x, char **sub, int n, const char **msg, bool *ok);   /* items_ext.c */

static const struct { const char *name; enum ctype t; int nargs; } conds[] = {
    {"acl", C_ACL, -1},
    {"inbound_srs", C_NOTCOMPILED, 2}, {"ldapauth", C_NOTCOMPILED, 1},
    {"pam", C_NOTCOMPILED, 1}, {"radius", C_NOTCOMPILED, 1}, {"saslauthd", C_NOTCOMPILED, 1},
    {"<", C_NL, 2}, {"<=", C_NLE, 2}, {"=", C_NE, 2}, {"==", C_NE, 2}, {">", C_NG, 2}, {">=", C_NGE, 2},
    {"and", C_AND, -1}, {"bool", C_BOOL, 1}, {"bool_lax", C_BOOLLAX, 1}, {"crypteq", C_CRYPTEQ, 2},
    {"eq", C_EQ, 2}, {"eqi", C_EQI, 2}, {"exists", C_EXISTS, 1},
    {"first_delivery", C_FIRSTDEL, 0}, {"forall", C_FORALL, -1}, {"forany", C_FORANY, -1},
    {"ge", C_GE, 2}, {"gei", C_GEI, 2}, {"gt", C_GT, 2}, {"gti", C_GTI, 2},
    {"inlist", C_INLIST, 2}, {"inlisti", C_INLISTI, 2},
    {"isip", C_ISIP, 1}, {"isip4", C_ISIP4, 1}, {"isip6", C_ISIP6, 1},
    {"le", C_LE, 2}, {"lei", C_LEI, 2}, {"lt", C_LT, 2}, {"lti", C_LTI, 2},
    {"match", C_MATCH, 2}, {"match_address", C_MADDR, 2}, {"match_domain", C_MDOM, 2},
    {"match_ip", C_MIP, 2}, {"match_local_part", C_MLP, 2},
    {"forall_json", C_FORALL, -2}, {"forall_jsons", C_FORALL, -3},
    {"forany_json", C_FORANY, -2}, {"forany_jsons", C_FORANY, -3},
    {"or", C_OR, -1}, {"queue_running", C_QUEUERUN, 0},
};

static status cond_andor(xs *x, const char **sp, bool skip, bool is_and, bool *res, const char *name)
{
    const char *s = *sp;
    skip_ws(&s);
    if (*s != '{') {
        *sp = s;
        return xfail(x, "missing { after %s", xq(x, name));
    }
    s++;
    bool r = is_and;
    for (;;) {
        skip_ws(&s);
        if (*s == '}')
            break;
        if (*s != '{') {
            *sp = s;
            return xfail(x, "each subcondition inside an \"%s{...}\" condition must be in its own {}", name);
        }
        s++;
        bool sub = false;
        bool decided = is_and ? !r : r;
        status st = xp_cond(x, &s, skip || decided, &sub);
        if (st != ST_OK) {
            *sp = s;
            if (!x->err || !strstr(x->err, "inside \""))
                x->err = arena_printf(x->w, "%s inside \"%s{...}\" condition", x->err ? x->err : "error", name);
            return st;
        }
        skip_ws(&s);
        if (*s != '}') {
            *sp = s;
            return xfail(x, "missing } at end of condition inside %s group", xq(x, name));
        }
        s++;
        if (!skip && !decided)
            r = sub;
    }
    *sp = s + 1;
    *res = r;
    return ST_OK;
}

static status cond_forx(xs *x, const char **sp, bool skip, bool any, int json, bool *res, const char *name)
{
    const char *s = *sp;
    char *list;
    bool lt = false;
    skip_ws(&s);
    if (*s != '{') {
        *sp = s;
        return xfail(x, "missing { after %s", xq(x, name));
    }
    /* a "<x" separator is taken from the unexpanded text */
    const char *ls = s + 1;
    int lsep = json ? 0 : x_parse_sep(&ls);
    status st;
    if (lsep) {
        gstr lg;
        gstr_init(&lg, x->w, 64);
        if ((st = xp_sub(x, &ls, true, skip, &lg, &lt)) != ST_OK) {
            *sp = ls;
            return st;
        }
        if (*ls != '}') {
            *sp = ls;
            return xfail(x, "missing } at end of string");
        }
        s = ls + 1;
        list = lg.s;
    } else if ((st = xp_braced(x, &s, skip, &list, &lt)) != ST_OK) {
        *sp = s;
        return st;
    }
    skip_ws(&s);
    if (*s != '{') {
        *sp = s;
        return xfail(x, "missing { after %s", xq(x, name));
    }
    s++;
    const char *cstart = s;
    bool dummy;
    if ((st = xp_cond(x, &s, true, &dummy)) != ST_OK) {
        *sp = s;
        x->err = arena_printf(x->w, "%s inside %s condition", x->err ? x->err : "", xq(x, name));
        return st;
    }
    skip_ws(&s);
    if (*s != '}') {
        *sp = s;
        return xfail(x, "missing } at end of condition inside %s", xq(x, name));
    }
    *sp = s + 1;
    *res = false;
    if (skip)
        return ST_OK;
    const char *save = ps.exp_item;
    int sep = lsep;
    char *it;
    const char *l = list;
    if (json) {
        char *body = x_dewrap(x, arena_strdup(x->w, list), "[]");
        if (!body)
            return xfail(x, "%s", x->err ? x->err : "missing ']'");
        l = body;
    }
    while ((it = json ? x_json_next(x_arena(x, lt), &l) : list_next(&l, &sep, x_arena(x, lt)))) {
        if (json == 3) {
            it = x_dewrap(x, it, "\"\"");
            if (!it) {
                ps.exp_item = save;
                return xfail(x, "%s wrapping string result for extract jsons", x->err ? x->err : "");
            }
        }
        ps.exp_item = it;
        const char *c = cstart;
        bool r;
        if ((st = xp_cond(x, &c, false, &r)) != ST_OK) {
            ps.exp_item = save;
            x->err = arena_printf(x->w, "%s inside %s condition", x->err ? x->err : "", xq(x, name));
            return st;
        }
        *res = r;
        if (r == any)
            break;
    }
    ps.exp_item = save;
    return ST_OK;
}

static status cond_bool(xs *x, const char *v, bool lax, bool *res)
{
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    char *t = arena_strndup(x->w, p, n);
    if (lax) {
        *res = !(n == 0 || strcmp(t, "0") == 0 || strcasecmp(t, "no") == 0 || strcasecmp(t, "false") == 0);
        return ST_OK;
    }
    if (n == 0 || strcasecmp(t, "false") == 0 || strcasecmp(t, "no") == 0) {
        *res = false;
        return ST_OK;
    }
    if (strcasecmp(t, "true") == 0 || strcasecmp(t, "yes") == 0) {
        *res = true;
        return ST_OK;
    }
    long long v2;
    const char *q = t;
    if (*q == '-')
        q++;
    if (isdigit((unsigned char)*q) && x_number(t, &v2)) {
        *res = v2 != 0;
        return ST_OK;
    }
    return xfail(x, "unrecognised boolean value %s", xq(x, t));
}

/* Evaluate a condition of type t on its (expanded) arguments. */
static status cond_apply(xs *x, enum ctype t, char **arg, const bool *at, bool *res)
{
    status st = ST_OK;
    bool r = false;
    long long a, b;
    switch (t) {
    case C_EQ: r = strcmp(arg[0], arg[1]) == 0; break;
    case C_EQI: r = strcasecmp(arg[0], arg[1]) == 0; break;
    case C_LT: r = strcmp(arg[0], arg[1]) < 0; break;
    case C_LTI: r = strcasecmp(arg[0], arg[1]) < 0; break;
    case C_LE: r = strcmp(arg[0], arg[1]) <= 0; break;
    case C_LEI: r = strcasecmp(arg[0], arg[1]) <= 0; break;
    case C_GT: r = strcmp(arg[0], arg[1]) > 0; break;
    case C_GTI: r = strcasecmp(arg[0], arg[1]) > 0; break;
    case C_GE: r = strcmp(arg[0], arg[1]) >= 0; break;
    case C_GEI: r = strcasecmp(arg[0], arg[1]) >= 0; break;
    case C_NL: case C_NLE: case C_NE: case C_NG: case C_NGE:
        if ((st = cond_int(x, arg[0], &a)) != ST_OK || (st = cond_int(x, arg[1], &b)) != ST_OK)
            break;
        r = t == C_NL ? a < b : t == C_NLE ? a <= b : t == C_NE ? a == b : t == C_NG ? a > b : a >= b;
        break;
    case C_MATCH:
        st = x_regex_match(x, arg[0], at[0], arg[1], false, true, &r);
        break;
    case C_INLIST: case C_INLISTI: {
        int sep = 0;
        const char *l = arg[1];
        char *it;
        while ((it = list_next(&l, &sep, x_arena(x, at[1]))))
            if (t == C_INLIST ? strcmp(it, arg[0]) == 0 : strcasecmp(it, arg[0]) == 0) {
                r = true;
                ps.exp_value = it;
                break;
            }
        break;
    }
    case C_MADDR: case C_MDOM: case C_MIP: case C_MLP: {
        const char *val = NULL;
        char *err = NULL;
        status ms;
        if (t == C_MIP) {
            unsigned char ab[16];
            int fam;
            if (arg[0][0] && !ip_parse(arg[0], ab, &fam, NULL)) {
                st = xfail(x, "%s is not an IP address", xq(x, arg[0]));
                break;
            }
            ms = match_ip_only(arg[0], arg[1], x->w, &val, &err);
        } else if (t == C_MDOM) {
            ms = match_domain(arg[0], arg[1], x->w, &val, &err);
        } else if (t == C_MLP) {
            ms = match_local_part(arg[0], arg[1], true, x->w, &val, &err);
        } else {
            ms = match_address(arg[0], arg[1], true, x->w, &val, &err);
        }
        if (ms == ST_OK) {
            r = true;
            ps.exp_value = val;
        } else if (ms == ST_ERROR) {
            /* Exim logs the reason and reports an empty one */
            log_write(LOG_MAIN | LOG_PANIC, "%s", err ? err : "list match error");
            st = xfail(x, "unable to complete match against %s: ", xq(x, arg[1]));
        } else if (ms == ST_DEFER) {
            st = xfail(x, "%s", err ? err : "lookup deferred");
        }
        break;
    }
    case C_CRYPTEQ: st = cond_crypteq(x, arg[0], arg[1], &r); break;
    case C_ISIP: case C_ISIP4: case C_ISIP6: {
        unsigned char ab[16];
        int fam;
        r = ip_parse(arg[0], ab, &fam, NULL) && (t == C_ISIP || (t == C_ISIP4 ? fam == 4 : fam == 6));
        break;
    }
    case C_BOOL: case C_BOOLLAX: st = cond_bool(x, arg[0], t == C_BOOLLAX, &r); break;
    case C_EXISTS: {
        struct stat sb;
        if (ps.exp_forbid & EXPAND_FORBID_EXISTS) {
            st = xfail(x, "File existence tests are not permitted");
            break;
        }
        if (at[0]) {
            st = xfail(x, "Tainted filename '%s' for exists", arg[0]);
            break;
        }
        r = stat(arg[0], &sb) == 0;
        break;
    }
    case C_FIRSTDEL: case C_QUEUERUN: r = false; break;
    default: break;
    }
    *res = r;
    return st;
}

static status xp_cond_inner(xs *x, const char **sp, bool skip, bool *res)
{
    const char *s = *sp;
    status st = ST_OK;
    bool neg = false;
    skip_ws(&s);
    while (*s == '!') {
        neg = !neg;
        s++;
        skip_ws(&s);
    }
    /* as Exim: "=", "<" or ">" with an optional "=", else a name */
    const char *n0 = s;
    if (*s == '=' || *s == '<' || *s == '>') {
        s++;
        if (*s == '=')
            s++;
    } else {
        while (isalnum((unsigned char)*s) || *s == '_')
            s++;
    }
    size_t nl = (size_t)(s - n0);
    if (nl == 0) {
        *sp = s;
        return xfail(x, "condition name expected, but found \"%.16s\"", s);
    }
    char *name = arena_strndup(x->w, n0, nl);
    bool r = false;

    if (strcmp(name, "def") == 0 && *s == ':') {
        s++;
        const char *v0 = s;
        while (isalnum((unsigned char)*s) || *s == '_')
            s++;
        char *var = arena_strndup(x->w, v0, (size_t)(s - v0));
        if (!*var) {
            *sp = s;
            return xfail(x, "variable name omitted after \"def:\"");
        }
        static const char *const hp[] = {"h_", "header_", "rh_", "rheader_", "bh_", "bheader_", "lh_", "lheader_", NULL};
        bool hdr = false;
        for (int i = 0; hp[i]; i++)
            if (strncmp(var, hp[i], strlen(hp[i])) == 0)
                hdr = true;
        if (hdr) {
            while (*s && *s != ':' && !isspace((unsigned char)*s))
                s++;
            if (*s == ':')
                s++;
            else if (!*s)
                x->bad_header = true;
            r = false;   /* no message headers in this context */
        } else if (!skip) {
            bool known;
            const char *v = var_get(x, var, &known);
            if (!known) {
                *sp = s;
                x->err = NULL;
                return xfail(x, "unknown variable %s after \"def:\"", xq(x, var));
            }
            r = v && *v;
        }
        *sp = s;
        *res = neg ? !r : r;
        return ST_OK;
    }

    int ci = -1;
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        if (strcmp(conds[i].name, name) == 0) {
            ci = (int)i;
            break;
        }
    if (ci < 0) {
        *sp = s;
        return xfail(x, "unknown condition %s", xq(x, name));
    }
    enum ctype t = conds[ci].t;
    if (t == C_AND || t == C_OR) {
        st = cond_andor(x, &s, skip, t == C_AND, &r, name);
        goto done;
    }
    if (t == C_NOTCOMPILED) {
        *sp = s;
        return xfail(x, "support for %s not compiled", xq(x, name));
    }
    if (t == C_ACL) {
        /* acl {{name}{arg}...} */
        skip_ws(&s);
        if (*s != '{') {
            *sp = s;
            return xfail(x, "missing { after %s", xq(x, name));
        }
        s++;
        char *sub[10];
        int n;
        if ((st = xp_args(x, &s, skip, 1, 10, true, "acl", sub, NULL, &n)) != ST_OK) {
            *sp = s;
            return st;
        }
        if (!skip) {
            const char *msg = NULL;
            if ((st = x_run_acl(x, sub, n, &msg, &r)) != ST_OK) {
                *sp = s;
                return st;
            }
            ps.exp_value = msg;
        }
        goto done;
    }
    if (t == C_FORALL || t == C_FORANY) {
        st = cond_forx(x, &s, skip, t == C_FORANY, conds[ci].nargs == -2 ? 2 : conds[ci].nargs == -3 ? 3 : 0, &r, name);
        goto done;
    }
    char *arg[2] = {NULL, NULL};
    bool at[2] = {false, false};
    for (int i = 0; i < conds[ci].nargs; i++) {
        skip_ws(&s);
        if (*s != '{') {
            *sp = s;
            if (i == 0)
                return xfail(x, "missing { after %s", xq(x, name));
            return xfail(x, "missing 2nd string in {} after %s", xq(x, name));
        }
        bool nd = i == 1 && (t == C_MADDR || t == C_MDOM || t == C_MIP || t == C_MLP);
        bool save_nd = x->no_dollar;
        if (nd)
            x->no_dollar = true;
        st = xp_braced(x, &s, skip, &arg[i], &at[i]);
        x->no_dollar = save_nd;
        if (st != ST_OK) {
            *sp = s;
            return st;
        }
        /* numbers are checked as each argument is read (Exim's order of errors) */
        if (!skip && (t == C_NL || t == C_NLE || t == C_NE || t == C_NG || t == C_NGE)) {
            long long dummy;
            if ((st = cond_int(x, arg[i], &dummy)) != ST_OK) {
                *sp = s;
                return st;
            }
        }
    }
    if (skip)
        goto done;

    st = cond_apply(x, t, arg, at, &r);
done:
    *sp = s;
    *res = neg ? !r : r;
    return st;
}

/* Conditions nest without going through xp_sub (and{{or{{...}}}}), so the
 * nesting limit is counted here too. */
status xp_cond(xs *x, const char **sp, bool skip, bool *res)
{
    if (++x->depth > EXPAND_MAX_DEPTH) {
        x->depth--;
        return xfail(x, "expansion nesting too deep (limit %d)", EXPAND_MAX_DEPTH);
    }
    status st = xp_cond_inner(x, sp, skip, res);
    x->depth--;
    return st;
}
