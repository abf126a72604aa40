/* lookup.h: the lookup drivers behind one table.
 *
 * A driver is single-key (a file and a key: lsearch, iplsearch, dsearch...)
 * or query-style (one query string: dnsdb...).  Adding a driver is one
 * file defining a `const lookup_driver lookup_<name>` and one line in
 * lookup_tab.c.  The generic code here does Exim's "partialN-" /
 * "partial(pfx)" prefixes, the "*" and "*@" default suffixes and the
 * ",opt=value" options, so drivers only find one exact key. */
#ifndef POSTERN_LOOKUP_H
#define POSTERN_LOOKUP_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>

#define LOOKUP_MAX_RESULT (1024 * 1024)    /* bytes of data from one lookup */
#define LOOKUP_MAX_LINE   (64 * 1024)      /* longest logical line in a file */

typedef struct lookup_driver {
    const char *name;
    bool query_style;
    /* Find key in file (single-key) or run query (query-style; key NULL).
     * opts: the ",name=value" options after the type (or NULL).
     * ST_OK with *result in a, ST_NOTFOUND, ST_DEFER or ST_ERROR with *err. */
    status (*find)(const char *file, const char *key, const char *opts, arena *a,
                   char **result, char **err);
    /* ${quote_<name>:...}; NULL when the driver needs no quoting (the
     * string is returned unchanged). */
    char *(*quote)(const char *s, const char *opt, arena *a);
} lookup_driver;

extern const lookup_driver *const lookup_drivers[];   /* NULL-terminated */

const lookup_driver *lookup_find_driver(const char *name, size_t len);

/* A parsed search type such as "partial2-lsearch*@,ret=key". */
typedef struct lookup_spec {
    const lookup_driver *drv;
    int partial;            /* minimum components; -1 when no partial */
    const char *prefix;     /* partial prefix, default "*." */
    bool star, starat;      /* "*" / "*@" suffix */
    const char *opts;       /* text after the first comma, or NULL */
} lookup_spec;

status lookup_parse_type(const char *type, lookup_spec *sp, arena *a, char **err);

/* Do the lookup with partial matching and defaults.  file is the file
 * name (single-key) or the query (query-style, key NULL). */
status lookup_search(const lookup_spec *sp, const char *file, const char *key, arena *a,
                     char **result, char **err);

/* As lookup_search; when a partial-matching key (prefix + shorter key)
 * was the one found, *wild and *fixed are set to the stripped leading
 * components and the remaining key ($1 and $2 in Exim), else NULL. */
status lookup_search_partial(const lookup_spec *sp, const char *file, const char *key, arena *a,
                             char **result, char **err, const char **wild, const char **fixed);

/* Option value from an opts string ("ret=full,filter=dir"), or NULL. */
const char *lookup_opt(const char *opts, const char *name, arena *a);

/* Drivers defined in this directory. */
extern const lookup_driver lookup_lsearch, lookup_wildlsearch, lookup_nwildlsearch,
    lookup_iplsearch, lookup_dsearch;
extern const lookup_driver lookup_dnsdb, lookup_lmdb, lookup_cdb;   /* issue 4 */

#endif
