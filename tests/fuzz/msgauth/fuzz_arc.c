/* fuzz_arc: ARC header fields (AS, AMS, AAR) and chain validation, and
 * the AAR built from a message's Authentication-Results. */
#include "fuzz_common.h"
#include "msgauth/sig/arc.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new("fuzz", true);
    mail_msg m;
    char *e;
    if (mail_parse(a, (const char *)data, size, &m, &e) == ST_OK) {
        arc_verify_opts vo = { .dns = fuzz_dns, .now = 1000, .min_rsa_bits = 1024 };
        arc_result r;
        arc_verify(a, &m, &vo, &r);
        authres_result ar;
        arc_authres(a, &r, &ar);
        authres_result_text(a, &ar);
        arc_build_aar(a, &m, "lists.example.org", 1);
    }
    arena_free(a);
    return 0;
}
