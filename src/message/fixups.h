/* fixups.h: the header fix-ups Exim applies to incoming messages:
 * Return-path:/Delivery-date:/Envelope-to: removed; for locally generated
 * and submission-mode messages (unless suppress_local_fixups) Message-Id:,
 * From: and Date: added when missing, and Sender: checked for untrusted
 * local callers (local_from_check, local_sender_retain).  With .rewrite,
 * the rewrite section is applied among them in Exim's order: recipients
 * after Message-Id:, then From:/Sender:, the sender, the address headers
 * (qualified where allowed), then Date:. */
#ifndef POSTERN_FIXUPS_H
#define POSTERN_FIXUPS_H

#include "spool/spool.h"
#include <stdbool.h>

typedef struct fixup_ctx {
    bool local;                /* no remote host: -bm/-t or -bs */
    bool smtp;                 /* received over SMTP (-bs, not -bm/-t) */
    bool submission;           /* control = submission */
    bool suppress;             /* control = suppress_local_fixups */
    bool trusted;              /* trusted local caller */
    const char *login;         /* calling user's login (local) */
    const char *fullname;      /* for a generated From: */
    bool name_forced;          /* ... given with -F */
    bool sender_forced;        /* the envelope sender was given with -f */
    const char *qualify_domain;
    const char *primary_hostname;
    bool local_from_check, local_sender_retain;
    const char *submission_domain;  /* NULL: qualify_domain */
    const char *authenticated_id;
    bool rewrite;              /* qualify and rewrite envelope and headers (reception) */
    bool unqualified_sender;   /* unqualified header addresses may be qualified: local */
    bool unqualified_recipient;/* input, or sender_/recipient_unqualified_hosts */
} fixup_ctx;

/* Apply the fix-ups to m (headers may be added or marked deleted).  The
 * envelope sender m->sender may be changed (when a Sender: is added, or by
 * rewriting), and so may the recipients (rewriting). */
void msg_fixups(spool_msg *m, const fixup_ctx *fx, arena *a);

#endif
