/* dmarc.h: DMARC policy evaluation, in two modes:
 *  - RFC 9989 (DMARCbis): organizational domain and policy record found by
 *    the DNS tree walk, psd= and np= honoured, no pct=, t= testing flag;
 *  - RFC 7489: organizational domain from the Public Suffix List (libpsl,
 *    Exim's dmarc_tld_file), pct= sampling, np= of RFC 9091 honoured.
 * Inputs are the From domains and the SPF and DKIM results (the caller runs
 * those); outputs are Exim's outcome names and texts, the values for the
 * Authentication-Results dmarc part, and what the reports need. */
#ifndef POSTERN_MSGAUTH_DMARC_H
#define POSTERN_MSGAUTH_DMARC_H

#include "core/arena.h"
#include "dns/dns.h"
#include "msgauth/policy/spf.h"
#include <stdbool.h>

#define DMARC_MAX_FROM 8          /* distinct From domains evaluated */
#define DMARC_WALK_MAX 8          /* DNS queries of one tree walk (RFC 9989: at most 5) */

typedef enum dmarc_mode { DMARC_MODE_RFC9989 = 0, DMARC_MODE_RFC7489 } dmarc_mode;

typedef enum dmarc_pol {
    DMARC_POL_UNSET = 0, DMARC_POL_NONE, DMARC_POL_QUARANTINE, DMARC_POL_REJECT,
} dmarc_pol;

typedef struct dmarc_record {
    dmarc_pol p, sp, np;          /* UNSET when absent (or invalid: ignored) */
    bool adkim_strict, aspf_strict;
    int pct;                      /* RFC 7489; 100 when absent */
    bool testing;                 /* RFC 9989 t=y */
    char psd;                     /* RFC 9989 psd=: 'y', 'n', or 'u' (default) */
    const char *rua, *ruf, *fo, *rf;
    unsigned ri;                  /* RFC 7489 ri=, 86400 by default */
} dmarc_record;

/* Parse a TXT record.  ST_OK: a usable policy record; ST_NOTFOUND: not a
 * DMARC record; ST_DECLINED: (RFC 7489 mode) a record without a usable p=
 * and without rua=, which means no DMARC processing (6.6.3); ST_FAIL: a
 * DMARC record with a syntax error (*err). */
status dmarc_record_parse(const char *s, size_t n, dmarc_mode mode, arena *a,
                          dmarc_record *r, char **err);

const char *dmarc_pol_name(dmarc_pol p);   /* "none" "quarantine" "reject", "" unset */

/* The organizational domain of domain (lower case).  RFC 7489 mode uses psl
 * (a psl_ctx_t *, NULL = libpsl's built-in/system list); RFC 9989 mode walks
 * the DNS.  ST_DEFER on DNS failure during the walk. */
status dmarc_org_domain(const char *domain, dmarc_mode mode, const void *psl,
                        const dns_iface *dns, arena *a, const char **org);

/* Load a Public Suffix List file (dmarc_tld_file); NULL path = libpsl's
 * default list.  Returns a psl_ctx_t * to free with dmarc_psl_free. */
void *dmarc_psl_load(const char *path, char **err, arena *a);
void dmarc_psl_free(void *psl);
/* The PSL registrable domain (public suffix plus one label), NULL when
 * domain is a public suffix or not a valid name. */
const char *dmarc_psl_registrable(const void *psl, const char *domain, arena *a);

typedef struct dmarc_dkim {       /* one DKIM signature's result */
    const char *domain;           /* d= */
    const char *selector;
    const char *result;           /* "pass", "fail", "none", "temperror", ... */
} dmarc_dkim;

typedef struct dmarc_input {
    dmarc_mode mode;
    const void *psl;              /* RFC 7489 mode */
    const char *const *from_domains;  /* every From address domain ("" if none) */
    int nfrom;
    int nfrom_headers;
    spf_result spf;               /* SPF result for spf_domain */
    const char *spf_domain;       /* MAIL FROM domain, or HELO for <> */
    bool spf_helo;                /* spf_domain is the HELO identity */
    const dmarc_dkim *dkim;
    int ndkim;
    int pct_roll;                 /* 0..99 sample for pct=; -1 = always apply */
} dmarc_input;

typedef enum dmarc_outcome {      /* Exim's $dmarc_status values */
    DMARC_ACCEPT = 0, DMARC_REJECT, DMARC_QUARANTINE, DMARC_NONE, DMARC_NORECORD,
    DMARC_NOFROM, DMARC_TEMPERROR, DMARC_OFF,
} dmarc_outcome;

typedef struct dmarc_result {
    dmarc_outcome outcome;
    const char *status_text;      /* $dmarc_status_text (Exim's labels) */
    const char *detail;           /* a sentence saying why, for logs */
    const char *ar;               /* RFC 8601 result: pass fail none temperror permerror */
    const char *ar_reason;        /* comment for the A-R dmarc part, or NULL */
    const char *from_domain;      /* header.from ("" when none) */
    const char *used_domain;      /* $dmarc_used_domain: where the record was */
    const char *org_domain;
    const char *domain_policy;    /* $dmarc_domain_policy ("" when no record) */
    dmarc_pol applied;            /* policy requested for this message (p/sp/np) */
    dmarc_pol disposition;        /* after pct= / t=y */
    bool spf_aligned, dkim_aligned;
    /* identifiers aligned with the From domain whose check did not pass
     * (RFC 9991 Identity-Alignment) */
    bool spf_aligned_fail;
    const dmarc_dkim *dkim_aligned_fail;
    bool sampled_out;             /* pct= or t=y lowered the policy */
    bool have_record;
    dmarc_record rec;
    dmarc_mode mode;
} dmarc_result;

const char *dmarc_outcome_name(dmarc_outcome o);
const char *dmarc_status_label(dmarc_outcome o);
/* Exim's "dmarc_status = list" condition (same rules as spf_result_in_list). */
bool dmarc_outcome_in_list(const char *list, dmarc_outcome o, arena *scratch);

void dmarc_evaluate(const dmarc_input *in, const dns_iface *dns, arena *a, dmarc_result *out);

/* "dmarc=fail (reason) header.from=example.com policy.dmarc=reject" */
char *dmarc_authres_text(const dmarc_result *r, arena *a);

#endif
