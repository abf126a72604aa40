/* dnscfg.c: glue from the loaded configuration to src/dns (which does not
 * know the configuration): the dns_* main options become dns_options for
 * the process resolver, the first time something needs it
 * (dns_process_resolver calls dns_configure_from_cfg when it is linked). */
#include "lookup/dnsdb.h"

#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"

static bool again_means_nonexist(void *ctx, const char *name)
{
    const char *list = cfg_str(MO_dns_again_means_nonexist);
    if (!list || !*list)
        return false;
    arena *a = arena_new("dns-again", false);
    char *exp = NULL, *err = NULL;
    bool yes = false;
    if (expand_string(list, a, &exp, &err) == ST_OK)
        yes = match_domain(name, exp, a, NULL, &err) == ST_OK;
    arena_free(a);
    return yes;
}

void dns_configure_from_cfg(void)
{
    const char *pat = cfg_str(MO_dns_check_names_pattern);
    long long dnssec = cfg_int(MO_dns_dnssec_ok);
    dns_options o = {
        .servers = cfg_str(MO_dns_servers),
        .trust_anchor_file = cfg_str(MO_dns_trust_anchor_file),
        .retrans = (int)cfg_int(MO_dns_retrans),
        .retry = (int)cfg_int(MO_dns_retry),
        .dnssec_ok = dnssec == 1,
        .dnssec_off = dnssec == 0,     /* Exim: 0 coerces DNSSEC off */
        /* unset: Exim's default pattern; set empty: no check */
        .check_names_pattern = pat ? pat : DNS_CHECK_NAMES_DEFAULT,
        .again_means_nonexist = again_means_nonexist,
    };
    dns_process_configure(&o);
}

dns_resolver *dnsdb_process_resolver(char **err, arena *a)
{
    /* dns_process_resolver applies dns_configure_from_cfg on first use */
    return dns_process_resolver(err, a);
}
