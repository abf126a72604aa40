/* fuzz_authres: Authentication-Results parsing and re-building, and the
 * message splitter and address-list parser of mail.c. */
#include "msgauth/mail.h"
#include "msgauth/sig/authres.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena *a = arena_new("fuzz", true);
    const char *buf = (const char *)data;
    authres ar;
    char *err;
    authres_parse(a, buf, size, &ar, &err);
    if (ar.authserv_id) {
        char *v = authres_build(a, ar.authserv_id, ar.res, ar.nres);
        authres again;
        authres_parse(a, v, strlen(v), &again, &err);
    }
    mail_addr *ad;
    mail_addr_list(a, buf, size, &ad);
    mail_msg m;
    if (mail_parse(a, buf, size, &m, &err) == ST_OK) {
        const char **d;
        int nf;
        mail_from_domains(a, &m, &d, &nf);
        for (int i = 0; i < m.nhdr; i++)
            mail_unfold(a, &m.hdr[i]);
        size_t len;
        mail_render(a, &m, &len);
    }
    arena_free(a);
    return 0;
}
