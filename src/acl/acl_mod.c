/* acl_mod.c: ACL modifiers that act as soon as they are met: add_header,
 * remove_header, set, control, delay, logwrite, log_reject_target,
 * continue, queue, udpsend.  ("message", "log_message" and "endpass" are
 * handled by the statement logic in acl.c.) */
#include "acl/acl_int.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "expand/match.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define W(x) (1u << ACL_WHERE_##x)
#define W_ALL ((1u << ACL_WHERE__COUNT) - 1)
#define W_MSG (W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(NOT_SMTP))

static acl_rc not_here(acl_ctx *c, const char *name)
{
    return acl_fail_text(c, RC_ERROR, "cannot use %s condition in %s ACL", name, acl_wherename(c->where));
}

static bool here(acl_ctx *c, unsigned allowed)
{
    return (allowed & (1u << c->where)) != 0;
}

/* ---- headers --------------------------------------------------------------- */

static void push_header(acl_ctx *c, const char *text, int where)
{
    acl_header **tail = &c->sess->headers;
    for (acl_header *h = *tail; h; h = h->next) {
        if ((int)h->where == where && strcmp(h->text, text) == 0)
            return;            /* identical lines are added once */
        tail = &h->next;
    }
    arena *ha = ps.msg ? ps.msg : c->a;
    acl_header *h = arena_calloc(ha, sizeof *h);
    h->text = arena_strdup(ha, text);
    h->where = where;
    *tail = h;
}

/* A header line is "name:" with printing non-space characters in the name. */
static bool valid_header(const char *s)
{
    const char *p = s;
    while (*p > 32 && *p < 127 && *p != ':')
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p != s && *p == ':';
}

static acl_rc add_header(acl_ctx *c, const char *text)
{
    if (!here(c, W_MSG))
        return not_here(c, "add_header");
    /* strip leading and trailing newlines */
    while (*text == '\n' || *text == '\r')
        text++;
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    const char *p = text, *end = text + len;
    while (p < end) {
        /* one header line: up to a newline not followed by white space */
        const char *q = p;
        while (q < end && !(*q == '\n' && q + 1 < end && q[1] != ' ' && q[1] != '\t'))
            q++;
        char *line = arena_strndup(c->a, p, (size_t)(q - p));
        p = q < end ? q + 1 : q;
        int where = ACL_HDR_APPEND;
        static const struct { const char *pfx; int where; } pos[] = {
            { ":at_start:", ACL_HDR_AT_START }, { ":after_received:", ACL_HDR_AFTER_RECEIVED },
            { ":at_start_rfc:", ACL_HDR_AT_START_RFC }, { ":at_end:", ACL_HDR_APPEND },
        };
        for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
            if (strncmp(line, pos[i].pfx, strlen(pos[i].pfx)) == 0) {
                where = pos[i].where;
                line += strlen(pos[i].pfx);
                break;
            }
        if (!*line)
            continue;
        if (!valid_header(line))
            line = arena_printf(c->a, "X-ACL-Warn: %s", line);
        push_header(c, line, where);
    }
    return RC_OK;
}

static acl_rc remove_header(acl_ctx *c, const char *list)
{
    if (!here(c, W_MSG))
        return not_here(c, "remove_header");
    if (*list)
        push_header(c, list, ACL_HDR_REMOVE);
    return RC_OK;
}

/* ---- control ---------------------------------------------------------------- */

typedef struct control_def {
    const char *name;
    unsigned allowed;
    bool takes_opts;
} control_def;

static const control_def controls[] = {
    { "allow_auth_unadvertised", W(CONNECT) | W(HELO), false },
    { "caseful_local_part", W(RCPT), false },
    { "caselower_local_part", W(RCPT), false },
    { "cutthrough_delivery", W(RCPT), true },
    { "bmi_run", 0, false },
    { "debug", W_ALL, true },
    { "dk_verify", W(CONNECT) | W(HELO) | W(MAIL) | W(RCPT) | W(PREDATA), false },
    { "dkim_disable_verify", W(CONNECT) | W(HELO) | W(MAIL) | W(RCPT) | W(PREDATA) | W(NOT_SMTP), false },
    { "dmarc_disable_verify", W(CONNECT) | W(HELO) | W(MAIL) | W(RCPT) | W(PREDATA) | W(NOT_SMTP), false },
    { "dmarc_enable_forensic", W(CONNECT) | W(HELO) | W(MAIL) | W(RCPT) | W(PREDATA) | W(NOT_SMTP), false },
    { "enforce_sync", W_ALL & ~W(NOT_SMTP), false },
    { "fakedefer", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA), true },
    { "fakereject", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA), true },
    { "freeze", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(NOT_SMTP), true },
    { "no_callout_flush", W_ALL & ~W(NOT_SMTP), false },
    { "no_delay_flush", W_ALL & ~W(NOT_SMTP), false },
    { "no_enforce_sync", W_ALL & ~W(NOT_SMTP), false },
    { "no_mbox_unspool", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(NOT_SMTP), false },
    { "no_multiline_responses", W_ALL & ~W(NOT_SMTP), false },
    { "no_pipelining", W_ALL & ~W(NOT_SMTP), false },
    { "queue", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(NOT_SMTP), true },
    { "queue_only", W(MAIL) | W(RCPT) | W(PREDATA) | W(DATA) | W(NOT_SMTP), false },
    { "submission", W(MAIL) | W(RCPT) | W(PREDATA), true },
    { "suppress_local_fixups", W(MAIL) | W(RCPT) | W(PREDATA) | W(NOT_SMTP), false },
};

static acl_rc control(acl_ctx *c, const char *arg)
{
    size_t nl = strcspn(arg, "/");
    const char *opts = arg[nl] == '/' ? arg + nl + 1 : NULL;
    const control_def *d = NULL;
    for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++)
        if (strlen(controls[i].name) == nl && strncmp(controls[i].name, arg, nl) == 0)
            d = &controls[i];
    if (!d)
        return acl_fail_text(c, RC_ERROR, "syntax error in \"control=%s\"", arg);
    if (strcmp(d->name, "bmi_run") == 0)
        return acl_fail_text(c, RC_ERROR, "\"control=bmi_run\" is not supported by postern (Brightmail needs "
                             "a vendor SDK)");
    if (opts && !d->takes_opts)
        return acl_fail_text(c, RC_ERROR, "syntax error in \"control=%s\"", arg);
    if (!here(c, d->allowed))
        return acl_fail_text(c, RC_ERROR, "cannot use \"control=%s\" in %s ACL", d->name, acl_wherename(c->where));
    acl_controls *k = &c->sess->controls;
    arena *ma = ps.msg ? ps.msg : c->a;
    const char *n = d->name;
    if (strcmp(n, "allow_auth_unadvertised") == 0) {
        k->allow_auth_unadvertised = true;
    } else if (strcmp(n, "dk_verify") == 0) {
        k->dk_verify = true;
    } else if (strcmp(n, "cutthrough_delivery") == 0 ||
        strcmp(n, "debug") == 0 || strcmp(n, "no_mbox_unspool") == 0) {
        /* accepted; nothing in postern depends on them yet */
    } else if (strcmp(n, "caseful_local_part") == 0) {
        /* $local_part shows the client's case for the rest of this RCPT */
        k->caseful_local_part = true;
        if (ps.local_part_caseful)
            ps.local_part = ps.local_part_caseful;
    } else if (strcmp(n, "caselower_local_part") == 0) {
        k->caseful_local_part = false;
        if (ps.local_part) {
            char *lc = arena_strdup(ps.msg ? ps.msg : c->a, ps.local_part);
            for (char *p = lc; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            ps.local_part = lc;
        }
    } else if (strcmp(n, "dkim_disable_verify") == 0) {
        k->dkim_disable_verify = true;
    } else if (strcmp(n, "dmarc_disable_verify") == 0) {
        k->dmarc_disable_verify = true;
    } else if (strcmp(n, "dmarc_enable_forensic") == 0) {
        k->dmarc_enable_forensic = true;
    } else if (strcmp(n, "enforce_sync") == 0) {
        k->enforce_sync = true;
        k->no_enforce_sync = false;
    } else if (strcmp(n, "no_enforce_sync") == 0) {
        k->no_enforce_sync = true;
        k->enforce_sync = false;
    } else if (strcmp(n, "fakedefer") == 0 || strcmp(n, "fakereject") == 0) {
        bool defer = n[4] == 'd';
        k->fakedefer = defer;
        k->fakereject = !defer;
        k->fakereject_message = opts && *opts ? arena_strdup(ma, opts) : NULL;
    } else if (strcmp(n, "freeze") == 0) {
        bool no_tell = opts && strcmp(opts, "no_tell") == 0;
        if (opts && !no_tell)
            return acl_fail_text(c, RC_ERROR, "syntax error in \"control=%s\"", arg);
        k->freeze_no_tell = k->freeze ? k->freeze_no_tell && no_tell : no_tell;
        k->freeze = true;
    } else if (strcmp(n, "no_callout_flush") == 0) {
        k->no_callout_flush = true;
    } else if (strcmp(n, "no_delay_flush") == 0) {
        k->no_delay_flush = true;
    } else if (strcmp(n, "no_multiline_responses") == 0) {
        k->no_multiline_responses = true;
    } else if (strcmp(n, "no_pipelining") == 0) {
        k->no_pipelining = true;
    } else if (strcmp(n, "queue") == 0 || strcmp(n, "queue_only") == 0) {
        if (opts && strcmp(opts, "first_pass_route") != 0)
            return acl_fail_text(c, RC_ERROR, "syntax error in \"control=%s\"", arg);
        k->queue_only = true;
        k->queue_first_pass_route = opts != NULL;
    } else if (strcmp(n, "submission") == 0) {
        k->submission = true;
        while (opts && *opts) {
            if (strncmp(opts, "sender_retain", 13) == 0 && (opts[13] == '/' || !opts[13])) {
                k->submission_sender_retain = true;
                opts += 13;
            } else if (strncmp(opts, "domain=", 7) == 0) {
                size_t l = strcspn(opts + 7, "/");
                k->submission_domain = arena_strndup(ma, opts + 7, l);
                opts += 7 + l;
            } else if (strncmp(opts, "name=", 5) == 0) {
                /* the name runs to the end: it may contain slashes */
                k->submission_name = arena_strdup(ma, opts + 5);
                break;
            } else {
                return acl_fail_text(c, RC_ERROR, "syntax error in \"control=%s\"", arg);
            }
            if (*opts == '/')
                opts++;
        }
    } else if (strcmp(n, "suppress_local_fixups") == 0) {
        k->suppress_local_fixups = true;
    }
    return RC_OK;
}

/* ---- logging, delay, set ----------------------------------------------------- */

static acl_rc logwrite(acl_ctx *c, const char *s)
{
    int which = LOG_MAIN;
    if (*s == ':') {
        const char *e = strchr(s + 1, ':');
        if (e) {
            which = 0;
            const char *l = arena_strndup(c->a, s + 1, (size_t)(e - s - 1));
            int sep = ',';
            char *w;
            while ((w = list_next(&l, &sep, c->a))) {
                if (strcmp(w, "main") == 0)
                    which |= LOG_MAIN;
                else if (strcmp(w, "reject") == 0)
                    which |= LOG_REJECT;
                else if (strcmp(w, "panic") == 0)
                    which |= LOG_PANIC;
                else {
                    /* Exim logs the mistake and carries on */
                    log_write(LOG_MAIN | LOG_PANIC, "unknown log name in \"%s\" in \"logwrite\" in %s ACL", s,
                              acl_wherename(c->where));
                    return RC_OK;
                }
            }
            s = e + 1;
            while (*s == ' ')
                s++;
        }
    }
    if (which)
        acl_log(which, s);
    return RC_OK;
}

static acl_rc log_reject_target(acl_ctx *c, const char *s)
{
    int which = 0, sep = 0;
    char *w;
    while ((w = list_next(&s, &sep, c->a))) {
        if (strcmp(w, "main") == 0)
            which |= LOG_MAIN;
        else if (strcmp(w, "reject") == 0)
            which |= LOG_REJECT;
        else if (strcmp(w, "panic") == 0)
            which |= LOG_PANIC;
        else
            return acl_fail_text(c, RC_ERROR, "unknown log name \"%s\" in \"log_reject_target\"", w);
    }
    if (c->res) {
        c->res->log_reject_target_set = true;
        c->res->log_reject_target = which;
    }
    return RC_OK;
}

static acl_rc delay(acl_ctx *c, const char *s)
{
    if (c->where == ACL_WHERE_NOTQUIT)
        return not_here(c, "delay");
    long long secs;
    if (opt_parse_time(s, &secs) != ST_OK || secs < 0)
        return acl_fail_text(c, RC_ERROR, "syntax error in argument for \"delay\" modifier: \"%s\" is not a "
                             "time value", s);
    if (secs > ACL_DELAY_MAX) {
        log_write(LOG_MAIN, "ACL delay of %llds reduced to the maximum of %ds", secs, ACL_DELAY_MAX);
        secs = ACL_DELAY_MAX;
    }
    if (ps.host_checking) {
        fprintf(stdout, "delay skipped in -bh checking mode (%llds)\n", secs);
        fflush(stdout);
        return RC_OK;
    }
    if (secs == 0)
        return RC_OK;
    if (c->sess->flush && !c->sess->controls.no_delay_flush)
        c->sess->flush(c->sess->flush_ctx);
    struct timespec ts = { .tv_sec = (time_t)secs };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    c->sess->delay_total += (int)secs;
    return RC_OK;
}

static acl_rc set_var(acl_ctx *c, const char *raw)
{
    /* raw is "acl_x = value" (the config reader normalised it) */
    size_t nl = strcspn(raw, " =");
    char *name = arena_strndup(c->a, raw, nl);
    const char *v = raw + nl;
    while (*v == ' ')
        v++;
    if (*v == '=')
        v++;
    while (*v == ' ' || *v == '\t')
        v++;
    char *val;
    bool forced;
    acl_rc rc = acl_expand_arg(c, v, &val, &forced);
    if (rc != RC_OK)
        return rc;
    if (forced)
        return RC_OK;
    char *err = NULL;
    if (expand_set_acl_var(name, val, &err) != ST_OK)
        return acl_fail_text(c, RC_ERROR, "%s", err ? err : "cannot set ACL variable");
    return RC_OK;
}

/* udpsend = host : port : data */
static acl_rc udpsend(acl_ctx *c, const char *arg)
{
    int sep = 0;
    const char *l = arg;
    char *host = list_next(&l, &sep, c->a);
    char *port = list_next(&l, &sep, c->a);
    const char *data = l;
    while (*data == ' ')
        data++;
    if (!host || !port)
        return acl_fail_text(c, RC_ERROR, "missing hostname or port in \"udpsend = %s\"", arg);
    char *end;
    long pn = strtol(port, &end, 10);
    if (*end || pn <= 0 || pn > 65535)
        return acl_fail_text(c, RC_ERROR, "invalid port \"%s\" in \"udpsend\"", port);
    unsigned char ip[16];
    int fam;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']')
        host = arena_strndup(c->a, host + 1, hl - 2);
    if (!ip_parse(host, ip, &fam, NULL)) {
        /* a host name: its first address, through src/dns */
        const char *addr = NULL;
        static const int types[] = { DNS_T_A, DNS_T_AAAA };
        dns_iface d;
        char *err = NULL;
        if (ps.acl_dns) {
            d = *(const dns_iface *)ps.acl_dns;
        } else {
            dns_resolver *r = dns_process_resolver(&err, c->a);
            if (!r)
                return acl_fail_text(c, RC_DEFER, "udpsend: no DNS resolver: %s", err ? err : "?");
            d = dns_iface_unbound(r);
        }
        for (int t = 0; t < 2 && !addr; t++) {
            dns_answer ans;
            memset(&ans, 0, sizeof ans);
            if (d.lookup(d.ctx, host, types[t], c->a, &ans) == ST_OK && ans.nrr > 0)
                addr = ans.rr[0].text;
        }
        if (!addr || !ip_parse(addr, ip, &fam, NULL))
            return acl_fail_text(c, RC_DEFER, "udpsend: failed to find an address for \"%s\"", host);
    }
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    if (fam == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)pn);
        memcpy(&s4->sin_addr, ip, 4);
        sl = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)pn);
        memcpy(&s6->sin6_addr, ip, 16);
        sl = sizeof *s6;
    }
    int fd = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return acl_fail_text(c, RC_DEFER, "udpsend: socket: %s", strerror(errno));
    ssize_t r = sendto(fd, data, strlen(data), 0, (struct sockaddr *)&ss, sl);
    int e = errno;
    close(fd);
    if (r < 0)
        return acl_fail_text(c, RC_DEFER, "udpsend to %s:%ld failed: %s", host, pn, strerror(e));
    return RC_OK;
}

acl_rc acl_modifier(acl_ctx *c, const acl_cond *cd, const char *arg)
{
    const char *n = cd->name;
    if (strcmp(n, "add_header") == 0)
        return add_header(c, arg);
    if (strcmp(n, "remove_header") == 0)
        return remove_header(c, arg);
    if (strcmp(n, "control") == 0)
        return control(c, arg);
    if (strcmp(n, "logwrite") == 0)
        return logwrite(c, arg);
    if (strcmp(n, "log_reject_target") == 0)
        return log_reject_target(c, arg);
    if (strcmp(n, "delay") == 0)
        return delay(c, arg);
    if (strcmp(n, "set") == 0)
        return set_var(c, arg);
    if (strcmp(n, "continue") == 0)
        return RC_OK;          /* the expansion was the point */
    if (strcmp(n, "queue") == 0) {
        if (!here(c, W(MAIL) | W(RCPT) | W(PREDATA)))
            return not_here(c, "queue");
        c->sess->controls.queue_name = *arg ? arena_strdup(ps.msg ? ps.msg : c->a, arg) : NULL;
        return RC_OK;
    }
    if (strcmp(n, "udpsend") == 0)
        return udpsend(c, arg);
    return acl_fail_text(c, RC_ERROR, "the \"%s\" ACL modifier is not yet implemented by postern", n);
}
