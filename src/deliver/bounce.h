/* bounce.h: failure reports for messages whose addresses failed. */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include "deliver/address.h"
#include "spool/spool.h"

/* Queue a bounce for the failed addresses (a list through ->next) of
 * orig to its sender (or errors_to).  Returns the new message id, or NULL
 * with *err. */
const char *bounce_send(const spool_msg *orig, address_item *failed, int data_fd, arena *a, char **err);

#endif
