/* daemon.c: postern -bd.  Binds the listening sockets, drops privilege to
 * exim_user, and forks one child per connection (no exec), enforcing
 * smtp_accept_max, smtp_accept_max_per_host and smtp_accept_reserve.
 * SIGHUP re-reads the configuration (sockets are kept); SIGTERM stops. */
#include "smtp/daemon.h"
#include "config/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "smtp/session.h"
#include "deliver/deliver.h"
#include "spool/spool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAEMON_MAX_LISTEN 32
#define QUEUE_RUNNERS_MAX 64

typedef struct listener {
    int fd;
    char addr[64];
    int port;
} listener;

typedef struct child {
    pid_t pid;
    char ip[64];
} child;

static volatile sig_atomic_t got_hup, got_term, got_chld;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else if (sig == SIGCHLD)
        got_chld = 1;
    else
        got_term = 1;
}

static int parse_port(const char *s)
{
    if (!*s)
        return -1;
    char *e;
    long v = strtol(s, &e, 10);
    if (!*e && v > 0 && v < 65536)
        return (int)v;
    struct servent *se = getservbyname(s, "tcp");
    return se ? ntohs((uint16_t)se->s_port) : -1;
}

/* An interface item: "addr", "addr.port", "[addr]:port" or "<; ::1.25". */
static bool split_iface(const char *item, char *addr, size_t alen, int *port)
{
    *port = 0;
    if (item[0] == '[') {
        const char *rb = strchr(item, ']');
        if (!rb)
            return false;
        snprintf(addr, alen, "%.*s", (int)(rb - item - 1), item + 1);
        if (rb[1] == ':' || rb[1] == '.')
            *port = parse_port(rb + 2);
        return *port >= 0;
    }
    snprintf(addr, alen, "%s", item);
    char *dot = strrchr(addr, '.');
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET6, addr, &a6) == 1 || inet_pton(AF_INET, addr, &a4) == 1)
        return true;
    if (dot) {
        *dot = '\0';
        *port = parse_port(dot + 1);
        if (*port > 0 && (inet_pton(AF_INET6, addr, &a6) == 1 || inet_pton(AF_INET, addr, &a4) == 1))
            return true;
    }
    return false;
}

static int open_listener(const char *addr, int port, char **err, arena *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int fam;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        fam = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof *s6;
    } else if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        fam = AF_INET;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof *s4;
    } else {
        *err = arena_printf(a, "invalid interface address \"%s\"", addr);
        return -1;
    }
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = arena_printf(a, "socket: %s", strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fam == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        *err = arena_printf(a, "cannot bind to %s port %d: %s", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    long long backlog = cfg_int(MO_smtp_connect_backlog);
    if (listen(fd, backlog > 0 ? (int)backlog : 20) != 0) {
        *err = arena_printf(a, "listen on %s port %d: %s", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int build_listeners(const daemon_args *da, listener *ls, char **err)
{
    const char *ifaces = cfg_str(MO_local_interfaces);
    const char *ports = cfg_str(MO_daemon_smtp_ports);
    if (!ifaces)
        ifaces = "<; 0.0.0.0 ; ::0";
    if (!ports)
        ports = "smtp";
    if (da->override) {
        /* -oX: a port list, or a list of interfaces (with .port) */
        bool only_ports = strspn(da->override, "0123456789,: ") == strlen(da->override);
        if (only_ports)
            ports = da->override;
        else
            ifaces = da->override;
    }
    int n = 0;
    int isep = 0;
    const char *il = ifaces;
    char *item;
    while ((item = list_next(&il, &isep, ps.scratch))) {
        char addr[64];
        int port;
        if (!split_iface(item, addr, sizeof addr, &port)) {
            *err = arena_printf(ps.scratch, "malformed interface \"%s\" in local_interfaces", item);
            return -1;
        }
        const char *pl = ports;
        int psep = ',';  /* daemon_smtp_ports: colon or comma */
        if (strchr(pl, ':') && !strchr(pl, ','))
            psep = ':';
        char *pitem;
        int nports = 0;
        int plist[32];
        if (port > 0) {
            plist[nports++] = port;
        } else {
            while ((pitem = list_next(&pl, &psep, ps.scratch)) && nports < 32) {
                int pp = parse_port(pitem);
                if (pp <= 0) {
                    *err = arena_printf(ps.scratch, "invalid port \"%s\" in daemon_smtp_ports", pitem);
                    return -1;
                }
                plist[nports++] = pp;
            }
        }
        for (int i = 0; i < nports; i++) {
            if (n == DAEMON_MAX_LISTEN) {
                *err = "too many listening sockets";
                return -1;
            }
            int fd = open_listener(addr, plist[i], err, ps.scratch);
            if (fd < 0)
                return -1;
            ls[n].fd = fd;
            snprintf(ls[n].addr, sizeof ls[n].addr, "%s", addr);
            ls[n].port = plist[i];
            n++;
        }
    }
    if (n == 0) {
        *err = "no listening sockets configured";
        return -1;
    }
    return n;
}

/* Become exim_user/exim_group.  Returns false with *err when impossible. */
static bool drop_privilege(char **err)
{
    if (geteuid() != 0)
        return true;   /* not root: nothing to drop */
    const char *user = cfg_str(MO_exim_user);
    const char *group = cfg_str(MO_exim_group);
    struct passwd *pw = user ? getpwnam(user) : NULL;
    if (!pw) {
        char *e;
        long uid = user ? strtol(user, &e, 10) : -1;
        if (!user || *e || uid < 0) {
            *err = arena_printf(ps.scratch, "exim_user \"%s\" does not exist (create it, e.g. "
                                "\"useradd --system %s\", or set exim_user)", user ? user : "", user ? user : "postern");
            return false;
        }
        pw = getpwuid((uid_t)uid);
        if (!pw) {
            *err = arena_printf(ps.scratch, "exim_user uid %ld has no passwd entry", uid);
            return false;
        }
    }
    gid_t gid = pw->pw_gid;
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            *err = arena_printf(ps.scratch, "exim_group \"%s\" does not exist", group);
            return false;
        }
        gid = gr->gr_gid;
    }
    if (pw->pw_uid == 0)
        return true;   /* configured to run as root */
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
        *err = arena_printf(ps.scratch, "cannot become %s: %s", pw->pw_name, strerror(errno));
        return false;
    }
    return true;
}

static bool prepare_spool(char **err)
{
    const char *dir = cfg_str(MO_spool_directory);
    spool_settings ss = { .directory = dir, .split = cfg_bool(MO_split_spool_directory) };
    if (spool_make_dirs(&ss, NULL, err) != ST_OK)
        return false;
    char path[4096];
    snprintf(path, sizeof path, "%s/log", dir);
    mkdir(path, 0750);
    snprintf(path, sizeof path, "%s/db", dir);
    mkdir(path, 0750);
    if (geteuid() == 0) {
        struct passwd *pw = cfg_str(MO_exim_user) ? getpwnam(cfg_str(MO_exim_user)) : NULL;
        if (pw) {
            const char *sub[] = { "", "/input", "/log", "/db" };
            for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
                snprintf(path, sizeof path, "%s%s", dir, sub[i]);
                if (chown(path, pw->pw_uid, pw->pw_gid) != 0)
                    log_write(LOG_MAIN, "warning: cannot chown %s: %s", path, strerror(errno));
            }
            /* The log files exist and belong to exim_user before any
             * connection process (which runs as exim_user) appends to them:
             * a file the root daemon created would refuse their lines. */
            static const char *const kinds[] = { "main", "reject", "panic" };
            for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                char lp[4096];
                log_path_for(kinds[i], lp, sizeof lp);
                if (!lp[0])
                    continue;
                int fd = open(lp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
                if (fd < 0)
                    continue;
                struct stat sb;
                if (fstat(fd, &sb) == 0 && sb.st_uid == 0 && fchown(fd, pw->pw_uid, pw->pw_gid) != 0)
                    log_write(LOG_MAIN, "warning: cannot give %s to %s: %s", lp, pw->pw_name, strerror(errno));
                close(fd);
            }
        }
    }
    return true;
}

static int count_host(const child *cs, int n, const char *ip)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (cs[i].pid && strcmp(cs[i].ip, ip) == 0)
            k++;
    return k;
}

static void reap(child *cs, int max, int *nchildren)
{
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < max; i++)
            if (cs[i].pid == pid) {
                cs[i].pid = 0;
                (*nchildren)--;
                break;
            }
        if (WIFSIGNALED(status))
            log_write(LOG_MAIN | LOG_PANIC, "SMTP connection process %d killed by signal %d", (int)pid, WTERMSIG(status));
    }
}

int daemon_run(const daemon_args *da)
{
    char *err = NULL;
    listener ls[DAEMON_MAX_LISTEN];
    if (!prepare_spool(&err)) {
        fprintf(stderr, "postern: %s\n", err);
        return EXIT_FAILURE;
    }
    int nl = build_listeners(da, ls, &err);
    if (nl < 0) {
        fprintf(stderr, "postern: %s\n", err);
        log_write(LOG_MAIN | LOG_PANIC, "daemon: %s", err);
        return EXIT_FAILURE;
    }
    /* The daemon keeps its privilege (delivery processes it starts need it
     * for local deliveries); each SMTP connection process drops it.  Check
     * now that exim_user can be used, so a bad setting stops the start. */
    {
        pid_t probe = fork();
        if (probe == 0)
            _exit(drop_privilege(&err) ? 0 : 1);
        int wst = 0;
        waitpid(probe, &wst, 0);
        if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
            drop_privilege(&err);     /* for the message, in this process... */
            if (!err)
                err = "cannot become exim_user";
            fprintf(stderr, "postern: %s\n", err);
            log_write(LOG_MAIN | LOG_PANIC, "daemon: %s", err);
            return EXIT_FAILURE;
        }
    }
    int notify[2];
    if (pipe2(notify, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "postern: pipe: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    if (!da->foreground) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "postern: fork: %s\n", strerror(errno));
            return EXIT_FAILURE;
        }
        if (pid > 0)
            return EXIT_SUCCESS;
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            if (devnull > 2)
                close(devnull);
        }
    }
    ps.pid = getpid();
    /* a copy: the configuration may be replaced by SIGHUP */
    const char *pidfile = da->pidfile ? da->pidfile : cfg_str(MO_pid_file_path);
    pidfile = pidfile ? arena_strdup(ps.conn, pidfile) : NULL;
    if (pidfile && *pidfile) {
        /* written under a temporary name and renamed: readers never see a
         * half-written file */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.%d", pidfile, (int)getpid());
        FILE *pf = fopen(tmp, "w");
        if (pf && fprintf(pf, "%d\n", (int)getpid()) > 0 && fclose(pf) == 0 && rename(tmp, pidfile) == 0) {
            pf = NULL;
        } else {
            if (pf)
                fclose(pf);
            unlink(tmp);
            log_write(LOG_MAIN, "cannot write pid file %s: %s", pidfile, strerror(errno));
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    {
        gstr g;
        gstr_init(&g, ps.scratch, 128);
        for (int i = 0; i < nl; i++)
            gstr_printf(&g, "%s[%s]:%d", i ? " " : "", ls[i].addr, ls[i].port);
        if (da->queue_interval > 0) {
        char iv[64];
        log_write(LOG_MAIN, "daemon started: pid=%d, -q%s, listening for SMTP on %s", (int)getpid(),
                  opt_format_time(da->queue_interval, iv, sizeof iv), g.s);
    } else {
        log_write(LOG_MAIN, "daemon started: pid=%d, no queue runs, listening for SMTP on %s", (int)getpid(), g.s);
    }
    }

    long long accept_max = cfg_int(MO_smtp_accept_max);
    int slots = accept_max > 0 ? (int)accept_max : 1000;
    child *cs = calloc((size_t)slots, sizeof *cs);
    if (!cs)
        panic("daemon: out of memory");
    int nchildren = 0;
    struct pollfd pfd[DAEMON_MAX_LISTEN + 1];
    for (int i = 0; i < nl; i++)
        pfd[i] = (struct pollfd){ .fd = ls[i].fd, .events = POLLIN };
    pfd[nl] = (struct pollfd){ .fd = notify[0], .events = POLLIN };
    time_t next_queue_run = da->queue_interval > 0 ? time(NULL) : 0;
    pid_t runners[QUEUE_RUNNERS_MAX] = { 0 };

    while (!got_term) {
        if (got_chld) {
            got_chld = 0;
            reap(cs, slots, &nchildren);
        }
        if (got_hup) {
            got_hup = 0;
            config *nc;
            char *cerr;
            if (config_load(da->load, &nc, &cerr) == ST_OK) {
                config *old = (config *)cfg;
                config_set_current(nc);
                log_settings lset = {
                    .file_path = cfg_str(MO_log_file_path), .spool_directory = cfg_str(MO_spool_directory),
                    .pid = logsel_on(&cfg->logsel, LS_PID),
                };
                log_configure(&lset);
                config_free(old);
                log_write(LOG_MAIN, "pid %d: SIGHUP received: configuration re-read "
                          "(listening sockets unchanged)", (int)getpid());
            } else {
                log_write(LOG_MAIN | LOG_PANIC, "SIGHUP: configuration not re-read: %s", cerr);
            }
        }
        if (next_queue_run && time(NULL) >= next_queue_run) {
            next_queue_run = time(NULL) + da->queue_interval;
            /* queue_run_max: at most that many queue runners at once */
            long long qmax = 5;
            const char *qm = cfg_str(MO_queue_run_max);
            char *qout, *qerr;
            if (qm && expand_string(qm, ps.scratch, &qout, &qerr) == ST_OK)
                opt_parse_int(qout, &qmax);
            int running = 0;
            for (int k = 0; k < QUEUE_RUNNERS_MAX; k++)
                if (runners[k] > 0 && kill(runners[k], 0) == 0)
                    running++;
                else
                    runners[k] = 0;
            if (qmax > 0 && running >= qmax)
                goto no_run;
            pid_t qr = fork();
            if (qr == 0) {
                for (int k = 0; k < nl; k++)
                    close(ls[k].fd);
                signal(SIGHUP, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGCHLD, SIG_DFL);
                ps.pid = getpid();
                deliver_opts qo = { 0 };
                _exit(deliver_queue_run(&qo));
            }
            for (int k = 0; k < QUEUE_RUNNERS_MAX; k++)
                if (!runners[k]) {
                    runners[k] = qr;
                    break;
                }
        }
    no_run:;
        int r = poll(pfd, (nfds_t)nl + 1, 1000);
        if (r <= 0)
            continue;
        if (pfd[nl].revents & POLLIN) {
            /* message ids from SMTP connection processes: deliver them now */
            char buf[4096];
            ssize_t n = read(notify[0], buf, sizeof buf - 1);
            if (n > 0) {
                buf[n] = '\0';
                for (char *id = strtok(buf, "\n"); id; id = strtok(NULL, "\n"))
                    if (spool_id_valid(id))
                        deliver_after_receive(id, false, false);
            }
        }
        for (int i = 0; i < nl; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            struct sockaddr_storage peer, local;
            socklen_t plen = sizeof peer, llen = sizeof local;
            int fd = accept4(ls[i].fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            getsockname(fd, (struct sockaddr *)&local, &llen);
            char pip[64] = "", lip[64] = "";
            int pport = 0, lport = 0;
            if (peer.ss_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&peer;
                inet_ntop(AF_INET6, &s6->sin6_addr, pip, sizeof pip);
                pport = ntohs(s6->sin6_port);
                struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
                inet_ntop(AF_INET6, &l6->sin6_addr, lip, sizeof lip);
                lport = ntohs(l6->sin6_port);
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&peer;
                inet_ntop(AF_INET, &s4->sin_addr, pip, sizeof pip);
                pport = ntohs(s4->sin_port);
                struct sockaddr_in *l4 = (struct sockaddr_in *)&local;
                inet_ntop(AF_INET, &l4->sin_addr, lip, sizeof lip);
                lport = ntohs(l4->sin_port);
            }
            /* limits */
            const char *why = NULL;
            long long reserve = cfg_int(MO_smtp_accept_reserve);
            if (nchildren >= slots) {
                why = "Too many concurrent SMTP connections; please try again later.";
            } else if (reserve > 0 && nchildren >= slots - reserve) {
                const char *rh = cfg_str(MO_smtp_reserve_hosts);
                const char *v;
                char *e;
                if (!rh || match_ip(pip, rh, ps.scratch, &v, &e) != ST_OK)
                    why = "Too many concurrent SMTP connections; please try again later.";
            }
            if (!why && cfg_str(MO_smtp_accept_max_per_host)) {
                char *out, *e;
                long long per = 0;
                ps.sender_host_address = pip;
                if (expand_string(cfg_str(MO_smtp_accept_max_per_host), ps.scratch, &out, &e) == ST_OK)
                    opt_parse_int(out, &per);
                ps.sender_host_address = NULL;
                if (per > 0 && count_host(cs, slots, pip) >= per)
                    why = "Too many concurrent SMTP connections from this IP address; please try again later.";
            }
            if (why && logsel_on(&cfg->logsel, LS_CONNECTION_REJECT))
                log_write(LOG_MAIN | LOG_REJECT, "Connection from [%s] refused: %s", pip, why);
            pid_t pid = fork();
            if (pid == 0) {
                for (int k = 0; k < nl; k++)
                    close(ls[k].fd);
                close(notify[0]);
                signal(SIGHUP, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGCHLD, SIG_DFL);
                ps.pid = getpid();
                char *perr = NULL;
                if (!drop_privilege(&perr)) {
                    log_write(LOG_MAIN | LOG_PANIC, "SMTP connection process: %s", perr ? perr : "");
                    _exit(1);
                }
                /* the write end stays open across the privilege change */
                int wfd = fcntl(notify[1], F_DUPFD_CLOEXEC, 3);
                ps.deliver_notify_fd = wfd;
                smtp_params sp = {
                    .mode = SMTP_DAEMON, .in = fd, .out = fd,
                    .remote_ip = pip, .remote_port = pport, .local_ip = lip, .local_port = lport,
                    .drop_limit_reached = why != NULL, .drop_reason = why,
                    .connection_count = nchildren + 1,
                };
                int rc = smtp_session(&sp);
                close(fd);
                _exit(rc);
            }
            close(fd);
            if (pid < 0) {
                log_write(LOG_MAIN | LOG_PANIC, "fork for SMTP connection failed: %s", strerror(errno));
                continue;
            }
            if (!why) {
                for (int k = 0; k < slots; k++)
                    if (!cs[k].pid) {
                        cs[k].pid = pid;
                        snprintf(cs[k].ip, sizeof cs[k].ip, "%s", pip);
                        nchildren++;
                        break;
                    }
            }
        }
        arena_reset(ps.scratch);
    }
    log_write(LOG_MAIN, "pid %d: SIGTERM received: daemon terminating", (int)getpid());
    for (int i = 0; i < nl; i++)
        close(ls[i].fd);
    if (pidfile && *pidfile)
        unlink(pidfile);
    free(cs);
    return EXIT_SUCCESS;
}
