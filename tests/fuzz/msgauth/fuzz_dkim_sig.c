/* fuzz_dkim_sig: DKIM-Signature and DomainKey-Signature tag lists, DKIM
 * key records and public key data, and whole-message DKIM / DomainKeys
 * verification. */
#include "fuzz_common.h"
#include "msgauth/sig/dk.h"
#include "msgauth/sig/dkim.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new("fuzz", true);
    const char *buf = (const char *)data, *err;
    dkim_sig s;
    if (dkim_sig_parse(a, buf, size, &s, &err) == ST_OK)
        dkim_sig_check(a, &s, 1000, false, &err);
    dkim_key k;
    dkim_key_parse(a, buf, size, &k, &err);
    sig_tags t;
    dk_sig_parse(a, buf, size, &t, &err);
    /* the bytes as a key record's decoded p= (DER SPKI / PKCS#1, raw Ed25519) */
    key_free(key_load_public(a, KEY_RSA, data, size, &err));
    key_free(key_load_public(a, KEY_ED25519, data, size, &err));

    mail_msg m;
    char *e;
    if (mail_parse(a, buf, size, &m, &e) == ST_OK) {
        dkim_verify_opts vo = { .dns = fuzz_dns, .now = 1000, .min_rsa_bits = 1024,
                                .min_ed25519_bits = 250 };
        dkim_result *r;
        int n = dkim_verify(a, &m, &vo, &r);
        for (int i = 0; i < n; i++) {
            authres_result ar;
            dkim_authres(a, &r[i], &ar);
            authres_result_text(a, &ar);
        }
        dk_verify_opts dko = { .dns = fuzz_dns };
        dk_result *dr;
        dk_verify(a, &m, &dko, &dr);
    }
    arena_free(a);
    return 0;
}
