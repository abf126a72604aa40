/* reclog.c: the "<=" log line. */
#include "smtp/reclog.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "message/msgbuild.h"
#include "expand/expand.h"
#include "core/timefmt.h"

#include <ctype.h>
#include <string.h>

static const char *header_value(const spool_msg *m, const char *name, arena *a)
{
    spool_header *h = mb_find_header((spool_msg *)m, name);
    if (!h)
        return NULL;
    const char *v = strchr(h->text, ':') + 1;
    while (isspace((unsigned char)*v))
        v++;
    /* unfold into one line */
    gstr g;
    gstr_init(&g, a, 64);
    for (const char *p = v; *p; p++) {
        if (*p == '\n') {
            while (p[1] == ' ' || p[1] == '\t')
                p++;
            if (p[1])
                gstr_catc(&g, ' ');
            continue;
        }
        gstr_catc(&g, *p);
    }
    return g.s;
}

void log_tls_in(gstr *g)
{
    const log_selectors *ls = &cfg->logsel;
    if (!ps.tls_in.cipher)
        return;
    if (logsel_on(ls, LS_TLS_CIPHER))
        gstr_printf(g, " X=%s", ps.tls_in.cipher);
    if (logsel_on(ls, LS_TLS_CERTIFICATE_VERIFIED) && ps.tls_in.peercert)
        gstr_printf(g, " CV=%s", ps.tls_in.certificate_verified ? "yes" : "no");
    if (logsel_on(ls, LS_TLS_PEERDN) && ps.tls_in.peerdn)
        gstr_printf(g, " DN=\"%s\"", ps.tls_in.peerdn);
    if (logsel_on(ls, LS_TLS_SNI) && ps.tls_in.sni)
        gstr_printf(g, " SNI=%s", ps.tls_in.sni);
}

void log_reject_headers(const char *sender, const spool_msg *m)
{
    gstr g;
    gstr_init(&g, ps.scratch, 1024);
    gstr_printf(&g, "Envelope-from: <%s>\n", sender ? sender : "");
    for (int i = 0; i < m->n_rcpt; i++)
        gstr_printf(&g, "Envelope-to: <%s>\n", m->rcpt[i].address);
    for (const spool_header *h = m->headers; h; h = h->next)
        gstr_printf(&g, "%c %.*s", h->type, (int)h->len, h->text);
    if (g.len && g.s[g.len - 1] == '\n')
        gstr_truncate(&g, g.len - 1);
    log_write(LOG_REJECT | LOG_NOMAIN, "%s", g.s);
}

void log_received(const reclog *r)
{
    const log_selectors *ls = &cfg->logsel;
    const spool_msg *m = r->m;
    gstr g;
    gstr_init(&g, ps.scratch, 256);
    gstr_printf(&g, "%s <= %s", m->id, *m->sender ? m->sender : "<>");
    if (r->ref)
        gstr_printf(&g, " R=%s", r->ref);
    if (r->user)
        gstr_printf(&g, " U=%s", r->user);
    if (r->host) {
        gstr_printf(&g, " %s", r->host);
        if (logsel_on(ls, LS_INCOMING_PORT))
            gstr_printf(&g, ":%d", r->host_port);
    }
    if (r->iface && logsel_on(ls, LS_INCOMING_INTERFACE))
        gstr_printf(&g, " I=[%s]:%d", r->iface, r->iface_port);
    gstr_printf(&g, " P=%s", r->protocol);
    log_tls_in(&g);
    if (ps.sender_host_authenticated) {
        gstr_printf(&g, " A=%s", ps.sender_host_authenticated);
        if (ps.authenticated_id) {
            gstr_printf(&g, ":%s", ps.authenticated_id);
            if (logsel_on(ls, LS_SMTP_MAILAUTH) && ps.authenticated_sender)
                gstr_printf(&g, ":%s", ps.authenticated_sender);
        }
    }
    gstr_printf(&g, " S=%llu", r->size);
    if (logsel_on(ls, LS_RECEIVE_TIME))
        gstr_printf(&g, " RT=%.3fs", r->receive_secs);
    const char *id = header_value(m, "Message-ID", ps.scratch);
    if (id && (r->msgid_created ? logsel_on(ls, LS_MSG_ID_CREATED) : logsel_on(ls, LS_MSG_ID))) {
        /* the id as an address, without <> (Exim); id*= when we made it */
        const char *lt = strchr(id, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        size_t n;
        if (lt && gt) {
            id = lt + 1;
            n = (size_t)(gt - lt - 1);
        } else {
            while (*id == ' ' || *id == '\t')
                id++;
            n = strcspn(id, " \t\r\n");
        }
        gstr_printf(&g, " %s%.*s", r->msgid_created ? "id*=" : "id=", (int)n, id);
    }
    if (logsel_on(ls, LS_SUBJECT)) {
        const char *subj = header_value(m, "Subject", ps.scratch);
        if (subj) {
            gstr_cat(&g, " T=\"");
            for (const char *p = subj; *p; p++) {
                if (*p == '"' || *p == '\\')
                    gstr_catc(&g, '\\');
                gstr_catc(&g, *p);
            }
            gstr_catc(&g, '"');
        }
    }
    if (logsel_on(ls, LS_RECEIVED_SENDER))
        gstr_printf(&g, " from <%s>", m->sender);
    if (logsel_on(ls, LS_RECEIVED_RECIPIENTS)) {
        gstr_cat(&g, " for");
        for (int i = 0; i < m->n_rcpt; i++)
            gstr_printf(&g, " %s", m->rcpt[i].address);
    }
    log_write(LOG_MAIN, "%s", g.s);
}

/* Received: header: received_header_text when set (expanded), else
 * Exim's default shape; a semicolon and the date are appended.  It goes
 * first.  remote_ip: the SMTP client (NULL for local input, with ident
 * the caller's login). */
void received_header_add(spool_msg *m, const char *remote_ip, const char *ident, const char *sender)
{
    gstr g;
    gstr_init(&g, ps.msg, 256);
    const char *rht = cfg_str(MO_received_header_text);
    char *text = NULL, *err = NULL;
    if (rht) {
        status st = expand_string(rht, ps.msg, &text, &err);
        if (st != ST_OK && st != ST_FAIL_FORCED) {
            log_write(LOG_MAIN | LOG_PANIC, "expansion of received_header_text failed: %s", err ? err : "");
            text = NULL;
        }
        if (st == ST_FAIL_FORCED)
            return;          /* forced failure: no Received: header */
    }
    if (text) {
        gstr_cat(&g, text);
    } else {
        gstr_cat(&g, "Received: ");
        if (remote_ip && ps.sender_host_name && *ps.sender_host_name) {
            gstr_printf(&g, "from %s ([%s]%s%s)\n\t", ps.sender_host_name, remote_ip,
                        ps.sender_helo_name ? " helo=" : "", ps.sender_helo_name ? ps.sender_helo_name : "");
        } else if (remote_ip) {
            gstr_printf(&g, "from [%s]", remote_ip);
            if (ps.sender_helo_name)
                gstr_printf(&g, " (helo=%s)", ps.sender_helo_name);
            gstr_cat(&g, "\n\t");
        } else if (ident) {
            gstr_printf(&g, "from %s ", ident);     /* a local caller: the login */
            if (ps.sender_helo_name)
                gstr_printf(&g, "(helo=%s)\n\t", ps.sender_helo_name);
        } else if (ps.sender_helo_name) {
            gstr_printf(&g, "(helo=%s)\n\t", ps.sender_helo_name);
        }
        gstr_printf(&g, "by %s with %s ", cfg_str(MO_primary_hostname), ps.received_protocol);
        /* TLS: Exim's default text gives " (TLS1.3) tls <suite>" after the
         * space that follows the protocol */
        if (ps.tls_in.ver)
            gstr_printf(&g, " (%s)", ps.tls_in.ver);
        if (ps.tls_in.cipher_std)
            gstr_printf(&g, " tls %s\n\t", ps.tls_in.cipher_std);
        gstr_printf(&g, "(postern %s)\n\t", POSTERN_VERSION);
        if (sender && *sender)
            gstr_printf(&g, "(envelope-from <%s>)\n\t", sender);
        gstr_printf(&g, "id %s", m->id);
        if (m->n_rcpt == 1)
            gstr_printf(&g, "\n\tfor %s", m->rcpt[0].address);
    }
    char date[TIMEFMT_DATE_LEN];
    timefmt_rfc5322(m->received, date, sizeof date);
    gstr_printf(&g, ";\n\t%s\n", date);
    /* Received: goes first */
    spool_header *h = arena_calloc(ps.msg, sizeof *h);
    h->type = 'P';
    h->text = g.s;
    h->len = g.len;
    h->next = m->headers;
    m->headers = h;
    if (!m->headers_tail)
        m->headers_tail = h;
}

long long receive_size_limit(void)
{
    long long limit = 0;
    const char *ls = cfg_str(MO_message_size_limit);
    char *out, *err;
    if (ls && expand_string(ls, ps.scratch, &out, &err) == ST_OK)
        opt_parse_int(out, &limit);
    return limit;
}
