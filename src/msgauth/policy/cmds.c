/* policy/cmds.c: postern-auth subcommands for SPF, DMARC, SRS. */
#include "msgauth/cli.h"
#include "msgauth/policy/cmds.h"
#include <stddef.h>

const auth_cmd policy_cmds[] = {
    { "spf", "SPF check_host(): --ip IP --sender ADDR --helo NAME [--received-spf]", cmd_spf },
    { "srs-forward", "SRS rewrite for forwarding: --secret S --domain D ADDR", cmd_srs_forward },
    { "srs-reverse", "SRS decode a bounce address: --secret S ADDR", cmd_srs_reverse },
    { "dmarc", "DMARC for the message on stdin: --ip IP --sender ADDR --helo NAME [--mode M]",
      cmd_dmarc },
    { "dmarc-report", "aggregate reports from a history file: --history F --org N --email A --from T --to T",
      cmd_dmarc_report },
    { "dmarc-orgdomain", "organizational domain: [--mode rfc9989|rfc7489] [--psl FILE] DOMAIN...",
      cmd_dmarc_orgdomain },
    { NULL, NULL, NULL },
};
