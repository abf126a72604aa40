/* smtp.c: the smtp transport: tries the hosts in order, speaks ESMTP
 * (EHLO with HELO fallback, PIPELINING, SIZE, DSN), sends the message and
 * gives every address its result.  It records the greeting and the
 * EHLO/HELO response for DSN extra information, also for failures at RCPT
 * time. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "route/route.h"
#include "smtp/client.h"
#include "transport/smtp_wait.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <stdio.h>

static bool client_sink(void *ctx, const char *p, size_t n)
{
    return smtp_client_write(ctx, p, n) == ST_OK;
}

static int port_of(const char *s)
{
    if (!s || !*s)
        return 25;
    char *e;
    long v = strtol(s, &e, 10);
    if (!*e && v > 0 && v < 65536)
        return (int)v;
    if (!strcmp(s, "smtp"))
        return 25;
    if (!strcmp(s, "submission"))
        return 587;
    if (!strcmp(s, "smtps"))
        return 465;
    return 25;
}

/* Hosts from the transport's hosts option (used when the router gave none,
 * or with hosts_override). */
static host_item *transport_hosts(const driver_inst *t, tp_ctx *ctx, char **err)
{
    const char *list;
    if (tp_opt_expand(t, "hosts", ctx, &list, err) != ST_OK || !list)
        return NULL;
    host_item *head = NULL, **tail = &head;
    int sep = 0;
    char *it;
    while ((it = list_next(&list, &sep, ctx->a))) {
        host_item *h = arena_calloc(ctx->a, sizeof *h);
        h->mx = -1;
        char *colon = strrchr(it, ':');
        if (it[0] == '[') {
            char *rb = strchr(it, ']');
            if (rb) {
                *rb = '\0';
                if (rb[1] == ':')
                    h->port = atoi(rb + 2);
                it++;
            }
        } else if (colon && strchr(it, ':') == colon) {
            *colon = '\0';
            h->port = atoi(colon + 1);
        }
        h->name = it;
        *tail = h;
        tail = &h->next;
    }
    return head;
}

static void set_all(address_item *addrs, status st, const char *msg, bool only_pending)
{
    for (address_item *a = addrs; a; a = a->next)
        if (!only_pending || a->result == ST_DEFER) {
            a->result = st;
            a->message = msg;
        }
}

static const char *xtext(arena *a, const char *s)
{
    gstr g;
    gstr_init(&g, a, 32);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
            gstr_printf(&g, "+%02X", *p);
        else
            gstr_catc(&g, (char)*p);
    }
    return g.s;
}

/* ---- the connection kept for reuse --------------------------------------- */

typedef struct smtp_kept {
    smtp_client c;
    const driver_inst *t;
    char host[256], ip[64];
    int port;
    int messages;              /* transactions sent over it */
    bool in_use;               /* taken by a transaction now */
} smtp_kept;

static long long max_messages(const driver_inst *t)
{
    const optval *v = driver_opt(t, "connection_max_messages");
    return v ? v->n : 500;
}

/* Use the kept connection for host h if it goes there: RSET first (it may
 * have timed out, or a transaction may be open). */
static bool take_kept(const driver_inst *t, const host_item *h, int port, smtp_client *c)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k || k->in_use || k->t != t || k->port != port || !h->address || strcmp(k->ip, h->address) != 0)
        return false;
    if (!smtp_kept_ready())
        return false;
    *c = k->c;
    k->in_use = true;
    return true;
}

/* The transaction's connection is closed: a kept one in use goes with it. */
static void conn_closed(smtp_client *c)
{
    smtp_client_close(c);
    if (ps.smtp_kept && ps.smtp_kept->in_use)
        ps.smtp_kept = NULL;
}

/* After a transaction: keep the connection for the next batch or a
 * message waiting for this host, unless the transport allows only one
 * message per connection or this one has carried its maximum. */
static void keep_or_quit(const driver_inst *t, const host_item *h, int port, smtp_client *c, tp_ctx *ctx)
{
    long long max = max_messages(t);
    smtp_kept *k = ps.smtp_kept;
    int sent = 1;
    if (k && k->in_use) {
        sent = k->messages + 1;
        ps.smtp_kept = NULL;            /* replaced below (or closed) */
    }
    if (max == 1 || (max > 0 && sent >= max) || !h->name || !h->address || strlen(h->address) >= sizeof k->ip) {
        smtp_client_send(c, "QUIT\r\n");
        smtp_reply q;
        smtp_client_read(c, &q);
        smtp_client_close(c);
        return;
    }
    if (ps.smtp_kept && ps.deliver_continuing) {
        /* this process was given a connection to send one message down:
         * that one stays (the parent goes on with it); this one ends */
        smtp_client_send(c, "QUIT\r\n");
        smtp_reply q;
        smtp_client_read(c, &q);
        smtp_client_close(c);
        return;
    }
    if (ps.smtp_kept)
        smtp_kept_close(true);          /* another host's: one is kept at a time */
    k = arena_calloc(ps.conn, sizeof *k);
    k->c = *c;
    k->c.a = ps.conn;
    k->c.greeting = c->greeting ? arena_strdup(ps.conn, c->greeting) : NULL;
    k->c.helo_response = c->helo_response ? arena_strdup(ps.conn, c->helo_response) : NULL;
    k->c.last_reply = NULL;
    k->c.peer = c->peer ? arena_strdup(ps.conn, c->peer) : NULL;
    k->t = t;
    snprintf(k->host, sizeof k->host, "%s", h->name);
    snprintf(k->ip, sizeof k->ip, "%s", h->address);
    k->port = port;
    k->messages = sent;
    ps.smtp_kept = k;
    (void)ctx;
}

bool smtp_kept_host(const char **tpname, const char **host)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k)
        return false;
    *tpname = k->t->name;
    *host = k->host;
    return true;
}

bool smtp_kept_ready(void)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k)
        return false;
    long long max = max_messages(k->t);
    smtp_reply r;
    if ((max > 0 && k->messages >= max) || smtp_client_send(&k->c, "RSET\r\n") != ST_OK ||
        smtp_client_read(&k->c, &r) != ST_OK || r.code != 250) {
        smtp_kept_close(max > 0 && k->messages >= max);
        return false;
    }
    return true;
}

void smtp_kept_close(bool quit)
{
    smtp_kept *k = ps.smtp_kept;
    if (!k)
        return;
    if (quit) {
        smtp_reply q;
        if (smtp_client_send(&k->c, "QUIT\r\n") == ST_OK)
            smtp_client_read(&k->c, &q);
    }
    smtp_client_close(&k->c);
    ps.smtp_kept = NULL;
}

int smtp_kept_fd(void)
{
    return ps.smtp_kept ? ps.smtp_kept->c.fd : -1;
}

void smtp_kept_sent(void)
{
    if (ps.smtp_kept)
        ps.smtp_kept->messages++;
}

void smtp_kept_forget(void)
{
    smtp_kept *k = ps.smtp_kept;
    if (k && k->c.fd >= 0)
        close(k->c.fd);
    ps.smtp_kept = NULL;
}

/* One attempt at one host.  Returns ST_OK when the host gave final answers
 * (addresses have their results), ST_DEFER when the next host should be
 * tried for the addresses still pending. */
static status try_host(const driver_inst *t, address_item *addrs, host_item *h, tp_ctx *ctx)
{
    int port = h->port ? h->port : port_of(tp_opt(t, "port"));
    char *err = NULL;
    smtp_client c;
    int ctimeout = (int)(driver_opt(t, "connect_timeout") ? driver_opt(t, "connect_timeout")->n : 300);
    int cmdtimeout = (int)(driver_opt(t, "command_timeout") ? driver_opt(t, "command_timeout")->n : 300);
    const char *iface = NULL;
    tp_opt_expand(t, "interface", ctx, &iface, &err);
    ps.deliver_host = h->name;
    ps.deliver_host_address = h->address;
    for (address_item *a = addrs; a; a = a->next) {
        if (a->result != ST_DEFER)
            continue;
        a->host_used = h->name;
        a->host_address_used = h->address;
        a->port_used = port;
        a->smtp_greeting = NULL;
        a->helo_response = NULL;
    }
    smtp_reply r;
    const char *stage = "initial connection";
    bool reused = take_kept(t, h, port, &c);
    if (reused) {
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_DEFER) {
                a->smtp_greeting = c.greeting;
                a->helo_response = c.helo_response;
                a->flags |= AF_CONT_CONN;
            }
        goto transaction;
    }
    if (smtp_client_connect(&c, h->address, port, iface, ctimeout, cmdtimeout, ctx->a, &err) != ST_OK) {
        const char *msg = arena_printf(ctx->a, "%s", err);
        set_all(addrs, ST_DEFER, msg, true);
        for (address_item *a = addrs; a; a = a->next)
            if (a->message == msg)
                a->basic_errno = c.os_errno;
        log_write(LOG_MAIN, "%s H=%s [%s]%s: %s", ctx->m->id, h->name, h->address,
                  port != 25 ? arena_printf(ctx->a, ":%d", port) : "", msg);
        return ST_DEFER;
    }
    status st = smtp_client_read(&c, &r);
    if (st != ST_OK)
        goto temp;
    c.greeting = r.first_line;
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_DEFER)
            a->smtp_greeting = c.greeting;
    if (r.code / 100 != 2)
        goto host_refused;
    const char *helo = NULL;
    tp_opt_expand(t, "helo_data", ctx, &helo, &err);
    if (!helo)
        helo = cfg_str(MO_primary_hostname);
    stage = "EHLO";
    if (smtp_client_send(&c, "EHLO %s\r\n", helo) != ST_OK || smtp_client_read(&c, &r) != ST_OK)
        goto temp;
    if (r.code / 100 == 2) {
        c.esmtp = true;
        smtp_client_parse_ehlo(&c, r.text);
    } else {
        stage = "HELO";
        if (smtp_client_send(&c, "HELO %s\r\n", helo) != ST_OK || smtp_client_read(&c, &r) != ST_OK)
            goto temp;
        if (r.code / 100 != 2)
            goto host_refused;
    }
    c.helo_response = r.first_line;
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_DEFER)
            a->helo_response = c.helo_response;

transaction:;
    /* MAIL and the RCPTs, pipelined when the server allows it */
    gstr cmds;
    gstr_init(&cmds, ctx->a, 256);
    gstr_printf(&cmds, "MAIL FROM:<%s>", ctx->m->sender);
    if (c.size) {
        struct stat_size { int dummy; };
        unsigned long long sz = 0;
        for (const spool_header *hh = ctx->m->headers; hh; hh = hh->next)
            if (hh->type != '*')
                sz += hh->len;
        long long add = driver_opt(t, "size_addition") ? driver_opt(t, "size_addition")->n : 1024;
        gstr_printf(&cmds, " SIZE=%llu", sz + (unsigned long long)(add > 0 ? add : 0) + (unsigned long long)ctx->m->body_linecount * 80);
    }
    if (c.dsn) {
        if (ctx->m->dsn_ret)
            gstr_printf(&cmds, " RET=%s", ctx->m->dsn_ret == SPOOL_RET_HDRS ? "HDRS" : "FULL");
        if (ctx->m->dsn_envid)
            gstr_printf(&cmds, " ENVID=%s", ctx->m->dsn_envid);
    }
    gstr_cat(&cmds, "\r\n");
    int nrcpt = 0;
    for (address_item *a = addrs; a; a = a->next) {
        if (a->result != ST_DEFER)
            continue;
        nrcpt++;
        gstr_printf(&cmds, "RCPT TO:<%s>", a->address);
        if (c.dsn) {
            if (a->dsn_flags) {
                gstr_cat(&cmds, " NOTIFY=");
                if (a->dsn_flags & SPOOL_DSN_NEVER)
                    gstr_cat(&cmds, "NEVER");
                else {
                    bool first = true;
                    static const struct { unsigned bit; const char *w; } nf[] = {
                        { SPOOL_DSN_SUCCESS, "SUCCESS" }, { SPOOL_DSN_FAILURE, "FAILURE" }, { SPOOL_DSN_DELAY, "DELAY" } };
                    for (size_t k = 0; k < 3; k++)
                        if (a->dsn_flags & nf[k].bit) {
                            gstr_printf(&cmds, "%s%s", first ? "" : ",", nf[k].w);
                            first = false;
                        }
                }
            }
            if (a->dsn_orcpt)
                gstr_printf(&cmds, " ORCPT=%s", a->dsn_orcpt);
            else
                gstr_printf(&cmds, " ORCPT=rfc822;%s", xtext(ctx->a, a->address));
        }
        gstr_cat(&cmds, "\r\n");
        if (!c.pipelining) {
            /* without PIPELINING each command waits for its reply below */
        }
    }
    (void)nrcpt;
    int accepted = 0;
    if (c.pipelining) {
        stage = "MAIL FROM";
        if (smtp_client_write(&c, cmds.s, cmds.len) != ST_OK)
            goto temp;
    }
    /* MAIL reply */
    {
        const char *p = cmds.s;
        const char *nl = strstr(p, "\r\n");
        if (!c.pipelining && smtp_client_write(&c, p, (size_t)(nl - p) + 2) != ST_OK)
            goto temp;
        stage = arena_strndup(ctx->a, p, (size_t)(nl - p));
        if (smtp_client_read(&c, &r) != ST_OK)
            goto temp;
        if (r.code / 100 != 2) {
            const char *msg = arena_printf(ctx->a, "SMTP error from remote mail server after %s: %s",
                                           stage, r.first_line);
            set_all(addrs, r.code / 100 == 5 ? ST_FAIL : ST_DEFER, msg, true);
            for (address_item *a = addrs; a; a = a->next)
                if (a->message == msg)
                    a->remote_reply_5xx = r.code / 100 == 5;
            if (c.pipelining)
                for (address_item *a = addrs; a; a = a->next)
                    if (a->message == msg)
                        smtp_client_read(&c, &r);     /* drain the RCPT replies */
            smtp_client_send(&c, "QUIT\r\n");
            conn_closed(&c);
            return ST_OK;
        }
        p = nl + 2;
        for (address_item *a = addrs; a; a = a->next) {
            if (a->result != ST_DEFER)
                continue;
            nl = strstr(p, "\r\n");
            if (!c.pipelining && smtp_client_write(&c, p, (size_t)(nl - p) + 2) != ST_OK)
                goto temp;
            const char *cmd = arena_strndup(ctx->a, p, (size_t)(nl - p));
            p = nl + 2;
            if (smtp_client_read(&c, &r) != ST_OK) {
                stage = cmd;
                goto temp;
            }
            if (r.code / 100 == 2) {
                a->result = ST_PASS;          /* accepted by RCPT, pending DATA */
                accepted++;
            } else {
                a->result = r.code / 100 == 5 ? ST_FAIL : ST_DEFER;
                a->remote_reply_5xx = r.code / 100 == 5;
                a->message = arena_printf(ctx->a, "SMTP error from remote mail server after %s: %s",
                                          cmd, r.first_line);
                if (a->result == ST_DEFER)
                    a->result = ST_SKIP;      /* deferred at this host: not retried elsewhere now */
            }
        }
    }
    if (!accepted) {
        keep_or_quit(t, h, port, &c, ctx);     /* the next RSET ends this transaction */
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_SKIP)
                a->result = ST_DEFER;
        return ST_OK;
    }
    stage = "DATA";
    if (smtp_client_send(&c, "DATA\r\n") != ST_OK || smtp_client_read(&c, &r) != ST_OK)
        goto temp;
    if (r.code != 354) {
        const char *msg = arena_printf(ctx->a, "SMTP error from remote mail server after DATA: %s", r.first_line);
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_PASS) {
                a->result = r.code / 100 == 5 ? ST_FAIL : ST_DEFER;
                a->message = msg;
            }
        smtp_client_send(&c, "QUIT\r\n");
        conn_closed(&c);
        goto finish;
    }
    {
        write_opts wo = { .crlf = true, .dot_stuff = true };
        wo.top_headers = tp_top_headers(t, addrs, ctx);
        wo.add_headers = tp_added_headers(t, addrs, ctx);
        const char *hr = NULL;
        tp_opt_expand(t, "headers_remove", ctx, &hr, &err);
        wo.remove_headers = hr;
        unsigned long long bytes;
        stage = "end of data";
        if (transport_write_message(ctx->m, ctx->data_fd, &wo, client_sink, &c, &bytes, ctx->a, &err) != ST_OK ||
            smtp_client_send(&c, ".\r\n") != ST_OK || smtp_client_read(&c, &r) != ST_OK)
            goto temp;
    }
    {
        bool ok = r.code / 100 == 2;
        const char *msg = ok ? NULL
            : arena_printf(ctx->a, "SMTP error from remote mail server after end of data: %s", r.first_line);
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_PASS) {
                a->result = ok ? ST_OK : r.code / 100 == 5 ? ST_FAIL : ST_DEFER;
                a->message = msg;
                a->remote_reply_5xx = r.code / 100 == 5;
                if (ok) {
                    a->smtp_confirmation = r.first_line;
                    a->dsn_passed_on = c.dsn;
                }
            }
    }
    keep_or_quit(t, h, port, &c, ctx);
finish:
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_SKIP)
            a->result = ST_DEFER;
    return ST_OK;

host_refused: {
        const char *msg = arena_printf(ctx->a, "SMTP error from remote mail server after %s: %s",
                                       stage, r.first_line);
        set_all(addrs, ST_DEFER, msg, true);
        smtp_client_send(&c, "QUIT\r\n");
        conn_closed(&c);
        /* a 5xx greeting or HELO: this host will not take it; try the next */
        for (address_item *a = addrs; a; a = a->next)
            if (a->message == msg)
                a->remote_reply_5xx = r.code / 100 == 5;
        return ST_DEFER;
    }
temp: {
        const char *msg = arena_printf(ctx->a, "%s after %s",
                                       c.last_code ? c.last_reply : "Remote host closed connection or timed out",
                                       stage);
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_DEFER || a->result == ST_PASS || a->result == ST_SKIP) {
                a->result = ST_DEFER;
                a->message = msg;
            }
        conn_closed(&c);
        return ST_DEFER;
    }
}

status transport_smtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    for (address_item *a = addrs; a; a = a->next) {
        a->result = ST_DEFER;
        a->message = NULL;
    }
    tp_set_vars(t, addrs);
    char *err = NULL;
    host_item *hosts = addrs->hosts;
    if (!hosts || tp_opt_bool(t, "hosts_override")) {
        host_item *th = transport_hosts(t, ctx, &err);
        if (th)
            hosts = th;
    }
    if (!hosts) {
        set_all(addrs, ST_DEFER, "no hosts to deliver to (neither the router nor the smtp transport gives any)", false);
        return ST_DEFER;
    }
    /* names still to be looked up */
    bool need = false;
    for (host_item *h = hosts; h; h = h->next)
        if (!h->address)
            need = true;
    if (need) {
        dns_resolver *res = dns_process_resolver(&err, ctx->a);
        route_ctx rc = { .a = ctx->a };
        if (res)
            rc.dns = dns_iface_unbound(res);
        status st = route_lookup_hosts(hosts, &rc, &err);
        if (st != ST_OK) {
            set_all(addrs, ST_DEFER, err, false);
            return ST_DEFER;
        }
    }
    long long max_try = driver_opt(t, "hosts_max_try") ? driver_opt(t, "hosts_max_try")->n : 5;
    int tried = 0;
    bool pending = true;
    for (host_item *h = hosts; h && tried < max_try; h = h->next, tried++) {
        if (try_host(t, addrs, h, ctx) == ST_OK)
            break;
        pending = false;
        for (address_item *a = addrs; a; a = a->next)
            if (a->result == ST_DEFER)
                pending = true;
        if (!pending)
            break;
    }
    /* replies from the remote server may go to the sender (Exim's
     * af_pass_message); 4xx replies get Exim's error numbers */
    for (address_item *a = addrs; a; a = a->next) {
        if (!a->message || strncmp(a->message, "SMTP error from remote mail server after ", 41) != 0)
            continue;
        a->pass_message = true;
        if (a->result != ST_DEFER)
            continue;
        const char *after = a->message + 41;
        if (!strncasecmp(after, "RCPT TO", 7))
            a->basic_errno = ERRNO_RCPT4XX;
        else if (!strncasecmp(after, "MAIL FROM", 9))
            a->basic_errno = ERRNO_MAIL4XX;
        else if (!strncasecmp(after, "DATA", 4) || !strncasecmp(after, "end of data", 11))
            a->basic_errno = ERRNO_DATA4XX;
    }
    /* still deferred after trying: list the message as waiting for these
     * hosts, so a delivery that gets through to one sends it down the same
     * connection (not when a connection carries one message only) */
    pending = false;
    for (address_item *a = addrs; a; a = a->next)
        if (a->result == ST_DEFER && a->host_used)
            pending = true;
    if (pending && max_messages(t) != 1 && tried > 0)
        smtp_wait_add(t->name, hosts, ctx->m->id, ctx->a);
    return ST_OK;
}
