/* rewrite.c: the address rewriting engine (see rewrite.h).
 *
 * rewrite_one() walks the rules in order.  A rule whose place bits do not
 * include the place is skipped; otherwise its (expanded) pattern is
 * matched, which sets the numeric variables; the replacement is expanded
 * and must yield one address.  Later rules see the rewritten address;
 * "q" stops after a rule that matched, "R" re-applies a rule that
 * rewrote, "*" as replacement stops without rewriting, "w" replaces a
 * header's whole mailbox.  Errors (a failed expansion, an unparseable or
 * unqualified result) are panic-logged and end the rewriting, keeping
 * what the earlier rules did. */
#include "message/rewrite.h"
#include "message/addr.h"

#include "config/config.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "lookup/lookup.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <string.h>
#include <strings.h>

#define NAMED_LIST_DEPTH 20     /* nesting of named lists in a pattern */
#define CHAIN_MAX 50            /* "@@" lookups chained with ">name" */

/* ---- rules ---------------------------------------------------------------- */

status rewrite_flags(const char *pattern, const char *letters, bool global, unsigned *bits,
                     arena *a, char **err)
{
    unsigned b = 0;
    for (const char *f = letters ? letters : ""; *f; f++) {
        switch (*f) {
        case ' ': case '\t': break;
        case 'q': b |= RW_QUIT; break;
        case 'w': b |= RW_WHOLE; break;
        case 'h': b |= RW_HEADERS; break;
        case 's': b |= RW_SENDER; break;
        case 'f': b |= RW_FROM; break;
        case 't': b |= RW_TO; break;
        case 'c': b |= RW_CC; break;
        case 'b': b |= RW_BCC; break;
        case 'r': b |= RW_REPLYTO; break;
        case 'E': b |= RW_ENVELOPE; break;
        case 'F': b |= RW_ENVFROM; break;
        case 'T': b |= RW_ENVTO; break;
        case 'Q': b |= RW_QUALIFY; break;
        case 'R': b |= RW_REPEAT; break;
        case 'S':
            b |= RW_SMTP;
            if (pattern[0] != '^' && strncmp(pattern, "\\N^", 3) != 0) {
                *err = arena_strdup(a, "rewrite rule has the S flag but is not a regular expression");
                return ST_ERROR;
            }
            break;
        default:
            *err = arena_printf(a, "unknown rewrite flag character '%c' "
                                   "(could be missing quotes round replacement item)", *f);
            return ST_ERROR;
        }
    }
    if (!global && (b & (RW_ENVELOPE | RW_SMTP))) {
        *err = arena_strdup(a, "E, F, T and S flags are not permitted in headers_rewrite");
        return ST_ERROR;
    }
    if (!(b & (RW_ALL | RW_SMTP)))
        b |= global ? RW_ALL : RW_HEADERS;
    *bits = b;
    return ST_OK;
}

void rewrite_set_config(const config *c, arena *a, rewrite_set *rs)
{
    int n = 0;
    for (const rewrite_rule *r = c ? c->rewrites : NULL; r; r = r->next)
        n++;
    rs->n = 0;
    rs->exist = 0;
    rs->rule = n ? arena_calloc(a, sizeof *rs->rule * (size_t)n) : NULL;
    for (const rewrite_rule *r = c ? c->rewrites : NULL; r; r = r->next) {
        char *err;
        unsigned bits;
        if (rewrite_flags(r->pattern, r->flags, true, &bits, a, &err) != ST_OK)
            continue;          /* refused when the configuration was read */
        rs->rule[rs->n++] = (rw_rule){ r->pattern, r->replacement, bits };
        rs->exist |= bits;
    }
}

/* A word of a headers_rewrite item: up to white space, or a quoted string
 * with backslash escapes. */
static char *rule_word(const char **pp, arena *a)
{
    const char *p = *pp;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return NULL;
    gstr g;
    gstr_init(&g, a, 32);
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                gstr_catc(&g, *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p);
            } else {
                gstr_catc(&g, *p);
            }
        }
        if (*p == '"')
            p++;
    } else {
        while (*p && !isspace((unsigned char)*p))
            gstr_catc(&g, *p++);
    }
    *pp = p;
    return g.s;
}

status rewrite_set_parse(const char *list, arena *a, rewrite_set *rs, char **err)
{
    int n = list_count(list, 0, a), sep = 0;
    rs->n = 0;
    rs->exist = 0;
    rs->rule = n ? arena_calloc(a, sizeof *rs->rule * (size_t)n) : NULL;
    char *item;
    while ((item = list_next(&list, &sep, a)) && rs->n < n) {
        const char *p = item;
        rw_rule r = { 0 };
        if (!(r.pattern = rule_word(&p, a)))
            continue;
        if (!(r.replacement = rule_word(&p, a))) {
            *err = arena_printf(a, "missing rewrite replacement string in \"%s\"", item);
            return ST_ERROR;
        }
        if (rewrite_flags(r.pattern, p, false, &r.bits, a, err) != ST_OK)
            return ST_ERROR;
        rs->rule[rs->n++] = r;
        rs->exist |= r.bits;
    }
    return ST_OK;
}

/* ---- matching ------------------------------------------------------------- */

/* The numeric variables a match sets ($0, $1, ...); n is one past the
 * highest set; unset ones are NULL (empty). */
typedef struct nums {
    const char *v[EXPAND_MAX_NUMVARS];
    int n;
} nums;

typedef struct mctx {
    arena *a;
    nums *nv;
    int depth;
    bool nothing_set;   /* matched through a negation: no variables at all */
    char *err;
} mctx;

static void num_set(nums *nv, int i, const char *s)
{
    if (i < 0 || i >= EXPAND_MAX_NUMVARS)
        return;
    nv->v[i] = s;
    if (i + 1 > nv->n)
        nv->n = i + 1;
}

/* Strings derived from outside data stay in a tainted arena. */
static arena *out_arena(arena *a, const char *src)
{
    if (!src || !is_tainted(src) || arena_is_tainted(a))
        return a;
    return a == ps.conn ? ps.conn_t : ps.msg_t;
}

/* Regular expression, case-sensitive; captures become $first, $first+1..
 * (first < 0: none).  -1 on a bad expression. */
static int regex_match(mctx *m, const char *subject, const char *re, int first)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        m->err = arena_printf(m->a, "regular expression error in \"%s\": %s at offset %d", re, msg, (int)eo);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    if (rc >= 0 && first >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t count = pcre2_get_ovector_count(md);
        arena *oa = out_arena(m->a, subject);
        for (uint32_t i = 1; i < count; i++)
            num_set(m->nv, first + (int)i - 1, ov[2 * i] == PCRE2_UNSET ? "" :
                    arena_strndup(oa, subject + ov[2 * i], ov[2 * i + 1] - ov[2 * i]));
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0 ? 1 : 0;
}

/* "type;data" at item: the lookup spec, and the data; 0 if not a lookup. */
static int as_lookup(mctx *m, const char *item, lookup_spec *sp, const char **data)
{
    const char *semi = strchr(item, ';');
    if (!semi || semi == item)
        return 0;
    char *type = arena_strndup(m->a, item, (size_t)(semi - item));
    if (lookup_parse_type(type, sp, m->a, &m->err) != ST_OK)
        return -1;
    const char *d = semi + 1;
    while (isspace((unsigned char)*d))
        d++;
    *data = d;
    return 1;
}

static status lookup_one(mctx *m, const lookup_spec *sp, const char *data, const char *key, char **res)
{
    char *err = NULL;
    status st = lookup_search(sp, data, key, m->a, res, &err);
    if (st == ST_NOTFOUND)
        return ST_FAIL;
    if (st != ST_OK)
        m->err = err;
    return st == ST_OK ? ST_OK : ST_DEFER;
}

/* A domain lookup as in an address pattern: partial matches give the
 * wild and fixed parts of the domain as two variables from first, a "*"
 * default the whole domain and an empty string. */
static status domain_lookup(mctx *m, const lookup_spec *sp0, const char *data, const char *dom, int first)
{
    lookup_spec sp = *sp0;
    sp.star = sp.starat = false;
    char *res = NULL, *err = NULL;
    status st;
    if (sp.partial >= 0) {
        const char *wild = NULL, *fixed = NULL;
        st = lookup_search_partial(&sp, data, dom, m->a, &res, &err, &wild, &fixed);
        if (st == ST_OK) {
            num_set(m->nv, first, wild ? wild : "");
            num_set(m->nv, first + 1, wild ? fixed : dom);
            return ST_OK;
        }
    } else {
        st = lookup_search(&sp, data, dom, m->a, &res, &err);
        if (st == ST_OK)
            return ST_OK;
    }
    if (st != ST_NOTFOUND) {
        m->err = err;
        return ST_DEFER;
    }
    if (!sp0->star && !sp0->starat)
        return ST_FAIL;
    lookup_spec plain = { .drv = sp0->drv, .partial = -1, .opts = sp0->opts };
    if ((st = lookup_one(m, &plain, data, "*", &res)) == ST_OK) {
        num_set(m->nv, first, dom);
        num_set(m->nv, first + 1, "");
    }
    return st;
}

static status domain_item(mctx *m, const char *dom, const char *pat, int first);

/* "+name": walk a named list with item_fn for each item. */
static status walk_named(mctx *m, list_kind kind, const char *name, const char *subject, int first,
                         status (*item_fn)(mctx *, const char *, const char *, int))
{
    const named_list *nl = config_named_list(kind, name);
    if (!nl) {
        m->err = arena_printf(m->a, "unknown named list \"+%s\"", name);
        return ST_DEFER;
    }
    if (m->depth >= NAMED_LIST_DEPTH) {
        m->err = arena_printf(m->a, "named lists nested too deeply at \"+%s\"", name);
        return ST_DEFER;
    }
    const char *list = nl->value ? nl->value : "";
    if (strchr(list, '$') || strchr(list, '\\')) {
        char *x, *e;
        if (expand_string(list, m->a, &x, &e) != ST_OK) {
            m->err = arena_printf(m->a, "failed to expand named list \"%s\": %s", name, e ? e : "");
            return ST_DEFER;
        }
        list = x;
    }
    m->depth++;
    int sep = 0;
    bool last_neg = false;
    char *it;
    status st = ST_NOTFOUND;
    while (st == ST_NOTFOUND && (it = list_next(&list, &sep, m->a))) {
        bool neg = false;
        while (*it == '!') {
            neg = !neg;
            it++;
            while (isspace((unsigned char)*it))
                it++;
        }
        last_neg = neg;
        status r = item_fn(m, subject, it, first);
        if (r == ST_OK)
            st = neg ? ST_FAIL : ST_OK;
        else if (r != ST_FAIL)
            st = r;
    }
    if (st == ST_NOTFOUND) {
        st = last_neg ? ST_OK : ST_FAIL;     /* the end of the list after a negation matches */
        if (st == ST_OK)
            m->nothing_set = true;
    }
    m->depth--;
    return st;
}

/* One domain pattern (the part after the '@' of an address pattern):
 * case-sensitive against the lower-cased domain, as Exim compares. */
static status domain_item(mctx *m, const char *dom, const char *pat, int first)
{
    bool neg = false;
    while (*pat == '!') {
        neg = !neg;
        pat++;
        while (isspace((unsigned char)*pat))
            pat++;
    }
    status st;
    lookup_spec sp;
    const char *data;
    int l;
    if (pat[0] == '+' && pat[1]) {
        st = walk_named(m, NL_DOMAIN, pat + 1, dom, first, domain_item);
    } else if (pat[0] == '^') {
        int r = regex_match(m, dom, pat, first);
        st = r < 0 ? ST_DEFER : r ? ST_OK : ST_FAIL;
    } else if (pat[0] == '*') {
        size_t dl = strlen(dom), pl = strlen(pat + 1);
        st = dl >= pl && strcmp(dom + dl - pl, pat + 1) == 0 ? ST_OK : ST_FAIL;
        if (st == ST_OK)
            num_set(m->nv, first, arena_strndup(out_arena(m->a, dom), dom, dl - pl));
    } else if (strcmp(pat, "@") == 0) {
        const char *h = cfg_str(MO_primary_hostname);
        st = h && strcmp(dom, h) == 0 ? ST_OK : ST_FAIL;
    } else if (strcmp(pat, "@[]") == 0 || strncasecmp(pat, "@mx_", 4) == 0) {
        char *e = NULL;
        st = match_domain_one(dom, pat, m->a, NULL, &e);
        if (st != ST_OK && st != ST_FAIL) {
            m->err = e;
            st = ST_DEFER;
        }
    } else if ((l = as_lookup(m, pat, &sp, &data)) != 0) {
        st = l < 0 ? ST_DEFER : domain_lookup(m, &sp, data, dom, first);
    } else {
        st = strcmp(dom, pat) == 0 ? ST_OK : ST_FAIL;
    }
    if (neg && st != ST_DEFER) {
        st = st == ST_OK ? ST_FAIL : ST_OK;
        m->nothing_set = st == ST_OK;
    }
    return st;
}

/* "@@type;data": the domain's entry is a list of local parts (the last
 * item may be ">key" to go on with another entry). */
static status split_lookup(mctx *m, const char *lc, const char *at, const char *pat)
{
    lookup_spec sp;
    const char *data;
    int l = as_lookup(m, pat, &sp, &data);
    if (l <= 0)
        return l < 0 ? ST_DEFER : ST_FAIL;
    const char *lp = arena_strndup(m->a, lc, (size_t)(at - lc));
    const char *key = at + 1;
    for (int watchdog = CHAIN_MAX; key && watchdog > 0; watchdog--) {
        char *list = NULL;
        status st = lookup_one(m, &sp, data, key, &list);
        if (st != ST_OK)
            return st;
        key = NULL;
        char *last = strrchr(list, ':');
        last = last ? last + 1 : list;
        while (isspace((unsigned char)*last))
            last++;
        if (*last == '>') {
            *last++ = '\0';
            while (isspace((unsigned char)*last))
                last++;
            key = last;
        }
        const char *lst = list;
        int sep = 0;
        char *it;
        while ((it = list_next(&lst, &sep, m->a))) {
            bool ok = true;
            if (*it == '!') {
                ok = false;
                it++;
                while (isspace((unsigned char)*it))
                    it++;
            }
            char *e = NULL;
            status r = match_local_part(lp, it, false, m->a, NULL, &e);
            if (r == ST_OK)
                return ok ? ST_OK : ST_FAIL;
            if (r != ST_FAIL) {
                m->err = e;
                return ST_DEFER;
            }
        }
    }
    return ST_FAIL;
}

/* One address pattern against subject (lc: the subject with its domain
 * lower-cased).  Local parts compare case-sensitively. */
static status address_item(mctx *m, const char *subject, const char *pat, int unused)
{
    (void)unused;
    char *lc = arena_strdup(out_arena(m->a, subject), subject);
    const char *sat = strrchr(lc, '@');
    for (char *p = sat ? (char *)sat : lc + strlen(lc); *p; p++)
        *p = (char)tolower((unsigned char)*p);
    bool neg = false;
    while (*pat == '!') {
        neg = !neg;
        pat++;
        while (isspace((unsigned char)*pat))
            pat++;
    }
    status st;
    if (pat[0] == '+' && pat[1]) {
        st = walk_named(m, NL_ADDRESS, pat + 1, subject, 0, address_item);
        goto done;
    }
    if (pat[0] == '^') {
        int r = regex_match(m, lc, pat, 1);
        if (r > 0)
            num_set(m->nv, 0, subject);
        st = r < 0 ? ST_DEFER : r ? ST_OK : ST_FAIL;
        goto done;
    }
    /* a whole-address lookup: type[*][@];data (no numeric variables) */
    const char *q = pat;
    while (isalnum((unsigned char)*q) || *q == '-')
        q++;
    if (*q == '*')
        q++;
    if (*q == '@')
        q++;
    if (*q == ';') {
        lookup_spec sp;
        const char *data;
        if (as_lookup(m, pat, &sp, &data) < 0) {
            st = ST_DEFER;
            goto done;
        }
        sp.partial = -1;
        char *res;
        st = lookup_one(m, &sp, data, lc, &res);
        goto done;
    }
    if (!sat) {
        st = ST_FAIL;          /* rewriting always has a domain */
        goto done;
    }
    if (pat[0] == '@' && pat[1] == '@') {
        st = split_lookup(m, lc, sat, pat + 2);
        goto done;
    }
    const char *pd = strrchr(pat, '@');
    int next = 1;
    if (pd) {
        /* "lp@@", "lp@@[]", "lp@@mx_*": the domain pattern keeps its '@' */
        if (pd > pat && pd[-1] == '@' &&
            (!pd[1] || !strcmp(pd + 1, "[]") || !strcmp(pd + 1, "mx_any") ||
             !strcmp(pd + 1, "mx_primary") || !strcmp(pd + 1, "mx_secondary")))
            pd--;
        size_t pl = (size_t)(pd - pat), sl = (size_t)(sat - lc);
        if (pat[0] == '*') {
            size_t cl = pl - 1;
            if (sl < cl || strncmp(lc + sl - cl, pat + 1, cl) != 0) {
                st = ST_FAIL;
                goto done;
            }
            num_set(m->nv, 1, arena_strndup(out_arena(m->a, subject), subject, sl - cl));
            next = 2;
        } else if (sl != pl || strncmp(lc, pat, sl) != 0) {
            st = ST_FAIL;
            goto done;
        }
    }
    st = domain_item(m, sat + 1, pd ? pd + 1 : pat, next);
    if (st == ST_OK)
        num_set(m->nv, 0, subject);
done:
    if (neg && st != ST_DEFER) {
        st = st == ST_OK ? ST_FAIL : ST_OK;
        m->nothing_set = st == ST_OK;
    }
    if (st == ST_OK && m->nothing_set)
        memset(m->nv, 0, sizeof *m->nv);        /* a negated match sets nothing */
    return st;
}

/* ---- one address ---------------------------------------------------------- */

static const char *place_name(unsigned where)
{
    switch (where) {
    case RW_SENDER: return "sender:";
    case RW_FROM: return "from:";
    case RW_TO: return "to:";
    case RW_CC: return "cc:";
    case RW_BCC: return "bcc:";
    case RW_REPLYTO: return "reply-to:";
    case RW_ENVFROM: return "env-from";
    case RW_ENVTO: return "env-to";
    case RW_SMTP: return "smtp recipient";
    case RW_SMTP | RW_SMTP_SENDER: return "smtp sender";
    default: return "?";
    }
}

addr_opts rewrite_addr_opts(void)
{
    addr_opts o = { 0 };
    if (cfg) {
        o.domain_literals = cfg_bool(MO_allow_domain_literals);
        o.strip_trailing_dot = cfg_bool(MO_strip_trailing_dot);
        o.strip_excess_angle_brackets = cfg_bool(MO_strip_excess_angle_brackets);
    }
    return o;
}

static const char *qualify_domain(bool recipient)
{
    const char *d = cfg ? cfg_str(recipient ? MO_qualify_recipient : MO_qualify_domain) : NULL;
    return d ? d : "";
}

static const char *id_prefix(void)
{
    return ps.message_id && *ps.message_id ? arena_printf(ps.scratch, "%s ", ps.message_id) : "";
}

/* Match the rule's pattern against subject; on a match the numeric
 * variables are in nv. */
static status rule_matches(const rw_rule *r, const char *subject, unsigned where, nums *nv, arena *a)
{
    mctx m = { .a = a, .nv = nv };
    memset(nv, 0, sizeof *nv);
    char *pat = NULL, *err = NULL;
    status st = expand_string(r->pattern, a, &pat, &err);
    if (st != ST_OK) {
        if (st != ST_FAIL_FORCED)
            log_write(LOG_MAIN | LOG_PANIC, "%sfailed to expand \"%s\" while checking for %s rewriting: %s",
                      id_prefix(), r->pattern, where & RW_SMTP ? "SMTP" : "address", err ? err : "");
        return ST_FAIL;
    }
    if (where & RW_SMTP) {
        /* anywhere in the raw argument; $0 is all of it */
        int rc = regex_match(&m, subject, pat, 1);
        if (rc > 0)
            num_set(nv, 0, subject);
        st = rc < 0 ? ST_DEFER : rc ? ST_OK : ST_FAIL;
    } else {
        st = address_item(&m, subject, pat, 0);
    }
    if (st == ST_DEFER)
        log_write(LOG_MAIN | LOG_PANIC, "%srewrite pattern \"%s\": %s", id_prefix(), pat,
                  m.err ? m.err : "lookup deferred");
    return st == ST_OK ? ST_OK : ST_FAIL;
}

const char *rewrite_one(const rewrite_set *rs, const char *addr, unsigned where, bool *whole,
                        spool_msg *note, const char *note_name, arena *a)
{
    const char *yield = addr, *subject = addr;
    int ystart = 0, yend = 0;
    bool done = false;
    if (whole)
        *whole = false;
    if (!rs || !rs->n)
        return addr;

    /* the caller's numeric variables, $local_part and $domain survive */
    const char *save_num[EXPAND_MAX_NUMVARS];
    memcpy(save_num, ps.exp_num, sizeof save_num);
    int save_nmax = ps.exp_nmax;
    const char *save_lp = ps.local_part, *save_dom = ps.domain;
    addr_opts po = rewrite_addr_opts();
    bool allow_null = where == RW_ENVFROM || where == (RW_SMTP | RW_SMTP_SENDER);

    for (int i = 0; i < rs->n && !done; i++) {
        const rw_rule *r = &rs->rule[i];
        if (!(r->bits & where))
            continue;
        int count = 0;
    repeat:;
        nums nv;
        if (rule_matches(r, subject, where, &nv, a) != ST_OK)
            continue;
        if (!(where & RW_SMTP) && strcmp(r->replacement, "*") == 0)
            break;
        for (int k = 0; k < EXPAND_MAX_NUMVARS; k++)
            ps.exp_num[k] = nv.v[k];
        ps.exp_nmax = nv.n;
        if (where & RW_SMTP) {
            ps.local_part = ps.domain = NULL;
        } else {
            const char *at = strrchr(subject, '@');
            arena *sa = out_arena(a, subject);
            ps.local_part = at ? arena_strndup(sa, subject, (size_t)(at - subject)) : subject;
            ps.domain = at ? at + 1 : "";
        }
        char *repl = NULL, *err = NULL;
        status st = expand_string(r->replacement, a, &repl, &err);
        ps.local_part = save_lp;
        ps.domain = save_dom;
        if (st == ST_FAIL_FORCED) {
            if (r->bits & RW_QUIT)
                break;
            continue;
        }
        if (st != ST_OK) {
            log_write(LOG_MAIN | LOG_PANIC, "%sExpansion of %s failed while rewriting: %s", id_prefix(),
                      r->replacement, err ? err : "");
            break;
        }

        /* the result must be one address (only a sender may become <>) */
        addr_span sp;
        const char *perr = NULL;
        arena *ra = out_arena(a, repl);
        char *parsed = addr_extract(ra, repl, &po, NULL, allow_null, &sp, &perr);
        if (!parsed) {
            log_write(LOG_MAIN | LOG_PANIC, "%sRewrite of %s yielded unparseable address: %s in address %s",
                      id_prefix(), subject, perr, repl);
            break;
        }
        const char *newtext = repl;
        if (!sp.domain && (*parsed || !allow_null)) {
            if (!(r->bits & RW_QUALIFY)) {
                log_write(LOG_MAIN | LOG_PANIC, "%sRewrite of %s yielded unqualified address \"%s\"",
                          id_prefix(), subject, repl);
                break;
            }
            parsed = arena_printf(ra, "%s@%s", parsed, qualify_domain(true));
            newtext = arena_printf(ra, "%.*s%s%s", sp.start, repl, parsed, repl + sp.end);
            sp.end = sp.start + (int)strlen(parsed);
        }

        if (cfg && logsel_on(&cfg->logsel, LS_ADDRESS_REWRITE))
            log_write(LOG_MAIN, "%s\"%s\" from %s rewritten as \"%s\" by rule %d", id_prefix(), yield,
                      place_name(where), newtext, i + 1);
        if (note) {
            char *h = arena_printf(out_arena(a, subject), "X-rewrote-%s: %s\n", note_name, subject);
            spool_add_header(note, ps.msg, '*', h, strlen(h));
        }

        if (whole && (where & RW_HEADERS)) {
            if (r->bits & RW_WHOLE) {
                int start = sp.start, end = sp.end;
                if (start > 0 && newtext[start - 1] == '<') {
                    /* repair the phrase before and the text after the <> */
                    const char *p1 = newtext + start - 1, *p2 = newtext + end + 1;
                    if (p2 > newtext + strlen(newtext))
                        p2 = newtext + strlen(newtext);
                    while (p1 > newtext && p1[-1] == ' ')
                        p1--;
                    while (*p2 == ' ')
                        p2++;
                    const char *cs = cfg ? cfg_str(MO_headers_charset) : NULL;
                    char *pf1 = addr_fix_phrase(ra, newtext, (size_t)(p1 - newtext), cs);
                    char *pf2 = addr_fix_phrase(ra, p2, strlen(p2), cs);
                    start = (int)strlen(pf1) + start - (int)(p1 - newtext);
                    end = start + (int)strlen(parsed);
                    newtext = arena_printf(ra, "%s%.*s%s", pf1, (int)(p2 - p1), p1, pf2);
                }
                yield = newtext;
                ystart = start;
                yend = end;
                subject = parsed;
                *whole = true;
            } else if (!*whole) {
                subject = yield = parsed;
            } else {
                /* an earlier "w" rule set the mailbox: keep its phrase */
                subject = parsed;
                char *nt = arena_printf(ra, "%.*s%s%s", ystart, yield, subject, yield + yend);
                yend = ystart + (int)strlen(subject);
                yield = nt;
            }
        } else {
            subject = yield = parsed;
        }

        if (r->bits & RW_QUIT)
            done = true;
        if (r->bits & RW_REPEAT) {
            if (count++ < REWRITE_MAX_REPEAT)
                goto repeat;
            log_write(LOG_MAIN | LOG_PANIC, "%srewrite rule repeat ignored after %d times", id_prefix(),
                      REWRITE_MAX_REPEAT);
        }
    }

    memcpy(ps.exp_num, save_num, sizeof save_num);
    ps.exp_nmax = save_nmax;
    return yield;
}

const char *rewrite_envelope(const rewrite_set *rs, const char *addr, bool recipient,
                             spool_msg *note, arena *a)
{
    unsigned where = recipient ? RW_ENVTO : RW_ENVFROM;
    if (!addr_find_at(addr))
        addr = arena_printf(out_arena(a, addr), "%s@%s", addr, qualify_domain(recipient));
    if (!rs || !(rs->exist & where))
        return addr;
    return rewrite_one(rs, addr, where, NULL, note, recipient ? "original-recipient" : "sender", a);
}

/* ---- headers -------------------------------------------------------------- */

unsigned rewrite_header_place(char type)
{
    switch (type) {
    case 'S': return RW_SENDER;
    case 'F': return RW_FROM;
    case 'T': return RW_TO;
    case 'C': return RW_CC;
    case 'B': return RW_BCC;
    case 'R': return RW_REPLYTO;
    default: return 0;
    }
}

char *rewrite_header_text(const rewrite_set *rs, const char *text, unsigned where,
                          bool unqualified_sender, bool unqualified_recipient,
                          const char *msgid, arena *a)
{
    const char *colon = strchr(text, ':');
    if (!colon || !where)
        return NULL;
    arena *ta = out_arena(a, text);
    addr_opts po = rewrite_addr_opts();
    addr_group grp = { .allow = true };
    bool recipient_kind = !(where & (RW_SENDER | RW_FROM | RW_REPLYTO));
    const char *cur = text;          /* the text, as rewritten so far */
    bool changed_any = false;
    size_t lastnl = 0;
    size_t s = (size_t)(colon + 1 - text);
    while (isspace((unsigned char)cur[s]))
        s++;
    while (cur[s]) {
        size_t sprev = s;
        size_t ss = (size_t)(addr_item_end(cur + s, false) - cur);
        char *item = arena_strndup(ta, cur + s, ss - s);
        addr_span sp;
        const char *err = NULL;
        char *rcpt = addr_extract(ta, item, &po, &grp, false, &sp, &err);
        s = ss + (cur[ss] ? 1 : 0);
        while (isspace((unsigned char)cur[s]))
            s++;
        if (!rcpt) {
            /* as Exim 4.96 logs it (4.99 says "qualify/rewrite:", rules or not) */
            if (rs && rs->n && strcmp(err, "empty address") != 0)
                log_write(LOG_MAIN, "%s%srewrite: %s", msgid ? msgid : "", msgid ? " " : "", err);
            continue;
        }
        const char *nw = rcpt;
        bool changed = false;
        if (!sp.domain) {
            if (recipient_kind ? !unqualified_recipient : !unqualified_sender)
                continue;       /* may not be qualified: left alone */
            nw = arena_printf(ta, "%s@%s", rcpt, qualify_domain(recipient_kind));
            changed = true;
        }
        bool whole = false;
        if (rs && (rs->exist & where)) {
            const char *r = rewrite_one(rs, nw, where, &whole, NULL, NULL, a);
            if (r != nw) {
                changed = true;
                nw = r;
                if (whole) {
                    sp.start = 0;
                    sp.end = (int)(ss - sprev);
                    if (sp.end > 0 && cur[sprev + (size_t)sp.end - 1] == '\n')
                        sp.end--;
                }
            }
        }
        if (!changed)
            continue;

        /* the new text: before the working part, the new address, the rest
         * of this item up to the next one, maybe a fold, then the others */
        size_t newlen = strlen(nw), oldlen = (size_t)(sp.end - sp.start);
        gstr g;
        gstr_init(&g, out_arena(ta, nw), strlen(cur) + newlen + 4);
        gstr_catn(&g, cur, sprev + (size_t)sp.start);
        gstr_cat(&g, nw);
        gstr_catn(&g, cur + sprev + (size_t)sp.end, s - (sprev + (size_t)sp.end));
        size_t rest_at = s - oldlen + newlen;    /* where the scan goes on (before any fold) */
        if (newlen > oldlen && g.len - lastnl > 40) {
            size_t p = s;
            while (p > 0 && (cur[p - 1] == ' ' || cur[p - 1] == '\t'))
                p--;
            if (p == 0 || cur[p - 1] != '\n') {
                lastnl = g.len;
                gstr_cat(&g, "\n\t");
            }
        }
        gstr_cat(&g, cur + s);
        cur = g.s;
        s = rest_at;
        changed_any = true;
    }
    return changed_any ? (char *)cur : NULL;
}

void rewrite_headers(const rewrite_set *rs, spool_msg *m, bool unqualified_sender,
                     bool unqualified_recipient, arena *a)
{
    for (spool_header *h = m->headers; h; h = h->next) {
        unsigned where = rewrite_header_place(h->type);
        if (!where)
            continue;
        char *nt = rewrite_header_text(rs, h->text, where, unqualified_sender, unqualified_recipient,
                                       m->id[0] ? m->id : NULL, a);
        if (!nt)
            continue;
        spool_header *nh = arena_calloc(a, sizeof *nh);
        nh->type = h->type;
        nh->text = nt;
        nh->len = strlen(nt);
        nh->next = h->next;
        h->type = '*';
        h->next = nh;
        if (m->headers_tail == h)
            m->headers_tail = nh;
        h = nh;
    }
}

/* ---- SMTP time and -brw --------------------------------------------------- */

const char *rewrite_smtp_arg(const char *arg, arena *a)
{
    if (!cfg || !cfg->rewrites)
        return arg;
    rewrite_set rs;
    rewrite_set_config(cfg, ps.scratch, &rs);
    if (!(rs.exist & RW_SMTP))
        return arg;
    size_t pfx = strncasecmp(arg, "FROM:", 5) == 0 ? 5 : strncasecmp(arg, "TO:", 3) == 0 ? 3 : 0;
    if (!pfx)
        return arg;
    const char *p = arg + pfx;
    while (*p == ' ')
        p++;
    const char *path = p;
    if (*p == '<') {
        bool inq = false;
        for (p++; *p && (inq || *p != '>'); p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                inq = !inq;
        }
        if (*p == '>')
            p++;
    } else {
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    arena *ta = out_arena(a, arg);
    char *subject = arena_strndup(ta, path, (size_t)(p - path));
    const char *nw = rewrite_one(&rs, subject, RW_SMTP, NULL, NULL, NULL, ta);
    if (nw == subject)
        return arg;
    return arena_printf(ta, "%.*s<%s>%s", (int)pfx, arg, nw, p);
}

void rewrite_test(const rewrite_set *rs, const char *s, FILE *out)
{
    static const char *const names[8] = {
        "  sender", "    from", "      to", "      cc", "     bcc", "reply-to", "env-from", "  env-to",
    };
    arena *a = ps.scratch;
    bool done_smtp = false;
    if (!rs->exist) {
        fprintf(out, "No rewrite rules are defined\n");
        return;
    }
    if (rs->exist & RW_SMTP) {
        const char *nw = rewrite_one(rs, s, RW_SMTP | RW_SMTP_SENDER, NULL, NULL, NULL, a);
        if (nw != s) {
            fprintf(out, "    SMTP: %s\n", *nw ? nw : "<>");
            done_smtp = true;
        }
    }
    if (!(rs->exist & ~(unsigned)RW_SMTP))
        return;
    if (!addr_find_at(s))
        s = arena_printf(a, "%s@%s", s, qualify_domain(true));
    addr_opts po = rewrite_addr_opts();
    addr_span sp;
    const char *err = NULL;
    char *rcpt = addr_extract(a, s, &po, NULL, false, &sp, &err);
    if (!rcpt) {
        if (!done_smtp)
            fprintf(out, "Syntax error in %s\n%c%s\n", s, toupper((unsigned char)err[0]), err + 1);
        return;
    }
    for (int i = 0; i < 8; i++) {
        unsigned where = 1u << i;
        bool whole = false;
        const char *nw = rewrite_one(rs, rcpt, where, &whole, NULL, NULL, a);
        fprintf(out, "%s: ", names[i]);
        if (!*nw)
            fprintf(out, "<>\n");
        else if (whole || !(where & RW_HEADERS))
            fprintf(out, "%s\n", nw);
        else
            fprintf(out, "%.*s%s%s\n", sp.start, s, nw, s + sp.end);
    }
}
