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
    const char *owner;            /* owner name, no trailing dot; names are in
                                     presentation form as dn_expand gives them
                                     (special characters escaped, the root "") */
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
    /* SOA: text is the primary name server, text2 the responsible mailbox */
    const char *text2;
    uint32_t soa_serial, soa_refresh, soa_retry, soa_expire, soa_minimum;
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
    uint32_t min_ttl;   /* smallest TTL of the records (0 when none) */
    int ncname;         /* CNAMEs followed from the asked name to canon */
} dns_answer;

typedef struct dns_iface {
    status (*lookup)(void *ctx, const char *name, int type, arena *a, dns_answer *out);
    void *ctx;
} dns_iface;

typedef struct dns_options {
    const char *servers;          /* "ip@port : ip" list; NULL = /etc/resolv.conf */
    const char *trust_anchor_file;/* NULL = Debian's dns-root-data key, used only
                                     if the servers give DNSSEC data for the root
                                     (checked once per process); a file named
                                     here is always used; "" = no validation */
    int retrans;                  /* seconds per try; 0 = resolv.conf's "options
                                     timeout:" (or RES_OPTIONS), else 5 */
    int retry;                    /* tries; 0 = "attempts:", else 2 */
    bool dnssec_ok;               /* dns_dnssec_ok = 1 (validation is on whenever
                                     there is a trust anchor anyway) */
    /* Added by the dns module (all optional, 0/NULL = default): */
    bool dnssec_off;              /* dns_dnssec_ok = 0: no validation at all */
    int max_lookups;              /* lookups per process before ST_DEFER; 0 = DNS_MAX_LOOKUPS */
    const char *check_names_pattern; /* PCRE2 that names (not PTR/TXT) must
                                     match, else ST_NOTFOUND; NULL/"" = none */
    /* dns_again_means_nonexist: called on a temporary failure (not for TLSA);
       true turns it into ST_NOTFOUND. */
    bool (*again_means_nonexist)(void *ctx, const char *name);
    void *again_ctx;
} dns_options;

/* Limits (DESIGN.md section 8).  Exim's dns_cname_loops is about the
   resolver; libunbound follows chains itself, we accept at most this many. */
enum {
    DNS_MAX_CNAME_CHAIN = 16,
    DNS_MAX_RRS = 256,            /* records kept from one answer */
    DNS_MAX_LOOKUPS = 10000,      /* default lookup budget per message (dns_process_new_message) */
    DNS_MAX_NAME = 255,           /* presentation form, without escapes */
    DNS_DEFAULT_RETRANS = 5,      /* seconds: resolv.conf's default */
    DNS_DEFAULT_RETRY = 2,        /* tries: resolv.conf's default */
};
#define DNS_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"
/* Exim's default check_dns_names_pattern */
#define DNS_CHECK_NAMES_DEFAULT \
    "(?i)^(?>(?(1)\\.|())[^\\W](?>[a-z0-9/_-]*[^\\W])?)+(\\.?)$"

typedef struct dns_resolver dns_resolver;

dns_resolver *dns_resolver_new(const dns_options *o, char **err, arena *a);
void dns_resolver_free(dns_resolver *r);
status dns_lookup(dns_resolver *r, const char *name, int type, arena *a, dns_answer *out);
/* A dns_iface backed by r. */
dns_iface dns_iface_unbound(dns_resolver *r);

/* The resolver belongs to the process that created it; a child process
   that uses it gets a fresh libunbound context automatically. */

/* Per-lookup deadline: retrans seconds per try, retry tries (dnsdb's
   retrans_/retry_ modifiers).  0 restores the configured value. */
void dns_resolver_timeouts(dns_resolver *r, int retrans, int retry);
/* "on", "off", or "off (...)" when the default anchor was dropped. */
const char *dns_resolver_validation(const dns_resolver *r);
/* Lookups done so far, and a reset (e.g. per message). */
unsigned dns_lookup_count(const dns_resolver *r);
void dns_lookup_count_reset(dns_resolver *r);

/* Decode a wire-format DNS response to a question (qname, qtype): header,
   answer section, CNAME chain from qname.  Bounded and safe on hostile
   input; used by dns_lookup and by the fuzz target.  Sets out->st, rcode,
   nxdomain, canon, rr, min_ttl; leaves sec alone. */
status dns_answer_parse(const unsigned char *pkt, size_t len, const char *qname,
                        int qtype, arena *a, dns_answer *out);

/* "1.2.3.4" -> "4.3.2.1.<suffix>", IPv6 -> nibbles; suffix NULL gives
   in-addr.arpa / ip6.arpa.  NULL when ip is not an IP address. */
char *dns_reverse_name(const char *ip, const char *suffix, arena *a);

/* The process's resolver for code without a context argument (lookup
   drivers, ACL conditions).  The config glue calls dns_process_configure
   once the configuration is loaded; the resolver is created on first use
   (with default options if nothing was configured).  NULL with *err when
   it cannot be created.  $lookup_dnssec_authenticated lives here too
   ("yes", "no", or NULL when unset). */
void dns_process_configure(const dns_options *o);
dns_resolver *dns_process_resolver(char **err, arena *a);
void dns_process_new_message(void);   /* reset the per-message lookup budget */
const char *dns_lookup_dnssec_authenticated(void);
void dns_set_lookup_dnssec_authenticated(const char *v);

const char *dns_type_name(int type);
int dns_type_from_name(const char *name);   /* "mx" -> DNS_T_MX, -1 if unknown */

#endif
