/* addr.h: RFC 2822 mailboxes as Exim reads them, with positions, for the
 * code that rewrites addresses in place (src/message/rewrite.c): the
 * working address of one mailbox ("Name <a@b>", "a@b (comment)", a bare
 * local part, a group "name: a@b, c@d;"), where it lies in the text, and
 * where one item of an address list ends.
 *
 * Exim's leniencies are kept: a phrase may contain dots, a local part
 * quoted pairs, empty words between dots; source routes are accepted and
 * dropped; domains are letters, digits and hyphens.  The result keeps the
 * quotes of a quoted local part and drops comments and white space.
 *
 * Pure code: no configuration or process state (the options arrive in
 * addr_opts), so it is unit tested and fuzzed on its own. */
#ifndef POSTERN_MESSAGE_ADDR_H
#define POSTERN_MESSAGE_ADDR_H

#include "core/arena.h"
#include <stdbool.h>

#define ADDR_MAX 256             /* longest working address (Exim's limit) */

typedef struct addr_opts {
    bool domain_literals;        /* allow_domain_literals */
    bool strip_trailing_dot;     /* strip_trailing_dot */
    bool strip_excess_angle_brackets;
} addr_opts;

/* Group syntax state across the items of one header ("team: a, b;").
 * Start a header with { .allow = true }; a header that is not an address
 * list header uses { false, false }. */
typedef struct addr_group {
    bool allow, found;
} addr_group;

typedef struct addr_span {
    int start, end;              /* working part: [start, end) of the input */
    int domain;                  /* offset of the domain in the result; 0: none */
} addr_span;

/* The working address of mailbox, in a; NULL with *err ("empty address"
 * for an empty one, e.g. an empty group) on a syntax error.  allow_null
 * accepts "<>" (an empty result).  g may be NULL (no group syntax). */
char *addr_extract(arena *a, const char *mailbox, const addr_opts *o, addr_group *g,
                   bool allow_null, addr_span *sp, const char **err);

/* The end of the address list item starting at s: the comma that ends it
 * (outside quotes, comments and angle brackets) or the terminating NUL
 * (or a newline when nl_ends). */
const char *addr_item_end(const char *s, bool nl_ends);

/* The last '@' of an address that is not escaped or inside quotes, or
 * NULL (an unqualified address). */
const char *addr_find_at(const char *s);

/* A display name made safe for a header: quoted when it holds specials,
 * RFC 2047 encoded (Q, with charset) when it holds control or 8-bit
 * characters.  len bytes of phrase; leading white space is dropped. */
char *addr_fix_phrase(arena *a, const char *phrase, size_t len, const char *charset);

#endif
