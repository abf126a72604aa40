/* submit.h: queue a message made by delivery (bounce, warning, autoreply). */
#ifndef POSTERN_SUBMIT_H
#define POSTERN_SUBMIT_H

#include "spool/spool.h"

typedef struct submit_msg {
    const char *sender;          /* "" or NULL: a bounce (<>) */
    const char *const *rcpts;
    int nrcpt;
    const char *headers;         /* header lines, each ending in \n (continuations allowed) */
    const char *body;            /* body text, lines ending in \n */
    const char *ref_id;          /* the message this one is about (R= in the log), or NULL */
    const char *login;           /* U= (default: exim_user) */
} submit_msg;

/* Spool the message durably and log its arrival.  A Received: header is
 * put first; Message-Id: and Date: are added when the headers lack them.
 * Returns the new message id, or NULL with *err.  The caller starts the
 * delivery (deliver_after_receive). */
const char *deliver_submit_local(const submit_msg *s, arena *a, char **err);

#endif
