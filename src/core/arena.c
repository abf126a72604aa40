/* arena.c: block allocator behind the arenas.  Untainted blocks come from
 * malloc; tainted blocks are carved from one reserved mapping so that taint
 * is a pointer-range test. */
#include "arena.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_ALIGN 16
#define BLOCK_MIN (16 * 1024)
#define TAINT_RESERVE ((size_t)8 << 30)   /* 8 GiB of address space */
#define TAINT_CHUNK (64 * 1024)

struct block {
    struct block *next;
    size_t size;          /* usable bytes after the header */
    size_t used;
    size_t total;         /* bytes of the whole mapping / allocation */
    _Alignas(16) unsigned char data[];
};

struct arena {
    const char *name;
    bool tainted;
    struct block *head;   /* current block first */
    size_t handed;
    void *last;           /* most recent allocation, for arena_extend */
};

/* ---- tainted region ---------------------------------------------------- */

static struct {
    unsigned char *base, *brk;
    struct block *free;   /* released tainted blocks, first fit */
} taint;

static void taint_init(void)
{
    if (taint.base)
        return;
    void *p = mmap(NULL, TAINT_RESERVE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        panic("arena: cannot reserve tainted address space");
    taint.base = taint.brk = p;
}

static struct block *taint_block(size_t total)
{
    taint_init();
    for (struct block **bp = &taint.free; *bp; bp = &(*bp)->next) {
        if ((*bp)->total >= total) {
            struct block *b = *bp;
            *bp = b->next;
            return b;
        }
    }
    total = (total + TAINT_CHUNK - 1) / TAINT_CHUNK * TAINT_CHUNK;
    if ((size_t)(taint.brk - taint.base) + total > TAINT_RESERVE)
        panic("arena: tainted address space exhausted");
    if (mprotect(taint.brk, total, PROT_READ | PROT_WRITE) != 0)
        panic("arena: mprotect failed");
    struct block *b = (struct block *)taint.brk;
    taint.brk += total;
    b->total = total;
    return b;
}

bool is_tainted(const void *p)
{
    const unsigned char *c = p;
    return taint.base && c >= taint.base && c < taint.brk;
}

/* ---- blocks ------------------------------------------------------------ */

static struct block *block_new(arena *a, size_t need)
{
    size_t size = need < BLOCK_MIN ? BLOCK_MIN : need;
    if (a->head && a->head->size * 2 > size && a->head->size < (1u << 20))
        size = a->head->size * 2;
    size_t total = sizeof(struct block) + size;
    struct block *b;
    if (a->tainted) {
        b = taint_block(total);
        size = b->total - sizeof(struct block);
    } else {
        b = malloc(total);
        if (!b)
            panic("arena %s: out of memory (%zu bytes)", a->name, total);
        b->total = total;
    }
    b->size = size;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    return b;
}

static void block_release(arena *a, struct block *b)
{
    if (a->tainted) {
        b->next = taint.free;
        taint.free = b;
    } else {
        free(b);
    }
}

arena *arena_new(const char *name, bool tainted)
{
    arena *a = calloc(1, sizeof *a);
    if (!a)
        panic("arena_new: out of memory");
    a->name = name;
    a->tainted = tainted;
    return a;
}

void arena_reset(arena *a)
{
    struct block *b = a->head;
    while (b) {
        struct block *n = b->next;
        block_release(a, b);
        b = n;
    }
    a->head = NULL;
    a->handed = 0;
    a->last = NULL;
}

void arena_free(arena *a)
{
    if (!a)
        return;
    arena_reset(a);
    free(a);
}

bool arena_is_tainted(const arena *a) { return a->tainted; }
size_t arena_used(const arena *a) { return a->handed; }

void *arena_alloc(arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 4)
        panic("arena %s: absurd allocation of %zu bytes", a->name, n);
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct block *b = a->head;
    if (!b || b->size - b->used < rounded)
        b = block_new(a, rounded);
    void *p = b->data + b->used;
    b->used += rounded;
    a->handed += rounded;
    a->last = p;
    return p;
}

bool arena_extend(arena *a, void *p, size_t old, size_t new_size)
{
    struct block *b = a->head;
    if (!b || p != a->last)
        return false;
    size_t ro = (old + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    size_t rn = (new_size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if ((unsigned char *)p + ro != b->data + b->used)
        return false;
    if (rn < ro || b->size - b->used < rn - ro)
        return false;
    b->used += rn - ro;
    a->handed += rn - ro;
    return true;
}

void *arena_calloc(arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *arena_memdup(arena *a, const void *p, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    size_t l = strnlen(s, n);
    return arena_memdup(a, s, l);
}

char *arena_strdup(arena *a, const char *s)
{
    return s ? arena_memdup(a, s, strlen(s)) : NULL;
}

char *arena_vprintf(arena *a, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    char probe[1];
    int n = vsnprintf(probe, sizeof probe, fmt, aq);
    va_end(aq);
    if (n < 0)
        panic("arena_vprintf: bad format %s", fmt);
    char *d = arena_alloc(a, (size_t)n + 1);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    return d;
}

char *arena_printf(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *d = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return d;
}
