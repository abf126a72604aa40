/* clidns.c: the DNS behind postern-auth's sig commands: the real
 * resolver (--dns ip@port, or /etc/resolv.conf), or a static zone file
 * (--dns-zone FILE) for checking keys before they are published.
 *
 * Zone file lines: "<name> <TXT value>" (several lines for one name give
 * several records); the value NXDOMAIN, SERVFAIL or TIMEOUT stands for
 * that DNS outcome.  Lines starting with '#' are comments. */
#include "msgauth/sig/clidns.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct zone_rec {
    const char *name, *value;
} zone_rec;

typedef struct zone {
    zone_rec *r;
    int n;
} zone;

static status zone_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    zone *z = ctx;
    memset(out, 0, sizeof *out);
    size_t nl = strlen(name);
    while (nl && name[nl - 1] == '.')
        nl--;
    out->rr = arena_calloc(a, sizeof(dns_rr) * 16);
    bool exists = false;
    for (int i = 0; i < z->n; i++) {
        if (strlen(z->r[i].name) != nl || strncasecmp(z->r[i].name, name, nl) != 0)
            continue;
        exists = true;
        const char *v = z->r[i].value;
        if (strcmp(v, "SERVFAIL") == 0 || strcmp(v, "TIMEOUT") == 0) {
            out->st = ST_DEFER;
            out->rcode = strcmp(v, "SERVFAIL") == 0 ? 2 : -1;
            out->why = v;
            return ST_DEFER;
        }
        if (strcmp(v, "NXDOMAIN") == 0) {
            exists = false;
            break;
        }
        if (type != DNS_T_TXT || out->nrr == 16)
            continue;
        dns_rr *rr = &out->rr[out->nrr++];
        rr->owner = arena_strndup(a, name, nl);
        rr->type = DNS_T_TXT;
        rr->text = arena_strdup(a, v);
        rr->text_len = strlen(v);
        rr->nstrings = 1;
        rr->strings = arena_alloc(a, sizeof(char *));
        rr->strings[0] = rr->text;
        size_t *len = arena_alloc(a, sizeof(size_t));
        *len = rr->text_len;
        rr->string_lens = len;
    }
    if (out->nrr) {
        out->st = ST_OK;
        return ST_OK;
    }
    out->st = ST_NOTFOUND;
    out->nxdomain = !exists;
    out->rcode = exists ? 0 : 3;
    return ST_NOTFOUND;
}

status clidns_zone(arena *a, const char *path, dns_iface *out, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = arena_printf(a, "cannot open %s", path);
        return ST_ERROR;
    }
    zone *z = arena_calloc(a, sizeof *z);
    int cap = 16;
    z->r = arena_alloc(a, sizeof(zone_rec) * (size_t)cap);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = 0;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *sp = p;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        if (!*sp)
            continue;
        *sp++ = 0;
        while (isspace((unsigned char)*sp))
            sp++;
        size_t nl = strlen(p);
        while (nl && p[nl - 1] == '.')
            p[--nl] = 0;
        if (z->n == cap) {
            zone_rec *nr = arena_alloc(a, sizeof(zone_rec) * (size_t)cap * 2);
            memcpy(nr, z->r, sizeof(zone_rec) * (size_t)cap);
            z->r = nr;
            cap *= 2;
        }
        z->r[z->n].name = arena_strdup(a, p);
        z->r[z->n].value = arena_strdup(a, sp);
        z->n++;
    }
    fclose(f);
    out->lookup = zone_lookup;
    out->ctx = z;
    return ST_OK;
}

status clidns_resolver(arena *a, const char *servers, dns_iface *out, dns_resolver **r,
                       char **err)
{
    dns_options o;
    memset(&o, 0, sizeof o);
    o.servers = servers;
    o.trust_anchor_file = "";
    o.retrans = 2;
    o.retry = 2;
    *r = dns_resolver_new(&o, err, a);
    if (!*r)
        return ST_ERROR;
    *out = dns_iface_unbound(*r);
    return ST_OK;
}
