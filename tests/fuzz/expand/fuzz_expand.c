/* fuzz_expand.c: libFuzzer target for the expansion engine.  Each input
 * is expanded as a string and evaluated as a condition, with a small
 * configuration (named lists, macros) loaded once. */
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT 8192

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    state_init("fuzz_expand");
    /* ${readfile{/dev/stdin}} must not block */
    if (!freopen("/dev/null", "r", stdin))
        abort();
    config *c;
    char *err;
    const char *text =
        "primary_hostname = fuzz.example\n"
        "qualify_domain = fuzz.example\n"
        "domainlist doms = a.example : *.b.example : !c.example\n"
        "hostlist nets = 10.0.0.0/8 : 192.168.0.0/16\n"
        "addresslist addrs = x@y.example : *@z.example\n"
        "localpartlist lps = bob : ^al.*\n"
        "domainlist loop = +loop\n";
    if (config_load_string(text, "fuzz", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "fuzz_expand: config: %s\n", err);
        abort();
    }
    config_set_current(c);
    /* never run commands or read files named by fuzz input */
    ps.exp_forbid = EXPAND_FORBID_RUN | EXPAND_FORBID_READFILE | EXPAND_FORBID_QUERY |
                    EXPAND_FORBID_DNS;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *out = NULL, *err = NULL;
    status st = expand_string(s, ps.scratch, &out, &err);
    if (st == ST_OK && !out)
        abort();
    if (st != ST_OK && !err)
        abort();
    bool r;
    (void)expand_condition(s, ps.scratch, &r, &err);
    arena_reset(ps.scratch);
    free(s);
    return 0;
}
