/* log.h: main, reject and panic logs in Exim's line format
 * ("YYYY-MM-DD HH:MM:SS [pid] text"), written to files named by
 * log_file_path ("%s" replaced by main/reject/panic, or "syslog"), and the
 * panic path for contract violations. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>

enum {
    LOG_MAIN = 1,
    LOG_REJECT = 2,   /* also written to main */
    LOG_PANIC = 4,    /* also written to main */
    LOG_STDERR = 8,   /* also copy to stderr */
    LOG_NOMAIN = 16,  /* not to the main log (rejectlog header copies) */
};

typedef struct log_settings {
    const char *file_path;       /* colon list: "%s" templates and/or "syslog" */
    const char *spool_directory; /* default location: <spool>/log/%slog */
    bool pid;                    /* log_selector +pid */
    bool utc;                    /* timezone = UTC */
    const char *syslog_facility;
    const char *process_name;    /* syslog ident */
    bool testing;                /* -bh: each line to stderr as "LOG: <text>", no log file written */
    bool verbose;                /* -v: each line also to stderr as "LOG: MAIN" + "  <text>" */
} log_settings;

void log_configure(const log_settings *ls);
void log_write(int which, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The file a log of this kind goes to ("" when syslog only). */
const char *log_path_for(const char *kind, char *buf, unsigned buflen);

/* Contract violation: logged to the panic log and stderr, then abort(). */
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
