/* builtins.c: the builtin macros (_HAVE_*, _DRIVER_*, _OPT_*), kept in
 * one sorted table built once per process, so that reading a configuration
 * does not define hundreds of macros each time.  Options postern does not
 * implement yet (OF_UNIMPL) have no _OPT_ macro, as in an Exim built
 * without them. */
#include "config/builtins.h"
#include "config/drivers.h"
#include "core/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char **names;
static int nnames, cap;

static void add(const char *name)
{
    if (nnames == cap) {
        cap = cap ? cap * 2 : 1024;
        names = realloc(names, sizeof *names * (size_t)cap);
        if (!names)
            panic("builtin macros: out of memory");
    }
    names[nnames] = strdup(name);
    if (!names[nnames])
        panic("builtin macros: out of memory");
    nnames++;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void upcase_into(char *dst, size_t len, const char *prefix, const char *name)
{
    size_t o = (size_t)snprintf(dst, len, "%s", prefix);
    for (const char *p = name; *p && o + 1 < len; p++)
        dst[o++] = (char)toupper((unsigned char)*p);
    dst[o] = '\0';
}

static void collect(void)
{
    static const char *const have[] = {
        "ARC", "DCC", "DKIM", "DMARC", "DANE", "DNSSEC", "DOMAINKEYS", "OPENSSL",
        "SPF", "SRS", "TLS", "XCLIENT", "LOOKUP_CDB", "LOOKUP_DNSDB", "LOOKUP_DSEARCH",
        "LOOKUP_LMDB", "LOOKUP_LSEARCH", "AUTH_CRAM_MD5", "AUTH_PLAINTEXT",
        "TRANSPORT_QUEUEFILE", "DSN_INFO", "LOG_PROTOCOL_DETAIL",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++) {
        upcase_into(buf, sizeof buf, "_HAVE_", have[i]);
        add(buf);
    }
    static const char *const cls_upper[DC__COUNT] = { "ROUTER", "TRANSPORT", "AUTHENTICATOR" };
    static const char *const gen_upper[DC__COUNT] = { "ROUTERS", "TRANSPORTS", "AUTHENTICATORS" };
    for (int c = 0; c < DC__COUNT; c++) {
        const driver_table *t = &driver_tables[c];
        for (int i = 0; i < t->ngeneric; i++) {
            if (t->generic[i].flags & OF_UNIMPL)
                continue;
            char pre[256];
            snprintf(pre, sizeof pre, "_OPT_%s_", gen_upper[c]);
            upcase_into(buf, sizeof buf, pre, t->generic[i].name);
            add(buf);
        }
        for (int d = 0; d < t->ndrivers; d++) {
            const driver_entry *e = &t->drivers[d];
            if (!e->available)
                continue;
            char pre[256];
            snprintf(pre, sizeof pre, "_DRIVER_%s_", cls_upper[c]);
            upcase_into(buf, sizeof buf, pre, e->info.name);
            add(buf);
            for (int i = 0; i < e->info.nopts; i++) {
                if (e->info.opts[i].flags & OF_UNIMPL)
                    continue;
                char pre2[128];
                upcase_into(pre2, sizeof pre2, "", e->info.name);
                snprintf(pre, sizeof pre, "_OPT_%s_%s_", cls_upper[c], pre2);
                upcase_into(buf, sizeof buf, pre, e->info.opts[i].name);
                add(buf);
            }
        }
    }
    for (int i = 0; i < MO__COUNT; i++) {
        if (main_optdefs[i].flags & OF_UNIMPL)
            continue;
        upcase_into(buf, sizeof buf, "_OPT_MAIN_", main_optdefs[i].name);
        add(buf);
    }
}


const char *const *builtin_macros(int *n)
{
    if (!names) {
        collect();
        qsort(names, (size_t)nnames, sizeof *names, cmp);
    }
    *n = nnames;
    return (const char *const *)names;
}

size_t builtin_macro_at(const char *s)
{
    int n;
    const char *const *tab = builtin_macros(&n);
    size_t len = 0;
    while (isupper((unsigned char)s[len]) || isdigit((unsigned char)s[len]) || s[len] == '_')
        len++;
    /* the longest builtin name that starts here */
    while (len > 1) {
        int lo = 0, hi = n - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            int c = strncmp(s, tab[mid], len);
            if (c == 0 && tab[mid][len] == '\0')
                return len;
            if (c < 0 || (c == 0 && tab[mid][len] != '\0'))
                hi = mid - 1;
            else
                lo = mid + 1;
        }
        len--;
    }
    return 0;
}
