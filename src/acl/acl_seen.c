/* acl_seen.c: the "seen" condition (greylisting and the like):
 *   seen = [-]<interval> / key=<k> / readonly / write / refresh=<interval>
 * A timestamp per key in the LMDB hints database <spool_directory>/db/seen.
 * Without '-' it is true when the key was seen since now-interval (and the
 * stamp is renewed); with '-' when it was seen before now-interval (a new
 * key is recorded; an old enough stamp is moved up to the test time so
 * that tidying keeps it).  The default key is $sender_host_address. */
#include "acl/acl_int.h"
#include "spool/hints.h"
#include "core/list.h"
#include "expand/expand.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>

#define SEEN_MAP_SIZE (64u * 1024 * 1024)
#define SEEN_REFRESH_DEFAULT (10 * 86400)

static double now(void)
{
    if (ps.acl_now > 0)
        return ps.acl_now;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

acl_rc acl_seen(acl_ctx *c, const char *arg)
{
    int sep = '/';
    const char *l = arg;
    char *first = list_next(&l, &sep, c->a);
    const char *t = first ? first : "";
    bool before = *t == '-';
    long long interval, refresh = SEEN_REFRESH_DEFAULT;
    if (before)
        t++;
    if (!first || opt_parse_time(t, &interval) != ST_OK)
        return acl_fail_text(c, RC_DEFER, "failed to parse '%s'", arg);
    const char *key = ps.sender_host_address ? ps.sender_host_address : "";
    bool readonly = false, write = false;
    char *o;
    while ((o = list_next(&l, &sep, c->a))) {
        if (strncmp(o, "key=", 4) == 0)
            key = o + 4;
        else if (strcmp(o, "readonly") == 0)
            readonly = true;
        else if (strcmp(o, "write") == 0)
            write = true;
        else if (strncmp(o, "refresh=", 8) == 0) {
            if (opt_parse_time(o + 8, &refresh) != ST_OK)
                return acl_fail_text(c, RC_DEFER, "failed to parse '%s'", arg);
        } else
            return acl_fail_text(c, RC_DEFER, "unrecognised option '%s' in '%s'", o, arg);
    }

    char *spool = NULL, *err = NULL;
    if (expand_string("$spool_directory", c->a, &spool, &err) != ST_OK || !spool || !*spool)
        return acl_fail_text(c, RC_DEFER, "seen database unavailable: %s", err ? err : "no spool_directory");
    char *dir = arena_printf(c->a, "%s/db", spool);
    if (mkdir(dir, 0750) == 0)
        hints_owner(dir);
    else if (errno != EEXIST)
        return acl_fail_text(c, RC_DEFER, "cannot create %s: %s", dir, strerror(errno));
    char *path = arena_printf(c->a, "%s/seen", dir);

    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int r = hints_open(path, SEEN_MAP_SIZE, readonly, &env, &txn, &dbi, c->a);
    if (r != 0)
        return acl_fail_text(c, RC_DEFER, "seen database %s: %s", path, mdb_strerror(r));
    double tnow = now(), test = tnow - (double)interval, stamp = 0;
    key = acl_hint_key(c->a, "seen:", key);   /* never empty (local input has no host) */
    MDB_val k = { strlen(key), (void *)key }, v;
    bool found = mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof stamp;
    if (found)
        memcpy(&stamp, v.mv_data, sizeof stamp);
    bool result = found && (before ? stamp <= test : stamp >= test);

    bool put = false;
    double newstamp = tnow;
    if (!readonly) {
        if (write || !before || !found)
            put = true;
        else if (result && tnow - stamp > (double)refresh) {
            put = true;
            newstamp = test;
        }
    }
    acl_rc rc = result ? RC_OK : RC_FAIL;
    if (put) {
        v.mv_size = sizeof newstamp;
        v.mv_data = &newstamp;
        r = mdb_put(txn, dbi, &k, &v, 0);
        if (r == 0) {
            r = mdb_txn_commit(txn);
            txn = NULL;
        }
        if (r != 0)
            rc = acl_fail_text(c, RC_DEFER, "seen database %s: update failed: %s", path, mdb_strerror(r));
    }
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}
