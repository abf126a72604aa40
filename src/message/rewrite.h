/* rewrite.h: Exim's configured address rewriting (Exim spec, chapter
 * "Address rewriting"): the rules of the "begin rewrite" section (and the
 * same rules as a headers_rewrite list), applied to envelope addresses,
 * to the addresses in Sender:, From:, To:, Cc:, Bcc:, Reply-To: (and their
 * Resent- forms), and to the raw arguments of MAIL and RCPT ("S" rules).
 *
 * A rule is "pattern replacement flags".  The pattern is one address list
 * item (expanded first): a regular expression, a local@domain pattern
 * with "*" wildcards, a domain pattern, a lookup, "@@lookup", a named list,
 * negated with "!".  It sets $0, $1.. as Exim does; the replacement is
 * expanded with them and with $local_part and $domain; "*" means "leave
 * this address alone, and stop"; a forced failure skips the rule.
 *
 * Callers: src/message/fixups.c at reception (envelope and headers, in
 * Exim's order among the fix-ups), src/smtp/session.c for "S" rules, and
 * the -brw test mode in src/main.c. */
#ifndef POSTERN_MESSAGE_REWRITE_H
#define POSTERN_MESSAGE_REWRITE_H

#include "config/config.h"
#include "message/addr.h"
#include "spool/spool.h"
#include <stdbool.h>
#include <stdio.h>

/* Flag bits: where a rule applies, and how it behaves. */
enum {
    RW_SENDER = 0x0001, RW_FROM = 0x0002, RW_TO = 0x0004, RW_CC = 0x0008,
    RW_BCC = 0x0010, RW_REPLYTO = 0x0020, RW_HEADERS = 0x003f,
    RW_ENVFROM = 0x0040, RW_ENVTO = 0x0080, RW_ENVELOPE = 0x00c0,
    RW_ALL = 0x00ff,
    RW_SMTP = 0x0100,          /* S: MAIL/RCPT arguments as received */
    RW_SMTP_SENDER = 0x0200,   /* with RW_SMTP: a sender, "<>" allowed (-brw) */
    RW_QUALIFY = 0x0400,       /* Q */
    RW_REPEAT = 0x0800,        /* R */
    RW_WHOLE = 0x1000,         /* w */
    RW_QUIT = 0x2000,          /* q */
};

#define REWRITE_MAX_REPEAT 10  /* "R": re-applied up to this many times */

typedef struct rw_rule {
    const char *pattern;
    const char *replacement;
    unsigned bits;
} rw_rule;

typedef struct rewrite_set {
    int n;
    rw_rule *rule;
    unsigned exist;            /* union of the rules' bits */
} rewrite_set;

/* The bits of a rule's flag letters.  global: a rewrite section rule
 * (no place letter means everywhere); else a headers_rewrite rule (no
 * letter means all headers; E, F, T and S are refused).  The S rule's
 * pattern must be a regular expression.  ST_ERROR with *err (in a). */
status rewrite_flags(const char *pattern, const char *letters, bool global, unsigned *bits,
                     arena *a, char **err);

/* The rewrite section of c (bad flags were refused when it was read). */
void rewrite_set_config(const config *c, arena *a, rewrite_set *rs);

/* A headers_rewrite value: a colon-separated list of rules. */
status rewrite_set_parse(const char *list, arena *a, rewrite_set *rs, char **err);

/* Rewrite one address for one place (a single RW_ place bit, or RW_SMTP
 * [| RW_SMTP_SENDER] for the text of a MAIL/RCPT argument).  addr is
 * qualified (local@domain) except for RW_SMTP.  Returns addr itself when
 * no rule rewrote it.  whole (headers): set when a "w" rule made the result
 * a complete mailbox (phrase included).  note: at reception, each rule
 * that applies leaves an "X-rewrote-<note_name>: <old>" header, marked
 * deleted, on that message (NULL: none). */
const char *rewrite_one(const rewrite_set *rs, const char *addr, unsigned where, bool *whole,
                        spool_msg *note, const char *note_name, arena *a);

/* An envelope address: qualified (qualify_recipient or qualify_domain)
 * when it has no domain, then rewritten as env-to / env-from. */
const char *rewrite_envelope(const rewrite_set *rs, const char *addr, bool recipient,
                             spool_msg *note, arena *a);

/* The place bit of a header of spool type t (' ' etc. give 0). */
unsigned rewrite_header_place(char type);

/* One header line ("Name: value\n", continuation lines included) of place
 * where: every address in it is qualified (when unqualified_* permits) and
 * rewritten, phrases and comments kept.  Returns the new text, or NULL
 * when nothing changed.  msgid (or NULL) prefixes the log lines. */
char *rewrite_header_text(const rewrite_set *rs, const char *text, unsigned where,
                          bool unqualified_sender, bool unqualified_recipient,
                          const char *msgid, arena *a);

/* All address headers of m: a changed header is kept as a deleted ('*')
 * copy followed by the new one, as Exim's spool shows them. */
void rewrite_headers(const rewrite_set *rs, spool_msg *m, bool unqualified_sender,
                     bool unqualified_recipient, arena *a);

/* SMTP-time rewriting: arg is what follows MAIL or RCPT ("FROM:<a@b>
 * SIZE=10", "TO:<c@d>").  The path is matched by the S rules of the
 * configuration; the argument comes back with the new path in angle
 * brackets, or arg itself when no rule applied. */
const char *rewrite_smtp_arg(const char *arg, arena *a);

/* The address parser's options from the configuration (allow_domain_literals,
 * strip_trailing_dot, strip_excess_angle_brackets). */
addr_opts rewrite_addr_opts(void);

/* -brw: how addr would be rewritten in each place, as Exim prints it. */
void rewrite_test(const rewrite_set *rs, const char *addr, FILE *out);

#endif
