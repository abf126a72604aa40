/* arc.h: Authenticated Received Chain (RFC 8617): chain validation and
 * sealing.
 *
 * Verification reports what Exim exposes: $arc_state (none, pass, fail),
 * $arc_state_reason (why it failed), $arc_domains (the AS d= of each
 * instance, colon list in chain order; an instance whose set is broken
 * gives an empty element) and $arc_oldest_pass (lowest instance whose AMS
 * still validates, 0 when not computed).
 *
 * Sealing builds the ARC-Authentication-Results from every
 * Authentication-Results field of the ADMD (not just the first, unlike
 * Exim; malformed A-R fields of other ADMDs are ignored), then the
 * ARC-Message-Signature and the ARC-Seal, with the tags in alphabetical
 * order (the ValiMail suite's standard form), relaxed/relaxed. */
#ifndef POSTERN_MSGAUTH_ARC_H
#define POSTERN_MSGAUTH_ARC_H

#include "core/arena.h"
#include "dns/dns.h"
#include "msgauth/mail.h"
#include "msgauth/sig/authres.h"
#include "msgauth/sig/dkim.h"
#include "msgauth/sig/sigutil.h"

#define ARC_MAX_INSTANCE 50

typedef enum arc_state { ARC_NONE = 0, ARC_PASS, ARC_FAIL } arc_state;

const char *arc_state_name(arc_state s);   /* "none" "pass" "fail" */

typedef struct arc_result {
    arc_state state;
    const char *reason;       /* $arc_state_reason ("" unless fail) */
    bool temperror;           /* a key lookup failed temporarily */
    int instances;            /* highest instance (chain length) */
    int oldest_pass;          /* $arc_oldest_pass */
    const char *domains;      /* $arc_domains */
    const char *ams_domain;   /* d= of the newest AMS */
    const char *as_domain;    /* d= of the newest AS */
} arc_result;

typedef struct arc_verify_opts {
    dns_iface dns;
    time_t now;               /* 0: time(NULL) */
    int min_rsa_bits;         /* 1024 */
} arc_verify_opts;

void arc_verify(arena *a, const mail_msg *m, const arc_verify_opts *o, arc_result *r);

/* "arc=pass (i=2) header.oldest-pass=N" resinfo for an
 * Authentication-Results field; N follows RFC 8617 (0 when every AMS
 * validates), unlike $arc_oldest_pass. */
void arc_authres(arena *a, const arc_result *r, authres_result *out);

typedef struct arc_sign_opts {
    const char *srv_id;       /* the ADMD's authserv-id */
    const char *domain, *selector;
    sig_key *key;
    const char *headers;      /* colon list for the AMS h=; NULL: DKIM's default */
    long long timestamp;      /* t= on AMS and AS, -1 none */
    long long expire;         /* x= on the AMS, -1 none */
    const char *cv;           /* "none"/"pass"/"fail" forced, or NULL: from the
                                 arc= of the ADMD's A-R, else by verification */
    arc_verify_opts verify;   /* for verification when cv is not known */
} arc_sign_opts;

/* The three fields (ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results, in that order, CRLF-terminated) to prepend
 * to m.  Returns NULL with *err when the message cannot be sealed (no
 * A-R for the ADMD, chain already failed, too many instances...);
 * *temp is set when the failure is temporary (DNS). */
char *arc_seal(arena *a, const mail_msg *m, const arc_sign_opts *o, const char **err, bool *temp);

/* The AAR value ("i=N; srv-id; res1;\r\n\tres2") from every A-R field of
 * srv_id in m; NULL if there is none. */
char *arc_build_aar(arena *a, const mail_msg *m, const char *srv_id, int instance);

#endif
