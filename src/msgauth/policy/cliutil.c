/* cliutil.c: common options, resolver selection and JSON output for the
 * policy subcommands of postern-auth. */
#include "msgauth/policy/cliutil.h"
#include "msgauth/cli.h"
#include "msgauth/policy/zonedns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The unbound resolver (src/dns/dns.c) is linked when present. */
#pragma weak dns_resolver_new
#pragma weak dns_iface_unbound
#pragma weak dns_resolver_free

const char *pol_optval(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "postern-auth %s: option %s needs a value\n", argv[0], argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int pol_common_opt(pol_common *c, int argc, char **argv, int *i)
{
    const char *o = argv[*i], *v;
    char *end;
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0)
        return -2;
    if (strcmp(o, "--json") == 0) {
        c->json = true;
        return 1;
    }
    if (strcmp(o, "--dns") == 0 || strcmp(o, "--zone") == 0 || strcmp(o, "--now") == 0 ||
        strcmp(o, "--dns-timeout") == 0 || strcmp(o, "--dns-retry") == 0) {
        if (!(v = pol_optval(argc, argv, i)))
            return -1;
        if (o[2] == 'd' && o[5] == 0)
            c->dns = v;
        else if (o[2] == 'z')
            c->zone = v;
        else {
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 0) {
                fprintf(stderr, "postern-auth %s: %s: bad number \"%s\"\n", argv[0], o, v);
                return -1;
            }
            if (o[2] == 'n')
                c->now = (time_t)n;
            else if (strcmp(o, "--dns-timeout") == 0)
                c->dns_timeout = (int)n;
            else
                c->dns_retry = (int)n;
        }
        return 1;
    }
    return 0;
}

char *pol_read_file(const char *path, arena *a, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    gstr g;
    gstr_init(&g, a, 4096);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        gstr_catn(&g, buf, n);
    if (f != stdin)
        fclose(f);
    if (len)
        *len = g.len;
    return g.s;
}

bool pol_dns(pol_common *c, arena *a, dns_iface *out)
{
    if (c->zone) {
        size_t n;
        char *text = pol_read_file(c->zone, a, &n), *err;
        if (!text) {
            fprintf(stderr, "postern-auth: cannot read zone file %s: %s\n", c->zone, strerror(errno));
            return false;
        }
        zonedns *z = zonedns_new(a);
        if (zonedns_load(z, text, &err) != ST_OK) {
            fprintf(stderr, "postern-auth: %s: %s\n", c->zone, err);
            return false;
        }
        *out = zonedns_iface(z);
        return true;
    }
    if (!dns_resolver_new) {
        fprintf(stderr, "postern-auth: built without a resolver; use --zone\n");
        return false;
    }
    dns_options o = { .servers = c->dns, .trust_anchor_file = "",
                      .retrans = c->dns_timeout, .retry = c->dns_retry };
    char *err = NULL;
    dns_resolver *r = dns_resolver_new(&o, &err, a);
    if (!r) {
        fprintf(stderr, "postern-auth: resolver: %s\n", err ? err : "cannot start");
        return false;
    }
    c->resolver = r;
    *out = dns_iface_unbound(r);
    return true;
}

void pol_dns_free(pol_common *c)
{
    if (c->resolver && dns_resolver_free)
        dns_resolver_free(c->resolver);
    c->resolver = NULL;
}

void json_str(gstr *g, const char *s)
{
    gstr_catc(g, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': gstr_cat(g, "\\\""); break;
        case '\\': gstr_cat(g, "\\\\"); break;
        case '\n': gstr_cat(g, "\\n"); break;
        case '\r': gstr_cat(g, "\\r"); break;
        case '\t': gstr_cat(g, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                gstr_printf(g, "\\u%04x", *p);
            else
                gstr_catc(g, (char)*p);
        }
    }
    gstr_catc(g, '"');
}

static void key(gstr *g, bool *first, const char *k)
{
    if (!*first)
        gstr_cat(g, ", ");
    *first = false;
    json_str(g, k);
    gstr_cat(g, ": ");
}

void json_kv(gstr *g, bool *first, const char *k, const char *v)
{
    key(g, first, k);
    if (v)
        json_str(g, v);
    else
        gstr_cat(g, "null");
}

void json_kb(gstr *g, bool *first, const char *k, bool v)
{
    key(g, first, k);
    gstr_cat(g, v ? "true" : "false");
}

void json_ki(gstr *g, bool *first, const char *k, long long v)
{
    key(g, first, k);
    gstr_printf(g, "%lld", v);
}

int pol_help(const char *cmd, const char *synopsis)
{
    printf("usage: postern-auth %s %s\n"
           "common options: --dns ip@port, --dns-timeout secs, --dns-retry n,\n"
           "  --zone FILE (answer DNS from zone data), --now <unix time>, --json\n"
           "exit status: 0 passed/done, 1 did not pass, 2 temporary error, 64 usage\n"
           "see postern-auth(1)\n", cmd, synopsis);
    return AUTH_EXIT_OK;
}

int pol_usage(const char *cmd, const char *synopsis)
{
    fprintf(stderr, "usage: postern-auth %s %s\n"
                    "common options: --dns ip@port, --dns-timeout secs, --dns-retry n,\n"
                    "  --zone FILE (answer DNS from zone data), --now <unix time>, --json\n",
            cmd, synopsis);
    return AUTH_EXIT_USAGE;
}
