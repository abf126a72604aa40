/* dnsdb.h: the dnsdb lookup's engine, separate from the driver table entry
 * so tests and the fuzzer can run it on an injected resolver.
 *
 * Query syntax (Exim's): [>S[,T|;]] [modifier,]... [type=]list
 *   >S      separator between records (default newline)
 *   ,T / ;  separator between the strings of one TXT record (default: only
 *           the first string; ";" concatenates), also the field separator
 *           of MX, SRV, TLSA, SOA (default space; SOA prints all fields only
 *           when given)
 *   modifiers: defer_strict|defer_lax|defer_never,
 *              dnssec_strict|dnssec_lax|dnssec_never, retrans_<time>, retry_<n>
 *   types: a a+ aaaa cname csa mx mxh ns ptr soa spf srv tlsa txt zns
 *           (default txt); list: an Exim list of names (IPs for ptr/csa). */
#ifndef POSTERN_DNSDB_H
#define POSTERN_DNSDB_H

#include "dns/dns.h"

/* Longest result (bytes): as LOOKUP_MAX_RESULT */
#define DNSDB_MAX_RESULT (1024 * 1024)

typedef struct dnsdb_env {
    dns_iface dns;
    /* retrans_/retry_ modifiers: set (values > 0) and restore (0, 0); may be NULL */
    void (*timeouts)(void *ctx, int retrans, int retry);
    int csa_search_limit;          /* dns_csa_search_limit; 0 = 5 */
    const char *dnssec_auth;       /* out: $lookup_dnssec_authenticated */
    const char *why;               /* out: reason of the last DNS defer */
} dnsdb_env;

/* ST_OK with *result, ST_NOTFOUND, ST_DEFER (DNS trouble, or a syntax error
 * in the query, as Exim does) with *err: "" for DNS trouble, as Exim (the
 * reason is in env->why), the syntax problem otherwise. */
status dnsdb_run(dnsdb_env *env, const char *query, arena *a, char **result, char **err);

/* Exim time ("5s", "1m30s", "2h", plain seconds); -1 when malformed.
   Stops at term or the end of the string; *end is set past the value. */
int dnsdb_read_time(const char *s, char term, const char **end);

/* Glue (dnscfg.c): dns_* main options -> the process resolver.
 * dns_configure_from_cfg applies the loaded configuration;
 * dnsdb_process_resolver does that on first use and returns the resolver. */
void dns_configure_from_cfg(void);
dns_resolver *dnsdb_process_resolver(char **err, arena *a);

#endif
