/* logsel.h: Exim's log_selector names ("+name", "-name", "+all"), as bits.
 * An unknown name is a configuration error naming it. */
#ifndef POSTERN_LOGSEL_H
#define POSTERN_LOGSEL_H

#include <stdbool.h>
#include <stdint.h>

#define LOGSEL(id, name, dflt) LS_##id,
enum log_sel {
#include "core/logsel.def"
    LS__COUNT
};
#undef LOGSEL

typedef struct log_selectors {
    uint64_t bits;
} log_selectors;

/* The defaults with the "+x -y" settings of value applied.  Returns false
 * and sets *bad to the offending word (static storage) on error. */
bool logsel_parse(const char *value, log_selectors *out, const char **bad);
bool logsel_on(const log_selectors *ls, enum log_sel s);
const char *logsel_name(enum log_sel s);

#endif
