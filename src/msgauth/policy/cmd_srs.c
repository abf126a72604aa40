/* cmd_srs.c: "postern-auth srs-forward" and "srs-reverse". */
#include "msgauth/cli.h"
#include "msgauth/policy/cliutil.h"
#include "msgauth/policy/cmds.h"
#include "msgauth/policy/srs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRS_MAX_SECRETS 16
#define FWD_SYNOPSIS "--secret S [--secret OLD...] --domain D [--exim] [--hash-length N]\n" \
    "    [--base64url] [--always] ADDR"
#define REV_SYNOPSIS "--secret S [--secret OLD...] [--exim] [--hash-length N] [--max-age DAYS] ADDR"

static int srs_cmd(int argc, char **argv, bool forward)
{
    pol_common c = { 0 };
    const char *secrets[SRS_MAX_SECRETS];
    srs_opts o = { .secrets = secrets };
    const char *domain = NULL, *addr = NULL;
    bool exim = false;
    const char *syn = forward ? FWD_SYNOPSIS : REV_SYNOPSIS;
    for (int i = 1; i < argc; i++) {
        int r = pol_common_opt(&c, argc, argv, &i);
        if (r == -2)
            return pol_help(argv[0], syn);
        if (r < 0)
            return AUTH_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--secret") == 0) {
            if (!(v = pol_optval(argc, argv, &i)))
                return AUTH_EXIT_USAGE;
            if (o.nsecrets == SRS_MAX_SECRETS)
                return pol_usage(argv[0], syn);
            secrets[o.nsecrets++] = v;
        } else if (forward && strcmp(a, "--domain") == 0) {
            if (!(domain = pol_optval(argc, argv, &i)))
                return AUTH_EXIT_USAGE;
        } else if (strcmp(a, "--hash-length") == 0 || strcmp(a, "--max-age") == 0) {
            if (!(v = pol_optval(argc, argv, &i)))
                return AUTH_EXIT_USAGE;
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 27)
                return pol_usage(argv[0], syn);
            if (a[2] == 'h')
                o.hash_len = (int)n;
            else
                o.max_age = (int)n;
        } else if (strcmp(a, "--exim") == 0) {
            exim = true;
        } else if (forward && strcmp(a, "--base64url") == 0) {
            o.base64url = true;
        } else if (forward && strcmp(a, "--always") == 0) {
            o.always_rewrite = true;
        } else if (a[0] == '-' && a[1] == '-') {
            return pol_usage(argv[0], syn);
        } else if (!addr) {
            addr = a;
        } else {
            return pol_usage(argv[0], syn);
        }
    }
    if (!addr || !o.nsecrets || (forward && !domain))
        return pol_usage(argv[0], syn);
    o.now = c.now;
    arena *ar = arena_new("srs", false);
    char *out = NULL, *err = NULL;
    srs_err e = SRS_OK;
    if (exim && forward) {
        out = srs_exim_encode(secrets[0], addr, domain, c.now, ar, &err);
        if (!out)
            e = SRS_E_NO_DOMAIN;
    } else if (exim) {
        /* inbound_srs: the argument is a local part (an address's local
         * part is taken when one is given) */
        const char *lp = addr, *at = strrchr(addr, '@');
        if (at)
            lp = arena_strndup(ar, addr, (size_t)(at - addr));
        bool ok = false;
        for (int i = 0; i < o.nsecrets && !ok; i++)
            ok = srs_exim_inbound(lp, secrets[i], c.now, ar, &out);
        if (!ok)
            e = out ? SRS_E_HASH : SRS_E_NOT_SRS;
    } else if (forward) {
        e = srs_forward(&o, addr, domain, ar, &out);
    } else {
        e = srs_reverse(&o, addr, ar, &out);
    }
    if (c.json) {
        gstr g;
        gstr_init(&g, ar, 256);
        bool first = true;
        gstr_catc(&g, '{');
        json_kv(&g, &first, "result", e == SRS_OK ? "ok" : "error");
        json_kv(&g, &first, "address", e == SRS_OK ? out : NULL);
        json_kv(&g, &first, "error", e == SRS_OK ? NULL : srs_err_class(e));
        json_kv(&g, &first, "message", e == SRS_OK ? NULL : err ? err : srs_err_text(e));
        gstr_cat(&g, "}\n");
        fputs(g.s, stdout);
    } else if (e == SRS_OK) {
        printf("%s\n", out);
    } else {
        fprintf(stderr, "postern-auth %s: error:%s: %s\n", argv[0], srs_err_class(e),
                err ? err : srs_err_text(e));
    }
    arena_free(ar);
    return e == SRS_OK ? AUTH_EXIT_OK : AUTH_EXIT_NOTPASS;
}

int cmd_srs_forward(int argc, char **argv) { return srs_cmd(argc, argv, true); }
int cmd_srs_reverse(int argc, char **argv) { return srs_cmd(argc, argv, false); }
