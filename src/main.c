/* main.c: the command line.  Picks the mode from Exim's options and hands
 * over to the module that does the work; nothing else happens here. */
#include "core/state.h"
#include <stdio.h>

int main(int argc, char **argv)
{
    state_init(argv[0]);
    if (argc > 1) {
        fprintf(stderr, "postern: option %s is not implemented yet\n", argv[1]);
        return 64;
    }
    return 0;
}
