/* session.c: the SMTP server dialogue.  Commands are read one line at a
 * time with a timeout; replies are buffered and flushed when the server
 * needs more input (PIPELINING).  Only CRLF.CRLF ends DATA: a bare LF or
 * CR never ends a message, and from hosts not listed in
 * smtp_accept_bare_newline_hosts a message containing one is refused. */
#include "smtp/session_int.h"
#include "acl/acl.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "message/fixups.h"
#include "message/msgbuild.h"
#include "message/rewrite.h"
#include "smtp/local.h"
#include "smtp/reclog.h"
#include "smtp/io.h"
#include "deliver/deliver.h"
#include "dns/host.h"
#include "smtp/smtp_cmd.h"
#include "spool/spool.h"
#include "tls/tls.h"
#include "auth/auth.h"

#include "core/timefmt.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <pwd.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>


static const char *opt_expand(enum main_opt o, const char *dflt, arena *a)
{
    const char *v = cfg_str(o);
    if (!v)
        v = dflt;
    if (!v)
        return NULL;
    char *out, *err;
    if (expand_string(v, a, &out, &err) != ST_OK) {
        log_write(LOG_MAIN | LOG_PANIC, "expansion of %s failed: %s", main_optdefs[o].name, err ? err : "");
        return NULL;
    }
    return out;
}

/* -bh prints its reasoning on stderr, as Exim does. */
static void bh_note(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bh_note(session *s, const char *fmt, ...)
{
    if (s->p->mode != SMTP_BH)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs(">>> ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool ses_host_in(session *s, enum main_opt o, const char *dflt)
{
    const char *list = cfg_str(o);
    if (!list)
        list = dflt;
    if (!list) {
        bh_note(s, "host in %s? no (option unset)", main_optdefs[o].name);
        return false;
    }
    if (!*list) {                 /* set, to nothing */
        bh_note(s, "host in %s? no (end of list)", main_optdefs[o].name);
        return false;
    }
    const char *ip = s->p->remote_ip ? s->p->remote_ip : "";
    char *err = NULL;
    const char *val = NULL;
    status st = match_ip(ip, list, ps.scratch, &val, &err);
    if (st == ST_DEFER || st == ST_ERROR)
        log_write(LOG_MAIN, "%s: host list check deferred or failed for %s: %s",
                  main_optdefs[o].name, ip, err ? err : "");
    if (st == ST_OK)
        bh_note(s, "host in %s? yes (matched \"%s\")", main_optdefs[o].name, val ? val : list);
    else
        bh_note(s, "host in %s? no (end of list)", main_optdefs[o].name);
    return st == ST_OK;
}

/* A domain list check, traced under -bh as Exim does. */
static bool domain_in(session *s, const char *domain, enum main_opt o)
{
    const char *val = NULL;
    char *err = NULL;
    status st = match_domain(domain, cfg_str(o), ps.scratch, &val, &err);
    if (st == ST_OK)
        bh_note(s, "%s in %s? yes (matched \"%s\")", domain, main_optdefs[o].name, val ? val : "");
    else
        bh_note(s, "%s in %s? no (end of list)", domain, main_optdefs[o].name);
    return st == ST_OK;
}

/* ---- replies ------------------------------------------------------------ */

/* The first reply to each RCPT: when every one was the same, a DATA
 * without recipients repeats it (Exim's rcpt_smtp_response). */
static void rcpt_response(session *s, const char *text)
{
    s->rcpt_in_progress = false;
    if (!s->rcpt_resp)
        s->rcpt_resp = arena_strdup(ps.msg, text);
    else if (strcmp(s->rcpt_resp, text) != 0)
        s->rcpt_resp_differs = true;
}

void ses_reply(session *s, const char *code, const char *text)
{
    if (s->rcpt_in_progress)
        rcpt_response(s, arena_printf(ps.scratch, "%s %s", code, text));
    /* multi-line texts: "code-line" for all but the last */
    const char *p = text;
    bool multi = !s->acl.controls.no_multiline_responses;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (nl && multi) {
            io_printf(&s->io, "%s-%.*s\r\n", code, (int)(nl - p), p);
            p = nl + 1;
            continue;
        }
        io_printf(&s->io, "%s %s\r\n", code, nl ? arena_strndup(ps.scratch, p, (size_t)(nl - p)) : p);
        break;
    }
}

/* Lines that more will follow under the same code ("code-text"). */
void ses_reply_more(session *s, const char *code, const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        io_printf(&s->io, "%s-%.*s\r\n", code, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

void ses_replyf(session *s, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t = arena_vprintf(ps.scratch, fmt, ap);
    va_end(ap);
    ses_reply(s, code, t);
}

static void set_peer(session *s)
{
    if (!s->p->remote_ip) {
        s->who = s->ident ? s->ident : "unknown";
        s->peer = arena_printf(s->a, "U=%s", s->who);
        return;
    }
    gstr g;
    gstr_init(&g, s->a, 64);
    gstr_cat(&g, "H=");
    if (ps.sender_host_name && *ps.sender_host_name)
        gstr_printf(&g, "%s ", ps.sender_host_name);
    if (ps.sender_helo_name)
        gstr_printf(&g, "(%s) ", ps.sender_helo_name);
    gstr_printf(&g, "[%s]", s->p->remote_ip);
    if (s->ident)
        gstr_printf(&g, " U=%s", s->ident);
    s->peer = g.s;
    s->who = g.s + 2;
}

/* $sender_host_name: PTR with forward confirmation, once per connection
 * (host_lookup at connect, helo_lookup_domains at HELO) */
static void lookup_host_name(session *s)
{
    char *derr = NULL;
    dns_resolver *res = dns_process_resolver(&derr, ps.conn);
    if (!res) {
        log_write(LOG_MAIN, "host name lookup for %s: %s", s->p->remote_ip, derr ? derr : "no resolver");
        return;
    }
    dns_iface di = dns_iface_unbound(res);
    host_name_result hr;
    memset(&hr, 0, sizeof hr);
    status hs = host_name_lookup(&di, s->p->remote_ip, ps.conn, &hr);
    ps.host_lookup_done = true;
    if (hs == ST_OK) {
        ps.sender_host_name = hr.name;
    } else {
        ps.host_lookup_failed = hs == ST_FAIL;
        if (hs == ST_FAIL && logsel_on(&cfg->logsel, LS_HOST_LOOKUP_FAILED))
            log_write(LOG_MAIN, "no host name found for IP address %s", s->p->remote_ip);
    }
    set_peer(s);
}

/* The rejectlog gets the envelope and the headers of a message refused
 * after DATA, as Exim writes them. */
void ses_reject_headers(session *s)
{
    log_reject_headers(s->sender, s->msg);
}

/* An ACL message longer than 75 characters is broken into lines for the
 * reply, as Exim does: each line is cut at a space within its first 75
 * characters (but after its 35th), preferring the last space that follows
 * a colon, else the last space; failing that, at the next space. */
static const char *split_long(const char *msg, arena *a)
{
    if (!msg || strlen(msg) <= 75)
        return msg;
    char *m = arena_strdup(a, msg);
    char *line = m;
    for (;;) {
        char *p = line;
        int n = 0;
        while (n < 75 && *p && *p != '\n')
            p++, n++;
        if (!*p)
            break;
        if (*p == '\n') {
            line = p + 1;
            continue;
        }
        char *cut = NULL;
        for (char *t = p; t > line + 35; t--)
            if (*t == ' ') {
                if (t[-1] == ':') {
                    cut = t;
                    break;
                }
                if (!cut)
                    cut = t;
            }
        if (!cut)
            for (char *t = p + 1; *t; t++)
                if (*t == ' ' || *t == '\n') {
                    cut = t;
                    break;
                }
        if (!cut)
            break;
        *cut = '\n';
        line = cut + 1;
    }
    return m;
}

/* Where a rejection is logged: main+reject unless log_reject_target said otherwise. */
static int reject_logs(const acl_result *r)
{
    return r->log_reject_target_set ? r->log_reject_target : (LOG_MAIN | LOG_REJECT);
}

/* An ACL verdict as an SMTP reply.  Returns true when accepted. */
bool ses_acl_reply(session *s, acl_where where, enum main_opt opt, const char *what,
                   const char *ok_code, const char *ok_text, bool *drop)
{
    acl_result r;
    memset(&r, 0, sizeof r);
    *drop = false;
    const char *aclname = cfg_str(opt);
    if (aclname)
        bh_note(s, "using ACL \"%s\"", aclname);
    else if (where == ACL_WHERE_RCPT || where == ACL_WHERE_VRFY || where == ACL_WHERE_EXPN)
        bh_note(s, "ACL is NULL: implicit DENY");
    status st = acl_check(where, aclname, &s->acl, ps.scratch, &r);
    if (aclname)
        bh_note(s, "end of ACL \"%s\": %s", aclname,
                st == ST_OK ? "ACCEPT" : st == ST_DISCARD ? "DISCARD" : st == ST_FAIL ? "DENY" : "DEFER");
    if (st == ST_OK || st == ST_DISCARD) {
        if (ok_code)
            ses_reply(s, ok_code, r.user_message && where != ACL_WHERE_DATA ? r.user_message : ok_text);
        return true;
    }
    const char *msg = split_long(r.user_message, ps.scratch);
    const char *why = r.log_message ? r.log_message : r.user_message;
    int logs = reject_logs(&r);
    const char *who = s->peer;
    if (where == ACL_WHERE_RCPT || where == ACL_WHERE_DATA)
        who = arena_printf(ps.scratch, "%s F=<%s>", s->peer, s->sender ? s->sender : "");
    if (where == ACL_WHERE_DATA && s->msg)
        who = arena_printf(ps.scratch, "%s %s", s->msg->id, who);   /* the id leads "after DATA" lines */
    /* A message may start with its own reply code (and enhanced code):
     * used when its class matches the verdict, as Exim does. */
    bool temp = st == ST_DEFER || st == ST_ERROR;
    const char *code = temp ? "451" : where == ACL_WHERE_VRFY ? "252" : where == ACL_WHERE_CONNECT ? "554" : "550";
    if (msg && strlen(msg) > 4 && isdigit((unsigned char)msg[0]) && isdigit((unsigned char)msg[1]) &&
        isdigit((unsigned char)msg[2]) && msg[3] == ' ' && msg[0] == code[0]) {
        code = arena_strndup(ps.scratch, msg, 3);
        msg += 4;
    }
    const char *text = !temp ? (msg ? msg : "Administrative prohibition")
                             : msg && st == ST_DEFER ? msg : "Temporary local problem - please try later";
    if (where == ACL_WHERE_RCPT && s->rcpt_in_progress)
        rcpt_response(s, text);          /* the text alone, as Exim records it */
    ses_reply(s, code, text);
    if (temp) {
        /* an ACL error is logged as Exim does: the "temporarily rejected"
         * line with its text (the panic log only gets what the condition
         * itself put there, e.g. an expansion failure) */
        if (logs)
            log_write(logs, "%s temporarily rejected %s%s%s", who, what, why ? ": " : "", why ? why : "");
        return false;
    }
    if (logs)
        log_write(logs, "%s rejected %s%s%s", who, what, why ? ": " : "", why ? why : "");
    if ((logs & LOG_REJECT) && where == ACL_WHERE_DATA && s->msg && logsel_on(&cfg->logsel, LS_REJECTED_HEADER))
        ses_reject_headers(s);
    *drop = r.drop || where == ACL_WHERE_CONNECT;
    return false;
}

static void flush_for_acl(void *ctx)
{
    io_flush(ctx);
}

/* ---- command parsing helpers ------------------------------------------- */

static bool arg_is(const char *cmd, const char *verb, const char **rest)
{
    size_t n = strlen(verb);
    if (strncasecmp(cmd, verb, n) != 0)
        return false;
    if (cmd[n] && cmd[n] != ' ' && cmd[n] != '\t')
        return false;
    const char *r = cmd + n;
    while (*r == ' ' || *r == '\t')
        r++;
    *rest = r;
    return true;
}

/* The commands Exim remembers for the C= list of a drop line. */
static void had_command(session *s, const char *cmd)
{
    static const char *const names[] = { "DATA", "BDAT", "EHLO", "EXPN", "HELO", "HELP", "MAIL",
                                         "NOOP", "QUIT", "RCPT", "RSET", "VRFY", "AUTH", "STARTTLS" };
    const char *rest;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (arg_is(cmd, names[i], &rest)) {
            s->had[s->had_n++ % SMTP_HISTORY] = names[i];
            return;
        }
}

/* " C=HELO,RCPT,...", oldest first; " C=...," once some were forgotten */
static const char *had_list(session *s)
{
    gstr g;
    gstr_init(&g, ps.scratch, 128);
    gstr_cat(&g, s->had_n > SMTP_HISTORY ? " C=..." : " C=");
    unsigned first = s->had_n > SMTP_HISTORY ? s->had_n - SMTP_HISTORY : 0;
    for (unsigned i = first; i < s->had_n; i++)
        gstr_printf(&g, "%s%s", i == first ? "" : ",", s->had[i % SMTP_HISTORY]);
    return g.s;
}

/* Count a syntax or protocol error; past smtp_max_synprot_errors the
 * drop is logged and false returned (the caller closes the connection). */
static bool synprot_count(session *s)
{
    if (++s->synprot_count <= cfg_int(MO_smtp_max_synprot_errors))
        return true;
    log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many syntax or protocol errors "
              "(last command was \"%s\", %s)", s->who, ps.smtp_command ? ps.smtp_command : "", had_list(s));
    return false;
}

/* A syntax or protocol error: logged when log_selector asks, answered and
 * counted.  Returns false when the connection is to be dropped; the reply
 * then says why under the same code. */
bool ses_synprot(session *s, bool syntax, const char *code, const char *msg)
{
    if (logsel_on(&cfg->logsel, syntax ? LS_SMTP_SYNTAX_ERROR : LS_SMTP_PROTOCOL_ERROR))
        log_write(LOG_MAIN, "SMTP %s error in \"%s\" %s %s", syntax ? "syntax" : "protocol",
                  ps.smtp_command ? ps.smtp_command : "", s->peer, msg);
    if (synprot_count(s)) {
        ses_reply(s, code, msg);
        return true;
    }
    ses_replyf(s, code, "%s\nToo many syntax or protocol errors", msg);
    return false;
}

/* The EHLO keywords in Exim's order; each host list is checked (and
 * traced under -bh) only when Exim checks it. */
static void ehlo_keywords(session *s, gstr *g)
{
    long long limit = receive_size_limit();
    if (limit > 0)
        gstr_printf(g, "SIZE %lld\n", limit);
    else
        gstr_cat(g, "SIZE\n");
    if (cfg_bool(MO_accept_8bitmime))
        gstr_cat(g, "8BITMIME\n");
    s->dsn_advertised = ses_host_in(s, MO_dsn_advertise_hosts, NULL);
    if (s->dsn_advertised)
        gstr_cat(g, "DSN\n");
    if (cfg_str(MO_acl_smtp_vrfy))
        gstr_cat(g, "VRFY\n");
    if (cfg_str(MO_acl_smtp_expn))
        gstr_cat(g, "EXPN\n");
    s->pipelining = !s->acl.controls.no_pipelining && ses_host_in(s, MO_pipelining_advertise_hosts, "*");
    if (s->pipelining)
        gstr_cat(g, "PIPELINING\n");
    if (s->pipelining && s->pipe_connect)
        gstr_cat(g, "PIPECONNECT\n");
    /* AUTH: the authenticators with a server side whose
     * server_advertise_condition allows it, to hosts in auth_advertise_hosts */
    s->n_auth_offered = 0;
    if (cfg->drivers[DC_AUTH] && !ps.sender_host_authenticated && ses_host_in(s, MO_auth_advertise_hosts, "*")) {
        bool first = true;
        for (const driver_inst *au = cfg->drivers[DC_AUTH]; au && s->n_auth_offered < 16; au = au->next) {
            if (!auth_has_server(au))
                continue;
            const optval *ac = driver_opt(au, "server_advertise_condition");
            if (ac && ac->s) {
                char *out = NULL, *err = NULL;
                status st = expand_string(ac->s, ps.scratch, &out, &err);
                if (st == ST_ERROR || st == ST_DEFER)
                    log_write(LOG_MAIN | LOG_PANIC, "failed to expand \"%s\" (%s authenticator): %s", ac->s, au->name,
                              err ? err : "");
                if (st != ST_OK || !*out || !strcasecmp(out, "no") || !strcasecmp(out, "false") || !strcmp(out, "0"))
                    continue;
            }
            gstr_printf(g, "%s %s", first ? "AUTH" : "", auth_public_name(au, ps.scratch));
            first = false;
            s->auth_offered[s->n_auth_offered++] = au;
        }
        if (!first) {
            gstr_catc(g, '\n');
            s->auth_advertised = true;
        }
    }
    s->chunking = ses_host_in(s, MO_chunking_advertise_hosts, "*");
    if (s->chunking)
        gstr_cat(g, "CHUNKING\n");
    /* (not again once in TLS) */
    if (!s->tls && ses_host_in(s, MO_tls_advertise_hosts, "*")) {
        gstr_cat(g, "STARTTLS\n");
        s->tls_advertised = true;
    }
    s->smtputf8_advertised = ses_host_in(s, MO_smtputf8_advertise_hosts, "*");
    if (s->smtputf8_advertised)
        gstr_cat(g, "SMTPUTF8\n");
    gstr_cat(g, "HELP");
}

/* "Hello" names the caller (ident, for -bs) and the client: its looked-up
 * name, else the HELO name, and its address. */
static void ehlo_reply(session *s, bool ehlo)
{
    gstr g;
    gstr_init(&g, ps.scratch, 256);
    gstr_printf(&g, "%s Hello %s%s%s", s->host, s->ident ? s->ident : "", s->ident ? " at " : "",
                ps.sender_host_name ? ps.sender_host_name : ps.sender_helo_name);
    if (s->p->remote_ip)
        gstr_printf(&g, " [%s]", s->p->remote_ip);
    if (ehlo) {
        gstr_catc(&g, '\n');
        ehlo_keywords(s, &g);
    }
    ses_reply(s, "250", g.s);
}

/* Exim's check of a HELO argument: anything from helo_accept_junk_hosts;
 * else an address literal ([ip], [IPv4:ip], [IPv6:ip]) or letters, digits,
 * dots, hyphens and the characters in helo_allow_chars. */
static bool valid_helo(session *s, const char *name)
{
    if (s->helo_accept_junk)
        return true;
    if (name[0] == '[') {
        size_t n = strlen(name);
        if (n < 3 || name[n - 1] != ']')
            return false;
        const char *ip = name + 1;
        if (strncasecmp(ip, "IPv6:", 5) == 0 || strncasecmp(ip, "IPv4:", 5) == 0)
            ip += 5;
        unsigned char buf[16];
        char *lit = arena_strndup(ps.scratch, ip, (size_t)(name + n - 1 - ip));
        return inet_pton(AF_INET, lit, buf) == 1 || inet_pton(AF_INET6, lit, buf) == 1;
    }
    const char *extra = cfg_str(MO_helo_allow_chars);
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && !(extra && strchr(extra, *p)))
            return false;
    return *name != '\0';
}

/* ---- HELO and EHLO ------------------------------------------------------ */

static void set_protocol(session *s);
static cmd_rc cmd_quit(session *s);


/* A client calling itself by our name or address gets its real name
 * looked up; helo_verify_hosts: the name must match the client (refused
 * otherwise); helo_try_verify_hosts: only $helo_verified.  False when
 * refused (the reply has been sent). */
static bool helo_checks(session *s, const char *verb, const char *arg)
{
    const char *hl = cfg_str(MO_helo_lookup_domains);
    if (!ps.sender_host_name && hl && *hl && domain_in(s, arg, MO_helo_lookup_domains) && !ps.host_lookup_done)
        lookup_host_name(s);
    if (!s->helo_verify_required && !s->helo_try_verify)
        return true;
    char *derr = NULL;
    dns_resolver *res = dns_process_resolver(&derr, ps.conn);
    bool dnssec = false;
    status hv = ST_FAIL;
    if (res) {
        dns_iface di = dns_iface_unbound(res);
        hv = host_verify_helo(&di, arg, s->p->remote_ip, NULL, ps.conn, &dnssec);
    }
    ps.helo_verified = hv == ST_OK;
    if (!s->helo_verify_required || hv == ST_OK)
        return true;
    bool temp = hv == ST_DEFER;
    ses_replyf(s, temp ? "451" : "550", "%s argument does not match calling host", verb);
    log_write(LOG_MAIN | LOG_REJECT, "%srejected \"%s %s\" from %s", temp ? "temporarily " : "", verb, arg, s->who);
    return false;
}

static cmd_rc cmd_helo(session *s, bool ehlo, const char *arg)
{
    const char *verb = ehlo ? "EHLO" : "HELO";
    if (!valid_helo(s, arg)) {
        ses_replyf(s, "501", "Syntactically invalid %s argument(s)", verb);
        log_write(LOG_MAIN | LOG_REJECT, "rejected %s from %s: syntactically invalid argument(s): %s",
                  verb, s->who, *arg ? arg : "(no argument given)");
        return synprot_count(s) ? CMD_NEXT : CMD_DROP;
    }
    ps.sender_helo_name = arena_strdup(ps.conn_t, arg);
    set_peer(s);
    if (s->p->remote_ip && !helo_checks(s, verb, arg))
        return CMD_NEXT;          /* as Exim: the name given stays in the log identity */
    bool drop = false;
    if (!ses_acl_reply(s, ACL_WHERE_HELO, MO_acl_smtp_helo, arena_printf(ps.scratch, "EHLO or HELO %s", arg),
                   NULL, NULL, &drop)) {
        ps.sender_helo_name = NULL;
        set_peer(s);
        return drop ? CMD_END : CMD_NEXT;
    }
    ses_reset_transaction(s);
    s->helo_seen = true;
    s->esmtp = ehlo;
    ehlo_reply(s, ehlo);
    set_protocol(s);
    return CMD_NEXT;
}

/* $received_protocol: smtp or esmtp, "s" after it when in TLS, "local-"
 * before it for -bs */
static void set_protocol(session *s)
{
    ps.received_protocol = arena_printf(ps.conn, "%s%s%s%s", s->p->remote_ip ? "" : "local-",
                                        s->esmtp ? "esmtp" : "smtp", s->tls ? "s" : "",
                                        ps.sender_host_authenticated ? "a" : "");
}

/* Start TLS on the connection (after go_ahead, if not NULL); what was
 * buffered in clear is dropped.  false when it failed (logged; *st
 * ST_DEFER: nothing was sent, the configuration is at fault). */
static bool start_tls_go(session *s, void (*go)(void *), status *st)
{
    io_set_tls(&s->io, NULL);       /* (drops input pipelined past STARTTLS) */
    tls_server_opts o = { .verify_try = ses_host_in(s, MO_tls_try_verify_hosts, NULL),
                          .verify_require = ses_host_in(s, MO_tls_verify_hosts, NULL) };
    char *err = NULL;
    tls_conn *t = NULL;
    *st = tls_server_start(s->io.in, s->io.out, s->io.timeout, &o, go, s, &t, ps.conn, &err);
    if (*st != ST_OK) {
        log_write(LOG_MAIN, "TLS error on connection from %s %s", s->who, err ? err : "");
        return false;
    }
    io_set_tls(&s->io, t);
    s->tls = t;
    ps.tls_in = *tls_get_info(t);
    /* what the client chose is outside input */
    ps.tls_in.peerdn = ps.tls_in.peerdn ? arena_strdup(ps.conn_t, ps.tls_in.peerdn) : NULL;
    ps.tls_in.sni = ps.tls_in.sni ? arena_strdup(ps.conn_t, ps.tls_in.sni) : NULL;
    return true;
}

/* tls_on_connect_ports: TLS at once, no STARTTLS. */
static bool start_tls(session *s, void (*go)(void *))
{
    status st;
    return start_tls_go(s, go, &st);
}

/* Is the port we were reached on in tls_on_connect_ports? */
static bool tls_on_connect_port(int port)
{
    const char *l = cfg_str(MO_tls_on_connect_ports);
    int sep = 0;
    char *it;
    while (port > 0 && l && (it = list_next(&l, &sep, ps.scratch)))
        if (atoi(it) == port)
            return true;
    return false;
}

/* ---- AUTH ------------------------------------------------------------------ */

/* The authenticator's way to the client: "334 <base64>", then its line. */
static bool auth_challenge(void *ctx, const char *data, size_t len, const char **line)
{
    session *s = ctx;
    ses_reply(s, "334", auth_b64encode(data, len, ps.scratch));
    io_flush(&s->io);
    gstr g;
    gstr_init(&g, ps.scratch, 256);
    bool too_long, bare_lf;
    if (io_read_line(&s->io, &g, SMTP_CMD_MAX, &too_long, &bare_lf) < 0)
        return false;
    *line = g.s;
    return true;
}

/* AUTH <mechanism> [initial-response] (RFC 4954), Exim's way: only when
 * advertised, once, outside a transaction; then server_set_id gives
 * $authenticated_id and the protocol gets its "a". */
static cmd_rc cmd_auth(session *s, const char *arg)
{
    if (!s->auth_advertised)
        return ses_synprot(s, false, "503", "AUTH command used when not advertised") ? CMD_NEXT : CMD_DROP;
    if (ps.sender_host_authenticated)
        return ses_synprot(s, false, "503", "already authenticated") ? CMD_NEXT : CMD_DROP;
    if (s->mail_given)
        return ses_synprot(s, false, "503", "not permitted in mail transaction") ? CMD_NEXT : CMD_DROP;
    size_t n = 0;
    while (arg[n] && !isspace((unsigned char)arg[n])) {
        if (!isalnum((unsigned char)arg[n]) && arg[n] != '-' && arg[n] != '_')
            return ses_synprot(s, true, "501", "invalid character in authentication mechanism name") ? CMD_NEXT
                                                                                                    : CMD_DROP;
        n++;
    }
    const char *mech = arena_strndup(ps.scratch, arg, n);
    const char *initial = arg[n] ? arg + n : NULL;
    while (initial && isspace((unsigned char)*initial))
        initial++;
    if (initial && !*initial)
        initial = NULL;
    const driver_inst *au = NULL;
    for (int i = 0; i < s->n_auth_offered && !au; i++)
        if (!strcasecmp(auth_public_name(s->auth_offered[i], ps.scratch), mech))
            au = s->auth_offered[i];
    if (!au)
        return ses_synprot(s, false, "504", arena_printf(ps.scratch, "%s authentication mechanism not supported", mech))
                   ? CMD_NEXT : CMD_DROP;
    auth_chan ch = { auth_challenge, s };
    const char *why = NULL;
    auth_rc rc = auth_server(au, initial, &ch, ps.scratch, &why);
    if (rc == AUTH_LOST)
        return CMD_DROP;
    /* server_set_id, with $auth1.. still set */
    const char *set_id = NULL;
    const optval *si = driver_opt(au, "server_set_id");
    if (si && si->s) {
        char *out = NULL, *err = NULL;
        if (expand_string(si->s, ps.scratch, &out, &err) == ST_OK)
            set_id = out;
        else if (rc == AUTH_OK) {
            rc = AUTH_DEFER;
            why = arena_printf(ps.scratch, "failed to expand server_set_id: %s", err ? err : "");
        }
    }
    for (int i = 0; i < 4; i++)
        ps.auth_vars[i] = NULL;
    const char *sid = set_id && *set_id ? arena_printf(ps.scratch, " (set_id=%s)", set_id) : "";
    const char *reply, *logmsg;
    switch (rc) {
    case AUTH_OK:
        ps.authenticated_id = set_id ? arena_strdup(ps.conn_t, set_id) : NULL;
        ps.sender_host_authenticated = au->name;
        ps.sender_host_auth_pubname = auth_public_name(au, ps.conn);
        s->auth_by = au;
        set_protocol(s);
        ses_reply(s, "235", "Authentication succeeded");
        return CMD_NEXT;
    case AUTH_DEFER:
        reply = "435 Unable to authenticate at present";
        logmsg = arena_printf(ps.scratch, "%s%s: %s", reply, sid, why ? why : "");
        break;
    case AUTH_BAD64:
        reply = logmsg = "501 Invalid base64 data";
        break;
    case AUTH_CANCELLED:
        reply = logmsg = "501 Authentication cancelled";
        break;
    case AUTH_UNEXPECTED:
        reply = logmsg = "553 Initial data not expected";
        break;
    default:
        reply = "535 Incorrect authentication data";
        logmsg = arena_printf(ps.scratch, "%s%s", reply, sid);
        break;
    }
    ses_reply(s, arena_strndup(ps.scratch, reply, 3), reply + 4);
    log_write(LOG_MAIN | LOG_REJECT, "%s authenticator failed for %s: %s", au->name, s->peer, logmsg);
    return CMD_NEXT;
}

/* The answer before the handshake, in clear. */
static void go_ahead(void *arg)
{
    session *s = arg;
    ses_reply(s, "220", "TLS go ahead");
    io_flush(&s->io);
}

/* STARTTLS (RFC 3207): an implied RSET, what was buffered is dropped, the
 * handshake; then everything learnt before it is forgotten (the client
 * says EHLO again).  A failed handshake leaves only QUIT. */
static cmd_rc cmd_starttls(session *s, const char *arg)
{
    if (!s->tls_advertised)
        return ses_synprot(s, false, "503", "STARTTLS command used when not advertised") ? CMD_NEXT : CMD_DROP;
    if (*arg)
        return ses_synprot(s, true, "501", "syntax error (no parameters allowed)") ? CMD_NEXT : CMD_DROP;
    ses_reset_transaction(s);
    io_flush(&s->io);
    status st = ST_OK;
    if (start_tls_go(s, go_ahead, &st)) {
        ps.sender_host_authenticated = ps.authenticated_id = ps.sender_host_auth_pubname = NULL;   /* (RFC 3207) */
        if (!cfg_bool(MO_tls_remember_esmtp))
            s->helo_seen = s->esmtp = s->pipelining = false;
        if (ps.sender_helo_name) {
            ps.sender_helo_name = NULL;
            set_peer(s);
        }
        set_protocol(s);
        return CMD_NEXT;
    }
    if (st == ST_DEFER) {
        ses_reply(s, "454", "TLS currently unavailable");
        return CMD_NEXT;
    }
    /* the handshake failed: the client may only leave */
    gstr line;
    gstr_init(&line, ps.conn, 512);
    for (;;) {
        bool too_long, bare_lf;
        const char *qa;
        if (io_read_line(&s->io, &line, SMTP_CMD_MAX, &too_long, &bare_lf) < 0)
            return CMD_DROP;
        if (!too_long && arg_is(line.s, "QUIT", &qa))
            return cmd_quit(s);
        ses_reply(s, "554", "Security failure");
        io_flush(&s->io);
    }
}

/* ---- connection start ------------------------------------------------- */

/* What Exim decides about a remote host when it connects, in its order
 * (-bh traces each list). */
static void host_flags(session *s)
{
    bool nolog = ses_host_in(s, MO_hosts_connection_nolog, NULL);
    s->log_conn = logsel_on(&cfg->logsel, LS_SMTP_CONNECTION) && !nolog;
    if (ses_host_in(s, MO_host_lookup, NULL))
        lookup_host_name(s);
}

static void host_flags_after_reject(session *s)
{
    s->unqualified_sender = ses_host_in(s, MO_sender_unqualified_hosts, NULL);
    s->unqualified_recipient = ses_host_in(s, MO_recipient_unqualified_hosts, NULL);
    s->helo_verify_required = ses_host_in(s, MO_helo_verify_hosts, NULL);
    if (!s->helo_verify_required)
        s->helo_try_verify = ses_host_in(s, MO_helo_try_verify_hosts, NULL);
    s->helo_accept_junk = ses_host_in(s, MO_helo_accept_junk_hosts, NULL);
    /* hosts_proxy: the PROXY protocol is not implemented, so the option is
     * refused when set; -bh traces the check as Exim makes it */
    bh_note(s, "host in hosts_proxy? no (option unset)");
}

/* Connection checks, the connect ACL and the banner.  False when the
 * connection is refused (the reply has been sent). */
static bool start_session(session *s)
{
    const smtp_params *p = s->p;
    if (p->mode == SMTP_BH)
        printf("\n**** SMTP testing session as if from host %s\n"
               "**** but without any ident (RFC 1413) callback.\n"
               "**** This is not for real!\n\n", p->remote_ip ? p->remote_ip : "(local)");
    fflush(stdout);
    s->unqualified_sender = s->unqualified_recipient = !p->remote_ip;
    if (p->remote_ip)
        host_flags(s);
    if (s->log_conn)
        log_write(LOG_MAIN, "SMTP connection from [%s]:%d (TCP/IP connection count = %d)",
                  p->remote_ip, p->remote_port, p->connection_count);
    if (p->drop_limit_reached) {
        ses_replyf(s, "421", "%s %s", s->host, p->drop_reason ? p->drop_reason : "Too many concurrent SMTP connections; please try again later.");
        return false;
    }
    /* tls_on_connect_ports: TLS before the banner (SMTPS) */
    bool on_connect = tls_on_connect_port(p->local_port);
    if (p->remote_ip && ses_host_in(s, MO_host_reject_connection, NULL)) {
        if (!on_connect)                  /* (a TLS client would not understand it) */
            ses_reply(s, "554", "SMTP service not available");
        if (logsel_on(&cfg->logsel, LS_CONNECTION_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "refused connection from %s (host_reject_connection)", s->who);
        return false;
    }
    if (p->remote_ip)
        host_flags_after_reject(s);
    /* synchronization is checked on TCP/IP connections only (not -bs/-bh) */
    s->enforce_sync = cfg_bool(MO_smtp_enforce_sync) && p->mode == SMTP_DAEMON;
    bool drop = false;
    if (!ses_acl_reply(s, ACL_WHERE_CONNECT, MO_acl_smtp_connect, "connection", NULL, NULL, &drop))
        return false;
    if (on_connect && !start_tls(s, NULL))
        return false;
    /* PIPECONNECT: a client may send EHLO (and what follows) before the banner */
    s->pipe_connect = p->remote_ip && ses_host_in(s, MO_pipelining_connect_advertise_hosts, "*");
    if (s->enforce_sync && !s->pipe_connect && io_input_pending(&s->io)) {
        ses_reply(s, "554", "SMTP synchronization error");
        log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (input sent without waiting for greeting): "
                  "rejected connection from %s", s->peer);
        return false;
    }
    const char *banner = opt_expand(MO_smtp_banner, NULL, ps.scratch);
    if (!banner) {
        char date[TIMEFMT_DATE_LEN];
        timefmt_rfc5322(time(NULL), date, sizeof date);
        banner = arena_printf(ps.scratch, "%s ESMTP postern %s %s", s->host, POSTERN_VERSION, date);
    }
    ses_reply(s, "220", banner);
    return true;
}

/* ---- MAIL, RCPT ---------------------------------------------------------- */

static cmd_rc cmd_mail(session *s, const char *arg)
{
    s->was_rej_mail = true;               /* until accepted */
    if (!s->helo_seen && ses_host_in(s, MO_hosts_require_helo, "*")) {
        ses_reply(s, "503", "HELO or EHLO required");
        log_write(LOG_MAIN | LOG_REJECT, "rejected MAIL from %s: no HELO/EHLO given", s->who);
        return CMD_NEXT;
    }
    if (s->mail_given)
        return ses_synprot(s, false, "503", "sender already given") ? CMD_NEXT : CMD_DROP;
    s->rcpt_resp = NULL;
    s->rcpt_resp_differs = false;
    dns_process_new_message();
    arg = rewrite_smtp_arg(arg, ps.conn_t);      /* "S" rewrite rules */
    smtp_mail_args ma;
    const char *perr = smtp_parse_mail(arg, s->esmtp, ps.conn_t, &ma);
    if (!perr && (ma.ret || ma.envid) && !s->dsn_advertised)
        perr = "DSN parameters not advertised";
    if (!perr && ma.smtputf8 && !s->smtputf8_advertised)
        perr = "SMTPUTF8 used when not advertised";
    if (perr)
        return ses_synprot(s, true, "501", perr) ? CMD_NEXT : CMD_DROP;
    long long limit = receive_size_limit();
    if (limit > 0 && ma.size > (unsigned long long)limit) {
        ses_reply(s, "552", "Message size exceeds maximum permitted");
        if (logsel_on(&cfg->logsel, LS_SIZE_REJECT))
            log_write(LOG_MAIN | LOG_REJECT, "rejected MAIL FROM:<%s> %s: message too big: size=%llu max=%lld",
                      ma.address, s->peer, ma.size, limit);
        return CMD_NEXT;
    }
    if (*ma.address && !strchr(ma.address, '@'))
        ma.address = arena_printf(ps.conn_t, "%s@%s", ma.address, cfg_str(MO_qualify_domain));
    /* AUTH=: the authenticated sender, from an authenticated client whose
     * server_mail_auth_condition allows it; otherwise ignored (and logged) */
    ps.authenticated_sender = NULL;
    if (ma.auth && strcmp(ma.auth, "<>") != 0) {
        char *as = NULL;
        if (smtp_xtext_decode(ma.auth, ps.conn_t, &as) < 0)
            return ses_synprot(s, true, "501", "invalid data for AUTH") ? CMD_NEXT : CMD_DROP;
        const char *ignore = NULL;
        if (!ps.sender_host_authenticated) {
            ignore = "client not authenticated";
        } else if (s->auth_by && driver_opt(s->auth_by, "server_mail_auth_condition") &&
                   driver_opt(s->auth_by, "server_mail_auth_condition")->s) {
            const char *why = NULL;
            if (auth_check_condition(s->auth_by, "server_mail_auth_condition", ps.scratch, &why) != AUTH_OK)
                ignore = ps.authenticated_id
                    ? arena_printf(ps.scratch, "server_mail_auth_condition failed: authenticated ID=\"%s\"",
                                   ps.authenticated_id)
                    : "server_mail_auth_condition failed";
        }
        if (ignore)
            log_write(LOG_MAIN, "ignoring AUTH=%s from %s (%s)", ma.auth, s->peer, ignore);
        else
            ps.authenticated_sender = as;
    }
    s->sender = ps.sender_address = ma.address;
    s->dsn_ret = ma.ret;
    s->dsn_envid = ma.envid;
    s->declared_size = ma.size;
    /* an international message: "utf8" before the protocol (Exim keeps it
     * for the rest of the session) */
    s->smtputf8 = ps.message_smtputf8 = ma.smtputf8;
    if (ma.smtputf8 && strncmp(ps.received_protocol, "utf8", 4) != 0)
        ps.received_protocol = arena_printf(ps.conn, "utf8%s", ps.received_protocol);
    bool drop = false;
    if (!ses_acl_reply(s, ACL_WHERE_MAIL, MO_acl_smtp_mail, arena_printf(ps.scratch, "MAIL <%s>", ma.address),
                   "250", "OK", &drop)) {
        s->sender = ps.sender_address = NULL;
        return drop ? CMD_END : CMD_NEXT;
    }
    s->was_rej_mail = false;
    s->mail_given = true;
    s->msg = NULL;
    return CMD_NEXT;
}

/* RCPT before MAIL: after a refused MAIL in a pipelined group it is no
 * new error (Exim). */
static cmd_rc rcpt_without_sender(session *s)
{
    if (s->pipelining && s->last_was_rej_mail) {
        ses_reply(s, "503", "sender not yet given");
        s->was_rej_mail = true;
        return CMD_NEXT;
    }
    s->was_rcpt = false;
    return ses_synprot(s, false, "503", "sender not yet given") ? CMD_NEXT : CMD_DROP;
}

static void add_recipient(session *s, const smtp_rcpt_args *ra)
{
    if (!s->msg)
        s->msg = arena_calloc(ps.msg, sizeof *s->msg);
    spool_rcpt sr = { ra->address, ra->orcpt, ra->notify, NULL, -1 };
    spool_add_rcpt(s->msg, ps.msg, &sr);
    const char **nr = arena_alloc(ps.msg, sizeof *nr * (size_t)(s->rcpt_count + 1));
    if (s->rcpt_count)
        memcpy(nr, ps.recipients, sizeof *nr * (size_t)s->rcpt_count);
    nr[s->rcpt_count++] = ra->address;
    ps.recipients = nr;
    ps.recipients_count = s->rcpt_count;
}

static cmd_rc cmd_rcpt(session *s, const char *arg)
{
    s->was_rcpt = s->rcpt_in_progress = true;
    if (!s->mail_given)
        return rcpt_without_sender(s);
    arg = rewrite_smtp_arg(arg, ps.msg_t);       /* "S" rewrite rules */
    smtp_rcpt_args ra;
    const char *perr = smtp_parse_rcpt(arg, ps.msg_t, &ra);
    if (!perr && (ra.notify || ra.orcpt) && !s->dsn_advertised)
        perr = "DSN parameters not advertised";
    if (perr)
        return ses_synprot(s, true, "501", perr) ? CMD_NEXT : CMD_DROP;
    if (!strchr(ra.address, '@')) {
        if (!s->unqualified_recipient && strcasecmp(ra.address, "postmaster") != 0) {
            ses_replyf(s, "501", "<%s>: recipient address must contain a domain", ra.address);
            return CMD_NEXT;
        }
        ra.address = arena_printf(ps.msg_t, "%s@%s", ra.address, cfg_str(MO_qualify_recipient));
    }
    long long rmax = 0;
    const char *rm = cfg_str(MO_recipients_max);
    char *out, *err;
    if (rm && expand_string(rm, ps.scratch, &out, &err) == ST_OK)
        opt_parse_int(out, &rmax);
    if (rmax > 0 && s->rcpt_count >= rmax) {
        ses_reply(s, "452", "too many recipients");
        return CMD_NEXT;
    }
    const char *at = strrchr(ra.address, '@');
    ps.local_part = arena_strndup(ps.msg_t, ra.address, (size_t)(at - ra.address));
    ps.domain = arena_strdup(ps.msg_t, at + 1);
    bool drop = false;
    if (!ses_acl_reply(s, ACL_WHERE_RCPT, MO_acl_smtp_rcpt, arena_printf(ps.scratch, "RCPT <%s>", ra.address),
                   "250", "Accepted", &drop)) {
        s->rcpt_rejected++;
        return drop ? CMD_END : CMD_NEXT;
    }
    add_recipient(s, &ra);
    return CMD_NEXT;
}

/* ---- the other commands -------------------------------------------------- */

static cmd_rc cmd_quit(session *s)
{
    acl_result r;
    memset(&r, 0, sizeof r);
    acl_check(ACL_WHERE_QUIT, cfg_str(MO_acl_smtp_quit), &s->acl, ps.scratch, &r);
    ses_replyf(s, "221", "%s closing connection", s->host);
    if (s->log_conn)
        log_write(LOG_MAIN, "SMTP connection from %s closed by QUIT", s->peer);
    return CMD_END;
}

static cmd_rc cmd_unknown(session *s, const char *cmd)
{
    if (s->unknown_count++ < cfg_int(MO_smtp_max_unknown_commands))
        return ses_synprot(s, true, "500", "unrecognized command") ? CMD_NEXT : CMD_DROP;
    ses_reply(s, "500", "Too many unrecognized commands");
    log_write(LOG_MAIN | LOG_REJECT, "SMTP call from %s dropped: too many unrecognized commands (last was \"%s\")",
              s->who, cmd);
    return CMD_END;
}

static cmd_rc command(session *s, const char *cmd)
{
    const char *arg;
    bool drop = false;
    had_command(s, cmd);
    if (arg_is(cmd, "HELO", &arg) || arg_is(cmd, "EHLO", &arg))
        return cmd_helo(s, toupper((unsigned char)cmd[0]) == 'E', arg);
    if (arg_is(cmd, "MAIL", &arg))
        return cmd_mail(s, arg);
    if (arg_is(cmd, "RCPT", &arg))
        return cmd_rcpt(s, arg);
    if (arg_is(cmd, "DATA", &arg))
        return ses_cmd_data(s, arg);
    if (arg_is(cmd, "BDAT", &arg))
        return ses_cmd_bdat(s, arg);
    if (arg_is(cmd, "QUIT", &arg))
        return cmd_quit(s);
    if (arg_is(cmd, "STARTTLS", &arg))
        return cmd_starttls(s, arg);
    if (arg_is(cmd, "AUTH", &arg))
        return cmd_auth(s, arg);
    if (arg_is(cmd, "RSET", &arg)) {
        ses_reset_transaction(s);
        ses_reply(s, "250", "Reset OK");
    } else if (arg_is(cmd, "NOOP", &arg)) {
        ses_reply(s, "250", "OK");
    } else if (arg_is(cmd, "VRFY", &arg)) {
        if (!ses_acl_reply(s, ACL_WHERE_VRFY, MO_acl_smtp_vrfy, arena_printf(ps.scratch, "VRFY %s", arg),
                       "252", "Administrative prohibition", &drop) && drop)
            return CMD_END;
    } else if (arg_is(cmd, "EXPN", &arg)) {
        if (!ses_acl_reply(s, ACL_WHERE_EXPN, MO_acl_smtp_expn, arena_printf(ps.scratch, "EXPN %s", arg),
                       "550", "Administrative prohibition", &drop) && drop)
            return CMD_END;
    } else if (arg_is(cmd, "HELP", &arg)) {
        ses_reply(s, "214", "Commands supported:\nHELO EHLO MAIL RCPT DATA BDAT NOOP QUIT RSET HELP");
    } else {
        return cmd_unknown(s, cmd);
    }
    return CMD_NEXT;
}

/* Synchronization: a command that may not be pipelined must not be
 * followed by input before its reply (TCP/IP only).  HELO/EHLO may, from a
 * PIPECONNECT client, until the first DATA. */
static bool in_sync(session *s, const char *cmd)
{
    const char *arg;
    if (!s->enforce_sync || s->acl.controls.no_enforce_sync || s->io.rpos >= s->io.rlen)
        return true;
    bool pipelineable = (s->pipelining && (arg_is(cmd, "MAIL", &arg) || arg_is(cmd, "RCPT", &arg) ||
                                           arg_is(cmd, "RSET", &arg) || arg_is(cmd, "NOOP", &arg) ||
                                           arg_is(cmd, "BDAT", &arg))) ||
                        (s->pipe_connect && (arg_is(cmd, "HELO", &arg) || arg_is(cmd, "EHLO", &arg)));
    if (pipelineable || arg_is(cmd, "DATA", &arg))
        return true;
    ses_reply(s, "554", "SMTP synchronization error");
    log_write(LOG_MAIN | LOG_REJECT, "SMTP protocol synchronization error (next input sent too soon: "
              "pipelining was%s advertised): rejected \"%.100s\" %s", s->pipelining ? "" : " not", cmd, s->peer);
    return false;
}

/* End of input or a timeout while waiting for a command. */
static void input_lost(session *s, int r)
{
    char d[32];
    opt_format_time((long long)(time(NULL) - s->started), d, sizeof d);
    if (r == IO_TIMEOUT) {
        ses_replyf(s, "421", "%s SMTP command timeout - closing connection", s->host);
        log_write(LOG_MAIN, "SMTP command timeout on connection from %s", s->peer);
    } else if (s->mail_given || s->rcpt_count) {
        log_write(LOG_MAIN, "unexpected %s while reading SMTP command from %s D=%s",
                  s->p->remote_ip ? "disconnection" : "EOF", s->who, d);
    }
}

/* ---- the command loop --------------------------------------------------- */

int smtp_session(const smtp_params *p)
{
    session S, *s = &S;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->a = ps.conn;
    s->started = time(NULL);
    s->dfd = -1;
    gstr_init(&s->bdat_line, ps.conn, 256);
    long long cmd_timeout = 5 * 60;
    const char *rt = cfg_str(MO_smtp_receive_timeout);
    if (rt) {
        char *out, *err;
        long long t;
        if (expand_string(rt, ps.scratch, &out, &err) == ST_OK && opt_parse_time(out, &t) == ST_OK)
            cmd_timeout = t;
    }
    io_init(&s->io, p->in, p->out, (int)cmd_timeout);
    s->acl.flush = flush_for_acl;
    s->acl.flush_ctx = &s->io;

    ps.sender_host_address = p->remote_ip ? arena_strdup(ps.conn_t, p->remote_ip) : NULL;
    ps.sender_host_port = p->remote_port;
    ps.interface_address = p->local_ip ? arena_strdup(ps.conn, p->local_ip) : NULL;
    ps.interface_port = p->local_port;
    ps.host_checking = p->mode == SMTP_BH;
    ps.message_size = -1;
    const char *active = opt_expand(MO_smtp_active_hostname, NULL, ps.conn);
    s->host = active && *active ? active : cfg_str(MO_primary_hostname);
    ps.smtp_active_hostname = s->host;
    ps.received_protocol = p->remote_ip ? "smtp" : "local-smtp";
    if (p->mode == SMTP_BS) {
        /* -bs: the caller is known by its login ($sender_ident), as Exim */
        struct passwd *pw = getpwuid(getuid());
        s->ident = pw ? arena_strdup(ps.conn, pw->pw_name) : NULL;
    }
    set_peer(s);

    bool started = start_session(s);
    io_flush(&s->io);
    if (!started)
        return 0;

    gstr line;
    gstr_init(&line, ps.conn, 512);
    cmd_rc next = CMD_NEXT;
    while (next == CMD_NEXT) {
        arena_reset(ps.scratch);
        bool too_long, bare_lf;
        int r = io_read_line(&s->io, &line, SMTP_CMD_MAX, &too_long, &bare_lf);
        if (r < 0) {
            input_lost(s, r);
            next = CMD_DROP;
            break;
        }
        ps.smtp_command = arena_strdup(ps.scratch, line.s);
        s->last_was_rcpt = s->was_rcpt;
        s->last_was_rej_mail = s->was_rej_mail;
        s->was_rcpt = s->was_rej_mail = false;
        next = too_long ? (ses_synprot(s, true, "500", "Command line too long") ? CMD_NEXT : CMD_DROP)
                        : command(s, line.s);
        if (next == CMD_NEXT && !in_sync(s, line.s))
            next = CMD_DROP;
    }
    if (s->messages == 0 && !s->mail_given && p->remote_ip && logsel_on(&cfg->logsel, LS_SMTP_NO_MAIL))
        log_write(LOG_MAIN, "no MAIL in SMTP connection from %s D=%lds", s->peer, (long)(time(NULL) - s->started));
    ses_reset_transaction(s);
    io_flush(&s->io);
    if (s->tls) {
        tls_close(s->tls, true);
        io_set_tls(&s->io, NULL);
        s->tls = NULL;
    }
    return next == CMD_DROP;
}

