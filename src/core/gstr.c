/* gstr.c: growable strings. */
#include "gstr.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

void gstr_init(gstr *g, arena *a, size_t hint)
{
    g->a = a;
    g->cap = hint < 32 ? 32 : hint;
    g->s = arena_alloc(a, g->cap);
    g->s[0] = '\0';
    g->len = 0;
}

gstr *gstr_new(arena *a, size_t hint)
{
    gstr *g = arena_alloc(a, sizeof *g);
    gstr_init(g, a, hint);
    return g;
}

static void grow(gstr *g, size_t need)
{
    if (g->len + need + 1 <= g->cap)
        return;
    size_t ncap = g->cap * 2;
    while (ncap < g->len + need + 1)
        ncap *= 2;
    if (arena_extend(g->a, g->s, g->cap, ncap)) {
        g->cap = ncap;
        return;
    }
    char *n = arena_alloc(g->a, ncap);
    memcpy(n, g->s, g->len + 1);
    g->s = n;
    g->cap = ncap;
}

void gstr_catn(gstr *g, const char *p, size_t n)
{
    if (!n)
        return;
    grow(g, n);
    memcpy(g->s + g->len, p, n);
    g->len += n;
    g->s[g->len] = '\0';
}

void gstr_cat(gstr *g, const char *s)
{
    if (s)
        gstr_catn(g, s, strlen(s));
}

void gstr_catc(gstr *g, char c)
{
    grow(g, 1);
    g->s[g->len++] = c;
    g->s[g->len] = '\0';
}

void gstr_printf(gstr *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char probe[1];
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0)
        panic("gstr_printf: bad format %s", fmt);
    grow(g, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(g->s + g->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    g->len += (size_t)n;
}

void gstr_truncate(gstr *g, size_t len)
{
    if (len < g->len) {
        g->len = len;
        g->s[len] = '\0';
    }
}

void gstr_reset(gstr *g) { gstr_truncate(g, 0); }

bool gstr_read_fd(gstr *g, int fd, size_t max)
{
    char buf[16384];
    bool ok = true;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (g->len + (size_t)n > max)
            ok = false;
        else
            gstr_catn(g, buf, (size_t)n);
    }
    return ok;
}
