/* deliver.c: delivering one message. */
#include "deliver/deliver.h"
#include "deliver/bounce.h"
#include "deliver/retry.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "route/route.h"
#include "transport/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DELIVER_MAX_ADDRESSES 10000     /* generated addresses per message */

typedef struct dstate {
    spool_settings ss;
    spool_msg *m;
    int dfd;
    char dpath[PATH_MAX], jpath[PATH_MAX];
    arena *a;
    bool *done;                /* per top-level recipient: finished */
    int *pending;              /* per top-level recipient: children still undecided */
    bool *failed_any;
    address_item *failed;      /* for the bounce */
    address_item *deferred;
    address_item *delivered;   /* with NOTIFY=SUCCESS */
    dsn_kind delivered_kind;
    int naddr;
} dstate;

static spool_settings settings(void)
{
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    return ss;
}

/* ---- logging ------------------------------------------------------------ */

static const char *addr_desc(const address_item *a, arena *ar)
{
    if (!a->parent)
        return a->address;
    const address_item *top = a;
    while (top->parent)
        top = top->parent;
    return arena_printf(ar, "%s <%s>", a->address, top->address);
}

static void log_result(dstate *d, const address_item *a, bool more_in_batch)
{
    gstr g;
    gstr_init(&g, d->a, 128);
    const char *flag = a->result == ST_OK ? (more_in_batch ? "->" : "=>")
                     : a->result == ST_FAIL ? "**" : "==";
    gstr_printf(&g, "%s %s %s", d->m->id, flag, addr_desc(a, d->a));
    if (a->router)
        gstr_printf(&g, " R=%s", a->router->name);
    if (a->transport)
        gstr_printf(&g, " T=%s", a->transport->name);
    if (a->result == ST_DEFER) {
        gstr_cat(&g, " defer");
        gstr_printf(&g, " (%d)", a->basic_errno ? a->basic_errno : -1);
    }
    if (a->host_used)
        gstr_printf(&g, " H=%s [%s]%s", a->host_used, a->host_address_used,
                    a->port_used && a->port_used != 25 ? arena_printf(d->a, ":%d", a->port_used) : "");
    if (a->result == ST_OK) {
        if (a->smtp_confirmation && logsel_on(&cfg->logsel, LS_SMTP_CONFIRMATION)) {
            gstr_cat(&g, " C=\"");
            for (const char *p = a->smtp_confirmation; *p; p++) {
                if (*p == '"' || *p == '\\')
                    gstr_catc(&g, '\\');
                gstr_catc(&g, *p);
            }
            gstr_catc(&g, '"');
        }
    } else if (a->message) {
        gstr_printf(&g, ": %s", a->message);
    }
    log_write(LOG_MAIN, "%s", g.s);
    spool_msglog(&d->ss, d->m->id, strchr(g.s, ' ') + 1);
}

/* ---- journal ------------------------------------------------------------ */

static void journal(dstate *d, const char *address)
{
    int fd = open(d->jpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_write(LOG_MAIN | LOG_PANIC, "%s: cannot open journal %s: %s", d->m->id, d->jpath, strerror(errno));
        return;
    }
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s\n", address);
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0)
        log_write(LOG_MAIN | LOG_PANIC, "%s: cannot write journal %s", d->m->id, d->jpath);
    close(fd);
}

static bool in_nonrcpt(const spool_msg *m, const char *addr)
{
    for (int i = 0; i < m->n_nonrcpt; i++)
        if (strcasecmp(m->nonrcpt[i], addr) == 0)
            return true;
    return false;
}

static void add_nonrcpt(spool_msg *m, arena *a, const char *addr)
{
    if (in_nonrcpt(m, addr))
        return;
    const char **n = arena_alloc(a, sizeof *n * (size_t)(m->n_nonrcpt + 1));
    if (m->n_nonrcpt)
        memcpy(n, m->nonrcpt, sizeof *n * (size_t)m->n_nonrcpt);
    n[m->n_nonrcpt++] = arena_strdup(a, addr);
    m->nonrcpt = n;
}

/* Addresses delivered by an earlier process that crashed before it could
 * rewrite -H. */
static void apply_journal(dstate *d)
{
    FILE *f = fopen(d->jpath, "r");
    if (!f)
        return;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (*line) {
            add_nonrcpt(d->m, d->a, line);
            n++;
        }
    }
    fclose(f);
    if (n)
        log_write(LOG_MAIN, "%s journal file recovered: %d address%s already delivered", d->m->id, n, n == 1 ? "" : "es");
}

/* A top-level recipient is finished when it and all its descendants are. */
static void finish_top(dstate *d, const address_item *a, bool delivered_or_failed)
{
    int i = a->rcpt_index;
    if (i < 0 || i >= d->m->n_rcpt || !delivered_or_failed)
        return;
    if (--d->pending[i] > 0)
        return;
    if (!d->done[i]) {
        d->done[i] = true;
        journal(d, d->m->rcpt[i].address);
        add_nonrcpt(d->m, d->a, d->m->rcpt[i].address);
    }
}

/* ---- DSNs ---------------------------------------------------------------- */

/* A delivered address whose sender asked for NOTIFY=SUCCESS: "delivered"
 * for a final delivery, "relayed" when it went on to a host that did not
 * take the DSN request over. */
static void note_success(dstate *d, address_item *a)
{
    if (!(a->dsn_flags & SPOOL_DSN_SUCCESS) || a->dsn_passed_on)
        return;
    address_item *c = arena_alloc(d->a, sizeof *c);
    *c = *a;
    c->next = d->delivered;
    d->delivered = c;
    d->delivered_kind = a->host_used ? DSN_RELAYED : DSN_DELIVERED;
}

/* The delay warning due for this message, if any (delay_warning times,
 * the last repeating; delay_warning_condition). */
static void delay_warning(dstate *d)
{
    spool_msg *m = d->m;
    const char *list = cfg_str(MO_delay_warning);
    if (!list)
        return;
    long long times[32];
    int n = 0, sep = 0;
    char *it;
    while ((it = list_next(&list, &sep, d->a)) && n < 32) {
        long long t;
        if (opt_parse_time(it, &t) == ST_OK && t > 0)
            times[n++] = t;
    }
    if (n == 0)
        return;
    long long due = 0;
    for (int i = 0; i <= m->warning_count; i++)
        due += i < n ? times[i] : times[n - 1];
    if (time(NULL) - m->received < due)
        return;
    const char *cond = cfg_str(MO_delay_warning_condition);
    if (!cond)
        cond = "${if or {{!eq{$h_list-id:$h_list-post:$h_list-subscribe:}{}} "
               "{match{$h_precedence:}{(?i)bulk|list|junk}} "
               "{match{$h_auto-submitted:}{(?i)auto-generated|auto-replied}} } {no}{yes}}";
    bool ok = true;
    char *err;
    if (expand_check_bool(cond, d->a, &ok, &err) != ST_OK || !ok)
        return;
    address_item *list_w = NULL;
    for (address_item *a = d->deferred; a; a = a->next) {
        if ((a->dsn_flags & SPOOL_DSN_NEVER) || (a->dsn_flags && !(a->dsn_flags & SPOOL_DSN_DELAY)))
            continue;
        address_item *c = arena_alloc(d->a, sizeof *c);
        *c = *a;
        c->next = list_w;
        list_w = c;
    }
    if (!list_w)
        return;
    const char *wid = dsn_send(m, list_w, DSN_DELAYED, d->dfd, d->a, &err);
    if (wid) {
        m->warning_count++;
        deliver_after_receive(wid, false);
    }
}

/* ---- local transports in a child process -------------------------------- */

static bool never_user(uid_t uid)
{
    const char *nu = cfg_str(MO_never_users);
    if (!nu)
        return false;
    int sep = 0;
    char *it;
    while ((it = list_next(&nu, &sep, ps.scratch))) {
        struct passwd *pw = getpwnam(it);
        if ((pw && pw->pw_uid == uid) || (it[0] >= '0' && it[0] <= '9' && (uid_t)atol(it) == uid))
            return true;
    }
    return false;
}

/* uid/gid for a local delivery: transport user/group, else the router's,
 * else what check_local_user found. */
static bool delivery_ids(const address_item *a, uid_t *uid, gid_t *gid, const char **err, arena *ar)
{
    const char *tu = driver_opt(a->transport, "user") ? driver_opt(a->transport, "user")->s : NULL;
    const char *tg = driver_opt(a->transport, "group") ? driver_opt(a->transport, "group")->s : NULL;
    const char *ru = a->router && driver_opt(a->router, "user") ? driver_opt(a->router, "user")->s : NULL;
    const char *rg = a->router && driver_opt(a->router, "group") ? driver_opt(a->router, "group")->s : NULL;
    const char *u = tu ? tu : ru;
    const char *g = tg ? tg : rg;
    bool have_uid = a->uid_set, have_gid = a->gid_set;
    *uid = a->uid;
    *gid = a->gid;
    if (u) {
        char *x, *e;
        if (expand_string(u, ar, &x, &e) != ST_OK) {
            *err = arena_printf(ar, "failed to expand user \"%s\": %s", u, e);
            return false;
        }
        struct passwd *pw = getpwnam(x);
        if (!pw && x[0] >= '0' && x[0] <= '9')
            pw = getpwuid((uid_t)atol(x));
        if (!pw) {
            *err = arena_printf(ar, "user %s was not found", x);
            return false;
        }
        *uid = pw->pw_uid;
        if (!have_gid && !g) {
            *gid = pw->pw_gid;
            have_gid = true;
        }
        have_uid = true;
    }
    if (g) {
        char *x, *e;
        if (expand_string(g, ar, &x, &e) != ST_OK) {
            *err = arena_printf(ar, "failed to expand group \"%s\": %s", g, e);
            return false;
        }
        struct group *gr = getgrnam(x);
        if (!gr && x[0] >= '0' && x[0] <= '9')
            gr = getgrgid((gid_t)atol(x));
        if (!gr) {
            *err = arena_printf(ar, "group %s was not found", x);
            return false;
        }
        *gid = gr->gr_gid;
        have_gid = true;
    }
    if (!have_uid || !have_gid) {
        *err = arena_printf(ar, "Neither the %s router nor the %s transport has a user (and group) set",
                            a->router ? a->router->name : "?", a->transport->name);
        return false;
    }
    if (never_user(*uid)) {
        *err = arena_printf(ar, "User %ld set for %s transport is on the never_users list", (long)*uid, a->transport->name);
        return false;
    }
    return true;
}

static void run_local(dstate *d, address_item *a, transport_driver fn)
{
    uid_t uid = 0;
    gid_t gid = 0;
    const char *err = NULL;
    bool privileged = geteuid() == 0;
    if (privileged && !delivery_ids(a, &uid, &gid, &err, d->a)) {
        a->result = ST_DEFER;
        a->message = err;
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        a->result = ST_DEFER;
        a->message = arena_printf(d->a, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        a->result = ST_DEFER;
        a->message = arena_printf(d->a, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        if (privileged) {
            if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
                dprintf(fds[1], "%d\tcannot change to uid %ld gid %ld: %s", ST_DEFER, (long)uid, (long)gid, strerror(errno));
                _exit(1);
            }
        }
        const char *home = a->home_dir ? a->home_dir : "/";
        if (chdir(home) != 0 && chdir("/") != 0)
            _exit(1);
        tp_ctx tc = { .m = d->m, .data_fd = d->dfd, .ss = &d->ss, .a = d->a };
        a->next = NULL;
        fn(a->transport, a, &tc);
        dprintf(fds[1], "%d\t%s", a->result, a->message ? a->message : "");
        _exit(0);
    }
    close(fds[1]);
    gstr g;
    gstr_init(&g, d->a, 128);
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        if (g.len < 65536)
            gstr_catn(&g, buf, (size_t)n);
    close(fds[0]);
    int wst;
    waitpid(pid, &wst, 0);
    char *tab = strchr(g.s, '\t');
    if (!tab) {
        a->result = ST_DEFER;
        a->message = arena_printf(d->a, "local delivery process for %s %s", a->transport->name,
                                  WIFSIGNALED(wst) ? arena_printf(d->a, "was killed by signal %d", WTERMSIG(wst))
                                                   : "ended without a result");
        return;
    }
    *tab = '\0';
    a->result = (status)atoi(g.s);
    a->message = *(tab + 1) ? tab + 1 : NULL;
}

/* ---- routing ------------------------------------------------------------ */

static address_item *new_top(dstate *d, int i)
{
    const spool_rcpt *r = &d->m->rcpt[i];
    address_item *a = arena_calloc(d->a, sizeof *a);
    /* recipients came from outside: tainted, so $local_part and $domain
     * cannot become file names or commands unchecked (DESIGN.md section 8) */
    a->address = arena_strdup(ps.msg_t, r->address);
    const char *at = strrchr(a->address, '@');
    a->local_part = at ? arena_strndup(ps.msg_t, a->address, (size_t)(at - a->address)) : a->address;
    a->domain = at ? at + 1 : cfg_str(MO_qualify_recipient);
    a->rcpt_index = i;
    a->dsn_flags = r->dsn_flags;
    a->dsn_orcpt = r->orcpt;
    a->errors_to = r->errors_to;
    a->result = ST_DEFER;
    return a;
}

status deliver_message(const char *id, const deliver_opts *o)
{
    if (!spool_id_valid(id))
        return ST_ERROR;
    dns_process_new_message();
    dstate D = { 0 }, *d = &D;
    d->ss = settings();
    d->a = ps.msg;
    /* the message may be in a split or unsplit directory */
    struct stat sb;
    spool_path(&d->ss, id, 'D', d->dpath, sizeof d->dpath);
    if (stat(d->dpath, &sb) != 0) {
        d->ss.split = !d->ss.split;
        spool_path(&d->ss, id, 'D', d->dpath, sizeof d->dpath);
    }
    spool_path(&d->ss, id, 'J', d->jpath, sizeof d->jpath);
    d->dfd = open(d->dpath, O_RDWR | O_CLOEXEC);
    if (d->dfd < 0)
        return errno == ENOENT ? ST_OK : ST_ERROR;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(d->dfd, F_SETLK, &fl) != 0) {
        close(d->dfd);
        return ST_SKIP;         /* another process has it */
    }
    char *err = NULL;
    status st = spool_read_header(&d->ss, id, d->a, &d->m, &err);
    if (st != ST_OK) {
        if (st != ST_NOTFOUND)
            log_write(LOG_MAIN | LOG_PANIC, "%s: spool read error: %s", id, err);
        close(d->dfd);
        return st == ST_NOTFOUND ? ST_OK : ST_ERROR;
    }
    spool_msg *m = d->m;
    bool cancel = false;
    long long tfa = cfg_int(MO_timeout_frozen_after);
    long long thaw_after = cfg_int(MO_auto_thaw);
    if (m->frozen && tfa > 0 && time(NULL) - m->received > tfa) {
        /* frozen too long: a bounce is thrown away, anything else fails */
        cancel = true;
        log_write(LOG_MAIN, "%s cancelled by timeout_frozen_after", id);
        m->frozen = 0;
    } else if (m->frozen && !o->thaw && !(thaw_after > 0 && *m->sender && time(NULL) - m->frozen > thaw_after)) {
        close(d->dfd);
        return ST_SKIP;
    }
    if (m->frozen && o->thaw) {
        m->frozen = 0;
        log_write(LOG_MAIN, "%s unfrozen by forced delivery", id);
    }
    apply_journal(d);

    /* the message's variables for expansions */
    ps.message_id = m->id;
    ps.sender_address = m->sender;
    ps.msg_headers = m->headers;
    ps.sender_host_address = m->host_address;
    ps.sender_helo_name = m->helo_name;
    ps.received_protocol = m->received_protocol;
    ps.body_linecount = m->body_linecount;
    for (const spool_var *v = m->vars; v; v = v->next) {
        char *e;
        expand_set_acl_var(arena_printf(d->a, "acl_%c%s", v->kind, v->name), v->value, &e);
    }

    d->done = arena_calloc(d->a, sizeof(bool) * (size_t)(m->n_rcpt + 1));
    d->pending = arena_calloc(d->a, sizeof(int) * (size_t)(m->n_rcpt + 1));
    address_item *todo = NULL, **todo_tail = &todo;
    for (int i = 0; i < m->n_rcpt; i++) {
        if (in_nonrcpt(m, m->rcpt[i].address)) {
            d->done[i] = true;
            continue;
        }
        address_item *a = new_top(d, i);
        d->pending[i] = 1;
        *todo_tail = a;
        todo_tail = &a->next;
    }

    if (cancel) {
        address_item *next;
        for (address_item *a = todo; a; a = next) {
            next = a->next;
            a->next = NULL;
            a->result = ST_FAIL;
            a->message = "delivery cancelled: message frozen too long (timeout_frozen_after)";
            if (*m->sender) {
                log_result(d, a, false);
                a->next = d->failed;
                d->failed = a;
            }
            finish_top(d, a, true);
        }
        todo = NULL;
    }
    route_ctx rc = { .a = d->a };
    dns_resolver *res = dns_process_resolver(&err, d->a);
    if (res)
        rc.dns = dns_iface_unbound(res);

    /* route everything (children are appended as they are generated) */
    address_item *routed = NULL, **routed_tail = &routed;
    while (todo) {
        address_item *a = todo;
        todo = a->next;
        if (!todo)
            todo_tail = &todo;
        a->next = NULL;
        if (++d->naddr > DELIVER_MAX_ADDRESSES) {
            a->result = ST_DEFER;
            a->message = "too many addresses generated for one message";
            log_result(d, a, false);
            continue;
        }
        if (a->flags & (AF_PIPE | AF_FILE)) {
            *routed_tail = a;
            routed_tail = &a->next;
            continue;
        }
        address_item *gen = NULL;
        int depth = 0;
        for (address_item *p = a->parent; p; p = p->parent)
            depth++;
        rc.depth = depth;
        status rs = route_address(a, &rc, &gen);
        switch (rs) {
        case ST_OK: {
            /* the same address reached twice (an alias and a recipient, say)
             * is delivered once */
            bool dup = false;
            for (address_item *x = routed; x; x = x->next)
                if (x->transport == a->transport && strcasecmp(x->address, a->address) == 0)
                    dup = true;
            if (dup) {
                a->result = ST_OK;
                finish_top(d, a, true);
                break;
            }
            *routed_tail = a;
            routed_tail = &a->next;
            break;
        }
        case ST_REROUTED: {
            int k = 0;
            for (address_item *c = gen; c; c = c->next)
                k++;
            if (a->rcpt_index >= 0)
                d->pending[a->rcpt_index] += k - 1;
            *todo_tail = gen;
            while (*todo_tail)
                todo_tail = &(*todo_tail)->next;
            if (todo == NULL)
                todo = gen;
            break;
        }
        case ST_DISCARD:
            log_write(LOG_MAIN, "%s => :blackhole: <%s> R=%s", m->id, a->address, a->router ? a->router->name : "?");
            a->result = ST_OK;
            finish_top(d, a, true);
            break;
        case ST_FAIL:
            a->result = ST_FAIL;
            log_result(d, a, false);
            a->next = d->failed;
            d->failed = a;
            finish_top(d, a, true);
            break;
        default:
            a->result = ST_DEFER;
            if (retry_record_failure(a, m, time(NULL), d->a)) {
                a->result = ST_FAIL;
                a->message = arena_printf(d->a, "retry timeout exceeded: %s", a->message ? a->message : "routing deferred");
                log_result(d, a, false);
                a->next = d->failed;
                d->failed = a;
                finish_top(d, a, true);
            } else {
                log_result(d, a, false);
            }
            break;
        }
    }

    /* transports: local ones one address at a time, smtp in batches */
    while (routed) {
        address_item *a = routed;
        routed = a->next;
        a->next = NULL;
        transport_driver fn = a->transport ? transport_find(a->transport) : NULL;
        const char *why = NULL;
        if (!o->force && !retry_due(a, time(NULL), d->a, &why)) {
            a->result = ST_DEFER;
            a->message = why;
            if (logsel_on(&cfg->logsel, LS_RETRY_DEFER))
                log_result(d, a, false);
            a->next = d->deferred;
            d->deferred = a;
            continue;
        }
        if (!fn) {
            a->result = ST_DEFER;
            a->message = arena_printf(d->a, "transport %s cannot deliver yet",
                                      a->transport ? a->transport->info->name : "(none)");
        } else if (transport_is_local(a->transport)) {
            run_local(d, a, fn);
        } else {
            /* gather addresses for the same transport and host list */
            address_item *batch = a, **bt = &a->next, **pp = &routed;
            long long max_rcpt = 100;
            int nb = 1;
            while (*pp) {
                address_item *b = *pp;
                if (b->transport == a->transport && b->router == a->router && b->hosts && a->hosts &&
                    b->hosts->name && a->hosts->name && !strcasecmp(b->hosts->name, a->hosts->name) &&
                    nb < max_rcpt) {
                    *pp = b->next;
                    b->next = NULL;
                    *bt = b;
                    bt = &b->next;
                    nb++;
                } else {
                    pp = &b->next;
                }
            }
            pid_t pid;
            /* remote deliveries do not need root */
            tp_ctx tc = { .m = m, .data_fd = d->dfd, .ss = &d->ss, .a = d->a };
            (void)pid;
            fn(a->transport, batch, &tc);
            address_item *next;
            for (address_item *b = batch; b; b = next) {
                next = b->next;
                b->next = NULL;
                if (b != a) {
                    /* handled below like a */
                    if (b->result == ST_OK)
                        retry_record_success(b, d->a);
                    if (b->result == ST_DEFER && retry_record_failure(b, m, time(NULL), d->a)) {
                        b->result = ST_FAIL;
                        b->message = arena_printf(d->a, "retry timeout exceeded: %s", b->message ? b->message : "");
                    }
                    log_result(d, b, b->result == ST_OK && a->result == ST_OK);
                    if (b->result == ST_FAIL) {
                        b->next = d->failed;
                        d->failed = b;
                    } else if (b->result == ST_DEFER) {
                        b->next = d->deferred;
                        d->deferred = b;
                    } else if (b->result == ST_OK) {
                        note_success(d, b);
                    }
                    finish_top(d, b, b->result != ST_DEFER);
                }
            }
        }
        if (a->result == ST_OK)
            retry_record_success(a, d->a);
        if (a->result == ST_DEFER && retry_record_failure(a, m, time(NULL), d->a)) {
            a->result = ST_FAIL;
            a->message = arena_printf(d->a, "retry timeout exceeded: %s", a->message ? a->message : "");
        }
        log_result(d, a, false);
        if (a->result == ST_FAIL) {
            a->next = d->failed;
            d->failed = a;
        } else if (a->result == ST_DEFER) {
            a->next = d->deferred;
            d->deferred = a;
        } else if (a->result == ST_OK) {
            note_success(d, a);
        }
        finish_top(d, a, a->result != ST_DEFER);
    }

    /* DSN NOTIFY: NEVER, or a list without FAILURE, means no bounce for that address */
    address_item *bounce_list = NULL;
    for (address_item *f = d->failed, *next; f; f = next) {
        next = f->next;
        if ((f->dsn_flags & SPOOL_DSN_NEVER) || (f->dsn_flags && !(f->dsn_flags & SPOOL_DSN_FAILURE)))
            continue;
        f->next = bounce_list;
        bounce_list = f;
    }
    /* bounce for failures (not for bounces: those are frozen) */
    bool freeze = false;
    if (bounce_list) {
        if (*m->sender) {
            char *berr = NULL;
            const char *bid = bounce_send(m, bounce_list, d->dfd, d->a, &berr);
            if (!bid) {
                log_write(LOG_MAIN | LOG_PANIC, "%s: cannot create the bounce message: %s", m->id, berr ? berr : "");
                freeze = true;
            } else {
                deliver_after_receive(bid, false);
            }
        } else {
            long long ignore_after = cfg_int(MO_ignore_bounce_errors_after);
            if (time(NULL) - m->received <= ignore_after) {
                log_write(LOG_MAIN, "%s Message is frozen (delivery of a bounce message failed)", m->id);
                freeze = true;
            } else {
                log_write(LOG_MAIN, "%s bounce message failed and is older than ignore_bounce_errors_after: discarded", m->id);
            }
        }
    }
    /* success notices for NOTIFY=SUCCESS (unless the next hop took the DSN request on) */
    if (d->delivered && *m->sender) {
        char *derr = NULL;
        const char *did = dsn_send(m, d->delivered, d->delivered_kind, d->dfd, d->a, &derr);
        if (did)
            deliver_after_receive(did, false);
    }
    /* delay warnings */
    if (d->deferred && *m->sender && !freeze)
        delay_warning(d);

    bool all_done = true;
    for (int i = 0; i < m->n_rcpt; i++)
        if (!d->done[i])
            all_done = false;
    if (freeze)
        all_done = false;

    if (all_done) {
        char path[PATH_MAX];
        unlink(spool_path(&d->ss, id, 'H', path, sizeof path));
        unlink(d->jpath);
        unlink(d->dpath);
        if (!cfg_bool(MO_preserve_message_logs))
            unlink(spool_msglog_path(&d->ss, id, path, sizeof path));
        log_write(LOG_MAIN, "%s Completed", id);
        close(d->dfd);
        return ST_OK;
    }
    /* something remains: rewrite -H with what is done, then drop the journal */
    m->deliver_firsttime = false;
    if (freeze)
        m->frozen = time(NULL);
    if (spool_commit(&d->ss, m, -1, d->a, &err) == ST_OK)
        unlink(d->jpath);
    else
        log_write(LOG_MAIN | LOG_PANIC, "%s: cannot update spool header: %s", id, err);
    if (freeze)
        log_write(LOG_MAIN, "%s Frozen", id);
    close(d->dfd);
    return ST_DEFER;
}
