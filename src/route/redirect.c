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
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#define REDIRECT_MAX_FILE (1024 * 1024)
#define REDIRECT_MAX_INCLUDE 8
#define REDIRECT_MAX_INCLUDE_NAME 255

/* The rest of an open file (closed here); NULL when it is over max bytes
 * or cannot be read (errno set) */
static char *read_all(FILE *f, size_t max, arena *a)
{
    gstr g;
    gstr_init(&g, a, 1024);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (g.len + n > max) {
            fclose(f);
            errno = EFBIG;
            return NULL;
        }
        gstr_catn(&g, buf, n);
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    errno = bad;
    return bad ? NULL : g.s;
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
    const char *source;       /* "data" or "file", for error messages */
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

/* An error in the list: the router defers with Exim's words */
static status bad_data(rctx *x, const char *text)
{
    x->a->message = arena_printf(x->ctx->a, "error in redirect %s: %s", x->source ? x->source : "data", text);
    x->a->basic_errno = ERRNO_BADREDIRECT;
    return ST_DEFER;
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

/* :include:path, with Exim's checks in Exim's order */
static status include(rctx *x, const char *path)
{
    arena *ar = x->ctx->a;
    while (isspace((unsigned char)*path))
        path++;
    if (!*path)
        return bad_data(x, "file name missing after :include:");
    if (strlen(path) > REDIRECT_MAX_INCLUDE_NAME)
        return bad_data(x, arena_printf(ar, "included file name \"%s\" is too long", path));
    if (path[0] != '/')
        return bad_data(x, arena_printf(ar, "included file \"%s\" is not an absolute path", path));
    if (opt_bool(x, "forbid_include"))
        return bad_data(x, "included files not permitted");
    /* Exim's message ends in a newline, which its log shows as "\n" */
    if (is_tainted(path))
        return bad_data(x, arena_printf(ar, "Tainted name '%s' for included file  not permitted\\n", path));
    if (++x->includes > REDIRECT_MAX_INCLUDE)
        return bad_data(x, "too many nested :include: items");
    FILE *f = fopen(path, "r");
    if (!f)
        return bad_data(x, arena_printf(ar, "failed to open included file %s: %s", path, strerror(errno)));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && sb.st_size > REDIRECT_MAX_FILE) {
        fclose(f);
        return bad_data(x, arena_printf(ar, "included file %s is too big (max %d)", path, REDIRECT_MAX_FILE));
    }
    char *text = read_all(f, REDIRECT_MAX_FILE, ar);
    if (!text)
        return bad_data(x, arena_printf(ar, "error while reading included file %s: %s", path, strerror(errno)));
    status st = parse_list(x, text);
    x->includes--;
    return st;
}

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
            if (opt_bool(x, "forbid_blackhole"))
                return bad_data(x, "\":blackhole:\" is not permitted");
            x->blackhole = true;
            return ST_OK;
        }
        if (strncasecmp(item, ":unknown:", 9) == 0)
            return ST_DECLINED;
        if (strncasecmp(item, ":fail:", 6) == 0 || strncasecmp(item, ":defer:", 7) == 0) {
            bool fail = item[1] == 'f' || item[1] == 'F';
            const char *allow = fail ? "allow_fail" : "allow_defer";
            if (!opt_bool(x, allow))
                return bad_data(x, arena_printf(x->ctx->a, "\"%s\" is not permitted", item));
            const char *t = item + (fail ? 6 : 7);
            while (isspace((unsigned char)*t))
                t++;
            x->special = fail ? ST_FAIL : ST_DEFER;
            x->special_text = *t ? t : NULL;
            return ST_OK;
        }
        if (strncasecmp(item, ":include:", 9) == 0)
            return include(x, item + 9);
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

/* Is id one of a list of users (groups), by name or number? */
static bool id_in_list(const char *list, bool group, unsigned id, arena *ar)
{
    char *it;
    for (int sep = 0; list && (it = list_next(&list, &sep, ar));) {
        char *end;
        unsigned long n = strtoul(it, &end, 10);
        if (*it && !*end) {
            if (n == id)
                return true;
            continue;
        }
        struct passwd *pw = group ? NULL : getpwnam(it);
        struct group *gr = group ? getgrnam(it) : NULL;
        if ((pw && pw->pw_uid == id) || (gr && gr->gr_gid == id))
            return true;
    }
    return false;
}

/* The checks Exim makes on a redirection file (a .forward) once it is
 * open: a regular file, none of the modemask bits (default 022), and with
 * check_owner (default: with check_local_user or owners) the user or one
 * of "owners" owning it, with check_group (default: with check_local_user
 * when modemask lets the group write, or with owngroups) the user's group
 * or one of "owngroups". */
static const char *file_checks(const driver_inst *r, const address_item *a, const char *path, const struct stat *sb,
                               arena *ar)
{
    if (!S_ISREG(sb->st_mode))
        return arena_printf(ar, "%s is not a regular file", path);
    const optval *mm = driver_opt(r, "modemask");
    long mask = mm && mm->set ? (long)mm->n : 022;
    if ((long)sb->st_mode & mask)
        return arena_printf(ar, "bad mode (0%lo) for %s: 0%lo bit(s) unexpected", (long)sb->st_mode, path,
                            (long)sb->st_mode & mask);
    const optval *co = driver_opt(r, "check_owner"), *cg = driver_opt(r, "check_group");
    bool pw = route_opt_bool(r, "check_local_user") && a->uid_set;    /* the user's passwd entry */
    const char *owners = route_opt_str(r, "owners"), *groups = route_opt_str(r, "owngroups");
    bool check_owner = co && co->set ? co->n != 0 : pw || (owners && *owners);
    bool check_group = cg && cg->set ? cg->n != 0 : (pw && !(mask & 020)) || (groups && *groups);
    bool uid_ok = !check_owner || (pw && sb->st_uid == a->uid) || id_in_list(owners, false, sb->st_uid, ar);
    bool gid_ok = !check_group || (pw && sb->st_gid == a->gid) || id_in_list(groups, true, sb->st_gid, ar);
    if (!uid_ok || !gid_ok)
        return arena_printf(ar, "bad %s for %s", uid_ok ? "group" : "owner", path);
    if (sb->st_size > REDIRECT_MAX_FILE)
        return arena_printf(ar, "%s is too big (max %d)", path, REDIRECT_MAX_FILE);
    return NULL;
}

/* Does a missing file's directory exist (Exim's test before it declines)?
 * NULL when it does, else the reason. */
static const char *missing_dir(const char *path, arena *ar)
{
    char *dir = arena_strdup(ar, path);
    char *slash = strrchr(dir, '/');
    struct stat sb;
    if (!slash)
        return NULL;
    strcpy(slash + 1, ".");
    int rc = stat(dir, &sb);
    if (rc != 0 && errno == EACCES) {
        *slash = '\0';
        rc = stat(dir, &sb);
    }
    return rc == 0 ? NULL : arena_printf(ar, "failed to stat %s (%s)", dir, strerror(errno));
}

/* The redirection file (Exim's rda): ST_OK with *text, ST_DECLINED when it
 * does not exist, ST_DEFER with a->message. */
static status read_redirect_file(const driver_inst *r, address_item *a, const char *path, arena *ar, char **text)
{
    struct stat sb;
    const char *why;
    if (path[0] != '/') {
        a->message = arena_printf(ar, "\"%s\" is not an absolute path", path);
        return ST_DEFER;
    }
    /* with a user to read it as, a missing file is found out first */
    if (a->uid_set && stat(path, &sb) != 0 && errno == ENOENT && !missing_dir(path, ar))
        return ST_DECLINED;
    /* Exim's message ends in a newline, which its log shows as "\n" */
    if (is_tainted(path)) {
        a->message = arena_printf(ar, "Tainted name '%s' for file read not permitted\\n", path);
        return ST_DEFER;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        if (e == ENOENT && !(why = missing_dir(path, ar)))
            return ST_DECLINED;    /* no .forward: next router */
        a->message = e == ENOENT ? why : arena_printf(ar, "failed to open %s: %s", path, strerror(e));
        return ST_DEFER;
    }
    if (fstat(fileno(f), &sb) != 0)
        why = arena_printf(ar, "failed to stat %s: %s", path, strerror(errno));
    else
        why = file_checks(r, a, path, &sb, ar);
    if (why) {
        fclose(f);
        a->message = why;
        return ST_DEFER;
    }
    if (!(*text = read_all(f, REDIRECT_MAX_FILE, ar))) {
        a->message = arena_printf(ar, "error while reading %s: %s", path, strerror(errno));
        return ST_DEFER;
    }
    return ST_OK;
}

/* A pipe, file or reply the router set up is not routed again: it gets
 * the router's pipe_transport, file_transport (directory_transport for a
 * path ending in '/') or reply_transport now.  When that cannot be had the
 * new address carries the error (ERRNO_BADTRANSPORT) and is deferred when
 * delivered, as Exim does; the rest of the list goes on. */
void redirect_pfr_transport(const driver_inst *r, address_item *c, route_ctx *ctx)
{
    const char *option = "reply_transport";
    if (c->flags & AF_PIPE)
        option = "pipe_transport";
    else if (c->flags & AF_FILE)
        option = c->address[strlen(c->address) - 1] == '/' ? "directory_transport" : "file_transport";
    const driver_inst *t;
    const char *forbidden = c->message;
    c->router = r;
    if (route_get_transport(r, option, true, c, ctx, &t) == ST_OK)
        c->transport = t;
    else if (c->flags & AF_FORBIDDEN)
        c->message = forbidden;       /* forbidden anyway: that is what it says */
}

status router_redirect(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen)
{
    *gen = NULL;
    char *err = NULL;
    char *text = NULL;
    const char *data = route_opt_str(r, "data");
    const char *file = route_opt_str(r, "file");
    const char *src = data ? data : file;
    if (!src) {
        a->message = arena_printf(ctx->a, "router %s: neither data nor file is set", r->name);
        return ST_DEFER;
    }
    status st = expand_string(src, ctx->a, &text, &err);
    if (st == ST_FAIL_FORCED)
        return ST_DECLINED;
    if (st != ST_OK) {
        a->message = arena_printf(ctx->a, "failed to expand \"%s\": %s", src, err ? err : "");
        return ST_DEFER;
    }
    if (!data && (st = read_redirect_file(r, a, text, ctx->a, &text)) != ST_OK)
        return st;
    const char *t = text;
    while (isspace((unsigned char)*t))
        t++;
    if (!*t)
        return ST_DECLINED;
    int kind = filter_kind(text);
    if (kind != FILTER_FORWARD)
        return redirect_filter(r, a, ctx, text, kind, data != NULL, gen);

    rctx x = { .r = r, .a = a, .ctx = ctx, .sa = is_tainted(text) ? ps.msg_t : ctx->a,
               .source = data ? "data" : "file" };
    x.tail = &x.head;
    st = parse_list(&x, text);
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
    for (address_item *c = x.head; c; c = c->next)
        if (c->flags & (AF_PIPE | AF_FILE))
            redirect_pfr_transport(r, c, ctx);
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
