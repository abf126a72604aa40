/* state.h: the one per-process state struct (DESIGN.md section 4).
 * Holds the arenas with their lifetimes and what the current process knows
 * about its connection and message.  Modules add their fields here, grouped
 * by lifetime, rather than keeping mutable globals of their own. */
#ifndef POSTERN_STATE_H
#define POSTERN_STATE_H

#include "arena.h"
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* An ACL variable ($acl_c..., $acl_m...), kept in a short list. */
typedef struct acl_var {
    const char *name;
    const char *value;
    struct acl_var *next;
} acl_var;

typedef struct proc_state {
    /* arenas */
    arena *config;      /* lives as long as the loaded configuration */
    arena *conn;        /* one SMTP connection / one process job */
    arena *msg;         /* one message */
    arena *scratch;     /* reset freely between steps */
    arena *conn_t;      /* tainted: data from outside, connection lifetime */
    arena *msg_t;       /* tainted: data from outside, message lifetime */

    const char *progname;
    pid_t pid;
    time_t started;
    bool debug;

    /* string expansion (src/expand) */
    const char *exp_num[10];  /* $0..$9 from the last successful match */
    int exp_nmax;             /* number of $n set (0 = none) */
    const char *exp_item;     /* $item in forall/forany/map/filter/reduce/sort */
    const char *exp_value;    /* $value: lookup/extract result, reduce value */
    acl_var *acl_c;           /* connection ACL variables (conn lifetime) */
    acl_var *acl_m;           /* message ACL variables (msg lifetime) */
} proc_state;

extern proc_state ps;

void state_init(const char *progname);
void state_message_done(void);   /* drop message arenas */

#endif
