/* acl_cond.c: ACL conditions: list tests (hosts, domains, local_parts,
 * senders, sender_domains, recipients), authenticated, encrypted,
 * condition, nested "acl" calls with arguments, dnslists; verify and
 * ratelimit have their own files.  Each returns RC_OK for true, RC_FAIL
 * for false; the caller applies "!". */
#include "acl/acl_int.h"
#include "core/log.h"
#include "dns/dnslist.h"
#include "expand/expand.h"
#include "expand/match.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* optional: conditions of other modules (see acl.h) */
#pragma weak acl_condition_ext

#define W(x) (1u << ACL_WHERE_##x)
#define W_ALL ((1u << ACL_WHERE__COUNT) - 1)

typedef struct cond_def {
    const char *name;
    unsigned allowed;       /* stages where it may be used */
} cond_def;

static const cond_def cond_defs[] = {
    { "authenticated", W_ALL & ~(W(NOT_SMTP) | W(CONNECT) | W(HELO)) },
    { "dnslists", W_ALL & ~W(NOT_SMTP) },
    { "domains", W(RCPT) | W(VRFY) },
    { "encrypted", W_ALL & ~W(NOT_SMTP) },
    { "hosts", W_ALL & ~W(NOT_SMTP) },
    { "local_parts", W(RCPT) | W(VRFY) },
    { "recipients", W(RCPT) | W(VRFY) },
    { "sender_domains", W_ALL & ~(W(CONNECT) | W(HELO) | W(QUIT) | W(NOTQUIT) | W(VRFY) | W(EXPN)) },
    { "senders", W_ALL & ~(W(CONNECT) | W(HELO) | W(QUIT) | W(NOTQUIT) | W(VRFY) | W(EXPN)) },
};

static acl_rc forbidden(acl_ctx *c, const char *name)
{
    for (size_t i = 0; i < sizeof cond_defs / sizeof cond_defs[0]; i++)
        if (strcmp(cond_defs[i].name, name) == 0 && !(cond_defs[i].allowed & (1u << c->where)))
            return acl_fail_text(c, RC_ERROR, "cannot test %s condition in %s ACL", name,
                                 acl_wherename(c->where));
    return RC_OK;
}

bool acl_is_list_condition(const char *n)
{
    static const char *const lists[] = { "hosts", "domains", "local_parts", "recipients", "senders",
                                         "sender_domains", "authenticated", "encrypted", NULL };
    for (const char *const *l = lists; *l; l++)
        if (strcmp(*l, n) == 0)
            return true;
    return false;
}

/* A problem Exim reports in the panic log only: the rejection log line
 * gets no text, the detail goes to res->error. */
static acl_rc quiet_defer(acl_ctx *c, const char *text)
{
    log_write(LOG_MAIN | LOG_PANIC, "%s", text);
    if (!c->error)
        c->error = arena_printf(c->a, "%s (ACL \"%s\", %s line %d, condition \"%s\")", text, c->acl_name,
                                c->cond && c->cond->file ? c->cond->file : "inline", c->cond ? c->cond->line : 0,
                                c->cond ? c->cond->name : "?");
    return RC_DEFER;
}

/* Expand a list argument: a forced failure is "not in the list" (*empty
 * set, RC_OK), another failure defers (Exim's match_isinlist). */
static acl_rc list_expand(acl_ctx *c, const char *raw, char **out, bool *notin)
{
    char *err = NULL;
    *notin = false;
    status st = expand_string(raw, c->a, out, &err);
    if (st == ST_OK)
        return RC_OK;
    if (st == ST_FAIL_FORCED) {
        *notin = true;
        return RC_OK;
    }
    return quiet_defer(c, arena_printf(c->a, "failed to expand \"%s\" while checking a list: %s", raw,
                                       err ? err : "?"));
}

/* A list match: ST_OK/ST_FAIL to RC_OK/RC_FAIL, errors to DEFER/ERROR. */
static acl_rc list_rc(acl_ctx *c, status st, const char *err, const char *what)
{
    switch (st) {
    case ST_OK: return RC_OK;
    case ST_FAIL: return RC_FAIL;
    case ST_DEFER:
        if (err && strncmp(err, "failed to expand", 16) == 0)
            return quiet_defer(c, err);
        return acl_fail_text(c, RC_DEFER, "%s", err ? err : arena_printf(c->a, "%s lookup deferred", what));
    default:
        return acl_fail_text(c, RC_ERROR, "%s", err ? err : arena_printf(c->a, "error in %s list", what));
    }
}

/* Exim's string_dequote: one word, double quotes may enclose white space
 * (backslash escapes inside quotes). */
static char *dequote(arena *a, const char **sp)
{
    const char *s = *sp;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    char *out = arena_alloc(a, n + 1), *t = out;
    while (*s && !isspace((unsigned char)*s)) {
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                if (*s == '\\' && s[1])
                    s++;
                *t++ = *s++;
            }
            if (*s)
                s++;
        } else {
            *t++ = *s++;
        }
    }
    *t = 0;
    *sp = s;
    return out;
}

/* acl = name arg1 arg2 ... : a nested ACL with $acl_arg1..9 and $acl_narg. */
static acl_rc nested(acl_ctx *c, const char *raw)
{
    const char *s = raw;
    char *word = dequote(c->a, &s), *name, *argv[ACL_MAX_ARGS];
    bool forced;
    acl_rc rc = acl_expand_arg(c, word, &name, &forced);
    if (rc != RC_OK)
        return rc;
    if (forced)
        return RC_OK;
    int n = 0;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        if (n == ACL_MAX_ARGS)
            break;             /* Exim ignores arguments beyond the ninth */
        word = dequote(c->a, &s);
        rc = acl_expand_arg(c, word, &argv[n], &forced);
        if (rc != RC_OK)
            return rc;
        if (forced)
            argv[n] = "";
        n++;
    }
    const char *saved[ACL_MAX_ARGS];
    int saved_n = ps.acl_narg;
    memcpy(saved, ps.acl_arg, sizeof saved);
    for (int i = 0; i < ACL_MAX_ARGS; i++)
        ps.acl_arg[i] = i < n ? argv[i] : NULL;
    ps.acl_narg = n;
    rc = acl_run_spec(c, name, false, c->umsg, c->lmsg);
    memcpy(ps.acl_arg, saved, sizeof saved);
    ps.acl_narg = saved_n;
    return rc;
}

/* condition = <string>: Exim's truth values; anything else defers. */
static acl_rc truth(acl_ctx *c, const char *v)
{
    if (!*v || strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0)
        return RC_FAIL;
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0)
        return RC_OK;
    char *end;
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    long long n = strtoll(p, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (end != p && !*end)
        return n ? RC_OK : RC_FAIL;
    return acl_fail_text(c, RC_DEFER, "invalid \"condition\" value \"%s\"", v);
}

static void dnslist_note(void *ctx, const char *msg)
{
    (void)ctx;
    /* deferred lookups are logged under +dnslist_defer (on by default) */
    if (strncmp(msg, "DNS list lookup defer", 21) == 0 && cfg && !logsel_on(&cfg->logsel, LS_DNSLIST_DEFER))
        return;
    log_write(LOG_MAIN, "%s", msg);
}

static acl_rc dnslists(acl_ctx *c, const char *list)
{
    dnslist_ctx dc = { .host_ip = ps.sender_host_address, .log = dnslist_note };
    if (ps.acl_dns) {
        dc.dns = *(const dns_iface *)ps.acl_dns;
    } else {
        char *err = NULL;
        dns_resolver *r = dns_process_resolver(&err, c->a);
        if (!r)
            return acl_fail_text(c, RC_DEFER, "DNS resolver unavailable for dnslists: %s", err ? err : "?");
        dc.dns = dns_iface_unbound(r);
    }
    dnslist_result res = { 0 };
    status st = dnslist_check(&dc, list, c->a, &res);
    if (st == ST_OK) {
        arena *va = ps.conn ? ps.conn : c->a;
        ps.dnslist_domain = res.domain ? arena_strdup(va, res.domain) : NULL;
        ps.dnslist_matched = res.matched ? arena_strdup(va, res.matched) : NULL;
        ps.dnslist_text = res.text ? arena_strdup(va, res.text) : NULL;
        ps.dnslist_value = res.value ? arena_strdup(va, res.value) : NULL;
        return RC_OK;
    }
    if (st == ST_DEFER)
        return acl_fail_text(c, RC_DEFER, "DNS list lookup deferred for \"%s\"", list);
    return st == ST_FAIL ? RC_FAIL : acl_fail_text(c, RC_ERROR, "error in dnslists \"%s\"", list);
}

static const char *keep(arena *a, const char *v)
{
    return v ? arena_strdup(a, v) : NULL;
}

acl_rc acl_condition(acl_ctx *c, const acl_cond *cd, const char *arg)
{
    const char *n = cd->name;
    acl_rc rc = forbidden(c, n);
    if (rc != RC_OK)
        return rc;
    const char *val = NULL;
    char *err = NULL;
    arena *va = ps.msg ? ps.msg : c->a;

    if (strcmp(n, "acl") == 0)
        return nested(c, arg);
    if (acl_is_list_condition(n)) {
        char *list;
        bool notin;
        rc = list_expand(c, arg, &list, &notin);
        if (rc != RC_OK)
            return rc;
        if (notin)
            return RC_FAIL;
        arg = list;
    }
    if (strcmp(n, "condition") == 0)
        return truth(c, arg);
    if (strcmp(n, "hosts") == 0) {
        status st = match_ip(ps.sender_host_address ? ps.sender_host_address : "", arg, c->a, &val, &err);
        if (st == ST_OK)
            ps.host_data = keep(ps.conn ? ps.conn : c->a, val);
        return list_rc(c, st, err, "host");
    }
    if (strcmp(n, "domains") == 0) {
        status st = match_domain(ps.domain ? ps.domain : "", arg, c->a, &val, &err);
        if (st == ST_OK)
            ps.domain_data = keep(va, val);
        return list_rc(c, st, err, "domain");
    }
    if (strcmp(n, "local_parts") == 0) {
        status st = match_local_part(ps.local_part ? ps.local_part : "", arg, true, c->a, &val, &err);
        if (st == ST_OK)
            ps.local_part_data = keep(va, val);
        return list_rc(c, st, err, "local part");
    }
    if (strcmp(n, "recipients") == 0) {
        const char *addr = arena_printf(c->a, "%s@%s", ps.local_part ? ps.local_part : "",
                                        ps.domain ? ps.domain : "");
        if (!ps.domain || !*ps.domain)
            addr = ps.local_part ? ps.local_part : "";
        status st = match_address(addr, arg, true, c->a, &val, &err);
        if (st == ST_OK)
            ps.recipient_data = keep(va, val);
        return list_rc(c, st, err, "recipient");
    }
    if (strcmp(n, "senders") == 0) {
        status st = match_address(ps.sender_address ? ps.sender_address : "", arg, true, c->a, &val, &err);
        if (st == ST_OK)
            ps.sender_data = keep(va, val);
        return list_rc(c, st, err, "sender");
    }
    if (strcmp(n, "sender_domains") == 0) {
        const char *s = ps.sender_address ? ps.sender_address : "";
        const char *at = strrchr(s, '@');
        status st = match_domain(at ? at + 1 : "", arg, c->a, &val, &err);
        return list_rc(c, st, err, "sender domain");
    }
    if (strcmp(n, "authenticated") == 0) {
        if (!ps.sender_host_authenticated || !*ps.sender_host_authenticated)
            return RC_FAIL;
        status st = match_local_part(ps.sender_host_authenticated, arg, true, c->a, NULL, &err);
        return list_rc(c, st, err, "authenticator");
    }
    if (strcmp(n, "encrypted") == 0) {
        /* the incoming TLS session's cipher ($tls_in_cipher) in the list */
        if (!ps.tls_in.cipher)
            return RC_FAIL;
        status st = match_local_part(ps.tls_in.cipher, arg, true, c->a, NULL, &err);
        return list_rc(c, st, err, "cipher");
    }
    if (strcmp(n, "verify") == 0) {
        return acl_verify(c, arg);
    }
    if (strcmp(n, "ratelimit") == 0)
        return acl_ratelimit(c, arg);
    if (strcmp(n, "dnslists") == 0)
        return dnslists(c, arg);
    if (strcmp(n, "seen") == 0)
        return acl_seen(c, arg);
    if (acl_condition_ext) {
        const char *um = NULL, *lm = NULL;
        status st = acl_condition_ext(n, c->where, arg, c->a, &um, &lm);
        if (st != ST_NOTFOUND) {
            if (um)
                *c->umsg = um;
            if (lm)
                *c->lmsg = lm;
            switch (st) {
            case ST_OK: return RC_OK;
            case ST_FAIL: return RC_FAIL;
            case ST_DEFER: return lm ? RC_DEFER : acl_fail_text(c, RC_DEFER, "%s condition deferred", n);
            default: return lm ? acl_fail_text(c, RC_ERROR, "%s", lm) : acl_fail_text(c, RC_ERROR, "%s condition failed", n);
            }
        }
    }
    return acl_fail_text(c, RC_DEFER, "the \"%s\" ACL condition is not yet implemented by postern", n);
}
