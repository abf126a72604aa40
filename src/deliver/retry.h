/* retry.h: retry hints (LMDB) and retry rules. */
#ifndef POSTERN_RETRY_H
#define POSTERN_RETRY_H

#include "deliver/address.h"
#include "spool/spool.h"
#include <stdbool.h>
#include <time.h>

/* May a delivery of a be tried now?  false with *why when its next try
 * time has not come (queue runs that are not forced skip it). */
bool retry_due(const address_item *a, time_t now, arena *ar, const char **why);
/* Record a temporary failure.  Returns true when the retry rules say the
 * failure is now permanent (retry timeout exceeded, or no retries). */
bool retry_record_failure(address_item *a, const spool_msg *m, time_t now, arena *ar);
void retry_record_success(const address_item *a, arena *ar);
const char *retry_key(const address_item *a, arena *ar);
void retry_close(void);
/* In a new child process: forget the parent's open database. */
void retry_forget(void);

#endif
