/* queue.h: queue inspection and manipulation from the command line, in
 * Exim's output formats: -bp, -bpa, -bpc, -bpu, -Mvh, -Mvb, -Mvl, -Mrm, -Mf,
 * -Mt, -Mmad, -Mmd, -Mar, -Mes. */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include "spool/spool.h"
#include <stdio.h>

/* -bp, -bpc, -bpu, -bpa (also the delivered addresses redirection made) */
typedef enum queue_list_mode { QL_ALL, QL_COUNT, QL_UNDELIVERED, QL_GENERATED } queue_list_mode;

/* List the queue; returns the exit code. */
int queue_list(const spool_settings *ss, queue_list_mode mode, FILE *out);
/* One action on the messages named in ids: 'h' -Mvh, 'b' -Mvb, 'l' -Mvl,
 * 'r' -Mrm, 'f' -Mf, 't' -Mt.  Returns the exit code. */
int queue_action(const spool_settings *ss, char action, char **ids, int nids, FILE *out);

/* An address given to -Mmd, -Mar or -Mes, as the caller parsed it: the
 * working address, or err (the parser's reason, or "domain missing"). */
typedef struct queue_addr {
    const char *arg;
    const char *addr;
    const char *err;
} queue_addr;

/* Change a message's envelope: 'd' -Mmd (mark addrs delivered), 'a' -Mar
 * (add recipients), 's' -Mes (the sender), 'A' -Mmad (mark every
 * recipient delivered; no addrs).  Returns the exit code. */
int queue_edit(const spool_settings *ss, char action, const char *id, const queue_addr *addrs, int n, FILE *out);

#endif
