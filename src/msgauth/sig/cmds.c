/* sig/cmds.c: postern-auth subcommands for DKIM, ARC, DomainKeys. */
#include "msgauth/cli.h"
#include <stddef.h>

const auth_cmd sig_cmds[] = {
    { NULL, NULL, NULL },
};
