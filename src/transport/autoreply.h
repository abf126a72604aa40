/* autoreply.h: the pieces of the autoreply transport that keep state in
 * files: the "once" record of who was already answered (an LMDB database,
 * or with once_file_size > 0 a fixed-size file of records cycled oldest
 * first, in Exim's layout: a native time_t, the To: text, a NUL) and the
 * "log" file of replies sent.  Used only by autoreply.c. */
#ifndef POSTERN_TRANSPORT_AUTOREPLY_H
#define POSTERN_TRANSPORT_AUTOREPLY_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define AR_ONCE_MAP_SIZE (256UL * 1024 * 1024)   /* LMDB map: "as large as necessary" */
#define AR_ONCE_FILE_MAX (64L * 1024 * 1024)     /* bytes of a cyclic once file we read */

struct MDB_env;
struct MDB_txn;

typedef struct ar_once {
    const char *path;
    const char *key;           /* the To: text */
    long long file_size;       /* once_file_size: 0 = LMDB */
    /* LMDB */
    struct MDB_env *env;
    struct MDB_txn *txn;
    unsigned dbi;
    /* cyclic file */
    int fd;
    char *buf;                 /* the whole file, with room for one more record */
    size_t size;
    long found;                /* offset of key's record, -1 when absent */
} ar_once;

/* Open the once database or file at path (creating it with mode) and look
 * key up: *then is the time of the last reply to key, 0 for none.  The
 * database stays open (and locked) until ar_once_finish.  ST_DEFER with
 * *err when it cannot be opened or read. */
status ar_once_open(ar_once *o, const char *path, const char *key, long long file_size, mode_t mode,
                    time_t *then, arena *a, char **err);

/* Record a reply to the key at time now (record true), then close. */
void ar_once_finish(ar_once *o, bool record, time_t now);

/* Append text to the log file at path (created with mode) in one write;
 * failures are ignored, as Exim does (the reply has gone). */
void ar_log_append(const char *path, mode_t mode, const char *text);

/* "YYYY-MM-DD HH:MM:SS" for log records, local time. */
const char *ar_log_stamp(time_t t, arena *a);

#endif
