/* srs.h: the Sender Rewriting Scheme.
 *
 * Two dialects:
 *  - the Shevek scheme of libsrs2, Mail::SRS, pysrs and postsrsd ("guarded"
 *    SRS0 and SRS1): hash = first hash_len characters of
 *    base64(HMAC-SHA1(secret, lower-case(fields))), timestamp = two base32
 *    characters of the day number modulo 1024;
 *  - Exim's native SRS (${srs_encode}, inbound_srs): SRS0 only, hash = first
 *    four hex digits of HMAC-MD5(secret, lower-case(address)), lower-case
 *    base32 timestamp, at most 10 days old.
 * Nothing here keeps state; the clock is a parameter. */
#ifndef POSTERN_MSGAUTH_SRS_H
#define POSTERN_MSGAUTH_SRS_H

#include "core/arena.h"
#include <stdbool.h>
#include <time.h>

#define SRS_MAX_ADDRESS 512       /* longest address accepted (postsrsd's limit) */
#define SRS_DEFAULT_HASH_LEN 4
#define SRS_DEFAULT_MAX_AGE 21    /* days (postsrsd; Mail::SRS uses 31) */
#define SRS_EXIM_MAX_AGE 10       /* days, Exim's inbound_srs */

typedef enum srs_err {
    SRS_OK = 0,
    SRS_E_NOT_SRS,        /* reverse: not an SRS address */
    SRS_E_NO_DOMAIN,      /* no '@' */
    SRS_E_NO_HASH,
    SRS_E_NO_TIMESTAMP,
    SRS_E_NO_HOST,
    SRS_E_NO_USER,
    SRS_E_HASH,           /* hash does not verify */
    SRS_E_TIMESTAMP,      /* too old, in the future, or not base32 */
    SRS_E_TOO_LONG,
    SRS_E_SECRET,         /* no secret configured */
} srs_err;

typedef struct srs_opts {
    const char *const *secrets; /* secrets[0] signs; every one verifies */
    int nsecrets;
    int hash_len;               /* 0 = SRS_DEFAULT_HASH_LEN */
    int max_age;                /* days; 0 = SRS_DEFAULT_MAX_AGE */
    time_t now;                 /* 0 = time(NULL) */
    bool base64url;             /* emit '-' '_' for '+' '/' (postsrsd) */
    bool always_rewrite;        /* rewrite even addresses in the alias domain */
} srs_opts;

/* Class names used in test vectors and messages ("hash", "not-srs"...). */
const char *srs_err_class(srs_err e);
const char *srs_err_text(srs_err e);

/* Forward: rewrite addr for sending through alias_domain.  Addresses in
 * alias_domain are returned unchanged unless always_rewrite.  SRS0 and SRS1
 * addresses of other domains become SRS1. */
srs_err srs_forward(const srs_opts *o, const char *addr, const char *alias_domain,
                    arena *a, char **out);

/* Reverse: the address an SRS0 or SRS1 address stands for (SRS1 gives back
 * the SRS0 address of the first forwarder). */
srs_err srs_reverse(const srs_opts *o, const char *addr, arena *a, char **out);

/* Exim's ${srs_encode {secret}{return_path}{orig_domain}}: "" when the
 * return path is empty; NULL (with *err) when it is not an address. */
char *srs_exim_encode(const char *secret, const char *return_path, const char *orig_domain,
                      time_t now, arena *a, char **err);

/* Exim's inbound_srs {local_part}{secret}: true when local_part is an Exim
 * SRS0 local part (and, with a non-empty secret, its timestamp is at most
 * SRS_EXIM_MAX_AGE days old and its hash verifies).  *recipient gets the
 * decoded address, lower-cased, quoted when needed ($srs_recipient; not set
 * for an empty secret). */
bool srs_exim_inbound(const char *local_part, const char *secret, time_t now, arena *a,
                      char **recipient);

#endif
