/* queue.h: queue inspection and manipulation from the command line, in
 * Exim's output formats: -bp, -bpc, -bpu, -Mvh, -Mvb, -Mvl, -Mrm, -Mf, -Mt. */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include "spool/spool.h"
#include <stdio.h>

typedef enum queue_list_mode { QL_ALL, QL_COUNT, QL_UNDELIVERED } queue_list_mode;

/* List the queue; returns the exit code. */
int queue_list(const spool_settings *ss, queue_list_mode mode, FILE *out);
/* One action on the messages named in ids: 'h' -Mvh, 'b' -Mvb, 'l' -Mvl,
 * 'r' -Mrm, 'f' -Mf, 't' -Mt.  Returns the exit code. */
int queue_action(const spool_settings *ss, char action, char **ids, int nids, FILE *out);

#endif
