/* fuzz_filter.c: the Exim filter interpreter on arbitrary filter text
 * (outside input: users write their .forward filters).  Each input is
 * read and obeyed twice against a small fixed message: as -bf does (test
 * output to /dev/null, system-filter commands allowed, so headers
 * add/remove run) and as the redirect router does (actions collected).
 * Nothing is written: logwrite is off, expansions may not run commands,
 * read files or do lookups. */
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"
#include "route/filter.h"
#include "spool/spool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT 16384

static FILE *devnull;

static const char *const headers[] = {
    "From: Alice <alice@example.org>\n",
    "To: user@fuzz.example, Bob <bob@example.com>\n",
    "Cc: carol@example.net, (comment) \"Q, R\" <q@r.example>\n",
    "Subject: Hello World\n",
    "Precedence: list\n",
    "List-Id: <l.example>\n",
    "X-Multi: one\n two\n",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    state_init("fuzz_filter");
    if (!freopen("/dev/null", "r", stdin) || !(devnull = fopen("/dev/null", "w")))
        abort();
    config *c;
    char *err;
    if (config_load_string("primary_hostname = fuzz.example\nlog_file_path = /dev/null\n", "fuzz.conf", NULL, &c,
                           &err) != ST_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    config_set_current(c);
    ps.exp_forbid = EXPAND_FORBID_RUN | EXPAND_FORBID_READFILE | EXPAND_FORBID_LOOKUP | EXPAND_FORBID_EXISTS |
                    EXPAND_FORBID_STAT | EXPAND_FORBID_QUERY | EXPAND_FORBID_DNS;
    ps.message_id = "1xV0H2-0006vr-1d";
    ps.local_part = "user";
    ps.domain = "fuzz.example";
    ps.home_dir = "/nonexistent";
    return 0;
}

static void set_message(void)
{
    spool_msg m;
    memset(&m, 0, sizeof m);
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        spool_add_header(&m, ps.msg_t, spool_header_type(headers[i]), headers[i], strlen(headers[i]));
    ps.msg_headers = m.headers;
    ps.sender_address = arena_strdup(ps.msg_t, "sender@example.org");
    filter_set_body_vars("body line\nsecond\0line\n", 23);
    ps.message_size = 300;
}

static void check(const filter_result *r, filter_outcome out)
{
    if (out != r->outcome || out > FF_ERROR)
        abort();
    if ((out == FF_DELIVERED || out == FF_NOTDELIVERED) != (r->error == NULL))
        abort();
    for (const filter_action *a = r->actions; a; a = a->next)
        if (!a->target || !*a->target || (a->kind == FA_MAIL) != (a->reply != NULL))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *text = malloc(size + 16);
    memcpy(text, "# Exim filter\n", 14);
    memcpy(text + 14, data, size);
    text[size + 14] = '\0';
    /* a filter that says what it is goes in as it is */
    const char *t = filter_kind(text + 14) == FILTER_EXIM ? text + 14 : text;

    arena *a = arena_new("fuzz", false);
    set_message();
    filter_opts test = { .flags = FO_SYSTEM | FO_DEFER | FO_FAIL | FO_FREEZE | FO_REWRITE, .test = devnull, .a = a,
                         .first_delivery = true };
    filter_result r;
    check(&r, filter_interpret(t, &test, &r));
    if (r.actions)
        abort();                       /* testing sets nothing up */

    set_message();
    filter_opts real = { .flags = FO_PREPEND_HOME | FO_REWRITE | FO_FAIL, .a = a };
    check(&r, filter_interpret(t, &real, &r));

    arena_free(a);
    arena_reset(ps.scratch);
    arena_reset(ps.msg_t);
    ps.exp_nmax = 0;
    free(text);
    return 0;
}
