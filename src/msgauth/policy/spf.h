/* spf.h: Sender Policy Framework (RFC 7208) check_host(), with the texts
 * Exim derives from a result ($spf_result, $spf_header_comment,
 * $spf_received, $spf_smtp_comment) and Exim's spf_guess.
 *
 * The library keeps no state: a query goes in, an outcome comes out, all
 * memory comes from the caller's arena and every lookup goes through the
 * caller's dns_iface. */
#ifndef POSTERN_MSGAUTH_SPF_H
#define POSTERN_MSGAUTH_SPF_H

#include "core/arena.h"
#include "dns/dns.h"
#include <stdbool.h>
#include <time.h>

/* RFC 7208 section 4.6.4 and 11.1 limits. */
#define SPF_MAX_DNS_MECH 10   /* include, a, mx, ptr, exists, redirect */
#define SPF_MAX_VOID 2        /* lookups answering NXDOMAIN or no data */
#define SPF_MAX_MX_NAMES 10   /* MX names looked up per mx mechanism */
#define SPF_MAX_PTR_NAMES 10  /* PTR names checked per ptr mechanism / %{p} */
#define SPF_MAX_RECURSION 20  /* nested include/redirect (loops end earlier) */
#define SPF_MAX_EXPANSION 8192/* bytes of one macro expansion */
#define SPF_MAX_SECONDS 20    /* whole evaluation (RFC 7208 4.6.4: at least 20 s) */

/* Exim's defaults. */
#define SPF_DEFAULT_GUESS "v=spf1 a/24 mx/24 ptr ?all"
#define SPF_DEFAULT_SMTP_TEMPLATE "Please%_see%_http://www.open-spf.org/Why"

typedef enum spf_result {
    SPF_NONE = 0, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL,
    SPF_TEMPERROR, SPF_PERMERROR,
} spf_result;

typedef struct spf_query {
    const char *ip;          /* client address, IPv4 or IPv6 text */
    const char *sender;      /* MAIL FROM; NULL or "" means postmaster@helo */
    const char *helo;        /* HELO/EHLO name (may be NULL) */
    const char *receiver;    /* our host name: %{r}, Received-SPF; NULL = "unknown" */
    time_t now;              /* %{t}; 0 = time(NULL) */
    bool helo_identity;      /* check the HELO identity instead of MAIL FROM */
    const char *guess;       /* record to use when the domain has none
                                (Exim's spf_guess); NULL = no guessing */
    const char *default_exp; /* explanation for fail without exp=, macro
                                string; NULL = SPF_DEFAULT_SMTP_TEMPLATE */
} spf_query;

typedef struct spf_outcome {
    spf_result result;
    const char *identity;    /* "mailfrom" or "helo" */
    const char *domain;      /* the domain checked (identity's domain) */
    const char *sender;      /* sender used (postmaster@helo when none given) */
    const char *mechanism;   /* text of the mechanism or modifier that decided,
                                NULL when none (default neutral, errors) */
    const char *explanation; /* fail only: exp= text, else the default */
    bool exp_from_record;    /* the explanation came from exp= */
    const char *problem;     /* temperror/permerror: what went wrong */
    const char *record;      /* the domain's SPF record as published, or NULL */
    bool guessed;            /* $spf_result_guessed: spf_guess decided */
    int dns_mech;            /* DNS-querying terms evaluated */
    int void_lookups;
} spf_outcome;

/* Run check_host() for the query's identity.  Never fails: problems are
 * results (temperror, permerror) with out->problem set. */
void spf_check(const spf_query *q, const dns_iface *dns, arena *a, spf_outcome *out);

/* Result names: RFC 7208 ("pass", "permerror"), Exim's older names
 * ("err_perm", "err_temp"), and the Received-SPF form ("Pass"). */
const char *spf_result_name(spf_result r);
const char *spf_result_exim(spf_result r);
/* Parse either naming; returns -1 when s names no result. */
int spf_result_parse(const char *s);

/* Exim's "spf = list" condition: items are result names (either naming,
 * and "invalid"), "!" inverts an item, "*" matches anything; the first
 * item that matches decides (true); no match is false.  The list is an
 * Exim list (colon-separated, "<x" changes the separator). */
bool spf_result_in_list(const char *list, spf_result r, arena *scratch);

/* $spf_header_comment: "receiver: domain of x designates ip as permitted sender" */
const char *spf_header_comment(const spf_query *q, const spf_outcome *o, arena *a);
/* $spf_received: the complete "Received-SPF: ..." header, folded, no CRLF. */
const char *spf_received(const spf_query *q, const spf_outcome *o, arena *a);
/* $spf_smtp_comment: template (Exim's spf_smtp_comment_template, NULL for
 * the default) expanded with the SPF macro rules; for fail with an exp=
 * the record's explanation is used instead. */
const char *spf_smtp_comment(const spf_query *q, const spf_outcome *o,
                             const char *template_, arena *a);

/* ---- pieces shared with the macro expander, tests and fuzzers ---------- */

/* Parse a record ("v=spf1 ...") without evaluating it.  Returns ST_OK, or
 * ST_FAIL with *err set on a syntax error (permerror). */
status spf_record_check(const char *record, arena *a, char **err);

/* The context macros are expanded in. */
typedef struct spf_macro_ctx {
    const char *sender;      /* s */
    const char *local;       /* l */
    const char *sender_dom;  /* o */
    const char *domain;      /* d */
    const char *ip;          /* i, c, v come from it */
    const char *helo;        /* h */
    const char *receiver;    /* r */
    time_t now;              /* t */
    bool in_exp;             /* c, r, t allowed (explanation strings) */
    /* p: validated client name, resolved on demand (counts as a lookup) */
    const char *(*ptr_name)(void *ctx, const char *domain);
    void *ptr_ctx;
} spf_macro_ctx;

/* Expand an SPF macro-string.  Returns ST_OK, ST_FAIL (syntax: *err set). */
status spf_macro_expand(const char *in, size_t len, const spf_macro_ctx *m,
                        arena *a, char **out, char **err);

/* IP helpers: parse text into 16 bytes (IPv4 as IPv4-mapped); *v6 says
 * which family the address is for SPF (IPv4-mapped IPv6 counts as IPv4). */
bool spf_ip_parse(const char *s, unsigned char out[16], bool *v6);

#endif
