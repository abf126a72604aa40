/* hints.c: opening the LMDB hints databases under <spool>/db. */
#include "spool/hints.h"
#include "config/config.h"

#include <errno.h>
#include <grp.h>
#include <lmdb.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hints files made by root (e.g. "postern -bh" run by an administrator)
 * must stay usable by the daemon's children, which run as exim_user: give
 * them to exim_user/exim_group (best effort, as Exim does for its db). */
int hints_open(const char *path, size_t mapsize, bool readonly, MDB_env **env, MDB_txn **txn, unsigned *dbi,
               arena *a)
{
    *env = NULL;
    *txn = NULL;
    int r = mdb_env_create(env);
    if (r == 0)
        r = mdb_env_set_mapsize(*env, mapsize);
    if (r == 0)
        r = mdb_env_open(*env, path, MDB_NOSUBDIR, 0640);
    if (r == 0)
        r = mdb_txn_begin(*env, NULL, readonly ? MDB_RDONLY : 0, txn);
    if (r == 0)
        r = mdb_dbi_open(*txn, NULL, 0, dbi);
    if (r != 0) {
        if (*txn)
            mdb_txn_abort(*txn);
        if (*env)
            mdb_env_close(*env);
        *env = NULL;
        *txn = NULL;
        return r;
    }
    hints_owner(path);
    hints_owner(arena_printf(a, "%s-lock", path));
    return 0;
}

void hints_owner(const char *path)
{
    if (geteuid() != 0 || !cfg)
        return;
    const char *u = cfg_str(MO_exim_user), *g = cfg_str(MO_exim_group);
    char *end;
    struct passwd *pw = NULL;
    uid_t uid;
    gid_t gid;
    if (!u)
        return;
    long n = strtol(u, &end, 10);
    if (*u && !*end) {
        uid = (uid_t)n;
        pw = getpwuid(uid);
    } else {
        if (!(pw = getpwnam(u)))
            return;
        uid = pw->pw_uid;
    }
    if (g) {
        n = strtol(g, &end, 10);
        struct group *gr = (*g && !*end) ? NULL : getgrnam(g);
        if (*g && !*end)
            gid = (gid_t)n;
        else if (gr)
            gid = gr->gr_gid;
        else
            return;
    } else if (pw) {
        gid = pw->pw_gid;
    } else {
        return;
    }
    if (lchown(path, uid, gid) != 0)
        return;
}


const char *hints_path(const char *name, arena *a, char **err)
{
    const char *spool = cfg_str(MO_spool_directory);
    if (!spool || !*spool) {
        *err = "spool_directory is not set";
        return NULL;
    }
    const char *dir = arena_printf(a, "%s/db", spool);
    if (mkdir(dir, 0750) == 0)
        hints_owner(dir);
    else if (errno != EEXIST) {
        *err = arena_printf(a, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    return arena_printf(a, "%s/%s", dir, name);
}

int hints_close(MDB_env *env, MDB_txn *txn, bool commit)
{
    int r = 0;
    if (txn) {
        if (commit)
            r = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (env)
        mdb_env_close(env);
    return r;
}
