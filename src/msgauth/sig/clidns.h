/* clidns.h: DNS for postern-auth's sig commands: the real resolver or a
 * static zone file (see clidns.c). */
#ifndef POSTERN_MSGAUTH_CLIDNS_H
#define POSTERN_MSGAUTH_CLIDNS_H

#include "core/arena.h"
#include "dns/dns.h"

/* A dns_iface answering TXT queries from a "name value" file. */
status clidns_zone(arena *a, const char *path, dns_iface *out, char **err);
/* The real resolver; servers as dns_servers ("ip@port"), NULL = resolv.conf. */
status clidns_resolver(arena *a, const char *servers, dns_iface *out, dns_resolver **r,
                       char **err);

#endif
