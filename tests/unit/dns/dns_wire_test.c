/* dns_wire_test: dns_answer_parse on built and on hostile packets,
 * dns_reverse_name, type names. */
#include "check.h"
#include "dns/dns.h"

#include <stdint.h>

typedef struct pkt { unsigned char b[4096]; size_t n; } pkt;

static void put8(pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 255); }
static void put32(pkt *p, uint32_t v) { put16(p, v >> 16); put16(p, v & 0xffff); }
static void putname(pkt *p, const char *n)
{
    while (*n) {
        const char *e = strchr(n, '.');
        size_t l = e ? (size_t)(e - n) : strlen(n);
        put8(p, (unsigned)l);
        memcpy(p->b + p->n, n, l);
        p->n += l;
        n += l + (e ? 1 : 0);
    }
    put8(p, 0);
}
static void header(pkt *p, int rcode, int an, const char *q, int qtype)
{
    p->n = 0;
    put16(p, 0x1234); put8(p, 0x81); put8(p, 0x80 | rcode);
    put16(p, 1); put16(p, an); put16(p, 0); put16(p, 0);
    putname(p, q); put16(p, qtype); put16(p, 1);
}
/* rr with rdata given as raw bytes */
static void rr(pkt *p, const char *owner, int type, uint32_t ttl, const void *rd, size_t n)
{
    putname(p, owner); put16(p, type); put16(p, 1); put32(p, ttl); put16(p, (unsigned)n);
    memcpy(p->b + p->n, rd, n); p->n += n;
}

int main(void)
{
    arena *a = arena_new("test", true);
    dns_answer ans;
    pkt p;

    /* A records, one CNAME hop */
    header(&p, 0, 3, "www.example.com", DNS_T_A);
    unsigned char cn[64]; pkt t = { .n = 0 }; putname(&t, "host.example.com");
    memcpy(cn, t.b, t.n);
    rr(&p, "www.example.com", DNS_T_CNAME, 300, cn, t.n);
    rr(&p, "host.example.com", DNS_T_A, 60, "\xc0\x00\x02\x01", 4);
    rr(&p, "host.example.com", DNS_T_A, 30, "\xc0\x00\x02\x02", 4);
    CHECK(dns_answer_parse(p.b, p.n, "www.example.com", DNS_T_A, a, &ans) == ST_OK, "A st");
    CHECK(ans.nrr == 2, "A nrr %d", ans.nrr);
    CHECK_STR(ans.rr[0].text, "192.0.2.1", "A 0");
    CHECK_STR(ans.rr[1].text, "192.0.2.2", "A 1");
    CHECK_STR(ans.canon, "host.example.com", "canon");
    CHECK(ans.min_ttl == 30 && ans.ncname == 1, "ttl %u ncname %d", ans.min_ttl, ans.ncname);

    /* NXDOMAIN vs NODATA vs SERVFAIL vs REFUSED */
    struct { int rcode; status st; bool nx; } rc_rows[] = {
        { 3, ST_NOTFOUND, true }, { 0, ST_NOTFOUND, false },
        { 2, ST_DEFER, false }, { 5, ST_FAIL, false }, { 4, ST_FAIL, false },
    };
    for (size_t i = 0; i < sizeof rc_rows / sizeof rc_rows[0]; i++) {
        header(&p, rc_rows[i].rcode, 0, "x.example", DNS_T_MX);
        status st = dns_answer_parse(p.b, p.n, "x.example", DNS_T_MX, a, &ans);
        CHECK(st == rc_rows[i].st && ans.nxdomain == rc_rows[i].nx && ans.nrr == 0,
              "rcode %d: st %s nx %d", rc_rows[i].rcode, status_name(st), ans.nxdomain);
    }

    /* MX with a compression pointer to the question name */
    header(&p, 0, 1, "example.com", DNS_T_MX);
    unsigned char mx[] = { 0, 10, 2, 'm', 'x', 0xc0, 12 };
    rr(&p, "example.com", DNS_T_MX, 300, mx, sizeof mx);
    CHECK(dns_answer_parse(p.b, p.n, "example.com.", DNS_T_MX, a, &ans) == ST_OK, "MX st");
    CHECK(ans.nrr == 1 && ans.rr[0].pref == 10, "MX pref");
    CHECK_STR(ans.rr[0].text, "mx.example.com", "MX target");

    /* TXT: several strings, an empty one, escapes kept raw */
    header(&p, 0, 1, "t.example", DNS_T_TXT);
    unsigned char txt[] = { 3, 'a', 'b', 'c', 0, 2, 'd', 0 };
    rr(&p, "t.example", DNS_T_TXT, 1, txt, sizeof txt);
    CHECK(dns_answer_parse(p.b, p.n, "t.example", DNS_T_TXT, a, &ans) == ST_OK, "TXT st");
    CHECK(ans.rr[0].nstrings == 3 && ans.rr[0].text_len == 5, "TXT n %d len %zu",
          ans.rr[0].nstrings, ans.rr[0].text_len);
    CHECK(memcmp(ans.rr[0].text, "abcd\0", 5) == 0, "TXT text");
    CHECK(ans.rr[0].string_lens[1] == 0 && ans.rr[0].string_lens[2] == 2, "TXT lens");

    /* TXT string running past its rdata is clipped, not over-read */
    header(&p, 0, 1, "t.example", DNS_T_TXT);
    unsigned char badtxt[] = { 200, 'x', 'y' };
    rr(&p, "t.example", DNS_T_TXT, 1, badtxt, sizeof badtxt);
    CHECK(dns_answer_parse(p.b, p.n, "t.example", DNS_T_TXT, a, &ans) == ST_OK, "TXT clip");
    CHECK(ans.rr[0].text_len == 2, "clip len %zu", ans.rr[0].text_len);

    /* SRV, SOA, TLSA, AAAA */
    header(&p, 0, 1, "_s._tcp.example", DNS_T_SRV);
    unsigned char srv[] = { 0, 1, 0, 2, 0, 25, 1, 'h', 0 };
    rr(&p, "_s._tcp.example", DNS_T_SRV, 1, srv, sizeof srv);
    CHECK(dns_answer_parse(p.b, p.n, "_s._tcp.example", DNS_T_SRV, a, &ans) == ST_OK, "SRV");
    CHECK(ans.rr[0].pref == 1 && ans.rr[0].weight == 2 && ans.rr[0].port == 25, "SRV fields");
    CHECK_STR(ans.rr[0].text, "h", "SRV target");

    header(&p, 0, 1, "example", DNS_T_SOA);
    unsigned char soa[] = { 2, 'n', 's', 0, 2, 'h', 'm', 0, 0, 0, 0, 7, 0, 0, 0, 8,
                            0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 11 };
    rr(&p, "example", DNS_T_SOA, 1, soa, sizeof soa);
    CHECK(dns_answer_parse(p.b, p.n, "example", DNS_T_SOA, a, &ans) == ST_OK, "SOA");
    CHECK_STR(ans.rr[0].text, "ns", "SOA mname");
    CHECK_STR(ans.rr[0].text2, "hm", "SOA rname");
    CHECK(ans.rr[0].soa_serial == 7 && ans.rr[0].soa_minimum == 11, "SOA numbers");

    header(&p, 0, 1, "_25._tcp.mx", DNS_T_TLSA);
    rr(&p, "_25._tcp.mx", DNS_T_TLSA, 1, "\x03\x01\x01\xab\xcd", 5);
    CHECK(dns_answer_parse(p.b, p.n, "_25._tcp.mx", DNS_T_TLSA, a, &ans) == ST_OK, "TLSA");
    CHECK(ans.rr[0].tlsa_usage == 3 && ans.rr[0].tlsa_mtype == 1 && ans.rr[0].rdlen == 5, "TLSA f");

    header(&p, 0, 1, "six", DNS_T_AAAA);
    rr(&p, "six", DNS_T_AAAA, 1, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    CHECK(dns_answer_parse(p.b, p.n, "six", DNS_T_AAAA, a, &ans) == ST_OK, "AAAA");
    CHECK_STR(ans.rr[0].text, "2001:db8::1", "AAAA text");

    /* special characters in names are escaped as dn_expand does */
    header(&p, 0, 1, "p", DNS_T_PTR);
    unsigned char ptr[] = { 3, 'a', '.', 1, 2, 'c', ' ', 0 };
    rr(&p, "p", DNS_T_PTR, 1, ptr, sizeof ptr);
    CHECK(dns_answer_parse(p.b, p.n, "p", DNS_T_PTR, a, &ans) == ST_OK, "PTR");
    CHECK_STR(ans.rr[0].text, "a\\.\\001.c\\032", "PTR escaped");

    /* hostile: compression loop, pointer past the end, truncated rr, wrong
       A length, huge counts, short header */
    header(&p, 0, 1, "l", DNS_T_A);
    size_t at = p.n;
    put8(&p, 0xc0); put8(&p, (unsigned)at);       /* points to itself */
    put16(&p, DNS_T_A); put16(&p, 1); put32(&p, 1); put16(&p, 4); put32(&p, 0x01020304);
    CHECK(dns_answer_parse(p.b, p.n, "l", DNS_T_A, a, &ans) == ST_DEFER, "loop");

    header(&p, 0, 1, "l", DNS_T_A);
    put8(&p, 0xc3); put8(&p, 0xff);
    CHECK(dns_answer_parse(p.b, p.n, "l", DNS_T_A, a, &ans) == ST_DEFER, "ptr oob");

    header(&p, 0, 1, "l", DNS_T_A);
    rr(&p, "l", DNS_T_A, 1, "\1\2\3\4", 4);
    CHECK(dns_answer_parse(p.b, p.n - 2, "l", DNS_T_A, a, &ans) == ST_DEFER, "truncated");

    header(&p, 0, 1, "l", DNS_T_A);
    rr(&p, "l", DNS_T_A, 1, "\1\2\3", 3);
    CHECK(dns_answer_parse(p.b, p.n, "l", DNS_T_A, a, &ans) == ST_NOTFOUND, "bad A len");

    header(&p, 0, 0, "l", DNS_T_A);
    p.b[6] = 0xff; p.b[7] = 0xff;
    CHECK(dns_answer_parse(p.b, p.n, "l", DNS_T_A, a, &ans) == ST_DEFER, "huge ancount");
    CHECK(dns_answer_parse(p.b, 5, "l", DNS_T_A, a, &ans) == ST_DEFER, "short");

    /* CNAME loop in the answer */
    header(&p, 0, 2, "x", DNS_T_A);
    pkt u = { .n = 0 }; putname(&u, "y");
    rr(&p, "x", DNS_T_CNAME, 1, u.b, u.n);
    u.n = 0; putname(&u, "x");
    rr(&p, "y", DNS_T_CNAME, 1, u.b, u.n);
    CHECK(dns_answer_parse(p.b, p.n, "x", DNS_T_A, a, &ans) == ST_DEFER, "cname loop");

    /* records of other owners are not taken */
    header(&p, 0, 1, "asked", DNS_T_A);
    rr(&p, "other", DNS_T_A, 1, "\1\2\3\4", 4);
    CHECK(dns_answer_parse(p.b, p.n, "asked", DNS_T_A, a, &ans) == ST_NOTFOUND, "owner");

    /* reverse names and type names */
    CHECK_STR(dns_reverse_name("192.0.2.1", NULL, a), "1.2.0.192.in-addr.arpa", "rev4");
    CHECK_STR(dns_reverse_name("192.0.2.1", "bl.example", a), "1.2.0.192.bl.example", "rev4 bl");
    CHECK_STR(dns_reverse_name("2001:db8::1", NULL, a),
              "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "rev6");
    CHECK(dns_reverse_name("example.com", NULL, a) == NULL, "rev name");
    CHECK(dns_type_from_name("MX") == DNS_T_MX && dns_type_from_name("tlsa") == DNS_T_TLSA &&
          dns_type_from_name("bogus") == -1, "type from name");
    CHECK_STR(dns_type_name(DNS_T_SPF), "spf", "type name");

    arena_free(a);
    return check_report("dns_wire_test");
}
