/* fuzz_redirect.c: the redirect router on arbitrary .forward / alias file
 * contents (outside input: users write them).  The router reads the file
 * the fuzzer writes; pipes and files are permitted so those paths run, and
 * Exim filters are allowed (without logwrite, ${run}, files or lookups). */
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"
#include "route/route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static const char conf[] =
    "primary_hostname = fuzz.example\n"
    "log_file_path = /dev/null\n"
    "begin routers\n"
    "r:\n  driver = redirect\n  file = %s\n  allow_fail\n  allow_defer\n"
    "  pipe_transport = t\n  file_transport = t\n  directory_transport = t\n"
    "  forbid_include\n"   /* the fuzzer must not read the machine's files */
    "  allow_filter\n  reply_transport = t\n"   /* filters too, but nothing they do may escape */
    "  forbid_filter_logwrite\n  forbid_filter_run\n  forbid_filter_readfile\n  forbid_filter_lookup\n"
    "  forbid_filter_existstest\n"
    "begin transports\n"
    "t:\n  driver = pipe\n  command = /bin/true\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    state_init("fuzz_redirect");
    snprintf(path, sizeof path, "/tmp/fuzz-redirect-%d", (int)getpid());
    char text[sizeof conf + 64];
    snprintf(text, sizeof text, conf, path);
    config *c;
    char *err;
    if (config_load_string(text, "fuzz.conf", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    config_set_current(c);
    ps.exp_forbid = EXPAND_FORBID_DNS | EXPAND_FORBID_QUERY;   /* filter expansions stay off the network */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024 || memchr(data, 0, size))
        return 0;
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    arena *a = arena_new("fuzz", false);
    address_item *ad = arena_calloc(a, sizeof *ad);
    ad->address = "user@fuzz.example";
    ad->local_part = "user";
    ad->domain = "fuzz.example";
    ad->rcpt_index = -1;
    route_ctx ctx = { .a = a };
    address_item *gen = NULL;
    status st = route_address(ad, &ctx, &gen);
    for (address_item *g = gen; st == ST_REROUTED && g; g = g->next)
        if (!g->address || !*g->address)
            abort();   /* every generated address has text */
    arena_free(a);
    arena_reset(ps.scratch);
    return 0;
}
