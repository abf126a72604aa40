/* pipe.c: the pipe transport: runs a command (no shell; argv split as
 * Exim does, then each argument expanded; $pipe_addresses gives one
 * argument per address of a batch) with the message on its standard
 * input.  Exit status 0 delivers; one of temp_errors defers; any other
 * fails; a timeout defers and kills the process group. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PIPE_MAX_ARGS 256

/* Split a command line: words separated by white space; '...' and "..."
 * quote (backslash escapes inside double quotes). */
static int split_args(const char *cmd, char **argv, arena *a)
{
    int n = 0;
    const char *p = cmd;
    while (*p && n < PIPE_MAX_ARGS - 1) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        gstr g;
        gstr_init(&g, a, 32);
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            if (*p == '\'') {
                p++;
                while (*p && *p != '\'')
                    gstr_catc(&g, *p++);
                if (*p)
                    p++;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    gstr_catc(&g, *p++);
                }
                if (*p)
                    p++;
            } else {
                gstr_catc(&g, *p++);
            }
        }
        argv[n++] = g.s;
    }
    argv[n] = NULL;
    return n;
}

typedef struct pipe_sink {
    int fd;
} pipe_sink;

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

static status batch_fail(address_item *addrs, status st, const char *msg)
{
    for (address_item *b = addrs; b; b = b->next) {
        b->result = st;
        b->message = msg;
    }
    return st;
}

static status pipe_run(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    address_item *a = addrs;
    tp_set_vars(t, a);
    char *err = NULL;
    const char *cmd = (a->flags & AF_PIPE) ? a->address + 1 /* "|command" from a redirect */ : tp_opt(t, "command");
    if (!cmd || !*cmd)
        return batch_fail(addrs, ST_DEFER, arena_printf(ctx->a, "no command for the %s transport", t->name));
    /* split first, then expand each argument (as Exim does: an expansion
     * cannot add arguments); "$pipe_addresses" becomes one argument per
     * address of the batch */
    char *raw[PIPE_MAX_ARGS], *argv[PIPE_MAX_ARGS];
    bool is_addr[PIPE_MAX_ARGS] = { false };
    int nraw = split_args(cmd, raw, ctx->a), argc = 0;
    for (int i = 0; i < nraw && argc < PIPE_MAX_ARGS - 1; i++) {
        if (a->flags & AF_PIPE) {
            argv[argc++] = raw[i];
            continue;
        }
        if (!strcmp(raw[i], "$pipe_addresses") || !strcmp(raw[i], "${pipe_addresses}")) {
            for (address_item *b = addrs; b && argc < PIPE_MAX_ARGS - 1; b = b->next) {
                is_addr[argc] = true;
                argv[argc++] = (char *)b->address;
            }
            continue;
        }
        char *out;
        if (expand_string(raw[i], ctx->a, &out, &err) != ST_OK)
            return batch_fail(addrs, ST_DEFER, arena_printf(ctx->a, "Expansion of \"%s\" (argument %d) for %s transport "
                                                                    "failed: %s", raw[i], i, t->name, err ? err : ""));
        argv[argc++] = out;
    }
    argv[argc] = NULL;
    for (int i = 0; i < argc; i++)
        /* addresses from $pipe_addresses are whole arguments (no shell) */
        if (is_tainted(argv[i]) && !is_addr[i])
            return batch_fail(addrs, ST_DEFER, arena_printf(ctx->a, "Tainted '%s' (command for %s transport) not permitted",
                                                            argv[i], t->name));
    if (argc == 0 || argv[0][0] != '/')
        return batch_fail(addrs, ST_FAIL, arena_printf(ctx->a, "pipe command \"%s\" must start with an absolute path", cmd));
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "pipe: %s", strerror(errno));
        return ST_DEFER;
    }
    const char *home = a->home_dir ? a->home_dir : "/";
    pid_t pid = fork();
    if (pid < 0) {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "fork: %s", strerror(errno));
        return ST_DEFER;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        if (chdir(home) != 0 && chdir("/") != 0)
            _exit(127);
        const char *path = tp_opt(t, "path");
        char *envp[16];
        int ne = 0;
        envp[ne++] = arena_printf(ctx->a, "LOCAL_PART=%s", a->local_part ? a->local_part : "");
        envp[ne++] = arena_printf(ctx->a, "DOMAIN=%s", a->domain ? a->domain : "");
        envp[ne++] = arena_printf(ctx->a, "HOME=%s", home);
        envp[ne++] = arena_printf(ctx->a, "MESSAGE_ID=%s", ctx->m->id);
        envp[ne++] = arena_printf(ctx->a, "SENDER=%s", ctx->m->sender);
        envp[ne++] = arena_printf(ctx->a, "RECIPIENT=%s", a->address);
        envp[ne++] = arena_printf(ctx->a, "PATH=%s", path ? path : "/bin:/usr/bin");
        envp[ne++] = "SHELL=/bin/sh";
        envp[ne] = NULL;
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_IGN);
    write_opts wo = { 0 };
    if (tp_opt_bool(t, "use_crlf"))
        wo.crlf = true;
    wo.top_headers = tp_top_headers(t, a, ctx);
    wo.add_headers = tp_added_headers(t, a, ctx);
    const char *prefix = NULL, *suffix = NULL;
    tp_opt_expand(t, "message_prefix", ctx, &prefix, &err);
    tp_opt_expand(t, "message_suffix", ctx, &suffix, &err);
    wo.prefix = prefix;
    wo.suffix = suffix;
    unsigned long long bytes;
    int wfd = in[1];
    status wst = transport_write_message(ctx->m, ctx->data_fd, &wo, write_to_fd, &wfd, &bytes, ctx->a, &err);
    close(in[1]);
    /* collect output (bounded) and wait, with the transport's timeout */
    long long timeout = driver_opt(t, "timeout") ? driver_opt(t, "timeout")->n : 3600;
    gstr output;
    gstr_init(&output, ctx->a, 256);
    time_t deadline = time(NULL) + (time_t)timeout;
    bool timed_out = false;
    for (;;) {
        struct pollfd pf = { .fd = out[0], .events = POLLIN };
        int left = (int)(deadline - time(NULL));
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int r = poll(&pf, 1, left * 1000);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            timed_out = true;
            break;
        }
        char buf[4096];
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n <= 0)
            break;
        if (output.len < 20000)
            gstr_catn(&output, buf, (size_t)n);
    }
    close(out[0]);
    int status_code = 0;
    if (timed_out)
        kill(-pid, SIGKILL);
    waitpid(pid, &status_code, 0);
    if (timed_out) {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "pipe delivery process timed out");
        a->user_message = "local delivery failed";
        return ST_DEFER;
    }
    if (WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0 && wst == ST_OK) {
        a->result = ST_OK;
        if (output.len && tp_opt_bool(t, "return_output")) {
            /* any output fails the delivery and goes back to the sender */
            a->result = ST_FAIL;
            a->message = "return message generated";
            a->return_output = output.s;
        }
        return a->result;
    }
    int code = WIFEXITED(status_code) ? WEXITSTATUS(status_code) : 128 + WTERMSIG(status_code);
    const char *temp = tp_opt(t, "temp_errors");
    bool is_temp = false;
    if (!temp)
        temp = "75:73";
    if (!strcmp(temp, "*"))
        is_temp = true;
    else {
        int sep = 0;
        char *it;
        while ((it = list_next(&temp, &sep, ctx->a)))
            if (atoi(it) == code)
                is_temp = true;
    }
    a->result = is_temp ? ST_DEFER : ST_FAIL;
    /* Exim's wording: the code, what it could mean, the whole command */
    gstr m;
    gstr_init(&m, ctx->a, 128);
    if (WIFSIGNALED(status_code))
        gstr_printf(&m, "Child process of %s transport (running command \"%s\") was terminated by signal %d (%s)",
                    t->name, cmd, WTERMSIG(status_code), strsignal(WTERMSIG(status_code)));
    else {
        gstr_printf(&m, "Child process of %s transport returned %d", t->name, code);
        const char *meaning = exit_meaning(code);
        if (code > 128)
            gstr_printf(&m, " (could mean shell command ended by signal %d (%s))", code - 128, strsignal(code - 128));
        else if (*meaning)
            gstr_printf(&m, " %s", meaning);
        /* (Exim shows only the command's first word) */
        gstr_printf(&m, strpbrk(argv[0], " \t") ? " from command: \"%s\"" : " from command: %s", argv[0]);
    }
    a->message = m.s;
    /* the details stay in the log; the sender is told less (Exim) */
    a->user_message = "local delivery failed";
    if (output.len && (tp_opt_bool(t, "return_output") || tp_opt_bool(t, "return_fail_output")))
        a->return_output = output.s;
    return a->result;
}

status transport_pipe(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    status st = pipe_run(t, addrs, ctx);
    for (address_item *b = addrs->next; b; b = b->next) {
        b->result = addrs->result;
        b->message = addrs->message;
        b->user_message = addrs->user_message;
    }
    return st;
}
