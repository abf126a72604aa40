/* callout_opts_test.c: the options after "verify = sender/recipient"
 * (src/acl/acl_callout_opts.c), table-driven.  Error texts are Exim
 * 4.96's where Exim refuses the option (checked with exim4 -bs in
 * tests/integration/test_callout.py for "pipeline" and "bogus"). */
#include "check.h"
#include "acl/acl_callout.h"
#include "core/arena.h"

#include <stdio.h>
#include <string.h>

typedef struct row {
    const char *opts;          /* after the first "/" */
    bool sender, header_sender;
    const char *err;           /* NULL: parses; else the exact error text */
    int timeout, overall, connect;
    bool defer_ok, callout_defer_ok, no_details, sor, no_cache, random, use_sender, use_pm, fullpm;
    const char *pm_mailfrom, *se_mailfrom;
} row;

static const row rows[] = {
    { .opts = "", .sender = false, .header_sender = false, .timeout = -1, .overall = -1, .connect = -1 },
    { .opts = "callout", .sender = false, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1 },
    { .opts = "callout=10s", .sender = false, .header_sender = false, .timeout = 10, .overall = -1, .connect = -1 },
    { .opts = "callout = 2m, defer_ok", .sender = false, .header_sender = false, .timeout = 120, .overall = -1, .connect = -1, .callout_defer_ok = true },
    { .opts = "defer_ok/callout", .sender = false, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .defer_ok = true },
    { .opts = "no_details/success_on_redirect", .sender = true, .header_sender = false, .timeout = -1, .overall = -1, .connect = -1, .no_details = true, .sor = true },
    { .opts = "callout=no_cache,random,maxwait=1m,connect=5s", .sender = false, .header_sender = false, .timeout = 30, .overall = 60, .connect = 5, .no_cache = true,
      .random = true },
    { .opts = "callout=use_sender", .sender = false, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .use_sender = true },
    { .opts = "callout=use_postmaster", .sender = false, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .use_pm = true },
    { .opts = "callout=postmaster", .sender = true, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .pm_mailfrom = "" },
    { .opts = "callout=fullpostmaster", .sender = true, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .fullpm = true, .pm_mailfrom = "" },
    { .opts = "callout=postmaster_mailfrom=pm@x.example", .sender = true, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .pm_mailfrom = "pm@x.example" },
    { .opts = "callout=mailfrom=a@b.example", .sender = false, .header_sender = true, .timeout = 30, .overall = -1, .connect = -1, .se_mailfrom = "a@b.example" },
    { .opts = "callout_defer_ok", .sender = false, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .callout_defer_ok = true },
    { .opts = "check_postmaster", .sender = true, .header_sender = false, .timeout = 30, .overall = -1, .connect = -1, .pm_mailfrom = "" },
    { .opts = "callout=0s", .sender = false, .header_sender = false, .timeout = 0, .overall = -1, .connect = -1 },
    /* errors */
    { .opts = "callout=mailfrom=a@b.example", .sender = false, .header_sender = false,
      .err = "\"mailfrom\" is allowed as a callout option only for verify=header_sender (detected in ACL condition "
      "\"recipient/callout=mailfrom=a@b.example\")" },
    { .opts = "callout=pipeline", .sender = false, .header_sender = false, .err = "bad time value in ACL condition \"verify recipient/callout=pipeline\"" },
    { .opts = "callout=10", .sender = false, .header_sender = false, .err = "bad time value in ACL condition \"verify recipient/callout=10\"" },
    { .opts = "callout=maxwait", .sender = false, .header_sender = false,
      .err = "'=' expected after \"maxwait\" in ACL verify condition \"recipient/callout=maxwait\"" },
    { .opts = "calloutx", .sender = false, .header_sender = false, .err = "'=' expected after \"callout\" in ACL condition \"recipient/calloutx\"" },
    { .opts = "bogus", .sender = false, .header_sender = false, .err = "unknown option \"bogus\" in ACL condition \"verify recipient/bogus\"" },
    { .opts = "callout=use_sender", .sender = true, .header_sender = false,
      .err = "use_sender, use_tptsender or use_postmaster cannot be usedfor a sender verify callout" },
    { .opts = "callout=use_sender,use_postmaster", .sender = false, .header_sender = false,
      .err = "only one of use_sender, use_tptsender and use_postmaster can be set for a recipient callout" },
    { .opts = "callout=hold", .sender = false, .header_sender = false,
      .err = "callout option \"hold\" is not implemented by postern (in ACL condition \"verify recipient/callout=hold\")" },
    { .opts = "callout=use_tptsender", .sender = false, .header_sender = false,
      .err = "callout option \"use_tptsender\" is not implemented by postern (in ACL condition "
      "\"verify recipient/callout=use_tptsender\")" },
    { .opts = "quota", .sender = false, .header_sender = false,
      .err = "verify option \"quota\" is not implemented by postern (in ACL condition \"verify recipient/quota\")" },
};

int main(void)
{
    arena *a = arena_new("test", false);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        const char *word = r->header_sender ? "header_sender" : r->sender ? "sender" : "recipient";
        char what[256];
        snprintf(what, sizeof what, "%s%s%s", word, *r->opts ? "/" : "", r->opts);
        callout_opts o;
        const char *e = callout_parse(r->opts, what, r->sender, r->header_sender, a, &o);
        CHECK_STR(e, r->err, what);
        if (r->err || e)
            continue;
        CHECK(o.timeout == r->timeout, "%s: timeout %d want %d", what, o.timeout, r->timeout);
        CHECK(o.overall == r->overall, "%s: maxwait %d want %d", what, o.overall, r->overall);
        CHECK(o.connect == r->connect, "%s: connect %d want %d", what, o.connect, r->connect);
        CHECK(o.defer_ok == r->defer_ok && o.callout_defer_ok == r->callout_defer_ok && o.no_details == r->no_details &&
              o.success_on_redirect == r->sor, "%s: flags", what);
        CHECK(o.no_cache == r->no_cache && o.random == r->random && o.use_sender == r->use_sender &&
              o.use_postmaster == r->use_pm && o.fullpostmaster == r->fullpm, "%s: callout flags", what);
        CHECK_STR(o.pm_mailfrom, r->pm_mailfrom, what);
        CHECK_STR(o.se_mailfrom, r->se_mailfrom, what);
    }
    arena_free(a);
    return check_report("callout_opts_test");
}
