/* mail.h: a message split into header fields and body, for the message
 * authentication code (DKIM, ARC, DomainKeys, SPF, DMARC).
 *
 * mail_parse() copies the message into an arena with every line ending
 * made CRLF (a bare LF becomes CRLF; a CR not followed by LF is kept as
 * data), then splits it at the first empty line.  Each header field keeps
 * its raw form (name, colon, value with folding, final CRLF) because the
 * signature algorithms hash the fields as written.  A leading mbox
 * "From " line is skipped.  A header line that is neither "name:" nor a
 * continuation ends the header section (like a missing empty line): the
 * rest is body.
 *
 * Everything returned lives in the arena given to mail_parse() and stays
 * valid while that arena does.  Nothing here touches MTA state. */
#ifndef POSTERN_MSGAUTH_MAIL_H
#define POSTERN_MSGAUTH_MAIL_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>

/* Limits on hostile input (Exim's header_maxsize is 1 MB). */
#define MAIL_MAX_HEADERS 10000

typedef struct mail_header {
    const char *raw;      /* "Name: value\r\n   folded\r\n" as in the message */
    size_t raw_len;       /* includes the final CRLF (if the message had one) */
    const char *name;     /* field name, NUL-terminated copy, as written */
    size_t name_len;
    const char *value;    /* just after the colon, folding kept, no final CRLF */
    size_t value_len;
} mail_header;

typedef struct mail_msg {
    mail_header *hdr;     /* in message order */
    int nhdr;
    const char *body;     /* after the empty line; CRLF line endings */
    size_t body_len;
    bool has_body_sep;    /* an empty line separated headers from body */
    bool bare_lf;         /* the input had bare LF line endings */
} mail_msg;

/* Parse buf[0..len) into *m.  Fails (with *err set) only on more than
 * MAIL_MAX_HEADERS fields. */
status mail_parse(arena *a, const char *buf, size_t len, mail_msg *m, char **err);

/* Index of the first header named name (case-insensitive) at index >= from,
 * or -1.  Loop: for (i = mail_find(m, "from", 0); i >= 0; i = mail_find(m, "from", i + 1)) */
int mail_find(const mail_msg *m, const char *name, int from);
/* Same, searching backwards from index from (inclusive); from < 0 = last. */
int mail_find_last(const mail_msg *m, const char *name, int from);
int mail_count(const mail_msg *m, const char *name);

/* The value of h unfolded (CRLF removed, WSP kept) with leading and
 * trailing whitespace removed, NUL-terminated. */
char *mail_unfold(arena *a, const mail_header *h);

/* One address from an address list (RFC 5322 mailbox-list), comments and
 * display names removed. */
typedef struct mail_addr {
    const char *local;    /* local part, quotes kept as written */
    const char *domain;   /* lower-cased; "" if the address had no '@' */
} mail_addr;

/* Parse an address-list header value (e.g. From:, Sender:).  Returns the
 * number of addresses stored in *out (an arena array), 0 if none could be
 * found.  Tolerant: groups, comments, quoted strings, route addresses,
 * obsolete syntax; garbage between addresses is skipped. */
int mail_addr_list(arena *a, const char *value, size_t len, mail_addr **out);

/* Domains of every address in every From: header, lower-cased, duplicates
 * kept, in message order.  *nfrom_headers gets the number of From:
 * fields (DMARC treats != 1 specially).  Returns the number of domains. */
int mail_from_domains(arena *a, const mail_msg *m, const char ***domains, int *nfrom_headers);

/* Reassemble a message: headers in order (raw), empty line, body. */
char *mail_render(arena *a, const mail_msg *m, size_t *len);

#endif
