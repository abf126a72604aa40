/* dnslist.h: the dnslists ACL condition (DNS black/white lists), with
 * Exim's syntax: items "[txtdomain,]domain[!][=|==|&|=&]ip,ip[/key:key]",
 * "+include_unknown", "+exclude_unknown", "+defer_unknown".
 *
 * For the ACL engine, as Exim does it: take a leading "<x" separator off
 * the condition's text, expand the rest (forced failure: the condition is
 * true; other expansion failure: ERROR, or DEFER if a lookup deferred), put
 * the "<x" back and call dnslist_check with host_ip = $sender_host_address
 * (in the not-SMTP ACLs an item without "/key" is an error: check that
 * first).  On ST_OK copy the result into $dnslist_domain, $dnslist_matched,
 * $dnslist_text and $dnslist_value (connection lifetime).  The log
 * callback gets Exim's texts; "DNS list lookup defer..." belongs under log
 * selector +dnslist_defer, the others always go to the main log.
 * The resolver: dns_iface_unbound(dns_process_resolver()) after
 * dns_configure_from_cfg() (src/lookup/dnsdb.h: dnsdb_process_resolver). */
#ifndef POSTERN_DNSLIST_H
#define POSTERN_DNSLIST_H

#include "dns/dns.h"

typedef struct dnslist_result {
    const char *domain;    /* $dnslist_domain: the list (TXT domain if given) */
    const char *matched;   /* $dnslist_matched: the key, IPs not inverted */
    const char *text;      /* $dnslist_text: first string of the TXT record */
    const char *value;     /* $dnslist_value: "127.0.0.2, 127.0.0.3" */
} dnslist_result;

typedef struct dnslist_ctx {
    dns_iface dns;
    const char *host_ip;   /* key for items without "/key" ($sender_host_address);
                              NULL: such items never match */
    /* optional: notes for the main log (deferred lookups, bad returns) */
    void (*log)(void *logctx, const char *msg);
    void *logctx;
} dnslist_ctx;

/* Check list (already expanded; may start with "<x" for a separator).
 * ST_OK: listed, *res filled.  ST_FAIL: not listed.  ST_DEFER: a lookup
 * failed under +defer_unknown.  *res is left alone unless ST_OK. */
status dnslist_check(const dnslist_ctx *c, const char *list, arena *a, dnslist_result *res);

/* One item split into its parts (exposed for tests and the fuzzer).
   Returns false for "+..." option items (opt set) */
typedef struct dnslist_item {
    const char *domain, *domain_txt, *iplist, *key;
    bool bitmask, all, negate;
} dnslist_item;
void dnslist_parse_item(const char *item, arena *a, dnslist_item *out);

#endif
