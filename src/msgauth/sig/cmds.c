/* sig/cmds.c: postern-auth subcommands for DKIM, ARC, DomainKeys:
 * option parsing shared by all of them, reading the message, printing
 * results as text or JSON, exit statuses (cli.h). */
#include "msgauth/cli.h"
#include "msgauth/sig/clicmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MSG_MAX ((size_t)512 << 20)   /* refuse messages over 512 MB */

char *cli_read_all(arena *a, FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= MSG_MAX) {
                free(buf);
                return NULL;
            }
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    char *o = arena_memdup(a, buf, n);
    free(buf);
    *len = n;
    return o;
}

static bool parse_ll(const char *s, long long *v)
{
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (errno || e == s || *e)
        return false;
    *v = x;
    return true;
}

/* Parse argv into o.  Returns 0, or an exit status (usage, help). */
int cli_parse(int argc, char **argv, const cli_spec *spec, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timestamp = -1;
    o->expire = -1;
    o->bodylength = -1;
    o->min_rsa_bits = 1024;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf("usage: postern-auth %s %s\n%s", argv[0], spec->usage, spec->help);
            printf("common options:\n"
                   "  --dns ip@port     DNS server to query (default: /etc/resolv.conf)\n"
                   "  --dns-zone FILE   answer key queries from FILE (\"name value\" lines)\n"
                   "  --now T           evaluate times at unix time T\n"
                   "  --json            print results as JSON\n"
                   "exit status: 0 every check passed, 1 a check did not pass,\n"
                   "             2 temporary error (DNS), 64 usage error\n");
            return -1;
        }
        const char *val = NULL;
        bool needs = strcmp(arg, "--json") != 0 && strcmp(arg, "--strict") != 0 &&
                     strcmp(arg, "--timestamps") != 0 && strcmp(arg, "--rfc-only") != 0;
        if (needs) {
            if (i + 1 >= argc) {
                fprintf(stderr, "postern-auth %s: %s needs a value\n", argv[0], arg);
                return AUTH_EXIT_USAGE;
            }
            val = argv[++i];
        }
        long long n;
#define IS(x) (strcmp(arg, x) == 0)
        if (IS("--json")) o->json = true;
        else if (IS("--strict")) o->strict = true;
        else if (IS("--rfc-only")) o->rfc_only = true;
        else if (IS("--timestamps")) o->timestamp = -2;
        else if (IS("--dns")) o->dns = val;
        else if (IS("--dns-zone")) o->dns_zone = val;
        else if (IS("--domain")) o->domain = val;
        else if (IS("--selector")) o->selector = val;
        else if (IS("--key")) o->key = val;
        else if (IS("--algorithm")) o->algorithm = val;
        else if (IS("--canon")) o->canon = val;
        else if (IS("--headers") || IS("--part")) o->headers = val;
        else if (IS("--identity")) o->identity = val;
        else if (IS("--srv-id")) o->srv_id = val;
        else if (IS("--hsep")) o->hsep = val;
        else if (IS("--expire")) o->expire_str = val;
        else if (IS("--cv")) o->cv = val;
        else if (IS("--now") && parse_ll(val, &n) && n > 0) o->now = n;
        else if (IS("--timestamp") && parse_ll(val, &n) && n >= 0) o->timestamp = n;
        else if (IS("--body-length") && parse_ll(val, &n) && n >= 0) o->bodylength = n;
        else if (IS("--min-rsa-bits") && parse_ll(val, &n) && n >= 0 && n < 100000)
            o->min_rsa_bits = (int)n;
        else {
            fprintf(stderr, "postern-auth %s: bad option or value: %s%s%s (try --help)\n",
                    argv[0], arg, val ? " " : "", val ? val : "");
            return AUTH_EXIT_USAGE;
        }
#undef IS
    }
    return 0;
}

int cli_setup_dns(arena *a, const cli_opts *o, dns_iface *dns, dns_resolver **res)
{
    char *err = NULL;
    *res = NULL;
    if (o->dns_zone) {
        if (clidns_zone(a, o->dns_zone, dns, &err) != ST_OK) {
            fprintf(stderr, "postern-auth: %s\n", err);
            return AUTH_EXIT_USAGE;
        }
        return 0;
    }
    if (clidns_resolver(a, o->dns, dns, res, &err) != ST_OK) {
        fprintf(stderr, "postern-auth: DNS: %s\n", err ? err : "cannot start resolver");
        return AUTH_EXIT_TEMP;
    }
    return 0;
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int cli_read_message(arena *a, mail_msg *m)
{
    size_t len;
    char *buf = cli_read_all(a, stdin, &len);
    if (!buf) {
        fprintf(stderr, "postern-auth: message too large\n");
        return AUTH_EXIT_USAGE;
    }
    char *err = NULL;
    if (mail_parse(a, buf, len, m, &err) != ST_OK) {
        fprintf(stderr, "postern-auth: %s\n", err);
        return AUTH_EXIT_NOTPASS;
    }
    return 0;
}

sig_key *cli_load_key(arena *a, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "postern-auth: cannot open key %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t len;
    char *data = cli_read_all(a, f, &len);
    fclose(f);
    const char *err = NULL;
    sig_key *k = data ? key_load_private(a, data, len, &err) : NULL;
    if (!k)
        fprintf(stderr, "postern-auth: %s: %s\n", path, err ? err : "unreadable");
    return k;
}

/* Write the header field(s) then the message as read (CRLF line ends). */
void cli_write_signed(const char *fields, const mail_msg *m, arena *a)
{
    size_t len;
    char *body = mail_render(a, m, &len);
    fwrite(fields, 1, strlen(fields), stdout);
    fwrite(body, 1, len, stdout);
    /* A message on the wire ends with CRLF; canonicalization adds it to a
     * body that lacks it, so adding it here keeps every signature valid
     * for verifiers that read the message line by line. */
    if (m->body_len && (len < 2 || body[len - 1] != '\n'))
        fwrite("\r\n", 1, 2, stdout);
}

const auth_cmd sig_cmds[] = {
    { "dkim-sign", "sign with DKIM (RFC 6376/8463); signed message on stdout", cmd_dkim_sign },
    { "dkim-verify", "verify every DKIM signature; one line per signature", cmd_dkim_verify },
    { "arc-sign", "add an ARC set (RFC 8617); sealed message on stdout", cmd_arc_sign },
    { "arc-verify", "validate the ARC chain; one line: pass, fail or none", cmd_arc_verify },
    { "dk-sign", "sign with DomainKeys (RFC 4870); signed message on stdout", cmd_dk_sign },
    { "dk-verify", "verify DomainKeys signatures; one line per signature", cmd_dk_verify },
    { "authres", "run DKIM, ARC, DomainKeys checks; print one Authentication-Results", cmd_authres },
    { "dkim-canon", "print a message canonicalized as DKIM hashes it", cmd_dkim_canon },
    { NULL, NULL, NULL },
};
