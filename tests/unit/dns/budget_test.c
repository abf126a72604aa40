/* budget_test: the process resolver's lookup budget is per message:
 * exhausted, lookups defer without touching the network; a new message
 * (dns_process_new_message) gets the whole budget again.  The servers are
 * a closed loopback port, so lookups that do go out fail quickly. */
#include "check.h"
#include "dns/dns.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static bool hit_limit(dns_resolver *r, const char *name, arena *a)
{
    dns_answer ans;
    status st = dns_lookup(r, name, DNS_T_A, a, &ans);
    return st == ST_DEFER && ans.why && strstr(ans.why, "DNS lookup limit");
}

int main(void)
{
    arena *a = arena_new("budget", false);
    dns_options o = { .servers = "127.0.0.1@9", .trust_anchor_file = "", .retrans = 1, .retry = 1,
                      .max_lookups = 2 };
    dns_process_configure(&o);
    char *err = NULL;
    dns_resolver *r = dns_process_resolver(&err, a);
    CHECK(r != NULL, "resolver: %s", err ? err : "?");
    if (!r)
        return check_report("budget_test");
    CHECK(!hit_limit(r, "one.budget.invalid", a), "first lookup is within the budget");
    CHECK(!hit_limit(r, "two.budget.invalid", a), "second lookup is within the budget");
    CHECK(dns_lookup_count(r) == 2, "two lookups counted, got %u", dns_lookup_count(r));
    CHECK(hit_limit(r, "three.budget.invalid", a), "third lookup must hit the limit of 2");
    dns_process_new_message();
    CHECK(dns_lookup_count(r) == 0, "a new message resets the count, got %u", dns_lookup_count(r));
    CHECK(!hit_limit(r, "four.budget.invalid", a), "a new message gets the budget again");
    arena_free(a);
    return check_report("budget_test");
}
