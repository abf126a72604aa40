/* lsearch.c: the linear-search file lookups: lsearch (exact key,
 * caseless), wildlsearch (keys are expanded, then matched as domain-list
 * patterns), nwildlsearch (the same without expansion) and iplsearch
 * (keys are IP addresses or CIDR networks). */
#include "lookup.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "core/gstr.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

enum ls_mode { LS_PLAIN, LS_WILD, LS_NWILD, LS_IP };

/* Read the next logical record (a line plus its continuation lines) into
 * g; returns false at EOF. */
static bool next_record(FILE *f, gstr *g, bool *pending, char *line, size_t linesz, size_t *first_len)
{
    gstr_reset(g);
    for (;;) {
        if (!*pending) {
            if (!fgets(line, (int)linesz, f))
                return false;
        }
        *pending = false;
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\0')
            continue;
        if (isspace((unsigned char)line[0])) {
            const char *p = line;
            while (isspace((unsigned char)*p))
                p++;
            if (!*p)
                continue;
            continue;   /* continuation with no record: ignore */
        }
        break;
    }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    gstr_catn(g, line, n);
    while (g->len && isspace((unsigned char)g->s[g->len - 1]))
        g->len--;
    g->s[g->len] = 0;
    *first_len = g->len;
    /* continuation lines: each joined with one space */
    while (fgets(line, (int)linesz, f)) {
        if (!isspace((unsigned char)line[0]) || line[0] == '\n') {
            if (line[0] == '\n')
                continue;
            *pending = true;
            break;
        }
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            continue;
        n = strlen(p);
        while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
            n--;
        while (g->len > *first_len && isspace((unsigned char)g->s[g->len - 1]))
            g->len--;
        gstr_catc(g, ' ');
        gstr_catn(g, p, n);
        if (g->len > LOOKUP_MAX_LINE)
            break;
    }
    return true;
}

/* Split a record into key and data; the key may be quoted. */
static void split_record(char *rec, size_t first_len, arena *a, char **key, char **data,
                         const char **rest, bool colon_ends)
{
    const char *first_end = rec + first_len;
    char *s = rec;
    gstr k;
    gstr_init(&k, a, 32);
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) {
                s++;
                switch (*s) {
                case 'n': gstr_catc(&k, '\n'); break;
                case 't': gstr_catc(&k, '\t'); break;
                case 'r': gstr_catc(&k, '\r'); break;
                default: gstr_catc(&k, *s); break;
                }
                s++;
                continue;
            }
            gstr_catc(&k, *s++);
        }
        if (*s == '"')
            s++;
    } else {
        while (*s && !isspace((unsigned char)*s) && !(colon_ends && *s == ':'))
            gstr_catc(&k, *s++);
    }
    *rest = s;
    /* white space and a colon after the key, on the key's own line only: the
     * data of "key:" followed by a continuation line starts with its space */
    while (s < first_end && isspace((unsigned char)*s))
        s++;
    if (s < first_end && *s == ':')
        s++;
    while (s < first_end && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    *key = k.s;
    *data = arena_strndup(a, s, n);
}

static status ls_find(enum ls_mode mode, const char *file, const char *key, const char *opts,
                      arena *a, char **result, char **err)
{
    unsigned char kip[16];
    int kfam = 0, kmask = -1;
    bool star = mode == LS_IP && strcmp(key, "*") == 0;   /* the iplsearch* default */
    if (mode == LS_IP && !star && (strchr(key, '/') || !ip_parse(key, kip, &kfam, &kmask))) {
        *err = arena_printf(a, "\"%s\" is not a valid iplsearch key (an IP address, with optional "
                            "CIDR mask, is wanted): in a host list, use net-iplsearch as the search type", key);
        return ST_DEFER;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        *err = arena_printf(a, "failed to open %s for linear search: %s", file, strerror(errno));
        return ST_ERROR;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        static const char *const kind[] = {"lsearch", "wildlsearch", "nwildlsearch", "iplsearch"};
        *err = arena_printf(a, "%s is not a regular file (%s lookup)", file, kind[mode]);
        return ST_ERROR;
    }
    arena *w = arena_new("lsearch", false);
    char *line = arena_alloc(w, LOOKUP_MAX_LINE);
    gstr rec;
    gstr_init(&rec, w, 256);
    bool pending = false;
    status st = ST_NOTFOUND;
    const char *ret = opts ? lookup_opt(opts, "ret", w) : NULL;
    size_t first_len = 0;
    while (next_record(f, &rec, &pending, line, LOOKUP_MAX_LINE, &first_len)) {
        char *k, *d;
        const char *rest;
        split_record(rec.s, first_len, w, &k, &d, &rest, true);
        bool hit = false;
        switch (mode) {
        case LS_PLAIN:
            hit = strcasecmp(k, key) == 0;
            break;
        case LS_NWILD: {
            char *e2 = NULL;
            status ms = match_domain_one(key, k, w, NULL, &e2);
            if (ms == ST_DEFER || ms == ST_ERROR) {
                *err = arena_strdup(a, e2 ? e2 : "");
                st = ST_DEFER;
                goto out;
            }
            hit = ms == ST_OK;
            break;
        }
        case LS_WILD: {
            char *ek, *e2;
            if (expand_string(k, w, &ek, &e2) != ST_OK) {
                log_write(LOG_MAIN | LOG_PANIC, "failed to expand \"%s\" while checking a list: %s", k, e2);
                *err = arena_strdup(a, "");
                st = ST_DEFER;
                goto out;
            }
            char *e3 = NULL;
            status ms = match_domain_one(key, ek, w, NULL, &e3);
            if (ms == ST_DEFER || ms == ST_ERROR) {
                *err = arena_strdup(a, e3 ? e3 : "");
                st = ST_DEFER;
                goto out;
            }
            hit = ms == ST_OK;
            break;
        }
        case LS_IP: {
            unsigned char nip[16];
            int nfam, nmask;
            if (star)
                hit = strcmp(k, "*") == 0;
            else if (ip_parse(k, nip, &nfam, &nmask))
                hit = ip_in_net(kip, kfam, nip, nfam, nmask < 0 ? (nfam == 4 ? 32 : 128) : nmask);
            break;
        }
        }
        if (hit) {
            if (ret && strcmp(ret, "full") == 0) {
                size_t rl = strlen(rest);
                while (rl && isspace((unsigned char)rest[rl - 1]))
                    rl--;
                *result = arena_printf(a, "%s%.*s", k, (int)rl, rest);
            } else
                *result = arena_strdup(a, ret && strcmp(ret, "key") == 0 ? k : d);
            st = ST_OK;
            break;
        }
    }
out:
    fclose(f);
    arena_free(w);
    return st;
}

static status f_lsearch(const char *file, const char *key, const char *opts, arena *a, char **r, char **e)
{
    return ls_find(LS_PLAIN, file, key, opts, a, r, e);
}
static status f_wild(const char *file, const char *key, const char *opts, arena *a, char **r, char **e)
{
    return ls_find(LS_WILD, file, key, opts, a, r, e);
}
static status f_nwild(const char *file, const char *key, const char *opts, arena *a, char **r, char **e)
{
    return ls_find(LS_NWILD, file, key, opts, a, r, e);
}
static status f_ip(const char *file, const char *key, const char *opts, arena *a, char **r, char **e)
{
    return ls_find(LS_IP, file, key, opts, a, r, e);
}

/* Quote for lsearch: nothing to do (keys are used as given). */
const lookup_driver lookup_lsearch = {"lsearch", false, f_lsearch, NULL};
const lookup_driver lookup_wildlsearch = {"wildlsearch", false, f_wild, NULL};
const lookup_driver lookup_nwildlsearch = {"nwildlsearch", false, f_nwild, NULL};
const lookup_driver lookup_iplsearch = {"iplsearch", false, f_ip, NULL};
