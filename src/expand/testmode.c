/* testmode.c: "postern -be [string ...]": expand each argument, or each
 * line of standard input, and print the result the way Exim does
 * ("Failed: reason" on failure; a "> " prompt per stdin line).  Macros
 * of the loaded configuration are replaced in the input first. */
#include "expand.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/state.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TESTMODE_MAX_LINE (64 * 1024)

/* Replace configuration macros (names beginning with an upper-case letter
 * or underscore, matched as in the config reader: first defined prefix). */
static const char *macro_expand(const char *s, arena *a)
{
    if (!cfg || !cfg->macros)
        return s;
    gstr g;
    gstr_init(&g, a, strlen(s) + 16);
    const char *p = s;
    int guard = 0;
    while (*p) {
        bool start = (isupper((unsigned char)*p) || *p == '_') &&
                     (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        if (start && guard < 10000) {
            const macro *hit = NULL;
            for (const macro *m = cfg->macros; m; m = m->next) {
                size_t n = strlen(m->name);
                if (strncmp(p, m->name, n) == 0) {
                    hit = m;
                    break;
                }
            }
            if (hit) {
                gstr_cat(&g, hit->value ? hit->value : "");
                p += strlen(hit->name);
                guard++;
                continue;
            }
        }
        gstr_catc(&g, *p++);
    }
    return g.s;
}

static void one(const char *in, FILE *out)
{
    arena *a = ps.scratch ? ps.scratch : arena_new("be", false);
    const char *s = macro_expand(in, a);
    char *res = NULL, *err = NULL;
    status st = expand_string(s, a, &res, &err);
    if (st == ST_OK)
        fprintf(out, "%s\n", res);
    else
        fprintf(out, "Failed: %s\n", err ? err : "expansion failed");
    fflush(out);
    if (a == ps.scratch)
        arena_reset(a);
    else
        arena_free(a);
}

int expand_test_mode(int argc, char **argv)
{
    if (argc > 0) {
        for (int i = 0; i < argc; i++)
            one(argv[i], stdout);
        return 0;
    }
    static char line[TESTMODE_MAX_LINE];
    arena *la = arena_new("be-line", false);
    for (;;) {
        fputs("> ", stdout);
        fflush(stdout);
        gstr g;
        gstr_init(&g, la, 256);
        bool got = false;
        while (fgets(line, sizeof line, stdin)) {
            got = true;
            size_t n = strlen(line);
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
            const char *p = line;
            if (g.len)
                while (isspace((unsigned char)*p))
                    p++;
            n = strlen(p);
            if (n && p[n - 1] == '\\') {
                gstr_catn(&g, p, n - 1);
                continue;
            }
            gstr_catn(&g, p, n);
            break;
        }
        if (!got) {
            fputs("\n", stdout);
            break;
        }
        one(g.s, stdout);
        arena_reset(la);
    }
    arena_free(la);
    return 0;
}
