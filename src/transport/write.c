/* write.c: a spooled message as the bytes a transport sends. */
#include "transport/write.h"
#include "core/gstr.h"
#include "core/list.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool write_to_fd(void *ctx, const char *p, size_t n)
{
    int fd = *(int *)ctx;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

typedef struct out {
    write_fn fn;
    void *ctx;
    char buf[65536];
    size_t len;
    unsigned long long total;
    bool failed;
} out;

static void flush(out *o)
{
    if (o->len && !o->failed && !o->fn(o->ctx, o->buf, o->len))
        o->failed = true;
    o->len = 0;
}

static void put(out *o, const char *p, size_t n)
{
    o->total += n;
    while (n) {
        if (o->len == sizeof o->buf)
            flush(o);
        size_t k = sizeof o->buf - o->len;
        if (k > n)
            k = n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
    }
}

/* One line (without its line end), with the destination's conventions. */
static void put_line(out *o, const write_opts *w, const char *p, size_t n, bool body)
{
    if (w->dot_stuff && n && p[0] == '.')
        put(o, ".", 1);
    if (body && w->escape_from && n >= 5 && memcmp(p, "From ", 5) == 0) {
        /* mbox: "From " at the start of a body line becomes escape_string */
        put(o, w->escape_from, strlen(w->escape_from));
        p += 5;
        n -= 5;
    }
    put(o, p, n);
    put(o, w->crlf ? "\r\n" : "\n", w->crlf ? 2 : 1);
}

/* Text made of \n-separated lines (headers, prefix, suffix). */
static void put_text(out *o, const write_opts *w, const char *t, size_t n, bool stuff)
{
    const char *end = t + n;
    while (t < end) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        size_t k = nl ? (size_t)(nl - t) : (size_t)(end - t);
        if (stuff)
            put_line(o, w, t, k, false);
        else {
            put(o, t, k);
            if (nl)
                put(o, w->crlf ? "\r\n" : "\n", w->crlf ? 2 : 1);
        }
        t += k + (nl ? 1 : 0);
    }
}

static bool removed(const char *list, const char *text, arena *a)
{
    if (!list)
        return false;
    const char *colon = strchr(text, ':');
    if (!colon)
        return false;
    size_t n = (size_t)(colon - text);
    int sep = 0;
    char *it;
    while ((it = list_next(&list, &sep, a))) {
        size_t il = strlen(it);
        if (il && it[il - 1] == ':')
            il--;
        if (il == n && strncasecmp(it, text, n) == 0)
            return true;
        /* "X-Name-*": every header starting so (Exim) */
        if (il && it[il - 1] == '*' && il - 1 <= n && strncasecmp(it, text, il - 1) == 0)
            return true;
    }
    return false;
}

status transport_write_message(const spool_msg *m, int data_fd, const write_opts *w,
                               write_fn fn, void *ctx, unsigned long long *bytes, arena *a, char **err)
{
    out *o = arena_alloc(a, sizeof *o);
    o->fn = fn;
    o->ctx = ctx;
    o->len = 0;
    o->total = 0;
    o->failed = false;
    if (w->prefix)
        put_text(o, w, w->prefix, strlen(w->prefix), false);
    if (!w->body_only) {
        if (w->top_headers)
            put_text(o, w, w->top_headers, strlen(w->top_headers), true);
        for (const spool_header *h = m->headers; h; h = h->next) {
            if (h->type == '*' || removed(w->remove_headers, h->text, a))
                continue;
            put_text(o, w, h->text, h->len, true);
        }
        if (w->add_headers)
            put_text(o, w, w->add_headers, strlen(w->add_headers), true);
        put(o, w->crlf ? "\r\n" : "\n", w->crlf ? 2 : 1);
    }
    if (!w->headers_only) {
        char rb[65536];
        off_t off = 0;
        size_t rlen = 0, rpos = 0;
        bool eof = false;
        gstr line;
        gstr_init(&line, a, 1024);
        bool first = true;     /* the -D file starts with its own name */
        for (;;) {
            gstr_reset(&line);
            bool got_nl = false;
            while (!got_nl) {
                if (rpos == rlen) {
                    if (eof)
                        break;
                    ssize_t n = pread(data_fd, rb, sizeof rb, off);
                    if (n < 0) {
                        if (errno == EINTR)
                            continue;
                        *err = arena_printf(a, "error reading the spool data file: %s", strerror(errno));
                        return ST_DEFER;
                    }
                    if (n == 0) {
                        eof = true;
                        break;
                    }
                    off += n;
                    rlen = (size_t)n;
                    rpos = 0;
                }
                char *nl = memchr(rb + rpos, '\n', rlen - rpos);
                size_t k = nl ? (size_t)(nl - (rb + rpos)) : rlen - rpos;
                gstr_catn(&line, rb + rpos, k);
                rpos += k + (nl ? 1 : 0);
                got_nl = nl != NULL;
            }
            if (!got_nl && !line.len)
                break;
            if (first) {
                first = false;
                continue;
            }
            if (m->spool_file_wireformat && line.len && line.s[line.len - 1] == '\r')
                gstr_truncate(&line, line.len - 1);
            put_line(o, w, line.s, line.len, true);
            if (o->failed || !got_nl)
                break;
        }
    }
    if (w->suffix)
        put_text(o, w, w->suffix, strlen(w->suffix), false);
    flush(o);
    if (bytes)
        *bytes = o->total;
    if (o->failed) {
        *err = arena_printf(a, "write failed: %s", strerror(errno));
        return ST_DEFER;
    }
    return ST_OK;
}
