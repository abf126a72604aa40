/* cmd_dkim.c: postern-auth dkim-sign and dkim-verify. */
#include "msgauth/cli.h"
#include "msgauth/sig/clicmd.h"
#include "msgauth/sig/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const cli_spec sign_spec = {
    "--domain D --selector S --key FILE [--algorithm rsa-sha256|ed25519-sha256]\n"
    "       [--canon relaxed/relaxed] [--headers from:to:subject:...] [--identity @D]\n"
    "       [--timestamp T | --timestamps] [--expire +SECS|T] [--body-length N] < message\n",
    "Signs the message and writes it, with the DKIM-Signature field first, to stdout.\n"
    "  --headers LIST    header names to sign (colon list, Exim's dkim_sign_headers:\n"
    "                    =name: each present one, +name: each present one and\n"
    "                    one more); default: Exim's list, as =name\n"
    "  --timestamp T     t= value; --timestamps uses the current time (or --now)\n"
    "  --expire V        x= value: absolute, or +SECS after the signing time\n"
    "  --hsep STR        separator written between h= names (default \":\")\n",
};

/* x= from "--expire": absolute or "+secs" relative to base. */
static bool expire_value(const char *s, long long base, long long *out)
{
    char *e;
    if (!s)
        return true;
    long long v = strtoll(s + (*s == '+'), &e, 10);
    if (*e || e == s + (*s == '+') || v < 0)
        return false;
    *out = *s == '+' ? base + v : v;
    return true;
}

int cmd_dkim_sign(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &sign_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    if (!o.domain || !o.selector || !o.key) {
        fprintf(stderr, "postern-auth dkim-sign: --domain, --selector and --key are required\n");
        return AUTH_EXIT_USAGE;
    }
    arena *a = arena_new("dkim-sign", false);
    dkim_sign_opts so = { .domain = o.domain, .selector = o.selector, .identity = o.identity,
                          .hash = HASH_SHA256, .hc = CANON_RELAXED, .bc = CANON_RELAXED,
                          .headers = o.headers, .hsep = o.hsep, .timestamp = o.timestamp,
                          .expire = -1, .bodylength = o.bodylength };
    long long now = o.now ? o.now : (long long)time(NULL);
    if (so.timestamp == -2)
        so.timestamp = now;
    rc = AUTH_EXIT_USAGE;
    if (o.canon && !canon_parse(o.canon, &so.hc, &so.bc)) {
        fprintf(stderr, "postern-auth dkim-sign: bad --canon %s\n", o.canon);
        goto out;
    }
    if (!expire_value(o.expire_str, so.timestamp >= 0 ? so.timestamp : now, &so.expire)) {
        fprintf(stderr, "postern-auth dkim-sign: bad --expire %s\n", o.expire_str);
        goto out;
    }
    so.key = cli_load_key(a, o.key);
    if (!so.key)
        goto out;
    if (o.algorithm) {
        sig_keytype want = strcasecmp(o.algorithm, "ed25519-sha256") == 0 ? KEY_ED25519 : KEY_RSA;
        if ((strcasecmp(o.algorithm, "rsa-sha256") != 0 && want == KEY_RSA) ||
            want != key_type(so.key)) {
            fprintf(stderr, "postern-auth dkim-sign: --algorithm %s does not fit the key\n",
                    o.algorithm);
            goto out;
        }
    }
    mail_msg m;
    if ((rc = cli_read_message(a, &m)))
        goto out;
    const char *err = NULL;
    char *field = dkim_sign(a, &m, &so, &err);
    if (!field) {
        fprintf(stderr, "postern-auth dkim-sign: %s\n", err);
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

static const cli_spec verify_spec = {
    "[--dns ip@port | --dns-zone FILE] [--now T] [--json] [--min-rsa-bits N]\n"
    "       [--strict] [--rfc-only] [--srv-id ADMD] < message\n",
    "Verifies every DKIM-Signature.  One line per signature: result (pass, fail,\n"
    "invalid, temperror; none without signatures), then d= s= a= i=, reason=\n"
    "(Exim's $dkim_verify_reason) and detail= (the exact problem).  rsa-sha1\n"
    "passes are marked weak.\n"
    "  --min-rsa-bits N  smallest RSA key accepted (default 1024)\n"
    "  --strict          rsa-sha1 signatures are invalid (RFC 8301)\n"
    "  --rfc-only        signatures of the pre-RFC drafts (no v=, v=0.5) are invalid\n"
    "  --srv-id ADMD     also print an Authentication-Results field for ADMD\n",
};

static const char *word(const dkim_result *r)
{
    if (r->temperror)
        return "temperror";
    return dkim_status_name(r->status);
}

int cmd_dkim_verify(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &verify_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    arena *a = arena_new("dkim-verify", false);
    dns_iface dns;
    dns_resolver *res = NULL;
    mail_msg m;
    if ((rc = cli_read_message(a, &m)) || (rc = cli_setup_dns(a, &o, &dns, &res)))
        goto out;
    dkim_verify_opts vo = { .dns = dns, .now = (time_t)o.now, .min_rsa_bits = o.min_rsa_bits,
                            .min_ed25519_bits = 250, .strict = o.strict,
                            .rfc_only = o.rfc_only };
    dkim_result *r;
    int n = dkim_verify(a, &m, &vo, &r);
    bool all = n > 0, temp = false;
    for (int i = 0; i < n; i++) {
        if (r[i].status != DKIM_PASS)
            all = false;
        if (r[i].temperror)
            temp = true;
    }
    if (o.json) {
        printf("[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"result\":", i ? "," : "");
            cli_json_str(stdout, word(&r[i]));
            printf(",\"status\":");
            cli_json_str(stdout, dkim_status_name(r[i].status));
            printf(",\"reason\":");
            cli_json_str(stdout, r[i].reason);
            printf(",\"detail\":");
            cli_json_str(stdout, r[i].detail);
            printf(",\"d\":");
            cli_json_str(stdout, r[i].domain);
            printf(",\"s\":");
            cli_json_str(stdout, r[i].selector);
            printf(",\"a\":");
            cli_json_str(stdout, r[i].algo);
            printf(",\"i\":");
            cli_json_str(stdout, r[i].identity);
            printf(",\"weak\":%s,\"testing\":%s,\"key_bits\":%d,\"body_length\":%lld}",
                   r[i].weak ? "true" : "false", r[i].testing ? "true" : "false",
                   r[i].key_bits, r[i].bodylength);
        }
        printf("]\n");
    } else {
        if (n == 0)
            printf("none\n");
        for (int i = 0; i < n; i++) {
            printf("%s d=%s s=%s a=%s", word(&r[i]), r[i].domain ? r[i].domain : "",
                   r[i].selector ? r[i].selector : "", r[i].algo ? r[i].algo : "");
            if (r[i].identity)
                printf(" i=%s", r[i].identity);
            if (r[i].key_bits)
                printf(" bits=%d", r[i].key_bits);
            if (r[i].bodylength >= 0)
                printf(" l=%lld", r[i].bodylength);
            if (r[i].weak)
                printf(" weak=rsa-sha1");
            if (r[i].testing)
                printf(" testing=y");
            if (r[i].reason && *r[i].reason)
                printf(" reason=%s", r[i].reason);
            if (r[i].detail && *r[i].detail)
                printf(" detail=\"%s\"", r[i].detail);
            printf("\n");
        }
    }
    if (o.srv_id) {
        authres_result *ar = arena_calloc(a, sizeof *ar * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++)
            dkim_authres(a, &r[i], &ar[i]);
        fputs(authres_header(a, o.srv_id, ar, n ? n : 1), stdout);
    }
    rc = temp ? AUTH_EXIT_TEMP : all ? AUTH_EXIT_OK : AUTH_EXIT_NOTPASS;
out:
    if (res)
        dns_resolver_free(res);
    arena_free(a);
    return rc;
}

static const cli_spec canon_spec = {
    "--canon H/B [--part headers|body] < message\n",
    "Prints the message's header fields and body canonicalized as DKIM would\n"
    "hash them (RFC 6376 3.4): every header field, then the body.\n"
    "  --part P          only the headers or only the body\n",
};

int cmd_dkim_canon(int argc, char **argv)
{
    cli_opts o;
    int rc = cli_parse(argc, argv, &canon_spec, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    canon hc, bc;
    if (!o.canon || !canon_parse(o.canon, &hc, &bc)) {
        fprintf(stderr, "postern-auth dkim-canon: --canon simple|relaxed[/simple|relaxed] required\n");
        return AUTH_EXIT_USAGE;
    }
    const char *part = o.headers;   /* --part is stored in headers (see cli_parse) */
    arena *a = arena_new("dkim-canon", false);
    mail_msg m;
    if ((rc = cli_read_message(a, &m)) == 0) {
        if (!part || strcmp(part, "headers") == 0) {
            gstr g;
            gstr_init(&g, a, 1024);
            for (int i = 0; i < m.nhdr; i++)
                canon_header(&g, hc, &m.hdr[i]);
            fwrite(g.s, 1, g.len, stdout);
        }
        if (!part || strcmp(part, "body") == 0) {
            size_t n;
            char *b = canon_body(a, bc, m.body, m.body_len, &n);
            fwrite(b, 1, n, stdout);
        }
    }
    arena_free(a);
    return rc;
}
