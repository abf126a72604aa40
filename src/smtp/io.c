/* io.c: buffered I/O with timeouts for the SMTP server. */
#include "smtp/io.h"
#include "tls/tls.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void io_init(smtp_io *io, int in, int out, int timeout)
{
    memset(io, 0, sizeof *io);
    io->in = in;
    io->out = out;
    io->timeout = timeout;
}

void io_set_tls(smtp_io *io, struct tls_conn *t)
{
    io->tls = t;
    io->rpos = io->rlen = 0;
    memset(io->rbuf, 0, sizeof io->rbuf);
}

static int wait_fd(int fd, short ev, int timeout)
{
    struct pollfd p = { .fd = fd, .events = ev };
    for (;;) {
        int r = poll(&p, 1, timeout > 0 ? timeout * 1000 : -1);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static int fill(smtp_io *io)
{
    if (io->eof)
        return IO_EOF;
    if (!io_flush(io))
        return IO_ERROR;
    if (io->tls) {
        ssize_t t = tls_read(io->tls, io->rbuf, sizeof io->rbuf, io->timeout);
        if (t == -2) {
            io->timed_out = true;
            return IO_TIMEOUT;
        }
        if (t < 0)
            return IO_ERROR;
        if (t == 0) {
            io->eof = true;
            return IO_EOF;
        }
        io->rpos = 0;
        io->rlen = (size_t)t;
        io->bytes_in += (unsigned long long)t;
        return 0;
    }
    int r = wait_fd(io->in, POLLIN, io->timeout);
    if (r == 0) {
        io->timed_out = true;
        return IO_TIMEOUT;
    }
    if (r < 0)
        return IO_ERROR;
    ssize_t n;
    do
        n = read(io->in, io->rbuf, sizeof io->rbuf);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return IO_ERROR;
    if (n == 0) {
        io->eof = true;
        return IO_EOF;
    }
    io->rpos = 0;
    io->rlen = (size_t)n;
    io->bytes_in += (unsigned long long)n;
    return 0;
}

int io_getc(smtp_io *io)
{
    if (io->rpos >= io->rlen) {
        int r = fill(io);
        if (r < 0)
            return r;
    }
    return io->rbuf[io->rpos++];
}

bool io_input_pending(smtp_io *io)
{
    if (io->rpos < io->rlen)
        return true;
    if (io->eof)
        return false;
    if (io->tls)
        return tls_pending(io->tls);
    struct pollfd p = { .fd = io->in, .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

int io_read_line(smtp_io *io, gstr *g, size_t max, bool *too_long, bool *bare_lf)
{
    gstr_reset(g);
    *too_long = false;
    *bare_lf = false;
    for (;;) {
        if (io->rpos >= io->rlen) {
            int r = fill(io);
            if (r < 0)
                return (r == IO_EOF && g->len) ? 1 : r;
        }
        unsigned char *start = io->rbuf + io->rpos;
        unsigned char *lf = memchr(start, '\n', io->rlen - io->rpos);
        size_t n = lf ? (size_t)(lf - start) : io->rlen - io->rpos;
        if (g->len + n > max) {
            *too_long = true;
            size_t room = g->len < max ? max - g->len : 0;
            gstr_catn(g, (const char *)start, room);
        } else {
            gstr_catn(g, (const char *)start, n);
        }
        io->rpos += n + (lf ? 1 : 0);
        if (lf)
            break;
    }
    if (g->len && g->s[g->len - 1] == '\r')
        gstr_truncate(g, g->len - 1);
    else
        *bare_lf = true;
    return 1;
}

int io_read_n(smtp_io *io, size_t n, void (*sink)(void *ctx, const unsigned char *p, size_t len), void *ctx)
{
    while (n) {
        if (io->rpos >= io->rlen) {
            int r = fill(io);
            if (r < 0)
                return r;
        }
        size_t k = io->rlen - io->rpos;
        if (k > n)
            k = n;
        sink(ctx, io->rbuf + io->rpos, k);
        io->rpos += k;
        n -= k;
    }
    return 1;
}

bool io_flush(smtp_io *io)
{
    if (io->tls) {
        if (io->wlen && !io->write_error && !tls_write(io->tls, io->wbuf, io->wlen, io->timeout))
            io->write_error = true;
        io->wlen = 0;
        return !io->write_error;
    }
    size_t off = 0;
    while (off < io->wlen && !io->write_error) {
        int r = wait_fd(io->out, POLLOUT, io->timeout);
        if (r <= 0) {
            io->write_error = true;
            break;
        }
        ssize_t w = write(io->out, io->wbuf + off, io->wlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            io->write_error = true;
            break;
        }
        off += (size_t)w;
    }
    io->wlen = 0;
    return !io->write_error;
}

void io_write(smtp_io *io, const char *p, size_t n)
{
    while (n) {
        if (io->wlen == sizeof io->wbuf && !io_flush(io))
            return;
        size_t k = sizeof io->wbuf - io->wlen;
        if (k > n)
            k = n;
        memcpy(io->wbuf + io->wlen, p, k);
        io->wlen += k;
        p += k;
        n -= k;
    }
}

void io_printf(smtp_io *io, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    io_write(io, buf, (size_t)n);
}
