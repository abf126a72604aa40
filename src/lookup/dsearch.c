/* dsearch.c: directory lookup: does an entry named key exist in the
 * directory?  Options: ret=full (return the path), filter=file|dir|subdir,
 * key=path (the key may be a relative path). */
#include "lookup.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static status f_dsearch(const char *dir, const char *key, const char *opts, arena *a,
                        char **result, char **err)
{
    struct stat db;
    if (stat(dir, &db) != 0) {
        *err = arena_printf(a, "failed to open %s for directory search: %s", dir, strerror(errno));
        return ST_ERROR;
    }
    if (dir[0] != '/') {
        *err = arena_printf(a, "dirname '%s' for dsearch is not absolute", dir);
        return ST_ERROR;
    }
    if (!S_ISDIR(db.st_mode)) {
        *err = arena_printf(a, "failed to open %s for directory search: %s", dir, strerror(ENOTDIR));
        return ST_ERROR;
    }
    const char *kopt = opts ? lookup_opt(opts, "key", a) : NULL;
    if (kopt && strcmp(kopt, "path") == 0) {
        /* key=path: a relative path below the directory, without . or .. steps */
        if (strstr(key, "/../") || strstr(key, "/./")) {
            *err = arena_printf(a, "key for dsearch lookup contains bad component: %s", key);
            return ST_DEFER;
        }
    } else if (strchr(key, '/')) {
        *err = arena_printf(a, "key for dsearch lookup contains a slash: %s", key);
        return ST_DEFER;
    }
    char *path = arena_printf(a, "%s/%s", dir, key);
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return ST_NOTFOUND;
    const char *filter = opts ? lookup_opt(opts, "filter", a) : NULL;
    if (filter) {
        if (strcmp(filter, "file") == 0 && !S_ISREG(sb.st_mode))
            return ST_NOTFOUND;
        if (strcmp(filter, "dir") == 0 && !S_ISDIR(sb.st_mode))
            return ST_NOTFOUND;
        if (strcmp(filter, "subdir") == 0 &&
            (!S_ISDIR(sb.st_mode) || strcmp(key, ".") == 0 || strcmp(key, "..") == 0))
            return ST_NOTFOUND;
    }
    const char *ret = opts ? lookup_opt(opts, "ret", a) : NULL;
    *result = ret && strcmp(ret, "full") == 0 ? path : arena_strdup(a, key);
    return ST_OK;
}

const lookup_driver lookup_dsearch = {"dsearch", false, f_dsearch, NULL};
