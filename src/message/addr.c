/* addr.c: RFC 2822 mailbox parsing with positions, in Exim's dialect
 * (see addr.h).  A small recursive-descent reader: white space and
 * comments between tokens are skipped and remembered (the end of the
 * working part is where the last token ended, before any trailing
 * comment). */
#include "message/addr.h"
#include "core/gstr.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

typedef struct pctx {
    arena *a;
    const addr_opts *o;
    const char *last_gap;     /* where the most recent skip of white space/comments began */
    gstr out;
    const char *err;
} pctx;

static bool special(unsigned char c)
{
    return c < 32 || c == 127 || strchr(" ()<>@,;:\\\".[]", c) != NULL;   /* NUL is special too */
}

/* White space and (nested) comments; quoted pairs count inside comments. */
static const char *skip_gap(pctx *p, const char *s)
{
    p->last_gap = s;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s != '(')
            return s;
        int depth = 1;
        while (*++s) {
            if (*s == '(')
                depth++;
            else if (*s == ')') {
                if (--depth <= 0) {
                    s++;
                    break;
                }
            } else if (*s == '\\' && s[1])
                s++;
        }
    }
}

/* domain: dot-separated labels of letters, digits and hyphens, or a
 * literal in [].  relaxed_literal: any printable text in the brackets
 * (Exim allows that for the plain local@domain form). */
static const char *read_domain(pctx *p, const char *s, bool relaxed_literal)
{
    size_t base = p->out.len;
    s = skip_gap(p, s);
    if (*s == '[') {
        gstr_catc(&p->out, *s++);
        if (strncasecmp(s, "IPv6:", 5) == 0 || strncasecmp(s, "IPv4:", 5) == 0) {
            gstr_catn(&p->out, s, 5);
            s += 5;
        }
        if (relaxed_literal)
            while ((*s >= 33 && *s <= 90) || (*s >= 94 && *s <= 126))
                gstr_catc(&p->out, *s++);
        else
            while (*s == '.' || *s == ':' || isxdigit((unsigned char)*s))
                gstr_catc(&p->out, *s++);
        if (*s == ']') {
            gstr_catc(&p->out, *s++);
        } else {
            p->err = "malformed domain literal";
            gstr_truncate(&p->out, base);
        }
        if (!p->o->domain_literals && !relaxed_literal) {
            p->err = "domain literals not allowed";
            gstr_truncate(&p->out, base);
        }
        return skip_gap(p, s);
    }
    for (;;) {
        size_t label = p->out.len;
        if (*s != '-')
            while (isalnum((unsigned char)*s) || *s == '-')
                gstr_catc(&p->out, *s++);
        s = skip_gap(p, s);
        if (p->out.len == label) {
            if (p->o->strip_trailing_dot && p->out.len > base && *s != '.') {
                gstr_truncate(&p->out, p->out.len - 1);     /* the trailing dot */
            } else {
                p->err = "domain missing or malformed";
                gstr_truncate(&p->out, base);
            }
            return s;
        }
        if (*s != '.')
            return s;
        gstr_catc(&p->out, *s++);
        s = skip_gap(p, s);
    }
}

/* local part: words (atoms, with quoted pairs allowed, or quoted strings)
 * separated by dots; empty words between dots and a trailing dot are
 * tolerated, runs of dots kept. */
static const char *read_local_part(pctx *p, const char *s, bool allow_null)
{
    size_t base = p->out.len;
    p->err = NULL;
    for (;;) {
        size_t word = p->out.len;
        s = skip_gap(p, s);
        if (*s == '"') {
            gstr_catc(&p->out, '"');
            char c;
            while ((c = *++s) && c != '"') {
                gstr_catc(&p->out, c);
                if (c == '\\' && s[1])
                    gstr_catc(&p->out, *++s);
            }
            if (c != '"') {
                p->err = "unmatched doublequote in local part";
                return s;
            }
            s++;
            gstr_catc(&p->out, '"');
        } else {
            while (!special((unsigned char)*s) || *s == '\\') {
                char c = *s++;
                gstr_catc(&p->out, c);
                if (c == '\\' && *s)
                    gstr_catc(&p->out, *s++);
            }
        }
        s = skip_gap(p, s);
        if (p->out.len == word && *s != '.') {
            if (p->out.len == base && !allow_null)
                p->err = "missing or malformed local part";
            return s;
        }
        if (*s != '.')
            return s;
        do
            gstr_catc(&p->out, *s++);
        while (*s == '.');
    }
}

/* A source route "@a,@b:" (read and thrown away by the callers). */
static const char *read_route(pctx *p, const char *s)
{
    bool commas = false;
    p->err = NULL;
    while (*s == '@') {
        gstr_catc(&p->out, '@');
        size_t d = p->out.len;
        s = read_domain(p, s + 1, false);
        if (p->out.len == d)
            return s;
        if (*s != ',')
            break;
        gstr_catc(&p->out, *s++);
        commas = true;
        s = skip_gap(p, s);
    }
    if (*s == ':')
        gstr_catc(&p->out, *s++);
    else
        p->err = commas ? "colon expected after route list" : "no local part";
    return skip_gap(p, s);
}

/* local-part@domain inside angle brackets (term '>') or after a route. */
static const char *read_addr_spec(pctx *p, const char *s, char term, int *domain)
{
    size_t lp = p->out.len;
    s = read_local_part(p, s, false);
    if (p->err || *s == term)
        return s;
    if (*s != '@') {
        p->err = arena_printf(p->a, "\"@\" or \".\" expected after \"%s\"", p->out.s + lp);
        return s;
    }
    gstr_catc(&p->out, *s++);
    *domain = (int)p->out.len;
    return read_domain(p, s, false);
}

static void group_end(addr_group *g, const char *s)
{
    if (g && g->found && *s == ';') {
        g->found = false;
        g->allow = true;
    }
}

char *addr_extract(arena *a, const char *mailbox, const addr_opts *o, addr_group *g,
                   bool allow_null, addr_span *sp, const char **err)
{
    static const addr_opts none = { 0 };
    pctx P = { .a = a, .o = o ? o : &none }, *p = &P;
    gstr_init(&p->out, a, strlen(mailbox) + 1);
    const char *s = mailbox, *startp, *endp;
    int domain = 0;
    sp->start = sp->end = sp->domain = 0;

restart:
    s = skip_gap(p, s);
    startp = s;
    gstr_reset(&p->out);
    s = read_local_part(p, s, true);
    if (p->err)
        goto failed;
    if (*s != '@' && *s != '<') {
        if (!*s || *s == ';') {
            if (!p->out.len) {
                p->err = "empty address";
                goto failed;
            }
            endp = p->last_gap;          /* a bare local part */
            goto succeeded;
        }
        /* a phrase before "<", or before ":" starting a group */
        while (*s != '<' && !(g && g->allow && *s == ':')) {
            gstr_reset(&p->out);
            s = read_local_part(p, s, false);
            if (p->err) {
                p->err = arena_printf(a, "%s (expected word or \"<\")", p->err);
                goto failed;
            }
        }
        if (*s == ':') {
            g->found = true;
            g->allow = false;
            s++;
            goto restart;
        }
    }

    if (*s == '<') {
        int brackets = 1;
        bool routed = false;
        s++;
        if (p->o->strip_excess_angle_brackets)
            while (*s == '<') {
                if (brackets++ > 5) {
                    p->err = "angle-brackets nested too deep";
                    goto failed;
                }
                s++;
            }
        gstr_reset(&p->out);
        startp = s;
        s = skip_gap(p, s);
        if (*s == '@') {
            s = read_route(p, s);
            if (p->err)
                goto failed;
            gstr_reset(&p->out);
            routed = true;
        }
        if (allow_null && !routed && *s == '>') {
            gstr_reset(&p->out);
            p->err = NULL;
        } else {
            s = read_addr_spec(p, s, '>', &domain);
            if (p->err)
                goto failed;
            if (routed && !domain) {
                p->err = "domain missing in source-routed address";
                goto failed;
            }
        }
        endp = s;
        while (brackets-- > 0)
            if (*s++ != '>') {
                p->err = s[-1] == 0 ? "'>' missing at end of address"
                                    : arena_printf(a, "malformed address: %.32s may not follow %.*s",
                                                   s - 1, (int)(s - mailbox - 1), mailbox);
                if (!s[-1])
                    s--;          /* stay on the terminator */
                goto failed;
            }
        s = skip_gap(p, s);
    } else if (!p->out.len) {
        /* "@route:local@domain" without angle brackets */
        gstr_reset(&p->out);
        s = read_route(p, s);
        if (p->err)
            goto failed;
        gstr_reset(&p->out);
        s = read_addr_spec(p, s, 0, &domain);
        if (p->err)
            goto failed;
        endp = p->last_gap;
        if (!domain) {
            p->err = "domain missing in source-routed address";
            goto failed;
        }
    } else {
        gstr_catc(&p->out, *s++);
        domain = (int)p->out.len;
        s = read_domain(p, s, true);
        if (p->out.len == (size_t)domain) {
            if (!p->err)
                p->err = "domain missing or malformed";
            goto failed;
        }
        endp = p->last_gap;
    }

succeeded:
    if (*s) {
        if (g && g->found && *s == ';') {
            g->found = false;
            g->allow = true;
        } else {
            p->err = arena_printf(a, "malformed address: %.32s may not follow %.*s", s,
                                  (int)(s - mailbox), mailbox);
            goto failed;
        }
    }
    while (endp > mailbox && isspace((unsigned char)endp[-1]))
        endp--;
    sp->start = (int)(startp - mailbox);
    sp->end = (int)(endp - mailbox);
    if (sp->end < sp->start)
        sp->end = sp->start;
    sp->domain = domain;
    if (sp->end - sp->start > ADDR_MAX) {
        *err = arena_printf(a, "address is ridiculously long: %.64s...", p->out.s);
        return NULL;
    }
    *err = NULL;
    return p->out.s;

failed:
    group_end(g, s);
    *err = p->err ? p->err : "malformed address";
    return NULL;
}

const char *addr_item_end(const char *s, bool nl_ends)
{
    bool routed = *s == '@';
    int hold = routed ? 1 : 0;      /* >0: a comma does not end the item */
    while (*s && (*s != ',' || hold > 0) && (*s != '\n' || !nl_ends)) {
        if (*s == '\\' && s[1]) {
            s += 2;
        } else if (*s == '"') {
            while (*++s && (*s != '\n' || !nl_ends)) {
                if (*s == '\\' && s[1])
                    s++;
                else if (*s == '"') {
                    s++;
                    break;
                }
            }
        } else if (*s == '(') {
            int depth = 1;
            while (*++s && (*s != '\n' || !nl_ends)) {
                if (*s == '\\' && s[1])
                    s++;
                else if (*s == '(')
                    depth++;
                else if (*s == ')' && --depth <= 0) {
                    s++;
                    break;
                }
            }
        } else {
            if (*s == '<') {
                routed = s[1] == '@';
                hold = routed ? 2 : 1;
            } else if (*s == '>') {
                hold--;
            } else if (routed && *s == ':') {
                hold--;
            }
            s++;
        }
    }
    return s;
}

const char *addr_find_at(const char *s)
{
    const char *t = s + strlen(s);
    while (--t >= s) {
        if (*t == '@') {
            int bs = 0;
            for (const char *u = t - 1; u > s && *u == '\\'; u--)
                bs++;
            if (!(bs & 1))
                return t;
        } else if (*t == '"') {
            return NULL;
        }
    }
    return NULL;
}

/* ---- display names -------------------------------------------------------- */

static char *encode_2047(arena *a, const char *s, size_t len, const char *charset)
{
    gstr g;
    gstr_init(&g, a, len * 3 + 32);
    gstr_printf(&g, "=?%s?Q?", charset ? charset : "UTF-8");
    size_t head = g.len, word = g.len;
    bool odd = false;             /* inside a two-byte sequence: do not split */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (g.len - word > 67 && !odd) {
            gstr_cat(&g, "?= ");
            word = g.len;
            gstr_catn(&g, g.s, head);
        }
        if (c < 33 || c > 126 || strchr("?=()<>@,;:\\\".[]_", c)) {
            if (c == ' ') {
                gstr_catc(&g, '_');
                odd = false;
            } else {
                gstr_printf(&g, "=%02X", c);
                odd = !odd;
            }
        } else {
            gstr_catc(&g, (char)c);
            odd = false;
        }
    }
    gstr_cat(&g, "?=");
    return g.s;
}

/* A phrase needs quoting when a special character appears outside its
 * quoted strings and comments.  When it already has quoted strings, only
 * the word holding the special is quoted; otherwise the whole phrase. */
char *addr_fix_phrase(arena *a, const char *phrase, size_t len, const char *charset)
{
    while (len && isspace((unsigned char)*phrase))
        phrase++, len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)phrase[i];
        if ((c < 32 && c != '\t') || c > 126)
            return encode_2047(a, phrase, len, charset);
    }
    bool has_quotes = false, needs = false;
    for (size_t i = 0; i < len; i++) {
        char c = phrase[i];
        if (c == '\\' && i + 1 < len) {
            i++;
            needs = true;
        } else if (c == '"') {
            has_quotes = true;
            while (++i < len && phrase[i] != '"')
                if (phrase[i] == '\\')
                    i++;
        } else if (c == '(') {
            int depth = 1;
            while (++i < len && depth) {
                if (phrase[i] == '\\')
                    i++;
                else if (phrase[i] == '(')
                    depth++;
                else if (phrase[i] == ')')
                    depth--;
                else if (phrase[i] == '"')
                    has_quotes = true;
            }
            i--;
        } else if (strchr(")<>@,;:.[]", c)) {
            needs = true;
        }
    }
    if (!needs)
        return arena_strndup(a, phrase, len);
    gstr g;
    gstr_init(&g, a, len + 8);
    if (!has_quotes) {
        /* the whole phrase in one quoted string, escapes kept */
        gstr_catc(&g, '"');
        for (size_t i = 0; i < len; i++) {
            if (phrase[i] == '"' )
                gstr_catc(&g, '\\');
            gstr_catc(&g, phrase[i]);
        }
        gstr_catc(&g, '"');
        return g.s;
    }
    /* quote each space-delimited word that holds a special, leaving the
     * quoted strings and comments as they are */
    size_t i = 0;
    while (i < len) {
        char c = phrase[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && phrase[j] != '"')
                j += phrase[j] == '\\' ? 2 : 1;
            j = j < len ? j + 1 : len;
            gstr_catn(&g, phrase + i, j - i);
            i = j;
        } else if (c == '(') {
            size_t j = i + 1;
            int depth = 1;
            while (j < len && depth) {
                if (phrase[j] == '\\')
                    j++;
                else if (phrase[j] == '(')
                    depth++;
                else if (phrase[j] == ')')
                    depth--;
                j++;
            }
            if (j > len)
                j = len;
            gstr_catn(&g, phrase + i, j - i);
            i = j;
        } else if (c == ' ' || c == '\t') {
            gstr_catc(&g, c);
            i++;
        } else {
            size_t j = i;
            bool sp = false;
            while (j < len && phrase[j] != ' ' && phrase[j] != '\t' && phrase[j] != '"' && phrase[j] != '(') {
                if (strchr(")<>@,;:\\.[]", phrase[j]))
                    sp = true;
                j++;
            }
            if (sp)
                gstr_catc(&g, '"');
            gstr_catn(&g, phrase + i, j - i);
            if (sp)
                gstr_catc(&g, '"');
            i = j;
        }
    }
    return g.s;
}
