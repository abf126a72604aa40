/* bounce.h: failure reports for messages whose addresses failed. */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include "deliver/address.h"
#include "spool/spool.h"

typedef enum dsn_kind { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED } dsn_kind;

/* Queue a delivery status notification about the addresses (a list
 * through ->next) of orig to its sender (or errors_to): a bounce
 * (DSN_FAILED), a delay warning, or a success notice for NOTIFY=SUCCESS.
 * Returns the new message id, or NULL with *err. */
const char *dsn_send(const spool_msg *orig, address_item *list, dsn_kind kind, int data_fd, arena *a, char **err);
#define bounce_send(orig, failed, fd, a, err) dsn_send((orig), (failed), DSN_FAILED, (fd), (a), (err))

/* The header lines a report about orig to `to` starts with, as Exim's
 * reports about local input (moan): Reply-To: (errors_reply_to),
 * Auto-Submitted:, From: (dsn_from), To:, References:. */
const char *dsn_report_headers(const spool_msg *orig, const char *to, arena *a);

#endif
