/* dk.h: DomainKeys (RFC 4870, historic; Exim's old dk_* interface from
 * the seed): verify DomainKey-Signature fields and sign.
 *
 * Outcomes are the seed's $dk_status words: "good", "bad", "no signature",
 * "no key", "bad format", "non-participant", "revoked"; policy flags
 * $dk_signsall (o=- in _domainkey.<domain>) and $dk_testing (t=y in the
 * policy or the key); the sender ($dk_sender, $dk_sender_domain,
 * $dk_sender_local_part) comes from the first signed Sender: field,
 * else From: ($dk_sender_source "sender" / "from").
 *
 * An unsigned message is "no signature" whatever the sender's policy
 * says (the flags tell), as in Exim, so ACLs written for Exim's dk_status
 * keep matching; "non-participant" is part of the vocabulary but, as with
 * Exim's library, no check produces it. */
#ifndef POSTERN_MSGAUTH_DK_H
#define POSTERN_MSGAUTH_DK_H

#include "core/arena.h"
#include "dns/dns.h"
#include "msgauth/mail.h"
#include "msgauth/sig/authres.h"
#include "msgauth/sig/sigutil.h"
#include <stdbool.h>

#define DK_MAX_SIGS 8

typedef enum dk_status {
    DK_GOOD, DK_BAD, DK_NOSIG, DK_NOKEY, DK_BADFORMAT, DK_NONPARTICIPANT, DK_REVOKED,
} dk_status;

const char *dk_status_name(dk_status s);    /* the seed's words */

typedef struct dk_result {
    dk_status status;
    const char *result;          /* $dk_result: human-readable detail */
    bool temperror;              /* key or policy lookup failed temporarily */
    bool signsall, testing, is_signed;
    const char *domain, *selector, *canon;
    const char *sender;          /* local@domain, or NULL */
    const char *sender_local, *sender_domain;
    const char *sender_source;   /* "from", "sender" or "0" */
} dk_result;

typedef struct dk_verify_opts {
    dns_iface dns;
} dk_verify_opts;

/* Verify every DomainKey-Signature (at most DK_MAX_SIGS); an unsigned
 * message gives one result (no signature / non-participant). */
int dk_verify(arena *a, const mail_msg *m, const dk_verify_opts *o, dk_result **out);

/* The Authentication-Results resinfo (RFC 8601 "domainkeys"): good =
 * pass, bad = fail, no signature / non-participant = none, DNS failure =
 * temperror, other problems = permerror. */
void dk_authres(arena *a, const dk_result *r, authres_result *out);

/* Parse a DomainKey-Signature value into tags and check it (fuzzed). */
status dk_sig_parse(arena *a, const char *value, size_t len, sig_tags *t, const char **err);

typedef struct dk_sign_opts {
    const char *domain;          /* NULL: the sender's domain */
    const char *selector;
    sig_key *key;                /* RSA */
    canon c;                     /* CANON_SIMPLE or CANON_NOFWS */
    const char *headers;         /* h= colon list, or NULL: sign every header */
} dk_sign_opts;

/* The "DomainKey-Signature: ...\r\n" field to prepend, or NULL with *err. */
char *dk_sign(arena *a, const mail_msg *m, const dk_sign_opts *o, const char **err);

#endif
