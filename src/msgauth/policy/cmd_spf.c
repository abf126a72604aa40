/* cmd_spf.c: "postern-auth spf": one SPF check from the command line. */
#include "msgauth/cli.h"
#include "msgauth/policy/cliutil.h"
#include "msgauth/policy/cmds.h"
#include "msgauth/policy/spf.h"

#include <stdio.h>
#include <string.h>

#define SPF_SYNOPSIS "--ip IP --sender ADDR --helo NAME [--received-spf] [--helo-identity]\n" \
    "    [--receiver NAME] [--guess [RECORD]] [--default-exp TEXT] [--smtp-template T]"

int spf_exit_code(spf_result r)
{
    if (r == SPF_PASS)
        return AUTH_EXIT_OK;
    return r == SPF_TEMPERROR ? AUTH_EXIT_TEMP : AUTH_EXIT_NOTPASS;
}

int cmd_spf(int argc, char **argv)
{
    pol_common c = { 0 };
    spf_query q = { 0 };
    bool received = false;
    const char *tmpl = NULL;
    for (int i = 1; i < argc; i++) {
        int r = pol_common_opt(&c, argc, argv, &i);
        if (r == -2)
            return pol_help(argv[0], SPF_SYNOPSIS);
        if (r < 0)
            return AUTH_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *o = argv[i];
        const char **dst = NULL;
        if (strcmp(o, "--ip") == 0) dst = &q.ip;
        else if (strcmp(o, "--sender") == 0) dst = &q.sender;
        else if (strcmp(o, "--helo") == 0) dst = &q.helo;
        else if (strcmp(o, "--receiver") == 0) dst = &q.receiver;
        else if (strcmp(o, "--default-exp") == 0) dst = &q.default_exp;
        else if (strcmp(o, "--smtp-template") == 0) dst = &tmpl;
        else if (strcmp(o, "--received-spf") == 0) { received = true; continue; }
        else if (strcmp(o, "--helo-identity") == 0) { q.helo_identity = true; continue; }
        else if (strcmp(o, "--guess") == 0) {
            q.guess = SPF_DEFAULT_GUESS;
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                q.guess = argv[++i];
            continue;
        } else
            return pol_usage(argv[0], SPF_SYNOPSIS);
        if (!(*dst = pol_optval(argc, argv, &i)))
            return AUTH_EXIT_USAGE;
    }
    if (!q.ip || (!q.sender && !q.helo))
        return pol_usage(argv[0], SPF_SYNOPSIS);
    arena *a = arena_new("spf", false);
    dns_iface dns;
    if (!pol_dns(&c, a, &dns)) {
        arena_free(a);
        return AUTH_EXIT_TEMP;
    }
    q.now = c.now;
    spf_outcome o;
    spf_check(&q, &dns, a, &o);
    const char *rcv = spf_received(&q, &o, a);
    const char *cm = spf_header_comment(&q, &o, a);
    const char *smtp = spf_smtp_comment(&q, &o, tmpl, a);
    if (c.json) {
        gstr g;
        gstr_init(&g, a, 512);
        bool first = true;
        gstr_catc(&g, '{');
        json_kv(&g, &first, "result", spf_result_name(o.result));
        json_kv(&g, &first, "exim_result", spf_result_exim(o.result));
        json_kv(&g, &first, "identity", o.identity);
        json_kv(&g, &first, "domain", o.domain);
        json_kv(&g, &first, "sender", o.sender);
        json_kv(&g, &first, "mechanism", o.mechanism);
        json_kv(&g, &first, "explanation", o.explanation);
        json_kv(&g, &first, "problem", o.problem);
        json_kb(&g, &first, "guessed", o.guessed);
        json_ki(&g, &first, "dns_lookups", o.dns_mech);
        json_ki(&g, &first, "void_lookups", o.void_lookups);
        json_kv(&g, &first, "header_comment", cm);
        json_kv(&g, &first, "smtp_comment", smtp);
        json_kv(&g, &first, "received_spf", rcv);
        gstr_cat(&g, "}\n");
        fputs(g.s, stdout);
    } else if (received) {
        printf("%s\n", rcv);
    } else {
        const char *why = o.result == SPF_FAIL ? o.explanation
                        : (o.result == SPF_TEMPERROR || o.result == SPF_PERMERROR) ? o.problem
                        : cm;
        printf("%s %s\n", spf_result_name(o.result), why ? why : "");
    }
    int rc = spf_exit_code(o.result);
    pol_dns_free(&c);
    arena_free(a);
    return rc;
}
