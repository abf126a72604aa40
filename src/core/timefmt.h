/* timefmt.h: the date format of mail headers and SMTP banners
 * (RFC 5322: "Sun, 22 Nov 2026 02:08:03 +0000"), in local time. */
#ifndef POSTERN_TIMEFMT_H
#define POSTERN_TIMEFMT_H

#include <stddef.h>
#include <time.h>

#define TIMEFMT_DATE_LEN 64

char *timefmt_rfc5322(time_t t, char *buf, size_t len);

#endif
