/* host.h: what the SMTP/ACL side asks DNS about hosts, as Exim does it:
 * the name of a connecting IP with forward confirmation ($sender_host_name,
 * host_lookup, verify = reverse_host_lookup), HELO verification
 * (verify = helo, helo_try_verify_hosts), names in host lists, and the
 * @mx_any / @mx_primary / @mx_secondary domain-list items.  Pure functions
 * over a dns_iface: the caller supplies what it knows about the local host. */
#ifndef POSTERN_DNS_HOST_H
#define POSTERN_DNS_HOST_H

#include "dns/dns.h"

/* Are two IP address texts the same address?  IPv4 and its IPv4-mapped
   IPv6 form (::ffff:a.b.c.d) are the same.  False if either is not an IP. */
bool host_ip_equal(const char *a, const char *b);

/* The addresses of name: AAAA records then A records (as Exim's
 * host_find_bydns with A and AAAA).  ST_OK with a NULL-terminated list,
 * ST_NOTFOUND, ST_DEFER (either lookup deferred and none gave data).
 * *secure (if non-NULL): every answer used was DNSSEC-secure. */
status host_addresses(const dns_iface *dns, const char *name, arena *a,
                      const char ***addrs, bool *secure);

/* Exim's host_find_byname: the addresses of name from the system's own
 * resolver (gethostbyname2: /etc/hosts, then whatever nsswitch.conf
 * says), IPv6 first (unless !want6) then IPv4.  ST_OK with a
 * NULL-terminated list and *canonical (the name the resolver gives, which
 * Exim puts in place of the one asked for), ST_NOTFOUND, ST_DEFER (a
 * temporary failure and no address). */
status host_find_byname(const char *name, bool want6, arena *a, const char ***addrs, const char **canonical);

/* Does name resolve to ip?  ST_OK, ST_FAIL, ST_DEFER (names in host lists). */
status host_name_has_ip(const dns_iface *dns, const char *name, const char *ip, arena *a);

typedef struct host_name_result {
    const char *name;       /* $sender_host_name: first confirmed name, lowercased */
    const char **aliases;   /* the other confirmed names, NULL-terminated */
    bool dnssec;            /* $sender_host_dnssec: PTR and forward answers secure */
    const char *msg;        /* on ST_FAIL, Exim's host_lookup_msg text, e.g.
                               " (failed to find host name from IP address)" */
} host_name_result;

/* The name of ip by PTR, each name forward-confirmed (it must resolve back
 * to ip, else it is dropped).  ST_OK, ST_FAIL (no confirmed name: msg set),
 * ST_DEFER (a lookup deferred).  PTR names with characters other than
 * letters, digits, '-' and '.' are ignored, as Exim does. */
status host_name_lookup(const dns_iface *dns, const char *ip, arena *a, host_name_result *out);

/* verify = helo.  helo: the HELO/EHLO argument; ip: the client's address;
 * known: the result of host_name_lookup if one was done (NULL otherwise: it
 * is done here when needed).  ST_OK verified, ST_FAIL not verified,
 * ST_DEFER the reverse lookup deferred (Exim then still tries the forward
 * lookup; the caller decides: helo_try_verify_hosts treats it as FAIL).
 * *dnssec: $sender_helo_dnssec. */
status host_verify_helo(const dns_iface *dns, const char *helo, const char *ip,
                        const host_name_result *known, arena *a, bool *dnssec);

/* @mx_any, @mx_primary, @mx_secondary for domain.  local_ips: this host's
 * addresses (NULL-terminated; "0.0.0.0" always counts as local).  Optional
 * callbacks: ignore(ctx, ip) drops an MX address (the "/ignore=" host
 * list); local_name(ctx, name) says a host name is local
 * (hosts_treat_as_local).  ST_OK matches, ST_FAIL does not, ST_DEFER the
 * MX lookup deferred. */
enum host_mx_mode { HOST_MX_ANY, HOST_MX_PRIMARY, HOST_MX_SECONDARY };
typedef struct host_mx_local {
    const char *const *local_ips;
    bool (*ignore)(void *ctx, const char *ip);
    bool (*local_name)(void *ctx, const char *name);
    void *ctx;
} host_mx_local;
status host_mx_match(const dns_iface *dns, const char *domain, enum host_mx_mode mode,
                     const host_mx_local *local, arena *a);

/* Host-list items that need DNS (Exim's "Host lists"), for the host-list
 * matcher, which handles "*", "", IP addresses and networks, lookups,
 * named lists, negation and the +include_/+ignore_ options itself:
 *   "@"            the primary host name, looked up as a name
 *   "@[]"          one of local_ips
 *   "name"         a plain name (letters, digits, '.', '-', '_'): its
 *                  addresses include the client's
 *   "*suffix"      the end of one of the client's names
 *   "^regex"       one of the client's names (caseless unless "(?-i)")
 *   other text     one of the client's names, caselessly
 * The client's names come from host_name_lookup, done once per context.
 * ST_OK matches, ST_FAIL does not, ST_NOTFOUND the information cannot be
 * found (+include_unknown / +ignore_unknown apply; as in Exim this includes
 * a reverse lookup that deferred), ST_DEFER a temporary error looking up a
 * plain name (+include_defer / +ignore_defer apply), ST_ERROR a bad regex
 * (*err), ST_DECLINED not one of these items. */
typedef struct host_ctx {
    const dns_iface *dns;
    const char *ip;                   /* the client, NULL for local input */
    const char *primary_hostname;
    const char *const *local_ips;     /* NULL-terminated */
    /* the client's names: filled by host_ctx_names (or preset by the caller
       when host_lookup already ran: set name_done and name_st) */
    bool name_done;
    status name_st;
    host_name_result name;
} host_ctx;

status host_list_item(host_ctx *c, const char *item, arena *a, char **err);
/* The client's confirmed names (name then aliases, NULL-terminated), for
 * "type;data" lookups by host name.  ST_OK, ST_NOTFOUND, ST_DEFER. */
status host_ctx_names(host_ctx *c, arena *a, const char *const **names);

#endif
