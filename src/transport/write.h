/* write.h: writing a spooled message out for a transport: the headers
 * (without deleted ones, with those the transport adds or removes), a
 * blank line, and the body from the -D file, with the line endings,
 * dot-stuffing or "From " escaping the destination needs. */
#ifndef POSTERN_TRANSPORT_WRITE_H
#define POSTERN_TRANSPORT_WRITE_H

#include "core/arena.h"
#include "core/status.h"
#include "spool/spool.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct write_opts {
    bool crlf;                 /* CRLF line ends (SMTP, LMTP) */
    bool dot_stuff;            /* SMTP DATA */
    const char *escape_from;   /* mbox: prefix for body lines starting "From " (NULL: none) */
    const char *prefix;        /* text before the message (mbox "From " line) */
    const char *suffix;        /* text after it */
    const char *top_headers;   /* header lines put first (Return-path:, Envelope-to:, ...) */
    const char *add_headers;   /* extra header lines at the end, each ending in \n */
    const char *remove_headers;/* colon list of header names to leave out */
    bool headers_only, body_only;
    size_t size_limit;         /* 0: none (RET=HDRS style truncation uses headers_only) */
} write_opts;

/* Write callback: returns false on failure (the writer stops). */
typedef bool (*write_fn)(void *ctx, const char *p, size_t n);

/* Write message m (body from the open -D file data_fd, read from its start
 * with pread, so the descriptor can be shared) through fn.  *bytes gets
 * the number of bytes written.  ST_DEFER with *err on read/write errors. */
status transport_write_message(const spool_msg *m, int data_fd, const write_opts *o,
                               write_fn fn, void *ctx, unsigned long long *bytes, arena *a, char **err);

/* A write_fn for a file descriptor (ctx is an int *). */
bool write_to_fd(void *ctx, const char *p, size_t n);

#endif
