/* acl_callout_opts.c: the options after "verify = sender", "recipient"
 * and "header_sender" (defer_ok, no_details, success_on_redirect, and
 * callout with its comma-separated sub-options), parsed as Exim parses
 * them: sub-option names match as prefixes, in Exim's order, and an item
 * that names none is a time. Pure code: no I/O, no global state. */
#include "acl/acl_callout.h"
#include "config/config.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

enum { CO_DEFER_OK, CO_NO_CACHE, CO_RANDOM, CO_USE_SENDER, CO_USE_TPTSENDER, CO_USE_POSTMASTER,
       CO_PM_MAILFROM, CO_POSTMASTER, CO_FULLPM, CO_MAILFROM, CO_MAXWAIT, CO_CONNECT, CO_HOLD, CO_TIME };

static const struct { const char *name; int id; bool has_value, is_time; } subopts[] = {
    { "defer_ok", CO_DEFER_OK, false, false },
    { "no_cache", CO_NO_CACHE, false, false },
    { "random", CO_RANDOM, false, false },
    { "use_sender", CO_USE_SENDER, false, false },
    { "use_tptsender", CO_USE_TPTSENDER, false, false },
    { "use_postmaster", CO_USE_POSTMASTER, false, false },
    { "postmaster_mailfrom", CO_PM_MAILFROM, true, false },
    { "postmaster", CO_POSTMASTER, false, false },
    { "fullpostmaster", CO_FULLPM, false, false },
    { "mailfrom", CO_MAILFROM, true, false },
    { "maxwait", CO_MAXWAIT, true, true },
    { "connect", CO_CONNECT, true, true },
    { "hold", CO_HOLD, false, false },
};

static const char *skip_ws(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

/* The next item of a list with separator sep (no doubling rules: the
 * options hold no separators), white space trimmed; NULL at the end. */
static char *next_item(const char **p, char sep, arena *a)
{
    const char *s = skip_ws(*p);
    if (!*s)
        return NULL;
    const char *e = strchr(s, sep);
    size_t n = e ? (size_t)(e - s) : strlen(s);
    *p = e ? e + 1 : s + n;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return arena_strndup(a, s, n);
}

static bool period(const char *s, int *out)
{
    long long v;
    if (opt_parse_time(s, &v) != ST_OK)
        return false;
    *out = (int)v;
    return true;
}

static const char *callout_sub(const char *list, const char *what, bool header_sender, arena *a, callout_opts *o)
{
    char *opt;
    while ((opt = next_item(&list, ',', a))) {
        size_t i, n = sizeof subopts / sizeof subopts[0];
        for (i = 0; i < n; i++)
            if (strncasecmp(opt, subopts[i].name, strlen(subopts[i].name)) == 0)
                break;
        int id = i < n ? subopts[i].id : CO_TIME;
        const char *val = opt;
        if (i < n && subopts[i].has_value) {
            val = skip_ws(opt + strlen(subopts[i].name));
            if (*val++ != '=')
                return arena_printf(a, "'=' expected after \"%s\" in ACL verify condition \"%s\"", subopts[i].name,
                                    what);
            val = skip_ws(val);
        }
        int t = 0;
        if ((id == CO_TIME || (i < n && subopts[i].is_time)) && !period(val, &t))
            return arena_printf(a, "bad time value in ACL condition \"verify %s\"", what);
        switch (id) {
        case CO_DEFER_OK: o->callout_defer_ok = true; break;
        case CO_NO_CACHE: o->no_cache = true; break;
        case CO_RANDOM: o->random = true; break;
        case CO_USE_SENDER: o->use_sender = true; break;
        case CO_USE_POSTMASTER: o->use_postmaster = true; break;
        case CO_POSTMASTER: o->pm_mailfrom = ""; break;
        case CO_FULLPM: o->pm_mailfrom = ""; o->fullpostmaster = true; break;
        case CO_PM_MAILFROM: o->pm_mailfrom = val; break;
        case CO_MAILFROM:
            if (!header_sender)
                return arena_printf(a, "\"mailfrom\" is allowed as a callout option only for verify=header_sender "
                                    "(detected in ACL condition \"%s\")", what);
            o->se_mailfrom = val;
            break;
        case CO_MAXWAIT: o->overall = t; break;
        case CO_CONNECT: o->connect = t; break;
        case CO_TIME: o->timeout = t; break;
        case CO_USE_TPTSENDER:
            return arena_printf(a, "callout option \"use_tptsender\" is not implemented by postern "
                                "(in ACL condition \"verify %s\")", what);
        case CO_HOLD:
            return arena_printf(a, "callout option \"hold\" is not implemented by postern "
                                "(in ACL condition \"verify %s\")", what);
        }
    }
    return NULL;
}

const char *callout_parse(const char *opts, const char *what, bool sender, bool header_sender, arena *a,
                          callout_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout = o->overall = o->connect = -1;
    const char *list = opts;
    char *ss;
    while ((ss = next_item(&list, '/', a))) {
        if (strcasecmp(ss, "defer_ok") == 0)
            o->defer_ok = true;
        else if (strcasecmp(ss, "no_details") == 0)
            o->no_details = true;
        else if (strcasecmp(ss, "success_on_redirect") == 0)
            o->success_on_redirect = true;
        else if (strcasecmp(ss, "callout_defer_ok") == 0) {      /* old spellings, still accepted */
            o->callout_defer_ok = true;
            if (o->timeout == -1)
                o->timeout = CALLOUT_TIMEOUT_DEFAULT;
        } else if (strcasecmp(ss, "check_postmaster") == 0) {
            o->pm_mailfrom = "";
            if (o->timeout == -1)
                o->timeout = CALLOUT_TIMEOUT_DEFAULT;
        } else if (strncasecmp(ss, "callout", 7) == 0) {
            o->timeout = CALLOUT_TIMEOUT_DEFAULT;
            const char *p = ss + 7;
            if (*p) {
                p = skip_ws(p);
                if (*p++ != '=')
                    return arena_printf(a, "'=' expected after \"callout\" in ACL condition \"%s\"", what);
                const char *e = callout_sub(skip_ws(p), what, header_sender, a, o);
                if (e)
                    return e;
            }
        } else if (strncasecmp(ss, "quota", 5) == 0) {
            return arena_printf(a, "verify option \"quota\" is not implemented by postern "
                                "(in ACL condition \"verify %s\")", what);
        } else {
            return arena_printf(a, "unknown option \"%s\" in ACL condition \"verify %s\"", ss, what);
        }
    }
    int r = (o->use_sender ? 1 : 0) + (o->use_postmaster ? 1 : 0);
    if (r && sender)
        return "use_sender, use_tptsender or use_postmaster cannot be usedfor a sender verify callout";
    if (r > 1)
        return "only one of use_sender, use_tptsender and use_postmaster can be set for a recipient callout";
    return NULL;
}
