/* filter.c: obeying an Exim filter.  The whole file is read into a
 * command tree first (filter_read.c), then the tree is obeyed: conditions
 * tested, arguments expanded, deliveries noted in a filter_result, and in
 * test mode (-bf) what would be done is printed as Exim prints it.
 *
 * Where Exim's behaviour comes from: "Exim's interfaces to mail
 * filtering" (filter.xfpt) for the language, and Exim 4.96's -bf output
 * for the wording, compared by tests/integration/test_filter.py. */
#include "route/filter_int.h"
#include "message/addr.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "spool/spool.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FILTER_MAX_LOG_ADDR 256   /* bytes of recipients in a reply's ">..." address (Exim's) */
#define FILTER_MAX_FMSG 1024      /* fail/defer/freeze text before it is cut (Exim's) */

int filter_kind(const char *text)
{
    static const char *const tags[] = { "# exim filter", "# sieve filter" };
    while (isspace((unsigned char)*text))
        text++;
    for (int k = 0; k < 2; k++) {
        const char *s = text, *t = tags[k];
        for (; *t; t++) {
            if (*t == ' ') {
                while (*s == ' ' || *s == '\t')
                    s++;
                continue;
            }
            if (tolower((unsigned char)*s) != *t)
                break;
            s++;
        }
        if (!*t)
            return k == 0 ? FILTER_EXIM : FILTER_SIEVE;
    }
    return FILTER_FORWARD;
}

static bool printable(int c)
{
    return (c >= 32 && c <= 126) || c == '\t' || (c > 127 && cfg_bool(MO_print_topbitchars));
}

const char *filter_printing(const char *s, arena *a)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && printable(*p))
        p++;
    if (!*p)
        return s;
    gstr g;
    gstr_init(&g, is_tainted(s) ? ps.msg_t : a, strlen(s) + 16);
    for (p = (const unsigned char *)s; *p; p++) {
        if (printable(*p)) {
            gstr_catc(&g, (char)*p);
            continue;
        }
        static const char from[] = "\n\r\b\v\f", to[] = "nrbvf";
        const char *k = strchr(from, *p);
        if (k)
            gstr_printf(&g, "\\%c", to[k - from]);
        else
            gstr_printf(&g, "\\%03o", *p);
    }
    return g.s;
}

/* How many arguments are expanded before a command is obeyed. */
static int cmd_nexp(int kind)
{
    switch (kind) {
    case K_ADD: case K_DELIVER: return 2;
    case K_DEFER: case K_FAIL: case K_FREEZE: case K_HEADERS: case K_LOGFILE: case K_LOGWRITE:
    case K_SAVE: case K_TESTPRINT: return 1;
    case K_MAIL: case K_VACATION: return MA_N;
    default: return 0;
    }
}

/* ---- obeying ---------------------------------------------------------------- */

typedef struct fx {
    const filter_opts *o;
    filter_result *r;
    arena *a;
    FILE *t;                   /* test output, or NULL */
    bool delivered, finished;
    const char *err;
    const char *log_name;
    int log_fd, log_mode;
    filter_action **tail;
} fx;

static void __attribute__((format(printf, 2, 3))) xerr(fx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    x->err = arena_vprintf(x->a, fmt, ap);
    va_end(ap);
}

static bool expand(fx *x, const char *s, const char *where, const char **out)
{
    char *res, *err = NULL;
    status st = expand_string(s, x->a, &res, &err);
    if (st == ST_OK) {
        *out = res;
        return true;
    }
    xerr(x, "failed to expand \"%s\" in %s: %s", s, where, err ? err : "");
    return false;
}

/* The address in one element of an address list (NULL when it is not
 * one); group syntax ("name: a@b, c@d;") is allowed when group is set. */
static const char *extract_one(const char *s, size_t n, bool group, arena *a, char **err)
{
    arena *ar = is_tainted(s) ? ps.msg_t : a;
    char *t = arena_strndup(ar, s, n);
    if (group) {
        /* a group's phrase and colon, before any '<' or '@' */
        const char *p = t;
        int depth = 0;
        bool q = false;
        for (; *p; p++) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"' && !depth)
                q = !q;
            else if (!q && *p == '(')
                depth++;
            else if (!q && *p == ')' && depth)
                depth--;
            else if (!q && !depth && (*p == '<' || *p == '@'))
                break;
            else if (!q && !depth && *p == ':') {
                t += p - t + 1;
                break;
            }
        }
        size_t k = strlen(t);
        while (k && isspace((unsigned char)t[k - 1]))
            k--;
        if (k && t[k - 1] == ';')
            t[k - 1] = '\0';
    }
    int dom;
    char *addr = expand_extract_address(ar, t, err, &dom);
    if (addr && !*addr) {
        *err = "empty address";
        return NULL;
    }
    return addr;
}

/* ---- personal ---------------------------------------------------------------- */

static bool pattern_match(const char *pattern, const char *subject, size_t len)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &ec, &eo, NULL);
    if (!re)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

/* Does some header called name match pattern (a regex when it starts
 * with '^', else an address compared caselessly, or for non-address
 * headers a caseless substring)? */
static bool header_has(const char *name, bool addresses, const char *pattern, arena *a)
{
    size_t nlen = strlen(name);
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        if (h->type == '*' || h->len < nlen || strncasecmp(h->text, name, nlen) != 0)
            continue;
        if (!addresses) {
            if (pattern[0] == '^' ? pattern_match(pattern, h->text, h->len) : strcasestr(h->text, pattern) != NULL)
                return true;
            continue;
        }
        const char *s = h->text + nlen;
        while (*s) {
            const char *e = addr_item_end(s, false);
            char *err;
            const char *addr = extract_one(s, (size_t)(e - s), false, a, &err);
            s = *e == ',' ? e + 1 : e;
            if (!addr)
                break;                     /* a syntax error: give up on this header */
            if (pattern[0] == '^' ? pattern_match(pattern, addr, strlen(addr)) : strcasecmp(addr, pattern) == 0)
                return true;
        }
    }
    return false;
}

/* cond: what a match means (true for To:, false for From: and Precedence:) */
static bool header_match(const char *name, bool addresses, bool cond, const alias *aliases,
                         const char *const *patterns, arena *a)
{
    for (const alias *al = aliases; al; al = al->next)
        if (header_has(name, addresses, al->text, a))
            return cond;
    for (; *patterns; patterns++)
        if (header_has(name, addresses, *patterns, a))
            return cond;
    return !cond;
}

static bool personal(fx *x, const alias *aliases)
{
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        if (h->type == '*')
            continue;
        if (strncasecmp(h->text, "List-", 5) == 0) {
            static const char *const lists[] = { "Id:", "Help:", "Subscribe:", "Unsubscribe:", "Post:", "Owner:",
                                                 "Archive:" };
            for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
                if (strncasecmp(h->text + 5, lists[i], strlen(lists[i])) == 0)
                    return false;
        } else if (strncasecmp(h->text, "Auto-submitted:", 15) == 0) {
            const char *s = h->text + 15;
            while (isspace((unsigned char)*s))
                s++;
            if (strncasecmp(s, "no", 2) != 0)
                return false;
            s += 2;
            while (isspace((unsigned char)*s))
                s++;
            if (*s)
                return false;
        }
    }
    const char *lp = ps.local_part ? ps.local_part : "", *dom = ps.domain ? ps.domain : "";
    const char *self = arena_printf(x->a, "%s@%s", lp, dom), *psself = NULL;
    if (ps.local_part_prefix || ps.local_part_suffix)
        psself = arena_printf(x->a, "%s%s%s@%s", ps.local_part_prefix ? ps.local_part_prefix : "", lp,
                              ps.local_part_suffix ? ps.local_part_suffix : "", dom);
    const char *to[] = { self, psself, NULL };
    const char *from[] = { "^server@", "^daemon@", "^root@", "^listserv@", "^majordomo@", "^.*?-request@",
                           "^owner-[^@]+@", self, psself, NULL };
    static const char *const prec[] = { "bulk", "list", "junk", NULL };
    return header_match("to:", true, true, aliases, to, x->a) &&
           header_match("from:", true, false, aliases, from, x->a) &&
           header_match("precedence:", false, false, NULL, prec, x->a) &&
           (!ps.sender_address || *ps.sender_address);
}

/* ---- conditions ------------------------------------------------------------- */

/* Exim's number: C syntax (0x.., 0..), then K and/or M; white space after. */
static bool get_number(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (end == s || !isdigit((unsigned char)end[-1]))
        return false;
    unsigned int u = (unsigned int)v;
    if (tolower((unsigned char)*end) == 'k') {
        u *= 1024;
        end++;
    }
    if (tolower((unsigned char)*end) == 'm') {
        u *= 1024 * 1024;
        end++;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return false;
    *out = (int)u;
    return true;
}

static bool regex_cond(fx *x, const char *subject, const char *pattern, bool caseless)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, caseless ? PCRE2_CASELESS : 0,
                                   &ec, &eo, NULL);
    if (!re) {
        char msg[128];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        xerr(x, "error while compiling regular expression \"%s\": %s at offset %ld", pattern, msg, (long)eo);
        return false;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    if (rc >= 0) {
        /* $0, $1, ... for the commands that follow */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int n = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
        if (n > EXPAND_MAX_NUMVARS)
            n = EXPAND_MAX_NUMVARS;
        arena *na = is_tainted(subject) ? ps.msg_t : x->a;
        for (int i = 0; i < n; i++)
            ps.exp_num[i] = ov[2 * i] == PCRE2_UNSET ? ""
                            : arena_strndup(na, subject + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        ps.exp_nmax = n;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

static bool test_cond(fx *x, const cond *c);

/* A condition other than and/or, before its negation. */
static bool simple_cond(fx *x, const cond *c)
{
    bool msg = ps.message_id && *ps.message_id;
    switch (c->type) {
    case C_PERSONAL:
        return !(x->o->flags & FO_SYSTEM) && personal(x, c->aliases);
    case C_DELIVERED:
        return x->delivered;
    case C_ERRMSG:
        return msg && (!ps.sender_address || !*ps.sender_address);
    case C_FIRST:
        return x->t || !msg || x->o->first_delivery;
    case C_THAWED:
        return msg && x->o->manually_thawed;
    case C_FORANY: {
        const char *list;
        if (!expand(x, c->left, "filter file", &list))
            return false;
        bool yield = false;
        while (*list) {
            const char *e = addr_item_end(list, false);
            char *err;
            const char *addr = extract_one(list, (size_t)(e - list), true, x->a, &err);
            if (addr) {
                ps.filter_thisaddress = addr;
                yield = test_cond(x, c->r);
            }
            if (yield || x->err || !*e)
                break;
            list = e + 1;
        }
        return yield;
    }
    default:
        break;
    }
    const char *l, *r;
    if (!expand(x, c->left, "filter file", &l) || !expand(x, c->right, "filter file", &r))
        return false;
    size_t ll = strlen(l), rl = strlen(r);
    switch (c->type) {
    case C_IS:
        return strcasecmp(l, r) == 0;
    case C_IS_CS:
        return strcmp(l, r) == 0;
    case C_CONTAINS:
        return strcasestr(l, r) != NULL;
    case C_CONTAINS_CS:
        return strstr(l, r) != NULL;
    case C_BEGINS:
        return strncasecmp(l, r, rl) == 0;
    case C_BEGINS_CS:
        return strncmp(l, r, rl) == 0;
    case C_ENDS:
        return rl <= ll && strcasecmp(l + ll - rl, r) == 0;
    case C_ENDS_CS:
        return rl <= ll && strcmp(l + ll - rl, r) == 0;
    case C_MATCHES: case C_MATCHES_CS:
        return regex_cond(x, l, r, c->type == C_MATCHES);
    case C_ABOVE: case C_BELOW: {
        int v[2];
        const char *s[2] = { l, r };
        for (int i = 0; i < 2; i++)
            if (!get_number(s[i], &v[i])) {
                xerr(x, "malformed numerical string \"%s\"", s[i]);
                return false;
            }
        return c->type == C_ABOVE ? v[0] > v[1] : v[0] < v[1];
    }
    default:
        return false;
    }
}

/* The value of a condition.  and/or chains lean right, so their right
 * operands are followed in a loop (a long chain costs no stack). */
static bool test_cond(fx *x, const cond *c)
{
    bool flip = false;
    while (c && (c->type == C_AND || c->type == C_OR)) {
        bool l = test_cond(x, c->l);
        if (x->err)
            return false;
        bool is_and = c->type == C_AND;
        if (is_and ? !l : l)
            return flip ^ (!is_and == c->testfor);
        flip ^= !c->testfor;
        c = c->r;
    }
    if (!c)
        return !flip;
    bool v = simple_cond(x, c);
    if (x->err)
        return false;
    return flip ^ (v == c->testfor);
}

/* ---- commands ---------------------------------------------------------------- */

static filter_action *add_action(fx *x, filter_action_kind kind, const char *target, bool noerror)
{
    filter_action *a = arena_calloc(x->a, sizeof *a);
    a->kind = kind;
    a->target = target;
    a->noerror = noerror;
    a->mode = -1;
    *x->tail = a;
    x->tail = &a->next;
    return a;
}

static const char *noerr(const fcmd *c)
{
    return c->noerror ? " (noerror)" : "";
}

static bool do_add(fx *x, const char *const *e)
{
    long n[2];
    for (int i = 0; i < 2; i++) {
        const char *s = e[i];
        if (i == 1) {
            if (s[0] != 'n' || (s[1] && s[2])) {
                xerr(x, "unknown variable \"%s\" in \"add\" command", e[1]);
                return false;
            }
            s++;
        } else {
            while (s[0] == '-' && s[1] == '-')
                s += 2;                    /* "-$n0" when $n0 is negative */
        }
        char *end;
        n[i] = (int)strtol(s, &end, 0);
        if (*end) {
            xerr(x, "malformed number \"%s\" in \"add\" command", s);
            return false;
        }
    }
    ps.filter_n[n[1]] = (int)((unsigned int)ps.filter_n[n[1]] + (unsigned int)n[0]);
    if (x->t)
        fprintf(x->t, "Add %d to n%d\n", (int)n[0], (int)n[1]);
    return true;
}

static bool do_deliver(fx *x, const fcmd *c, const char **e)
{
    for (int i = 0; i < 2; i++) {
        if (!e[i])
            continue;
        char *err = NULL;
        int dom;
        arena *ar = is_tainted(e[i]) ? ps.msg_t : x->a;
        char *addr = expand_extract_address(ar, e[i], &err, &dom);
        if (!addr) {
            xerr(x, "malformed address \"%s\" in filter file: %s", e[i], err ? err : "");
            return false;
        }
        if (dom < 0 && *addr) {
            const char *q = cfg_str(MO_qualify_recipient);
            addr = arena_printf(ar, "%s@%s", addr, q ? q : "");
        }
        e[i] = addr;
    }
    const char *errors_to = e[1];
    if (errors_to && !(x->o->flags & FO_SYSTEM)) {
        const char *own = arena_printf(x->a, "%s@%s", ps.local_part ? ps.local_part : "", ps.domain ? ps.domain : "");
        if (strcasecmp(own, errors_to) != 0) {
            x->err = "errors_to must point to the caller's address";
            return false;
        }
    }
    if (x->t) {
        fprintf(x->t, "%seliver message to: %s%s%s%s\n", c->seen ? "D" : "Unseen d", e[0], noerr(c),
                errors_to ? " errors_to " : "", errors_to ? errors_to : "");
        return true;
    }
    filter_action *a = add_action(x, FA_DELIVER, e[0], c->noerror);
    a->errors_to = errors_to;
    return true;
}

static bool do_save(fx *x, const fcmd *c, const char *s)
{
    if (x->t) {
        if (c->num < 0)
            fprintf(x->t, "%save message to: %s%s\n", c->seen ? "S" : "Unseen s", s, noerr(c));
        else
            fprintf(x->t, "%save message to: %s %04o%s\n", c->seen ? "S" : "Unseen s", s, (unsigned)c->num, noerr(c));
        return true;
    }
    if (s[0] != '/' && (x->o->flags & FO_PREPEND_HOME) && ps.home_dir && *ps.home_dir)
        s = arena_printf(is_tainted(s) ? ps.msg_t : x->a, "%s/%s", ps.home_dir, s);
    add_action(x, FA_SAVE, s, c->noerror)->mode = c->num;
    return true;
}

/* A pipe command for the pipe transport: split into arguments as the
 * transport splits them, each argument expanded now (with this filter's
 * $0.. and $thisaddress) and quoted back, so that expansion cannot add
 * arguments.  Arguments made from the message are refused, as Exim's
 * transport refuses them. */
static const char *pipe_command(fx *x, const char *raw)
{
    const char *p = raw[0] == '|' ? raw + 1 : raw;
    gstr out;
    gstr_init(&out, x->a, strlen(raw) + 16);
    gstr_catc(&out, '|');
    for (int n = 1;; n++) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        gstr arg;
        gstr_init(&arg, x->a, 32);
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && p[1])
                        p++;
                    gstr_catc(&arg, *p++);
                }
                if (*p)
                    p++;
            } else {
                gstr_catc(&arg, *p++);
            }
        }
        const char *e;
        if (!expand(x, arg.s, "pipe command", &e))
            return NULL;
        if (is_tainted(e)) {
            xerr(x, "Tainted arg %d for pipe command: '%s'", n, e);
            return NULL;
        }
        if (out.len > 1)
            gstr_catc(&out, ' ');
        if (*e && !strpbrk(e, " \t\n'\"")) {
            gstr_cat(&out, e);
        } else if (!strchr(e, '\'')) {
            gstr_printf(&out, "'%s'", e);
        } else {
            gstr_catc(&out, '"');
            for (const char *s = e; *s; s++) {
                if (*s == '"' || *s == '\\')
                    gstr_catc(&out, '\\');
                gstr_catc(&out, *s);
            }
            gstr_catc(&out, '"');
        }
    }
    return out.s;
}

static bool do_logwrite(fx *x, const fcmd *c, const char *s)
{
    if (x->t) {
        fprintf(x->t, "%sogwrite \"%s\"\n", c->seen ? "Seen l" : "L", filter_printing(s, x->a));
        return true;
    }
    if (x->o->flags & FO_NO_LOG) {
        x->err = "logwrite command forbidden";
        return false;
    }
    if (!(x->o->flags & FO_REALLOG))
        return true;                       /* verifying or testing addresses */
    if (x->log_fd < 0) {
        if (!x->log_name) {
            x->err = "attempt to obey \"logwrite\" command without a previous \"logfile\"";
            return false;
        }
        if (is_tainted(x->log_name)) {
            xerr(x, "Tainted name '%s' for filter log file not permitted", x->log_name);
            return false;
        }
        x->log_fd = open(x->log_name, O_CREAT | O_APPEND | O_WRONLY | O_CLOEXEC, (mode_t)x->log_mode);
        if (x->log_fd < 0) {
            int e = errno;
            xerr(x, "failed to open filter log file \"%s\": %s%s", x->log_name, strerror(e),
                 e == EACCES ? arena_printf(x->a, " (euid=%ld egid=%ld)", (long)geteuid(), (long)getegid()) : "");
            return false;
        }
    }
    size_t n = strlen(s);
    if (write(x->log_fd, s, n) != (ssize_t)n) {
        xerr(x, "write error on file \"%s\": %s", x->log_name, strerror(errno));
        return false;
    }
    return true;
}

static void do_headers(fx *x, const fcmd *c, const char *s)
{
    static const char *const sub[] = { "remove", "add", "charset" };
    if (x->t)
        fprintf(x->t, "Headers %s \"%s\"\n", sub[c->num], filter_printing(s, x->a));
    if (c->num == H_CHARSET) {
        ps.headers_charset = s;
        return;
    }
    if (c->num == H_ADD) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            return;
        size_t n = strlen(s);
        const char *text = s[n - 1] == '\n' ? s : arena_printf(is_tainted(s) ? ps.msg_t : x->a, "%s\n", s);
        spool_header *h = arena_calloc(x->a, sizeof *h), **tail = (spool_header **)&ps.msg_headers;
        h->text = (char *)text;
        h->len = strlen(text);
        h->type = spool_header_type(text);
        while (*tail)
            tail = &(*tail)->next;
        *tail = h;
        return;
    }
    int sep = 0;
    const char *list = s;
    char *name;
    while ((name = list_next(&list, &sep, x->a))) {
        size_t n = strlen(name);
        if (n && name[n - 1] == ':')
            n--;
        for (spool_header *h = ps.msg_headers; h; h = h->next)
            if (h->type != '*' && h->len > n && strncasecmp(h->text, name, n) == 0 && h->text[n] == ':')
                h->type = '*';
    }
}

/* The strings of a mail command: file names without non-printing
 * characters, header values with newlines only before white space, extra
 * headers with newlines only before white space or a header name. */
static bool check_mail_args(fx *x, const fcmd *c, const char **e)
{
    const char *cmd = filter_cmd_names[c->kind];
    for (int i = 0; i < MA_N; i++) {
        const char *t = e[i];
        if (!t || i == MA_TEXT)
            continue;
        for (const char *p = t; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (i > MA_TEXT) {
                if (!printable(ch)) {
                    xerr(x, "non-printing character in \"%s\" in %s command", filter_printing(t, x->a), cmd);
                    return false;
                }
                continue;
            }
            if (ch != '\n' || isspace((unsigned char)p[1]))
                continue;
            if (i < MA_HEADERS) {
                xerr(x, "\\n not followed by space in \"%.1024s\" in %s command", filter_printing(t, x->a), cmd);
                return false;
            }
            const char *q;
            for (q = p + 1;; q++) {
                if (*q == ':' && q != p + 1)
                    break;
                if (!*q || *q == ':' || isspace((unsigned char)*q)) {
                    xerr(x, "\\n not followed by space or valid header name in \"%.1024s\" in %s command",
                         filter_printing(t, x->a), cmd);
                    return false;
                }
            }
            p = q;
        }
    }
    return true;
}

static bool do_mail(fx *x, const fcmd *c, const char **e)
{
    const char *cmd = filter_cmd_names[c->kind];
    const char *rp = ps.return_path ? ps.return_path : ps.sender_address;
    if (!rp || !*rp) {
        /* no replies to bounces (nor to -f <>) */
        if (x->t)
            fprintf(x->t, "%s command ignored because return_path is empty\n", cmd);
        return true;
    }
    if (!check_mail_args(x, c, e))
        return false;
    if (x->t) {
        fprintf(x->t, "%sail to: %s%s%s\n", c->seen ? "Seen m" : "M", e[MA_TO] ? e[MA_TO] : "<default>",
                c->kind == K_VACATION ? " (vacation)" : "", noerr(c));
        for (int i = 1; i < MA_N; i++)
            if (e[i])
                fprintf(x->t, "%*s%s: %s%s\n", (int)(strlen(filter_mail_names[i]) < 7 ? 7 - strlen(filter_mail_names[i]) : 0), "",
                        filter_mail_names[i], filter_printing(e[i], x->a), c->expand_file && i == MA_FILE ? " (expanded)" : "");
        if (c->return_message)
            fprintf(x->t, "Return original message\n");
        return true;
    }
    const char *to = e[MA_TO];
    if (!to && !expand(x, "$reply_address", "mail command", &to))
        return false;
    while (isspace((unsigned char)*to))
        to++;
    if (strchr(to, '\n')) {
        char *t = arena_strdup(is_tainted(to) ? ps.msg_t : x->a, to);
        for (char *p = t; *p; p++)
            if (*p == '\n')
                *p = ' ';
        to = t;
    }
    /* the address the delivery is logged under: ">" and the recipients */
    gstr g;
    gstr_init(&g, ps.msg_t, 64);
    for (const char *s = to; *s;) {
        const char *end = addr_item_end(s, false);
        char *err;
        const char *r = extract_one(s, (size_t)(end - s), false, x->a, &err);
        if (r) {
            gstr_catc(&g, g.len ? ',' : '>');
            gstr_cat(&g, r);
        }
        if (g.len > FILTER_MAX_LOG_ADDR) {
            gstr_cat(&g, ", ...");
            break;
        }
        s = end + (*end ? 1 : 0);
        while (isspace((unsigned char)*s))
            s++;
    }
    reply_item *rp_item = arena_calloc(x->a, sizeof *rp_item);
    rp_item->to = to;
    rp_item->cc = e[MA_CC];
    rp_item->bcc = e[MA_BCC];
    rp_item->from = e[MA_FROM];
    rp_item->reply_to = e[MA_REPLY_TO];
    rp_item->subject = e[MA_SUBJECT];
    rp_item->headers = e[MA_HEADERS];
    rp_item->text = e[MA_TEXT];
    rp_item->file = e[MA_FILE];
    rp_item->logfile = e[MA_LOG];
    rp_item->oncelog = e[MA_ONCE];
    rp_item->file_expand = c->expand_file;
    rp_item->return_message = c->return_message;
    rp_item->expand_forbid = ps.exp_forbid;
    if (e[MA_ONCE_REPEAT] && opt_parse_time(e[MA_ONCE_REPEAT], &rp_item->once_repeat) != ST_OK) {
        xerr(x, "Bad time value for \"once_repeat\" in mail or vacation command: %s", e[MA_ONCE_REPEAT]);
        return false;
    }
    filter_action *a = add_action(x, FA_MAIL, g.len ? g.s : ">**bad-reply**", c->noerror);
    a->reply = rp_item;
    return true;
}

/* fail, defer, freeze: the text (cut when very long) ends the filter */
static filter_outcome do_stop(fx *x, const fcmd *c, const char *text)
{
    static const char *const names[] = { [K_DEFER] = "defer", [K_FAIL] = "fail", [K_FREEZE] = "freeze" };
    const char *name = names[c->kind];
    if (strlen(text) > FILTER_MAX_FMSG)
        text = arena_printf(x->a, "%.1000s ... (truncated)", text);
    char *msg = arena_strdup(x->a, filter_printing(text, x->a));
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    x->err = msg;
    if (x->t)
        fprintf(x->t, "%c%s text \"%s\"\n", toupper((unsigned char)name[0]), name + 1, msg);
    return c->kind == K_DEFER ? FF_DEFER : c->kind == K_FAIL ? FF_FAIL : FF_FREEZE;
}

static filter_outcome run(fx *x, const fcmd *c)
{
    for (; c; c = c->next) {
        const char *e[MA_N] = { NULL };
        int nexp = cmd_nexp(c->kind);
        for (int i = 0; i < nexp; i++) {
            if (!c->arg[i])
                continue;
            const char *where = arena_printf(x->a, "%s command", filter_cmd_names[c->kind]);
            if (!expand(x, c->arg[i], where, &e[i]))
                return FF_ERROR;
        }
        if (c->seen)
            x->delivered = true;
        bool ok = true;
        switch (c->kind) {
        case K_ADD:
            ok = do_add(x, e);
            break;
        case K_DELIVER:
            ok = do_deliver(x, c, e);
            break;
        case K_SAVE:
            ok = do_save(x, c, e[0]);
            break;
        case K_PIPE:
            if (x->t) {
                fprintf(x->t, "%sipe message to: %s%s\n", c->seen ? "P" : "Unseen p", c->arg[0], noerr(c));
            } else {
                const char *cmd = pipe_command(x, c->arg[0]);
                ok = cmd != NULL;
                if (ok)
                    add_action(x, FA_PIPE, cmd, c->noerror);
            }
            break;
        case K_LOGFILE:
            x->log_mode = c->num < 0 ? 0600 : c->num;
            if (x->log_fd >= 0) {
                close(x->log_fd);
                x->log_fd = -1;
            }
            x->log_name = e[0];
            if (x->t)
                fprintf(x->t, "%sogfile %s\n", c->seen ? "Seen l" : "L", e[0]);
            break;
        case K_LOGWRITE:
            ok = do_logwrite(x, c, e[0]);
            break;
        case K_HEADERS:
            do_headers(x, c, e[0]);
            break;
        case K_DEFER: case K_FAIL: case K_FREEZE:
            return do_stop(x, c, e[0]);
        case K_FINISH:
            if (x->t)
                fprintf(x->t, "%sinish\n", c->seen ? "Seen f" : "F");
            x->finished = true;
            return x->delivered ? FF_DELIVERED : FF_NOTDELIVERED;
        case K_IF: {
            const char *save = ps.filter_thisaddress;
            const fcmd *body = c->els;
            for (const branch *b = c->branches; b; b = b->next) {
                bool v = test_cond(x, b->c);
                if (x->err) {
                    ps.filter_thisaddress = save;
                    return FF_ERROR;
                }
                if (v) {
                    body = b->body;
                    break;
                }
            }
            filter_outcome r = run(x, body);
            ps.filter_thisaddress = save;
            if (x->finished || (r != FF_DELIVERED && r != FF_NOTDELIVERED))
                return r;
            break;
        }
        case K_MAIL: case K_VACATION:
            ok = do_mail(x, c, e);
            break;
        case K_TESTPRINT:
            if (x->t)
                fprintf(x->t, "Testprint: %s\n", filter_printing(e[0], x->a));
            break;
        default:
            break;
        }
        if (!ok)
            return FF_ERROR;
    }
    return x->delivered ? FF_DELIVERED : FF_NOTDELIVERED;
}

filter_outcome filter_interpret(const char *text, const filter_opts *o, filter_result *r)
{
    memset(r, 0, sizeof *r);
    /* a filter made from outside data stays outside data: nothing in it
     * can be expanded then */
    arena *parse = arena_new("filter", is_tainted(text));
    fx x = { .o = o, .r = r, .a = o->a, .t = o->test, .log_fd = -1, .log_mode = 0600, .tail = &r->actions };
    bool was_running = ps.filter_running;
    const char *save_charset = ps.headers_charset, *save_this = ps.filter_thisaddress;
    ps.filter_running = true;
    memset(ps.filter_n, 0, sizeof ps.filter_n);

    filter_outcome out = FF_ERROR;
    const char *err = NULL;
    fcmd *cmds = filter_read(text, o->flags, parse, &err);
    if (cmds || !err)
        out = run(&x, cmds);
    else
        x.err = arena_strdup(o->a, err);

    if (x.log_fd >= 0)
        close(x.log_fd);
    r->outcome = out;
    r->error = out == FF_DELIVERED || out == FF_NOTDELIVERED ? NULL : x.err ? x.err : "";
    r->seen_finish = out == FF_DELIVERED && !r->actions;
    if (o->test) {
        switch (out) {
        case FF_DEFER: fprintf(o->test, "Filtering ended by \"defer\".\n"); break;
        case FF_FREEZE: fprintf(o->test, "Filtering ended by \"freeze\".\n"); break;
        case FF_FAIL: fprintf(o->test, "Filtering ended by \"fail\".\n"); break;
        case FF_DELIVERED:
            fprintf(o->test, "Filtering set up at least one significant delivery or other action.\n"
                             "No other deliveries will occur.\n");
            break;
        case FF_NOTDELIVERED:
            fprintf(o->test, "Filtering did not set up a significant delivery.\nNormal delivery will occur.\n");
            break;
        case FF_ERROR: fprintf(o->test, "Filter error: %s\n", r->error); break;
        }
    }
    /* the numeric variables end with the filter; $n0.. too, as in Exim */
    ps.exp_nmax = 0;
    ps.filter_running = was_running;
    ps.headers_charset = save_charset;
    ps.filter_thisaddress = save_this;
    arena_free(parse);
    return out;
}

void filter_set_body_vars(const char *body, size_t len)
{
    long vis = (long)cfg_int(MO_message_body_visible);
    if (vis < 0)
        vis = 0;
    size_t n = len < (size_t)vis ? len : (size_t)vis;
    char *start = arena_memdup(ps.msg_t, body, n);
    char *end = arena_memdup(ps.msg_t, body + len - n, n);
    for (size_t i = 0; i < n; i++) {
        if (start[i] == '\n' || start[i] == '\0')
            start[i] = ' ';
        if (end[i] == '\n' || end[i] == '\0')
            end[i] = ' ';
    }
    long zeros = 0;
    for (size_t i = 0; i < len; i++)
        zeros += body[i] == '\0';
    ps.message_body = start;
    ps.message_body_end = end;
    ps.message_body_size = (long)len;
    ps.body_zerocount = zeros;
}
