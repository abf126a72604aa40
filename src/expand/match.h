/* match.h: matching subjects against Exim lists: domain lists, host
 * (IP) lists, address lists, local part lists and plain string lists,
 * with negation ("!"), named lists ("+name"), regular expressions ("^..."),
 * wildcards and lookups ("type;file").  Used by the match_* expansion
 * conditions, ACLs and routers. */
#ifndef POSTERN_MATCH_H
#define POSTERN_MATCH_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>

/* Each returns ST_OK (matched), ST_FAIL (no match or negative match),
 * ST_DEFER (a lookup deferred: *err) or ST_ERROR (bad list: *err).
 * On a match *value (if value) is the lookup data or the matching item.
 * Strings are in a. */
status match_domain(const char *domain, const char *list, arena *a, const char **value, char **err);
status match_local_part(const char *lp, const char *list, bool caseless, arena *a,
                        const char **value, char **err);
status match_address(const char *addr, const char *list, bool caseless, arena *a,
                     const char **value, char **err);
/* Host list matching for an IP address: CIDR items, "*", lookups
 * ("iplsearch;file", "net24-lsearch;file"), and host names: a wildcard or
 * regex item is matched against ps.sender_host_name when known; a plain
 * name is looked up (A/AAAA through src/dns).  When the host's name is
 * needed but unknown the whole list fails, unless "+ignore_unknown" (item
 * skipped) or "+include_unknown" (item matches) came before it. */
status match_ip(const char *ip, const char *list, arena *a, const char **value, char **err);
/* Is ip (text) one of this host's interface addresses ("@[]")? */
bool match_local_interface(const char *ip);
/* The ${if match_ip} condition's variant: host name items are never
 * looked up, so any host name item fails the list (as in Exim). */
status match_ip_only(const char *ip, const char *list, arena *a, const char **value, char **err);
/* A single domain-list item (no negation, lookups or named lists):
 * "^regex", "*suffix", "@" or a literal, caseless. */
bool match_domain_pattern(const char *subject, const char *pattern, arena *a);
/* One domain-list item (regex, wildcard, lookup, named list, literal),
 * not split as a list; used for wildlsearch keys. */
status match_domain_one(const char *subject, const char *pattern, arena *a, const char **value, char **err);

/* IP addresses: parse "1.2.3.4" or an IPv6 address (optionally followed by
 * "/bits" when mask is non-NULL; *mask is -1 when absent) into 16 bytes
 * (IPv4 as ::ffff:a.b.c.d is NOT used: family says which).  */
bool ip_parse(const char *s, unsigned char addr[16], int *family, int *mask);
/* Is ip inside net/bits (same family)? */
bool ip_in_net(const unsigned char *ip, int fam, const unsigned char *net, int nfam, int bits);

#endif
