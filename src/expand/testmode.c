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
#include <pwd.h>
#include <unistd.h>

#define TESTMODE_MAX_LINE (64 * 1024)
#define TESTMODE_MAX_ARG  256   /* Exim refuses longer -be arguments (EXIM_EMAILADDR_MAX) */
#define TESTMODE_MAX_MACROS 1000

/* Macros defined by "NAME = value" lines of this -be run (Exim 4.97+). */
static struct be_macro {
    char *name, *value;
} be_macros[TESTMODE_MAX_MACROS];
static int n_be_macros;
static arena *be_arena;

/* Replace configuration macros (names beginning with an upper-case letter
 * or underscore, matched as in the config reader: first defined prefix). */
/* As in Exim, only an admin user (root here) sees the configuration's
 * macros in -be input. */
static bool admin_user(void)
{
    return getuid() == 0 || geteuid() == 0;
}

static const char *macro_expand(const char *s, arena *a, bool *first)
{
    *first = false;
    bool cfg_macros = cfg && cfg->macros && admin_user();
    if (!cfg_macros && !n_be_macros)
        return s;
    gstr g;
    gstr_init(&g, a, strlen(s) + 16);
    const char *p = s;
    int guard = 0;
    while (*p) {
        bool start = (isupper((unsigned char)*p) || *p == '_') &&
                     (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'));
        if (start && guard < 10000) {
            const char *hn = NULL, *hv = NULL;
            for (const macro *m = cfg_macros ? cfg->macros : NULL; m && !hn; m = m->next)
                if (strncmp(p, m->name, strlen(m->name)) == 0)
                    hn = m->name, hv = m->value;
            for (int i = 0; i < n_be_macros && !hn; i++)
                if (strncmp(p, be_macros[i].name, strlen(be_macros[i].name)) == 0)
                    hn = be_macros[i].name, hv = be_macros[i].value;
            if (hn) {
                if (p == s)
                    *first = true;
                gstr_cat(&g, hv ? hv : "");
                p += strlen(hn);
                guard++;
                continue;
            }
        }
        gstr_catc(&g, *p++);
    }
    return g.s;
}

/* "NAME = value" (or "NAME == value" to redefine): Exim 4.97+ -be lines
 * that start with an upper-case letter define macros.  Errors go to
 * stderr only, as Exim logs them. */
static void define_macro(const char *line)
{
    const char *p = line;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nl = (size_t)(p - line);
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != '=') {
        fprintf(stderr, "postern: malformed macro definition \"%s\"\n", line);
        return;
    }
    bool redef = false;
    if (*p == '=') {
        redef = true;
        p++;
    }
    while (isspace((unsigned char)*p))
        p++;
    char *name = arena_strndup(be_arena, line, nl);
    for (const macro *m = cfg ? cfg->macros : NULL; m; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            fprintf(stderr, "postern: macro \"%s\" is already defined in the configuration\n", name);
            return;
        }
        if (strlen(m->name) < nl && strstr(name, m->name)) {
            fprintf(stderr, "postern: \"%s\" cannot be defined as a macro because previously "
                            "defined macro \"%s\" is a substring\n", name, m->name);
            return;
        }
    }
    for (int i = 0; i < n_be_macros; i++) {
        if (strcmp(be_macros[i].name, name) == 0) {
            if (!redef) {
                fprintf(stderr, "postern: macro \"%s\" is already defined (use \"==\" if you "
                                "want to redefine it)\n", name);
                return;
            }
            be_macros[i].value = arena_strdup(be_arena, p);
            printf("Defined macro '%s'\n", name);
            return;
        }
        if (strlen(be_macros[i].name) < nl && strstr(name, be_macros[i].name)) {
            fprintf(stderr, "postern: \"%s\" cannot be defined as a macro because previously "
                            "defined macro \"%s\" is a substring\n", name, be_macros[i].name);
            return;
        }
    }
    if (redef) {
        fprintf(stderr, "postern: can't redefine an undefined macro \"%s\"\n", name);
        return;
    }
    if (n_be_macros == TESTMODE_MAX_MACROS) {
        fprintf(stderr, "postern: too many macros\n");
        return;
    }
    be_macros[n_be_macros].name = name;
    be_macros[n_be_macros++].value = arena_strdup(be_arena, p);
    printf("Defined macro '%s'\n", name);
}

/* "set acl_m_name = value" and "set,t ..." (tainted value), as Exim. */
static const char *set_variable(const char *s, bool taint, arena *a)
{
    if (strncmp(s, "acl_c", 5) != 0 && strncmp(s, "acl_m", 5) != 0)
        return arena_printf(a, "invalid variable name after \"set\" in ACL modifier \"set %s\" "
                               "(must start \"acl_c\" or \"acl_m\")", s);
    const char *e = s + 5;
    if (!isdigit((unsigned char)*e) && *e != '_')
        return arena_printf(a, "invalid variable name after \"set\" in ACL modifier \"set %s\" "
                               "(digit or underscore must follow acl_c or acl_m)", s);
    for (; *e && *e != '=' && !isspace((unsigned char)*e); e++)
        if (!isalnum((unsigned char)*e) && *e != '_')
            return arena_printf(a, "invalid character \"%c\" in variable name in ACL modifier \"set %s\"", *e, s);
    char *name = arena_strndup(a, s, (size_t)(e - s));
    while (isspace((unsigned char)*e))
        e++;
    if (*e++ != '=')
        return arena_strdup(a, "\"=\" missing after ACL \"'-be'\" modifier");
    while (isspace((unsigned char)*e))
        e++;
    char *val, *err;
    if (expand_string(e, a, &val, &err) != ST_OK)
        return arena_printf(a, "oops: failed to expand ACL string \"%s\": %s", e, err);
    if (taint)
        val = arena_strdup(ps.conn_t, val);
    if (expand_set_acl_var(name, val, &err) != ST_OK)
        return arena_printf(a, "oops: %s", err);
    return arena_printf(a, "variable %s set", name + 4);
}

static void one(const char *in, FILE *out)
{
    arena *a = ps.scratch ? ps.scratch : arena_new("be", false);
    if (!be_arena)
        be_arena = arena_new("be-macros", false);
    bool first;
    const char *s = macro_expand(in, a, &first);
    char *res = NULL, *err = NULL;
    if (isupper((unsigned char)s[0]) && !first) {
        define_macro(s);
    } else if (strncmp(s, "set,t ", 6) == 0) {
        fprintf(out, "%s\n", set_variable(s + 6, true, a));
    } else if (strncmp(s, "set ", 4) == 0) {
        fprintf(out, "%s\n", set_variable(s + 4, false, a));
    } else {
        status st = expand_string(s, a, &res, &err);
        if (st == ST_OK)
            fprintf(out, "%s\n", res);
        else
            fprintf(out, "Failed: %s\n", err ? err : "expansion failed");
    }
    fflush(out);
    if (a == ps.scratch)
        arena_reset(a);
    else
        arena_free(a);
}

/* -be runs as a local submission by the caller: Exim sets the sender and
 * authenticated ids from the caller's login (unless the command line set
 * a sender with -f). */
static void local_caller_defaults(void)
{
    struct passwd *pw = getpwuid(getuid());
    const char *login = pw && pw->pw_name ? pw->pw_name : "";
    const char *qd = cfg ? cfg_str(MO_qualify_domain) : NULL;
    if (!qd && cfg)
        qd = cfg_str(MO_primary_hostname);
    char *addr = arena_printf(ps.conn, "%s@%s", login, qd ? qd : "");
    if (!ps.sender_address)
        ps.sender_address = addr;
    if (!ps.authenticated_id)
        ps.authenticated_id = arena_strdup(ps.conn, login);
    if (!ps.authenticated_sender)
        ps.authenticated_sender = addr;
}

int expand_test_mode(int argc, char **argv)
{
    if (ps.conn)
        local_caller_defaults();
    if (argc > 0) {
        for (int i = 0; i < argc; i++) {
            size_t n = strlen(argv[i]);
            if (n > TESTMODE_MAX_ARG) {
                fflush(stdout);
                fprintf(stderr, "postern: length limit exceeded (%zu > %d) for: -be arg\n", n, TESTMODE_MAX_ARG);
                return 1;
            }
            one(argv[i], stdout);
        }
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
            while (n && isspace((unsigned char)p[n - 1]))   /* Exim drops trailing white space */
                n--;
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
