/* cdb.c: the cdb lookup (single-key) over tinycdb: constant databases as
 * made by "cdb -c".  The first record with the key wins; values are read
 * by length. */
#include "lookup/lookup.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CDB_HEADER = 2048 };   /* the hash table pointers at the start */

static status cdb_lookup_find(const char *file, const char *key, const char *opts, arena *a,
                       char **result, char **err)
{
    if (!*key)
        return ST_NOTFOUND;             /* as Exim 4.99 does for every lookup */
    /* open failures are expansion errors, with Exim's texts */
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = arena_printf(a, "failed to open %s for cdb lookup: %s", file, strerror(errno));
        return ST_ERROR;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        *err = arena_printf(a, "failed to open fstat(%s) failed - cannot do cdb lookup for cdb "
                            "lookup: %s", file, strerror(errno));
        close(fd);
        return ST_ERROR;
    }
    if (sb.st_size < CDB_HEADER) {
        *err = arena_printf(a, "failed to open %s too short for cdb lookup: Success", file);
        close(fd);
        return ST_ERROR;
    }
    struct cdb c;
    if (S_ISDIR(sb.st_mode))
        errno = EISDIR;
    if (S_ISDIR(sb.st_mode) || cdb_init(&c, fd) != 0) {
        *err = arena_printf(a, "failed to open cannot read header from %s for cdb lookup: %s",
                            file, strerror(errno));
        close(fd);
        return ST_ERROR;
    }
    status st;
    int rc = cdb_find(&c, key, (unsigned)strlen(key));
    if (rc == 0) {
        st = ST_NOTFOUND;
    } else if (rc < 0) {
        *err = arena_printf(a, "cdb: %s: corrupt file", file);
        st = ST_DEFER;
    } else {
        unsigned len = cdb_datalen(&c);
        const void *p = cdb_getdata(&c);
        if (len > LOOKUP_MAX_RESULT) {
            *err = arena_printf(a, "cdb: %s: value of %u bytes is too long", file, len);
            st = ST_DEFER;
        } else if (!p) {
            *err = arena_printf(a, "cdb: %s: corrupt file", file);
            st = ST_DEFER;
        } else {
            *result = arena_memdup(a, p, len);
            st = ST_OK;
        }
    }
    cdb_free(&c);
    close(fd);
    return st;
}

const lookup_driver lookup_cdb = {
    .name = "cdb",
    .query_style = false,
    .find = cdb_lookup_find,
};
