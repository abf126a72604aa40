/* reader.h: turns configuration files into logical lines (internal to
 * src/config): physical lines, macro substitution, .include, conditional
 * skips, comments and continuation lines. */
#ifndef POSTERN_CONFIG_READER_H
#define POSTERN_CONFIG_READER_H

#include "config/config.h"
#include "core/gstr.h"
#include <stdio.h>

#define CONFIG_MAX_INCLUDE_DEPTH 32
#define CONFIG_MAX_IF_DEPTH 64
#define CONFIG_MAX_LINE (1024 * 1024)

typedef struct srcfile {
    const char *name;
    FILE *f;                 /* NULL for an in-memory text */
    const char *text;        /* in-memory text cursor */
    int lineno;
    struct srcfile *up;
} srcfile;

typedef struct reader {
    config *c;
    arena *a;
    srcfile *top;
    macro *last_macro, *first_user_macro;
    int ifdepth;
    struct { int state; int line; const char *file; } ifs[CONFIG_MAX_IF_DEPTH];
    const char *file;        /* position of the logical line just read */
    int line;
    char *err;               /* set on error */
    const char *unknown;     /* option name not found by set_option() */
    bool macros_allowed;     /* false inside a driver or ACL, retry, rewrite */
} reader;

void reader_init(reader *r, config *c, const char *name, FILE *f, const char *text);
/* Next logical line into out (trimmed, non-empty).  Returns 1 for a line,
 * 0 at end of input, -1 on error (r->err set). Macro definitions are
 * consumed here. */
int reader_next(reader *r, gstr *out);
/* Format an error for the current position: sets r->err, returns ST_ERROR. */
status reader_error(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Define a macro (used for -D and builtins). */
status reader_define(reader *r, const char *name, const char *value, bool cmdline, bool builtin, bool redefine);
macro *reader_find_macro(config *c, const char *name);

#endif
