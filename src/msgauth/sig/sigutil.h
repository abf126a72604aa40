/* sigutil.h: pieces shared by DKIM, ARC and DomainKeys: tag=value lists
 * (RFC 6376 3.2), canonicalization (3.4, RFC 4870 3.4), base64, keys and
 * the RSA / Ed25519 primitives over OpenSSL EVP.  Internal to sig/. */
#ifndef POSTERN_MSGAUTH_SIGUTIL_H
#define POSTERN_MSGAUTH_SIGUTIL_H

#include "core/arena.h"
#include "core/gstr.h"
#include "core/status.h"
#include "msgauth/mail.h"
#include <stdbool.h>
#include <stddef.h>

/* ---- tag lists ---------------------------------------------------------- */

#define TAGS_MAX 64

typedef struct sig_tag {
    const char *name;     /* NUL-terminated, as written (case kept) */
    const char *value;    /* NUL-terminated, surrounding FWS removed */
} sig_tag;

typedef struct sig_tags {
    sig_tag t[TAGS_MAX];
    int n;
} sig_tags;

/* Parse "a=b; c = d ;" into *out.  ST_FAIL with *err on syntax errors,
 * duplicate tags or more than TAGS_MAX tags. */
status tags_parse(arena *a, const char *s, size_t len, sig_tags *out, const char **err);
/* Value of tag name (case-sensitive, as RFC 6376 says), or NULL. */
const char *tags_get(const sig_tags *t, const char *name);
/* Copy of v with every whitespace character removed. */
char *str_nows(arena *a, const char *v);

/* ---- canonicalization --------------------------------------------------- */

typedef enum canon { CANON_SIMPLE, CANON_RELAXED, CANON_NOFWS } canon;

/* Parse "relaxed/simple" (body defaults to simple).  false if unknown. */
bool canon_parse(const char *s, canon *head, canon *body);
const char *canon_name(canon c);

/* Append the canonical form of header h to g (with final CRLF for simple,
 * with CRLF for relaxed/nofws too: callers strip the last one). */
void canon_header(gstr *g, canon c, const mail_header *h);
/* Canonical body; for CANON_NOFWS the DomainKeys rules. */
char *canon_body(arena *a, canon c, const char *body, size_t len, size_t *outlen);

/* ---- base64 -------------------------------------------------------------- */

/* Decode (whitespace ignored).  NULL on bad input. */
unsigned char *b64_decode(arena *a, const char *s, size_t *outlen);
char *b64_encode(arena *a, const unsigned char *p, size_t n);

/* ---- keys and signatures ------------------------------------------------- */

typedef enum sig_keytype { KEY_RSA, KEY_ED25519 } sig_keytype;
typedef enum sig_hash { HASH_SHA1, HASH_SHA256 } sig_hash;

typedef struct sig_key sig_key;   /* wraps an EVP_PKEY: release with key_free() */

/* Private key from file contents: PEM (PKCS#1, PKCS#8, any OpenSSL knows),
 * or the base64 of a raw 32-byte Ed25519 seed. */
sig_key *key_load_private(arena *a, const char *data, size_t len, const char **err);
/* Public key from the decoded p= of a key record: SubjectPublicKeyInfo or
 * PKCS#1 RSAPublicKey for RSA, 32 raw bytes for Ed25519. */
sig_key *key_load_public(arena *a, sig_keytype kt, const unsigned char *der, size_t len,
                         const char **err);
void key_free(sig_key *k);          /* NULL is fine */
sig_keytype key_type(const sig_key *k);
int key_bits(const sig_key *k);
/* Public key as the base64 p= value of a key record. */
char *key_public_b64(arena *a, const sig_key *k);

/* Digest of data. */
size_t hash_buf(sig_hash h, const void *data, size_t len, unsigned char *out);

/* Sign / verify a digest: RSA PKCS#1 v1.5 over the digest, Ed25519 (RFC
 * 8463) over the digest bytes. */
unsigned char *sig_sign(arena *a, const sig_key *k, sig_hash h, const unsigned char *dig,
                        size_t diglen, size_t *siglen);
bool sig_verify(const sig_key *k, sig_hash h, const unsigned char *dig, size_t diglen,
                const unsigned char *sig, size_t siglen);

/* ---- misc ---------------------------------------------------------------- */

/* Fold a "tag=value; tag=value" header value for output at width 76:
 * breaks after "; ", and inside long b=/bh= values if break_b (not for
 * ARC, whose seal covers the AMS as written: folding inside b= would
 * become a space in the sealed text). */
char *fold_tags(arena *a, const char *name, const char *value, bool break_b);
/* field (a folded "Name: ...b=\r\n") with the base64 b64 appended to
 * the b= tag, folded; the result ends in CRLF. */
char *append_b(arena *a, const char *field, const char *b64);
/* *out = h with the value of tag b= (and the whitespace around it)
 * removed (RFC 6376 3.7), for hashing the signature header itself. */
void strip_b_value(arena *a, const mail_header *h, mail_header *out);
/* Domain comparison helpers. */
bool domain_eq(const char *a, const char *b);
bool domain_within(const char *sub, const char *parent);   /* sub == parent or below */
/* Labels of letters, digits, '-', '_' (or UTF-8), none empty. */
bool domain_syntax_ok(const char *d);

#endif
