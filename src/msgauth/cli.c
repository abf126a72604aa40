/* cli.c: postern-auth entry point: finds the subcommand and runs it. */
#include "msgauth/cli.h"

#include <stdio.h>
#include <string.h>

static const auth_cmd *const tables[] = { sig_cmds, policy_cmds };

static void usage(FILE *f)
{
    fprintf(f, "usage: postern-auth <command> [options] < message\n\ncommands:\n");
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const auth_cmd *c = tables[t]; c->name; c++)
            fprintf(f, "  %-14s %s\n", c->name, c->synopsis);
    fprintf(f, "\ncommon options: --dns ip@port, --now <unix time>, --json\n"
               "exit status: 0 all passed, 1 a check did not pass, 2 temporary error, 64 usage\n"
               "see postern-auth(1) for details\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? AUTH_EXIT_USAGE : AUTH_EXIT_OK;
    }
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const auth_cmd *c = tables[t]; c->name; c++)
            if (strcmp(c->name, argv[1]) == 0)
                return c->run(argc - 1, argv + 1);
    fprintf(stderr, "postern-auth: unknown command \"%s\" (try --help)\n", argv[1]);
    return AUTH_EXIT_USAGE;
}
