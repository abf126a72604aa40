/* cmds.h: the policy subcommands of postern-auth (SPF, DMARC, SRS). */
#ifndef POSTERN_MSGAUTH_POLICY_CMDS_H
#define POSTERN_MSGAUTH_POLICY_CMDS_H

#include "msgauth/policy/spf.h"

int cmd_spf(int argc, char **argv);
int cmd_srs_forward(int argc, char **argv);
int cmd_srs_reverse(int argc, char **argv);
int cmd_dmarc(int argc, char **argv);
int cmd_dmarc_report(int argc, char **argv);
int cmd_dmarc_orgdomain(int argc, char **argv);

int spf_exit_code(spf_result r);

#endif
