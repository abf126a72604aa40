/* msgbuild.c: header/body split of an incoming message.  A line that is
 * not a header line ends the header section, as does an empty line; the
 * -D file gets the body in Unix format (LF line endings). */
#include "message/msgbuild.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void mb_init(msgbuild *b, spool_msg *m, int dfd, arena *a, unsigned long long size_limit)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->a = a;
    b->dfd = dfd;
    b->in_headers = true;
    b->size_limit = size_limit;
    gstr_init(&b->hdr, a, 256);
}

/* Write the buffered body bytes to the -D file. */
static void flush_buf(msgbuild *b)
{
    size_t off = 0;
    while (off < b->wlen && !b->write_failed) {
        ssize_t w = write(b->dfd, b->wbuf + off, b->wlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            b->write_failed = true;
        else
            off += (size_t)w;
    }
    b->wlen = 0;
}

static void dwrite(msgbuild *b, const char *p, size_t n)
{
    if (b->too_big || b->write_failed)
        return;
    while (n) {
        if (b->wlen == sizeof b->wbuf) {
            flush_buf(b);
            if (b->write_failed)
                return;
        }
        size_t k = sizeof b->wbuf - b->wlen;
        if (k > n)
            k = n;
        memcpy(b->wbuf + b->wlen, p, k);
        b->wlen += k;
        p += k;
        n -= k;
    }
}

static bool header_start(const char *line, size_t len)
{
    /* field-name = 1*ftext (printable except ':'), then optional WSP, ':' */
    size_t i = 0;
    while (i < len && line[i] > 32 && line[i] < 127 && line[i] != ':')
        i++;
    if (i == 0)
        return false;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < len && line[i] == ':';
}

static void end_header(msgbuild *b)
{
    if (!b->hdr.len)
        return;
    gstr_catc(&b->hdr, '\n');
    if (b->nheaders < MSG_MAX_HEADERS)
        spool_add_header(b->m, b->a, spool_header_type(b->hdr.s), b->hdr.s, b->hdr.len);
    b->nheaders++;
    gstr_init(&b->hdr, b->a, 256);
}

void mb_line(msgbuild *b, const char *line, size_t len)
{
    unsigned long long before = b->lf_size;
    b->size += len + 2;
    b->lf_size += len + 1;
    if ((long)len > b->max_line)
        b->max_line = (long)len;
    if (b->size_limit && b->lf_size > b->size_limit && !b->too_big) {
        /* the body keeps what came up to the first byte over the limit,
         * as Exim's (a report to the sender quotes it) */
        if (!b->in_headers) {
            size_t keep = (size_t)(b->size_limit + 1 - before);
            dwrite(b, line, keep < len ? keep : len);
            if (keep > len)
                dwrite(b, "\n", 1);
        }
        b->too_big = true;
    }
    if (b->in_headers) {
        if (len && (line[0] == ' ' || line[0] == '\t') && b->hdr.len) {
            b->header_bytes += len + 1;
            if (b->header_bytes > MSG_MAX_HEADER_SIZE) {
                b->header_too_big = true;
                return;
            }
            gstr_catc(&b->hdr, '\n');
            gstr_catn(&b->hdr, line, len);
            return;
        }
        if (len && header_start(line, len)) {
            end_header(b);
            b->header_bytes += len + 1;
            if (b->header_bytes > MSG_MAX_HEADER_SIZE) {
                b->header_too_big = true;
                return;
            }
            gstr_catn(&b->hdr, line, len);
            return;
        }
        end_header(b);
        b->in_headers = false;
        if (len == 0)
            return;           /* the separating empty line is not body */
    }
    dwrite(b, line, len);
    dwrite(b, "\n", 1);
    b->body_lines++;
}

status mb_finish(msgbuild *b)
{
    if (b->in_headers)
        end_header(b);
    b->in_headers = false;
    if (b->wlen && !b->write_failed)
        flush_buf(b);
    b->m->body_linecount = b->body_lines;
    b->m->max_received_linelength = b->max_line;
    return b->write_failed ? ST_DEFER : ST_OK;
}

spool_header *mb_find_header(spool_msg *m, const char *name)
{
    size_t n = strlen(name);
    for (spool_header *h = m->headers; h; h = h->next)
        if (h->type != '*' && strncasecmp(h->text, name, n) == 0 &&
            (h->text[n] == ':' || h->text[n] == ' ' || h->text[n] == '\t'))
            return h;
    return NULL;
}
