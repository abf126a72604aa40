/* dnslist.c: the dnslists condition (see dnslist.h).  Each item names a
 * list domain, optional returned-address constraints, and optional explicit
 * keys; IP keys are inverted, names are used as they are.  Only A records
 * in 127.0.0.0/8 count as "listed" unless a constraint list says which. */
#include "dns/dnslist.h"

#include "core/gstr.h"
#include "core/list.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { MT_NOT = 1, MT_ALL = 2 };

static void note(const dnslist_ctx *c, arena *a, const char *fmt, const char *x,
                 const char *y, const char *z)
{
    if (c->log)
        c->log(c->logctx, arena_printf(a, fmt, x, y, z));
}

void dnslist_parse_item(const char *item, arena *a, dnslist_item *out)
{
    char *d = arena_strdup(a, item);
    memset(out, 0, sizeof *out);
    char *key = strchr(d, '/');
    if (key)
        *key++ = '\0';
    out->key = key;
    char *ip = strchr(d, '=');
    if (!ip) {
        ip = strchr(d, '&');
        out->bitmask = ip != NULL;
    }
    if (ip) {
        if (ip > d && ip[-1] == '!') {
            out->negate = true;
            ip[-1] = '\0';
        }
        *ip++ = '\0';
        if (!out->bitmask && (*ip == '=' || *ip == '&')) {
            out->bitmask = *ip++ == '&';
            out->all = true;
        }
        out->iplist = ip;
    }
    out->domain = out->domain_txt = d;
    char *comma = strchr(d, ',');
    if (comma) {
        *comma++ = '\0';
        out->domain = comma;
    }
}

/* IPv4 text -> host-order value; false for anything else */
static bool v4(const char *s, uint32_t *out)
{
    struct in_addr in;
    if (inet_pton(AF_INET, s, &in) != 1)
        return false;
    *out = ntohl(in.s_addr);
    return true;
}

static status one_check(const dnslist_ctx *c, const char *domain, const char *domain_txt,
                        const char *keydomain, const char *prepend, const char *iplist,
                        bool bitmask, int match_type, status defer_return, arena *a,
                        dnslist_result *res)
{
    char *query = arena_printf(a, "%s.%s", prepend, domain);
    if (strlen(query) >= 256) {
        note(c, a, "dnslist query is too long (ignored): %.256s%s%s...", query, "", "");
        return ST_FAIL;
    }
    dns_answer ans;
    status st = c->dns.lookup(c->dns.ctx, query, DNS_T_A, a, &ans);
    if (st == ST_OK) {
        int n = 0;
        for (int i = 0; i < ans.nrr; i++)
            if (ans.rr[i].type == DNS_T_A && ans.rr[i].text)
                n++;
        if (n == 0)
            st = ST_NOTFOUND;            /* e.g. a CNAME without A records */
    }
    if (st == ST_NOTFOUND)
        return ST_FAIL;
    if (st != ST_OK) {
        note(c, a, "DNS list lookup defer (probably timeout) for %s: %s%s", query,
             defer_return == ST_OK ? "assumed in list"
             : defer_return == ST_FAIL ? "assumed not in list" : "returned DEFER", "");
        if (defer_return == ST_OK) {
            res->value = NULL;
            res->text = NULL;
        }
        return defer_return;
    }

    gstr addl;
    gstr_init(&addl, a, 64);
    for (int i = 0; i < ans.nrr; i++) {
        if (ans.rr[i].type != DNS_T_A || !ans.rr[i].text)
            continue;
        if (addl.len)
            gstr_cat(&addl, ", ");
        gstr_cat(&addl, ans.rr[i].text);
    }

    if (iplist) {
        int i;
        const char *hit = NULL;
        for (i = 0; i < ans.nrr; i++) {
            const char *addr = ans.rr[i].text;
            if (ans.rr[i].type != DNS_T_A || !addr)
                continue;
            const char *p = iplist;
            int sep = ',';
            char *item;
            hit = NULL;
            if (bitmask) {
                uint32_t got = 0, mask = 0, want;
                if (v4(addr, &got)) {
                    if ((got & 0xff000000u) != 0x7f000000u)
                        note(c, a, "DNS list lookup for %s at %s returned %s; "
                             "not in 127.0/8 and discarded", keydomain, domain, addr);
                    else
                        mask = got;
                }
                while ((item = list_next(&p, &sep, a)))
                    if (v4(item, &want) && (want & mask) == want) {
                        hit = item;
                        break;
                    }
            } else {
                while ((item = list_next(&p, &sep, a)))
                    if (strcmp(addr, item) == 0) {
                        hit = item;
                        break;
                    }
            }
            /* "any" stops at the first hit, "all" at the first miss */
            if (((match_type & MT_ALL) != 0) == (hit == NULL))
                break;
        }
        bool stopped = i < ans.nrr;
        if ((match_type == MT_NOT || match_type == MT_ALL) != !stopped)
            return ST_FAIL;
    } else {
        bool ok = false;
        for (int i = 0; i < ans.nrr; i++) {
            uint32_t got;
            const char *addr = ans.rr[i].text;
            if (ans.rr[i].type != DNS_T_A || !addr)
                continue;
            if (v4(addr, &got) && (got & 0xff000000u) == 0x7f000000u)
                ok = true;
            else
                note(c, a, "DNS list lookup for %s at %s returned %s; "
                     "not in 127.0/8 and discarded", keydomain, domain, addr);
        }
        if (!ok)
            return ST_FAIL;
    }

    if (domain_txt != domain)
        return one_check(c, domain_txt, domain_txt, keydomain, prepend, NULL, false,
                         match_type, defer_return, a, res);

    res->text = NULL;
    dns_answer txt;
    if (c->dns.lookup(c->dns.ctx, query, DNS_T_TXT, a, &txt) == ST_OK)
        for (int i = 0; i < txt.nrr; i++)
            if (txt.rr[i].type == DNS_T_TXT && txt.rr[i].nstrings > 0) {
                /* the first string of the first record; NULs end it */
                res->text = arena_strndup(a, txt.rr[i].strings[0], txt.rr[i].string_lens[0]);
                break;
            }
    res->value = addl.s;
    return ST_OK;
}

/* $dnslist_matched shows an IPv6 client address in full, as Exim does
 * (2001:0db8:0000:...:0001); IPv4 as it is. */
static const char *full_ip(const char *ip, arena *a)
{
    struct in6_addr a6;
    if (!ip || !strchr(ip, ':') || inet_pton(AF_INET6, ip, &a6) != 1)
        return ip;
    char *out = arena_alloc(a, 40);
    for (int i = 0; i < 8; i++)
        snprintf(out + i * 5, 6, "%02x%02x%s", a6.s6_addr[2 * i], a6.s6_addr[2 * i + 1], i < 7 ? ":" : "");
    return out;
}

static void check_chars(const dnslist_ctx *c, arena *a, const char *d)
{
    for (const char *t = d; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '-' && *t != '.' && *t != '_') {
            note(c, a, "dnslists domain \"%s\" contains strange characters - is this right?%s%s",
                 d, "", "");
            return;
        }
}

status dnslist_check(const dnslist_ctx *c, const char *list, arena *a, dnslist_result *out)
{
    status defer_return = ST_FAIL;
    int sep = 0;
    char *item;
    char *revhost = NULL;
    dnslist_result res = *out;

    while ((item = list_next(&list, &sep, a))) {
        if (item[0] == '+') {
            if (strcasecmp(item, "+include_unknown") == 0)
                defer_return = ST_OK;
            else if (strcasecmp(item, "+exclude_unknown") == 0)
                defer_return = ST_FAIL;
            else if (strcasecmp(item, "+defer_unknown") == 0)
                defer_return = ST_DEFER;
            else
                note(c, a, "unknown item in dnslist (ignored): %s%s%s", item, "", "");
            continue;
        }
        dnslist_item it;
        dnslist_parse_item(item, a, &it);
        int mt = (it.negate ? MT_NOT : 0) | (it.all ? MT_ALL : 0);
        check_chars(c, a, it.domain);
        if (it.domain_txt != it.domain)
            check_chars(c, a, it.domain_txt);

        if (!it.key) {
            if (!c->host_ip)
                return ST_FAIL;          /* can never match */
            if (!revhost) {
                revhost = dns_reverse_name(c->host_ip, "", a);
                if (!revhost)
                    return ST_FAIL;
                revhost[strlen(revhost) - 1] = '\0';   /* drop the "." before "" */
            }
            status rc = one_check(c, it.domain, it.domain_txt, c->host_ip, revhost,
                                  it.iplist, it.bitmask, mt, defer_return, a, &res);
            if (rc == ST_OK) {
                res.domain = it.domain_txt;
                res.matched = full_ip(c->host_ip, a);
                *out = res;
            }
            if (rc != ST_FAIL)
                return rc;
            continue;
        }

        const char *keys = it.key;
        int ksep = 0;
        bool deferred = false;
        char *kd;
        while ((kd = list_next(&keys, &ksep, a))) {
            const char *prepend = kd;
            char *rev = dns_reverse_name(kd, "", a);
            if (rev) {
                rev[strlen(rev) - 1] = '\0';
                prepend = rev;
            }
            status rc = one_check(c, it.domain, it.domain_txt, kd, prepend, it.iplist,
                                  it.bitmask, mt, defer_return, a, &res);
            if (rc == ST_OK) {
                res.domain = it.domain_txt;
                res.matched = kd;
                *out = res;
                return ST_OK;
            }
            if (rc == ST_DEFER)
                deferred = true;
        }
        if (deferred)
            return ST_DEFER;
    }
    return ST_FAIL;
}
