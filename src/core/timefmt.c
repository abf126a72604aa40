/* timefmt.c: RFC 5322 dates. */
#include "core/timefmt.h"

char *timefmt_rfc5322(time_t t, char *buf, size_t len)
{
    struct tm tm;
    localtime_r(&t, &tm);
    if (!strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm) && len)
        buf[0] = '\0';
    return buf;
}
