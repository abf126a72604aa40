/* io.h: buffered SMTP I/O on a pair of file descriptors with a timeout on
 * every read and write.  Replies are collected and flushed when the input
 * buffer is empty, which is what PIPELINING needs. */
#ifndef POSTERN_SMTP_IO_H
#define POSTERN_SMTP_IO_H

#include "core/gstr.h"
#include <stdbool.h>
#include <stddef.h>

#define SMTP_IO_BUF 16384

struct tls_conn;

typedef struct smtp_io {
    int in, out;
    struct tls_conn *tls;     /* after STARTTLS: all I/O goes through it */
    int timeout;              /* seconds for each read/write; 0 = none */
    unsigned char rbuf[SMTP_IO_BUF];
    size_t rpos, rlen;
    char wbuf[SMTP_IO_BUF];
    size_t wlen;
    bool eof, timed_out, write_error;
    unsigned long long bytes_in;
} smtp_io;

enum { IO_EOF = -1, IO_TIMEOUT = -2, IO_ERROR = -3 };

void io_init(smtp_io *io, int in, int out, int timeout);
/* From now on read and write through TLS session t (NULL: in clear).
 * What was buffered in clear is thrown away (a client may not pipeline
 * commands past STARTTLS). */
void io_set_tls(smtp_io *io, struct tls_conn *t);
int io_getc(smtp_io *io);                 /* byte, or IO_EOF/IO_TIMEOUT/IO_ERROR */
/* Bytes already buffered, or readable without waiting. */
bool io_input_pending(smtp_io *io);
/* Read up to and including LF into g (without the CR LF / LF).  Returns
 * 1 for a line, IO_EOF/IO_TIMEOUT/IO_ERROR.  A line longer than max is
 * consumed and *too_long set; *bare_lf tells whether it ended in LF
 * without CR. */
int io_read_line(smtp_io *io, gstr *g, size_t max, bool *too_long, bool *bare_lf);
/* Read exactly n bytes (BDAT) calling sink for each chunk. */
int io_read_n(smtp_io *io, size_t n, void (*sink)(void *ctx, const unsigned char *p, size_t len), void *ctx);
void io_write(smtp_io *io, const char *p, size_t n);
void io_printf(smtp_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool io_flush(smtp_io *io);

#endif
