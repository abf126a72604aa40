/* cmd_authres.c: postern-auth authres: run every signature check of
 * src/msgauth/sig (DKIM, ARC, DomainKeys) on a message and print one
 * Authentication-Results field for the ADMD (RFC 8601), with the
 * results of earlier checks (--add "spf=pass smtp.mailfrom=...") kept. */
#include "msgauth/cli.h"
#include "msgauth/sig/arc.h"
#include "msgauth/sig/clicmd.h"
#include "msgauth/sig/dk.h"
#include "msgauth/sig/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_spec spec = {
    "--srv-id ADMD [--dns ip@port | --dns-zone FILE] [--now T] [--add RESINFO]...\n"
    "       [--prepend] < message\n",
    "Checks every DKIM signature, the ARC chain and DomainKeys signatures and\n"
    "prints one Authentication-Results field for ADMD (dkim=, arc=, and\n"
    "domainkeys= when the message has DomainKey-Signature fields).\n"
    "  --add RESINFO     include this result too (e.g. from an SPF check);\n"
    "                    may be repeated\n"
    "  --prepend         write the whole message with the field first\n"
    "Exit status 0 when ARC and every DKIM signature passed.\n",
};

int cmd_authres(int argc, char **argv)
{
    /* --add may repeat: collect those first, pass the rest to cli_parse */
    const char *adds[32];
    int nadd = 0, nargs = 0;
    bool prepend = false;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--add") == 0 && i + 1 < argc && nadd < 32)
            adds[nadd++] = argv[++i];
        else if (strcmp(argv[i], "--prepend") == 0)
            prepend = true;
        else
            rest[nargs++] = argv[i];
    }
    cli_opts o;
    int rc = cli_parse(nargs, rest, &spec, &o);
    free(rest);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    if (!o.srv_id) {
        fprintf(stderr, "postern-auth authres: --srv-id is required\n");
        return AUTH_EXIT_USAGE;
    }
    arena *a = arena_new("authres", false);
    dns_iface dns;
    dns_resolver *res = NULL;
    mail_msg m;
    if ((rc = cli_read_message(a, &m)) || (rc = cli_setup_dns(a, &o, &dns, &res)))
        goto out;
    authres_result *ar = arena_calloc(a, sizeof *ar * (DKIM_MAX_SIGS + DK_MAX_SIGS + 34));
    int n = 0;
    for (int i = 0; i < nadd; i++) {
        /* parse "method=result props" through the A-R parser */
        authres tmp;
        char *err;
        const char *v = arena_printf(a, "x; %s", adds[i]);
        if (authres_parse(a, v, strlen(v), &tmp, &err) != ST_OK || tmp.nres != 1) {
            fprintf(stderr, "postern-auth authres: bad --add %s\n", adds[i]);
            rc = AUTH_EXIT_USAGE;
            goto out;
        }
        ar[n++] = tmp.res[0];
    }
    bool ok = true, temp = false;
    dkim_verify_opts dvo = { .dns = dns, .now = (time_t)o.now, .min_rsa_bits = o.min_rsa_bits,
                             .min_ed25519_bits = 250, .strict = o.strict };
    dkim_result *dr;
    int nd = dkim_verify(a, &m, &dvo, &dr);
    for (int i = 0; i < nd; i++) {
        dkim_authres(a, &dr[i], &ar[n++]);
        ok &= dr[i].status == DKIM_PASS;
        temp |= dr[i].temperror;
    }
    if (nd == 0) {
        dkim_authres(a, NULL, &ar[n++]);
        ok = false;
    }
    arc_verify_opts avo = { .dns = dns, .now = (time_t)o.now, .min_rsa_bits = o.min_rsa_bits };
    arc_result arr;
    arc_verify(a, &m, &avo, &arr);
    arc_authres(a, &arr, &ar[n++]);
    ok &= arr.state != ARC_FAIL;
    temp |= arr.temperror;
    if (mail_find(&m, "domainkey-signature", 0) >= 0) {
        dk_verify_opts kvo = { .dns = dns };
        dk_result *kr;
        int nk = dk_verify(a, &m, &kvo, &kr);
        for (int i = 0; i < nk; i++)
            dk_authres(a, &kr[i], &ar[n++]);
    }
    char *field = authres_header(a, o.srv_id, ar, n);
    if (prepend)
        cli_write_signed(field, &m, a);
    else
        fputs(field, stdout);
    rc = temp ? AUTH_EXIT_TEMP : ok ? AUTH_EXIT_OK : AUTH_EXIT_NOTPASS;
out:
    if (res)
        dns_resolver_free(res);
    arena_free(a);
    return rc;
}
