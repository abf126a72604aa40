/* hints.h: the hints databases under <spool_directory>/db (Exim's
 * "hints" files): one LMDB file per database (ratelimit, seen,
 * wait-<transport>, ...), opened per use so that processes forked from
 * one another never share an environment (an LMDB rule).  Files made by
 * root are given to exim_user/exim_group so the daemon's children, which
 * run as exim_user, can still use them. */
#ifndef POSTERN_HINTS_H
#define POSTERN_HINTS_H

#include "core/arena.h"
#include <stdbool.h>
#include <stddef.h>

struct MDB_env;
struct MDB_txn;

/* Running as root: give a hints file or directory to exim_user/exim_group. */
void hints_owner(const char *path);

/* Open the LMDB hints database at path (a single file) and begin a
 * transaction, read-only or not.  0, or an LMDB error (nothing left open). */
int hints_open(const char *path, size_t mapsize, bool readonly, struct MDB_env **env,
               struct MDB_txn **txn, unsigned *dbi, arena *a);

/* <spool_directory>/db/<name>, creating the directory; NULL with *err. */
const char *hints_path(const char *name, arena *a, char **err);

/* Close what hints_open opened: commit (true) or abort. 0 or an LMDB error. */
int hints_close(struct MDB_env *env, struct MDB_txn *txn, bool commit);

#endif
