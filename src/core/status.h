/* status.h: the one status enum of postern, in Exim's sense.
 * Every fallible function returns a status; error text travels beside it
 * (usually as a char ** filled from an arena). */
#ifndef POSTERN_STATUS_H
#define POSTERN_STATUS_H

typedef enum status {
    ST_OK = 0,        /* success / condition true */
    ST_DEFER,         /* temporary failure: try again later */
    ST_FAIL,          /* permanent failure / condition false */
    ST_ERROR,         /* configuration or usage error */
    ST_FAIL_FORCED,   /* expansion: forced failure ("fail" keyword) */
    ST_DECLINED,      /* router/lookup: not handled here */
    ST_PASS,          /* router: pass to the next one */
    ST_DISCARD,       /* ACL: accept but throw away */
    ST_SKIP,
    ST_REROUTED,
    ST_PANIC,
    ST_NOTFOUND,      /* lookup: key not found (Exim's FAIL for lookups) */
    ST__COUNT
} status;

const char *status_name(status st);

#endif
