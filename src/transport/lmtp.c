/* lmtp.c: the lmtp transport (RFC 2033): LHLO, MAIL, RCPT per address,
 * DATA, then one reply per accepted recipient, over a Unix socket
 * ("socket") or to a command's standard input/output ("command"). */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "smtp/client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static bool client_sink(void *ctx, const char *p, size_t n)
{
    return smtp_client_write(ctx, p, n) == ST_OK;
}

static void all(address_item *addrs, status st, const char *msg)
{
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_DEFER || a->result == ST_PASS) {
            a->result = st;
            a->message = msg;
        }
}

status transport_lmtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    for (address_item *a = addrs; a; a = a->next) {
        a->result = ST_DEFER;
        a->message = NULL;
    }
    tp_set_vars(t, addrs);
    char *err = NULL;
    const char *sock = NULL, *cmd = NULL;
    tp_opt_expand(t, "socket", ctx, &sock, &err);
    tp_opt_expand(t, "command", ctx, &cmd, &err);
    int timeout = (int)(driver_opt(t, "timeout") ? driver_opt(t, "timeout")->n : 300);
    smtp_client c;
    pid_t pid = -1;
    if (sock && *sock) {
        if (smtp_client_connect_unix(&c, sock, timeout, ctx->a, &err) != ST_OK) {
            all(addrs, ST_DEFER, err);
            return ST_DEFER;
        }
    } else if (cmd && *cmd) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            all(addrs, ST_DEFER, "socketpair failed");
            return ST_DEFER;
        }
        pid = fork();
        if (pid == 0) {
            dup2(sv[1], 0);
            dup2(sv[1], 1);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        close(sv[1]);
        memset(&c, 0, sizeof c);
        c.fd = sv[0];
        c.a = ctx->a;
        c.timeout = timeout;
        c.peer = cmd;
    } else {
        all(addrs, ST_DEFER, arena_printf(ctx->a, "neither socket nor command is set in the %s transport", t->name));
        return ST_DEFER;
    }
    smtp_reply r;
    const char *stage = "greeting";
    if (smtp_client_read(&c, &r) != ST_OK || r.code / 100 != 2)
        goto temp;
    stage = "LHLO";
    if (smtp_client_send(&c, "LHLO %s\r\n", cfg_str(MO_primary_hostname)) != ST_OK ||
        smtp_client_read(&c, &r) != ST_OK || r.code / 100 != 2)
        goto temp;
    stage = "MAIL FROM";
    if (smtp_client_send(&c, "MAIL FROM:<%s>\r\n", ctx->m->sender) != ST_OK || smtp_client_read(&c, &r) != ST_OK)
        goto temp;
    if (r.code / 100 != 2) {
        all(addrs, r.code / 100 == 5 ? ST_FAIL : ST_DEFER,
            arena_printf(ctx->a, "LMTP error after MAIL FROM: %s", r.first_line));
        goto quit;
    }
    int accepted = 0;
    for (address_item *a = addrs; a; a = a->next) {
        if (smtp_client_send(&c, "RCPT TO:<%s>\r\n", a->address) != ST_OK || smtp_client_read(&c, &r) != ST_OK) {
            stage = "RCPT TO";
            goto temp;
        }
        if (r.code / 100 == 2) {
            a->result = ST_PASS;
            accepted++;
        } else {
            a->result = r.code / 100 == 5 ? ST_FAIL : ST_DEFER;
            a->message = arena_printf(ctx->a, "LMTP error after RCPT TO:<%s>: %s", a->address, r.first_line);
            a->pass_message = true;
        }
    }
    if (!accepted)
        goto quit;
    stage = "DATA";
    if (smtp_client_send(&c, "DATA\r\n") != ST_OK || smtp_client_read(&c, &r) != ST_OK || r.code != 354)
        goto temp;
    write_opts wo = { .crlf = true, .dot_stuff = true };
    wo.top_headers = tp_top_headers(t, addrs, ctx);
    wo.add_headers = tp_added_headers(t, addrs, ctx);
    unsigned long long bytes;
    stage = "end of data";
    if (transport_write_message(ctx->m, ctx->data_fd, &wo, client_sink, &c, &bytes, ctx->a, &err) != ST_OK ||
        smtp_client_send(&c, ".\r\n") != ST_OK)
        goto temp;
    /* one reply per accepted recipient, in order */
    for (address_item *a = addrs; a; a = a->next) {
        if (a->result != ST_PASS)
            continue;
        if (smtp_client_read(&c, &r) != ST_OK)
            goto temp;
        if (r.code / 100 == 2) {
            a->result = ST_OK;
            a->smtp_confirmation = r.first_line;
        } else {
            a->result = r.code / 100 == 5 ? ST_FAIL : ST_DEFER;
            a->message = arena_printf(ctx->a, "LMTP error after end of data: %s", r.first_line);
            a->pass_message = true;
            if (r.code / 100 == 4)
                a->basic_errno = ERRNO_DATA4XX;
        }
    }
quit:
    smtp_client_send(&c, "QUIT\r\n");
    smtp_client_read(&c, &r);
    smtp_client_close(&c);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_PASS)
            a->result = ST_DEFER;
    return ST_OK;
temp:
    all(addrs, ST_DEFER, arena_printf(ctx->a, "LMTP %s failed: %s", stage, c.last_code ? c.last_reply : "connection lost or timed out"));
    smtp_client_close(&c);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    return ST_DEFER;
}
