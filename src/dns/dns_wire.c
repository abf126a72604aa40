/* dns_wire.c: the one bounded parser of DNS responses (RFC 1035 wire
 * format).  Everything here reads hostile bytes: every offset is checked
 * against the packet end, compression pointers are limited, names are
 * limited to 255 octets, the number of records kept is capped. */
#include "dns/dns.h"

#include "core/gstr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { MAX_POINTERS = 64 };

typedef struct wire {
    const unsigned char *p;
    size_t len;
} wire;

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read the (possibly compressed) name at *off.  Writes the presentation
 * form (no trailing dot, "." escaped inside labels, non-printables as \DDD,
 * as dn_expand does) into out (size >= 4*255+1); advances *off past the
 * name in place.  Returns false on malformed names. */
static bool read_name(const wire *w, size_t *off, char *out, size_t outsz)
{
    size_t o = *off, n = 0, wirelen = 0;
    bool jumped = false;
    int jumps = 0;
    for (;;) {
        if (o >= w->len)
            return false;
        unsigned c = w->p[o];
        if ((c & 0xc0) == 0xc0) {
            if (o + 1 >= w->len || ++jumps > MAX_POINTERS)
                return false;
            size_t target = (size_t)(c & 0x3f) << 8 | w->p[o + 1];
            if (!jumped)
                *off = o + 2;
            jumped = true;
            if (target >= w->len)
                return false;
            o = target;
            continue;
        }
        if (c & 0xc0)
            return false;               /* extended label types: refuse */
        o++;
        if (c == 0)
            break;
        wirelen += c + 1;
        if (wirelen > 255 || o + c > w->len)
            return false;
        if (n)
            out[n++] = '.';
        for (unsigned i = 0; i < c; i++) {
            unsigned char ch = w->p[o + i];
            if (n + 5 >= outsz)
                return false;
            if (ch == '.' || ch == '\\' || ch == '"' || ch == ';' || ch == '(' ||
                ch == ')' || ch == '@' || ch == '$') {
                out[n++] = '\\';
                out[n++] = (char)ch;
            } else if (ch <= 0x20 || ch >= 0x7f) {
                n += (size_t)snprintf(out + n, outsz - n, "\\%03u", ch);
            } else {
                out[n++] = (char)ch;
            }
        }
        o += c;
    }
    if (!jumped)
        *off = o;
    out[n] = '\0';                      /* the root is "", as glibc's dn_expand gives */
    return true;
}

static bool skip_name(const wire *w, size_t *off)
{
    char buf[4 * 256];
    return read_name(w, off, buf, sizeof buf);
}

/* Decode type-specific fields of rr from rdata at [ro, ro+rdlen). */
static bool decode_rr(const wire *w, size_t ro, size_t rdlen, dns_rr *rr, arena *a)
{
    char name[4 * 256];
    size_t o = ro, end = ro + rdlen;
    switch (rr->type) {
    case DNS_T_A: {
        if (rdlen != 4)
            return false;
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, w->p + ro, buf, sizeof buf);
        rr->text = arena_strdup(a, buf);
        break;
    }
    case DNS_T_AAAA: {
        if (rdlen != 16)
            return false;
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, w->p + ro, buf, sizeof buf);
        rr->text = arena_strdup(a, buf);
        break;
    }
    case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR:
        if (!read_name(w, &o, name, sizeof name) || o > end)
            return false;
        rr->text = arena_strdup(a, name);
        break;
    case DNS_T_MX:
        if (rdlen < 3)
            return false;
        rr->pref = get16(w->p + o);
        o += 2;
        if (!read_name(w, &o, name, sizeof name) || o > end)
            return false;
        rr->text = arena_strdup(a, name);
        break;
    case DNS_T_SRV:
        if (rdlen < 7)
            return false;
        rr->pref = get16(w->p + o);
        rr->weight = get16(w->p + o + 2);
        rr->port = get16(w->p + o + 4);
        o += 6;
        if (!read_name(w, &o, name, sizeof name) || o > end)
            return false;
        rr->text = arena_strdup(a, name);
        break;
    case DNS_T_SOA:
        if (!read_name(w, &o, name, sizeof name) || o > end)
            return false;
        rr->text = arena_strdup(a, name);
        if (!read_name(w, &o, name, sizeof name) || o + 20 > end)
            return false;
        rr->text2 = arena_strdup(a, name);
        rr->soa_serial = get32(w->p + o);
        rr->soa_refresh = get32(w->p + o + 4);
        rr->soa_retry = get32(w->p + o + 8);
        rr->soa_expire = get32(w->p + o + 12);
        rr->soa_minimum = get32(w->p + o + 16);
        break;
    case DNS_T_TXT: case DNS_T_SPF: {
        int n = 0;
        for (size_t q = ro; q < end; q += 1 + w->p[q])
            n++;
        if (n == 0)
            return false;
        const char **strs = arena_alloc(a, (size_t)n * sizeof *strs);
        size_t *lens = arena_alloc(a, (size_t)n * sizeof *lens);
        gstr all;
        gstr_init(&all, a, rdlen);
        int i = 0;
        for (size_t q = ro; q < end; ) {
            size_t l = w->p[q++];
            if (q + l > end)
                l = end - q;            /* string overruns the rdata: clip */
            strs[i] = arena_memdup(a, w->p + q, l);
            lens[i++] = l;
            gstr_catn(&all, (const char *)w->p + q, l);
            q += l;
        }
        rr->nstrings = i;
        rr->strings = strs;
        rr->string_lens = lens;
        rr->text = all.s;
        rr->text_len = all.len;
        return true;
    }
    case DNS_T_TLSA:
        if (rdlen < 3)
            return false;
        rr->tlsa_usage = w->p[o];
        rr->tlsa_selector = w->p[o + 1];
        rr->tlsa_mtype = w->p[o + 2];
        break;
    default:
        break;
    }
    if (rr->text)
        rr->text_len = strlen(rr->text);
    return true;
}

status dns_answer_parse(const unsigned char *pkt, size_t len, const char *qname,
                        int qtype, arena *a, dns_answer *out)
{
    wire w = { pkt, len };
    char name[4 * 256];
    out->rr = NULL;
    out->nrr = 0;
    out->min_ttl = 0;
    out->ncname = 0;
    out->nxdomain = false;
    out->canon = arena_strdup(a, qname);
    out->rcode = -1;
    if (len < 12) {
        out->why = "short DNS response";
        return out->st = ST_DEFER;
    }
    out->rcode = pkt[3] & 0x0f;
    unsigned qd = get16(pkt + 4), an = get16(pkt + 6);
    size_t off = 12;
    for (unsigned i = 0; i < qd; i++) {
        if (!skip_name(&w, &off) || off + 4 > len) {
            out->why = "malformed question section";
            return out->st = ST_DEFER;
        }
        off += 4;
    }
    /* Collect the answer records first (bounded), then walk the chain. */
    if (an > DNS_MAX_RRS * 4)
        an = DNS_MAX_RRS * 4;
    dns_rr *all = arena_calloc(a, (size_t)(an ? an : 1) * sizeof *all);
    int nall = 0;
    bool malformed = false;
    for (unsigned i = 0; i < an; i++) {
        if (!read_name(&w, &off, name, sizeof name) || off + 10 > len) {
            malformed = true;
            break;
        }
        dns_rr *rr = &all[nall];
        rr->type = (int)get16(pkt + off);
        unsigned cls = get16(pkt + off + 2);
        rr->ttl = get32(pkt + off + 4);
        if (rr->ttl > 0x7fffffff)
            rr->ttl = 0;                /* RFC 2181 section 8 */
        size_t rdlen = get16(pkt + off + 8);
        off += 10;
        if (off + rdlen > len) {
            malformed = true;
            break;
        }
        if (cls != 1 || (rr->type != qtype && rr->type != DNS_T_CNAME)) {
            off += rdlen;
            continue;
        }
        rr->owner = arena_strdup(a, name);
        rr->rdata = (const unsigned char *)arena_memdup(a, pkt + off, rdlen);
        rr->rdlen = rdlen;
        if (decode_rr(&w, off, rdlen, rr, a))
            nall++;
        else
            memset(rr, 0, sizeof *rr);  /* a bad record is dropped, not fatal */
        off += rdlen;
    }
    if (malformed && nall == 0) {
        out->why = "malformed answer section";
        return out->st = ST_DEFER;
    }

    /* Follow the CNAME chain from qname, then take the records of qtype
       owned by the last name. */
    const char *cur = qname;
    size_t qlen = strlen(qname);
    if (qlen && qname[qlen - 1] == '.')
        cur = arena_strndup(a, qname, qlen - 1);
    if (qtype != DNS_T_CNAME) {
        for (int hop = 0; hop <= DNS_MAX_CNAME_CHAIN; hop++) {
            const dns_rr *cn = NULL;
            for (int i = 0; i < nall; i++)
                if (all[i].type == DNS_T_CNAME && strcasecmp(all[i].owner, cur) == 0) {
                    cn = &all[i];
                    break;
                }
            if (!cn)
                break;
            if (hop == DNS_MAX_CNAME_CHAIN) {
                out->why = "CNAME chain too long";
                return out->st = ST_DEFER;
            }
            if (out->min_ttl == 0 || cn->ttl < out->min_ttl)
                out->min_ttl = cn->ttl;
            cur = cn->text;
            out->ncname++;
        }
    }
    out->canon = cur;
    int n = 0;
    for (int i = 0; i < nall; i++)
        if (all[i].type == qtype && strcasecmp(all[i].owner, cur) == 0)
            n++;
    if (n > DNS_MAX_RRS)
        n = DNS_MAX_RRS;
    out->rr = arena_calloc(a, (size_t)(n ? n : 1) * sizeof *out->rr);
    for (int i = 0; i < nall && out->nrr < n; i++)
        if (all[i].type == qtype && strcasecmp(all[i].owner, cur) == 0) {
            out->rr[out->nrr++] = all[i];
            if (out->min_ttl == 0 || all[i].ttl < out->min_ttl)
                out->min_ttl = all[i].ttl;
        }

    switch (out->rcode) {
    case 0:
        if (out->nrr)
            return out->st = ST_OK;
        out->why = "no data of that type";
        return out->st = ST_NOTFOUND;
    case 3:
        out->nxdomain = true;
        out->why = "no such name";
        return out->st = ST_NOTFOUND;
    case 2:
        out->why = "server failure";
        return out->st = ST_DEFER;
    case 5:
        out->why = "query refused";
        return out->st = ST_FAIL;
    default:
        out->why = arena_printf(a, "DNS error rcode %d", out->rcode);
        return out->st = ST_FAIL;
    }
}

char *dns_reverse_name(const char *ip, const char *suffix, arena *a)
{
    unsigned char b[16];
    char buf[128];
    if (inet_pton(AF_INET, ip, b) == 1) {
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
        return arena_printf(a, "%s.%s", buf, suffix ? suffix : "in-addr.arpa");
    }
    /* Exim accepts IPv6 with a "%scope"?  No: plain addresses only. */
    if (inet_pton(AF_INET6, ip, b) == 1) {
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;
        for (int i = 15; i >= 0; i--) {
            buf[n++] = hex[b[i] & 15];
            buf[n++] = '.';
            buf[n++] = hex[b[i] >> 4];
            buf[n++] = '.';
        }
        buf[n - 1] = '\0';
        return arena_printf(a, "%s.%s", buf, suffix ? suffix : "ip6.arpa");
    }
    return NULL;
}

static const struct { int type; const char *name; } type_names[] = {
    { DNS_T_A, "a" }, { DNS_T_NS, "ns" }, { DNS_T_CNAME, "cname" },
    { DNS_T_SOA, "soa" }, { DNS_T_PTR, "ptr" }, { DNS_T_MX, "mx" },
    { DNS_T_TXT, "txt" }, { DNS_T_AAAA, "aaaa" }, { DNS_T_SRV, "srv" },
    { DNS_T_TLSA, "tlsa" }, { DNS_T_SPF, "spf" },
};

const char *dns_type_name(int type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return "unknown";
}

int dns_type_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(type_names[i].name, name) == 0)
            return type_names[i].type;
    return -1;
}
