/* fuzz_acl_hdr.c: the address-list scanner behind verify = header_syntax
 * and verify = not_blind, on arbitrary header values (outside input). */
#include "acl/acl_int.h"
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return 0;
    static arena *a;
    if (!a)
        a = arena_new("fuzz", false);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *failing = NULL;
    const char *e = acl_hdr_syntax(a, text, size & 1, &failing);
    if (e && !failing)
        abort();        /* a failure names the failing address */
    const char **addrs;
    int n = acl_hdr_addresses(a, text, &addrs);
    for (int i = 0; i < n; i++)
        if (!addrs[i])
            abort();
    arena_reset(a);
    free(text);
    return 0;
}
