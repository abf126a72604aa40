/* dnsq: drive src/dns from the command line for the integration tests.
 *   dnsq [-s servers] [-T trust_anchor_file] [-r retrans] [-R retry]
 *        [-n max_lookups] [-p check_names_pattern] NAME TYPE [NAME TYPE...]
 *   dnsq ... -l DNSLIST [-i HOST_IP]
 *   dnsq ... -d DNSDB_QUERY      (prints status, dnssec=, then the result)
 *   dnsq ... -H IP               host name lookup: status, name=, aliases=, dnssec=, msg=
 *   dnsq ... -V HELO -i IP       verify = helo: status, dnssec=
 *   dnsq ... -M DOMAIN -m any|primary|secondary -L LOCALIP[,LOCALIP]   @mx_*
 *   dnsq ... -h HOSTLIST -i IP [-P PRIMARY_HOSTNAME] [-L LOCALIPS]
 *            a small host-list walk over host_list_item (names, wildcards,
 *            regexes, @, @[], plain IPs, !, +include/ignore_unknown/defer)
 * Prints, per lookup:
 *   <status> rcode=<n> nxdomain=<0|1> sec=<sec> canon=<name> nrr=<n>
 *   rr <type> <ttl> <owner> <decoded fields>
 * and for -l: the status and the four $dnslist_* values. */
#include "core/arena.h"
#include "dns/dns.h"
#include "dns/dnslist.h"
#include "dns/host.h"
#include "lookup/dnsdb.h"
#include "core/list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *secname[] = { "indeterminate", "insecure", "secure", "bogus" };

static void print_rr(const dns_rr *rr)
{
    printf("rr %s %u %s", dns_type_name(rr->type), rr->ttl, rr->owner);
    switch (rr->type) {
    case DNS_T_MX: printf(" %u %s", rr->pref, rr->text); break;
    case DNS_T_SRV: printf(" %u %u %u %s", rr->pref, rr->weight, rr->port, rr->text); break;
    case DNS_T_SOA:
        printf(" %s %s %u %u %u %u %u", rr->text, rr->text2, rr->soa_serial, rr->soa_refresh,
               rr->soa_retry, rr->soa_expire, rr->soa_minimum);
        break;
    case DNS_T_TLSA:
        printf(" %u %u %u ", rr->tlsa_usage, rr->tlsa_selector, rr->tlsa_mtype);
        for (size_t i = 3; i < rr->rdlen; i++)
            printf("%02x", rr->rdata[i]);
        break;
    case DNS_T_TXT: case DNS_T_SPF:
        printf(" %d", rr->nstrings);
        for (int i = 0; i < rr->nstrings; i++)
            printf(" [%zu:%.*s]", rr->string_lens[i], (int)rr->string_lens[i], rr->strings[i]);
        break;
    default:
        printf(" %s", rr->text ? rr->text : "-");
    }
    putchar('\n');
}

static void set_timeouts(void *ctx, int retrans, int retry)
{
    dns_resolver_timeouts(ctx, retrans, retry);
}

/* The host-list walk of Exim for the item kinds host_list_item knows, plus
   "*", plain addresses and negation: enough to compare with exim -bh. */
static status walk_hostlist(const dns_iface *di, const char *list, const char *ip,
                            const char *primary, const char **ips, arena *a)
{
    host_ctx hc = { .dns = di, .ip = ip, .primary_hostname = primary, .local_ips = ips };
    int sep = 0;
    char *it;
    bool inc_unknown = false, ign_unknown = false, inc_defer = false, ign_defer = false;
    while ((it = list_next(&list, &sep, a))) {
        if (strcmp(it, "+include_unknown") == 0) { inc_unknown = true; ign_unknown = false; continue; }
        if (strcmp(it, "+ignore_unknown") == 0) { ign_unknown = true; inc_unknown = false; continue; }
        if (strcmp(it, "+include_defer") == 0) { inc_defer = true; ign_defer = false; continue; }
        if (strcmp(it, "+ignore_defer") == 0) { ign_defer = true; inc_defer = false; continue; }
        bool neg = false;
        while (*it == '!') {
            neg = !neg;
            it++;
        }
        char *err = NULL;
        status st;
        if (strcmp(it, "*") == 0)
            st = ST_OK;
        else if ((st = host_list_item(&hc, it, a, &err)) == ST_DECLINED)
            st = host_ip_equal(it, ip) ? ST_OK : ST_FAIL;
        if (st == ST_NOTFOUND) {
            if (inc_unknown)
                return neg ? ST_FAIL : ST_OK;
            if (ign_unknown)
                continue;
            return ST_FAIL;
        }
        if (st == ST_DEFER) {
            if (inc_defer)
                return neg ? ST_FAIL : ST_OK;
            if (ign_defer)
                continue;
            return ST_DEFER;
        }
        if (st == ST_ERROR)
            return ST_ERROR;
        if (st == ST_OK)
            return neg ? ST_FAIL : ST_OK;
    }
    return ST_FAIL;
}

static void logfn(void *ctx, const char *msg) { printf("log %s\n", msg); }

int main(int argc, char **argv)
{
    dns_options o = { 0 };
    const char *list = NULL, *ip = NULL, *dnsdb = NULL, *hostip = NULL, *helo = NULL,
               *mxdom = NULL, *mxmode = "any", *locals = "",
               *hostlist = NULL, *primary = NULL;
    int c;
    while ((c = getopt(argc, argv, "s:T:r:R:n:p:l:i:d:H:V:M:m:L:h:P:")) != -1) {
        switch (c) {
        case 's': o.servers = optarg; break;
        case 'T': o.trust_anchor_file = optarg; break;
        case 'r': o.retrans = atoi(optarg); break;
        case 'R': o.retry = atoi(optarg); break;
        case 'n': o.max_lookups = atoi(optarg); break;
        case 'p': o.check_names_pattern = optarg; break;
        case 'l': list = optarg; break;
        case 'i': ip = optarg; break;
        case 'd': dnsdb = optarg; break;
        case 'H': hostip = optarg; break;
        case 'V': helo = optarg; break;
        case 'M': mxdom = optarg; break;
        case 'm': mxmode = optarg; break;
        case 'L': locals = optarg; break;
        case 'h': hostlist = optarg; break;
        case 'P': primary = optarg; break;
        default: return 2;
        }
    }
    arena *a = arena_new("dnsq", true);
    char *err = NULL;
    dns_resolver *r = dns_resolver_new(&o, &err, a);
    if (!r) {
        printf("ERROR %s\n", err);
        arena_free(a);
        return 1;
    }
    if (list) {
        dnslist_ctx ctx = { .dns = dns_iface_unbound(r), .host_ip = ip, .log = logfn };
        dnslist_result res = { 0 };
        status st = dnslist_check(&ctx, list, a, &res);
        printf("%s\ndomain=%s\nmatched=%s\ntext=%s\nvalue=%s\n", status_name(st),
               res.domain ? res.domain : "<unset>", res.matched ? res.matched : "<unset>",
               res.text ? res.text : "<unset>", res.value ? res.value : "<unset>");
    }
    dns_iface di = dns_iface_unbound(r);
    if (hostip) {
        host_name_result hn;
        status st = host_name_lookup(&di, hostip, a, &hn);
        printf("%s\nname=%s\naliases=", status_name(st), hn.name ? hn.name : "<unset>");
        for (const char **al = hn.aliases; al && *al; al++)
            printf("%s%s", *al, al[1] ? ":" : "");
        printf("\ndnssec=%d\nmsg=%s\n", hn.dnssec, hn.msg ? hn.msg : "");
    }
    if (helo) {
        bool sec = false;
        status st = host_verify_helo(&di, helo, ip, NULL, a, &sec);
        printf("%s\ndnssec=%d\n", status_name(st), sec);
    }
    const char *ips[16];
    int nips = 0;
    char *lcopy = arena_strdup(a, locals), *lsave = NULL;
    for (char *t = strtok_r(lcopy, ",", &lsave); t && nips < 15; t = strtok_r(NULL, ",", &lsave))
        ips[nips++] = t;
    ips[nips] = NULL;
    if (hostlist)
        printf("%s\n", status_name(walk_hostlist(&di, hostlist, ip, primary, ips, a)));
    if (mxdom) {
        host_mx_local loc = { .local_ips = ips };
        enum host_mx_mode m = strcmp(mxmode, "primary") == 0 ? HOST_MX_PRIMARY
                            : strcmp(mxmode, "secondary") == 0 ? HOST_MX_SECONDARY : HOST_MX_ANY;
        printf("%s\n", status_name(host_mx_match(&di, mxdom, m, &loc, a)));
    }
    if (dnsdb) {
        dns_iface dif = dns_iface_unbound(r);
        dnsdb_env env = { .dns = dif, .timeouts = set_timeouts };
        char *result = NULL, *derr = NULL;
        status st = dnsdb_run(&env, dnsdb, a, &result, &derr);
        printf("%s\ndnssec=%s\n", status_name(st), env.dnssec_auth ? env.dnssec_auth : "<unset>");
        if (st == ST_OK)
            printf("%s\n", result);
        else
            printf("why=%s%s\n", derr ? derr : "", env.why ? env.why : "");
    }
    for (int i = optind; i + 1 < argc; i += 2) {
        int type = dns_type_from_name(argv[i + 1]);
        if (type < 0)
            type = atoi(argv[i + 1]);
        dns_answer ans;
        status st = dns_lookup(r, argv[i], type, a, &ans);
        printf("%s rcode=%d nxdomain=%d sec=%s canon=%s nrr=%d why=%s\n", status_name(st),
               ans.rcode, ans.nxdomain, secname[ans.sec], ans.canon ? ans.canon : "-",
               ans.nrr, st == ST_OK ? "-" : ans.why ? ans.why : "?");
        for (int j = 0; j < ans.nrr; j++)
            print_rr(&ans.rr[j]);
    }
    printf("lookups=%u validation=%s\n", dns_lookup_count(r), dns_resolver_validation(r));
    dns_resolver_free(r);
    arena_free(a);
    return 0;
}
