/* redirect_filter.c: the redirect router's side of Exim filters.  The
 * filter runs as the local user (in a child process when routing runs as
 * root, as Exim does, so that logwrite, ${readfile} and friends act with
 * the user's rights), then what it set up becomes generated addresses:
 * deliver -> a new address, save -> a file, pipe -> a command, mail and
 * vacation -> ">rcpt" addresses for the router's reply_transport.  Without
 * a significant delivery the original address goes on to the next routers
 * (a copy of it is generated when the filter set up other deliveries). */
#include "route/filter.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILTER_RESULT_MAX (16L * 1024 * 1024)   /* bytes a filter child may send back */

static status filter_error(const driver_inst *r, address_item *a, route_ctx *ctx, bool data, const char *msg)
{
    (void)r;
    a->basic_errno = ERRNO_BADREDIRECT;
    a->message = arena_printf(ctx->a, "error in filter %s: %s", data ? "data" : "file", msg);
    return ST_DEFER;
}

/* ---- what the delivery process knows about the message --------------------- */

/* The -H file's flags (first_delivery, manually_thawed) and the body
 * variables from the -D file, for a filter run during a delivery. */
static void message_facts(filter_opts *o)
{
    o->first_delivery = true;
    if (!ps.message_id || !*ps.message_id || !spool_id_valid(ps.message_id))
        return;
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    spool_msg *m = NULL;
    char *err = NULL;
    if (spool_read_header(&ss, ps.message_id, ps.scratch, &m, &err) != ST_OK) {
        ss.split = !ss.split;
        if (spool_read_header(&ss, ps.message_id, ps.scratch, &m, &err) != ST_OK)
            m = NULL;
    }
    if (m) {
        o->first_delivery = m->deliver_firsttime;
        o->manually_thawed = m->manual_thaw;
    }
    if (ps.message_body)
        return;
    char path[4096];
    spool_path(&ss, ps.message_id, 'D', path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat sb;
    long vis = (long)cfg_int(MO_message_body_visible);
    off_t start = SPOOL_ID_LEN + 3;          /* "<id>-D\n" */
    if (fstat(fd, &sb) == 0 && sb.st_size >= start && vis >= 0) {
        size_t len = (size_t)(sb.st_size - start);
        size_t n = len < (size_t)vis ? len : (size_t)vis;
        /* the first and last n bytes (they overlap in a short body) */
        char *buf = arena_alloc(ps.scratch, 2 * n + 1);
        if (pread(fd, buf, n, start) == (ssize_t)n && pread(fd, buf + n, n, sb.st_size - (off_t)n) == (ssize_t)n) {
            filter_set_body_vars(buf, n);
            const char *head = ps.message_body;
            filter_set_body_vars(buf + n, n);
            ps.message_body = head;
            ps.message_body_size = (long)len;
            ps.body_zerocount = m ? m->body_zerocount : 0;
        }
    }
    close(fd);
}

/* ---- running the filter as the user ------------------------------------------ */

/* The result crosses from the child as netstrings: "<len>:<T|U><text>,"
 * (T: tainted) or "1:N," for NULL. */
static void put(gstr *g, const char *s)
{
    if (!s) {
        gstr_cat(g, "1:N,");
        return;
    }
    gstr_printf(g, "%zu:%c", strlen(s) + 1, is_tainted(s) ? 'T' : 'U');
    gstr_cat(g, s);
    gstr_catc(g, ',');
}

static void put_num(gstr *g, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    put(g, b);
}

static const char *encode(const filter_result *res, arena *a)
{
    gstr g;
    gstr_init(&g, a, 1024);
    put_num(&g, res->outcome);
    put(&g, res->error);
    for (const filter_action *x = res->actions; x; x = x->next) {
        put_num(&g, x->kind);
        put(&g, x->target);
        put(&g, x->errors_to);
        put_num(&g, x->mode);
        put_num(&g, x->noerror);
        const reply_item *r = x->reply;
        put_num(&g, r != NULL);
        if (!r)
            continue;
        const char *s[] = { r->from, r->reply_to, r->to, r->cc, r->bcc, r->subject, r->headers, r->text,
                            r->file, r->logfile, r->oncelog };
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
            put(&g, s[i]);
        put_num(&g, r->once_repeat);
        put_num(&g, r->file_expand);
        put_num(&g, r->return_message);
        put_num(&g, r->expand_forbid);
    }
    return g.s;
}

typedef struct reader {
    const char *p, *end;
    arena *a;
    bool bad;
} reader;

static const char *get(reader *r)
{
    if (r->bad)
        return NULL;
    char *e;
    unsigned long n = strtoul(r->p, &e, 10);
    if (e == r->p || e >= r->end || *e != ':' || n == 0 || n > (unsigned long)(r->end - e - 2) || e[n + 1] != ',') {
        r->bad = true;
        return NULL;
    }
    const char *s = e + 1;
    r->p = s + n + 1;
    if (*s == 'N')
        return NULL;
    return arena_strndup(*s == 'T' ? ps.msg_t : r->a, s + 1, n - 1);
}

static long long get_num(reader *r)
{
    const char *s = get(r);
    return s ? atoll(s) : 0;
}

static bool decode(const char *buf, size_t len, arena *a, filter_result *res)
{
    reader r = { .p = buf, .end = buf + len, .a = a };
    memset(res, 0, sizeof *res);
    res->outcome = (filter_outcome)get_num(&r);
    res->error = get(&r);
    filter_action **tail = &res->actions;
    while (!r.bad && r.p < r.end) {
        filter_action *x = arena_calloc(a, sizeof *x);
        x->kind = (filter_action_kind)get_num(&r);
        x->target = get(&r);
        x->errors_to = get(&r);
        x->mode = (int)get_num(&r);
        x->noerror = get_num(&r) != 0;
        if (get_num(&r)) {
            reply_item *ri = arena_calloc(a, sizeof *ri);
            const char **s[] = { &ri->from, &ri->reply_to, &ri->to, &ri->cc, &ri->bcc, &ri->subject, &ri->headers,
                                 &ri->text, &ri->file, &ri->logfile, &ri->oncelog };
            for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
                *s[i] = get(&r);
            ri->once_repeat = get_num(&r);
            ri->file_expand = get_num(&r) != 0;
            ri->return_message = get_num(&r) != 0;
            ri->expand_forbid = (unsigned)get_num(&r);
            x->reply = ri;
        }
        if (!x->target || x->kind > FA_MAIL)
            r.bad = true;
        *tail = x;
        tail = &x->next;
    }
    if (r.bad || res->outcome > FF_ERROR)
        return false;
    res->seen_finish = res->outcome == FF_DELIVERED && !res->actions;
    return true;
}

static filter_outcome run_as_user(const char *text, const filter_opts *o, filter_result *res, const address_item *a)
{
    int fds[2];
    memset(res, 0, sizeof *res);
    res->outcome = FF_ERROR;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        res->error = arena_printf(o->a, "creation of pipe for filter failed: %s", strerror(errno));
        return FF_ERROR;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        res->error = arena_printf(o->a, "fork for filter failed: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return FF_ERROR;
    }
    if (pid == 0) {
        close(fds[0]);
        gid_t gid = a->gid_set ? a->gid : (gid_t)-1;
        filter_result cr;
        if ((a->gid_set && (setgroups(1, &gid) != 0 || setgid(gid) != 0)) || setuid(a->uid) != 0) {
            memset(&cr, 0, sizeof cr);
            cr.outcome = FF_ERROR;
            cr.error = arena_printf(o->a, "cannot change to uid %ld for the filter: %s", (long)a->uid, strerror(errno));
        } else {
            filter_interpret(text, o, &cr);
        }
        const char *out = encode(&cr, o->a);
        size_t n = strlen(out), off = 0;
        while (off < n) {
            ssize_t w = write(fds[1], out + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    gstr g;
    gstr_init(&g, o->a, 1024);
    bool overflow = !gstr_read_fd(&g, fds[0], (size_t)FILTER_RESULT_MAX);
    close(fds[0]);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    if (overflow || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0 || !decode(g.s, g.len, o->a, res)) {
        memset(res, 0, sizeof *res);
        res->outcome = FF_ERROR;
        res->error = WIFSIGNALED(wst) ? arena_printf(o->a, "filter process was killed by signal %d", WTERMSIG(wst))
                                      : "filter process ended without a result";
    }
    return res->outcome;
}

/* ---- generated addresses ---------------------------------------------------- */

static address_item *child(address_item *a, route_ctx *ctx, const char *address, unsigned flags)
{
    address_item *c = arena_calloc(ctx->a, sizeof *c);
    c->parent = a;
    c->rcpt_index = a->rcpt_index;
    c->flags = flags;
    c->dsn_flags = a->dsn_flags;
    c->dsn_orcpt = a->dsn_orcpt;
    c->errors_to = a->errors_to;
    c->address = address;
    if (flags & (AF_PIPE | AF_FILE | AF_REPLY)) {
        c->local_part = address;
        c->domain = a->domain;
        c->uid = a->uid;
        c->gid = a->gid;
        c->uid_set = a->uid_set;
        c->gid_set = a->gid_set;
        c->home_dir = a->home_dir;
    } else {
        const char *at = strrchr(address, '@');
        arena *sa = is_tainted(address) ? ps.msg_t : ctx->a;
        c->local_part = at ? arena_strndup(sa, address, (size_t)(at - address)) : address;
        c->domain = at ? at + 1 : a->domain;
    }
    return c;
}

static status make_addresses(const driver_inst *r, address_item *a, route_ctx *ctx, const filter_result *res,
                             address_item **gen)
{
    address_item *head = NULL, **tail = &head;
    const driver_inst *start = NULL;
    const char *rr = route_opt_str(r, "redirect_router");
    if (rr && !(start = config_driver(DC_ROUTER, rr))) {
        a->message = arena_printf(ctx->a, "redirect_router %s of router %s does not exist", rr, r->name);
        return ST_DEFER;
    }
    for (const filter_action *x = res->actions; x; x = x->next) {
        static const unsigned kind_flags[] = { [FA_DELIVER] = 0, [FA_SAVE] = AF_FILE, [FA_PIPE] = AF_PIPE,
                                               [FA_MAIL] = AF_REPLY };
        static const char *const forbid[] = { [FA_SAVE] = "forbid_file", [FA_PIPE] = "forbid_pipe",
                                              [FA_MAIL] = "forbid_filter_reply" };
        static const char *const refused[] = { [FA_SAVE] = "delivery to file forbidden",
                                               [FA_PIPE] = "delivery to pipe forbidden",
                                               [FA_MAIL] = "autoreply forbidden" };
        /* one_time forces forbid_file, forbid_pipe and forbid_filter_reply */
        if (x->kind != FA_DELIVER && (route_opt_bool(r, forbid[x->kind]) || route_opt_bool(r, "one_time"))) {
            a->message = refused[x->kind];
            return ST_FAIL;
        }
        address_item *c = child(a, ctx, x->target, kind_flags[x->kind] | (x->noerror ? AF_IGNORE_ERROR : 0));
        if (x->errors_to)
            c->errors_to = x->errors_to;
        switch (x->kind) {
        case FA_DELIVER:
            c->start_router = start;      /* redirect_router, if set */
            break;
        case FA_SAVE:
            c->mode = x->mode > 0 ? x->mode : 0;
            redirect_pfr_transport(r, c, ctx);
            break;
        case FA_PIPE:
            redirect_pfr_transport(r, c, ctx);
            break;
        case FA_MAIL:
            c->reply = x->reply;
            if (strcmp(x->target, ">**bad-reply**") == 0) {
                /* fails at once, without a bounce (Exim's rule) */
                c->flags |= AF_IGNORE_ERROR;
                c->message = "filter autoreply generated syntactically invalid recipient";
                c->router = r;
            } else {
                redirect_pfr_transport(r, c, ctx);
            }
            break;
        }
        *tail = c;
        tail = &c->next;
    }
    /* no significant delivery: the address itself goes on, as a copy so
     * that this router is not used for it again */
    if (res->outcome == FF_NOTDELIVERED)
        *tail = child(a, ctx, a->address, 0);
    *gen = head;
    return ST_OK;
}

status redirect_filter(const driver_inst *r, address_item *a, route_ctx *ctx, const char *text, int kind,
                       bool data, address_item **gen)
{
    *gen = NULL;
    if (!route_opt_bool(r, "allow_filter"))
        return filter_error(r, a, ctx, data, "filtering not enabled");
    if (kind == FILTER_SIEVE)
        return filter_error(r, a, ctx, data, route_opt_bool(r, "forbid_sieve_filter") ? "Sieve filtering not enabled"
                                                                                      : "Sieve filtering not available");
    if (route_opt_bool(r, "forbid_exim_filter"))
        return filter_error(r, a, ctx, data, "Exim filtering not enabled");

    filter_opts o = { .a = ctx->a };
    static const struct { const char *opt; unsigned bit; } bits[] = {
        { "allow_defer", FO_DEFER }, { "allow_fail", FO_FAIL }, { "allow_freeze", FO_FREEZE },
        { "forbid_filter_logwrite", FO_NO_LOG }, { "filter_prepend_home", FO_PREPEND_HOME }, { "rewrite", FO_REWRITE },
    };
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (route_opt_bool(r, bits[i].opt))
            o.flags |= bits[i].bit;
    if (!ctx->verify && !ctx->address_test)
        o.flags |= FO_REALLOG;
    static const struct { const char *opt; unsigned bits; } forbid[] = {
        { "forbid_filter_run", EXPAND_FORBID_RUN }, { "forbid_filter_readfile", EXPAND_FORBID_READFILE },
        { "forbid_filter_lookup", EXPAND_FORBID_LOOKUP | EXPAND_FORBID_QUERY },
        { "forbid_filter_existstest", EXPAND_FORBID_EXISTS | EXPAND_FORBID_STAT },
        { "forbid_filter_readsocket", EXPAND_FORBID_READSOCKET },
    };
    unsigned save_forbid = ps.exp_forbid;
    for (size_t i = 0; i < sizeof forbid / sizeof forbid[0]; i++)
        if (route_opt_bool(r, forbid[i].opt))
            ps.exp_forbid |= forbid[i].bits;
    message_facts(&o);

    filter_result res;
    if (geteuid() == 0 && a->uid_set && a->uid != 0)
        run_as_user(text, &o, &res, a);
    else
        filter_interpret(text, &o, &res);
    ps.exp_forbid = save_forbid;

    switch (res.outcome) {
    case FF_ERROR:
        if (route_opt_bool(r, "skip_syntax_errors")) {
            log_write(LOG_MAIN, "%s router: error in filter %s: %s", r->name, data ? "data" : "file", res.error);
            a->message = "syntax error in redirection data";
            return ST_DECLINED;
        }
        return filter_error(r, a, ctx, data, res.error);
    case FF_DEFER:
        a->message = *res.error ? res.error : "forced defer";
        if (*res.error) {
            a->user_message = a->message;
            a->pass_message = true;
        }
        return ST_DEFER;
    case FF_FAIL:
        a->message = *res.error ? res.error : "forced rejection";
        if (*res.error) {
            a->user_message = a->message;
            a->pass_message = true;
        }
        return ST_FAIL;
    case FF_FREEZE:
        if (!o.manually_thawed) {
            /* the address is deferred and the message frozen */
            a->message = *res.error ? res.error : "frozen by filter";
            a->freeze = true;
            return ST_DEFER;
        }
        res.outcome = FF_NOTDELIVERED;
        break;
    case FF_DELIVERED:
    case FF_NOTDELIVERED:
        break;
    }
    if (!res.actions && res.outcome == FF_DELIVERED) {
        a->message = "discarded";          /* Exim logs "=> discarded", not ":blackhole:" */
        return ST_DISCARD;
    }
    if (!res.actions)
        return ST_DECLINED;
    status st = make_addresses(r, a, ctx, &res, gen);
    if (st != ST_OK) {
        *gen = NULL;
        return st;
    }
    return ST_REROUTED;
}
