/* smtp_cmd.h: parsing of MAIL FROM and RCPT TO arguments (RFC 5321
 * paths and ESMTP parameters: SIZE, BODY, RET, ENVID, AUTH, SMTPUTF8,
 * NOTIFY, ORCPT).  Pure functions: they take the text after the verb and
 * return NULL or an error text for a 501 reply. */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H

#include "core/arena.h"
#include <stdbool.h>

#define SMTP_MAX_ADDRESS 1024     /* longest path accepted (RFC 5321 says 256) */

typedef struct smtp_mail_args {
    const char *address;          /* "" for <> */
    unsigned long long size;      /* SIZE=, 0 if absent */
    int ret;                      /* 0, 1 FULL, 2 HDRS */
    const char *envid;
    const char *body;             /* 7BIT, 8BITMIME */
    const char *auth;
    bool smtputf8;
} smtp_mail_args;

typedef struct smtp_rcpt_args {
    const char *address;
    unsigned notify;              /* SPOOL_DSN_* bits */
    const char *orcpt;
} smtp_rcpt_args;

const char *smtp_parse_mail(const char *arg, bool esmtp, arena *a, smtp_mail_args *out);
/* xtext (RFC 3461 4): "+XX" stands for a byte.  The length, or -1 for
 * malformed text. */
long smtp_xtext_decode(const char *in, arena *a, char **out);
const char *smtp_parse_rcpt(const char *arg, arena *a, smtp_rcpt_args *out);

#endif
