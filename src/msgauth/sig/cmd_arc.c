/* cmd_arc.c: postern-auth arc-sign and arc-verify. */
#include "msgauth/cli.h"
#include "msgauth/sig/arc.h"
#include "msgauth/sig/clicmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const cli_spec verify_spec = {
    "[--dns ip@port | --dns-zone FILE] [--now T] [--json] [--min-rsa-bits N]\n"
    "       [--srv-id ADMD] < message\n",
    "Validates the ARC chain (RFC 8617).  One line: pass, fail or none, then\n"
    "i= (chain length), oldest-pass=, domains= (Exim's $arc_domains) and\n"
    "reason= ($arc_state_reason).\n"
    "  --srv-id ADMD     also print an Authentication-Results field for ADMD\n",
};

int cmd_arc_verify(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &verify_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    arena *a = arena_new("arc-verify", false);
    dns_iface dns;
    dns_resolver *res = NULL;
    mail_msg m;
    if ((rc = cli_read_message(a, &m)) || (rc = cli_setup_dns(a, &o, &dns, &res)))
        goto out;
    arc_verify_opts vo = { .dns = dns, .now = (time_t)o.now, .min_rsa_bits = o.min_rsa_bits };
    arc_result r;
    arc_verify(a, &m, &vo, &r);
    if (o.json) {
        printf("{\"result\":");
        cli_json_str(stdout, arc_state_name(r.state));
        printf(",\"reason\":");
        cli_json_str(stdout, r.reason);
        printf(",\"instances\":%d,\"oldest_pass\":%d,\"domains\":", r.instances, r.oldest_pass);
        cli_json_str(stdout, r.domains);
        printf(",\"temperror\":%s}\n", r.temperror ? "true" : "false");
    } else {
        printf("%s i=%d", arc_state_name(r.state), r.instances);
        if (r.state == ARC_PASS)
            printf(" oldest-pass=%d", r.oldest_pass);
        if (r.instances)
            printf(" domains=%s", r.domains);
        if (r.temperror)
            printf(" temperror=y");
        if (r.reason && *r.reason)
            printf(" reason=\"%s\"", r.reason);
        printf("\n");
    }
    if (o.srv_id) {
        authres_result ar;
        arc_authres(a, &r, &ar);
        fputs(authres_header(a, o.srv_id, &ar, 1), stdout);
    }
    rc = r.temperror ? AUTH_EXIT_TEMP : r.state == ARC_PASS ? AUTH_EXIT_OK : AUTH_EXIT_NOTPASS;
out:
    if (res)
        dns_resolver_free(res);
    arena_free(a);
    return rc;
}

static const cli_spec sign_spec = {
    "--domain D --selector S --key FILE --srv-id ADMD [--algorithm rsa-sha256|ed25519-sha256]\n"
    "       [--headers from:to:...] [--timestamp T | --timestamps] [--expire [+]T]\n"
    "       [--cv none|pass|fail] [--dns ip@port | --dns-zone FILE] < message\n",
    "Adds an ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results)\n"
    "and writes the whole message.  The AAR holds the results of every\n"
    "Authentication-Results field of ADMD.  The chain state (cv=) is taken from\n"
    "--cv, else from arc= in ADMD's Authentication-Results, else by validating\n"
    "the chain (DNS).  A chain whose newest seal says cv=fail is not sealed\n"
    "again: the message is written unchanged and the exit status is 1.\n"
    "  --timestamps      t= with the current time (seed option \"timestamps\")\n"
    "  --expire V        x= on the AMS: absolute, +SECS, or \"\" for one month\n",
};

int cmd_arc_sign(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &sign_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    if (!o.domain || !o.selector || !o.key || !o.srv_id) {
        fprintf(stderr, "postern-auth arc-sign: --domain, --selector, --key and --srv-id are required\n");
        return AUTH_EXIT_USAGE;
    }
    if (o.cv && strcmp(o.cv, "none") && strcmp(o.cv, "pass") && strcmp(o.cv, "fail")) {
        fprintf(stderr, "postern-auth arc-sign: --cv must be none, pass or fail\n");
        return AUTH_EXIT_USAGE;
    }
    arena *a = arena_new("arc-sign", false);
    arc_sign_opts so = { .srv_id = o.srv_id, .domain = o.domain, .selector = o.selector,
                         .headers = o.headers, .timestamp = o.timestamp, .expire = -1,
                         .cv = o.cv };
    long long now = o.now ? o.now : (long long)time(NULL);
    if (so.timestamp == -2)
        so.timestamp = now;
    if (o.expire_str) {
        /* the seed's expire[=val]: plain number, +offset, default one month */
        const char *v = o.expire_str;
        char *e;
        long long base = so.timestamp >= 0 ? so.timestamp : now;
        if (!*v)
            so.expire = base + 30LL * 86400;
        else {
            long long x = strtoll(v + (*v == '+'), &e, 10);
            if (*e || x < 0) {
                fprintf(stderr, "postern-auth arc-sign: bad --expire %s\n", v);
                rc = AUTH_EXIT_USAGE;
                goto out;
            }
            so.expire = *v == '+' ? base + x : x;
        }
    }
    dns_iface dns;
    dns_resolver *res = NULL;
    mail_msg m;
    so.key = cli_load_key(a, o.key);
    if (!so.key) {
        rc = AUTH_EXIT_USAGE;
        goto out;
    }
    if (o.algorithm && strcmp(o.algorithm, key_type(so.key) == KEY_ED25519 ? "ed25519-sha256"
                                                                          : "rsa-sha256") != 0) {
        fprintf(stderr, "postern-auth arc-sign: --algorithm %s does not fit the key\n", o.algorithm);
        rc = AUTH_EXIT_USAGE;
        goto out;
    }
    if ((rc = cli_read_message(a, &m)))
        goto out;
    /* DNS is needed only when the chain state must be computed */
    if (!o.cv) {
        if ((rc = cli_setup_dns(a, &o, &dns, &res)))
            goto out;
        so.verify = (arc_verify_opts){ .dns = dns, .now = (time_t)o.now,
                                       .min_rsa_bits = o.min_rsa_bits };
    }
    const char *err = NULL;
    bool temp = false;
    char *fields = arc_seal(a, &m, &so, &err, &temp);
    if (!fields) {
        fprintf(stderr, "postern-auth arc-sign: %s\n", err);
        cli_write_signed("", &m, a);
        rc = temp ? AUTH_EXIT_TEMP : AUTH_EXIT_NOTPASS;
        goto out;
    }
    cli_write_signed(fields, &m, a);
    rc = AUTH_EXIT_OK;
out:
    if (res)
        dns_resolver_free(res);
    key_free(so.key);
    arena_free(a);
    return rc;
}
