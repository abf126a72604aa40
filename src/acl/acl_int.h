/* acl_int.h: shared between the files of the ACL engine. */
#ifndef POSTERN_ACL_INT_H
#define POSTERN_ACL_INT_H

#include "acl/acl.h"
#include "config/config.h"
#include "core/state.h"

/* Results inside the engine: Exim's, including FAIL_DROP ("drop"). */
typedef enum acl_rc { RC_OK, RC_FAIL, RC_FAIL_DROP, RC_DEFER, RC_ERROR, RC_DISCARD } acl_rc;

typedef struct acl_ctx {
    acl_where where;
    acl_session *sess;
    arena *a;                 /* results and working strings */
    int depth;                /* nesting of "acl =" */
    const char *acl_name;     /* current ACL for messages: name, "inline ACL" or file */
    acl_verb verb;            /* verb of the current statement */
    const acl_cond *cond;     /* condition or modifier being evaluated */
    /* underlying messages set by conditions (verify, nested ACLs, errors);
       Exim's user_msgptr / log_msgptr */
    const char **umsg, **lmsg;
    const char *error;        /* detailed text for ST_ERROR (first one wins) */
    acl_result *res;          /* top-level result, for log_reject_target */
    struct acl_rl_entry *rl_cmd;  /* ratelimit results of this command (Exim's per-command cache) */
} acl_ctx;

/* The name Exim uses for a stage in messages ("MAIL", "connection", ...). */
const char *acl_wherename(acl_where w);

/* Run the ACL `spec` (option-style text, expanded first when `expand`)
 * with messages going to *umsg / *lmsg.  Used for the top level and for
 * nested "acl =" calls. */
acl_rc acl_run_spec(acl_ctx *c, const char *spec, bool expand, const char **umsg, const char **lmsg);

/* Record an error/defer text: the Exim-style log text goes to *c->lmsg and
 * the detailed one (ACL, file:line, condition) to c->error. Returns rc. */
acl_rc acl_fail_text(acl_ctx *c, acl_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Expand an argument; forced failure gives *forced (and RC_OK), other
 * failures RC_ERROR with the Exim text "failed to expand ACL string". */
acl_rc acl_expand_arg(acl_ctx *c, const char *raw, char **out, bool *forced);

/* Conditions: RC_OK (true), RC_FAIL (false), RC_FAIL_DROP, RC_DEFER,
 * RC_ERROR, RC_DISCARD; negation is applied by the caller.  `arg` is
 * expanded except for "acl" (which expands its words itself). */
acl_rc acl_condition(acl_ctx *c, const acl_cond *cd, const char *arg);
/* hosts, domains, local_parts, recipients, senders, sender_domains,
 * authenticated, encrypted: their argument is a list, expanded as Exim expands lists
 * (a forced failure means "not in the list"). */
bool acl_is_list_condition(const char *name);
/* Immediate modifiers (not message/log_message/endpass). */
acl_rc acl_modifier(acl_ctx *c, const acl_cond *cd, const char *arg);

acl_rc acl_verify(acl_ctx *c, const char *arg);
acl_rc acl_ratelimit(acl_ctx *c, const char *arg);
/* A key for the LMDB hints databases: never empty, and keys longer than
 * LMDB allows are shortened to a prefix plus a 128-bit hash of the whole. */
const char *acl_hint_key(arena *a, const char *prefix, const char *key);
acl_rc acl_seen(acl_ctx *c, const char *arg);

/* Header helpers (acl_hdr.c): check the address-list syntax of a header
 * value (NULL: fine, else Exim's error text); collect its addresses. */
const char *acl_hdr_syntax(arena *a, const char *value, bool allow_unqualified,
                           const char **failing);
int acl_hdr_addresses(arena *a, const char *value, const char ***out);

/* Write a log line as the ACL engine does (message id prefix when known,
 * non-printing characters escaped). */
void acl_log(int which, const char *text);
/* "H=name (helo) [ip]" as Exim's host_and_ident, or "U=postern" locally. */
const char *acl_host_ident(arena *a);

#endif
