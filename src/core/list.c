/* list.c: iteration over and construction of Exim-style lists. */
#include "list.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

char *list_next(const char **listp, int *sep, arena *a)
{
    const char *s = *listp;
    if (!s)
        return NULL;
    int c = *sep;
    if (c <= 0) {
        while (isspace((unsigned char)*s))
            s++;
        if (s[0] == '<' && s[1] && (ispunct((unsigned char)s[1]) || iscntrl((unsigned char)s[1]))) {
            c = (unsigned char)s[1];
            s += 2;
        } else {
            c = c ? -c : ':';
        }
        *sep = c;
    }
    while (*s && isspace((unsigned char)*s) && *s != c)
        s++;
    if (!*s) {
        *listp = s;
        return NULL;
    }
    bool special = iscntrl(c) || c == ' ';
    gstr g;
    gstr_init(&g, a, 32);
    for (;;) {
        const char *e = s;
        while (*e && *e != c)
            e++;
        gstr_catn(&g, s, (size_t)(e - s));
        s = e;
        if (!*s)
            break;
        s++;                        /* past the separator */
        if (special || *s != c)
            break;
        gstr_catc(&g, (char)c);     /* doubled: literal */
        s++;
    }
    while (g.len && isspace((unsigned char)g.s[g.len - 1]))
        g.len--;
    g.s[g.len] = '\0';
    *listp = s;
    return g.s;
}

int list_count(const char *list, int sep, arena *scratch)
{
    int n = 0;
    while (list_next(&list, &sep, scratch))
        n++;
    return n;
}

void list_append(gstr *g, int sep, const char *item, bool first)
{
    if (!first && g->len)
        gstr_catc(g, (char)sep);
    for (const char *p = item; *p; p++) {
        if (*p == sep && !iscntrl(sep))
            gstr_catc(g, (char)sep);
        gstr_catc(g, *p);
    }
}

bool list_contains(const char *list, int sep, const char *item, bool caseless, arena *scratch)
{
    char *it;
    while ((it = list_next(&list, &sep, scratch)))
        if (caseless ? strcasecmp(it, item) == 0 : strcmp(it, item) == 0)
            return true;
    return false;
}
