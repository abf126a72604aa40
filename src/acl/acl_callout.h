/* acl_callout.h: callout verification for "verify = sender/callout" and
 * "verify = recipient/callout": the options after the verify word, and
 * the callout itself (an SMTP dialogue with the hosts the address was
 * routed to, its result cached in the "callout" hints database). */
#ifndef POSTERN_ACL_CALLOUT_H
#define POSTERN_ACL_CALLOUT_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>

#define CALLOUT_TIMEOUT_DEFAULT 30      /* seconds: Exim's default callout time */

/* What the slash-separated options after "sender[=a]", "recipient" or
 * "header_sender" ask for (Exim's names in comments). */
typedef struct callout_opts {
    int timeout;               /* per command; <= 0: no callout */
    int overall;               /* maxwait=; -1: 4 * timeout */
    int connect;               /* connect=; -1: timeout */
    bool defer_ok;             /* /defer_ok: any defer is accepted */
    bool callout_defer_ok;     /* callout=defer_ok (or /callout_defer_ok): a callout defer is accepted */
    bool no_details;           /* /no_details */
    bool success_on_redirect;  /* /success_on_redirect */
    bool no_cache, random, use_sender, use_postmaster, fullpostmaster;
    const char *pm_mailfrom;   /* postmaster check with this sender (""), NULL: none */
    const char *se_mailfrom;   /* mailfrom= (header_sender only) */
} callout_opts;

/* Parse the options after the verify word ("/"-separated, the text after
 * the first "/"), Exim's way.  `what` is the whole condition argument (for
 * messages), `header_sender`/`sender` say which verify it is.  NULL, or
 * the error text (Exim's words where Exim refuses the option; "... is not
 * implemented by postern" for options postern does not have). */
const char *callout_parse(const char *opts, const char *what, bool sender, bool header_sender, arena *a,
                          callout_opts *o);

/* The result of a callout (or of the cache standing in for one). */
typedef struct callout_result {
    status st;                 /* ST_OK, ST_FAIL, ST_DEFER */
    const char *message;       /* for the log ("host [ip] : SMTP error ...") */
    const char *user_message;  /* for the client */
    const char *failure;       /* $sender/recipient_verify_failure: mail, recipient, postmaster, random */
    bool pmfail, nsfail;       /* the postmaster check / the set-up (greeting, HELO, MAIL FROM) was refused */
    bool callout_defer;        /* a callout defer (Exim's ERRNO_CALLOUTDEFER) */
} callout_result;

struct address_item;
/* Make the callout for a routed address (the routed address item: its
 * transport and hosts).  Returns false when no callout applies (no
 * transport, a local one, no hosts; -bh): the routing result stands. */
bool callout_run(const struct address_item *routed, const char *address, bool recipient, const callout_opts *o,
                 arena *a, callout_result *res);

#endif
