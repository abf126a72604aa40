/* msgbuild.h: turns the lines of an incoming message (from SMTP DATA,
 * BDAT or non-SMTP input, already without line endings and dot-stuffing)
 * into spool headers and the -D body file, counting what Exim counts. */
#ifndef POSTERN_MSGBUILD_H
#define POSTERN_MSGBUILD_H

#include "core/gstr.h"
#include "spool/spool.h"
#include <stdbool.h>

#define MSG_MAX_HEADER_SIZE (1024 * 1024)   /* Exim's header_maxsize default */
#define MSG_MAX_HEADERS 10000

typedef struct msgbuild {
    spool_msg *m;
    arena *a;
    int dfd;
    bool in_headers;
    gstr hdr;                 /* header being collected (with continuation lines) */
    size_t header_bytes;
    int nheaders;
    unsigned long long size;  /* bytes of the message as received (with CRLFs) */
    unsigned long long lf_size;     /* ... with LF line ends: Exim's count, checked against */
    unsigned long long size_limit;  /* ... this limit (0: none) */
    bool too_big;
    bool header_too_big;
    bool write_failed;
    long body_lines, max_line;
    char wbuf[65536];
    size_t wlen;
} msgbuild;

void mb_init(msgbuild *b, spool_msg *m, int dfd, arena *a, unsigned long long size_limit);
void mb_line(msgbuild *b, const char *line, size_t len);
/* Flush everything; ST_DEFER when the -D file could not be written. */
status mb_finish(msgbuild *b);

/* First header with this name (case-insensitive), or NULL. */
spool_header *mb_find_header(spool_msg *m, const char *name);

#endif
