/* filter.h: Exim filter files ("# Exim filter"): the language of Exim's
 * "interfaces to mail filtering" document, read once into a command tree
 * and then obeyed.  Obeying a filter delivers nothing: it says what should
 * happen (deliveries, saves, pipes, autoreplies) and whether that counts as
 * a "significant delivery"; the redirect router (redirect_filter.c) turns
 * that into generated addresses, and -bf (filtertest.c) prints it. */
#ifndef POSTERN_FILTER_H
#define POSTERN_FILTER_H

#include "deliver/address.h"
#include "route/route.h"
#include <stdbool.h>
#include <stdio.h>

/* What the redirection data is (Exim's rule: after leading white space,
 * "# Exim filter" or "# Sieve filter", any case, spaces optional). */
enum { FILTER_FORWARD, FILTER_EXIM, FILTER_SIEVE };
int filter_kind(const char *text);

/* Limits (Exim's). */
#define FILTER_MAX_ITEM  1024      /* a word or quoted string, before expansion */
#define FILTER_MAX_DEPTH 64        /* nesting of if and of bracketed conditions */
#define FILTER_NVARS     10        /* $n0..$n9 */

/* Option bits: what the filter may do. */
#define FO_DEFER         0x001     /* "defer" (system filters) */
#define FO_FAIL          0x002     /* "fail": allow_fail */
#define FO_FREEZE        0x004     /* "freeze": allow_freeze */
#define FO_NO_LOG        0x008     /* forbid_filter_logwrite */
#define FO_REALLOG       0x010     /* logwrite writes (not when verifying or testing) */
#define FO_PREPEND_HOME  0x020     /* filter_prepend_home */
#define FO_SYSTEM        0x040     /* a system filter (-bF): headers add/remove, no "personal" */
#define FO_REWRITE       0x080     /* the router's "rewrite": deliver addresses are to be rewritten (not yet done) */

/* The outcome of a filter run (Exim's FF_ values). */
typedef enum filter_outcome {
    FF_DELIVERED,          /* a significant delivery was set up */
    FF_NOTDELIVERED,       /* none: the address is delivered as if there were no filter */
    FF_DEFER, FF_FAIL, FF_FREEZE,   /* "defer", "fail", "freeze" (text in error) */
    FF_ERROR,              /* a syntax or expansion error (error says which) */
} filter_outcome;

typedef enum { FA_DELIVER, FA_SAVE, FA_PIPE, FA_MAIL } filter_action_kind;

/* One thing the filter set up, in the order the filter made them. */
typedef struct filter_action {
    filter_action_kind kind;
    const char *target;        /* address; file (home prepended); "|command"
                                * (arguments expanded); ">rcpt,..." for mail */
    const char *errors_to;     /* deliver ... errors_to */
    int mode;                  /* save: file mode, -1 when not given */
    bool noerror;
    reply_item *reply;         /* FA_MAIL */
    struct filter_action *next;
} filter_action;

typedef struct filter_opts {
    unsigned flags;            /* FO_* */
    FILE *test;                /* -bf: say what would be done here (nothing is done) */
    arena *a;                  /* for the results (tainted strings go to ps.msg_t) */
    bool first_delivery;       /* this is the message's first delivery attempt */
    bool manually_thawed;      /* the message was thawed by the administrator */
} filter_opts;

typedef struct filter_result {
    filter_outcome outcome;
    const char *error;         /* FF_ERROR: why; FF_DEFER/FAIL/FREEZE: the text ("" if none) */
    filter_action *actions;
    bool seen_finish;          /* a significant action without deliveries ("seen finish") */
} filter_result;

/* Read and obey a filter.  The message's variables ($h_..., $sender_address,
 * $local_part, $home, ...) are taken from ps as for any expansion; $n0..$n9
 * start at zero.  In test mode the lines Exim's -bf prints go to o->test,
 * ending with the summary. */
filter_outcome filter_interpret(const char *text, const filter_opts *o, filter_result *r);

/* Non-printing characters as escapes (\n, \t, \ooo), as -bf shows them. */
const char *filter_printing(const char *s, arena *a);

/* The body variables ($message_body, $message_body_end, $body_zerocount,
 * $message_body_size) from the body text read from fd (the -D file after
 * its first line, or -bf's standard input). */
void filter_set_body_vars(const char *body, size_t len);

/* The redirect router on data or a file that is a filter (kind is
 * FILTER_EXIM or FILTER_SIEVE): allow_filter, forbid_* and the outcome as
 * a router result (ST_REROUTED with *gen, ST_DECLINED, ST_DISCARD, ...).
 * data: the text came from "data" (not "file"), for error messages. */
status redirect_filter(const driver_inst *r, address_item *a, route_ctx *ctx, const char *text, int kind,
                       bool data, address_item **gen);

/* The transport for a pipe, file or reply c that router r set up; when
 * it cannot be had, c carries the error (ERRNO_BADTRANSPORT, message). */
void redirect_pfr_transport(const driver_inst *r, address_item *c, route_ctx *ctx);

/* -bf on a file that is not a filter: the redirection list as Exim's
 * -bf shows it (in redirect.c).  Returns false on an error in the list. */
bool redirect_test_list(const char *text, FILE *out);

/* -bf / -bF: test a user filter (or .forward file) and/or a system filter
 * on the message on standard input.  Returns the exit code. */
typedef struct filter_test_args {
    const char *user_file, *system_file;
    const char *sender;        /* -f (NULL: not given) */
    const char *domain, *local_part, *prefix, *suffix;   /* -bfd -bfl -bfp -bfs */
    bool dot_ends;             /* no -i: a "." line ends the message */
} filter_test_args;
int filter_test_mode(const filter_test_args *t);

#endif
