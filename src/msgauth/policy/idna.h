/* idna.h: domain names with U-labels turned into A-labels (RFC 5891
 * Punycode, "xn--"), as RFC 9989 and RFC 8616 ask before DMARC and SPF
 * lookups.  Lower-cases with libpsl's Unicode mapping; no other IDNA2008
 * checks (the DNS answers for names that are not registered). */
#ifndef POSTERN_MSGAUTH_IDNA_H
#define POSTERN_MSGAUTH_IDNA_H

#include "core/arena.h"

/* name itself when it is ASCII; the A-label form otherwise; NULL when it is
 * not valid UTF-8 or a label would be longer than 63 octets. */
const char *idna_to_alabel(const char *name, arena *a);

#endif
