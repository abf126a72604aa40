/* pipe.c: the pipe transport, with the options and wording of Exim's.
 *
 * The command (the transport's "command", or the text of a "|command"
 * address from a redirect) is split into arguments here and each argument
 * expanded on its own ($pipe_addresses gives one argument per address of a
 * batch, $address_pipe with force_command the words of the redirected
 * pipe), or, with use_shell, expanded whole and given to /bin/sh -c.  It
 * runs in its own process group with Exim's environment, umask and
 * core-dump limit; the message goes to its standard input (with
 * message_prefix/suffix, BSMTP envelope, check_string escaping), its
 * standard output and error are read back (max_output).  Exit status 0
 * delivers; one of temp_errors defers; others fail, unless ignore_status;
 * a timeout fails (or defers: timeout_defer).  The output can be logged
 * (log_output, log_fail_output, log_defer_output) and returned to the
 * sender (return_output, return_fail_output).
 *
 * This runs in the local delivery child (deliver.c run_local), already
 * under the delivery's uid/gid, so what needs the delivery process is not
 * done here: freezing the message (freeze_exec_fail, freeze_signal: the
 * address is deferred with Exim's message, but not frozen yet),
 * pipe_as_creator (the uid/gid are chosen before the transport runs), and
 * the output log line is written from here, which works only when this
 * process may write the main log. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIPE_EXTRA_ARGS  60                 /* Exim: arguments allowed beyond one per address */
#define PIPE_ENV_SLOTS   50                 /* Exim's environment array: 48 settings at most */
#define PIPE_READ_CHUNK  16384              /* output read at a time (Exim's big buffer) */
#define PIPE_KEEP_MAX    (16 * 1024 * 1024) /* output kept for the log and the bounce */
#define PIPE_EXEC_FAILED 127                /* exit code of a child that could not exec */
#define PIPE_PATH_PART   256                /* Exim: each part of "dir/command" is cut here */
#define PIPE_DEFAULT_PREFIX "From ${if def:return_path{$return_path}{MAILER-DAEMON}} ${tod_bsdinbox}\n"
#define PIPE_DEFAULT_SUFFIX "\n"
#define PIPE_TOO_MUCH "\n\n*** Too much output - remainder discarded ***\n"

/* ---- options -------------------------------------------------------------- */

typedef struct pipe_opts {
    bool use_shell, restrict_to_path, force_command, ignore_status, freeze_exec_fail, freeze_signal;
    bool timeout_defer, permit_coredump, use_bsmtp, use_crlf;
    bool return_output, return_fail_output, log_output, log_fail_output, log_defer_output;
    long long max_output, timeout;
    mode_t umask;
    const char *temp_errors;
    const char *check, *escape;   /* start-of-line escaping in effect (BSMTP forces its own) */
} pipe_opts;

static long long opt_n(const driver_inst *t, const char *name, long long dflt)
{
    const optval *v = driver_opt(t, name);
    return v ? v->n : dflt;
}

static void opts_load(const driver_inst *t, pipe_opts *o)
{
    o->use_shell = tp_opt_bool(t, "use_shell");
    o->restrict_to_path = tp_opt_bool(t, "restrict_to_path");
    o->force_command = tp_opt_bool(t, "force_command");
    o->ignore_status = tp_opt_bool(t, "ignore_status");
    o->freeze_exec_fail = tp_opt_bool(t, "freeze_exec_fail");
    o->freeze_signal = tp_opt_bool(t, "freeze_signal");
    o->timeout_defer = tp_opt_bool(t, "timeout_defer");
    o->permit_coredump = tp_opt_bool(t, "permit_coredump");
    o->use_bsmtp = tp_opt_bool(t, "use_bsmtp");
    o->use_crlf = tp_opt_bool(t, "use_crlf");
    o->return_output = tp_opt_bool(t, "return_output");
    o->return_fail_output = tp_opt_bool(t, "return_fail_output");
    o->log_output = tp_opt_bool(t, "log_output");
    o->log_fail_output = tp_opt_bool(t, "log_fail_output");
    o->log_defer_output = tp_opt_bool(t, "log_defer_output");
    o->max_output = opt_n(t, "max_output", 20 * 1024);
    o->timeout = opt_n(t, "timeout", 3600);
    o->umask = (mode_t)opt_n(t, "umask", 022);
    o->temp_errors = tp_opt(t, "temp_errors");
    if (!o->temp_errors)
        o->temp_errors = "75:73";              /* EX_TEMPFAIL, EX_CANTCREAT */
    /* BSMTP: SMTP dot-stuffing, whatever check_string and escape_string
     * say (and in the headers too) */
    o->check = o->use_bsmtp ? "." : tp_opt(t, "check_string");
    o->escape = o->use_bsmtp ? ".." : tp_opt(t, "escape_string");
    if (!o->check || !*o->check || !o->escape)
        o->check = o->escape = NULL;
    /* use_classresources is accepted and does nothing: it sets BSD login
     * class limits, which Linux does not have (Exim on Linux does not know
     * the option at all). */
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* The combinations Exim refuses when it reads the configuration; NULL
 * when the transport is consistent.  Meant for the configuration loader;
 * delivery also checks and defers with this text. */
const char *transport_pipe_check(const driver_inst *t, arena *a)
{
    const char *user = tp_opt(t, "user"), *group = tp_opt(t, "group");
    if (tp_opt_bool(t, "pipe_as_creator") && (user || group))
        return arena_printf(a, "both pipe_as_creator and an explicit uid/gid are set for the %s transport", t->name);
    if (user && all_digits(user) && !group)
        return arena_printf(a, "user set without group for the %s transport", t->name);
    const char *te = tp_opt(t, "temp_errors");
    if (te && strcmp(te, "*") != 0 && te[strspn(te, "0123456789: ")] != '\0')
        return arena_printf(a, "temp_errors must be a list of numbers or an asterisk for the %s transport", t->name);
    if (tp_opt_bool(t, "return_output") && tp_opt_bool(t, "return_fail_output"))
        return arena_printf(a, "both return_output and return_fail_output set for %s transport", t->name);
    if (tp_opt_bool(t, "log_output") && tp_opt_bool(t, "log_fail_output"))
        return arena_printf(a, "both log_output and log_fail_output set for the %s transport", t->name);
    if (tp_opt_bool(t, "restrict_to_path") && tp_opt_bool(t, "use_shell"))
        return arena_printf(a, "both restrict_to_path and use_shell set for %s transport", t->name);
    if (tp_opt(t, "allow_commands") && tp_opt_bool(t, "use_shell"))
        return arena_printf(a, "both allow_commands and use_shell set for %s transport", t->name);
    return NULL;
}

/* ---- one run ----------------------------------------------------------------- */

typedef struct pipe_job {
    const driver_inst *t;
    address_item *addrs;       /* the batch; the result goes on the first */
    tp_ctx *ctx;
    pipe_opts o;
    const char *cmd;           /* as configured, or the redirected pipe's text */
    bool expand;               /* arguments are expanded (not for a redirected pipe) */
    bool forced;               /* force_command for a redirected pipe: $address_pipe */
    const char **argv;
    int argc;
} pipe_job;

/* Set the first address's result; false, for "stop here". */
static bool job_fail(pipe_job *j, status st, const char *msg)
{
    j->addrs->result = st;
    j->addrs->message = msg;
    return false;
}

/* ---- splitting and expanding the command --------------------------------------- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* A backslash escape inside double quotes: *pp is at the backslash; on
 * return at the escape's last character.  Octal (up to 3 digits), \xHH,
 * \b \f \n \r \t \v; any other character stands for itself. */
static int interpret_escape(const char **pp)
{
    const char *p = *pp;
    int ch = (unsigned char)*++p;
    if (ch == '\0')
        return '\\';
    if (ch >= '0' && ch <= '7') {
        ch -= '0';
        for (int k = 0; k < 2 && p[1] >= '0' && p[1] <= '7'; k++)
            ch = ch * 8 + (*++p - '0');
    } else {
        switch (ch) {
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'v': ch = '\v'; break;
        case 'x':
            ch = 0;
            for (int k = 0; k < 2 && isxdigit((unsigned char)p[1]); k++)
                ch = ch * 16 + hexval((unsigned char)*++p);
            break;
        default: break;
        }
    }
    *pp = p;
    return ch;
}

/* The next word of *pp, as Exim splits commands: a word in '...' runs to
 * the next ' (no escapes); one in "..." to the next " with backslash
 * escapes; any other word runs to white space, quotes in it being
 * ordinary characters.  White space after it is skipped. */
static char *next_word(const char **pp, arena *a)
{
    const char *p = *pp;
    gstr g;
    gstr_init(&g, a, 32);
    if (*p == '\'') {
        p++;
        size_t n = strcspn(p, "'");
        gstr_catn(&g, p, n);
        p += n;
        if (*p)
            p++;
    } else if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            gstr_catc(&g, *p == '\\' ? (char)interpret_escape(&p) : *p);
        if (*p)
            p++;
    } else {
        while (*p && !isspace((unsigned char)*p))
            gstr_catc(&g, *p++);
    }
    while (isspace((unsigned char)*p))
        p++;
    *pp = p;
    return g.s;
}

/* Split s into at most max words (allocated in a) after argv[*n]; false
 * when there are more. */
static bool split_words(const char *s, const char **argv, int *n, int max, arena *a)
{
    while (isspace((unsigned char)*s))
        s++;
    while (*s && *n < max)
        argv[(*n)++] = next_word(&s, a);
    return *s == '\0';
}

/* Words taken from tainted text stay tainted. */
static arena *arena_for(const char *s, tp_ctx *ctx)
{
    return is_tainted(s) ? ps.msg_t : ctx->a;
}

static bool taint_check(pipe_job *j, const char *arg, int index)
{
    if (!is_tainted(arg))
        return true;
    return job_fail(j, ST_FAIL, arena_printf(j->ctx->a, "Tainted arg %d for %s transport command: '%s'", index,
                                             j->t->name, arg));
}

/* $address_pipe with force_command: the redirected pipe's text, expanded
 * and split, becomes separate arguments at out[*n]. */
static bool insert_address_pipe(pipe_job *j, const char **out, int *n, int max)
{
    arena *a = j->ctx->a;
    const char *text = j->addrs->address + 1;          /* after the '|' */
    char *x = NULL, *err = NULL;
    if (expand_string(text, a, &x, &err) != ST_OK || !*x)
        return job_fail(j, ST_FAIL, arena_printf(a, "Expansion of \"%s\" from command \"%s\" in %s transport failed: %s",
                                                 text, j->cmd, j->t->name, err ? err : ""));
    const char *words[PIPE_EXTRA_ARGS + 1];
    int nw = 0;
    int room = max - *n + 1;
    if (room > PIPE_EXTRA_ARGS)
        room = PIPE_EXTRA_ARGS;
    if (!split_words(x, words, &nw, room, arena_for(x, j->ctx)))
        return job_fail(j, ST_FAIL, arena_printf(a, "Too many arguments in $address_pipe \"%s\" in %s transport", text,
                                                 j->t->name));
    if (*n + nw > max)
        return job_fail(j, ST_FAIL, arena_printf(a, "Too many arguments to command \"%s\" after expanding "
                                                    "$address_pipe in %s transport", j->cmd, j->t->name));
    for (int k = 0; k < nw; k++) {
        if (!taint_check(j, words[k], *n))
            return false;
        out[(*n)++] = words[k];
    }
    return true;
}

/* The command run directly: split, then each argument expanded. */
static bool build_direct(pipe_job *j)
{
    arena *a = j->ctx->a;
    int naddr = 0;
    for (address_item *b = j->addrs; b; b = b->next)
        naddr++;
    int max = naddr + PIPE_EXTRA_ARGS;
    const char **raw = arena_alloc(a, sizeof *raw * (size_t)(max + 1));
    const char **argv = arena_alloc(a, sizeof *argv * (size_t)(max + 1));
    int nraw = 0, argc = 0;
    if (!split_words(j->cmd, raw, &nraw, max, a))
        return job_fail(j, ST_FAIL, arena_printf(a, "Too many arguments in command \"%s\" in %s transport", j->cmd,
                                                 j->t->name));
    for (int i = 0; i < nraw; i++) {
        if (!j->expand) {
            argv[argc++] = raw[i];
        } else if (!strcmp(raw[i], "$pipe_addresses") || !strcmp(raw[i], "${pipe_addresses}")) {
            /* one argument per address, not checked for taint (as Exim:
             * whole arguments, no shell to interpret them) */
            if (argc + naddr + (nraw - i - 1) > max)
                return job_fail(j, ST_FAIL, arena_printf(a, "Too many arguments to command \"%s\" in %s transport",
                                                         j->cmd, j->t->name));
            for (address_item *b = j->addrs; b; b = b->next)
                argv[argc++] = b->address;
        } else if (j->forced && (!strcmp(raw[i], "$address_pipe") || !strcmp(raw[i], "${address_pipe}"))) {
            if (!insert_address_pipe(j, argv, &argc, max))
                return false;
        } else {
            char *x = NULL, *err = NULL;
            if (expand_string(raw[i], a, &x, &err) != ST_OK)
                /* a failing expansion of the configured command is
                 * Exim's "panic": deferred (Exim also puts the line in
                 * the panic log, which needs the delivery process) */
                return job_fail(j, ST_DEFER, arena_printf(a, "Expansion of \"%s\" from command \"%s\" in %s transport "
                                                             "failed: %s", raw[i], j->cmd, j->t->name, err ? err : ""));
            if (!taint_check(j, x, argc))
                return false;
            argv[argc++] = x;
        }
        if (argc > max)
            return job_fail(j, ST_FAIL, arena_printf(a, "Too many arguments to command \"%s\" in %s transport",
                                                     j->cmd, j->t->name));
    }
    argv[argc] = NULL;
    if (argc == 0)
        return job_fail(j, ST_DEFER, arena_printf(a, "no command specified for %s transport", j->t->name));
    j->argv = argv;
    j->argc = argc;
    return true;
}

/* allow_commands, restrict_to_path, and the search of "path" for a
 * command without a slash. */
static bool check_command(pipe_job *j)
{
    arena *a = j->ctx->a;
    const char *cmd0 = j->argv[0];
    bool permitted = false;
    const char *allow = tp_opt(j->t, "allow_commands");
    if (allow) {
        char *list = NULL, *err = NULL;
        if (expand_string(allow, a, &list, &err) != ST_OK)
            return job_fail(j, ST_DEFER, arena_printf(a, "failed to expand string \"%s\" for %s transport: %s", allow,
                                                      j->t->name, err ? err : ""));
        const char *l = list;
        int sep = 0;
        char *it;
        while (!permitted && (it = list_next(&l, &sep, a)))
            permitted = strcmp(it, cmd0) == 0;
    }
    if (!permitted) {
        if (j->o.restrict_to_path) {
            if (strchr(cmd0, '/'))
                return job_fail(j, ST_FAIL, arena_printf(a, "\"/\" found in \"%s\" (command for %s transport) - failed "
                                                            "for security reasons", j->cmd, j->t->name));
        } else if (allow) {
            return job_fail(j, ST_FAIL, arena_printf(a, "\"%s\" command not permitted by %s transport", cmd0,
                                                     j->t->name));
        }
    }
    if (cmd0[0] == '/')
        return true;
    const char *path = NULL;
    char *err = NULL;
    tp_opt_expand(j->t, "path", j->ctx, &path, &err);
    int sep = 0;
    char *dir;
    while (path && (dir = list_next(&path, &sep, a))) {
        char *full = arena_printf(a, "%.*s/%.*s", PIPE_PATH_PART, dir, PIPE_PATH_PART, cmd0);
        struct stat sb;
        if (stat(full, &sb) == 0) {
            j->argv[0] = full;
            return true;
        }
    }
    return job_fail(j, ST_FAIL, arena_printf(a, "\"%s\" command not found for %s transport", cmd0, j->t->name));
}

/* use_shell: the command expanded whole (with $pipe_addresses replaced by
 * the addresses, space separated, first) for /bin/sh -c. */
static bool build_shell(pipe_job *j)
{
    arena *a = j->ctx->a;
    const char *cmd = j->cmd, *arg = cmd;
    if (j->expand) {
        const char *p = strstr(cmd, "pipe_addresses");
        if (p && ((p > cmd && p[-1] == '$') || (p > cmd + 1 && p[-2] == '$' && p[-1] == '{' && p[14] == '}'))) {
            const char *after = p + 14, *dollar = p - 1;
            if (p[-1] == '{') {
                after++;
                dollar--;
            }
            bool tainted = false;
            for (address_item *b = j->addrs; b; b = b->next)
                tainted |= is_tainted(b->address);
            gstr g;
            gstr_init(&g, tainted ? ps.msg_t : a, strlen(cmd) + 64);
            gstr_catn(&g, cmd, (size_t)(dollar - cmd));
            for (address_item *b = j->addrs; b; b = b->next)
                gstr_printf(&g, "%s%s", b == j->addrs ? "" : " ", b->address);
            gstr_cat(&g, after);
            cmd = g.s;
        }
        char *x = NULL, *err = NULL;
        if (expand_string(cmd, a, &x, &err) != ST_OK)
            return job_fail(j, ST_DEFER, arena_printf(a, "Expansion of command \"%s\" in %s transport failed: %s", cmd,
                                                      j->t->name, err ? err : ""));
        /* Exim lets a tainted result through to the shell; postern does
         * not (DESIGN.md section 8): outside data in a shell command line
         * is an injection */
        if (!taint_check(j, x, 2))
            return false;
        arg = x;
    }
    const char **argv = arena_alloc(a, sizeof *argv * 4);
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = arg;
    argv[3] = NULL;
    j->argv = argv;
    j->argc = 3;
    return true;
}

/* ---- the environment ------------------------------------------------------------ */

/* Exim's way of showing an unset value in the environment: "NULL" for
 * some variables, nothing for others. */
static const char *or_null(const char *s)
{
    return s ? s : "NULL";
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static bool build_env(pipe_job *j, const char **envp)
{
    arena *a = j->ctx->a;
    const address_item *ad = j->addrs;
    const char *lp = NULL, *pre = NULL, *suf = NULL, *dom = ad->domain;
    if (!ad->next) {
        /* a redirected pipe runs with the redirected address's local part */
        const address_item *src = (ad->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && ad->parent ? ad->parent : ad;
        lp = src->local_part;
        pre = src->prefix;
        suf = src->suffix;
    } else {
        /* a batch: no local part; the domain only if all share it */
        for (const address_item *b = ad->next; b && dom; b = b->next)
            if (!b->domain || strcasecmp(b->domain, dom) != 0)
                dom = NULL;
    }
    const char *home = ad->home_dir, *th = NULL, *path = NULL;
    char *err = NULL;
    if (tp_opt_expand(j->t, "home_directory", j->ctx, &th, &err) == ST_OK && th && *th)
        home = th;
    if (tp_opt_expand(j->t, "path", j->ctx, &path, &err) != ST_OK)
        path = NULL;
    const char *sender = ps.sender_address ? ps.sender_address : j->ctx->m->sender;
    int n = 0;
    envp[n++] = arena_printf(a, "LOCAL_PART=%s", or_null(lp));
    envp[n++] = arena_printf(a, "LOGNAME=%s", or_null(lp));
    envp[n++] = arena_printf(a, "USER=%s", or_null(lp));
    envp[n++] = arena_printf(a, "LOCAL_PART_PREFIX=%s", or_empty(pre));
    envp[n++] = arena_printf(a, "LOCAL_PART_SUFFIX=%s", or_empty(suf));
    envp[n++] = arena_printf(a, "DOMAIN=%s", or_null(dom));
    envp[n++] = arena_printf(a, "HOME=%s", or_empty(home));
    envp[n++] = arena_printf(a, "MESSAGE_ID=%s", j->ctx->m->id);
    envp[n++] = arena_printf(a, "PATH=%s", or_null(path));
    envp[n++] = arena_printf(a, "RECIPIENT=%s%s%s@%s", or_empty(pre), or_empty(lp), or_empty(suf), or_empty(dom));
    envp[n++] = arena_printf(a, "QUALIFY_DOMAIN=%s", or_empty(cfg_str(MO_qualify_domain)));
    envp[n++] = arena_printf(a, "SENDER=%s", or_empty(sender));
    envp[n++] = "SHELL=/bin/sh";
    if (ad->hosts && ad->hosts->name)
        envp[n++] = arena_printf(a, "HOST=%s", ad->hosts->name);
    const char *tz = cfg_str(MO_timezone);
    if (tz && !strcasecmp(tz, "UTC"))
        envp[n++] = "TZ=UTC";
    else if (tz && *tz)
        envp[n++] = arena_printf(a, "TZ=%s", tz);
    const char *extra = tp_opt(j->t, "environment");
    if (extra) {
        char *list = NULL;
        if (expand_string(extra, a, &list, &err) != ST_OK)
            return job_fail(j, ST_DEFER, arena_printf(a, "failed to expand string \"%s\" for %s transport: %s", extra,
                                                      j->t->name, err ? err : ""));
        const char *l = list;
        int sep = 0;
        char *it;
        while ((it = list_next(&l, &sep, a))) {
            if (n > PIPE_ENV_SLOTS - 2) {
                j->addrs->basic_errno = E2BIG;
                return job_fail(j, ST_DEFER, arena_printf(a, "too many environment settings for %s transport",
                                                          j->t->name));
            }
            envp[n++] = it;
        }
    }
    envp[n] = NULL;
    return true;
}

/* ---- talking to the command ------------------------------------------------------- */

typedef struct pipe_io {
    int in, out;               /* the command's stdin (we write), its stdout+stderr (we read); -1 closed */
    pid_t pid;
    long long timeout_ms, deadline;   /* 0: none */
    long long count, max_output;
    bool keep;                 /* the output is wanted (return_* or log_* options) */
    gstr output;
    bool timed_out, broken;    /* writing: timed out, EPIPE */
    int werr;                  /* writing: another error */
    /* start-of-line escaping */
    const char *check, *escape;
    size_t clen, held;
    bool checking, bol;
} pipe_io;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll()'s timeout until deadline: -1 for none, 0 when past */
static int poll_ms(long long deadline)
{
    if (!deadline)
        return -1;
    long long left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Read what the command has written; past max_output its process group
 * is killed and the rest ignored (as Exim: the output so far, then a note). */
static void io_read(pipe_io *io)
{
    char buf[PIPE_READ_CHUNK];
    ssize_t n = read(io->out, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(io->out);
        io->out = -1;
        return;
    }
    if (io->keep && io->output.len < PIPE_KEEP_MAX)
        gstr_catn(&io->output, buf, (size_t)n);
    io->count += n;
    if (io->count > io->max_output) {
        if (io->keep)
            gstr_cat(&io->output, PIPE_TOO_MUCH);
        kill(-io->pid, SIGKILL);
        close(io->out);
        io->out = -1;
    }
}

/* Write to the command, reading its output meanwhile (so that neither
 * side blocks the other).  The timeout runs from the last progress.
 * False when writing has stopped (timeout, EPIPE, error). */
static bool io_put(pipe_io *io, const char *p, size_t n)
{
    while (n) {
        if (io->timed_out || io->broken || io->werr)
            return false;
        struct pollfd pf[2] = { { .fd = io->in, .events = POLLOUT }, { .fd = io->out, .events = POLLIN } };
        int tmo = poll_ms(io->deadline);
        if (tmo == 0) {
            io->timed_out = true;
            return false;
        }
        int r = poll(pf, 2, tmo);
        if (r < 0 && errno != EINTR) {
            io->werr = errno;
            return false;
        }
        if (r <= 0)
            continue;
        if (pf[1].revents)
            io_read(io);
        if (!pf[0].revents)
            continue;
        ssize_t w = write(io->in, p, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            if (errno == EPIPE)
                io->broken = true;     /* the command stopped reading: not an error (Exim) */
            else
                io->werr = errno;
            return false;
        }
        p += w;
        n -= (size_t)w;
        if (io->timeout_ms)
            io->deadline = now_ms() + io->timeout_ms;
    }
    return true;
}

static bool io_puts(pipe_io *io, const char *s)
{
    return io_put(io, s, strlen(s));
}

/* The write_fn for the message: check_string at the start of a line
 * becomes escape_string (literal strings, case-sensitive; BSMTP uses
 * this for dot-stuffing). */
static bool esc_put(void *ctx, const char *p, size_t n)
{
    pipe_io *io = ctx;
    if (!io->checking)
        return io_put(io, p, n);
    while (n) {
        if (io->bol) {
            size_t want = io->clen - io->held, m = n < want ? n : want;
            if (memcmp(p, io->check + io->held, m) == 0) {
                io->held += m;
                p += m;
                n -= m;
                if (io->held == io->clen) {
                    io->held = 0;
                    io->bol = false;
                    if (!io_puts(io, io->escape))
                        return false;
                }
                continue;
            }
            /* not a match after all: what looked like one is plain text */
            if (io->held && !io_put(io, io->check, io->held))
                return false;
            io->held = 0;
            io->bol = false;
        }
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) + 1 : n;
        if (!io_put(io, p, k))
            return false;
        p += k;
        n -= k;
        io->bol = nl != NULL;
    }
    return true;
}

/* Start escaping a part of the message: the headers (only for BSMTP, and
 * not their first line, as Exim) or the body (from its first line). */
static bool esc_part(pipe_io *io, bool on, bool at_line_start)
{
    if (io->held && !io_put(io, io->check, io->held))
        return false;
    io->held = 0;
    io->checking = on && io->check;
    io->bol = at_line_start;
    return true;
}

/* Wait for the command to end, reading its output, for at most
 * timeout_ms (0: no limit).  False on timeout. */
static bool io_wait(pipe_io *io, long long timeout_ms, int *wstatus)
{
    long long deadline = timeout_ms ? now_ms() + timeout_ms : 0;
    int pidfd = (int)syscall(SYS_pidfd_open, io->pid, 0);
    bool exited = false;
    for (;;) {
        if (!exited && waitpid(io->pid, wstatus, WNOHANG) == io->pid)
            exited = true;
        if (exited && io->out < 0)
            break;
        int tmo = poll_ms(deadline);
        if (tmo == 0)
            break;                   /* (after the exit: a process it left holds the output open) */
        if (!exited && pidfd < 0 && (tmo < 0 || tmo > 100))
            tmo = 100;               /* no pidfd: look again shortly */
        struct pollfd pf[2] = { { .fd = io->out, .events = POLLIN }, { .fd = exited ? -1 : pidfd, .events = POLLIN } };
        if (poll(pf, 2, tmo) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            io_read(io);
    }
    if (pidfd >= 0)
        close(pidfd);
    if (io->out >= 0) {
        close(io->out);
        io->out = -1;
    }
    return exited;
}

/* ---- the child ----------------------------------------------------------------------- */

static void set_core_limit(bool permit)
{
    struct rlimit rl = { 0, 0 };
    if (permit) {
        /* Exim raises both limits while still root; here the hard limit
         * may already be fixed: raise the soft one as far as it goes */
        rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
        if (setrlimit(RLIMIT_CORE, &rl) == 0)
            return;
        log_write(LOG_MAIN, "%s delivery setrlimit(RLIMIT_CORE, RLIM_INFINITY) failed: %s", ps.message_id ? ps.message_id : "",
                  strerror(errno));
        if (getrlimit(RLIMIT_CORE, &rl) != 0)
            return;
        rl.rlim_cur = rl.rlim_max;
    }
    (void)setrlimit(RLIMIT_CORE, &rl);
}

static _Noreturn void run_child(const pipe_job *j, const char **envp, int in[2], int out[2])
{
    setpgid(0, 0);                 /* a group of its own: a timeout kills all of it */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    umask(j->o.umask);
    set_core_limit(j->o.permit_coredump);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
        _exit(PIPE_EXEC_FAILED);
    execve(j->argv[0], (char *const *)j->argv, (char *const *)envp);
    _exit(PIPE_EXEC_FAILED);
}

/* ---- writing the message ----------------------------------------------------------------- */

/* The recipient as BSMTP gives it: without affixes unless
 * rcpt_include_affixes (Exim's rule). */
static const char *rcpt_address(const driver_inst *t, const address_item *a, arena *ar)
{
    if (tp_opt_bool(t, "rcpt_include_affixes") || (!a->prefix && !a->suffix) || !a->local_part || !a->domain)
        return a->address;
    return arena_printf(ar, "%s@%s", a->local_part, a->domain);
}

/* message_prefix and message_suffix (written as they are: use_crlf does
 * not touch them), expanded before the command starts. */
static bool expand_affix(pipe_job *j, const char *name, const char *dflt, const char **out)
{
    const char *v = tp_opt(j->t, name);
    *out = NULL;
    if (!v) {
        if (j->o.use_bsmtp)
            return true;
        v = dflt;
    }
    char *x = NULL, *err = NULL;
    if (expand_string(v, j->ctx->a, &x, &err) != ST_OK)
        return job_fail(j, ST_DEFER, arena_printf(j->ctx->a, "Expansion of \"%s\" (%s for %s transport) failed: %s", v,
                                                  !strcmp(name, "message_prefix") ? "prefix" : "suffix", j->t->name,
                                                  err ? err : ""));
    *out = x;
    return true;
}

/* Prefix, BSMTP envelope, headers, body, suffix, BSMTP end.  False when
 * writing stopped; *err for an error that is not the command's doing. */
static bool write_all(pipe_job *j, pipe_io *io, const char *prefix, const char *suffix, char **err)
{
    const char *eol = j->o.use_crlf ? "\r\n" : "\n";
    arena *a = j->ctx->a;
    if (prefix && !io_puts(io, prefix))
        return false;
    if (j->o.use_bsmtp) {
        if (!io_puts(io, arena_printf(a, "MAIL FROM:<%s>%s", j->ctx->m->sender, eol)))
            return false;
        for (address_item *b = j->addrs; b; b = b->next)
            if (!io_puts(io, arena_printf(a, "RCPT TO:<%s>%s", rcpt_address(j->t, b, a), eol)))
                return false;
        if (!io_puts(io, arena_printf(a, "DATA%s", eol)))
            return false;
    }
    write_opts wo = { .crlf = j->o.use_crlf };
    wo.top_headers = tp_top_headers(j->t, j->addrs, j->ctx);
    wo.add_headers = tp_added_headers(j->t, j->addrs, j->ctx);
    wo.remove_headers = tp_removed_headers(j->t, j->addrs, j->ctx);
    bool hdr_only = tp_opt_bool(j->t, "headers_only"), body_only = tp_opt_bool(j->t, "body_only");
    /* headers (with the blank line) and body go separately, because the
     * escaping differs */
    for (int part = 0; part < 2; part++) {
        if ((part == 0 && body_only) || (part == 1 && hdr_only))
            continue;
        wo.headers_only = part == 0;
        wo.body_only = part == 1;
        if (!esc_part(io, part == 1 || j->o.use_bsmtp, part == 1))
            return false;
        if (transport_write_message(j->ctx->m, j->ctx->data_fd, &wo, esc_put, io, NULL, a, err) != ST_OK) {
            if (io->timed_out || io->broken)
                *err = NULL;
            return false;
        }
    }
    if (!esc_part(io, false, false))
        return false;
    if (suffix && !io_puts(io, suffix))
        return false;
    if (j->o.use_bsmtp && !io_puts(io, arena_printf(a, ".%s", eol)))
        return false;
    return true;
}

/* ---- the result ------------------------------------------------------------------------------ */

static bool is_temp_error(const char *list, int code, arena *a)
{
    if (list[0] == '*')
        return true;
    int sep = 0;
    char *it;
    while ((it = list_next(&list, &sep, a)))
        if (atoi(it) == code)
            return true;
    return false;
}

/* What a sysexits code could mean, as Exim says it ("" for others) */
static const char *exit_meaning(int code)
{
    switch (code) {
    case 64: return "(could mean usage or syntax error)";
    case 65: return "(could mean error in input data)";
    case 66: return "(could mean input data missing)";
    case 67: return "(could mean user nonexistent)";
    case 68: return "(could mean host nonexistent)";
    case 69: return "(could mean service or program unavailable)";
    case 70: return "(could mean internal software error)";
    case 71: return "(could mean internal operating system error)";
    case 72: return "(could mean system file missing)";
    case 73: return "(could mean can't create output file)";
    case 74: return "(could mean input/output error)";
    case 75: return "(could mean temporary error)";
    case 76: return "(could mean protocol error)";
    case 77: return "(could mean permission denied)";
    case 78: return "(could mean configuration error)";
    case 127: return "(could mean unable to exec or command does not exist)";
    default: return "";
    }
}

/* The result from how the command ended.  tmsg: an earlier write
 * timeout, appended as Exim does ("" if none). */
static void classify(pipe_job *j, int ws, const char *tmsg)
{
    arena *ar = j->ctx->a;
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        const char *m = arena_printf(ar, "Child process of %s transport (running command \"%s\") was terminated by "
                                         "signal %d (%s)%s", j->t->name, j->cmd, sig, strsignal(sig), tmsg);
        if (j->o.freeze_signal) {
            job_fail(j, ST_DEFER, m);          /* and the message is frozen */
            for (address_item *b = j->addrs; b; b = b->next)
                b->freeze = true;
        }
        else if (!j->o.ignore_status)
            job_fail(j, ST_FAIL, m);
        return;
    }
    int code = WEXITSTATUS(ws);
    if (code == 0)
        return;
    if (j->o.freeze_exec_fail && code == PIPE_EXEC_FAILED) {
        job_fail(j, ST_DEFER, arena_printf(ar, "pipe process failed to exec \"%s\"%s", j->cmd, tmsg));
        for (address_item *b = j->addrs; b; b = b->next)
            b->freeze = true;
        return;
    }
    if (j->o.ignore_status)
        return;
    gstr m;
    gstr_init(&m, ar, 128);
    gstr_printf(&m, "Child process of %s transport returned %d", j->t->name, code);
    if (code > 128)
        gstr_printf(&m, " (could mean shell command ended by signal %d (%s))", code - 128, strsignal(code - 128));
    else if (*exit_meaning(code))
        gstr_printf(&m, " %s", exit_meaning(code));
    /* Exim 4.96 names only the command's first word here */
    gstr_printf(&m, strpbrk(j->argv[0], " \t") ? " from command: \"%s\"%s" : " from command: %s%s", j->argv[0], tmsg);
    job_fail(j, is_temp_error(j->o.temp_errors, code, ar) ? ST_DEFER : ST_FAIL, m.s);
}

/* The first line of the output as Exim logs it: trailing white space
 * dropped, other non-printing characters as escapes. */
static const char *first_line(const gstr *out, arena *a)
{
    size_t n = strcspn(out->s, "\n");
    if (n > PIPE_READ_CHUNK - 1)
        n = PIPE_READ_CHUNK - 1;               /* (Exim reads the line into its big buffer) */
    while (n && isspace((unsigned char)out->s[n - 1]))
        n--;
    bool top = cfg_bool(MO_print_topbitchars);
    gstr g;
    gstr_init(&g, a, n + 16);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out->s[i];
        if ((c >= 32 && c <= 126) || c == '\t' || (c > 127 && top))
            gstr_catc(&g, (char)c);
        else if (c == '\r')
            gstr_cat(&g, "\\r");
        else if (c == '\b')
            gstr_cat(&g, "\\b");
        else if (c == '\v')
            gstr_cat(&g, "\\v");
        else if (c == '\f')
            gstr_cat(&g, "\\f");
        else
            gstr_printf(&g, "\\%03o", c);
    }
    return g.s;
}

/* log_*_output and return_*_output (Exim does this in the delivery
 * process; only the first address of a batch has the output). */
static void use_output(pipe_job *j, const gstr *out)
{
    address_item *a = j->addrs;
    if (!out->len)
        return;
    if (j->o.log_output || (a->result == ST_FAIL && j->o.log_fail_output) ||
        (a->result == ST_DEFER && j->o.log_defer_output))
        log_write(LOG_MAIN, "%s <%s>: %s transport output: %s", j->ctx->m->id, a->address, j->t->name,
                  first_line(out, j->ctx->a));
    /* nothing goes back for a bounce (no sender) unless errors_to says where */
    const char *sender = ps.sender_address ? ps.sender_address : j->ctx->m->sender;
    if (!*sender && !(a->errors_to && *a->errors_to))
        return;
    if (j->o.return_output) {
        a->result = ST_FAIL;
        if (!a->basic_errno && !a->message)
            a->message = "return message generated";
        a->return_output = out->s;
    } else if (j->o.return_fail_output && a->result == ST_FAIL) {
        a->return_output = out->s;
    }
}

/* Which command, with what, and what goes before and after the message;
 * false (the result set, no user_message: Exim's set-up failures) when
 * it cannot run. */
static bool pipe_prepare(pipe_job *j, const char **envp, const char **prefix, const char **suffix)
{
    address_item *a = j->addrs;
    const driver_inst *t = j->t;
    arena *ar = j->ctx->a;
    const char *bad = transport_pipe_check(t, ar);
    if (bad)
        return job_fail(j, ST_DEFER, bad);
    opts_load(t, &j->o);
    if ((a->flags & AF_PIPE) && !j->o.force_command) {
        const char *c = a->address + 1;                 /* "|command" from a redirect: not expanded */
        while (isspace((unsigned char)*c))
            c++;
        j->cmd = c;
        j->expand = false;
    } else {
        j->cmd = tp_opt(t, "command");
        j->expand = true;
        j->forced = (a->flags & AF_PIPE) != 0;
    }
    if (!j->cmd || !*j->cmd)
        return job_fail(j, ST_DEFER, arena_printf(ar, "no command specified for %s transport", t->name));
    if (is_tainted(j->cmd))
        return job_fail(j, ST_DEFER, arena_printf(ar, "Tainted '%s' (command for %s transport) not permitted", j->cmd,
                                                  t->name));
    return (j->o.use_shell ? build_shell(j) : build_direct(j) && check_command(j)) && build_env(j, envp) &&
           expand_affix(j, "message_prefix", PIPE_DEFAULT_PREFIX, prefix) &&
           expand_affix(j, "message_suffix", PIPE_DEFAULT_SUFFIX, suffix);
}

/* Start the command, with a pipe to its standard input and one from its
 * standard output and error. */
static bool pipe_spawn(pipe_job *j, const char **envp, pipe_io *io)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 };
    pid_t pid = -1;
    if (pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0) {
        fflush(NULL);
        pid = fork();
        if (pid == 0)
            run_child(j, envp, in, out);
    }
    if (pid < 0) {
        int e = errno;
        for (int k = 0; k < 2; k++) {
            if (in[k] >= 0)
                close(in[k]);
            if (out[k] >= 0)
                close(out[k]);
        }
        return job_fail(j, ST_DEFER, arena_printf(j->ctx->a, "Failed to create child process for %s transport: %s",
                                                  j->t->name, strerror(e)));
    }
    close(in[0]);
    close(out[1]);
    setpgid(pid, pid);
    signal(SIGPIPE, SIG_IGN);
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    *io = (pipe_io){ .in = in[1], .out = out[0], .pid = pid, .max_output = j->o.max_output };
    io->keep = j->o.return_output || j->o.return_fail_output || j->o.log_output || j->o.log_fail_output ||
               j->o.log_defer_output;
    gstr_init(&io->output, j->ctx->a, 256);
    io->timeout_ms = j->o.timeout > 0 ? j->o.timeout * 1000 : 0;
    io->deadline = io->timeout_ms ? now_ms() + io->timeout_ms : 0;
    if (j->o.check) {
        io->check = j->o.check;
        io->escape = j->o.escape;
        io->clen = strlen(io->check);
    }
    return true;
}

/* Give the command the message, wait for it, and judge how it ended. */
static void pipe_execute(pipe_job *j, pipe_io *io, const char *prefix, const char *suffix)
{
    address_item *a = j->addrs;
    arena *ar = j->ctx->a;
    char *err = NULL;
    bool written = write_all(j, io, prefix, suffix, &err);
    close(io->in);
    io->in = -1;
    long long wait_ms = io->timeout_ms;
    if (!written && io->timed_out) {
        job_fail(j, j->o.timeout_defer ? ST_DEFER : ST_FAIL, "timeout while writing to pipe");
        wait_ms = 1000;                /* then a second's grace, as Exim */
    } else if (!written && !io->broken) {
        /* not the command's doing (reading the spool, say): try again later */
        int ws;
        kill(-io->pid, SIGKILL);
        if (!io_wait(io, 1000, &ws))
            waitpid(io->pid, &ws, 0);
        job_fail(j, ST_DEFER, err ? err : arena_printf(ar, "Error %d", io->werr));
        return;
    }
    /* (EPIPE: the command stopped reading; how it ended says the rest) */
    int ws = 0;
    const char *tmsg = a->message ? arena_printf(ar, " (preceded by %s)", a->message) : "";
    if (!io_wait(io, wait_ms, &ws)) {
        kill(-io->pid, SIGKILL);
        waitpid(io->pid, &ws, 0);
        job_fail(j, j->o.timeout_defer ? ST_DEFER : ST_FAIL,
                 arena_printf(ar, "pipe delivery process timed out%s", tmsg));
    } else {
        classify(j, ws, tmsg);
    }
    if (a->result != ST_OK)
        a->user_message = "local delivery failed";   /* the details stay in the log */
    if (io->keep)
        use_output(j, &io->output);
}

static status pipe_run(pipe_job *j)
{
    address_item *a = j->addrs;
    tp_set_vars(j->t, a);
    a->result = ST_OK;
    a->message = NULL;
    a->basic_errno = 0;
    const char *envp[PIPE_ENV_SLOTS];
    const char *prefix = NULL, *suffix = NULL;
    pipe_io io;
    if (pipe_prepare(j, envp, &prefix, &suffix) && pipe_spawn(j, envp, &io))
        pipe_execute(j, &io, prefix, suffix);
    return a->result;
}

status transport_pipe(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    pipe_job j = { .t = t, .addrs = addrs, .ctx = ctx };
    status st = pipe_run(&j);
    /* every address of a batch shares the result (and the output) */
    for (address_item *b = addrs->next; b; b = b->next) {
        b->result = addrs->result;
        b->message = addrs->message;
        b->user_message = addrs->user_message;
        b->basic_errno = addrs->basic_errno;
        b->return_output = addrs->return_output;
    }
    return st;
}
