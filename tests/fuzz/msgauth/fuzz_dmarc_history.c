/* fuzz_dmarc_history.c: DMARC history files (written by us, but read back
 * by dmarc-report from a file anyone with access could have edited):
 * parsed, and turned into aggregate report XML. */
#include "msgauth/policy/dmarc_report.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    arena *a = arena_new("fuzz", false);
    dmarc_hist *h;
    int bad;
    int n = dmarc_hist_parse((const char *)data, size, a, &h, &bad);
    dmarc_agg_opts o = { .org_name = "org/x!y", .email = "r@x.example", .begin = 0,
                         .end = 0x7fffffffffffLL };
    dmarc_agg_report *rep;
    int nr = dmarc_agg_build(h, n, &o, a, &rep);
    for (int i = 0; i < nr && i < 4; i++)
        dmarc_agg_mail(&rep[i], &o, 1, a);
    for (int i = 0; i < n && i < 4; i++)
        dmarc_hist_format(&h[i], a);
    arena_free(a);
    return 0;
}
