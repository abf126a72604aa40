/* spf_int.h: internal pieces of the SPF module shared by its files (record
 * parser, evaluator, texts).  Not for use outside src/msgauth/policy. */
#ifndef POSTERN_MSGAUTH_SPF_INT_H
#define POSTERN_MSGAUTH_SPF_INT_H

#include "msgauth/policy/spf.h"

typedef enum spf_mech {
    SPF_M_ALL, SPF_M_INCLUDE, SPF_M_A, SPF_M_MX, SPF_M_PTR, SPF_M_IP4,
    SPF_M_IP6, SPF_M_EXISTS,
} spf_mech;

typedef struct spf_term {
    spf_mech mech;
    char qual;                /* '+', '-', '~', '?' */
    const char *dspec;        /* domain-spec (macro-string) or NULL */
    size_t dlen;
    int cidr4, cidr6;         /* prefix lengths; defaults 32 / 128 */
    unsigned char net[16];    /* ip4 (mapped) / ip6 network */
    const char *text;         /* the term as written */
} spf_term;

typedef struct spf_record {
    spf_term *terms;
    int nterms;
    const char *redirect;     /* domain-spec, or NULL */
    size_t redirect_len;
    const char *exp;
    size_t exp_len;
} spf_record;

/* Is s (one TXT record) an SPF record: "v=spf1" then space or end? */
bool spf_is_record(const char *s, size_t n);

/* Parse a record already known to start with v=spf1 (RFC 7208 section 12
 * grammar).  ST_FAIL with *err on any syntax error. */
status spf_record_parse(const char *s, size_t n, arena *a, spf_record *r, char **err);

/* Syntax check of a domain-spec: a valid macro-string whose end is either
 * a macro-expand or "." toplabel ["."]. */
bool spf_domain_spec_ok(const char *s, size_t n);

/* Syntax of a macro-string without expanding it; c, r, t only when
 * in_exp, spaces only when in_exp. */
bool spf_macro_syntax_ok(const char *s, size_t n, bool in_exp);

/* Is name (after expansion) a syntactically valid multi-label domain? */
bool spf_domain_ok(const char *name, bool need_dot);

#endif
