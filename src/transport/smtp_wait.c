/* smtp_wait.c: the wait-<transport> hints databases.  A message whose
 * delivery to a host was deferred is listed under that host's name; when a
 * later delivery gets through to the host, the delivery process sends the
 * listed messages down the same connection (deliver_continue in
 * src/deliver).  Each record is the message ids end to end, oldest first,
 * at most SMTP_WAIT_MAX of them (the oldest go first when it is full).
 * Also the misc database's host serialization records (serialize_hosts). */
#include "transport/smtp_wait.h"
#include "core/log.h"
#include "spool/hints.h"

#include <lmdb.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define WAIT_MAPSIZE (32UL * 1024 * 1024)
#define SMTP_WAIT_MAX 1000
#define HOSTKEY_MAX 255
#define MISC_MAPSIZE (4UL * 1024 * 1024)
#define SERIALIZE_STALE (6 * 60 * 60)   /* seconds: older records are ignored */

static const char *db_file(const char *tpname, arena *a, char **err)
{
    return hints_path(arena_printf(a, "wait-%.200s", tpname), a, err);
}

static MDB_val host_key(const char *host)
{
    size_t n = strlen(host);
    MDB_val k = { n > HOSTKEY_MAX ? HOSTKEY_MAX : n, (void *)host };
    return k;
}

void smtp_wait_add(const char *tpname, const host_item *hosts, const char *msgid, arena *a)
{
    char *err = NULL;
    const char *path = db_file(tpname, a, &err);
    if (!path)
        return;
    MDB_env *env;
    MDB_txn *txn;
    unsigned dbi;
    int r = hints_open(path, WAIT_MAPSIZE, false, &env, &txn, &dbi, a);
    if (r != 0) {
        log_write(LOG_MAIN | LOG_PANIC, "cannot open %s: %s", path, mdb_strerror(r));
        return;
    }
    const char *prev = "";
    for (const host_item *h = hosts; h; h = h->next) {
        if (!h->name || !strcmp(prev, h->name))
            continue;
        prev = h->name;
        MDB_val k = host_key(h->name), v;
        size_t have = 0;
        const char *old = NULL;
        if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size % SPOOL_ID_LEN == 0) {
            old = v.mv_data;
            have = v.mv_size / SPOOL_ID_LEN;
        }
        bool listed = false;
        for (size_t i = 0; i < have && !listed; i++)
            listed = !memcmp(old + i * SPOOL_ID_LEN, msgid, SPOOL_ID_LEN);
        if (listed)
            continue;
        size_t keep = have < SMTP_WAIT_MAX ? have : SMTP_WAIT_MAX - 1;
        char *buf = arena_alloc(a, (keep + 1) * SPOOL_ID_LEN);
        if (keep)
            memcpy(buf, old + (have - keep) * SPOOL_ID_LEN, keep * SPOOL_ID_LEN);
        memcpy(buf + keep * SPOOL_ID_LEN, msgid, SPOOL_ID_LEN);
        MDB_val nv = { (keep + 1) * SPOOL_ID_LEN, buf };
        mdb_put(txn, dbi, &k, &nv, 0);
    }
    r = hints_close(env, txn, true);
    if (r != 0)
        log_write(LOG_MAIN | LOG_PANIC, "cannot update %s: %s", path, mdb_strerror(r));
}

const char *smtp_wait_next(const char *tpname, const char *host, const char *except, arena *a)
{
    char *err = NULL;
    const char *path = db_file(tpname, a, &err);
    if (!path)
        return NULL;
    MDB_env *env;
    MDB_txn *txn;
    unsigned dbi;
    if (hints_open(path, WAIT_MAPSIZE, false, &env, &txn, &dbi, a) != 0)
        return NULL;
    MDB_val k = host_key(host), v;
    const char *found = NULL;
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size % SPOOL_ID_LEN == 0 && v.mv_size) {
        size_t have = v.mv_size / SPOOL_ID_LEN;
        const char *ids = v.mv_data;
        char *rest = arena_alloc(a, v.mv_size);
        size_t nrest = 0;
        for (size_t i = 0; i < have; i++) {
            const char *id = ids + i * SPOOL_ID_LEN;
            if (!found && (!except || memcmp(id, except, SPOOL_ID_LEN) != 0))
                found = arena_strndup(a, id, SPOOL_ID_LEN);
            else if (!except || memcmp(id, except, SPOOL_ID_LEN) != 0)
                memcpy(rest + nrest++ * SPOOL_ID_LEN, id, SPOOL_ID_LEN);
        }
        if (nrest) {
            MDB_val nv = { nrest * SPOOL_ID_LEN, rest };
            mdb_put(txn, dbi, &k, &nv, 0);
        } else {
            mdb_del(txn, dbi, &k, NULL);
        }
    }
    hints_close(env, txn, true);
    return found;
}

/* ---- serialize_hosts: the misc database ------------------------------------ */

typedef struct serial_record {
    int64_t time_stamp;
    int32_t count;
} serial_record;

bool smtp_serialize_start(const char *key, unsigned limit, arena *a)
{
    char *err = NULL;
    const char *path = hints_path("misc", a, &err);
    if (!path)
        return false;
    MDB_env *env;
    MDB_txn *txn;
    unsigned dbi;
    int r = hints_open(path, MISC_MAPSIZE, false, &env, &txn, &dbi, a);
    if (r != 0) {
        log_write(LOG_MAIN | LOG_PANIC, "cannot open %s: %s", path, mdb_strerror(r));
        return false;
    }
    MDB_val k = host_key(key), v;
    serial_record rec = { .time_stamp = (int64_t)time(NULL), .count = 1 };
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof rec) {
        serial_record old;
        memcpy(&old, v.mv_data, sizeof old);
        if (rec.time_stamp - old.time_stamp < SERIALIZE_STALE) {
            if (old.count >= (int32_t)limit) {
                hints_close(env, txn, false);
                return false;
            }
            rec.count = old.count + 1;
        }
    }
    MDB_val nv = { sizeof rec, &rec };
    int pr = mdb_put(txn, dbi, &k, &nv, 0);
    int cr = hints_close(env, txn, pr == 0);
    if (pr != 0 || cr != 0) {
        log_write(LOG_MAIN | LOG_PANIC, "cannot update %s: %s", path, mdb_strerror(pr ? pr : cr));
        return false;
    }
    return true;
}

void smtp_serialize_end(const char *key, arena *a)
{
    char *err = NULL;
    const char *path = hints_path("misc", a, &err);
    if (!path)
        return;
    MDB_env *env;
    MDB_txn *txn;
    unsigned dbi;
    if (hints_open(path, MISC_MAPSIZE, false, &env, &txn, &dbi, a) != 0)
        return;
    MDB_val k = host_key(key), v;
    serial_record rec;
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != sizeof rec) {
        hints_close(env, txn, false);
        return;
    }
    memcpy(&rec, v.mv_data, sizeof rec);
    if (--rec.count > 0) {
        MDB_val nv = { sizeof rec, &rec };
        mdb_put(txn, dbi, &k, &nv, 0);
    } else {
        mdb_del(txn, dbi, &k, NULL);
    }
    hints_close(env, txn, true);
}
