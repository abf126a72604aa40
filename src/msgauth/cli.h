/* cli.h: postern-auth, the command-line face of src/msgauth.  Each area
 * (sig/: DKIM, ARC, DomainKeys, Authentication-Results; policy/: SPF,
 * DMARC, SRS) contributes a table of subcommands. */
#ifndef POSTERN_MSGAUTH_CLI_H
#define POSTERN_MSGAUTH_CLI_H

/* Exit statuses, documented in --help and the man page. */
enum {
    AUTH_EXIT_OK = 0,      /* every check passed / operation done */
    AUTH_EXIT_NOTPASS = 1, /* a check did not pass */
    AUTH_EXIT_TEMP = 2,    /* temporary error (DNS timeout, SERVFAIL) */
    AUTH_EXIT_USAGE = 64,
};

typedef struct auth_cmd {
    const char *name;                 /* "dkim-verify" */
    const char *synopsis;             /* one line for --help */
    int (*run)(int argc, char **argv);/* argv[0] is the subcommand name */
} auth_cmd;

/* Each table ends with an entry whose name is NULL. */
extern const auth_cmd sig_cmds[];
extern const auth_cmd policy_cmds[];

#endif
