/* zonedns.h: a dns_iface answering from zone data held in memory, for unit
 * tests, fuzzers and postern-auth's --zone option (trying records before
 * publishing them).  One record per line:
 *     name TYPE value          TYPE: A AAAA MX PTR CNAME TXT NS
 *     name TXT "s1" "s2"       TXT/SPF value: quoted strings (or bare text)
 *     name MX 10 host
 *     name TIMEOUT             every query for name times out (ST_DEFER)
 *     name TYPE TIMEOUT        queries of that type time out
 *     name SERVFAIL            every query for name fails (ST_DEFER)
 * Names absent from the data are NXDOMAIN; present names without records
 * of the asked type answer NODATA.  CNAMEs are followed. */
#ifndef POSTERN_MSGAUTH_ZONEDNS_H
#define POSTERN_MSGAUTH_ZONEDNS_H

#include "dns/dns.h"

typedef struct zonedns zonedns;

zonedns *zonedns_new(arena *a);
/* Add lines of zone data; ST_FAIL with *err naming the bad line. */
status zonedns_load(zonedns *z, const char *text, char **err);
dns_iface zonedns_iface(zonedns *z);
/* Queries answered so far (for tests of lookup limits). */
int zonedns_queries(const zonedns *z);

#endif
