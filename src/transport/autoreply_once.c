/* autoreply_once.c: the autoreply transport's "once" record and "log"
 * file.  The once record maps the To: text of a reply to the time it was
 * sent.  With once_file_size 0 it is an LMDB database (Exim uses a DBM
 * file; LMDB is our key-value store); otherwise a plain file holding
 * records of a native time_t, the To: text and a NUL, oldest first, which
 * is rewritten whole and never grows past once_file_size: the oldest
 * records are dropped to make room.  Unlike Exim, the file is locked
 * (fcntl) between lookup and update and truncated to what was written. */
#include "transport/autoreply.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LMDB keys are at most mdb_env_get_maxkeysize() bytes (511); a longer
 * To: text keeps its start and gets a hash of the whole (FNV-1a 64). */
static MDB_val once_key(const ar_once *o, arena *a)
{
    size_t n = strlen(o->key), max = (size_t)mdb_env_get_maxkeysize(o->env);
    MDB_val k = { .mv_size = n, .mv_data = (void *)o->key };
    if (n == 0) {
        k.mv_data = (void *)"\n";        /* LMDB refuses empty keys */
        k.mv_size = 1;
    } else if (n > max) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < n; i++)
            h = (h ^ (unsigned char)o->key[i]) * 1099511628211ULL;
        char *s = arena_alloc(a, max + 1);
        int tail = snprintf(s + max - 17, 18, "#%016llx", (unsigned long long)h);
        memcpy(s, o->key, max - 17);
        k.mv_data = s;
        k.mv_size = max - 17 + (size_t)tail;
    }
    return k;
}

static status open_lmdb(ar_once *o, mode_t mode, time_t *then, arena *a, char **err)
{
    int r = mdb_env_create(&o->env);
    if (r == 0)
        r = mdb_env_set_mapsize(o->env, AR_ONCE_MAP_SIZE);
    if (r == 0)
        r = mdb_env_open(o->env, o->path, MDB_NOSUBDIR, mode);
    if (r == 0)
        r = mdb_txn_begin(o->env, NULL, 0, &o->txn);
    if (r == 0)
        r = mdb_dbi_open(o->txn, NULL, 0, &o->dbi);
    if (r == 0) {
        MDB_val k = once_key(o, a), v;
        r = mdb_get(o->txn, o->dbi, &k, &v);
        if (r == 0 && v.mv_size >= sizeof(time_t))
            memcpy(then, v.mv_data, sizeof(time_t));
        if (r == MDB_NOTFOUND || r == 0)
            return ST_OK;
    }
    *err = arena_printf(a, "%s", mdb_strerror(r));
    if (o->txn)
        mdb_txn_abort(o->txn);
    if (o->env)
        mdb_env_close(o->env);
    o->txn = NULL;
    o->env = NULL;
    return ST_DEFER;
}

static status open_cyclic(ar_once *o, mode_t mode, time_t *then, arena *a, char **err)
{
    o->fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, mode);
    struct stat st;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (o->fd < 0 || fcntl(o->fd, F_SETLKW, &fl) != 0 || fstat(o->fd, &st) != 0) {
        *err = arena_printf(a, "%s", strerror(errno));
        goto fail;
    }
    if (st.st_size > AR_ONCE_FILE_MAX) {
        *err = arena_printf(a, "file is larger than %ld bytes", AR_ONCE_FILE_MAX);
        goto fail;
    }
    o->size = (size_t)st.st_size;
    o->buf = arena_alloc(a, o->size + sizeof(time_t) + strlen(o->key) + 1);
    for (size_t got = 0; got < o->size;) {
        ssize_t n = pread(o->fd, o->buf + got, o->size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = arena_printf(a, "error while reading \"once\" file");
            goto fail;
        }
        got += (size_t)n;
    }
    o->found = -1;
    for (size_t p = 0; p + sizeof(time_t) < o->size;) {
        const char *s = o->buf + p + sizeof(time_t);
        const char *nul = memchr(s, '\0', o->size - p - sizeof(time_t));
        if (!nul)
            break;                  /* a torn record at the end: ignored */
        if (strcmp(s, o->key) == 0) {
            memcpy(then, o->buf + p, sizeof(time_t));
            o->found = (long)p;
            break;
        }
        p = (size_t)(nul + 1 - o->buf);
    }
    return ST_OK;
fail:
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    return ST_DEFER;
}

status ar_once_open(ar_once *o, const char *path, const char *key, long long file_size, mode_t mode,
                    time_t *then, arena *a, char **err)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    o->path = path;
    o->key = key;
    o->file_size = file_size;
    *then = 0;
    return file_size > 0 ? open_cyclic(o, mode, then, a, err) : open_lmdb(o, mode, then, a, err);
}

/* The length of the record at offset p of the buffer. */
static size_t record_len(const ar_once *o, size_t p, size_t end)
{
    const char *s = o->buf + p + sizeof(time_t);
    const char *nul = memchr(s, '\0', end - p - sizeof(time_t));
    return nul ? (size_t)(nul + 1 - (o->buf + p)) : end - p;
}

static void finish_cyclic(ar_once *o, time_t now)
{
    size_t start = 0, end = o->size;
    if (o->found >= 0) {
        memcpy(o->buf + o->found, &now, sizeof(time_t));
    } else {
        size_t kn = strlen(o->key) + 1;
        memcpy(o->buf + end, &now, sizeof(time_t));
        memcpy(o->buf + end + sizeof(time_t), o->key, kn);
        end += sizeof(time_t) + kn;
        /* drop the oldest records until the file fits (keeping the new one) */
        while (end - start > (size_t)o->file_size && start < o->size)
            start += record_len(o, start, o->size);
    }
    size_t n = end - start;
    if (pwrite(o->fd, o->buf + start, n, 0) == (ssize_t)n && ftruncate(o->fd, (off_t)n) == 0)
        fsync(o->fd);
}

void ar_once_finish(ar_once *o, bool record, time_t now)
{
    if (o->env) {
        if (record) {
            arena *a = arena_new("once", false);
            MDB_val k = once_key(o, a), v = { .mv_size = sizeof(time_t), .mv_data = &now };
            if (mdb_put(o->txn, o->dbi, &k, &v, 0) == 0)
                mdb_txn_commit(o->txn);
            else
                mdb_txn_abort(o->txn);
            arena_free(a);
        } else {
            mdb_txn_abort(o->txn);
        }
        mdb_env_close(o->env);
        o->env = NULL;
        o->txn = NULL;
    }
    if (o->fd >= 0) {
        if (record)
            finish_cyclic(o, now);
        close(o->fd);          /* releases the lock */
        o->fd = -1;
    }
}

void ar_log_append(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) {
        /* nothing to do: the reply has been sent (Exim ignores this too) */
    }
    close(fd);
}

const char *ar_log_stamp(time_t t, arena *a)
{
    struct tm tm;
    char buf[32];
    localtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return arena_strdup(a, buf);
}
