/* expand.h: Exim-compatible string expansion ($variables, ${items},
 * ${operators:...}, conditions) and the -be test mode.
 *
 * Results live in the caller's arena, or in a tainted arena (ps.conn_t or
 * ps.msg_t, or the caller's arena if that is tainted) when tainted data went
 * into them, so is_tainted() on a result tells whether outside data is in it.
 * A tainted string is never expanded (ST_ERROR).
 *
 * Where things live (to extend the engine):
 *   variables    vars.c (general: one row per name in var_table, sorted) and
 *                vars_state.c (connection/message values from ps)
 *   operators    operators.c: a function and a row in op_table (sorted)
 *   items        items.c (xp_item dispatch, item_names), items_ext.c
 *   conditions   conditions.c: a row in conds[] and a case in cond_apply
 *   lookups      src/lookup: one file per driver + a line in lookup_tab.c
 *   list matching match.h (domain, host/IP, address, local part lists)
 * $1.., $value, $item, ACL variables and ${run}/${prvscheck} results are
 * in ps (core/state.h). */
#ifndef POSTERN_EXPAND_H
#define POSTERN_EXPAND_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>

/* Limits (Exim's where Exim has one). */
#define EXPAND_MAX_DEPTH     200     /* nesting of items / recursion */
#define EXPAND_MAX_LEVEL     50      /* expand_string() inside expand_string() (wildlsearch keys, named lists) */
#define EXPAND_MAX_NUMVARS   21      /* $0 .. $20 (Exim's EXPAND_MAXN) */
#define EXPAND_MAX_RESULT    (64 * 1024 * 1024)  /* bytes in one expansion */
#define EXPAND_MAX_READFILE  (16 * 1024 * 1024)  /* ${readfile} size */

/* Bits of ps.exp_forbid: expansion features refused (Exim's forbid_*
 * options of redirect routers and filters; the fuzz target sets them). */
#define EXPAND_FORBID_RUN      0x01   /* ${run} */
#define EXPAND_FORBID_READFILE 0x02   /* ${readfile} */
#define EXPAND_FORBID_LOOKUP   0x04   /* ${lookup} */
#define EXPAND_FORBID_EXISTS   0x08   /* exists{} */
#define EXPAND_FORBID_STAT     0x10   /* ${stat:} */
#define EXPAND_FORBID_QUERY    0x20   /* query-style lookups (dnsdb, ...) */
#define EXPAND_FORBID_DNS      0x40   /* any DNS lookup (@mx_*, host names in lists) */
#define EXPAND_FORBID_READSOCKET 0x80 /* ${readsocket} (also refused with EXPAND_FORBID_RUN) */

/* ST_OK: *out set.  ST_FAIL_FORCED: "fail" was requested (*err says so).
 * ST_FAIL / ST_ERROR: *err is an Exim-like message.  ST_DEFER: a lookup
 * deferred.  *err is in a (may be NULL if err is NULL). */
status expand_string(const char *s, arena *a, char **out, char **err);

/* Evaluate a condition written as in ${if ...}: "eq{$a}{b}", "!def:x",
 * "and{{...}{...}}".  Extra text after the condition is an error. */
status expand_condition(const char *s, arena *a, bool *result, char **err);

/* Expand a string and interpret the result as routers' "condition" option
 * does: "", "0", "no" and "false" (any case, surrounding white space
 * ignored) are false, anything else is true.  A forced failure is returned
 * as ST_FAIL_FORCED (routers then decline). */
status expand_check_bool(const char *s, arena *a, bool *result, char **err);

/* Expand and convert to an integer (with K/M/G suffixes). */
status expand_integer(const char *s, arena *a, long long *out, char **err);

/* RFC 5322 address extraction, as ${address:} does it (comments and a
 * display name dropped): the addr-spec, or NULL with *err set.
 * *domain_offset is where the domain starts (-1: no domain). */
char *expand_extract_address(arena *a, const char *s, char **err, int *domain_offset);

/* postern -be: expand each argument (or each line of stdin) and print the
 * result; "Failed: reason" on failure.  Returns the exit code. */
int expand_test_mode(int argc, char **argv);

/* Reset the per-message expansion state ($acl_m*, $1.., $value, $item). */
void expand_reset_message(void);

/* ACL variables: name is "acl_c..." or "acl_m..."; value copied into the
 * connection or message arena (tainted arena if value is tainted). */
status expand_set_acl_var(const char *name, const char *value, char **err);
const char *expand_get_acl_var(const char *name);

#endif
