/* acl.h: the ACL engine: runs the ACL named by (or written inline in) an
 * acl_smtp_* option, statement by statement, with Exim's verbs, conditions
 * and modifiers, and tells the SMTP server what to answer.
 *
 * The caller (src/smtp) has put the connection and message state into ps
 * (core/state.h) before calling, so conditions and expansions see
 * $sender_host_address, $sender_address, $local_part, $domain, ... */
#ifndef POSTERN_ACL_H
#define POSTERN_ACL_H

#include "config/config.h"
#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>

typedef enum acl_where {
    ACL_WHERE_CONNECT, ACL_WHERE_HELO, ACL_WHERE_MAIL, ACL_WHERE_RCPT,
    ACL_WHERE_PREDATA, ACL_WHERE_DATA, ACL_WHERE_QUIT, ACL_WHERE_NOTQUIT,
    ACL_WHERE_VRFY, ACL_WHERE_EXPN, ACL_WHERE_NOT_SMTP,
    ACL_WHERE_EXPANSION,        /* added by src/acl: ${acl {name}...} in an expansion */
    ACL_WHERE__COUNT
} acl_where;

const char *acl_where_name(acl_where w);      /* "RCPT", "DATA", ... as Exim logs them */

/* Controls an ACL set with "control = ..." that the server acts on. */
typedef struct acl_controls {
    bool queue_only;            /* control = queue_only / queue */
    bool freeze;
    bool submission;
    const char *submission_domain;
    bool suppress_local_fixups;
    bool no_multiline_responses;
    bool no_enforce_sync;
    bool enforce_sync;
    bool no_pipelining;
    bool fakedefer, fakereject;
    bool dkim_disable_verify, dmarc_disable_verify, dmarc_enable_forensic;
    /* Added by src/acl (all per message unless noted): */
    const char *fakereject_message;  /* control = fakereject/<text> or fakedefer/<text>; NULL: default */
    bool freeze_no_tell;             /* every control = freeze had /no_tell */
    const char *submission_name;     /* control = submission/name=<text> */
    bool submission_sender_retain;   /* control = submission/sender_retain */
    bool queue_first_pass_route;     /* control = queue/first_pass_route */
    const char *queue_name;          /* "queue = <name>" modifier; NULL: default queue */
    bool no_delay_flush;             /* connection */
    bool no_callout_flush;           /* connection: no flush of SMTP output before a callout */
    bool caseful_local_part;         /* current RCPT only (caseful_local_part/caselower_local_part) */
    bool dk_verify;                  /* control = dk_verify: verify DomainKeys (seed spec) */
    bool allow_auth_unadvertised;    /* connection */
} acl_controls;

/* A header an ACL asked to add (add_header) or remove (remove_header). */
typedef struct acl_header {
    const char *text;           /* "Name: value" (add) or a name list (remove) */
    enum { ACL_HDR_APPEND, ACL_HDR_AT_START, ACL_HDR_AFTER_RECEIVED, ACL_HDR_AT_START_RFC, ACL_HDR_REMOVE } where;
    struct acl_header *next;
} acl_header;

typedef struct acl_result {
    status st;                  /* ST_OK accept, ST_FAIL deny, ST_DEFER defer,
                                   ST_DISCARD discard, ST_ERROR config/expansion error */
    bool drop;                  /* "drop": reply then close the connection */
    const char *user_message;   /* from "message =", NULL for the default text */
    const char *log_message;    /* from "log_message =" (see below: Exim's log text) */
    const char *error;          /* ST_ERROR: what went wrong (logged to panic/main) */
    /* Added by src/acl: "log_reject_target =" in the deciding ACL: when set,
       the rejection is logged to these logs only (LOG_MAIN|LOG_REJECT|LOG_PANIC
       bits, 0 = not logged); unset: Exim's default main+reject. */
    bool log_reject_target_set;
    int log_reject_target;
} acl_result;

/* Per-message and per-connection results that accumulate over ACL calls.
 * Zero it when a connection (or a non-SMTP message) starts; call
 * acl_session_message_reset() whenever the message arenas (ps.msg) are
 * reset, since per-message parts (headers, controls' strings, the
 * ratelimit and "warn" caches) live there.  Connection parts live in
 * ps.conn. */
typedef struct acl_session {
    acl_controls controls;
    acl_header *headers;        /* add_header / remove_header requests, in order */
    int delay_total;            /* seconds slept by "delay" (for logging) */
    /* Added by src/acl: */
    void (*flush)(void *ctx);   /* optional: flush pending SMTP output before "delay" */
    void *flush_ctx;
    struct acl_rl_entry *rl_conn, *rl_mail; /* ratelimit results already computed
                                   this connection / this message (Exim's caches) */
    struct acl_logged *warned;  /* "warn" log lines already written for this message */
} acl_session;

/* Run the ACL given by the option text `acl` (an ACL name, an inline ACL
 * "accept hosts = ..." or a file name, after expansion as Exim does) for
 * the stage `where`.  `acl == NULL` means the option is unset: the Exim
 * default for that stage applies (RCPT: deny; others: accept).  Results
 * that persist go into *sess.  `a` is the arena for returned strings. */
status acl_check(acl_where where, const char *acl, acl_session *sess, arena *a, acl_result *res);

/* Reset per-message parts of the session (headers, message controls). */
void acl_session_message_reset(acl_session *sess);

/* ---- additions by src/acl ------------------------------------------------
 *
 * acl_check() details:
 *  - `acl` is the option value as configured (unexpanded): acl_check
 *    expands it (a forced failure of that expansion means accept, as Exim).
 *    A plain name without '$' expands to itself, so passing an already
 *    expanded value is harmless.  After expansion: a leading '/' is a file
 *    of ACL statements; a value with no white space is the name of an ACL in
 *    "begin acl" (if there is none of that name, it is parsed as inline
 *    text, so "accept" works); anything else is inline ACL text, statements
 *    separated by newlines.
 *  - res->log_message is what Exim would append to its "rejected ..." log
 *    line (the log_message modifier, a verify failure, or the error text
 *    for ST_DEFER/ST_ERROR; defaults to the user message).  For ST_ERROR,
 *    res->error additionally names the ACL, the file:line and the condition.
 *  - "warn" log lines ("H=... Warning: ...") and "logwrite" are written by
 *    the engine itself; the caller logs the rejection line.
 *  - the "delay" modifier sleeps (not with ps.host_checking, i.e. -bh),
 *    calling sess->flush first unless control = no_delay_flush.
 *  - for acl_not_smtp the caller treats ST_DEFER and ST_ERROR as deny
 *    (Exim: no temporary errors for non-SMTP input).
 *  - hints databases: <spool_directory>/db/ratelimit and db/seen (LMDB,
 *    one file each plus "-lock"), created on first use.
 *  - the engine sets ps fields behind variables the expander shows:
 *    acl_arg[]/acl_narg, sender_rate*, host_data, domain_data,
 *    local_part_data, sender_data, recipient_data, dnslist_*,
 *    acl_verify_message, sender_host_name/host_lookup_failed.
 */

/* Exim's default SMTP texts when an ACL gives no "message": */
#define ACL_TEXT_FAIL  "Administrative prohibition"
#define ACL_TEXT_DEFER "Temporary local problem - please try later"

/* The default text for a result (ACL_TEXT_FAIL for ST_FAIL, ACL_TEXT_DEFER
 * for ST_DEFER and ST_ERROR, NULL for accept/discard). */
const char *acl_default_text(status st);

/* Limits */
#define ACL_MAX_NEST   20        /* nested "acl =" calls (Exim's limit) */
#define ACL_MAX_ARGS   9         /* $acl_arg1 .. $acl_arg9 */
#define ACL_DELAY_MAX  3600      /* seconds: longest single "delay" obeyed */
#define ACL_FILE_MAX   (1024 * 1024)  /* bytes of an ACL file */

/* Conditions implemented outside src/acl (spf, spf_guess, dkim_signers,
 * dkim_status, dmarc_status, dk_*, dcc, regex, mime_regex, decode,
 * atrn_domains): a module that implements them (e.g. the glue between
 * src/msgauth and the ACLs) defines this function; when it is linked in,
 * the engine calls it with the expanded argument for every condition it
 * does not implement itself.  Return ST_OK (true), ST_FAIL (false),
 * ST_DEFER or ST_ERROR (with *log_msg), or ST_NOTFOUND for a name it does
 * not handle either (the engine then defers with "not yet implemented").
 * *user_msg / *log_msg are the underlying messages, as for verify. */
status acl_condition_ext(const char *name, acl_where where, const char *arg, arena *a,
                         const char **user_msg, const char **log_msg);

/* Parse ACL text (an inline ACL or the contents of an ACL file): one
 * statement per line, a verb first, then conditions/modifiers one per line,
 * "#" comments, blank lines and backslash continuations as in the
 * configuration file.  Conditions are checked against the same vocabulary
 * as the configuration reader.  On error returns ST_ERROR with *err in
 * Exim's run-time words, e.g. "unknown ACL verb \"x\" in \"x\"" (for a
 * file, " in line N of ACL file F" is added).  `file` "inline" for text. */
status acl_parse_text(const char *text, const char *file, arena *a, acl_stmt **out, char **err);

/* Run ACL `acl` (name/inline/file, expanded) with up to ACL_MAX_ARGS
 * arguments ($acl_arg1.., $acl_narg; restored afterwards) for stage
 * `where`; res->user_message is the "message" (what ${acl} yields).  For
 * ${acl {name}{arg}...} pass ACL_WHERE_EXPANSION, as Exim does: conditions
 * are then allowed as in Exim's expansion context.  Nesting through
 * ${acl} and "acl =" together is bounded by ACL_MAX_NEST (ps.acl_level). */
status acl_eval_with_args(acl_where where, const char *acl, const char **args, int nargs,
                          acl_session *sess, arena *a, acl_result *res);

#endif
