/* dns_proc.c: the one resolver of a process.  Lookup drivers and ACL
 * conditions reach DNS without a context argument, so the resolver and
 * $lookup_dnssec_authenticated are per-process state kept here (they
 * belong with proc_state in core/state.h; this file is the only place that
 * holds them).  A forked child reuses the configuration; dns.c gives it a
 * fresh libunbound context. */
#include "dns/dns.h"

#include <string.h>

static struct {
    arena *a;
    dns_options o;
    bool configured;
    dns_resolver *r;
    const char *dnssec_auth;
} proc;

static const char *keep(const char *s)
{
    return s ? arena_strdup(proc.a, s) : NULL;
}

void dns_process_configure(const dns_options *o)
{
    if (proc.r) {
        dns_resolver_free(proc.r);
        proc.r = NULL;
    }
    if (proc.a)
        arena_reset(proc.a);
    else
        proc.a = arena_new("dns-process", false);
    proc.o = *o;
    proc.o.servers = keep(o->servers);
    proc.o.trust_anchor_file = keep(o->trust_anchor_file);
    proc.o.check_names_pattern = keep(o->check_names_pattern);
    proc.configured = true;
}

/* The glue that turns the loaded configuration's dns_* options into
   dns_options (src/lookup/dnscfg.c), when the program links it: whoever
   asks first (dnsdb, dnslists, verify) gets the configured resolver. */
extern void dns_configure_from_cfg(void) __attribute__((weak));

dns_resolver *dns_process_resolver(char **err, arena *a)
{
    if (proc.r)
        return proc.r;
    if (!proc.configured && dns_configure_from_cfg)
        dns_configure_from_cfg();       /* calls dns_process_configure */
    if (!proc.a)
        proc.a = arena_new("dns-process", false);
    char *e = NULL;
    proc.r = dns_resolver_new(proc.configured ? &proc.o : NULL, &e, proc.a);
    if (!proc.r && err)
        *err = arena_strdup(a, e ? e : "cannot create the DNS resolver");
    return proc.r;
}

/* each message gets the whole lookup budget (a connection or queue runner
 * handles many messages; the bound is per message, as DNS_MAX_LOOKUPS says) */
void dns_process_new_message(void)
{
    if (proc.r)
        dns_lookup_count_reset(proc.r);
}

const char *dns_lookup_dnssec_authenticated(void) { return proc.dnssec_auth; }
void dns_set_lookup_dnssec_authenticated(const char *v) { proc.dnssec_auth = v; }
