/* cmd_dk.c: postern-auth dk-sign and dk-verify (DomainKeys, RFC 4870). */
#include "msgauth/cli.h"
#include "msgauth/sig/clicmd.h"
#include "msgauth/sig/dk.h"

#include <stdio.h>
#include <string.h>

static const cli_spec verify_spec = {
    "[--dns ip@port | --dns-zone FILE] [--json] [--srv-id ADMD] < message\n",
    "Verifies every DomainKey-Signature.  One line per signature (one line for\n"
    "an unsigned message) whose first word is the seed's $dk_status with '-'\n"
    "for spaces: good, bad, no-signature, no-key, bad-format, non-participant,\n"
    "revoked (an unsigned message is no-signature, as in Exim); then d= s=\n"
    "sender= source= signsall= testing= result=.\n"
    "  --srv-id ADMD     also print an Authentication-Results field for ADMD\n",
};

static const char *word(arena *a, dk_status s)
{
    char *w = arena_strdup(a, dk_status_name(s));
    for (char *p = w; *p; p++)
        if (*p == ' ')
            *p = '-';
    return w;
}

int cmd_dk_verify(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &verify_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    arena *a = arena_new("dk-verify", false);
    dns_iface dns;
    dns_resolver *res = NULL;
    mail_msg m;
    if ((rc = cli_read_message(a, &m)) || (rc = cli_setup_dns(a, &o, &dns, &res)))
        goto out;
    dk_verify_opts vo = { .dns = dns };
    dk_result *r;
    int n = dk_verify(a, &m, &vo, &r);
    bool all = true, temp = false;
    if (o.json)
        printf("[");
    for (int i = 0; i < n; i++) {
        if (r[i].status != DK_GOOD)
            all = false;
        if (r[i].temperror)
            temp = true;
        if (o.json) {
            printf("%s{\"status\":", i ? "," : "");
            cli_json_str(stdout, dk_status_name(r[i].status));
            printf(",\"d\":");
            cli_json_str(stdout, r[i].domain);
            printf(",\"s\":");
            cli_json_str(stdout, r[i].selector);
            printf(",\"sender\":");
            cli_json_str(stdout, r[i].sender);
            printf(",\"sender_source\":");
            cli_json_str(stdout, r[i].sender_source);
            printf(",\"signsall\":%s,\"testing\":%s,\"is_signed\":%s,\"result\":",
                   r[i].signsall ? "true" : "false", r[i].testing ? "true" : "false",
                   r[i].is_signed ? "true" : "false");
            cli_json_str(stdout, r[i].result);
            printf(",\"temperror\":%s}", r[i].temperror ? "true" : "false");
        } else {
            printf("%s d=%s s=%s sender=%s source=%s signsall=%d testing=%d%s result=\"%s\"\n",
                   word(a, r[i].status), r[i].domain ? r[i].domain : "",
                   r[i].selector ? r[i].selector : "", r[i].sender ? r[i].sender : "",
                   r[i].sender_source, r[i].signsall, r[i].testing,
                   r[i].temperror ? " temperror=y" : "", r[i].result ? r[i].result : "");
        }
    }
    if (o.json)
        printf("]\n");
    if (o.srv_id) {
        authres_result *ar = arena_alloc(a, sizeof *ar * (size_t)n);
        for (int i = 0; i < n; i++)
            dk_authres(a, &r[i], &ar[i]);
        fputs(authres_header(a, o.srv_id, ar, n), stdout);
    }
    rc = temp ? AUTH_EXIT_TEMP : all ? AUTH_EXIT_OK : AUTH_EXIT_NOTPASS;
out:
    if (res)
        dns_resolver_free(res);
    arena_free(a);
    return rc;
}

static const cli_spec sign_spec = {
    "--selector S --key FILE [--domain D] [--canon simple|nofws] [--headers a:b:...] < message\n",
    "Signs with DomainKeys (rsa-sha1) and writes the message with the\n"
    "DomainKey-Signature field first.  The domain defaults to the sender's\n"
    "(Sender:, else From:), as $dk_domain does; --headers sets h=.\n",
};

int cmd_dk_sign(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &sign_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    if (!o.selector || !o.key) {
        fprintf(stderr, "postern-auth dk-sign: --selector and --key are required\n");
        return AUTH_EXIT_USAGE;
    }
    canon c = CANON_SIMPLE;
    if (o.canon && strcmp(o.canon, "nofws") == 0)
        c = CANON_NOFWS;
    else if (o.canon && strcmp(o.canon, "simple") != 0) {
        fprintf(stderr, "postern-auth dk-sign: --canon must be simple or nofws\n");
        return AUTH_EXIT_USAGE;
    }
    arena *a = arena_new("dk-sign", false);
    dk_sign_opts so = { .domain = o.domain, .selector = o.selector, .c = c, .headers = o.headers };
    mail_msg m;
    so.key = cli_load_key(a, o.key);
    if (!so.key) {
        rc = AUTH_EXIT_USAGE;
        goto out;
    }
    if ((rc = cli_read_message(a, &m)))
        goto out;
    const char *err = NULL;
    char *field = dk_sign(a, &m, &so, &err);
    if (!field) {
        fprintf(stderr, "postern-auth dk-sign: %s\n", err);
        rc = AUTH_EXIT_NOTPASS;
        goto out;
    }
    cli_write_signed(field, &m, a);
    rc = AUTH_EXIT_OK;
out:
    key_free(so.key);
    arena_free(a);
    return rc;
}
