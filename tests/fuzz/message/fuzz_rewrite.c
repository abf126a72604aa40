/* fuzz_rewrite.c: address headers from outside through the mailbox
 * parser (src/message/addr.c) and the rewrite engine (src/message/
 * rewrite.c): item splitting with group syntax, extraction with positions,
 * display-name repair, header rewriting with wildcard, regex, "w" and "Q"
 * rules, and the SMTP-time ("S") rewriting of a RCPT argument.  No rule
 * does a DNS or file lookup. */
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "message/addr.h"
#include "message/rewrite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char conf[] =
    "primary_hostname = fuzz.example\n"
    "qualify_domain = q.example\n"
    "domainlist local = a.example : *.b.example\n"
    "begin rewrite\n"
    "root@*.example  *\n"
    "*@*.hitch.example  $1@hitch.example\n"
    "*@+local  \"\\\"$0|$1|$2\\\"@l.example\"  h\n"
    "\\N^(?i)([^@]+)@(.*)\\.w\\.example$\\N  \"Some Body, Jr. <$1@$2.example>\"  w\n"
    "*x@*  \"${if eq{$1}{}{fail}{$1@X.example}}\"  R\n"
    "*@q.example  $local_part  Q\n"
    "\\N^<(.*)!(.*)>$\\N  <$2@$1>  S\n";

static rewrite_set rules;
static bool ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return 0;
    if (!ready) {
        state_init("fuzz_rewrite");
        config *c;
        char *err;
        if (config_load_string(conf, "fuzz.conf", NULL, &c, &err) != ST_OK)
            abort();
        config_set_current(c);
        log_settings ls = { .file_path = "/dev/null" };
        log_configure(&ls);
        rewrite_set_config(c, ps.config, &rules);
        ready = true;
    }
    arena *a = ps.msg;
    char *s = arena_memdup(a, data, size);
    if (strlen(s) != size)
        goto done;          /* headers never hold NULs */

    addr_span sp;
    const char *err;
    char *one = addr_extract(a, s, NULL, NULL, size && (data[0] & 1), &sp, &err);
    if (one && (sp.start < 0 || sp.end < sp.start || (size_t)sp.end > size))
        abort();
    if (!one && !err)
        abort();

    /* the items of a header, as the rewriting walks them */
    addr_group g = { .allow = true };
    for (const char *p = s; *p;) {
        const char *e = addr_item_end(p, false);
        if (e < p || e > s + size)
            abort();
        char *item = arena_strndup(a, p, (size_t)(e - p));
        (void)addr_extract(a, item, NULL, &g, false, &sp, &err);
        p = *e ? e + 1 : e;
    }
    (void)addr_fix_phrase(a, s, size, NULL);
    (void)addr_find_at(s);

    static const char types[] = "FTCBRS";
    char *h = arena_printf(a, "To: %s\n", s);
    char *nt = rewrite_header_text(&rules, h, rewrite_header_place(types[size % 6]), size & 2, size & 4, NULL, a);
    if (nt && (strlen(nt) == 0 || strchr(nt, ':') == NULL))
        abort();
    (void)rewrite_smtp_arg(arena_printf(a, "TO:%s", s), a);
    if (one && sp.domain)
        (void)rewrite_one(&rules, one, RW_ENVTO, NULL, NULL, NULL, a);
done:
    arena_reset(ps.msg);
    arena_reset(ps.msg_t);
    arena_reset(ps.scratch);
    return 0;
}
