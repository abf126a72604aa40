/* reclog.h: the "<=" main log line for an accepted message, with the
 * fields log_selector asks for, in Exim's order. */
#ifndef POSTERN_RECLOG_H
#define POSTERN_RECLOG_H

#include "core/gstr.h"
#include "spool/spool.h"
#include <stdbool.h>

typedef struct reclog {
    const spool_msg *m;
    const char *host;          /* "H=(helo) [ip]" or NULL for local */
    int host_port;
    const char *iface;         /* interface address or NULL */
    int iface_port;
    const char *ref;           /* R= (the message a local error report is about) or NULL */
    const char *user;          /* U= (local callers, ident) */
    const char *protocol;
    unsigned long long size;
    bool msgid_created;        /* Message-Id: was added by postern */
    double receive_secs;       /* for RT= */
} reclog;

void log_received(const reclog *r);

/* The incoming TLS session's fields (X=, CV=, DN=, SNI=) as log_selector
 * asks for them; nothing without TLS. */
void log_tls_in(gstr *g);

/* The reject log's copy of a refused message: "Envelope-from: <sender>",
 * an "Envelope-to:" line per recipient, then the headers with their
 * spool type letters (Exim's layout). */
void log_reject_headers(const char *sender, const spool_msg *m);

/* Put the Received: header first on m: received_header_text (expanded;
 * a forced failure means none) or Exim's default text.  remote_ip is the
 * SMTP client's address, NULL for local input (then ident is the caller's
 * login); sender the envelope sender. */
void received_header_add(spool_msg *m, const char *remote_ip, const char *ident, const char *sender);

/* message_size_limit, expanded now (0: no limit; an expansion failure
 * also means none). */
long long receive_size_limit(void);

#endif
