/* arena.h: memory pools with a lifetime (config, connection, message,
 * scratch), freed all at once.  Tainted arenas take their memory from one
 * reserved address range, so is_tainted(p) tells in O(1) whether a string
 * came from outside (DESIGN.md section 8), without any per-string flag. */
#ifndef POSTERN_ARENA_H
#define POSTERN_ARENA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct arena arena;

arena *arena_new(const char *name, bool tainted);
void arena_free(arena *a);            /* releases everything, and a itself */
void arena_reset(arena *a);           /* releases all allocations, keeps a */
bool arena_is_tainted(const arena *a);
size_t arena_used(const arena *a);    /* bytes handed out since last reset */

void *arena_alloc(arena *a, size_t n);          /* aligned to 16, not zeroed */
void *arena_calloc(arena *a, size_t n);         /* zeroed */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_memdup(arena *a, const void *p, size_t n);  /* adds a NUL */
char *arena_printf(arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(arena *a, const char *fmt, va_list ap);
/* Grow the most recent allocation p (of old bytes) to new bytes in place if
 * possible; returns false (and leaves p alone) when it cannot. */
bool arena_extend(arena *a, void *p, size_t old, size_t new_size);

/* True when p points into memory of a tainted arena. */
bool is_tainted(const void *p);
/* Copy s into a (tainted or not, by a) */
#define arena_taint_copy(a, s) arena_strdup((a), (s))

#endif
