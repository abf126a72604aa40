/* spf_text.c: what an SPF outcome looks like to people and to other
 * programs: result names (RFC 7208 and Exim's), $spf_header_comment, the
 * Received-SPF header (RFC 7208 section 9.1) and $spf_smtp_comment. */
#include "msgauth/policy/spf_int.h"
#include "core/gstr.h"
#include "core/list.h"

#include <string.h>
#include <strings.h>

static const char *const names[] = {
    [SPF_NONE] = "none", [SPF_NEUTRAL] = "neutral", [SPF_PASS] = "pass",
    [SPF_FAIL] = "fail", [SPF_SOFTFAIL] = "softfail", [SPF_TEMPERROR] = "temperror",
    [SPF_PERMERROR] = "permerror",
};

const char *spf_result_name(spf_result r)
{
    return (unsigned)r <= SPF_PERMERROR ? names[r] : "(invalid)";
}

const char *spf_result_exim(spf_result r)
{
    if (r == SPF_TEMPERROR)
        return "err_temp";
    if (r == SPF_PERMERROR)
        return "err_perm";
    return spf_result_name(r);
}

int spf_result_parse(const char *s)
{
    for (int i = 0; i <= SPF_PERMERROR; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "err_temp") == 0)
        return SPF_TEMPERROR;
    if (strcasecmp(s, "err_perm") == 0)
        return SPF_PERMERROR;
    return -1;
}

static const char *who(const spf_outcome *o)
{
    return strcmp(o->identity, "helo") == 0 ? o->domain : o->sender;
}

const char *spf_header_comment(const spf_query *q, const spf_outcome *o, arena *a)
{
    const char *rcv = q->receiver && *q->receiver ? q->receiver : "unknown";
    const char *ip = q->ip ? q->ip : "";
    const char *w = who(o);
    switch (o->result) {
    case SPF_PASS:
        return arena_printf(a, "%s: %s of %s designates %s as permitted sender",
                            rcv, o->guessed ? "best guess record for domain" : "domain", w, ip);
    case SPF_FAIL:
        return arena_printf(a, "%s: domain of %s does not designate %s as permitted sender",
                            rcv, w, ip);
    case SPF_SOFTFAIL:
        return arena_printf(a, "%s: transitioning domain of %s does not designate %s as "
                            "permitted sender", rcv, w, ip);
    case SPF_NEUTRAL:
        return arena_printf(a, "%s: %s is neither permitted nor denied by domain of %s",
                            rcv, ip, w);
    case SPF_NONE:
        return arena_printf(a, "%s: domain of %s does not designate permitted sender hosts",
                            rcv, w);
    case SPF_TEMPERROR:
        return arena_printf(a, "%s: temporary error in processing during lookup of %s: %s",
                            rcv, w, o->problem ? o->problem : "DNS failure");
    case SPF_PERMERROR:
        return arena_printf(a, "%s: permanent error in processing domain of %s: %s",
                            rcv, o->domain, o->problem ? o->problem : "invalid record");
    }
    return "";
}

/* A quoted-string value (RFC 5322): escape backslash and quote. */
static void quoted(gstr *g, const char *s)
{
    gstr_catc(g, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            gstr_catc(g, '\\');
        if (c == '\r' || c == '\n')
            c = ' ';
        gstr_catc(g, (char)c);
    }
    gstr_catc(g, '"');
}

/* Is s usable as an unquoted dot-atom-ish value? */
static bool plain_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(strchr(".-_:[]", *s) || (*s >= '0' && *s <= '9') ||
              ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')))
            return false;
    return true;
}

/* Append " key=value;" folding before the item when the line gets long. */
static void kv(gstr *g, size_t *linestart, const char *key, const char *val, bool quote)
{
    gstr item;
    gstr_init(&item, g->a, 64);
    gstr_printf(&item, "%s=", key);
    if (quote || !plain_ok(val))
        quoted(&item, val);
    else
        gstr_cat(&item, val);
    if (g->len - *linestart + item.len + 2 > 78) {
        gstr_cat(g, "\n\t");
        *linestart = g->len - 1;
    } else {
        gstr_catc(g, ' ');
    }
    gstr_catn(g, item.s, item.len);
}

const char *spf_received(const spf_query *q, const spf_outcome *o, arena *a)
{
    gstr g;
    gstr_init(&g, a, 256);
    size_t ls = 0;
    gstr_printf(&g, "%s: %s", o->guessed ? "X-SPF-Guess" : "Received-SPF", spf_result_name(o->result));
    /* the comment, folded at spaces */
    const char *cm = spf_header_comment(q, o, a);
    gstr_cat(&g, " (");
    const char *p = cm;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t wl = sp ? (size_t)(sp - p) : strlen(p);
        if (g.len - ls + wl + 2 > 78 && p != cm) {
            gstr_cat(&g, "\n\t");
            ls = g.len - 1;
        } else if (p != cm) {
            gstr_catc(&g, ' ');
        }
        for (size_t k = 0; k < wl; k++) {     /* keep the comment a comment */
            char ch = p[k];
            if (ch == '(' || ch == ')' || ch == '\\')
                gstr_catc(&g, '\\');
            gstr_catc(&g, ch == '\r' || ch == '\n' ? ' ' : ch);
        }
        p += wl;
        while (*p == ' ')
            p++;
    }
    gstr_catc(&g, ')');
    typedef struct { const char *k, *v; bool q; } kvitem;
    kvitem items[8];
    int n = 0;
    items[n++] = (kvitem){ "client-ip", q->ip ? q->ip : "", false };
    if (strcmp(o->identity, "mailfrom") == 0)
        items[n++] = (kvitem){ "envelope-from", q->sender && *q->sender ? q->sender : o->sender, true };
    if (q->helo && *q->helo)
        items[n++] = (kvitem){ "helo", q->helo, false };
    items[n++] = (kvitem){ "receiver", q->receiver && *q->receiver ? q->receiver : "unknown", false };
    if (o->mechanism && strcmp(o->mechanism, "default") != 0)
        items[n++] = (kvitem){ "mechanism", o->mechanism, true };
    if (o->problem && (o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR))
        items[n++] = (kvitem){ "problem", o->problem, true };
    items[n++] = (kvitem){ "identity", o->identity, false };
    for (int i = 0; i < n; i++) {
        kv(&g, &ls, items[i].k, items[i].v, items[i].q);
        if (i + 1 < n)
            gstr_catc(&g, ';');
    }
    return g.s;
}

const char *spf_smtp_comment(const spf_query *q, const spf_outcome *o,
                             const char *template_, arena *a)
{
    if (o->result == SPF_FAIL && o->exp_from_record && o->explanation)
        return o->explanation;
    const char *t = template_ ? template_ : SPF_DEFAULT_SMTP_TEMPLATE;
    spf_macro_ctx m = {
        .sender = o->sender, .domain = o->domain, .ip = q->ip, .helo = q->helo,
        .receiver = q->receiver, .now = q->now ? q->now : time(NULL), .in_exp = true,
    };
    const char *at = o->sender ? strrchr(o->sender, '@') : NULL;
    m.local = at ? arena_strndup(a, o->sender, (size_t)(at - o->sender)) : "postmaster";
    m.sender_dom = at ? at + 1 : o->domain;
    char *out, *err;
    if (spf_macro_expand(t, strlen(t), &m, a, &out, &err) != ST_OK)
        return t;
    return out;
}

bool spf_result_in_list(const char *list, spf_result r, arena *scratch)
{
    int sep = 0;
    char *item;
    while ((item = list_next(&list, &sep, scratch))) {
        bool neg = false;
        while (*item == '!') {
            neg = !neg;
            item++;
        }
        bool m = strcmp(item, "*") == 0 || (int)r == spf_result_parse(item);
        if (m != neg)
            return true;
    }
    return false;
}
