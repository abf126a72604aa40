/* deliver.h: the delivery process for one message (Exim's -M): lock it,
 * route every undelivered recipient, run the transports (local ones in a
 * child under the target uid/gid), journal what was delivered, log =>,
 * ->, **, ==, generate bounces, and rewrite or remove the spool files. */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include "core/status.h"
#include "spool/spool.h"
#include <stdbool.h>

typedef struct deliver_opts {
    bool force;        /* -M, -qf: ignore retry times */
    bool thaw;         /* -qff: deliver frozen messages too */
    bool queue_run;    /* a queue runner's delivery: routing and local retry times apply */
    bool give_up;      /* -Mg: fail every undelivered address ("cancelled by" the caller) */
} deliver_opts;

/* Deliver message id.  ST_OK: finished (delivered or bounced, spool files
 * removed); ST_DEFER: something remains on the queue; ST_SKIP: locked by
 * another process or frozen; ST_ERROR: the spool files are unusable. */
status deliver_message(const char *id, const deliver_opts *o);

/* Queue runner (-q, -qf, -qff): one delivery process per message, in
 * arrival order (or random order unless queue_run_in_order). */
int deliver_queue_run(const deliver_opts *o);

/* After reception: deliver at once in a child process unless the
 * configuration or the ACL said to queue only. */
void deliver_after_receive(const char *id, bool queue_only, bool override_queue_only);

/* Deliver a message now, in a child process, and wait for it (-odi). */
void deliver_now(const char *id);

/* A message delivery made (bounce, warning, autoreply): delivered now by
 * a child process, waited for (as Exim does), unless queue_only is set. */
void deliver_generated(const char *id);

#endif
