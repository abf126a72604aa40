/* local.h: non-SMTP message input (-bm, -t, sendmail). */
#ifndef POSTERN_SMTP_LOCAL_H
#define POSTERN_SMTP_LOCAL_H

#include <stdbool.h>
#include "core/arena.h"
#include <pwd.h>
#include <sys/types.h>

#define EX_TEMPFAIL_LOCAL 75   /* sysexits EX_TEMPFAIL: try again later */

typedef struct local_args {
    const char *sender;        /* -f, NULL if not given ("" for <>) */
    const char *fullname;      /* -F */
    bool extract;              /* -t */
    bool dot_ok;               /* -i / -oi: a "." line does not end the message */
    bool queue_only;           /* -odq */
    char deliver_mode;         /* 'i' (-odi, -odf: deliver before returning), 'b' (-odb), 0 */
    char **rcpt;               /* recipient arguments */
    int nrcpt;
    bool errors_stderr;        /* -oep, -oeq: errors in the input go to stderr, not
                                * in a message to the sender (-oem, the default) */
    bool errors_ok;            /* -oee: exit 0 when the sender was told */
    const char *message_ref;   /* -E<id>: this is a report about message id (R= in
                                * the log); an error in it is only logged */
} local_args;

bool local_caller_trusted(uid_t uid, gid_t gid, const char *login);
/* The caller's name from the passwd entry (up to the first comma). */
const char *local_caller_name(const struct passwd *pw, arena *a);
/* Read a message from stdin and queue it; returns the exit status.
 * Input that cannot be taken (too big; -t and no recipients) is reported
 * as Exim does: logged, then a message to the sender (or stderr). */
int local_receive(const local_args *la);

#endif
