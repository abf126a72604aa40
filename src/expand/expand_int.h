/* expand_int.h: shared between the files of the expansion engine. */
#ifndef POSTERN_EXPAND_INT_H
#define POSTERN_EXPAND_INT_H

#include "core/arena.h"
#include "core/gstr.h"
#include "core/status.h"
#include "core/state.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct xs {
    arena *w;        /* working arena for intermediate strings */
    arena *wt;       /* tainted working arena (made on first use) */
    int depth;
    char *err;       /* failure text (in w) */
    bool forced;     /* forced failure */
    bool no_dollar;  /* '$' is literal (list arguments of match_*) */
    bool bad_header; /* a header name ran to the end without its colon */
    bool sticky;     /* ${run} set $value: it outlives this expansion (as Exim's) */
    const char *sticky_value;
} xs;

/* Record a failure; returns ST_FAIL (or st for xfail_st). */
status xfail(xs *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Expand from *sp up to the end of the string (brace_end false) or up to an
 * unbalanced '}' (brace_end true; *sp is left on the '}').  When skip is set
 * only the syntax is checked.  Output is appended to out, taint ORed. */
status xp_sub(xs *x, const char **sp, bool brace_end, bool skip, gstr *out, bool *taint);

/* Read between min and max "{...}" arguments (whitespace allowed between),
 * then the closing '}' of the item when close is set. */
status xp_args(xs *x, const char **sp, bool skip, int min, int max, bool close,
               const char *name, char **vals, bool *taints, int *count);

/* One braced argument; *sp at '{' (after whitespace). */
status xp_braced(xs *x, const char **sp, bool skip, char **val, bool *taint);

/* A condition at *sp (after "${if "); result in *res. */
status xp_cond(xs *x, const char **sp, bool skip, bool *res);

/* The optional {yes}{no} / fail part of if/lookup/extract etc.  value is
 * $value while the strings are expanded. */
status xp_yesno(xs *x, const char **sp, bool skip, bool yes, const char *value,
                bool value_taint, const char *item, gstr *out, bool *taint);

/* Items: ST_NOTFOUND when name is not an item. */
status xp_item(xs *x, const char *name, const char **sp, bool skip, gstr *out, bool *taint);

bool xp_is_item(const char *name);
status it_run(xs *x, const char **sp, bool skip, gstr *out, bool *taint);
status it_prvs(xs *x, const char **sp, bool skip, gstr *out, bool *taint);
status it_prvscheck(xs *x, const char **sp, bool skip, gstr *out, bool *taint);
/* Exim's %q rendering: in double quotes, with tab, '"' and non-printing
 * characters escaped. */
const char *xq(xs *x, const char *s);
/* A leading "<x" list separator in unexpanded text (Exim parses it before
 * expanding a list argument): returns x and advances *sp, or 0. */
int x_parse_sep(const char **sp);
/* JSON: strip a wrapper pair ("[]", "{}", "\"\""), next array/object element */
char *x_dewrap(xs *x, char *s, const char *wrap);
char *x_json_next(arena *a, const char **list);

/* Operators: ST_NOTFOUND when name is not an operator. */
status xp_op(xs *x, const char *name, const char *arg, bool argt, gstr *out, bool *taint);

/* Variables: NULL and *known false when the name is unknown. */
const char *var_get(xs *x, const char *name, bool *known);

/* Helpers shared by items and operators. */
bool x_number(const char *s, long long *out);          /* decimal, K/M/G */
status x_eval(xs *x, const char *s, bool decimal_only, long long *out);
char *x_hex(arena *a, const unsigned char *p, size_t n);
status x_regex_match(xs *x, const char *subject, bool subj_tainted, const char *re,
                     bool caseless, bool set_numbers, bool *matched);
/* Arena for strings that are stored in variables ($item, $value, $1...):
 * the tainted working arena when tainted, so is_tainted() tells later. */
arena *x_arena(xs *x, bool tainted);
void x_set_numbers_clear(void);
const char *x_strip(arena *a, const char *s);   /* trim white space */

/* RFC 822/5322 address parsing for ${address:} etc.: returns the address
 * (addr-spec) or NULL with *err set. */
char *x_parse_address(arena *a, const char *s, char **err, int *dom_off);

/* vars_state.c: connection/message variables and header variables */
const char *vars_state(xs *x, const char *name, bool *known);
const char *vars_header(xs *x, const char *kind, const char *hname, size_t hlen);

#endif
