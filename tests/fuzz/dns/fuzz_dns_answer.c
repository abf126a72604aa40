/* fuzz_dns_answer: dns_answer_parse on arbitrary bytes.  The question name
 * is taken from the packet's own question when it has one, so the CNAME
 * walk and owner matching are exercised; every qtype is tried. */
#include "dns/dns.h"

#include <stdint.h>
#include <string.h>

static const int qtypes[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_SRV,
                              DNS_T_SOA, DNS_T_TLSA, DNS_T_PTR, DNS_T_NS, DNS_T_CNAME,
                              DNS_T_SPF };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena *a;
    if (!a)
        a = arena_new("fuzz", true);
    char qname[256] = "example.com";
    if (size > 13) {
        /* first question name, uncompressed labels only */
        size_t o = 12, n = 0;
        while (o < size && data[o] && data[o] < 64 && n + data[o] + 2 < sizeof qname) {
            size_t l = data[o++];
            if (o + l > size)
                break;
            if (n)
                qname[n++] = '.';
            memcpy(qname + n, data + o, l);
            n += l;
            o += l;
        }
        if (n)
            qname[n] = '\0';
    }
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++) {
        dns_answer ans;
        status st = dns_answer_parse(data, size, qname, qtypes[i], a, &ans);
        if (st == ST_OK && ans.nrr < 1)
            __builtin_trap();
        for (int j = 0; j < ans.nrr; j++) {
            const dns_rr *rr = &ans.rr[j];
            if (rr->text)
                (void)strlen(rr->text);
            for (int k = 0; k < rr->nstrings; k++)
                if (rr->string_lens[k] > 255)
                    __builtin_trap();
            if (rr->rdlen)
                (void)*(volatile const unsigned char *)&rr->rdata[rr->rdlen - 1];
        }
    }
    arena_reset(a);
    return 0;
}
