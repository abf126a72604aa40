/* fuzz_srs.c: SRS addresses from outside (bounce recipients): reversed in
 * both dialects, forwarded, and checked as Exim inbound_srs local parts. */
#include "msgauth/policy/srs.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048)
        return 0;
    arena *a = arena_new("fuzz", false);
    char *s = arena_memdup(a, data, size);
    const char *secrets[] = { "tops3cr3t", "second" };
    srs_opts o = { .secrets = secrets, .nsecrets = 2, .now = 1577836860,
                   .hash_len = (int)(size % 8), .base64url = size & 1 };
    char *out = NULL, *err = NULL;
    if (srs_reverse(&o, s, a, &out) == SRS_OK)
        srs_reverse(&o, out, a, &out);
    if (srs_forward(&o, s, "example.com", a, &out) == SRS_OK)
        srs_reverse(&o, out, a, &out);
    srs_exim_inbound(s, "K", 1577836860, a, &out);
    srs_exim_inbound(s, "", 1577836860, a, &out);
    srs_exim_encode("K", s, "fwd.example", 1577836860, a, &err);
    arena_free(a);
    return 0;
}
