/* redirect.c: the redirect router: "data" (aliases) or "file" (.forward)
 * gives a list of new addresses, "|commands", "/files", :include:,
 * :fail:, :defer:, :blackhole: and :unknown: items.  Data that is an Exim
 * filter goes to redirect_filter.c. */
#include "route/route.h"
#include "route/filter.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#define REDIRECT_MAX_FILE (1024 * 1024)
#define REDIRECT_MAX_INCLUDE 8

static char *read_file(const char *path, arena *a, char **err, bool *missing)
{
    *missing = false;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            *missing = true;
        *err = arena_printf(a, "failed to open %s: %s", path, strerror(errno));
        return NULL;
    }
    gstr g;
    gstr_init(&g, a, 1024);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (g.len + n > REDIRECT_MAX_FILE) {
            fclose(f);
            *err = arena_printf(a, "%s is too large", path);
            return NULL;
        }
        gstr_catn(&g, buf, n);
    }
    fclose(f);
    return g.s;
}

typedef struct rctx {
    const driver_inst *r;
    address_item *a;
    route_ctx *ctx;
    address_item *head, **tail;
    arena *sa;                /* for the new addresses: tainted when the data was */
    bool blackhole;
    status special;           /* ST_FAIL / ST_DEFER from :fail: / :defer: */
    const char *special_text;
    int includes;
} rctx;

/* Router options; with no router (-bf on a forward file) all are off. */
static bool opt_bool(const rctx *x, const char *name)
{
    return x->r && route_opt_bool(x->r, name);
}

static const char *opt_str(const rctx *x, const char *name)
{
    return x->r ? route_opt_str(x->r, name) : NULL;
}

static void add_child(rctx *x, const char *item, unsigned flags)
{
    address_item *c = arena_calloc(x->ctx->a, sizeof *c);
    c->parent = x->a;
    c->rcpt_index = x->a->rcpt_index;
    c->flags = flags;
    c->dsn_flags = x->a->dsn_flags;
    c->dsn_orcpt = x->a->dsn_orcpt;
    c->errors_to = x->a->errors_to;
    c->r_vars = x->a->r_vars;              /* router variables go to the children */
    c->headers_add = x->a->headers_add;    /* and the header changes asked for so far */
    c->headers_remove = x->a->headers_remove;
    c->address_data = x->a->address_data;
    if (flags & (AF_PIPE | AF_FILE)) {
        c->address = item;
        c->local_part = item;
        c->domain = x->a->domain;
        c->uid = x->a->uid;
        c->gid = x->a->gid;
        c->uid_set = x->a->uid_set;
        c->gid_set = x->a->gid_set;
        c->home_dir = x->a->home_dir;
    } else {
        const char *at = strrchr(item, '@');
        if (at) {
            c->local_part = arena_strndup(x->sa, item, (size_t)(at - item));
            c->domain = arena_strdup(x->sa, at + 1);
            c->address = item;
        } else {
            const char *qd = opt_str(x, "qualify_domain");
            char *dom = NULL, *err;
            if (qd && expand_string(qd, x->ctx->a, &dom, &err) == ST_OK && *dom)
                ;
            else
                dom = (char *)(opt_bool(x, "qualify_preserve_domain") ? x->a->domain
                                                                      : cfg_str(MO_qualify_recipient));
            c->local_part = item;
            c->domain = dom;
            c->address = arena_printf(x->sa, "%s@%s", item, dom);
        }
        /* check_ancestor: an address that one of its ancestors already was
         * gives way to a copy of the address being redirected (which this
         * router then leaves alone) */
        if (opt_bool(x, "check_ancestor"))
            for (const address_item *p = x->a->parent; p; p = p->parent)
                if (!strcasecmp(p->address, c->address)) {
                    c->address = x->a->address;
                    c->local_part = x->a->local_part;
                    c->domain = x->a->domain;
                    break;
                }
    }
    *x->tail = c;
    x->tail = &c->next;
}

static status parse_list(rctx *x, const char *text);

static status do_item(rctx *x, char *item)
{
    size_t n = strlen(item);
    while (n && isspace((unsigned char)item[n - 1]))
        item[--n] = '\0';
    if (!n)
        return ST_OK;
    if (item[0] == '"' && n > 1 && item[n - 1] == '"') {
        /* quotes round the whole item go (a quoted local part "a b"@x
         * stays as it is); inside them a pipe or file keeps what its
         * backslashes escape */
        item[--n] = '\0';
        item++;
        while (isspace((unsigned char)*item))
            item++;
        n = strlen(item);
        while (n && isspace((unsigned char)item[n - 1]))
            item[--n] = '\0';
        if (item[0] == '|' || item[0] == '/') {
            char *w = item;
            for (const char *r = item; *r; r++)
                *w++ = *r == '\\' && r[1] ? *++r : *r;
            *w = '\0';
        }
        if (!*item)
            return ST_OK;
    }
    if (item[0] == ':') {
        if (strncasecmp(item, ":blackhole:", 11) == 0) {
            if (opt_bool(x, "forbid_blackhole")) {
                x->a->message = "error in redirect data: \":blackhole:\" is not permitted";
                x->a->basic_errno = ERRNO_BADREDIRECT;
                return ST_DEFER;
            }
            x->blackhole = true;
            return ST_OK;
        }
        if (strncasecmp(item, ":unknown:", 9) == 0)
            return ST_DECLINED;
        if (strncasecmp(item, ":fail:", 6) == 0 || strncasecmp(item, ":defer:", 7) == 0) {
            bool fail = item[1] == 'f' || item[1] == 'F';
            const char *allow = fail ? "allow_fail" : "allow_defer";
            if (!opt_bool(x, allow)) {
                x->a->message = arena_printf(x->ctx->a, "error in redirect data: \"%s\" is not permitted", item);
                x->a->basic_errno = ERRNO_BADREDIRECT;
                return ST_DEFER;
            }
            const char *t = item + (fail ? 6 : 7);
            while (isspace((unsigned char)*t))
                t++;
            x->special = fail ? ST_FAIL : ST_DEFER;
            x->special_text = *t ? t : NULL;
            return ST_OK;
        }
        if (strncasecmp(item, ":include:", 9) == 0) {
            if (opt_bool(x, "forbid_include")) {
                x->a->message = arena_printf(x->ctx->a, ":include: forbidden in router %s", x->r->name);
                return ST_DEFER;
            }
            if (++x->includes > REDIRECT_MAX_INCLUDE) {
                x->a->message = "too many nested :include: items";
                return ST_DEFER;
            }
            const char *path = item + 9;
            while (isspace((unsigned char)*path))
                path++;
            char *err;
            bool missing;
            char *t = read_file(path, x->ctx->a, &err, &missing);
            if (!t) {
                x->a->message = arena_printf(x->ctx->a, "error in redirect data: failed to open included file %s: %s",
                                             path, strerror(errno));
                x->a->basic_errno = ERRNO_BADREDIRECT;
                return ST_DEFER;
            }
            return parse_list(x, t);
        }
        x->a->message = arena_printf(x->ctx->a, "unknown special item \"%s\" in router %s", item,
                                     x->r ? x->r->name : "-bf");
        return ST_DEFER;
    }
    if (item[0] == '|' || item[0] == '/') {
        /* forbid_pipe / forbid_file: the item itself fails when it is
         * delivered (Exim), the rest of the list goes on */
        bool pipe = item[0] == '|';
        add_child(x, arena_strdup(x->sa, item), pipe ? AF_PIPE : AF_FILE);
        if (opt_bool(x, pipe ? "forbid_pipe" : "forbid_file")) {
            address_item *c = x->head;
            while (c->next)
                c = c->next;
            c->flags |= AF_FORBIDDEN;
            c->message = pipe ? "delivery to pipe forbidden" : "delivery to file forbidden";
        }
        return ST_OK;
    }
    /* "\user": not redirected again by this router (which the ancestor
     * check already ensures): the backslash goes */
    if (item[0] == '\\' && item[1])
        item++;
    /* "Name <addr>" forms */
    char *lt = strchr(item, '<');
    if (lt) {
        char *gt = strchr(lt, '>');
        if (gt) {
            *gt = '\0';
            item = lt + 1;
        }
    }
    if (!*item)
        return ST_OK;
    add_child(x, arena_strdup(x->sa, item), 0);
    return ST_OK;
}

/* Items are separated by commas or newlines; '#' starts a comment line;
 * quoted strings may contain commas. */
static status parse_list(rctx *x, const char *text)
{
    gstr item;
    gstr_init(&item, x->sa, 64);
    const char *p = text;
    bool inq = false;
    bool line_start = true;
    for (;; p++) {
        char c = *p;
        if (line_start && !inq) {
            const char *q = p;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '#') {
                while (*p && *p != '\n')
                    p++;
                if (!*p)
                    break;
                continue;
            }
            line_start = false;
            c = *p;
        }
        if (c == '"' && (item.len == 0 || item.s[item.len - 1] != '\\'))
            inq = !inq;
        if (!c || (!inq && (c == ',' || c == '\n'))) {
            char *s = arena_strdup(x->sa, item.s);
            while (isspace((unsigned char)*s))
                s++;
            status st = do_item(x, s);
            if (st != ST_OK)
                return st;
            gstr_reset(&item);
            if (!c)
                break;
            if (c == '\n')
                line_start = true;
            continue;
        }
        gstr_catc(&item, c);
    }
    return ST_OK;
}

/* The owner, group and mode checks Exim makes on a redirection file (a
 * .forward): check_owner (on by default with check_local_user) wants the
 * user, root or one of "owners"; check_group the user's group or one of
 * "owngroups"; modemask (default 022) the bits that must not be set. */
static const char *file_checks(const driver_inst *r, const address_item *a, const char *path, arena *ar)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return NULL;
    const optval *co = driver_opt(r, "check_owner"), *cg = driver_opt(r, "check_group");
    bool clu = route_opt_bool(r, "check_local_user");
    bool check_owner = co && co->set ? co->n != 0 : clu;
    bool check_group = cg && cg->set ? cg->n != 0 : false;
    const char *owners = route_opt_str(r, "owners"), *groups = route_opt_str(r, "owngroups");
    if (check_owner || owners) {
        bool ok = sb.st_uid == 0 || (a->uid_set && sb.st_uid == a->uid);
        for (const char *l = owners, *it; !ok && l && (it = list_next(&l, &(int){ 0 }, ar));) {
            struct passwd *pw = getpwnam(it);
            ok = pw && pw->pw_uid == sb.st_uid;
        }
        if (!ok)
            return arena_printf(ar, "bad owner for %s", path);
    }
    if (check_group || groups) {
        bool ok = a->gid_set && sb.st_gid == a->gid;
        for (const char *l = groups, *it; !ok && l && (it = list_next(&l, &(int){ 0 }, ar));) {
            struct group *gr = getgrnam(it);
            ok = gr && gr->gr_gid == sb.st_gid;
        }
        if (!ok)
            return arena_printf(ar, "bad group for %s", path);
    }
    const optval *mm = driver_opt(r, "modemask");
    long mask = mm && mm->set ? (long)mm->n : 022;
    if ((long)sb.st_mode & mask)
        return arena_printf(ar, "bad mode (0%lo) for %s: 0%lo bit(s) unexpected", (long)sb.st_mode, path,
                            (long)sb.st_mode & mask);
    return NULL;
}

status router_redirect(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen)
{
    *gen = NULL;
    char *err = NULL;
    char *text = NULL;
    const char *data = route_opt_str(r, "data");
    const char *file = route_opt_str(r, "file");
    if (data) {
        status st = expand_string(data, ctx->a, &text, &err);
        if (st == ST_FAIL_FORCED)
            return ST_DECLINED;
        if (st != ST_OK) {
            a->message = arena_printf(ctx->a, "error in redirect data for router %s: %s", r->name, err ? err : "");
            return st == ST_DEFER ? ST_DEFER : ST_DEFER;
        }
    } else if (file) {
        char *path;
        status st = expand_string(file, ctx->a, &path, &err);
        if (st == ST_FAIL_FORCED)
            return ST_DECLINED;
        if (st != ST_OK) {
            a->message = arena_printf(ctx->a, "error expanding file for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (is_tainted(path)) {
            a->message = arena_printf(ctx->a, "Tainted name '%s' for file read not permitted", path);
            a->basic_errno = ERRNO_TAINT;
            return ST_DEFER;
        }
        bool missing;
        text = read_file(path, ctx->a, &err, &missing);
        if (!text) {
            if (missing)
                return ST_DECLINED;    /* no .forward: next router */
            a->message = err;
            return ST_DEFER;
        }
        const char *bad = file_checks(r, a, path, ctx->a);
        if (bad) {
            a->message = bad;
            a->basic_errno = ERRNO_UNKNOWNERROR;
            return ST_DEFER;
        }
    } else {
        a->message = arena_printf(ctx->a, "router %s: neither data nor file is set", r->name);
        return ST_DEFER;
    }
    const char *t = text;
    while (isspace((unsigned char)*t))
        t++;
    if (!*t)
        return ST_DECLINED;
    int kind = filter_kind(text);
    if (kind != FILTER_FORWARD)
        return redirect_filter(r, a, ctx, text, kind, data != NULL, gen);

    rctx x = { .r = r, .a = a, .ctx = ctx, .sa = is_tainted(text) ? ps.msg_t : ctx->a };
    x.tail = &x.head;
    status st = parse_list(&x, text);
    if (st == ST_DECLINED)
        return ST_DECLINED;
    if (st != ST_OK)
        return st;
    if (x.special) {
        a->message = x.special_text ? arena_strdup(ctx->a, x.special_text)
                                    : x.special == ST_FAIL ? "forced failure" : "forced defer";
        if (x.special_text) {
            /* the administrator's text may go to the sender */
            a->user_message = a->message;
            a->pass_message = true;
        }
        return x.special;
    }
    /* pipes and files need the router's transports */
    for (address_item *c = x.head; c; c = c->next) {
        if (!(c->flags & (AF_PIPE | AF_FILE)))
            continue;
        const char *tn = route_opt_str(r, c->flags & AF_PIPE ? "pipe_transport" : "file_transport");
        if (c->flags & AF_FILE && c->address[strlen(c->address) - 1] == '/') {
            const char *dt = route_opt_str(r, "directory_transport");
            if (dt)
                tn = dt;
        }
        if (!tn) {
            a->message = arena_printf(ctx->a, "%s_transport is unset in router %s for %s",
                                      c->flags & AF_PIPE ? "pipe" : "file", r->name, c->address);
            return ST_DEFER;
        }
        char *name;
        if (expand_string(tn, ctx->a, &name, &err) != ST_OK || !config_driver(DC_TRANSPORT, name)) {
            a->message = arena_printf(ctx->a, "transport for %s in router %s not found", c->address, r->name);
            return ST_DEFER;
        }
        c->transport = config_driver(DC_TRANSPORT, name);
        c->router = r;
    }
    if (!x.head)
        return x.blackhole ? ST_DISCARD : ST_DECLINED;
    /* redirect_router: where the generated addresses start routing */
    const char *rr = route_opt_str(r, "redirect_router");
    if (rr) {
        const driver_inst *start = config_driver(DC_ROUTER, rr);
        if (!start) {
            a->message = arena_printf(ctx->a, "redirect_router %s of router %s does not exist", rr, r->name);
            return ST_DEFER;
        }
        for (address_item *c = x.head; c; c = c->next)
            if (!(c->flags & (AF_PIPE | AF_FILE)))
                c->start_router = start;
    }
    *gen = x.head;
    return ST_REROUTED;
}

bool redirect_test_list(const char *text, FILE *out)
{
    address_item top = { .address = "", .local_part = ps.local_part, .domain = ps.domain, .rcpt_index = -1 };
    route_ctx ctx = { .a = ps.msg, .address_test = true };
    rctx x = { .a = &top, .ctx = &ctx, .sa = is_tainted(text) ? ps.msg_t : ps.msg };
    x.tail = &x.head;
    status st = parse_list(&x, text);
    if (st != ST_OK && st != ST_DECLINED) {
        const char *m = top.message ? top.message : "";
        if (strncmp(m, "error in redirect data: ", 24) == 0)
            m += 24;
        fprintf(out, "exim: error in forward file: %s\n", m);
        return false;
    }
    if (x.blackhole)
        fprintf(out, "exim: forwardfile contains \":blackhole:\"\n");
    if (!x.head) {
        fprintf(out, "exim: no addresses generated from forward file\n");
        return true;
    }
    /* Exim lists them last first */
    fprintf(out, "exim: forward file generated:\n");
    int n = 0;
    for (address_item *c = x.head; c; c = c->next)
        n++;
    const address_item **v = arena_alloc(ps.msg, sizeof *v * (size_t)n);
    n = 0;
    for (address_item *c = x.head; c; c = c->next)
        v[n++] = c;
    while (n--)
        fprintf(out, "  %s\n", v[n]->address);
    return true;
}
