/* fuzz_common.h: a resolver for the msgauth fuzz targets: every key
 * query gets one fixed key (RSA, or Ed25519 for selectors starting "ed"),
 * policy queries "o=-", so parsing, canonicalization and hashing run to
 * the signature check. */
#ifndef POSTERN_FUZZ_MSGAUTH_COMMON_H
#define POSTERN_FUZZ_MSGAUTH_COMMON_H

#include "dns/dns.h"
#include <string.h>

static const char fuzz_rsa_rec[] = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC0NXIHjQCLKCPOhsXixSWScWBHsUSB0KuFjuyI/j83ZlT+KEhaN/z7rWfufbfKzFJj+uQ47MhQM2EgRlXzPetNzE/e20f3IIxbtSjOTW9/jfzHsTQU9QKXGXcvM8LQ4A/QavShCuNdY/QQZpKlx7P0nnAaEIbkZ9mH1nLZsNSapQIDAQAB";
static const char fuzz_ed_rec[] = "v=DKIM1; k=ed25519; p=1l4sXgD1fgtsBAWJ8ANPSfz31p2QbuAlrdQ99oNmP2E=";

static status fuzz_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    if (type != DNS_T_TXT || strncmp(name, "nx", 2) == 0) {
        out->st = ST_NOTFOUND;
        return ST_NOTFOUND;
    }
    if (strncmp(name, "tmp", 3) == 0) {
        out->st = ST_DEFER;
        return ST_DEFER;
    }
    const char *t = strncmp(name, "_domainkey.", 11) == 0 ? "o=-; t=y"
                  : strncmp(name, "ed", 2) == 0 ? fuzz_ed_rec : fuzz_rsa_rec;
    out->rr = arena_calloc(a, sizeof(dns_rr));
    out->rr[0].type = DNS_T_TXT;
    out->rr[0].text = t;
    out->rr[0].text_len = strlen(t);
    out->nrr = 1;
    out->st = ST_OK;
    return ST_OK;
}

static const dns_iface fuzz_dns = { fuzz_lookup, NULL };

#endif
