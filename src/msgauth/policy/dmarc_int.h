/* dmarc_int.h: pieces shared by the DMARC files of src/msgauth/policy. */
#ifndef POSTERN_MSGAUTH_DMARC_INT_H
#define POSTERN_MSGAUTH_DMARC_INT_H

#include "msgauth/policy/dmarc.h"

typedef enum dmarc_fetch {
    DMARC_F_NONE, DMARC_F_FOUND, DMARC_F_TEMP, DMARC_F_PERM,
    DMARC_F_NOPOLICY,   /* RFC 7489 6.6.3: a record without a usable p=: no DMARC */
} dmarc_fetch;

/* Look up _dmarc.<domain>: exactly one DMARC record is a result. */
dmarc_fetch dmarc_fetch_record(const char *domain, dmarc_mode mode, const dns_iface *dns,
                               arena *a, dmarc_record *rec, char **err);

/* RFC 9989 tree walk targets for domain, longest first; returns how many. */
int dmarc_walk_targets(const char *domain, const char **out, int max);

#endif
