/* smtp_wait.c: the wait-<transport> hints databases.  A message whose
 * delivery to a host was deferred is listed under that host's name; when a
 * later delivery gets through to the host, the delivery process sends the
 * listed messages down the same connection (deliver_continue in
 * src/deliver).  Each record is the message ids end to end, oldest first,
 * at most SMTP_WAIT_MAX of them (the oldest go first when it is full). */
#include "transport/smtp_wait.h"
#include "core/log.h"
#include "spool/hints.h"

#include <lmdb.h>
#include <string.h>

#define WAIT_MAPSIZE (32UL * 1024 * 1024)
#define SMTP_WAIT_MAX 1000
#define HOSTKEY_MAX 255

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
