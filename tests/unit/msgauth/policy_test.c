/* policy_test.c: SPF (macros, record grammar, check_host with an injected
 * resolver, limits, texts), SRS (both dialects), DMARC (record grammar,
 * tree walk targets, evaluation, history round trip). */
#include "check.h"
#include "core/arena.h"
#include "core/gstr.h"
#include "msgauth/policy/dmarc.h"
#include "msgauth/policy/dmarc_int.h"
#include "msgauth/policy/dmarc_report.h"
#include "msgauth/policy/idna.h"
#include "msgauth/policy/spf.h"
#include "msgauth/policy/spf_int.h"
#include "msgauth/policy/srs.h"
#include "msgauth/policy/zonedns.h"

#include <stdlib.h>
#include <string.h>

/* ---- SPF macros: RFC 7208 section 7.4 examples ------------------------ */

static void test_macros(arena *a)
{
    static const struct { const char *ip, *in, *want; bool exp; } rows[] = {
        { "192.0.2.3", "%{s}", "strong-bad@email.example.com", false },
        { "192.0.2.3", "%{o}", "email.example.com", false },
        { "192.0.2.3", "%{d}", "email.example.com", false },
        { "192.0.2.3", "%{d4}", "email.example.com", false },
        { "192.0.2.3", "%{d3}", "email.example.com", false },
        { "192.0.2.3", "%{d2}", "example.com", false },
        { "192.0.2.3", "%{d1}", "com", false },
        { "192.0.2.3", "%{dr}", "com.example.email", false },
        { "192.0.2.3", "%{d2r}", "example.email", false },
        { "192.0.2.3", "%{l}", "strong-bad", false },
        { "192.0.2.3", "%{l-}", "strong.bad", false },
        { "192.0.2.3", "%{lr}", "strong-bad", false },
        { "192.0.2.3", "%{lr-}", "bad.strong", false },
        { "192.0.2.3", "%{l1r-}", "strong", false },
        { "192.0.2.3", "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com", false },
        { "192.0.2.3", "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com", false },
        { "192.0.2.3", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
          "bad.strong.lp.3.2.0.192.in-addr._spf.example.com", false },
        { "192.0.2.3", "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
          "3.2.0.192.in-addr.strong.lp._spf.example.com", false },
        { "192.0.2.3", "%{d2}.trusted-domains.example.net",
          "example.com.trusted-domains.example.net", false },
        { "2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com", false },
        { "192.0.2.3", "%% %_ %-", NULL, false },             /* space not allowed outside exp */
        { "192.0.2.3", "a%%b%_c%-d", "a%b c%20d", false },
        { "192.0.2.3", "%{S}", "strong-bad%40email.example.com", false },
        { "192.0.2.3", "%{c} at %{t}", "192.0.2.3 at 1234", true },
        { "2001:db8::cb01", "%{c}", "2001:db8::cb01", true },
        { "192.0.2.3", "%{c}", NULL, false },                 /* c only in exp */
        { "192.0.2.3", "%{d0}", NULL, false },                /* zero digit */
        { "192.0.2.3", "%{x}", NULL, false },
        { "192.0.2.3", "%x", NULL, false },
        { "192.0.2.3", "%{d", NULL, false },
        { "192.0.2.3", "%", NULL, false },
        { "192.0.2.3", "%{d200r}", "com.example.email", false },
        { "192.0.2.3", "%{h}", "mx.example.org", false },
        { "192.0.2.3", "%{r}", "rcv.example", true },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        spf_macro_ctx m = {
            .sender = "strong-bad@email.example.com", .local = "strong-bad",
            .sender_dom = "email.example.com", .domain = "email.example.com",
            .ip = rows[i].ip, .helo = "mx.example.org", .receiver = "rcv.example",
            .now = 1234, .in_exp = rows[i].exp,
        };
        char *out = NULL, *err = NULL;
        status st = spf_macro_expand(rows[i].in, strlen(rows[i].in), &m, a, &out, &err);
        if (rows[i].want)
            CHECK(st == ST_OK && strcmp(out, rows[i].want) == 0, "macro %s: got [%s] (%s) want [%s]",
                  rows[i].in, st == ST_OK ? out : "-", err ? err : "", rows[i].want);
        else
            CHECK(st != ST_OK, "macro %s should fail, got [%s]", rows[i].in, out ? out : "");
        CHECK(spf_macro_syntax_ok(rows[i].in, strlen(rows[i].in), rows[i].exp) == (rows[i].want != NULL),
              "macro syntax %s", rows[i].in);
    }
}

/* ---- SPF record grammar ----------------------------------------------- */

static void test_records(arena *a)
{
    static const struct { const char *rec; bool ok; } rows[] = {
        { "v=spf1", true },
        { "v=spf1 -all", true },
        { "V=SPF1 MX A:Example.COM/24//64 -ALL", true },
        { "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", true },
        { "v=spf1 include:_spf.example.com ?all", true },
        { "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", true },
        { "v=spf1 redirect=_spf.example.com", true },
        { "v=spf1 exp=explain.%{d} -all", true },
        { "v=spf1 foo=bar%{d} -all", true },                  /* unknown modifier */
        { "v=spf1 a:foo.xn--zckzah", true },                 /* dash in toplabel */
        { "v=spf1 a:foo.example.com.", true },
        { "v=spf1 ptr", true },
        { "v=spf1 ptr:example.com", true },
        { "v=spf1 a/0 mx//0", true },
        { "v=spf1 a:foo.1", false },                          /* numeric toplabel */
        { "v=spf1 a:com", false },                            /* only a toplabel */
        { "v=spf1 a:foo.-bar", false },
        { "v=spf1 a:", false },
        { "v=spf1 a/33", false },
        { "v=spf1 a//129", false },
        { "v=spf1 a/024", false },                            /* leading zero */
        { "v=spf1 ip4:1.2.3.4/33", false },
        { "v=spf1 ip4:1.2.3", false },
        { "v=spf1 ip6:::1.1.1.1//33", false },
        { "v=spf1 ip6:1.2.3.4", false },
        { "v=spf1 include", false },
        { "v=spf1 exists", false },
        { "v=spf1 all:foo", false },
        { "v=spf1 redirect=a.example redirect=b.example", false },
        { "v=spf1 exp=a.example exp=b.example", false },
        { "v=spf1 redirect=", false },
        { "v=spf1 =foo", false },
        { "v=spf1 1x=foo", false },
        { "v=spf1 foo=%{z}", false },
        { "v=spf1 mx:%{c}.example.com", false },               /* c only in exp */
        { "v=spf1 -", false },
        { "v=spf1 badmech", false },
        { "v=spf1 a:foo%.example.com", false },
        { "v=spf10 -all", false },                             /* not a record */
        { "spf1 -all", false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *err = NULL;
        status st = spf_record_check(rows[i].rec, a, &err);
        CHECK((st == ST_OK) == rows[i].ok, "record [%s]: %s (%s)", rows[i].rec,
              st == ST_OK ? "accepted" : "rejected", err ? err : "");
    }
}

/* ---- check_host with zone data ------------------------------------------ */

static const char zone[] =
    "example.com TXT \"v=spf1 ip4:192.0.2.0/24 a:mail.example.com mx include:inc.example.com -all\"\n"
    "mail.example.com A 198.51.100.1\n"
    "example.com MX 10 mx1.example.com\n"
    "mx1.example.com A 198.51.100.2\n"
    "mx1.example.com AAAA 2001:db8::2\n"
    "inc.example.com TXT \"v=spf1 ip6:2001:db8:1::/48 ~all\"\n"
    "soft.example TXT \"v=spf1 ~all\"\n"
    "neutral.example TXT \"v=spf1 ?all\"\n"
    "none.example A 192.0.2.9\n"
    "two.example TXT \"v=spf1 -all\"\n"
    "two.example TXT \"v=spf1 +all\"\n"
    "tmp.example TXT TIMEOUT\n"
    "split.example TXT \"v=spf1 ip4:192.0.2.1\" \" -all\"\n"
    "redir.example TXT \"v=spf1 redirect=example.com\"\n"
    "redirnone.example TXT \"v=spf1 redirect=none.example\"\n"
    "exp.example TXT \"v=spf1 -all exp=why.exp.example\"\n"
    "why.exp.example TXT \"%{i} is not one of %{d}'s servers\"\n"
    "void.example TXT \"v=spf1 a:n1.example a:n2.example a:n3.example +all\"\n"
    "void2.example TXT \"v=spf1 a:n1.example a:n2.example +all\"\n"
    "loop.example TXT \"v=spf1 include:loop.example\"\n"
    "self.example TXT \"v=spf1 +all include:%{d}\"\n"
    "p.example TXT \"v=spf1 include:spf.protection.example ~all\"\n"
    "spf.protection.example TXT \"v=spf1 ip4:203.0.113.77 -all\"\n"
    "many.example TXT \"v=spf1 a a a a a a a a a a a +all\"\n"
    "ten.example TXT \"v=spf1 a a a a a a a a a a +all\"\n"
    "ten.example A 203.0.113.1\n"
    "many.example A 203.0.113.1\n"
    "ptr.example TXT \"v=spf1 ptr -all\"\n"
    "1.2.0.192.in-addr.arpa PTR host.ptr.example\n"
    "host.ptr.example A 192.0.2.1\n"
    "helo.example TXT \"v=spf1 a -all\"\n"
    "helo.example A 192.0.2.50\n";

static void test_check_host(arena *a)
{
    static const struct { const char *ip, *sender, *helo; bool helo_id; spf_result want; const char *mech; } rows[] = {
        { "192.0.2.77", "u@example.com", "h.example", false, SPF_PASS, "ip4:192.0.2.0/24" },
        { "198.51.100.1", "u@example.com", "h.example", false, SPF_PASS, "a:mail.example.com" },
        { "198.51.100.2", "u@example.com", "h.example", false, SPF_PASS, "mx" },
        { "2001:db8::2", "u@example.com", "h.example", false, SPF_PASS, "mx" },
        { "2001:db8:1::5", "u@example.com", "h.example", false, SPF_PASS, "include:inc.example.com" },
        { "203.0.113.5", "u@example.com", "h.example", false, SPF_FAIL, "-all" },
        { "::ffff:192.0.2.77", "u@example.com", "h.example", false, SPF_PASS, NULL },
        { "203.0.113.5", "u@soft.example", "h.example", false, SPF_SOFTFAIL, NULL },
        { "203.0.113.5", "u@neutral.example", "h.example", false, SPF_NEUTRAL, NULL },
        { "203.0.113.5", "u@none.example", "h.example", false, SPF_NONE, NULL },
        { "203.0.113.5", "u@nx.example", "h.example", false, SPF_NONE, NULL },
        { "203.0.113.5", "u@two.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.5", "u@tmp.example", "h.example", false, SPF_TEMPERROR, NULL },
        { "192.0.2.1", "u@split.example", "h.example", false, SPF_PASS, NULL },
        { "192.0.2.2", "u@split.example", "h.example", false, SPF_FAIL, NULL },
        { "198.51.100.1", "u@redir.example", "h.example", false, SPF_PASS, NULL },
        { "198.51.100.1", "u@redirnone.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.5", "u@void.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.5", "u@void2.example", "h.example", false, SPF_PASS, NULL },
        { "203.0.113.5", "u@loop.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.5", "u@self.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.77", "u@p.example", "h.example", false, SPF_PASS, NULL },
        { "203.0.113.5", "u@many.example", "h.example", false, SPF_PERMERROR, NULL },
        { "203.0.113.5", "u@ten.example", "h.example", false, SPF_PASS, NULL },
        { "192.0.2.1", "u@ptr.example", "h.example", false, SPF_PASS, "ptr" },
        { "192.0.2.2", "u@ptr.example", "h.example", false, SPF_FAIL, NULL },
        { "192.0.2.50", "", "helo.example", false, SPF_PASS, "a" },        /* <> sender */
        { "192.0.2.51", "u@example.com", "helo.example", true, SPF_FAIL, NULL },
        { "192.0.2.77", "u@[192.0.2.1]", "h.example", false, SPF_NONE, NULL },
        { "192.0.2.77", "u@single", "h.example", false, SPF_NONE, NULL },
        { "not-an-ip", "u@example.com", "h.example", false, SPF_PERMERROR, NULL },
    };
    zonedns *z = zonedns_new(a);
    char *err = NULL;
    CHECK(zonedns_load(z, zone, &err) == ST_OK, "zone: %s", err ? err : "");
    dns_iface dns = zonedns_iface(z);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        spf_query q = { .ip = rows[i].ip, .sender = rows[i].sender, .helo = rows[i].helo,
                        .receiver = "rcv.example", .now = 1000, .helo_identity = rows[i].helo_id };
        spf_outcome o;
        spf_check(&q, &dns, a, &o);
        CHECK(o.result == rows[i].want, "spf %s %s: got %s (%s) want %s", rows[i].ip,
              rows[i].sender, spf_result_name(o.result), o.problem ? o.problem : "",
              spf_result_name(rows[i].want));
        if (rows[i].mech)
            CHECK(o.mechanism && strcmp(o.mechanism, rows[i].mech) == 0, "mechanism %s: %s",
                  rows[i].mech, o.mechanism ? o.mechanism : "(null)");
    }
    /* exp= and the texts */
    spf_query q = { .ip = "203.0.113.5", .sender = "u@exp.example", .helo = "h.example",
                    .receiver = "rcv.example", .now = 1000 };
    spf_outcome o;
    spf_check(&q, &dns, a, &o);
    CHECK_STR(o.explanation, "203.0.113.5 is not one of exp.example's servers", "exp");
    CHECK_STR(spf_smtp_comment(&q, &o, NULL, a), "203.0.113.5 is not one of exp.example's servers",
              "smtp comment uses exp");
    CHECK_STR(spf_result_exim(SPF_PERMERROR), "err_perm", "exim name");
    CHECK_STR(spf_result_exim(SPF_TEMPERROR), "err_temp", "exim name");
    CHECK(spf_result_parse("err_temp") == SPF_TEMPERROR && spf_result_parse("Pass") == SPF_PASS &&
          spf_result_parse("bogus") == -1, "result parse");
    q.sender = "u@example.com";
    q.ip = "192.0.2.77";
    spf_check(&q, &dns, a, &o);
    char *rcv = arena_strdup(a, spf_received(&q, &o, a));
    for (char *p = rcv, *w = rcv;; p++) {        /* unfold */
        if (*p == '\n')
            continue;
        *w++ = *p == '\t' ? ' ' : *p;
        if (!*p)
            break;
    }
    CHECK(strncmp(rcv, "Received-SPF: pass (rcv.example: domain of u@example.com designates "
                       "192.0.2.77 as permitted sender)", 99) == 0, "received-spf: %s", rcv);
    CHECK(strstr(rcv, "client-ip=192.0.2.77;") && strstr(rcv, "envelope-from=\"u@example.com\";") &&
          strstr(rcv, "identity=mailfrom"), "received-spf fields: %s", rcv);
    q.ip = "203.0.113.5";
    spf_check(&q, &dns, a, &o);
    CHECK_STR(spf_smtp_comment(&q, &o, "Please%_see%_http://x.example/why?s=%{S}&i=%{I}", a),
              "Please see http://x.example/why?s=u%40example.com&i=203.0.113.5", "template");
    /* spf_guess for a domain without a record */
    q.sender = "u@none.example";
    q.ip = "192.0.2.9";
    q.guess = SPF_DEFAULT_GUESS;
    spf_check(&q, &dns, a, &o);
    CHECK(o.result == SPF_PASS && o.guessed, "guess: %s", spf_result_name(o.result));
    CHECK(strncmp(spf_received(&q, &o, a), "X-SPF-Guess: pass", 17) == 0, "guess header");
    q.ip = "203.0.113.9";
    spf_check(&q, &dns, a, &o);
    CHECK(o.result == SPF_NEUTRAL && o.guessed, "guess neutral: %s", spf_result_name(o.result));
}

/* ---- SRS ---------------------------------------------------------------- */

static void test_srs(arena *a)
{
    const char *secrets[] = { "tops3cr3t", "old" };
    srs_opts o = { .secrets = secrets, .nsecrets = 2, .now = 1577836860 };
    static const struct { bool fwd; const char *in, *want; srs_err err; } rows[] = {
        { true, "test@otherdomain.com", "SRS0=vmyz=2W=otherdomain.com=test@example.com", SRS_OK },
        { true, "test@example.com", "test@example.com", SRS_OK },
        { true, "SRS0=opaque+string@otherdomain.com",
          "SRS1=chaI=otherdomain.com==opaque+string@example.com", SRS_OK },
        { true, "foo", NULL, SRS_E_NO_DOMAIN },
        { false, "SRS0=vmyz=2W=otherdomain.com=test@example.com", "test@otherdomain.com", SRS_OK },
        { false, "srs0=VMYZ=2w=otherdomain.com=test@example.com", "test@otherdomain.com", SRS_OK },
        { false, "SRS1=JIBX=thirddomain.com==opaque+string@example.com",
          "SRS0=opaque+string@thirddomain.com", SRS_OK },
        { false, "SRS0=FAKE=2V=otherdomain.com=test@example.com", NULL, SRS_E_HASH },
        { false, "SRS0=te87=T7=otherdomain.com=test@example.com", NULL, SRS_E_TIMESTAMP },
        { false, "SRS0=@example.com", NULL, SRS_E_NO_HASH },
        { false, "SRS0=XjO9@example.com", NULL, SRS_E_NO_TIMESTAMP },
        { false, "SRS0=XjO9=2V@example.com", NULL, SRS_E_NO_HOST },
        { false, "SRS0=XjO9=2V=otherdomain.com@example.com", NULL, SRS_E_NO_USER },
        { false, "plain@example.com", NULL, SRS_E_NOT_SRS },
        { false, "SRS0=XjO9=!!=otherdomain.com=test@example.com", NULL, SRS_E_HASH },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *out = NULL;
        srs_err e = rows[i].fwd ? srs_forward(&o, rows[i].in, "example.com", a, &out)
                                : srs_reverse(&o, rows[i].in, a, &out);
        CHECK(e == rows[i].err, "srs %s: error %s want %s", rows[i].in, srs_err_class(e),
              srs_err_class(rows[i].err));
        if (rows[i].want && e == SRS_OK)
            CHECK_STR(out, rows[i].want, rows[i].in);
    }
    /* a second secret verifies */
    const char *s2[] = { "new", "tops3cr3t" };
    srs_opts o2 = { .secrets = s2, .nsecrets = 2, .now = 1577836860 };
    char *out = NULL;
    CHECK(srs_reverse(&o2, "SRS0=vmyz=2W=otherdomain.com=test@example.com", a, &out) == SRS_OK,
          "old secret verifies");
    /* Exim dialect round trip, and its 10-day limit */
    char *err = NULL;
    char *enc = srs_exim_encode("K", "User@Example.ORG", "fwd.example", 1700000000, a, &err);
    CHECK(enc && strncmp(enc, "SRS0=", 5) == 0 && strstr(enc, "=example.org=") == NULL &&
          strstr(enc, "=Example.ORG=User@fwd.example"), "exim encode: %s", enc ? enc : err);
    char *lp = arena_strndup(a, enc, (size_t)(strrchr(enc, '@') - enc));
    char *rcpt = NULL;
    CHECK(srs_exim_inbound(lp, "K", 1700000000 + 86400 * 10, a, &rcpt) &&
          strcmp(rcpt, "user@example.org") == 0, "exim inbound: %s", rcpt ? rcpt : "");
    CHECK(!srs_exim_inbound(lp, "K", 1700000000 + 86400 * 11, a, &rcpt), "exim too old");
    CHECK(!srs_exim_inbound(lp, "other", 1700000000, a, &rcpt), "exim wrong secret");
    CHECK(srs_exim_inbound(lp, "", 1700000000, a, &rcpt), "exim format-only check");
    CHECK(!srs_exim_inbound("user", "K", 1700000000, a, &rcpt), "exim not srs");
    CHECK_STR(srs_exim_encode("K", "", "fwd.example", 0, a, &err), "", "exim empty");
}

/* ---- DMARC ------------------------------------------------------------ */

static void test_dmarc_records(arena *a)
{
    static const struct { const char *rec; dmarc_mode mode; status want; dmarc_pol p, sp; } rows[] = {
        { "v=DMARC1; p=reject", DMARC_MODE_RFC7489, ST_OK, DMARC_POL_REJECT, DMARC_POL_UNSET },
        { "v=DMARC1;p=quarantine;sp=none;", DMARC_MODE_RFC7489, ST_OK, DMARC_POL_QUARANTINE, DMARC_POL_NONE },
        { "v = DMARC1 ; P = Reject ; foo=bar", DMARC_MODE_RFC7489, ST_OK, DMARC_POL_REJECT, DMARC_POL_UNSET },
        { "v=DMARC1; p=none; reject", DMARC_MODE_RFC7489, ST_FAIL, 0, 0 },
        { "v=DMARC1; sp=reject", DMARC_MODE_RFC7489, ST_DECLINED, 0, 0 },
        { "v=DMARC1; sp=reject; rua=mailto:a@b.example", DMARC_MODE_RFC7489, ST_OK, DMARC_POL_NONE, DMARC_POL_REJECT },
        { "v=DMARC1; sp=reject", DMARC_MODE_RFC9989, ST_OK, DMARC_POL_NONE, DMARC_POL_REJECT },
        { "v=DMARC1; p=bogus", DMARC_MODE_RFC9989, ST_OK, DMARC_POL_NONE, DMARC_POL_UNSET },
        { "v=DMARC2; p=reject", DMARC_MODE_RFC7489, ST_NOTFOUND, 0, 0 },
        { "p=reject; v=DMARC1", DMARC_MODE_RFC7489, ST_NOTFOUND, 0, 0 },
        { "v=dmarc1; p=reject", DMARC_MODE_RFC7489, ST_NOTFOUND, 0, 0 },
        { "", DMARC_MODE_RFC7489, ST_NOTFOUND, 0, 0 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dmarc_record r;
        char *err = NULL;
        status st = dmarc_record_parse(rows[i].rec, strlen(rows[i].rec), rows[i].mode, a, &r, &err);
        CHECK(st == rows[i].want, "dmarc record [%s]: %s", rows[i].rec, status_name(st));
        if (st == ST_OK)
            CHECK(r.p == rows[i].p && r.sp == rows[i].sp, "dmarc record [%s]: p %d sp %d",
                  rows[i].rec, r.p, r.sp);
    }
    dmarc_record r;
    char *err;
    const char *tags = "v=DMARC1; p=reject; pct=20; adkim=s; psd=y; t=y";
    dmarc_record_parse(tags, strlen(tags), DMARC_MODE_RFC7489, a, &r, &err);
    CHECK(r.pct == 20 && r.adkim_strict && !r.aspf_strict && r.psd == 'u' && !r.testing, "7489 tags");
    dmarc_record_parse(tags, strlen(tags), DMARC_MODE_RFC9989, a, &r, &err);
    CHECK(r.pct == 100 && r.psd == 'y' && r.testing, "9989 tags");

    static const struct { const char *d; const char *want; } walks[] = {
        { "a.mail.example.com", "a.mail.example.com|mail.example.com|example.com|com" },
        { "a.b.c.d.e.f.example.com", "a.b.c.d.e.f.example.com|e.f.example.com|f.example.com|example.com|com" },
        { "com", "com" },
        { "example.com", "example.com|com" },
    };
    for (size_t i = 0; i < sizeof walks / sizeof walks[0]; i++) {
        const char *t[DMARC_WALK_MAX];
        int n = dmarc_walk_targets(walks[i].d, t, DMARC_WALK_MAX);
        gstr g;
        gstr_init(&g, a, 64);
        for (int j = 0; j < n; j++) {
            if (j)
                gstr_catc(&g, '|');
            gstr_cat(&g, t[j]);
        }
        CHECK_STR(g.s, walks[i].want, walks[i].d);
    }
}

static const char dzone[] =
    "_dmarc.example.com TXT \"v=DMARC1; p=reject; rua=mailto:agg@example.com; ruf=mailto:f@example.com\"\n"
    "_dmarc.example.net TXT \"v=DMARC1; p=none; sp=quarantine; np=reject; adkim=s\"\n"
    "exists.example.net A 192.0.2.1\n"
    "_dmarc.gov.example TXT \"v=DMARC1; p=reject; sp=none; psd=y\"\n"
    "_dmarc.test.example TXT \"v=DMARC1; p=quarantine; t=y\"\n"
    "_dmarc.bad.example TXT \"v=DMARC1; p=none; reject\"\n"
    "_dmarc.tmp.example TXT TIMEOUT\n";

static void test_dmarc_eval(arena *a)
{
    zonedns *z = zonedns_new(a);
    char *err = NULL;
    CHECK(zonedns_load(z, dzone, &err) == ST_OK, "dmarc zone");
    dns_iface dns = zonedns_iface(z);
    static const struct {
        const char *from, *spf_dom; spf_result spf; const char *dkim_dom, *dkim_res;
        dmarc_outcome want; const char *used, *policy;
    } rows[] = {
        { "example.com", "example.com", SPF_PASS, NULL, NULL, DMARC_ACCEPT, "example.com", "reject" },
        { "example.com", "bounce.example.com", SPF_PASS, NULL, NULL, DMARC_ACCEPT, "example.com", "reject" },
        { "example.com", "other.example", SPF_PASS, "example.com", "fail", DMARC_REJECT, "example.com", "reject" },
        { "mail.example.com", "other.example", SPF_FAIL, "s.example.com", "pass", DMARC_ACCEPT, "example.com", "reject" },
        { "example.net", "x.example", SPF_FAIL, "sub.example.net", "pass", DMARC_NONE, "example.net", "none" },
        { "exists.example.net", "x.example", SPF_FAIL, NULL, NULL, DMARC_QUARANTINE, "example.net", "quarantine" },
        { "ghost.example.net", "x.example", SPF_FAIL, NULL, NULL, DMARC_REJECT, "example.net", "reject" },
        { "agency.gov.example", "x.example", SPF_FAIL, NULL, NULL, DMARC_REJECT, "gov.example", "reject" },
        { "www.agency.gov.example", "x.example", SPF_FAIL, NULL, NULL, DMARC_NONE, "gov.example", "none" },
        { "test.example", "x.example", SPF_FAIL, NULL, NULL, DMARC_NONE, "test.example", "quarantine" },
        { "bad.example", "x.example", SPF_FAIL, NULL, NULL, DMARC_NORECORD, "bad.example", "" },
        { "tmp.example", "x.example", SPF_FAIL, NULL, NULL, DMARC_TEMPERROR, "", "" },
        { "nothing.example", "x.example", SPF_PASS, NULL, NULL, DMARC_NORECORD, "", "" },
        { "localhost", "x.example", SPF_PASS, NULL, NULL, DMARC_NOFROM, "", "" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *froms[] = { rows[i].from };
        dmarc_dkim dk = { .domain = rows[i].dkim_dom, .selector = "s", .result = rows[i].dkim_res };
        dmarc_input in = { .mode = DMARC_MODE_RFC9989, .from_domains = froms, .nfrom = 1,
                           .nfrom_headers = 1, .spf = rows[i].spf, .spf_domain = rows[i].spf_dom,
                           .dkim = &dk, .ndkim = rows[i].dkim_dom ? 1 : 0, .pct_roll = -1 };
        dmarc_result r;
        dmarc_evaluate(&in, &dns, a, &r);
        CHECK(r.outcome == rows[i].want, "dmarc %s: %s (%s) want %s", rows[i].from,
              dmarc_outcome_name(r.outcome), r.detail ? r.detail : "", dmarc_outcome_name(rows[i].want));
        CHECK_STR(r.used_domain, rows[i].used, rows[i].from);
        CHECK_STR(r.domain_policy, rows[i].policy, rows[i].from);
        CHECK(r.status_text && *r.status_text, "status text");
    }
    /* no From header at all */
    dmarc_input in = { .mode = DMARC_MODE_RFC9989, .nfrom_headers = 0, .pct_roll = -1 };
    dmarc_result r;
    dmarc_evaluate(&in, &dns, a, &r);
    CHECK(r.outcome == DMARC_NOFROM && strcmp(r.status_text, "No From: domain found") == 0, "nofrom");
    /* history round trip and a report from it */
    const char *froms[] = { "example.com" };
    dmarc_dkim dk = { .domain = "example.com", .selector = "sel", .result = "fail" };
    dmarc_input in2 = { .mode = DMARC_MODE_RFC9989, .from_domains = froms, .nfrom = 1,
                        .nfrom_headers = 1, .spf = SPF_FAIL, .spf_domain = "x.example",
                        .dkim = &dk, .ndkim = 1, .pct_roll = -1 };
    dmarc_evaluate(&in2, &dns, a, &r);
    CHECK_STR(dmarc_authres_text(&r, a),
              "dmarc=fail (From domain record) header.from=example.com policy.dmarc=reject "
              "polrec.p=reject", "A-R");
    dmarc_hist h;
    dmarc_hist_from_result(&h, &r, &in2, "1abc-2", "mx.example", 1700000000, "192.0.2.1",
                           "x.example", a);
    char *txt = dmarc_hist_format(&h, a);
    CHECK(strstr(txt, "job 1abc-2\nreporter mx.example\nreceived 1700000000\n") &&
          strstr(txt, "dkim example.com sel 7\n") && strstr(txt, "policy 16\n") &&
          strstr(txt, "rua mailto:agg@example.com\n") && strstr(txt, "p 114\n") &&
          strstr(txt, "action 0\n"), "history: %s", txt);
    gstr two;
    gstr_init(&two, a, 1024);
    gstr_cat(&two, txt);
    gstr_cat(&two, "garbage line\n");
    gstr_cat(&two, txt);
    dmarc_hist *hs;
    int bad;
    int n = dmarc_hist_parse(two.s, two.len, a, &hs, &bad);
    CHECK(n == 2 && bad == 0 && hs[1].dkim[0].result == 7 && hs[0].received == 1700000000 &&
          strcmp(hs[1].pdomain, "example.com") == 0, "history parse: n=%d bad=%d", n, bad);
    dmarc_agg_opts ao = { .org_name = "Org <&>", .email = "r@x.example", .begin = 1700000000,
                          .end = 1700086400 };
    dmarc_agg_report *rep;
    CHECK(dmarc_agg_build(hs, n, &ao, a, &rep) == 1 && rep[0].messages == 2 && rep[0].records == 1 &&
          strstr(rep[0].xml, "<count>2</count>") && strstr(rep[0].xml, "Org &lt;&amp;&gt;"),
          "aggregate");
    char *mail = dmarc_agg_mail(&rep[0], &ao, 1700090000, a);
    CHECK(mail && strstr(mail, "To: agg@example.com\r\n") &&
          strstr(mail, "Subject: Report Domain: example.com\r\n Submitter: x.example\r\n") &&
          strstr(mail, "Content-Type: text/xml"), "aggregate mail");
    CHECK(dmarc_fail_wanted(&r, &in2), "fo=0 failure wanted");
    CHECK_STR(dmarc_uri_mailto(" mailto:f@example.com!10m , https://x", a), "f@example.com", "ruf");
}

static void test_lists(arena *a)
{
    static const struct { const char *list; spf_result r; bool want; } rows[] = {
        { "fail", SPF_FAIL, true }, { "fail", SPF_PASS, false },
        { "!fail", SPF_PASS, true }, { "!fail", SPF_FAIL, false },
        { "pass : fail : softfail", SPF_SOFTFAIL, true }, { "err_perm", SPF_PERMERROR, true },
        { "permerror", SPF_PERMERROR, true }, { "temperror", SPF_PERMERROR, false },
        { "*", SPF_NONE, true }, { "", SPF_PASS, false }, { "<; pass ; neutral", SPF_NEUTRAL, true },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(spf_result_in_list(rows[i].list, rows[i].r, a) == rows[i].want, "spf list [%s] %s",
              rows[i].list, spf_result_name(rows[i].r));
    CHECK(dmarc_outcome_in_list("accept : none : off", DMARC_NONE, a), "dmarc list");
    CHECK(dmarc_outcome_in_list("!accept", DMARC_REJECT, a), "dmarc !accept");
    CHECK(!dmarc_outcome_in_list("!accept", DMARC_ACCEPT, a), "dmarc !accept on accept");
    CHECK(!dmarc_outcome_in_list("quarantine", DMARC_REJECT, a), "dmarc no match");
}

static void test_idna(arena *a)
{
    static const struct { const char *in, *want; } rows[] = {
        { "example.com", "example.com" },
        { "b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
        { "B\xc3\x9c" "CHER.example", "xn--bcher-kva.example" },
        { "\xe9\xa3\x9f\xe7\x8b\xae.\xe4\xb8\xad\xe5\x9b\xbd", "xn--85x722f.xn--fiqs8s" },
        { "\xe5\x85\xac\xe5\x8f\xb8.cn", "xn--55qx5d.cn" },
        { "bad\xc3.example", NULL },
        { "over\xc0\xaflong.example", NULL },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK_STR(idna_to_alabel(rows[i].in, a), rows[i].want, rows[i].in);
}

int main(void)
{
    arena *a = arena_new("test", false);
    test_macros(a);
    test_records(a);
    test_check_host(a);
    test_srs(a);
    test_dmarc_records(a);
    test_dmarc_eval(a);
    test_idna(a);
    test_lists(a);
    arena_free(a);
    return check_report("policy_test");
}
