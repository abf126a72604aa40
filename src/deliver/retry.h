/* retry.h: retry hints (LMDB, Exim's R: and T: keys) and retry rules. */
#ifndef POSTERN_RETRY_H
#define POSTERN_RETRY_H

#include "deliver/address.h"
#include "spool/spool.h"
#include <stdbool.h>
#include <time.h>

/* Keys: R:<domain> or R:<local_part>@<domain> for a routing deferral (by
 * the router's retry_use_local_part), T:... likewise for a local
 * transport's. */
const char *retry_routing_key(const address_item *a, arena *ar);
const char *retry_local_key(const address_item *a, arena *ar);

/* In a queue run: may the address be routed now?  false, with the text
 * of the failure recorded, when its domain's or its own next try has not
 * come (Exim's "retry time not reached", -52). */
bool retry_routing_due(const address_item *a, const char *sender, time_t now, time_t received, arena *ar,
                       const char **text);
/* In a queue run: may a local transport try it now?  (-53 when not) */
bool retry_local_due(const address_item *a, time_t now, time_t received, arena *ar);
/* May the smtp transport try this host (and this message on it) now? */
bool retry_host_usable(const char *host_key, const char *message_key, const char *domain, time_t received,
                       time_t now, arena *ar);

/* Record a temporary failure for the destinations it concerns (the
 * routing key, the local key, or the smtp transport's host, message and
 * address keys).  Returns true when all of them are past their retry
 * rules (or have none): the failure is now permanent. */
bool retry_record_failure(address_item *a, const spool_msg *m, time_t now, arena *ar);
/* The smtp transport: a host it has moved on from failed (the last one
 * tried is recorded with the address, by retry_record_failure). */
void retry_host_failed(const char *key, const char *domain, int err, const char *message, time_t received,
                       arena *ar);
/* Remove the records a success makes stale. */
void retry_routing_success(const address_item *a, const char *sender, arena *ar);
void retry_record_success(const address_item *a, arena *ar);

#endif
