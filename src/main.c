/* main.c: the command line.  Reads Exim's options, loads the
 * configuration and hands over to the module for the mode; nothing else
 * happens here. */
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "lookup/lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEFINES 64

enum mode { M_NONE, M_BE, M_BP, M_BV };

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "postern: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return EXIT_FAILURE;
}

/* -bV: what this binary can do now (the README's feature table has the
 * status of everything else). */
static void print_version(FILE *f, const config *c)
{
    fprintf(f, "postern version %s (speaks Exim %s configuration and expansions)\n", POSTERN_VERSION, "4.99");
    fprintf(f, "Modes: -be -bP -bV\n");
    fprintf(f, "Lookups (built-in):");
    for (const lookup_driver *const *d = lookup_drivers; *d; d++)
        fprintf(f, " %s", (*d)->name);
    fprintf(f, "\nConfiguration sections read: main acl routers transports authenticators retry rewrite\n");
    fprintf(f, "Configuration file is %s\n", c && *c->filename ? c->filename : "the built-in default");
}

int main(int argc, char **argv)
{
    state_init(argv[0]);
    const char *defines[MAX_DEFINES + 1];
    int ndefines = 0;
    config_load_args la = { 0 };
    enum mode mode = M_NONE;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-C") == 0) {
            if (++i >= argc)
                return usage_error("%s requires a file name", a);
            la.file = argv[i];
        } else if (strncmp(a, "-D", 2) == 0) {
            const char *d = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!d)
                return usage_error("%s requires a macro definition", a);
            if (ndefines == MAX_DEFINES)
                return usage_error("too many -D options (at most %s)", "64");
            defines[ndefines++] = d;
        } else if (strcmp(a, "-be") == 0) {
            mode = M_BE;
            i++;
            break;
        } else if (strcmp(a, "-bP") == 0) {
            mode = M_BP;
            i++;
            break;
        } else if (strcmp(a, "-bV") == 0) {
            mode = M_BV;
        } else if (strcmp(a, "-d") == 0 || strncmp(a, "-d+", 3) == 0 || strncmp(a, "-d-", 3) == 0) {
            ps.debug = true;
        } else {
            fprintf(stderr, "postern: option %s is not implemented yet "
                            "(implemented: -C -D -be -bP -bV)\n", a);
            return 64;
        }
    }
    defines[ndefines] = NULL;
    la.defines = defines;
    if (mode == M_NONE) {
        fprintf(stderr, "postern: no mode given (try -bV, -be or -bP)\n");
        return 64;
    }

    config *c;
    char *err;
    if (config_load(&la, &c, &err) != ST_OK) {
        fprintf(stderr, "postern %s\n", err);
        return EXIT_FAILURE;
    }
    config_set_current(c);
    log_settings ls = {
        .file_path = cfg_str(MO_log_file_path),
        .spool_directory = cfg_str(MO_spool_directory),
    };
    log_configure(&ls);

    int rc = EXIT_SUCCESS;
    bool admin = getuid() == 0 || geteuid() == 0;
    switch (mode) {
    case M_BV:
        print_version(stdout, c);
        break;
    case M_BP:
        if (i >= argc) {
            config_print(c, "all", stdout, admin);
            break;
        }
        for (; i < argc; i++) {
            const char *n = argv[i];
            /* two-word forms: router NAME, transport NAME, macro NAME, ... */
            static const char *const two[] = { "router", "transport", "authenticator", "macro" };
            for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
                if (strcmp(n, two[k]) == 0 && i + 1 < argc) {
                    n = arena_printf(ps.scratch, "%s %s", argv[i], argv[i + 1]);
                    i++;
                    break;
                }
            if (!config_print(c, n, stdout, admin))
                rc = EXIT_FAILURE;
        }
        break;
    case M_BE:
        rc = expand_test_mode(argc - i, argv + i);
        break;
    case M_NONE:
        break;
    }
    fflush(stdout);
    config_free(c);
    return rc;
}
