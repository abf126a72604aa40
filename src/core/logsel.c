/* logsel.c: parsing of log_selector. */
#include "core/logsel.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define LOGSEL(id, name, dflt) { name, dflt },
static const struct { const char *name; int dflt; } sels[LS__COUNT] = {
#include "core/logsel.def"
};
#undef LOGSEL

const char *logsel_name(enum log_sel s) { return (unsigned)s < LS__COUNT ? sels[s].name : "?"; }

bool logsel_on(const log_selectors *ls, enum log_sel s)
{
    return (ls->bits >> s) & 1;
}

bool logsel_parse(const char *value, log_selectors *out, const char **bad)
{
    static char word[128];
    out->bits = 0;
    for (int i = 0; i < LS__COUNT; i++)
        if (sels[i].dflt)
            out->bits |= (uint64_t)1 << i;
    const char *p = value ? value : "";
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(p - w);
        snprintf(word, sizeof word, "%.*s", (int)(n < 100 ? n : 100), w);
        if (w[0] != '+' && w[0] != '-') {
            *bad = word;
            return false;
        }
        bool on = w[0] == '+';
        w++;
        n--;
        if (n == 3 && strncmp(w, "all", 3) == 0) {
            out->bits = on ? ~(uint64_t)0 : 0;
            continue;
        }
        int found = -1;
        for (int i = 0; i < LS__COUNT; i++)
            if (strlen(sels[i].name) == n && strncmp(sels[i].name, w, n) == 0)
                found = i;
        if (found < 0) {
            *bad = word;
            return false;
        }
        if (on)
            out->bits |= (uint64_t)1 << found;
        else
            out->bits &= ~((uint64_t)1 << found);
    }
    return true;
}
