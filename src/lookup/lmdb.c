/* lmdb.c: the lmdb lookup (single-key, read-only), from the seed's
 * "LMDB Lookup support".  The file is an LMDB environment in one file, as
 * "mdb_load -n" makes it (Exim opens it the same way).  Values are stored
 * without a terminating NUL: they are copied by their length, never read
 * as C strings from the map (upstream Exim crashes with SIGBUS doing that
 * when a value ends at the end of the mapped file). */
#include "lookup/lookup.h"

#include <errno.h>
#include <lmdb.h>
#include <string.h>

static status lmdb_find(const char *file, const char *key, const char *opts, arena *a,
                        char **result, char **err)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    const char *what;
    int rc;

    if (!*key)
        return ST_NOTFOUND;             /* as Exim 4.99 does for every lookup */

    if ((rc = mdb_env_create(&env)) != 0) {
        what = "create environment";
        goto bad_open;
    }
    rc = mdb_env_open(env, file, MDB_NOSUBDIR | MDB_RDONLY, 0660);
    if (rc == EACCES || rc == EROFS) {
        /* read-only place where the lock file cannot be made: read without */
        mdb_env_close(env);
        if ((rc = mdb_env_create(&env)) != 0) {
            env = NULL;
            what = "create environment";
            goto bad_open;
        }
        rc = mdb_env_open(env, file, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0660);
    }
    if (rc != 0) {
        what = arena_printf(a, "open environment with %s", file);
        goto bad_open;
    }
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        what = "start transaction";
        goto bad_open;
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0) {
        what = "open database";
        goto bad_open;
    }

    status st;
    MDB_val k = { .mv_size = strlen(key), .mv_data = (void *)key }, v;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        st = ST_NOTFOUND;
    } else if (rc != 0) {
        *err = arena_printf(a, "LMDB: lookup error: %s", mdb_strerror(rc));
        st = ST_DEFER;
    } else if (v.mv_size > LOOKUP_MAX_RESULT) {
        *err = arena_printf(a, "LMDB: lookup error: value of %zu bytes is too long", v.mv_size);
        st = ST_DEFER;
    } else {
        *result = arena_memdup(a, v.mv_data, v.mv_size);   /* by length; adds the NUL */
        st = ST_OK;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st;

bad_open:
    /* like a file that cannot be opened: an expansion error, as Exim */
    *err = arena_printf(a, "LMDB: Unable to %s: %s", what, mdb_strerror(rc));
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return ST_ERROR;
}

const lookup_driver lookup_lmdb = {
    .name = "lmdb",
    .query_style = false,
    .find = lmdb_find,
};
