/* gstr.h: growable strings in an arena.  The buffer is always
 * NUL-terminated, so g->s can be used as a C string at any time; embedded
 * NULs are allowed and counted by len. */
#ifndef POSTERN_GSTR_H
#define POSTERN_GSTR_H

#include "arena.h"
#include <stddef.h>

typedef struct gstr {
    char *s;
    size_t len, cap;
    arena *a;
} gstr;

void gstr_init(gstr *g, arena *a, size_t hint);
gstr *gstr_new(arena *a, size_t hint);
void gstr_catn(gstr *g, const char *p, size_t n);
void gstr_cat(gstr *g, const char *s);
void gstr_catc(gstr *g, char c);
void gstr_printf(gstr *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gstr_truncate(gstr *g, size_t len);
void gstr_reset(gstr *g);
/* Append everything readable from fd until end of file (EINTR retried);
 * past max bytes the rest is read and dropped.  false when data was
 * dropped or a read failed. */
bool gstr_read_fd(gstr *g, int fd, size_t max);

#endif
