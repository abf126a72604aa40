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
} proc_state;

extern proc_state ps;

void state_init(const char *progname);
void state_message_done(void);   /* drop message arenas */

#endif
