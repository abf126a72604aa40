/* smtp_wait.h: which queued messages wait for which hosts (wait-<transport>
 * hints), and the SMTP connection a delivery process keeps open so that
 * the next batch, or the next message waiting for the same host, can use
 * it (Exim's connection reuse). */
#ifndef POSTERN_SMTP_WAIT_H
#define POSTERN_SMTP_WAIT_H

#include "deliver/address.h"
#include "spool/spool.h"
#include <stdbool.h>

/* List msgid under each (distinct) host name of hosts in wait-<tpname>. */
void smtp_wait_add(const char *tpname, const host_item *hosts, const char *msgid, arena *a);
/* Take the oldest message id listed for host (other than except) off the
 * list; NULL when none. */
const char *smtp_wait_next(const char *tpname, const char *host, const char *except, arena *a);

/* serialize_hosts: at most limit connections at a time under key
 * ("host-serialize-<host name>") in the misc hints database.  A record
 * older than six hours is ignored (a crashed process cannot block a host
 * for ever), as in Exim.  smtp_serialize_start: false when the limit is
 * reached (or the database cannot be used); otherwise the count goes up
 * and smtp_serialize_end must follow. */
bool smtp_serialize_start(const char *key, unsigned limit, arena *a);
void smtp_serialize_end(const char *key, arena *a);

/* The connection kept open after a successful transaction (one per
 * process).  smtp_kept_host: its transport and host name, false when none
 * or when it is a TLS session (its state cannot be shared with the child
 * that would deliver the next waiting message: such a connection serves
 * the batches of one message only).
 * smtp_kept_ready: is it still there (RSET only after a transaction left
 * open, as Exim)?  false (and closed) when it no longer works
 * or has carried connection_max_messages messages.  smtp_kept_close: QUIT
 * (when quit) and close.  smtp_kept_forget: drop it without a word (a
 * child took it over and ended it). */
bool smtp_kept_host(const char **tpname, const char **host);
bool smtp_kept_ready(void);
void smtp_kept_close(bool quit);
void smtp_kept_forget(void);
/* The kept connection's socket (-1: none), and counting a message a child
 * process sent down it. */
int smtp_kept_fd(void);
void smtp_kept_sent(void);

#endif
