/* vars_state.c: expansion variables whose values come from the current
 * connection and message in the per-process state (src/smtp fills it):
 * $sender_host_address, $sender_address, $local_part, $domain,
 * $recipients, $message_id, ... and the header variables $h_, $rh_, $bh_,
 * $lh_ (and their header_ spellings). */
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand_int.h"
#include "spool/spool.h"
#include "expand/vars_state.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *num(xs *x, long v)
{
    return arena_printf(x->w, "%ld", v);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static unsigned long current_inode;

void vars_set_inode(unsigned long inode)
{
    current_inode = inode;
}

/* A $tls_{in,out}_ variable, by the name after the prefix; NULL and
 * *known false for one that is not (yet) known here. */
static const char *tls_var(xs *x, const tls_vars *t, const char *n, bool *known)
{
    if (!strcmp(n, "cipher"))
        return or_empty(t->cipher);
    if (!strcmp(n, "cipher_std"))
        return or_empty(t->cipher_std);
    if (!strcmp(n, "ver"))
        return or_empty(t->ver);
    if (!strcmp(n, "peerdn"))
        return or_empty(t->peerdn);
    if (!strcmp(n, "sni"))
        return or_empty(t->sni);
    if (!strcmp(n, "bits"))
        return num(x, t->bits);
    if (!strcmp(n, "certificate_verified"))
        return t->certificate_verified ? "1" : "0";
    *known = false;
    return NULL;
}

const char *vars_state(xs *x, const char *name, bool *known)
{
    *known = true;
    if (strcmp(name, "inode") == 0)
        return arena_printf(x->w, "%lu", current_inode);
#define IS(s) (strcmp(name, s) == 0)
    if (IS("sender_host_address"))
        return or_empty(ps.sender_host_address);
    if (IS("sender_host_port"))
        return num(x, ps.sender_host_address ? ps.sender_host_port : 0);
    if (IS("sender_host_name"))
        return or_empty(ps.sender_host_name);
    if (IS("sender_helo_name"))
        return or_empty(ps.sender_helo_name);
    if (IS("sender_verify_failure"))
        return or_empty(ps.sender_verify_failure);
    if (IS("recipient_verify_failure"))
        return or_empty(ps.recipient_verify_failure);
    if (IS("sender_fullhost") || IS("sender_rcvhost")) {
        if (!ps.sender_host_address)
            return "";
        if (IS("sender_fullhost"))
            return ps.sender_helo_name
                ? arena_printf(x->w, "(%s) [%s]", ps.sender_helo_name, ps.sender_host_address)
                : arena_printf(x->w, "[%s]", ps.sender_host_address);
        /* $sender_rcvhost: "name ([ip] helo=x)" or "[ip] (helo=x)" */
        if (ps.sender_host_name && *ps.sender_host_name)
            return ps.sender_helo_name
                ? arena_printf(x->w, "%s ([%s] helo=%s)", ps.sender_host_name, ps.sender_host_address, ps.sender_helo_name)
                : arena_printf(x->w, "%s ([%s])", ps.sender_host_name, ps.sender_host_address);
        return ps.sender_helo_name
            ? arena_printf(x->w, "[%s] (helo=%s)", ps.sender_host_address, ps.sender_helo_name)
            : arena_printf(x->w, "[%s]", ps.sender_host_address);
    }
    if (IS("received_for"))
        return ps.recipients_count == 1 && ps.recipients ? ps.recipients[0] : "";
    if (IS("interface_address") || IS("received_ip_address"))
        return or_empty(ps.interface_address);
    if (IS("interface_port") || IS("received_port"))
        return ps.interface_address ? num(x, ps.interface_port) : "-1";
    if (IS("received_protocol"))
        return or_empty(ps.received_protocol);
    if (!strncmp(name, "auth", 4) && name[4] >= '1' && name[4] <= '4' && !name[5])
        return or_empty(ps.auth_vars[name[4] - '1']);
    if (IS("message_smtputf8"))
        return ps.message_smtputf8 ? "yes" : "no";
    /* $tls_in_*, $tls_out_*, and $tls_* (the incoming session's) */
    if (!strncmp(name, "tls_out_", 8))
        return tls_var(x, &ps.tls_out, name + 8, known);
    if (!strncmp(name, "tls_in_", 7))
        return tls_var(x, &ps.tls_in, name + 7, known);
    if (!strncmp(name, "tls_", 4))
        return tls_var(x, &ps.tls_in, name + 4, known);
    if (IS("smtp_active_hostname") && ps.smtp_active_hostname)
        return ps.smtp_active_hostname;
    if (IS("smtp_command"))
        return or_empty(ps.smtp_command);
    if (IS("authenticated_id"))
        return or_empty(ps.authenticated_id);
    if (IS("authenticated_sender"))
        return or_empty(ps.authenticated_sender);
    if (IS("sender_host_authenticated"))
        return or_empty(ps.sender_host_authenticated);
    if (IS("sender_address"))
        return or_empty(ps.sender_address);
    if (IS("message_id") || IS("message_exim_id"))
        return or_empty(ps.message_id);
    if (IS("message_size"))
        return num(x, ps.message_size);
    if (IS("body_linecount"))
        return num(x, ps.body_linecount);
    if (IS("recipients_count") || IS("rcpt_count"))
        return num(x, ps.recipients_count);
    if (IS("recipients")) {
        gstr g;
        gstr_init(&g, ps.msg_t, 64);
        for (int i = 0; i < ps.recipients_count; i++) {
            if (i)
                gstr_cat(&g, ", ");
            gstr_cat(&g, ps.recipients[i]);
        }
        return g.s;
    }
    if (IS("local_part"))
        return or_empty(ps.local_part);
    if (IS("domain"))
        return or_empty(ps.domain);
    if (IS("acl_verify_message"))
        return or_empty(ps.acl_verify_message);
    if (IS("address_data"))
        return or_empty(ps.address_data);
    if (IS("domain_data"))
        return or_empty(ps.domain_data);
    if (IS("local_part_data"))
        return or_empty(ps.local_part_data);
    if (IS("home") && ps.home_dir)
        return ps.home_dir;
    if (IS("router_name"))
        return or_empty(ps.router_name);
    if (IS("transport_name"))
        return or_empty(ps.transport_name);
    if (IS("original_local_part"))
        return ps.original_local_part ? ps.original_local_part : or_empty(ps.local_part);
    if (IS("original_domain"))
        return ps.original_domain ? ps.original_domain : or_empty(ps.domain);
    if (IS("host"))
        return or_empty(ps.deliver_host);
    if (IS("host_address"))
        return or_empty(ps.deliver_host_address);
    if (IS("local_part_prefix"))
        return or_empty(ps.local_part_prefix);
    if (IS("local_part_suffix"))
        return or_empty(ps.local_part_suffix);
    if (IS("return_path"))
        return ps.return_path ? ps.return_path : or_empty(ps.sender_address);
    if (IS("reply_address")) {
        const char *r = vars_header(x, "h_", "reply-to", 8);
        return *r ? r : vars_header(x, "h_", "from", 4);
    }
    if (IS("message_headers") || IS("message_headers_raw")) {
        /* every live header: raw, or trimmed and joined by newlines */
        bool raw = name[15] == '_';
        gstr g;
        gstr_init(&g, ps.msg_t, 256);
        for (const spool_header *h = ps.msg_headers; h; h = h->next) {
            if (h->type == '*')
                continue;
            size_t n = h->len;
            if (!raw) {
                while (n && isspace((unsigned char)h->text[n - 1]))
                    n--;
                if (g.len)
                    gstr_catc(&g, '\n');
            }
            gstr_catn(&g, h->text, n);
        }
        return g.s;
    }
    if (IS("message_body") || IS("message_body_end"))
        return or_empty(name[12] ? ps.message_body_end : ps.message_body);
    if (IS("message_body_size"))
        return num(x, ps.message_body_size);
    if (IS("body_zerocount"))
        return num(x, ps.body_zerocount);
    if (IS("thisaddress"))
        return or_empty(ps.filter_thisaddress);
    /* $n0..$n9 and $sn0..$sn9 exist only while a filter runs, as in Exim */
    if (ps.filter_running && (name[0] == 'n' || (name[0] == 's' && name[1] == 'n'))) {
        const char *d = name + (name[0] == 's' ? 2 : 1);
        if (d[0] >= '0' && d[0] <= '9' && !d[1])
            return num(x, name[0] == 's' ? ps.filter_sn[d[0] - '0'] : ps.filter_n[d[0] - '0']);
    }
    if (IS("bounce_recipient"))
        return or_empty(ps.bounce_recipient);
    if (IS("warn_message_delay") || IS("warnmsg_delay"))
        return or_empty(ps.warn_message_delay);
    if (IS("warn_message_recipients") || IS("warn_message_recipient") || IS("warnmsg_recipients") ||
        IS("warnmsg_recipient"))
        return or_empty(ps.warn_message_recipients);
    /* values the ACL engine leaves in ps */
    if (IS("sender_rate"))
        return or_empty(ps.sender_rate);
    if (IS("sender_rate_limit"))
        return or_empty(ps.sender_rate_limit);
    if (IS("sender_rate_period"))
        return or_empty(ps.sender_rate_period);
    if (IS("host_data"))
        return or_empty(ps.host_data);
    if (IS("sender_data"))
        return or_empty(ps.sender_data);
    if (IS("recipient_data"))
        return or_empty(ps.recipient_data);
    if (IS("dnslist_domain"))
        return or_empty(ps.dnslist_domain);
    if (IS("dnslist_matched"))
        return or_empty(ps.dnslist_matched);
    if (IS("dnslist_text"))
        return or_empty(ps.dnslist_text);
    if (IS("dnslist_value"))
        return or_empty(ps.dnslist_value);
    if (IS("helo_verified"))
        return ps.helo_verified ? "1" : "0";
    if (IS("host_lookup_failed"))
        return ps.host_lookup_failed ? "1" : "0";
#undef IS
    *known = false;
    return NULL;
}

/* $h_name: and friends.  kind is the variable name: h_, header_, rh_,
 * rheader_, bh_, bheader_, lh_, lheader_ (only its first letter matters). */
const char *vars_header(xs *x, const char *kind, const char *hname, size_t hlen)
{
    gstr g;
    gstr_init(&g, ps.msg_t, 64);
    bool raw = kind[0] == 'r';
    bool list = kind[0] == 'l';
    int found = 0;
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        if (h->type == '*' || h->len <= hlen || strncasecmp(h->text, hname, hlen) != 0)
            continue;
        const char *p = h->text + hlen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':')
            continue;
        p++;
        size_t n = h->len - (size_t)(p - h->text);
        if (!raw) {
            while (n && isspace((unsigned char)*p))
                p++, n--;
            while (n && isspace((unsigned char)p[n - 1]))
                n--;
        }
        if (found++)
            gstr_cat(&g, list ? "\n" : raw ? "" : "\n");
        gstr_catn(&g, p, n);
    }
    return g.s;
}
