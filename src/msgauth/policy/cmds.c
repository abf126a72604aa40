/* policy/cmds.c: postern-auth subcommands for SPF, DMARC, SRS. */
#include "msgauth/cli.h"
#include <stddef.h>

const auth_cmd policy_cmds[] = {
    { NULL, NULL, NULL },
};
