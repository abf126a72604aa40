/* dns.h: every DNS lookup of postern goes through this interface
 * (DESIGN.md section 6).  An answer carries its records, the rcode and the
 * DNSSEC status.  Timeouts and SERVFAIL are ST_DEFER, never "no record".
 *
 * Libraries (src/msgauth) take a dns_iface so unit tests can inject a
 * resolver; dns_iface_unbound() gives the real one. */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dns_type {
    DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
    DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33,
    DNS_T_TLSA = 52, DNS_T_SPF = 99,
};

typedef enum dns_sec {
    DNS_SEC_INDETERMINATE = 0, DNS_SEC_INSECURE, DNS_SEC_SECURE, DNS_SEC_BOGUS,
} dns_sec;

typedef struct dns_rr {
    const char *owner;            /* owner name, no trailing dot */
    int type;
    uint32_t ttl;
    const unsigned char *rdata;   /* raw rdata (wire format) */
    size_t rdlen;
    /* Decoded forms, filled according to type: */
    const char *text;   /* A/AAAA: address text; NS/CNAME/PTR/MX/SRV: target name;
                           TXT/SPF: the strings concatenated (may hold NULs: use text_len) */
    size_t text_len;
    int nstrings;                 /* TXT/SPF: the character-strings separately */
    const char **strings;
    const size_t *string_lens;
    unsigned pref;                /* MX preference, SRV priority */
    unsigned weight, port;        /* SRV */
    unsigned tlsa_usage, tlsa_selector, tlsa_mtype;  /* TLSA (data in rdata+3) */
} dns_rr;

typedef struct dns_answer {
    status st;          /* ST_OK: records; ST_NOTFOUND: NXDOMAIN or no data of
                           that type; ST_DEFER: timeout/SERVFAIL/network;
                           ST_FAIL: refused or malformed name */
    int rcode;          /* DNS rcode, -1 if no response */
    bool nxdomain;      /* ST_NOTFOUND because the name does not exist */
    dns_sec sec;
    const char *canon;  /* name after CNAMEs */
    int nrr;
    dns_rr *rr;         /* only records of the asked type */
    const char *why;    /* text for logs/errors when st != ST_OK */
} dns_answer;

typedef struct dns_iface {
    status (*lookup)(void *ctx, const char *name, int type, arena *a, dns_answer *out);
    void *ctx;
} dns_iface;

typedef struct dns_options {
    const char *servers;          /* "ip@port : ip" list; NULL = /etc/resolv.conf */
    const char *trust_anchor_file;/* NULL = Debian's dns-root-data key; "" = none */
    int retrans;                  /* seconds, 0 = default */
    int retry;
    bool dnssec_ok;
} dns_options;

typedef struct dns_resolver dns_resolver;

dns_resolver *dns_resolver_new(const dns_options *o, char **err, arena *a);
void dns_resolver_free(dns_resolver *r);
status dns_lookup(dns_resolver *r, const char *name, int type, arena *a, dns_answer *out);
/* A dns_iface backed by r. */
dns_iface dns_iface_unbound(dns_resolver *r);

const char *dns_type_name(int type);
int dns_type_from_name(const char *name);   /* "mx" -> DNS_T_MX, -1 if unknown */

#endif
