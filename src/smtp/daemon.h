/* daemon.h: the listening daemon (-bd). */
#ifndef POSTERN_SMTP_DAEMON_H
#define POSTERN_SMTP_DAEMON_H

#include "config/config.h"
#include <stdbool.h>

typedef struct daemon_args {
    const char *override;      /* -oX: ports or interfaces */
    const char *pidfile;       /* -oP */
    bool foreground;           /* -bdf */
    int queue_interval;        /* -q<time>: seconds between queue runs, 0 none */
    config_load_args *load;        /* for SIGHUP */
} daemon_args;

int daemon_run(const daemon_args *da);

#endif
