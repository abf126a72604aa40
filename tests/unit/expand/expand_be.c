/* expand_be.c: a minimal stand-alone "-be" driver for testing the
 * expansion engine without the rest of postern:
 *     expand_be -C config [-D name=value]... -be [string...]        */
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    state_init(argv[0]);
    config_load_args la = {0};
    const char *defs[64];
    int nd = 0, i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            la.file = argv[++i];
        else if (strncmp(argv[i], "-D", 2) == 0 && nd < 63)
            defs[nd++] = argv[i][2] ? argv[i] + 2 : argv[++i];
        else if (strcmp(argv[i], "-be") == 0) {
            i++;
            break;
        } else {
            fprintf(stderr, "usage: expand_be -C file [-D name=value] -be [string...]\n");
            return 2;
        }
    }
    defs[nd] = NULL;
    la.defines = defs;
    config *c;
    char *err;
    if (config_load(&la, &c, &err) != ST_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    config_set_current(c);
    return expand_test_mode(argc - i, argv + i);
}
