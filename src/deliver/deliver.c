/* deliver.c: delivering one message. */
#include "deliver/deliver.h"
#include "deliver/bounce.h"
#include "deliver/retry.h"
#include "deliver/submit.h"
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
#include "transport/smtp_wait.h"

#include <ctype.h>
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
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
    address_item *timed_out;   /* deferred past their retry rules: fail at the end */
    address_item *delivered;   /* with NOTIFY=SUCCESS */
    dsn_kind delivered_kind;
    int naddr;
    spool_msg *tm;             /* the message as the current transport sees it (return_path) */
    bool freeze;               /* an address asked for the message to be frozen */
} dstate;

static spool_settings settings(void)
{
    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    return ss;
}

/* ---- logging ------------------------------------------------------------ */

/* Does the router that routed a log its deliveries in the "local" style
 * (local part only)?  log_as_local defaults to true for accept. */
static bool log_as_local(const address_item *a)
{
    if (!a->router || !a->transport || !transport_is_local(a->transport))
        return false;
    const optval *v = driver_opt(a->router, "log_as_local");
    if (v && v->set)
        return v->n != 0;
    return a->router->info && !strcmp(a->router->info->name, "accept");
}

/* The address as Exim's delivery log lines show it: pipes, files and
 * (successful) local-style deliveries by local part, others in full; an
 * intermediate parent in parentheses (for pipes and files, or all of them
 * with +all_parents), and the original recipient in <> when it differs. */
static const char *addr_desc(const address_item *a, bool success, arena *ar)
{
    const address_item *top = a;
    while (top->parent)
        top = top->parent;
    bool all_parents = logsel_on(&cfg->logsel, LS_ALL_PARENTS);
    bool pfr = (a->flags & (AF_PIPE | AF_FILE | AF_REPLY)) != 0;
    bool add_top = true;
    gstr g;
    gstr_init(&g, ar, 64);
    if (pfr) {
        if ((a->flags & AF_FILE) && a->address[0] != '/')
            gstr_cat(&g, "save ");
        gstr_cat(&g, a->address);
    } else if (success && log_as_local(a)) {
        gstr_cat(&g, a->local_part);
    } else {
        if (a->local_part && a->domain && *a->domain)
            gstr_printf(&g, "%s@%s", a->local_part, a->domain);
        else
            gstr_cat(&g, a->address);
        const char *at = strrchr(g.s, '@');
        if (!strcasecmp(g.s, top->address) && at && !strncmp(g.s, top->address, (size_t)(at - g.s)) &&
            (!all_parents || !a->parent || a->parent == top))
            add_top = false;
    }
    if ((all_parents || pfr) && a->parent && a->parent != top) {
        const char *sep = " (";
        for (const address_item *p = a->parent; p != top; p = p->parent) {
            gstr_printf(&g, "%s%s", sep, p->address);
            if (!all_parents)
                break;
            sep = ", ";
        }
        gstr_cat(&g, ")");
    }
    if (add_top)
        gstr_printf(&g, " <%s>", top->address);
    return g.s;
}

/* Exim's time format for QT= and DT=: 1w2d3h4m5s, or 1.234s under five
 * seconds with +millisec */
static const char *log_time(double secs, arena *ar)
{
    if (secs < 0)
        secs = 0;
    if (secs < 5 && logsel_on(&cfg->logsel, LS_MILLISEC))
        return arena_printf(ar, "%u.%03us", (unsigned)secs, (unsigned)((secs - (unsigned)secs) * 1000));
    long t = (long)secs;
    gstr g;
    gstr_init(&g, ar, 16);
    long w = t / 604800, dd = t / 86400 % 7, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
    if (w)
        gstr_printf(&g, "%ldw", w);
    if (dd)
        gstr_printf(&g, "%ldd", dd);
    if (h)
        gstr_printf(&g, "%ldh", h);
    if (m)
        gstr_printf(&g, "%ldm", m);
    if (sec || !g.len)
        gstr_printf(&g, "%lds", sec);
    return g.s;
}

static double now_secs(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The delivery log lines, field by field as Exim 4.99 writes them:
 *   => addr [F=<sender>] [P=<return path>] R= T= [ST=] [H= [ip][:port][*]] [C="..."] [QT=] [DT=]
 *   == addr R= [T=] defer (errno)[: strerror] [H=...] [DT=][: message]
 *   ** addr [F=] [P=] [R=] [T=] [H=...][ : strerror][ : message] [DT=] */
static void log_result(dstate *d, const address_item *a, bool more_in_batch)
{
    /* disable_logging: a transport's silences its deliveries, a router's
     * the routing failures and deferrals (Exim) */
    if (a->transport ? tp_opt_bool(a->transport, "disable_logging")
                     : (a->router && route_opt_bool(a->router, "disable_logging")))
        return;
    const log_selectors *ls = &cfg->logsel;
    gstr g;
    gstr_init(&g, d->a, 128);
    const char *flag = a->result == ST_OK ? ((a->flags & AF_BYPASSED) ? "*>" : more_in_batch ? "->" : "=>")
                     : a->result == ST_FAIL ? "**" : "==";
    gstr_printf(&g, "%s %s %s", d->m->id, flag, addr_desc(a, a->result == ST_OK, d->a));
    const char *rp = a->return_path ? a->return_path : d->m->sender;
    if (a->result != ST_DEFER) {
        if (logsel_on(ls, LS_SENDER_ON_DELIVERY))
            gstr_printf(&g, " F=<%s>", d->m->sender);
        if (logsel_on(ls, LS_RETURN_PATH_ON_DELIVERY) && (a->transport || a->result == ST_OK))
            gstr_printf(&g, " P=<%s>", rp);
    }
    if (a->router)
        gstr_printf(&g, " R=%s", a->router->name);
    else if (a->result == ST_DEFER && !a->transport)
        gstr_cat(&g, " routing");       /* routing itself deferred (retry time) */
    if (a->transport)
        gstr_printf(&g, " T=%s", a->transport->name);
    if (a->shadow_message && a->result == ST_OK)
        gstr_cat(&g, a->shadow_message);
    if (a->result == ST_DEFER) {
        gstr_printf(&g, " defer (%d)", a->basic_errno);
        if (a->basic_errno > 0)
            gstr_printf(&g, ": %s", strerror(a->basic_errno));
    }
    if (a->host_used)
        gstr_printf(&g, " H=%s%s [%s]%s%s", a->host_used, logsel_on(ls, LS_DNSSEC) && a->host_dnssec ? " DS" : "",
                    a->host_address_used, logsel_on(ls, LS_OUTGOING_PORT) ? arena_printf(d->a, ":%d", a->port_used) : "",
                    (a->flags & AF_CONT_CONN) ? "*" : "");
    if (a->tls_cipher && a->host_used && a->result != ST_DEFER) {
        if (logsel_on(ls, LS_TLS_CIPHER))
            gstr_printf(&g, " X=%s", a->tls_cipher);
        if (logsel_on(ls, LS_TLS_CERTIFICATE_VERIFIED))
            gstr_printf(&g, " CV=%s", a->tls_verified ? "yes" : "no");
        if (logsel_on(ls, LS_TLS_PEERDN) && a->tls_peerdn)
            gstr_printf(&g, " DN=\"%s\"", a->tls_peerdn);
    }
    if (a->authenticator && a->host_used && a->result != ST_DEFER)
        gstr_printf(&g, " A=%s", a->authenticator);
    double dt = a->delivery_secs;
    if (a->result == ST_OK && a->host_used) {
        if (logsel_on(ls, LS_PIPELINING) && (a->flags & AF_PIPELINING))
            gstr_cat(&g, " L");
        if (a->flags & AF_CHUNKING)
            gstr_cat(&g, " K");
    }
    if (a->result == ST_OK) {
        if (a->smtp_confirmation && logsel_on(ls, LS_SMTP_CONFIRMATION)) {
            gstr_cat(&g, " C=\"");
            for (const char *p = a->smtp_confirmation; *p; p++) {
                if (*p == '"' || *p == '\\')
                    gstr_catc(&g, '\\');
                gstr_catc(&g, *p);
            }
            gstr_catc(&g, '"');
        }
        if (logsel_on(ls, LS_QUEUE_TIME)) {
            double since = logsel_on(ls, LS_QUEUE_TIME_EXCLUSIVE)
                ? (double)d->m->complete_sec + d->m->complete_usec / 1e6
                : (double)d->m->received + d->m->received_usec / 1e6;
            gstr_printf(&g, " QT=%s", log_time(now_secs() - since, d->a));
        }
        if (logsel_on(ls, LS_DELIVER_TIME))
            gstr_printf(&g, " DT=%s", log_time(dt, d->a));
    } else if (a->result == ST_DEFER) {
        if (logsel_on(ls, LS_DELIVER_TIME) && a->transport)
            gstr_printf(&g, " DT=%s", log_time(dt, d->a));
        if (a->message)
            gstr_printf(&g, ": %s", a->message);
    } else {
        /* failures: " : " before the reasons (Exim 4.99) */
        if (a->basic_errno > 0)
            gstr_printf(&g, " : %s", strerror(a->basic_errno));
        if (a->message)
            gstr_printf(&g, " : %s", a->message);
        if (logsel_on(ls, LS_DELIVER_TIME) && a->transport)
            gstr_printf(&g, " DT=%s", log_time(dt, d->a));
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

/* What records an address as delivered (Exim's "unique"): the address;
 * for a pipe or file also the parent's; for an unseen router's delivery
 * also the router's name (set when it is routed). */
static const char *unique_of(const address_item *a, arena *ar)
{
    if (a->unique)
        return a->unique;
    if ((a->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && a->parent)
        return arena_printf(ar, "%s:%s", a->address, unique_of(a->parent, ar));
    return a->address;
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
    if (!in_nonrcpt(m, addr))
        spool_add_nonrcpt(m, a, addr);
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

/* A failed address kept on the queue after all (a frozen bounce): its
 * top-level recipient is not done. */
static void unfinish_top(dstate *d, const address_item *a)
{
    int i = a->rcpt_index;
    if (i < 0 || i >= d->m->n_rcpt || !d->done[i])
        return;
    d->done[i] = false;
    spool_msg *m = d->m;
    for (int k = 0; k < m->n_nonrcpt; k++)
        if (!strcasecmp(m->nonrcpt[k], m->rcpt[i].address)) {
            m->nonrcpt[k] = m->nonrcpt[--m->n_nonrcpt];
            break;
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
    /* the times are ages of the message; after the last, warnings repeat
     * at the last interval (the only time, when there is one) */
    long long due;
    int w = m->warning_count;
    if (w < n)
        due = times[w];
    else {
        long long gap = n > 1 ? times[n - 1] - times[n - 2] : times[0];
        if (gap <= 0)
            return;
        due = times[n - 1] + gap * (long long)(w - n + 1);
    }
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
    /* as Exim: whether to warn goes by the last deferred address (NOTIFY
     * unset or with DELAY); the warning lists every deferred address */
    const address_item *last = d->deferred;
    if ((last->dsn_flags & SPOOL_DSN_NEVER) || (last->dsn_flags && !(last->dsn_flags & SPOOL_DSN_DELAY)))
        return;
    address_item *list_w = NULL, **lt = &list_w;
    for (address_item *a = d->deferred; a; a = a->next) {
        address_item *c = arena_alloc(d->a, sizeof *c);
        *c = *a;
        c->next = NULL;
        *lt = c;
        lt = &c->next;
    }
    const char *wid = dsn_send(m, list_w, DSN_DELAYED, d->dfd, d->a, &err);
    if (wid) {
        m->warning_count++;
        deliver_generated(wid);
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
static bool delivery_ids(const address_item *a, const spool_msg *m, uid_t *uid, gid_t *gid, const char **err,
                         arena *ar)
{
    /* pipe_as_creator: a pipe without user/group runs as the message's creator */
    if (tp_opt_bool(a->transport, "pipe_as_creator") && !driver_opt(a->transport, "user")->s &&
        !(a->router && driver_opt(a->router, "user") && driver_opt(a->router, "user")->s)) {
        *uid = (uid_t)m->uid;
        *gid = (gid_t)m->gid;
        if (never_user(*uid)) {
            *err = arena_printf(ar, "User %ld set for %s transport is on the never_users list", (long)*uid,
                                a->transport->name);
            return false;
        }
        return true;
    }
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

#define LOCAL_PIPE_MAX (64UL * 1024 * 1024)    /* results + generated messages */

/* Queue a message a local transport generated (autoreply). */
static void queue_generated(dstate *d, const char *sender, const char *rcpts, const char *headers,
                            const char *body, uid_t uid)
{
    const char *list[256];
    int n = 0;
    for (const char *p = rcpts; *p && n < 256;) {
        const char *nl = strchr(p, '\n');
        size_t k = nl ? (size_t)(nl - p) : strlen(p);
        if (k)
            list[n++] = arena_strndup(d->a, p, k);
        p += k + (nl ? 1 : 0);
    }
    struct passwd *pw = getpwuid(uid);
    submit_msg sm = { .sender = sender, .rcpts = list, .nrcpt = n, .headers = headers, .body = body,
                      .ref_id = d->m->id, .login = pw ? arena_strdup(d->a, pw->pw_name) : NULL };
    char *err = NULL;
    const char *id = deliver_submit_local(&sm, d->a, &err);
    if (id)
        deliver_generated(id);
    else
        log_write(LOG_MAIN | LOG_PANIC, "%s: cannot queue the message generated by the %s transport: %s", d->m->id,
                  "local", err ? err : "");
}

static void batch_result(address_item *batch, status st, const char *msg)
{
    for (address_item *b = batch; b; b = b->next) {
        b->result = st;
        b->message = msg;
    }
}

/* Run a local transport for a batch of addresses (a list through ->next,
 * usually one) in a child process under their uid/gid.  The child sends
 * back each address's result and any message the transport generated. */
static void run_local(dstate *d, address_item *batch, transport_driver fn)
{
    address_item *a = batch;
    uid_t uid = 0;
    gid_t gid = 0;
    const char *err = NULL;
    bool privileged = geteuid() == 0;
    if (privileged && !delivery_ids(a, d->m, &uid, &gid, &err, d->a)) {
        batch_result(batch, ST_DEFER, err);
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        batch_result(batch, ST_DEFER, arena_printf(d->a, "pipe: %s", strerror(errno)));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        batch_result(batch, ST_DEFER, arena_printf(d->a, "fork: %s", strerror(errno)));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        smtp_kept_forget();
        if (privileged) {
            /* no core dumps from delivery processes unless permit_coredump
             * (raised while still root, as Exim does) */
            struct rlimit core = { 0, 0 };
            if (tp_opt_bool(a->transport, "permit_coredump"))
                core.rlim_cur = core.rlim_max = RLIM_INFINITY;
            setrlimit(RLIMIT_CORE, &core);
            /* initgroups (router or transport): the user's supplementary groups too */
            struct passwd *ipw = (a->initgroups || tp_opt_bool(a->transport, "initgroups")) ? getpwuid(uid) : NULL;
            int gr = ipw ? initgroups(ipw->pw_name, gid) : setgroups(1, &gid);
            if (gr != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
                batch_result(batch, ST_DEFER, arena_printf(d->a, "cannot change to uid %ld gid %ld: %s", (long)uid,
                                                           (long)gid, strerror(errno)));
                tp_put_results(fds[1], batch);
                _exit(1);
            }
        }
        /* the transport's home_directory and current_directory win over
         * the router's; the working directory is the home when unset */
        tp_ctx tc = { .m = d->tm ? d->tm : d->m, .data_fd = d->dfd, .ss = &d->ss, .a = d->a, .gen_fd = fds[1] };
        const char *home = a->home_dir, *cwd = a->current_dir, *x = NULL;
        char *xerr = NULL;
        tp_set_vars(a->transport, a);
        if (tp_opt_expand(a->transport, "home_directory", &tc, &x, &xerr) == ST_OK && x)
            home = x;
        x = NULL;
        if (tp_opt_expand(a->transport, "current_directory", &tc, &x, &xerr) == ST_OK && x)
            cwd = x;
        for (address_item *b = batch; b; b = b->next)
            b->home_dir = home;
        if (!cwd)
            cwd = home ? home : "/";
        if (chdir(cwd) != 0) {
            /* Exim: a missing home (or current) directory defers */
            int e = errno;
            batch_result(batch, ST_DEFER, arena_printf(d->a, "failed to chdir to %s", cwd));
            for (address_item *b = batch; b; b = b->next)
                b->basic_errno = e;
            tp_put_results(fds[1], batch);
            _exit(1);
        }
        fn(a->transport, batch, &tc);
        tp_put_results(fds[1], batch);
        _exit(0);
    }
    close(fds[1]);
    gstr g;
    gstr_init(&g, d->a, 256);
    bool overflow = !gstr_read_fd(&g, fds[0], LOCAL_PIPE_MAX);
    close(fds[0]);
    int wst;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    for (address_item *b = batch; b; b = b->next)
        b->result = ST_SKIP;            /* no result yet */
    const char *p = g.s, *end = g.s + g.len;
    address_item *next_r = batch;
    const char *kind;
    while (!overflow && (kind = tp_next_field(&p, end, NULL, d->a))) {
        if (!strcmp(kind, "R")) {
            const char *f[9];
            int k = 0;
            while (k < 9 && (f[k] = tp_next_field(&p, end, NULL, d->a)))
                k++;
            if (k < 9 || !next_r)
                break;
            /* the transport that delivered (file_format may pick another) */
            const driver_inst *t = *f[8] ? config_driver(DC_TRANSPORT, f[8]) : NULL;
            if (t)
                next_r->transport = t;
            next_r->freeze = f[6][0] == '1';
            next_r->smtp_confirmation = *f[7] ? f[7] : NULL;
            next_r->result = (status)atoi(f[0]);
            next_r->message = *f[1] ? f[1] : NULL;
            next_r->user_message = *f[2] ? f[2] : NULL;
            next_r->pass_message = f[3][0] == '1';
            next_r->basic_errno = atoi(f[4]);
            next_r->return_output = *f[5] ? f[5] : NULL;
            next_r = next_r->next;
        } else if (!strcmp(kind, "G")) {
            const char *f[5];
            int k = 0;
            while (k < 5 && (f[k] = tp_next_field(&p, end, NULL, d->a)))
                k++;
            if (k < 5)
                break;
            /* U= in its "<=" line: who submitted it (Exim) */
            queue_generated(d, f[0], f[1], f[2], f[3], f[4][0] == '1' ? geteuid() : uid);
        } else {
            break;
        }
    }
    const char *why = arena_printf(d->a, "local delivery process for %s %s", a->transport->name,
                                   overflow ? "sent too much back"
                                   : WIFSIGNALED(wst) ? arena_printf(d->a, "was killed by signal %d", WTERMSIG(wst))
                                   : "ended without a result");
    for (address_item *b = batch; b; b = b->next)
        if (b->result == ST_SKIP) {
            b->result = ST_DEFER;
            b->message = why;
        }
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

/* Before a transport runs for a batch: message_size_limit (a message over
 * it fails, as Exim says it) and return_path (the envelope sender this
 * delivery uses: a copy of the message with it, and $return_path).  false
 * when the batch already has its result. */
static bool transport_checks(dstate *d, address_item *batch)
{
    const driver_inst *t = batch->transport;
    d->tm = d->m;
    tp_set_vars(t, batch);
    const char *v = tp_opt(t, "message_size_limit");
    if (v) {
        char *out = NULL, *err = NULL, *end;
        const char *msg = NULL;
        status st = ST_OK;
        if (expand_string(v, d->a, &out, &err) != ST_OK) {
            msg = arena_printf(d->a, "failed to expand message_size_limit in %s transport: %s", t->name, err ? err : "");
            st = ST_DEFER;
        } else {
            long long lim = strtoll(out, &end, 10);
            if (*end == 'K' || *end == 'k')
                lim *= 1024, end++;
            else if (*end == 'M' || *end == 'm')
                lim *= 1024 * 1024, end++;
            if (end == out || *end) {
                msg = arena_printf(d->a, "invalid message_size_limit in %s transport: \"%s\"", t->name, out);
                st = ST_DEFER;
            } else if (lim > 0 && ps.message_size > lim) {
                msg = arena_printf(d->a, "message is too big (transport limit = %lld)", lim);
                st = ST_FAIL;
            }
        }
        if (msg) {
            for (address_item *b = batch; b; b = b->next) {
                b->result = st;
                b->message = msg;
            }
            return false;
        }
    }
    /* errors_to (from the router) is the return path of this delivery, so
     * that later bounces go there too (Exim) */
    if (batch->errors_to && *batch->errors_to) {
        spool_msg *c = arena_alloc(d->a, sizeof *c);
        *c = *d->m;
        c->sender = batch->errors_to;
        d->tm = c;
        ps.return_path = batch->errors_to;
        for (address_item *b = batch; b; b = b->next)
            b->return_path = batch->errors_to;
    }
    if ((v = tp_opt(t, "return_path"))) {
        ps.return_path = d->tm->sender;
        char *out = NULL, *err = NULL;
        status st = expand_string(v, d->a, &out, &err);
        if (st == ST_OK) {
            spool_msg *c = arena_alloc(d->a, sizeof *c);
            *c = *d->tm;
            c->sender = out;
            d->tm = c;
            ps.return_path = out;
            for (address_item *b = batch; b; b = b->next)
                b->return_path = out;
        } else if (st != ST_FAIL_FORCED) {
            const char *msg = arena_printf(d->a, "Failed to expand return path \"%s\" in %s transport: %s", v, t->name,
                                           err ? err : "");
            for (address_item *b = batch; b; b = b->next) {
                b->result = ST_DEFER;
                b->message = msg;
            }
            return false;
        }
    }
    return true;
}

/* shadow_transport: after a local transport, its successful addresses go
 * to the shadow too (if shadow_condition allows); the result is noted in
 * the log line as " ST=name" (with the error when it failed), as Exim. */
static void run_shadow(dstate *d, address_item *batch)
{
    const driver_inst *t = batch->transport;
    const char *name = tp_opt(t, "shadow_transport");
    if (!name)
        return;
    const char *cond = tp_opt(t, "shadow_condition");
    if (cond) {
        bool ok = false;
        char *err;
        tp_set_vars(t, batch);
        if (expand_check_bool(cond, d->a, &ok, &err) != ST_OK || !ok)
            return;
    }
    const driver_inst *st = config_driver(DC_TRANSPORT, name);
    transport_driver fn = st ? transport_find(st) : NULL;
    if (!st || !fn || !transport_is_local(st)) {
        log_write(LOG_MAIN | LOG_PANIC, "shadow transport \"%s\" not found", name);
        return;
    }
    address_item *shadow = NULL, **tail = &shadow;
    for (address_item *b = batch; b; b = b->next)
        if (b->result == ST_OK) {
            address_item *c = arena_alloc(d->a, sizeof *c);
            *c = *b;
            c->next = NULL;
            c->transport = st;
            c->result = ST_DEFER;
            c->message = NULL;
            c->return_output = NULL;
            *tail = c;
            tail = &c->next;
        }
    if (!shadow)
        return;
    run_local(d, shadow, fn);
    address_item *c = shadow;
    for (address_item *b = batch; b && c; b = b->next) {
        if (b->result != ST_OK)
            continue;
        b->shadow_message = c->result == ST_OK ? arena_printf(d->a, " ST=%s", name)
            : arena_printf(d->a, " ST=%s (%s%s%s)", name, c->basic_errno > 0 ? strerror(c->basic_errno) : "",
                           c->basic_errno > 0 && c->message ? ": " : "",
                           c->message ? c->message : c->basic_errno > 0 ? "" : "unknown error");
        c = c->next;
    }
}

/* ---- after a transport ran ---------------------------------------------- */

/* A generated address (a redirect's child, an unseen router's copy) was
 * delivered: journal it, so that a later delivery of the message (after a
 * deferral, or a crash) does not deliver it again while its siblings are
 * still pending.  Top-level recipients are recorded by finish_top. */
static void record_delivered(dstate *d, const address_item *a)
{
    if (!a->parent && !a->unique)
        return;
    const char *u = unique_of(a, d->a);
    if (in_nonrcpt(d->m, u))
        return;
    journal(d, u);
    add_nonrcpt(d->m, d->a, u);
}

/* Retry hints, the log line, and the bookkeeping for one address whose
 * transport has given it a result. */
static void finish_delivery(dstate *d, address_item *a, bool more_in_batch)
{
    if (a->result == ST_DEFER && a->freeze)
        d->freeze = true;
    /* duplicates share the result, silently */
    for (address_item *x = a->dups; x; x = x->dup_next) {
        x->result = a->result == ST_OK ? ST_OK : a->result;
        x->message = a->message;
        x->host_used = a->host_used;
        x->host_address_used = a->host_address_used;
        if (x->result == ST_OK) {
            record_delivered(d, x);
            finish_top(d, x, true);
        } else if (x->result == ST_FAIL) {
            x->next = d->failed;
            d->failed = x;
            finish_top(d, x, true);
        } else {
            x->next = d->deferred;
            d->deferred = x;
        }
    }
    if (a->result == ST_OK && !(a->flags & AF_BYPASSED))
        retry_record_success(a, d->a);
    log_result(d, a, more_in_batch);
    if (a->result == ST_DEFER && retry_record_failure(a, d->m, time(NULL), d->a)) {
        a->next = d->timed_out;
        d->timed_out = a;
        return;
    }
    if (a->result == ST_FAIL) {
        a->next = d->failed;
        d->failed = a;
    } else if (a->result == ST_DEFER) {
        a->next = d->deferred;
        d->deferred = a;
    } else if (a->result == ST_OK) {
        note_success(d, a);
        record_delivered(d, a);
    }
    finish_top(d, a, a->result != ST_DEFER);
}

/* Does an option of transport t depend on the variable (its name right
 * after "$" or "{", not followed by a letter or digit: $local_part_data
 * counts for local_part, as in Exim)?  Exim batches only addresses that
 * agree on such variables. */
static bool tp_uses_var(const driver_inst *t, const char *name)
{
    int ng;
    config_generic_opts(t->cls, &ng);
    size_t len = strlen(name);
    for (int pass = 0; pass < 2; pass++) {
        const optval *v = pass ? t->priv : t->generic;
        int n = pass ? t->info->nopts : ng;
        for (int i = 0; i < n; i++) {
            const char *s = v[i].s;
            for (const char *p = s; p && (p = strstr(p, name)); p += len)
                if (p > s && (p[-1] == '$' || p[-1] == '{') && !isalnum((unsigned char)p[len]))
                    return true;
        }
    }
    return false;
}

/* The smtp transport's max_rcpt (expanded, as in Exim 4.97+): recipients
 * per transaction; 0 or unset means no limit from us (a batch stops at
 * 100 000 anyway), a bad value gives Exim's default of 100. */
static long long smtp_max_rcpt(const address_item *a)
{
    const char *v = tp_opt(a->transport, "max_rcpt");
    if (!v)
        return 100;
    route_set_vars(a);
    char *out, *err, *end;
    if (expand_string(v, ps.scratch, &out, &err) != ST_OK)
        return 100;
    long long n = strtoll(out, &end, 10);
    if (end == out || *end)
        return 100;
    return n > 0 ? n : 100000;
}

static bool same_str(const char *x, const char *y)
{
    return x == y || (x && y && !strcmp(x, y));
}

/* Exim's rule for one smtp run: the same transport, an identical host
 * list (both empty counts), the same errors address, header changes and
 * user/group; the router does not matter (domains are split by the
 * transport itself when multi_domain is false). */
static bool same_remote_batch(const address_item *a, const address_item *b)
{
    if (b->transport != a->transport || !same_str(a->errors_to, b->errors_to) ||
        !same_str(a->headers_add, b->headers_add) || !same_str(a->headers_remove, b->headers_remove))
        return false;
    if (a->uid_set != b->uid_set || (a->uid_set && a->uid != b->uid) || a->gid_set != b->gid_set ||
        (a->gid_set && a->gid != b->gid))
        return false;
    const host_item *x = a->hosts, *y = b->hosts;
    for (; x && y; x = x->next, y = y->next)
        if (!same_str(x->name, y->name) || !same_str(x->address, y->address) || x->port != y->port || x->mx != y->mx)
            return false;
    return !x && !y;
}

static const char *batch_id(const address_item *a, arena *ar)
{
    const char *id = tp_opt(a->transport, "batch_id");
    if (!id)
        return NULL;
    route_set_vars(a);
    char *out, *err;
    return expand_string(id, ar, &out, &err) == ST_OK ? out : NULL;
}


/* May b be delivered in the same local transport run as a (Exim's rules
 * for batch_max: same transport, errors address, header changes, user,
 * group and directories, first host, batch_id; the same local part or
 * domain when the transport's options use $local_part or $domain)? */
static bool same_local_batch(const address_item *a, const address_item *b, const char *bid, arena *ar)
{
    if (b->transport != a->transport || (a->flags | b->flags) & (AF_PIPE | AF_FILE))
        return false;
    if (!same_str(a->errors_to, b->errors_to) || !same_str(a->headers_add, b->headers_add) ||
        !same_str(a->headers_remove, b->headers_remove) || !same_str(a->home_dir, b->home_dir) ||
        !same_str(a->current_dir, b->current_dir))
        return false;
    if (a->uid_set != b->uid_set || (a->uid_set && a->uid != b->uid) || a->gid_set != b->gid_set ||
        (a->gid_set && a->gid != b->gid))
        return false;
    if ((a->hosts == NULL) != (b->hosts == NULL) ||
        (a->hosts && !same_str(a->hosts->name, b->hosts->name)))
        return false;
    if (tp_uses_var(a->transport, "local_part") && strcmp(a->local_part, b->local_part) != 0)
        return false;
    if (tp_uses_var(a->transport, "domain") && strcasecmp(a->domain, b->domain) != 0)
        return false;
    if (tp_opt(a->transport, "batch_id")) {
        const char *bb = batch_id(b, ar);
        if (!bid || !bb || strcmp(bid, bb) != 0)
            return false;
    }
    return true;
}

/* Put a routed address on the list for the transports, unless the same
 * address already is there for the same transport (an alias and a
 * recipient, say: delivered once).  false when it was a duplicate. */
static bool add_routed(dstate *d, address_item *a, address_item *routed, address_item ***tail)
{
    (void)d;
    (void)routed;
    **tail = a;
    *tail = &a->next;
    return true;
}

/* Exim's duplicates: an address reached more than once (as a recipient
 * and through an alias, say) is delivered once, by the first in delivery
 * order (local and remote deliveries apart; pipes and files only from the
 * same parent); the others go with it: their recipients appear in its
 * Envelope-to: and share its result, without log lines of their own. */
static address_item *drop_duplicates(address_item *routed, arena *ar)
{
    address_item *kept = NULL, **kt = &kept, *next;
    for (address_item *a = routed; a; a = next) {
        next = a->next;
        a->next = NULL;
        bool local = a->transport && transport_is_local(a->transport);
        bool pfr = (a->flags & (AF_PIPE | AF_FILE)) != 0;
        address_item *orig = NULL;
        for (address_item *k = kept; k && !orig; k = k->next) {
            bool klocal = k->transport && transport_is_local(k->transport);
            if (klocal != local || strcasecmp(unique_of(k, ar), unique_of(a, ar)) != 0)
                continue;
            if (pfr && strcmp(k->address, a->address) != 0)
                continue;
            orig = k;
        }
        if (orig) {
            a->dup_next = NULL;
            address_item **dt = &orig->dups;
            while (*dt)
                dt = &(*dt)->dup_next;
            *dt = a;
            continue;
        }
        *kt = a;
        kt = &a->next;
    }
    return kept;
}

/* May the routing of a be copied to other addresses with its domain
 * (same_domain_copy_routing on a dnslookup or manualroute router that sent
 * it to a remote transport, with no header changes, the address unchanged)? */
static bool copy_routing_ok(const address_item *a, const char *before)
{
    if (!a->router || !a->transport || transport_is_local(a->transport))
        return false;
    const optval *v = driver_opt(a->router, "same_domain_copy_routing");
    if (!v || !v->n)
        return false;
    return !a->headers_add && !a->headers_remove && !strcmp(before, a->address);
}

/* The first half of a routing pass, in the pass's order: addresses
 * delivered by an earlier attempt are done, pipes and files go on to
 * delivery, and (in a queue run) addresses before their routing retry
 * time are deferred.  Returns the rest, reversed: the order they are
 * routed in. */
static address_item *take_pass(dstate *d, const deliver_opts *o, address_item *todo, address_item ***routed_tail)
{
    spool_msg *m = d->m;
    address_item *rest = NULL, *next;
    for (address_item *a = todo; a; a = next) {
        next = a->next;
        a->next = NULL;
        if (++d->naddr > DELIVER_MAX_ADDRESSES) {
            a->result = ST_DEFER;
            a->message = "too many addresses generated for one message";
            log_result(d, a, false);
            continue;
        }
        if (a->parent && in_nonrcpt(m, unique_of(a, d->a))) {
            a->result = ST_OK;
            finish_top(d, a, true);
            continue;
        }
        if ((a->flags & (AF_PIPE | AF_FILE)) && (a->flags & AF_FORBIDDEN)) {
            /* forbid_pipe / forbid_file: fails here (the bounce does
             * not give the reason, as in Exim) */
            a->result = ST_FAIL;
            finish_delivery(d, a, false);
            continue;
        }
        if ((a->flags & (AF_PIPE | AF_FILE)) && a->basic_errno == ERRNO_BADTRANSPORT) {
            /* no pipe_transport/file_transport, or it would not expand: a
             * configuration error, deferred without a retry record */
            a->result = ST_DEFER;
            log_result(d, a, false);
            a->next = d->deferred;
            d->deferred = a;
            continue;
        }
        if (a->flags & (AF_PIPE | AF_FILE)) {
            /* the directories of the router that set it up */
            if (a->router && !a->current_dir) {
                const char *tc = NULL;
                char *terr = NULL;
                if (route_opt_expand(a->router, "transport_current_directory", d->a, &tc, &terr) == ST_OK && tc)
                    a->current_dir = tc;
            }
            **routed_tail = a;
            *routed_tail = &a->next;
            continue;
        }
        /* a queue run (or a message sent down a kept connection) does
         * not route before the retry time of a routing deferral */
        const char *rtext = NULL;
        if (((o->queue_run && !o->force) || ps.deliver_continuing) &&
            !retry_routing_due(a, m->sender, time(NULL), (time_t)m->received, d->a, &rtext)) {
            a->result = ST_DEFER;
            a->basic_errno = ERRNO_RRETRY;
            a->message = "retry time not reached";
            log_result(d, a, false);
            a->message = rtext;
            a->next = d->deferred;
            d->deferred = a;
            continue;
        }
        a->next = rest;
        rest = a;
    }
    return rest;
}

/* -N: the batch counts as delivered without its transport running (the
 * first host of a remote one named, as Exim does). */
static void bypass(address_item *batch)
{
    for (address_item *b = batch; b; b = b->next) {
        b->result = ST_OK;
        b->flags |= AF_BYPASSED;
        if (b->hosts && b->hosts->address) {
            b->host_used = b->hosts->name;
            b->host_address_used = b->hosts->address;
            b->smtp_confirmation = "delivery bypassed by -N option";
        }
    }
}

/* May a queue run give the address to its transport now?  Local
 * transports wait for the retry time of their last deferral; the smtp
 * transport checks its hosts' retry times itself. */
static bool local_due(dstate *d, const address_item *a, const deliver_opts *o)
{
    if (!o->queue_run || o->force || !a->transport || !transport_is_local(a->transport))
        return true;
    return retry_local_due(a, time(NULL), (time_t)d->m->received, d->a);
}

/* Open, lock and read message id; decide what its frozen state allows.
 * ST_OK: go on (*cancel: why every address fails at once, when
 * timeout_frozen_after or -Mg has cancelled it); anything
 * else is deliver_one's result. */
static status open_message(dstate *d, const char *id, const deliver_opts *o, const char **cancel)
{
    if (!spool_id_valid(id))
        return ST_ERROR;
    dns_process_new_message();
    ps.deliver_force = o->force;
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
        if (logsel_on(&cfg->logsel, LS_SKIP_DELIVERY))
            log_write(LOG_MAIN, "Spool file for %s is locked (another process is handling this message)", id);
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
    if (m->dont_deliver)
        ps.dont_deliver = true;         /* received with -N */
    if (ps.verbose)
        fprintf(stderr, "delivering %s\n", id);
    *cancel = NULL;
    long long tfa = cfg_int(MO_timeout_frozen_after);
    long long thaw_after = cfg_int(MO_auto_thaw);
    if (m->frozen && tfa > 0 && time(NULL) - m->received > tfa) {
        /* frozen too long: a bounce is thrown away, anything else fails */
        *cancel = "delivery cancelled; message timed out";
        log_write(LOG_MAIN, "%s cancelled by timeout_frozen_after", id);
        m->frozen = 0;
    } else if (m->frozen && !*m->sender && time(NULL) - m->received >= cfg_int(MO_ignore_bounce_errors_after)) {
        /* a bounce frozen long enough: one more try, its failures ignored */
        log_write(LOG_MAIN, "%s Unfrozen by errmsg timer", id);
        m->frozen = 0;
    } else if (m->frozen && !o->thaw && thaw_after > 0 && *m->sender && time(NULL) - m->frozen > thaw_after) {
        log_write(LOG_MAIN, "%s Unfrozen by auto-thaw", id);
        m->frozen = 0;
    } else if (m->frozen && !o->thaw) {
        if (logsel_on(&cfg->logsel, LS_SKIP_DELIVERY))
            log_write(LOG_MAIN, "%s Message is frozen", id);
        close(d->dfd);
        return ST_SKIP;
    }
    if (m->frozen && o->thaw) {
        m->frozen = 0;
        log_write(LOG_MAIN, "%s Unfrozen by forced delivery", id);
    }
    if (o->give_up && !*cancel) {
        /* -Mg: every address fails; the reason stays out of the bounce */
        struct passwd *pw = getpwuid(getuid());
        log_write(LOG_MAIN, "%s cancelled by %s", id, pw ? pw->pw_name : arena_printf(d->a, "uid %ld", (long)getuid()));
        *cancel = "delivery cancelled by administrator";
    }
    apply_journal(d);
    return ST_OK;
}

/* The message's variables for expansions. */
static void set_message_vars(dstate *d)
{
    const spool_msg *m = d->m;
    /* the message's variables for expansions */
    ps.message_id = m->id;
    ps.sender_address = m->sender;
    ps.msg_headers = m->headers;
    ps.sender_host_address = m->host_address;
    ps.sender_helo_name = m->helo_name;
    ps.received_protocol = m->received_protocol;
    ps.tls_in.cipher = m->tls_cipher;
    ps.tls_in.peerdn = m->tls_peerdn;
    ps.tls_in.sni = m->tls_sni;
    ps.tls_in.ver = m->tls_ver;
    ps.tls_in.certificate_verified = m->tls_certificate_verified;
    ps.message_smtputf8 = m->smtputf8;
    ps.sender_host_authenticated = m->host_auth;
    ps.sender_host_auth_pubname = m->host_auth_pubname;
    ps.authenticated_id = m->auth_id;
    ps.authenticated_sender = m->auth_sender;
    ps.body_linecount = m->body_linecount;
    {
        /* $message_size: the headers and the body (the -D file after its id line) */
        struct stat dsb;
        long size = 0;
        if (fstat(d->dfd, &dsb) == 0 && dsb.st_size > SPOOL_ID_LEN + 3)
            size = (long)dsb.st_size - (SPOOL_ID_LEN + 3);
        for (const spool_header *h = m->headers; h; h = h->next)
            if (h->type != '*')
                size += (long)h->len;
        ps.message_size = size + 1;     /* (Exim counts one more) */
    }
    for (const spool_var *v = m->vars; v; v = v->next) {
        char *e;
        expand_set_acl_var(arena_printf(d->a, "acl_%c%s", v->kind, v->name), v->value, &e);
    }
}

/* The first routing pass: the recipients not yet delivered (failed at
 * once when cancelled). */
static address_item *first_pass(dstate *d, const char *cancel)
{
    spool_msg *m = d->m;
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

    /* more Received: headers than received_headers_max: a mail loop */
    int received = 0;
    for (const spool_header *h = m->headers; h; h = h->next)
        received += h->type == 'P';
    bool loop = received > cfg_int(MO_received_headers_max);
    if (cancel || loop) {
        address_item *next;
        for (address_item *a = todo; a; a = next) {
            next = a->next;
            a->next = NULL;
            a->result = ST_FAIL;
            a->message = cancel ? cancel
                                : "Too many \"Received\" headers - suspected mail loop";
            if (*m->sender || !cancel) {        /* a cancelled bounce is thrown away */
                if (!cancel)                    /* (Exim logs no "**" for a cancelled one) */
                    log_result(d, a, false);
                a->next = d->failed;
                d->failed = a;
            }
            finish_top(d, a, true);
        }
        todo = NULL;
    }
    return todo;
}

/* unseen: a copy of a goes on from the next router; the routed address
 * and the copy become children of an invented parent standing for the
 * original, and the copy goes to the front of the next pass.  true when
 * a's own delivery was done by an earlier attempt. */
static bool unseen_copy(dstate *d, address_item *a, status rs, address_item **next_pass)
{
    address_item *parent = arena_alloc(d->a, sizeof *parent);
    *parent = *a;
    parent->next = NULL;
    parent->errors_to = a->parent ? a->parent->errors_to : NULL;
    address_item *clone = arena_calloc(d->a, sizeof *clone);
    clone->address = a->address;
    clone->local_part = a->local_part;
    clone->domain = a->domain;
    clone->parent = parent;
    clone->rcpt_index = a->rcpt_index;
    clone->flags = a->flags & AF_IGNORE_ERROR;
    clone->dsn_flags = a->dsn_flags;
    clone->dsn_orcpt = a->dsn_orcpt;
    clone->address_data = a->address_data;
    clone->r_vars = a->r_vars;
    clone->errors_to = parent->errors_to;
    clone->start_router = a->router->next;
    clone->result = ST_DEFER;
    a->parent = parent;
    a->unique = arena_printf(d->a, "%s/%s", unique_of(parent, d->a), a->router->name);
    if (a->rcpt_index >= 0)
        d->pending[a->rcpt_index]++;
    clone->next = *next_pass;
    *next_pass = clone;
    if (rs == ST_OK && in_nonrcpt(d->m, a->unique)) {
        /* this copy was delivered by an earlier attempt */
        a->result = ST_OK;
        finish_top(d, a, true);
        return true;
    }
    return false;
}

/* Route everything; returns the routed addresses in routing order. */
static address_item *route_all(dstate *d, const deliver_opts *o, address_item *todo)
{
    spool_msg *m = d->m;
    route_ctx rc = { .a = d->a };
    char *err = NULL;
    dns_resolver *res = dns_process_resolver(&err, d->a);
    if (res)
        rc.dns = dns_iface_unbound(res);

    /* Route everything, in passes as Exim does: each pass (first the
     * recipients, then what they generated, ...) is first taken in order
     * (pipes and files go straight to delivery, addresses before their
     * routing retry time are deferred), then the rest is routed in reverse
     * order; what an address generates goes to the front of the next
     * pass.  Log lines, duplicates and same_domain_copy_routing come out
     * as Exim's. */
    address_item *routed = NULL, **routed_tail = &routed;
    address_item *next_pass = NULL;
    for (;;) {
    if (!todo) {
        if (!next_pass)
            break;
        todo = next_pass;
        next_pass = NULL;
    }
    todo = take_pass(d, o, todo, &routed_tail);
    while (todo) {
        address_item *a = todo;
        todo = a->next;
        a->next = NULL;
        address_item *gen = NULL;
        int depth = 0;
        for (address_item *p = a->parent; p; p = p->parent)
            depth++;
        rc.depth = depth;
        const char *before = a->address;
        status rs = route_address(a, &rc, &gen);
        if ((rs == ST_OK || rs == ST_REROUTED) && a->router && a->router->next && route_opt_bool(a->router, "unseen") &&
            unseen_copy(d, a, rs, &next_pass))
            continue;
        if (rs != ST_DEFER)
            retry_routing_success(a, m->sender, d->a);
        switch (rs) {
        case ST_OK: {
            if (!add_routed(d, a, routed, &routed_tail))
                break;
            /* same_domain_copy_routing: the other unrouted addresses with
             * this domain get the same routing without being routed */
            if (copy_routing_ok(a, before)) {
                for (address_item **pp = &todo; *pp;) {
                    address_item *x = *pp;
                    if ((x->flags & (AF_PIPE | AF_FILE)) || !x->domain || strcasecmp(x->domain, a->domain) != 0) {
                        pp = &x->next;
                        continue;
                    }
                    *pp = x->next;
                    x->next = NULL;
                    x->router = a->router;
                    x->transport = a->transport;
                    x->hosts = a->hosts;
                    x->errors_to = a->errors_to ? a->errors_to : x->errors_to;
                    x->address_data = a->address_data;
                    x->domain_data = a->domain_data;
                    add_routed(d, x, routed, &routed_tail);
                }
            }
            break;
        }
        case ST_REROUTED: {
            int k = 0;
            for (address_item *c = gen; c; c = c->next)
                k++;
            if (a->rcpt_index >= 0)
                d->pending[a->rcpt_index] += k - 1;
            address_item **gt = &gen;
            while (*gt)
                gt = &(*gt)->next;
            *gt = next_pass;
            next_pass = gen;
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
            if (a->freeze)
                d->freeze = true;
            log_result(d, a, false);
            if (retry_record_failure(a, m, time(NULL), d->a)) {
                a->next = d->timed_out;
                d->timed_out = a;
            } else {
                a->next = d->deferred;
                d->deferred = a;
            }
            break;
        }
    }
    }
    return routed;
}

/* The routed addresses in the order Exim delivers them, without
 * duplicates. */
static address_item *delivery_order(dstate *d, address_item *routed)
{
    /* Exim's delivery order: the most deeply generated addresses first
     * (redirect children before top-level recipients), otherwise in
     * recipient order (the reverse of routing order).  Log lines and
     * batches come out as Exim's do. */
    {
        int n = 0;
        for (address_item *x = routed; x; x = x->next)
            n++;
        if (n > 1) {
            address_item **v = arena_alloc(d->a, sizeof *v * (size_t)n);
            int *depth = arena_alloc(d->a, sizeof *depth * (size_t)n);
            int i = 0;
            for (address_item *x = routed; x; x = x->next, i++) {
                v[i] = x;
                depth[i] = 0;
                for (address_item *p = x->parent; p; p = p->parent)
                    depth[i]++;
            }
            for (int j = 0; j < n / 2; j++) {   /* routing order, reversed */
                address_item *t = v[j];
                int td = depth[j];
                v[j] = v[n - 1 - j], depth[j] = depth[n - 1 - j];
                v[n - 1 - j] = t, depth[n - 1 - j] = td;
            }
            for (int j = 1; j < n; j++) {       /* stable insertion sort, deepest first */
                address_item *kv = v[j];
                int kd = depth[j], k = j - 1;
                while (k >= 0 && depth[k] < kd) {
                    v[k + 1] = v[k];
                    depth[k + 1] = depth[k];
                    k--;
                }
                v[k + 1] = kv;
                depth[k + 1] = kd;
            }
            /* local deliveries all go before remote ones, as in Exim */
            address_item **w = arena_alloc(d->a, sizeof *w * (size_t)n);
            int k = 0;
            for (int pass = 0; pass < 2; pass++)
                for (i = 0; i < n; i++) {
                    bool local = !v[i]->transport || transport_is_local(v[i]->transport);
                    if (local == (pass == 0))
                        w[k++] = v[i];
                }
            for (i = 0; i < n; i++)
                w[i]->next = i + 1 < n ? w[i + 1] : NULL;
            routed = w[0];
        }
    }

    return drop_duplicates(routed, d->a);
}

/* Exim keeps a remote batch's retry items on its first address: when
 * that one times out, the batch's other deferred addresses fail with it,
 * whatever their own retry rules say. */
static void batch_times_out_with_top(dstate *d, const address_item *top, address_item **done, int n)
{
    bool top_out = false;
    for (const address_item *x = d->timed_out; x && !top_out; x = x->next)
        top_out = x == top;
    if (!top_out)
        return;
    for (int i = 0; i < n; i++) {
        if (done[i] == top)
            continue;
        for (address_item **pp = &d->deferred; *pp; pp = &(*pp)->next)
            if (*pp == done[i]) {
                *pp = done[i]->next;
                done[i]->flags |= AF_WITH_TOP;
                done[i]->next = d->timed_out;
                d->timed_out = done[i];
                break;
            }
    }
}

/* Run the transports for the routed addresses. */
static void run_transports(dstate *d, const deliver_opts *o, address_item *routed)
{
    /* addresses one at a time or in batches (smtp: same hosts; local: batch_max) */
    while (routed) {
        address_item *a = routed;
        routed = a->next;
        a->next = NULL;
        transport_driver fn = a->transport ? transport_find(a->transport) : NULL;
        if (!local_due(d, a, o)) {
            a->result = ST_DEFER;
            a->basic_errno = ERRNO_LRETRY;
            a->message = "Retry time not yet reached";
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
            finish_delivery(d, a, false);
            continue;
        }
        bool local = transport_is_local(a->transport);
        /* gather the addresses that can go in the same run: for smtp the
         * same host list (up to 100 recipients), for local transports
         * those batch_max allows */
        address_item *batch = a, **bt = &a->next, **pp = &routed;
        long long max = local ? (driver_opt(a->transport, "batch_max") ? driver_opt(a->transport, "batch_max")->n : 1)
                              : smtp_max_rcpt(a);
        const char *bid = local && max > 1 ? batch_id(a, d->a) : NULL;
        int nb = 1;
        while (*pp && nb < max) {
            address_item *b = *pp;
            bool same = local ? same_local_batch(a, b, bid, d->a) : same_remote_batch(a, b);
            if (same && local_due(d, b, o)) {
                *pp = b->next;
                b->next = NULL;
                *bt = b;
                bt = &b->next;
                nb++;
            } else {
                pp = &b->next;
            }
        }
        double t0 = now_secs();
        if (ps.dont_deliver) {
            bypass(batch);
        } else if (transport_checks(d, batch)) {
            if (local) {
                run_local(d, batch, fn);
                d->tm = NULL;                   /* the shadow gets the message as it came */
                ps.return_path = NULL;
                run_shadow(d, batch);
            } else {
                /* remote deliveries do not need root */
                tp_ctx tc = { .m = d->tm, .data_fd = d->dfd, .ss = &d->ss, .a = d->a, .gen_fd = -1 };
                fn(a->transport, batch, &tc);
                if (tc.log_order)
                    batch = tc.log_order;
            }
        }
        for (address_item *b = batch; b; b = b->next)
            b->delivery_secs = now_secs() - t0;
        d->tm = NULL;
        ps.return_path = NULL;
        /* the first delivered address of a batch is logged "=>", the others "->" */
        bool first_ok = false;
        address_item *next;
        int nb_done = 0;
        address_item **done = arena_alloc(d->a, sizeof *done * (size_t)nb);
        for (address_item *b = batch; b; b = next) {
            next = b->next;
            b->next = NULL;
            finish_delivery(d, b, b->result == ST_OK && first_ok);
            if (b->result == ST_OK)
                first_ok = true;
            if (nb_done < nb)
                done[nb_done++] = b;
        }
        if (!local)
            batch_times_out_with_top(d, a, done, nb_done);
    }
}

static void fail_timed_out(dstate *d)
{
    spool_msg *m = d->m;
    /* deferred addresses past their retry rules fail now (last deferred
     * first, as Exim logs them); those that time out with the top of
     * their batch go to the failed list together with it, in their order */
    address_item *block = NULL, **btail = &block;
    for (address_item *a = d->timed_out, *next; a; a = next) {
        next = a->next;
        a->next = NULL;
        a->result = ST_FAIL;
        a->flags |= AF_RETRY_TIMEDOUT;
        a->message = a->message ? arena_printf(d->a, "%s: retry timeout exceeded", a->message) : "retry timeout exceeded";
        a->user_message = a->user_message ? arena_printf(d->a, "%s: retry timeout exceeded", a->user_message)
                                          : "retry timeout exceeded";
        /* Exim's wording: the address and its immediate parent */
        const char *line = a->parent ? arena_printf(d->a, "** %s <%s>: retry timeout exceeded", a->address, a->parent->address)
                                     : arena_printf(d->a, "** %s: retry timeout exceeded", a->address);
        log_write(LOG_MAIN, "%s %s", m->id, line);
        spool_msglog(&d->ss, m->id, line);
        *btail = a;
        btail = &a->next;
        if (!(a->flags & AF_WITH_TOP)) {
            *btail = d->failed;
            d->failed = block;
            block = NULL;
            btail = &block;
        }
        finish_top(d, a, true);
    }
    if (block) {
        *btail = d->failed;
        d->failed = block;
    }
}

/* Bounces, success DSNs and delay warnings.  Returns whether the
 * message is to be frozen (*why: the reason shown after "Frozen"). */
static bool send_reports(dstate *d, const char **why)
{
    spool_msg *m = d->m;
    /* DSN NOTIFY: NEVER, or a list without FAILURE, means no bounce for that address */
    /* (in d->failed's order, the last failure first, as Exim lists them) */
    address_item *bounce_list = NULL, **bl_tail = &bounce_list;
    for (address_item *f = d->failed, *next; f; f = next) {
        next = f->next;
        f->next = NULL;
        if ((f->dsn_flags & SPOOL_DSN_NEVER) || (f->dsn_flags && !(f->dsn_flags & SPOOL_DSN_FAILURE))) {
            log_write(LOG_MAIN, "%s %s: error ignored: RFC 3461 DSN, failure notify not requested", m->id, f->address);
            continue;
        }
        *bl_tail = f;
        bl_tail = &f->next;
    }
    /* Bounces: one per recipient (the errors_to address of the router that
     * handled an address, else the sender), each listing its addresses in
     * order; errors_to = "" means nobody is told.  A failed bounce (sender
     * <>, no errors_to) freezes the message. */
    bool freeze = d->freeze;    /* a filter's freeze, freeze_exec_fail, freeze_signal */
    while (bounce_list) {
        address_item *f0 = bounce_list;
        const char *rcpt = f0->errors_to ? f0->errors_to : m->sender;
        address_item *group = NULL, **gt = &group;
        for (address_item **pp = &bounce_list; *pp;) {
            address_item *f = *pp;
            const char *r = f->errors_to ? f->errors_to : m->sender;
            if (strcasecmp(r, rcpt) != 0) {
                pp = &f->next;
                continue;
            }
            *pp = f->next;
            f->next = NULL;
            *gt = f;
            gt = &f->next;
        }
        if (f0->errors_to && !*f0->errors_to)
            continue;                                   /* errors_to = "": no report */
        if (*rcpt) {
            char *berr = NULL;
            const char *bid = bounce_send(m, group, d->dfd, d->a, &berr);
            if (!bid) {
                log_write(LOG_MAIN | LOG_PANIC, "%s: cannot create the bounce message: %s", m->id, berr ? berr : "");
                freeze = true;
            } else {
                deliver_generated(bid);
            }
        } else {
            /* nobody to tell: a failure that timed out, or one older than
             * ignore_bounce_errors_after, is ignored; any other freezes the
             * message, its address staying undelivered */
            bool old = time(NULL) - m->received >= cfg_int(MO_ignore_bounce_errors_after);
            for (address_item *f = group; f; f = f->next) {
                if (old || (f->flags & AF_RETRY_TIMEDOUT)) {
                    log_write(LOG_MAIN, "%s %s%s%s%s: error ignored", m->id, f->address, f->parent ? " <" : "",
                              f->parent ? f->parent->address : "", f->parent ? ">" : "");
                    continue;
                }
                *why = " (delivery error message)";
                freeze = true;
                unfinish_top(d, f);
            }
        }
    }
    /* success notices for NOTIFY=SUCCESS (unless the next hop took the DSN request on) */
    if (d->delivered && *m->sender) {
        char *derr = NULL;
        const char *did = dsn_send(m, d->delivered, d->delivered_kind, d->dfd, d->a, &derr);
        if (did)
            deliver_generated(did);
    }
    /* delay warnings */
    if (d->deferred && *m->sender && !freeze)
        delay_warning(d);
    return freeze;
}

/* The end of a delivery attempt: remove a finished message, or rewrite
 * -H with what is done. */
static status finish_attempt(dstate *d, bool freeze, const char *freeze_why)
{
    spool_msg *m = d->m;
    const char *id = m->id;
    char *err = NULL;
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
        if (logsel_on(&cfg->logsel, LS_QUEUE_TIME_OVERALL))
            log_write(LOG_MAIN, "%s Completed QT=%s", id,
                      log_time(now_secs() - ((double)m->received + m->received_usec / 1e6), d->a));
        else
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
        log_write(LOG_MAIN, "%s Frozen%s", id, freeze_why);
    close(d->dfd);
    return ST_DEFER;
}

static status deliver_one(const char *id, const deliver_opts *o)
{
    dstate D = { 0 }, *d = &D;
    const char *cancel = NULL;
    status st = open_message(d, id, o, &cancel);
    if (st != ST_OK)
        return st;
    set_message_vars(d);
    address_item *routed = route_all(d, o, first_pass(d, cancel));
    run_transports(d, o, delivery_order(d, routed));
    fail_timed_out(d);
    const char *why = "";
    bool freeze = send_reports(d, &why);
    return finish_attempt(d, freeze, why);
}

/* ---- connection reuse ------------------------------------------------------ */

static bool on_spool(const char *id)
{
    spool_settings ss = settings();
    char path[PATH_MAX];
    struct stat sb;
    if (stat(spool_path(&ss, id, 'H', path, sizeof path), &sb) == 0)
        return true;
    ss.split = !ss.split;
    return stat(spool_path(&ss, id, 'H', path, sizeof path), &sb) == 0;
}

/* After a delivery that left an SMTP connection open: messages listed as
 * waiting for that host (wait-<transport>) go down the same connection,
 * each delivered by a child process that inherits it (so one message's
 * trouble costs only that message).  A child reports by its exit status
 * whether the connection is still good for the next. */
static void deliver_continue(const char *id, const deliver_opts *o)
{
    const char *tp, *host;
    while (smtp_kept_host(&tp, &host)) {
        const char *next = smtp_wait_next(tp, host, id, ps.scratch);
        if (!next)
            break;
        if (!spool_id_valid(next) || !on_spool(next))
            continue;
        if (!smtp_kept_ready())        /* still there? */
            break;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0) {
            ps.pid = getpid();
            ps.deliver_continuing = true;
            int fd = smtp_kept_fd();
            expand_reset_message();
            deliver_one(next, o);
            fflush(NULL);
            _exit(smtp_kept_fd() == fd ? 0 : 1);
        }
        int wst;
        while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
            smtp_kept_close(false);     /* in an unknown state */
            break;
        }
        smtp_kept_sent();
    }
    smtp_kept_close(true);
}

status deliver_message(const char *id, const deliver_opts *o)
{
    status st = deliver_one(id, o);
    if (!ps.deliver_continuing)
        deliver_continue(id, o);
    return st;
}
