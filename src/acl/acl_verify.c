/* acl_verify.c: the "verify" condition: helo, header_syntax, not_blind,
 * header_names_ascii, certificate, reverse_host_lookup; sender, recipient
 * and header_sender route addresses with the routers' verify settings. */
#include "acl/acl_int.h"
#include "acl/acl_callout.h"
#include "core/log.h"
#include "route/route.h"
#include "dns/dns.h"
#include "expand/match.h"
#include "spool/spool.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool data_stage(acl_where w)
{
    return w == ACL_WHERE_DATA || w == ACL_WHERE_NOT_SMTP;
}

static acl_rc cannot(acl_ctx *c, const char *what)
{
    return acl_fail_text(c, RC_ERROR, "cannot verify %s in ACL for %s", what, acl_wherename(c->where));
}

/* The header's name (without the colon) and its value (after it). */
static bool split_header(const spool_header *h, arena *a, char **name, const char **value)
{
    const char *colon = memchr(h->text, ':', h->len);
    if (!colon)
        return false;
    size_t nl = (size_t)(colon - h->text);
    while (nl && (h->text[nl - 1] == ' ' || h->text[nl - 1] == '\t'))
        nl--;
    *name = arena_strndup(a, h->text, nl);
    *value = arena_strndup(a, colon + 1, h->len - (size_t)(colon + 1 - h->text));
    return true;
}

static bool name_in(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (strcasecmp(name, *names) == 0)
            return true;
    return false;
}

static bool unqualified_ok(acl_ctx *c, bool sender_side)
{
    if (!ps.sender_host_address)
        return true;
    const char *list = cfg ? cfg_str(sender_side ? MO_sender_unqualified_hosts : MO_recipient_unqualified_hosts)
                           : NULL;
    if (!list)
        return false;
    return match_ip(ps.sender_host_address, list, c->a, NULL, NULL) == ST_OK;
}

static acl_rc header_syntax(acl_ctx *c)
{
    static const char *const checked[] = { "sender", "from", "reply-to", "to", "cc", "bcc",
                                           "resent-sender", "resent-from", "resent-reply-to",
                                           "resent-to", "resent-cc", "resent-bcc", NULL };
    static const char *const sender_side[] = { "sender", "from", "reply-to", "resent-sender",
                                               "resent-from", "resent-reply-to", NULL };
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        char *name;
        const char *value;
        if (h->type == '*' || !split_header(h, c->a, &name, &value) || !name_in(name, checked))
            continue;
        const char *failing = NULL;
        const char *e = acl_hdr_syntax(c->a, value, unqualified_ok(c, name_in(name, sender_side)), &failing);
        if (e) {
            const char *m = arena_printf(c->a, "%s: failing address in \"%s:\" header is: %s", e, name,
                                         failing ? failing : "");
            *c->lmsg = m;
            ps.acl_verify_message = m;
            if (cfg && cfg_bool(MO_smtp_return_error_details))
                *c->umsg = arena_printf(c->a, "Rejected after DATA: %s", m);
            return RC_FAIL;
        }
    }
    return RC_OK;
}

static acl_rc not_blind(acl_ctx *c, bool caseless)
{
    static const char *const to_cc[] = { "to", "cc", "resent-to", "resent-cc", NULL };
    int n = 0;
    const char **addrs = NULL;
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        char *name;
        const char *value;
        if (h->type == '*' || !split_header(h, c->a, &name, &value) || !name_in(name, to_cc))
            continue;
        const char **got;
        int k = acl_hdr_addresses(c->a, value, &got);
        const char **na = arena_alloc(c->a, sizeof *na * (size_t)(n + k + 1));
        if (n)
            memcpy(na, addrs, sizeof *na * (size_t)n);
        if (k)
            memcpy(na + n, got, sizeof *na * (size_t)k);
        addrs = na;
        n += k;
    }
    for (int i = 0; i < ps.recipients_count && ps.recipients; i++) {
        const char *r = ps.recipients[i];
        const char *ra = strrchr(r, '@');
        size_t rl = ra ? (size_t)(ra - r) : strlen(r);
        bool found = false;
        for (int j = 0; j < n && !found; j++) {
            const char *x = addrs[j], *xa = strrchr(x, '@');
            size_t xl = xa ? (size_t)(xa - x) : strlen(x);
            if (xl != rl || (caseless ? strncasecmp(x, r, rl) : strncmp(x, r, rl)) != 0)
                continue;
            found = strcasecmp(xa ? xa : "", ra ? ra : "") == 0;
        }
        if (!found) {
            *c->lmsg = "bcc recipient detected";
            if (cfg && cfg_bool(MO_smtp_return_error_details))
                *c->umsg = "Rejected after DATA: bcc recipient detected";
            return RC_FAIL;
        }
    }
    return RC_OK;
}

static acl_rc names_ascii(acl_ctx *c)
{
    for (const spool_header *h = ps.msg_headers; h; h = h->next) {
        if (h->type == '*')
            continue;
        for (size_t i = 0; i < h->len && h->text[i] != ':'; i++) {
            unsigned char ch = (unsigned char)h->text[i];
            if (ch < 33 || ch > 126) {
                const char *colon = memchr(h->text, ':', h->len);
                size_t nl = colon ? (size_t)(colon - h->text) : h->len;
                *c->lmsg = arena_printf(c->a, "Invalid character in header \"%.*s\" found", (int)nl, h->text);
                return RC_FAIL;
            }
        }
    }
    return RC_OK;
}

static status lookup(acl_ctx *c, const char *name, int type, dns_answer *ans)
{
    dns_iface d;
    if (ps.acl_dns) {
        d = *(const dns_iface *)ps.acl_dns;
    } else {
        char *err = NULL;
        dns_resolver *r = dns_process_resolver(&err, c->a);
        if (!r) {
            memset(ans, 0, sizeof *ans);
            ans->st = ST_DEFER;
            return ST_DEFER;
        }
        d = dns_iface_unbound(r);
    }
    memset(ans, 0, sizeof *ans);
    d.lookup(d.ctx, name, type, c->a, ans);
    return ans->st;
}

static bool same_ip(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    int fx, fy;
    if (!ip_parse(a, x, &fx, NULL) || !ip_parse(b, y, &fy, NULL))
        return false;
    return fx == fy && memcmp(x, y, fx == 4 ? 4 : 16) == 0;
}

/* Does name resolve (A/AAAA) to the client's address? */
static bool forward_matches(acl_ctx *c, const char *name)
{
    static const int types[] = { DNS_T_A, DNS_T_AAAA };
    for (int t = 0; t < 2; t++) {
        dns_answer ans;
        if (lookup(c, name, types[t], &ans) != ST_OK)
            continue;
        for (int i = 0; i < ans.nrr; i++)
            if (ans.rr[i].text && same_ip(ans.rr[i].text, ps.sender_host_address))
                return true;
    }
    return false;
}

/* The client's verified host name: a PTR name that resolves back to its
 * address.  Looked up once per connection, as Exim does: the result goes
 * to ps.sender_host_name / ps.host_lookup_failed, and a failure is logged. */
static const char *host_name(acl_ctx *c)
{
    if (ps.sender_host_name && *ps.sender_host_name)
        return ps.sender_host_name;
    if (ps.host_lookup_done)
        return NULL;
    char *rev = dns_reverse_name(ps.sender_host_address, NULL, c->a);
    dns_answer ans;
    const char *found = NULL;
    if (rev && lookup(c, rev, DNS_T_PTR, &ans) == ST_OK)
        for (int i = 0; i < ans.nrr && !found; i++)
            if (ans.rr[i].text && forward_matches(c, ans.rr[i].text))
                found = ans.rr[i].text;
    ps.host_lookup_done = true;
    ps.host_lookup_failed = !found;
    if (found)
        ps.sender_host_name = arena_strdup(ps.conn ? ps.conn : c->a, found);
    else
        log_write(LOG_MAIN, "no host name found for IP address %s", ps.sender_host_address);
    return ps.sender_host_name;
}

static acl_rc helo(acl_ctx *c)
{
    if (!ps.sender_host_address)
        return RC_OK;               /* -bs and local input: always true */
    const char *h = ps.sender_helo_name;
    if (!h || !*h)
        return RC_FAIL;
    size_t hl = strlen(h);
    if (h[0] == '[' && h[hl - 1] == ']') {
        const char *lit = h + 1;
        size_t ll = hl - 2;
        if (ll > 5 && strncasecmp(lit, "IPv6:", 5) == 0) {
            lit += 5;
            ll -= 5;
        }
        return same_ip(arena_strndup(c->a, lit, ll), ps.sender_host_address) ? RC_OK : RC_FAIL;
    }
    const char *hn = host_name(c);
    if (hn && strcasecmp(hn, h) == 0)
        return RC_OK;
    return forward_matches(c, h) ? RC_OK : RC_FAIL;
}

static acl_rc reverse_lookup(acl_ctx *c, bool defer_ok)
{
    if (!ps.sender_host_address)
        return RC_OK;
    if (host_name(c))
        return RC_OK;
    *c->lmsg = "host lookup failed for reverse lookup check (failed to find host name from IP address)";
    (void)defer_ok;
    return RC_FAIL;
}

/* verify = header_sender: one address of the Sender:, Reply-To: or From:
 * lines (looked at in that order) must verify through the routers. */
static acl_rc header_sender(acl_ctx *c)
{
    static const char *const order[] = { "sender", "reply-to", "from" };
    bool deferred = false;
    const char *last = NULL;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        size_t nl = strlen(order[k]);
        bool seen = false;
        for (const spool_header *h = ps.msg_headers; h; h = h->next) {
            if (h->type == '*' || h->len <= nl || strncasecmp(h->text, order[k], nl) != 0 || h->text[nl] != ':')
                continue;
            seen = true;
            const char **addrs = NULL;
            int n = acl_hdr_addresses(c->a, h->text + nl + 1, &addrs);
            for (int i = 0; i < n; i++) {
                const char *msg = NULL;
                status st = route_verify_address(addrs[i], true, c->a, &msg);
                if (st == ST_OK)
                    return RC_OK;
                if (st == ST_DEFER)
                    deferred = true;
                last = msg;
            }
        }
        (void)seen;
    }
    ps.acl_verify_message = last;
    if (deferred)
        return acl_fail_text(c, RC_DEFER, "all attempts to verify a sender in a header line deferred");
    *c->lmsg = "there is no valid sender in any header line";
    return RC_FAIL;
}


/* A callout that failed or deferred: Exim's texts for the client and the
 * logs.  For a sender, the details go before "Sender verify failed" (Exim
 * sends them as the reply's first lines) and into a log line of their own. */
static acl_rc callout_failed(acl_ctx *c, bool sender, const char *addr, const callout_opts *co,
                             const callout_result *cr)
{
    bool defer = cr->st == ST_DEFER;
    const char *message = cr->message ? cr->message : "";
    if (!sender) {
        ps.recipient_verify_failure = cr->failure;
        *c->lmsg = cr->message;         /* NULL: the user message (a cached failure) */
        *c->umsg = cr->user_message ? cr->user_message : cr->message;
        return defer ? RC_DEFER : RC_FAIL;
    }
    ps.sender_verify_failure = cr->failure;
    if (!co->no_details && (defer || logsel_on(&cfg->logsel, LS_SENDER_VERIFY_FAIL)))
        log_write(LOG_MAIN | LOG_REJECT, "%s sender verify %s for <%s>%s%s", acl_host_ident(c->a),
                  defer ? "defer" : "fail", addr, cr->message ? ": " : "", message);
    if (defer) {
        *c->lmsg = "Could not complete sender verify callout";
        *c->umsg = cfg_bool(MO_smtp_return_error_details) && cr->user_message
                   ? (cr->message ? arena_printf(c->a, "%s\n%s", cr->message, cr->user_message) : cr->user_message)
                   : *c->lmsg;
        return RC_DEFER;
    }
    *c->lmsg = "Sender verify failed";
    *c->umsg = *c->lmsg;
    if (!co->no_details && cr->user_message) {
        const char *pre =
            cr->pmfail ? arena_printf(c->a, "Postmaster verification failed while checking <%s>\n%s\n"
                                      "Several RFCs state that you are required to have a postmaster\n"
                                      "mailbox for each mail domain. This host does not accept mail\n"
                                      "from domains whose servers reject the postmaster address.",
                                      addr, cr->user_message)
            : cr->nsfail ? arena_printf(c->a, "Callback setup failed while verifying <%s>\n%s\n"
                                        "The initial connection, or a HELO or MAIL FROM:<> command was\n"
                                        "rejected. Refusing MAIL FROM:<> does not help fight spam, disregards\n"
                                        "RFC requirements, and stops you from receiving standard bounce\n"
                                        "messages. This host does not accept mail from domains whose servers\n"
                                        "refuse bounces.", addr, cr->user_message)
            : arena_printf(c->a, "Verification failed for <%s>\n%s", addr, cr->user_message);
        *c->umsg = arena_printf(c->a, "%s\nSender verify failed", pre);
    }
    return RC_FAIL;
}

acl_rc acl_verify(acl_ctx *c, const char *arg)
{
    size_t n = strcspn(arg, "/=");
    char *what = arena_strndup(c->a, arg, n);
    const char *opts = arg[n] ? arg + n + 1 : "";
    for (char *p = what; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    acl_where w = c->where;
    if (strcmp(what, "helo") == 0) {
        if (w == ACL_WHERE_NOT_SMTP)
            return cannot(c, what);
        return helo(c);
    }
    if (strcmp(what, "header_syntax") == 0) {
        if (!data_stage(w))
            return cannot(c, what);
        return header_syntax(c);
    }
    if (strcmp(what, "not_blind") == 0) {
        if (!data_stage(w))
            return cannot(c, what);
        bool caseless = false;
        if (*opts) {
            if (strcasecmp(opts, "case_insensitive") != 0)
                return acl_fail_text(c, RC_ERROR, "bad option \"%s\" for verify = not_blind", opts);
            caseless = true;
        }
        return not_blind(c, caseless);
    }
    if (strcmp(what, "header_names_ascii") == 0) {
        if (!data_stage(w))
            return cannot(c, what);
        return names_ascii(c);
    }
    if (strcmp(what, "certificate") == 0)
        return ps.tls_in.certificate_verified ? RC_OK : RC_FAIL;   /* a TLS client's verified certificate */
    if (strcmp(what, "reverse_host_lookup") == 0)
        return reverse_lookup(c, strstr(opts, "defer_ok") != NULL);
    if (strcmp(what, "recipient") == 0) {
        if (w != ACL_WHERE_RCPT && w != ACL_WHERE_VRFY)
            return cannot(c, what);
    } else if (strcmp(what, "sender") == 0) {
        if (w == ACL_WHERE_CONNECT || w == ACL_WHERE_HELO || w == ACL_WHERE_QUIT ||
            w == ACL_WHERE_NOTQUIT || w == ACL_WHERE_VRFY || w == ACL_WHERE_EXPN)
            return cannot(c, what);
    } else if (strcmp(what, "header_sender") == 0) {
        if (!data_stage(w))
            return cannot(c, what);
    } else if (strcmp(what, "csa") == 0) {
        return acl_fail_text(c, RC_DEFER, "verify = csa is not yet implemented by postern");
    } else {
        return acl_fail_text(c, RC_ERROR, "expected \"sender[=address]\", \"recipient\", \"helo\", "
                             "\"header_syntax\", \"header_sender\", \"header_names_ascii\" or "
                             "\"reverse_host_lookup\" at start of ACL condition \"verify %s\"", arg);
    }
    /* the options after the verify word (and after sender's address) */
    const char *slash = strchr(arg, '/');
    callout_opts co;
    const char *perr = callout_parse(slash ? slash + 1 : "", arg, what[0] == 's', what[0] == 'h', c->a, &co);
    if (perr)
        return acl_fail_text(c, RC_ERROR, "%s", perr);
    if (what[0] == 'h') {
        if (co.timeout > 0)
            return acl_fail_text(c, RC_ERROR, "callouts for verify = header_sender are not implemented by postern "
                                 "(ACL condition \"verify %s\")", arg);
        return header_sender(c);
    }
    if (what[0] == 's' && ps.sender_address && !*ps.sender_address && arg[n] != '=')
        return RC_OK;     /* a bounce: nothing to verify */
    {
        bool sender = what[0] == 's';
        const char *addr;
        if (sender)
            addr = arg[n] == '=' ? arena_strndup(c->a, arg + n + 1, strcspn(arg + n + 1, "/")) : ps.sender_address;
        else
            addr = arena_printf(c->a, "%s@%s", ps.local_part ? ps.local_part : "", ps.domain ? ps.domain : "");
        if (!addr)
            return RC_FAIL;
        if (sender && !*addr)
            return RC_OK;
        if (sender)
            ps.sender_verify_failure = NULL;
        else
            ps.recipient_verify_failure = NULL;
        const char *msg = NULL;
        const address_item *routed = NULL;
        /* route the address with the routers' verify settings; then, when
         * asked for, the callout (acl_callout.c) */
        status st = route_verify_address_full(addr, sender, co.success_on_redirect, c->a, &msg, &routed);
        callout_result cr;
        /* a callout may take a while: what the client is owed goes first */
        if (st == ST_OK && co.timeout > 0 && c->sess && c->sess->flush && !c->sess->controls.no_callout_flush)
            c->sess->flush(c->sess->flush_ctx);
        if (st == ST_OK && co.timeout > 0 && callout_run(routed, addr, !sender, &co, c->a, &cr)) {
            if (cr.st == ST_OK || (cr.st == ST_DEFER && (co.defer_ok || (co.callout_defer_ok && cr.callout_defer))))
                return RC_OK;
            return callout_failed(c, sender, addr, &co, &cr);
        }
        if (st == ST_OK || (st == ST_DEFER && co.defer_ok))
            return RC_OK;
        ps.acl_verify_message = msg;
        if (st == ST_DEFER) {
            *c->umsg = sender ? arena_printf(c->a, "%s\nCould not complete sender verify", msg) : msg;
            *c->lmsg = arena_printf(c->a, "%s verify defer for <%s>: %s", sender ? "sender" : "recipient", addr, msg);
            return RC_DEFER;
        }
        *c->umsg = sender ? arena_printf(c->a, "Verification failed for <%s>\n%s\nSender verify failed", addr, msg)
                          : msg;
        *c->lmsg = sender ? "Sender verify failed" : msg;
        if (sender && logsel_on(&cfg->logsel, LS_SENDER_VERIFY_FAIL))
            log_write(LOG_MAIN | LOG_REJECT, "H=%s%s%s[%s] sender verify fail for <%s>: %s",
                      ps.sender_helo_name ? "(" : "", ps.sender_helo_name ? ps.sender_helo_name : "",
                      ps.sender_helo_name ? ") " : "",
                      ps.sender_host_address ? ps.sender_host_address : "local", addr, msg);
        return RC_FAIL;
    }
}
