/* dkim.h: DKIM signatures (RFC 6376, RFC 8301, RFC 8463): verify every
 * DKIM-Signature of a message, and sign one.
 *
 * Verification results use Exim's vocabulary: status none / invalid /
 * fail / pass ($dkim_verify_status) and, for invalid and fail, a reason
 * ($dkim_verify_reason: pubkey_unavailable, pubkey_dns_syntax,
 * pubkey_der_syntax, pubkey_too_short, bodyhash_mismatch,
 * signature_incorrect; "" for other invalid signatures, as in Exim), and
 * a detail text naming the exact problem.  A DNS failure (timeout,
 * SERVFAIL) is "invalid" with reason
 * pubkey_unavailable for Exim, and sets temperror so callers can defer.
 * rsa-sha1 signatures are verified but flagged weak (RFC 8301).
 *
 * No MTA state: DNS goes through the dns_iface given, memory through the
 * arena given. */
#ifndef POSTERN_MSGAUTH_DKIM_H
#define POSTERN_MSGAUTH_DKIM_H

#include "core/arena.h"
#include "dns/dns.h"
#include "msgauth/mail.h"
#include "msgauth/sig/authres.h"
#include "msgauth/sig/sigutil.h"
#include <stdbool.h>
#include <time.h>

#define DKIM_MAX_SIGS 32            /* signatures examined per message */
#define DKIM_NO_LIMIT (-1LL)
#define DKIM_MAX_SIGNED_HEADERS 1000 /* h= names; more is an invalid signature */
#define DKIM_MAX_KEY_BITS 16384     /* larger RSA keys are refused */

typedef enum dkim_status {
    DKIM_NONE = 0, DKIM_INVALID, DKIM_FAIL, DKIM_PASS,
} dkim_status;

const char *dkim_status_name(dkim_status s);   /* "none" "invalid" "fail" "pass" */

/* A parsed DKIM-Signature (or ARC-Message-Signature, which shares it). */
typedef struct dkim_sig {
    const char *v, *a, *b, *bh, *d, *s, *i, *q, *z;
    const char **h;              /* signed header names */
    int nh;
    const char *h_raw;           /* h= as written */
    sig_keytype kt;
    sig_hash hash;
    canon hc, bc;
    long long l;                 /* body length, DKIM_NO_LIMIT if absent */
    long long t, x;              /* -1 if absent */
    unsigned char *sig;          /* decoded b= */
    size_t siglen;
    unsigned char *bhash;        /* decoded bh= */
    size_t bhlen;
    sig_tags tags;
} dkim_sig;

/* Parse a signature's tag list into *out (syntax only; the DKIM-specific
 * requirements are checked by dkim_sig_check()). */
status dkim_sig_parse(arena *a, const char *value, size_t len, dkim_sig *out, const char **err);
/* RFC 6376 6.1.1 checks: required tags, v=1, known a= c= q=, i= within
 * d=, h= includes From, x= not passed at now.  Unless strict, signatures
 * of the pre-RFC drafts (no v=, or v=0.5) are accepted too. */
status dkim_sig_check(arena *a, dkim_sig *s, time_t now, bool strict, const char **err);

/* The checks DKIM-Signature and ARC-Message-Signature share: required
 * tags (a b bh d h s), known a= and c=, base64 of b=/bh=, d= syntax,
 * l= t= x= syntax. */
status dkim_sig_check_common(arena *a, dkim_sig *s, const char **err);

/* A parsed key record (RFC 6376 3.6.1). */
typedef struct dkim_key {
    sig_keytype kt;
    const char *h;               /* acceptable hashes (colon list) or NULL */
    const char *srv;             /* s= service types or NULL */
    const char *g;               /* RFC 4871 granularity or NULL */
    const char *n;               /* notes */
    const char *flags;           /* t= */
    bool testing, strict;
    bool revoked;                /* p= empty */
    unsigned char *p;
    size_t plen;
} dkim_key;

/* Parse a key record.  ST_FAIL with *err for syntax errors and unknown
 * v= or k=. */
status dkim_key_parse(arena *a, const char *txt, size_t len, dkim_key *out, const char **err);

/* Body hashes already computed for this message, by canonicalization,
 * hash and l= (a message with many signatures is canonicalized once per
 * distinct setting).  Zero it per message; NULL disables caching. */
typedef struct dkim_bh_cache {
    int n;
    struct { canon bc; sig_hash h; long long l; size_t len; unsigned char d[64]; } e[8];
} dkim_bh_cache;

typedef struct dkim_verify_opts {
    dns_iface dns;
    dkim_bh_cache *cache;        /* optional; dkim_verify() provides its own */
    time_t now;                  /* 0: time(NULL) */
    int min_rsa_bits;            /* Exim's dkim_verify_min_keysizes: rsa=1024 */
    int min_ed25519_bits;        /* ed25519=250 */
    bool strict;                 /* rsa-sha1 signatures are invalid (RFC 8301) */
    bool rfc_only;               /* refuse pre-RFC draft signatures (no v=, v=0.5, q=dns) */
} dkim_verify_opts;

typedef struct dkim_result {
    dkim_status status;
    const char *reason;          /* $dkim_verify_reason: one of Exim's six values, or "" */
    const char *detail;          /* what exactly was wrong (human text), or "" */
    bool temperror;              /* DNS failure: try later */
    bool weak;                   /* rsa-sha1 */
    bool testing;                /* key t=y */
    const char *domain, *selector, *identity, *algo;
    const char *canon_head, *canon_body;
    const char *headernames;     /* colon list */
    long long bodylength, created, expires;
    int key_bits;
    const char *b_prefix;        /* first 8 chars of b= (RFC 6008 header.b) */
    int hdr_index;               /* index of the DKIM-Signature in the message */
} dkim_result;

/* Verify every DKIM-Signature (at most DKIM_MAX_SIGS).  Returns the
 * number of results stored in *out (0: no signatures, status none). */
int dkim_verify(arena *a, const mail_msg *m, const dkim_verify_opts *o, dkim_result **out);

/* Verify one signature header of m (also used by ARC for AMS, with
 * is_ams set: no v=, i= is the ARC instance). */
void dkim_verify_one(arena *a, const mail_msg *m, int hdr_index, const dkim_verify_opts *o,
                     dkim_result *r);

/* Key lookup, key record checks, body hash and signature check of a
 * parsed and checked signature hdr; r->identity must be set. */
void dkim_verify_parsed(arena *a, const mail_msg *m, const mail_header *hdr, dkim_sig *s,
                        const dkim_verify_opts *o, dkim_result *r);

/* Body hash of m under s's canonicalization, hash and l=. */
size_t dkim_body_hash(arena *a, const mail_msg *m, canon bc, sig_hash h, long long l,
                      unsigned char *out, const char **err);

/* Hash of the headers named in names (bottom-up selection, RFC 6376
 * 5.4.2) followed by the signature header sighdr with its b= emptied and
 * without final CRLF, canonicalized with c.  The header at index exclude
 * (the signature being verified, -1 for none) is never selected. */
size_t dkim_header_hash(arena *a, const mail_msg *m, const char *const *names, int n, canon c,
                        sig_hash h, const mail_header *sighdr, int exclude, unsigned char *out);

/* Fetch and parse the key selector._domainkey.domain; returns ST_OK,
 * ST_DEFER (DNS temporary), ST_NOTFOUND, or ST_FAIL (syntax: *err). */
status dkim_key_fetch(arena *a, const dns_iface *dns, const char *selector, const char *domain,
                      dkim_key *key, const char **err);

typedef struct dkim_sign_opts {
    const char *domain, *selector;
    const char *identity;        /* i=, or NULL */
    sig_key *key;
    sig_hash hash;               /* HASH_SHA256 (sha1 signing is refused) */
    canon hc, bc;
    const char *headers;         /* colon list to sign (see dkim_expand_headers);
                                    NULL: Exim's default list, each present header
                                    once per occurrence */
    const char *hsep;            /* separator written between h= names, default ":" */
    long long timestamp;         /* t=, -1 for none */
    long long expire;            /* x=, -1 for none */
    long long bodylength;        /* l=, -1 for none */
} dkim_sign_opts;

/* The "DKIM-Signature: ...\r\n" field to prepend to m, or NULL with *err. */
char *dkim_sign(arena *a, const mail_msg *m, const dkim_sign_opts *o, const char **err);

/* The Authentication-Results resinfo for r (RFC 8601 dkim=, with
 * header.d/i/s/a/b); r == NULL gives "dkim=none".  invalid maps to
 * permerror, a DNS failure to temperror. */
void dkim_authres(arena *a, const dkim_result *r, authres_result *out);

/* The h= names for a colon list as Exim's dkim_sign_headers reads it: a
 * plain name is signed once (present or not), "=name" once per present
 * header, "+name" once per present header and once more (oversigning).
 * list NULL: the default list, each name as "=name".  Names lower-cased. */
const char **dkim_expand_headers(arena *a, const mail_msg *m, const char *list, int *n);

/* Exim's default list of headers to sign. */
extern const char dkim_default_sign_headers[];

#endif
