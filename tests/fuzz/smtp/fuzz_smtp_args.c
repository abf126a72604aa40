/* fuzz_smtp_args.c: MAIL FROM / RCPT TO argument parsing. The first byte
 * selects MAIL (even) or RCPT (odd) and ESMTP on/off. */
#include "smtp/smtp_cmd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    arena *a = arena_new("fuzz", false);
    if (data[0] & 1) {
        smtp_rcpt_args r;
        if (!smtp_parse_rcpt(s, a, &r) && (!r.address || !*r.address))
            abort();   /* contract: success means a non-empty address */
    } else {
        smtp_mail_args m;
        if (!smtp_parse_mail(s, data[0] & 2, a, &m) && !m.address)
            abort();
    }
    arena_free(a);
    free(s);
    return 0;
}
