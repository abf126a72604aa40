/* config_test.c: the configuration reader, table-driven: accepted texts
 * with the values they set, and every error path with its line and word. */
#include "check.h"
#include "config/config.h"
#include "core/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static config *load(const char *text, const char **defines, char **err)
{
    config *c = NULL;
    *err = NULL;
    if (config_load_string(text, "test.conf", defines, &c, err) != ST_OK)
        return NULL;
    return c;
}

/* Texts that must fail: the error must name the line and contain want. */
static void test_errors(void)
{
    static const struct { const char *text; int line; const char *want; } rows[] = {
        { "foo_bar = 1\n", 1, "main option \"foo_bar\" unknown" },
        { "# c\n\nsmtp_accept_max = 5x\n", 3, "invalid integer value \"5x\"" },
        { "smtp_accept_max = 5\nsmtp_accept_max = 6\n", 2, "\"smtp_accept_max\" option set for the second time" },
        { "no_smtp_accept_max\n", 1, "negation prefix applied to a non-boolean option" },
        { "accept_8bitmime = maybe\n", 1, "\"maybe\" is not a valid value for the \"accept_8bitmime\" option" },
        { "no_accept_8bitmime = true\n", 1, "extra characters follow boolean option no_accept_8bitmime" },
        { "smtp_accept_max\n", 1, "missing \"=\" after option \"smtp_accept_max\"" },
        { "retry_interval_max = 30\n", 1, "invalid time value \"30\" for retry_interval_max" },
        { "retry_interval_max = 1h30\n", 1, "invalid time value" },
        { "deliver_queue_load_max = 1.2.3\n", 1, "invalid fixed-point value" },
        { "delay_warning = 1h:x\n", 1, "invalid time list" },
        { "primary_hostname = \"abc\n", 1, "missing closing quote" },
        { "primary_hostname = \"abc\" def\n", 1, "extra characters follow quoted string" },
        { "smtp_accept_max 5\n", 1, "unexpected characters after option name" },
        { "begin bogus\n", 1, "\"bogus\" is not a known configuration section name" },
        { "begin routers\nbegin routers\n", 2, "there are two \"begin routers\" sections" },
        { "begin local_scan\n", 1, "not supported" },
        { "A = 1\nAB = 2\n", 2, "\"AB\" cannot be defined as a macro because previously defined macro \"A\" is a substring" },
        { "MAC = 1\nMAC = 2\n", 2, "macro \"MAC\" is already defined" },
        { ".include /nonexistent/postern-test\n", 1, "failed to open included configuration file /nonexistent/postern-test" },
        { ".include_if_exists relative\n", 1, "non-absolute path" },
        { ".bogus\n", 1, "unknown directive \".bogus\"" },
        { ".ifdef X\n", 1, ".endif missing" },
        { ".endif\n", 1, ".endif without preceding .ifdef" },
        { ".else\n", 1, ".else without preceding .ifdef" },
        { ".ifdef\n.endif\n", 1, ".ifdef without a macro name" },
        { "domainlist x = a\ndomainlist x = b\n", 2, "duplicate name \"x\" for a named domain list" },
        { "hostlist = a\n", 1, "missing or malformed name for named host list" },
        { "addresslist x a\n", 1, "missing \"=\" after named address list \"x\"" },
        { "begin acl\naccept\n", 2, "ACL name expected" },
        { "begin acl\na1:\n  accept hosts = 1\n  frobnicate = 2\n", 4, "unknown ACL condition/modifier \"frobnicate\"" },
        { "begin acl\na1:\n  permit hosts = 1\n", 3, "unknown ACL verb \"permit\"" },
        { "begin acl\na1:\n  hosts = 1\n", 3, "condition or modifier before an ACL verb" },
        { "begin acl\na1:\n  accept !message = x\n", 3, "negation is not allowed with \"message\"" },
        { "begin acl\na1:\n  accept set foo = 1\n", 3, "invalid variable name after \"set\"" },
        { "begin acl\na1:\n  accept set acl_m_x 1\n", 3, "missing \"=\" after \"set acl_m_x\"" },
        { "begin acl\na1:\n  accept hosts\n", 3, "missing \"=\" after \"hosts\"" },
        { "begin acl\na1:\n  accept spam = nobody\n", 3, "the ACL condition \"spam\" is not supported" },
        { "begin acl\na1:\n accept\na1:\n accept\n", 4, "there are two ACLs called \"a1\"" },
        { "begin routers\nr1:\n  transport = x\n", 2, "no driver defined for router \"r1\"" },
        { "begin routers\nr1:\n  driver = accept\n  foo = 1\n", 4, "option \"foo\" unknown" },
        { "begin routers\nr1:\n  driver = accept\n  driver = accept\n", 4, "\"driver\" option set for the second time" },
        { "begin routers\nr1:\n  driver = nosuch\n", 3, "cannot find router driver \"nosuch\"" },
        { "begin routers\nr1:\n  driver = iplookup\n", 3, "the router driver \"iplookup\" is not supported by postern" },
        { "begin routers\nr1:\n  driver = accept\nr1:\n  driver = accept\n", 4, "there are two routers called \"r1\"" },
        { "begin routers\nr1:\n  driver = accept\n  transport = nosuch\n", 4, "router \"r1\": transport \"nosuch\" not found" },
        { "begin routers\n  driver = accept\n", 2, "router name expected" },
        { "begin transports\nt1:\n  driver = smtp\n  hosts_max_try = x\n", 4, "invalid integer value \"x\" for hosts_max_try" },
        { "begin transports\nt1:\n  driver = appendfile\n  mode = 0989\n", 4, "invalid octal integer value" },
        { "begin authenticators\na:\n  driver = spa\n", 3, "authenticator driver \"spa\" is not supported" },
        { "begin retry\n* * X,2h\n", 2, "unknown retry rule letter \"X\"" },
        { "begin retry\n* * F,2h\n", 2, "retry rule F needs 2 values, found 1" },
        { "begin retry\n* * G,2h,1h,x\n", 2, "invalid multiplier \"x\"" },
        { "begin retry\n* * F,2x,1h\n", 2, "invalid time in retry rule" },
        { "begin rewrite\n*@a b@c Xq\n", 2, "unknown rewrite flag character 'X'" },
        { "begin rewrite\n*@a\n", 2, "missing replacement in rewrite rule" },
        { "\n\nfoo = a \\\n  b\nbar = 1\n", 3, "main option \"foo\" unknown" },
        { "log_selector = +subject +nosuch_selector\n", 1, "unknown log_selector setting: +nosuch_selector" },
        { "log_selector = subject\n", 1, "unknown log_selector setting: subject" },
        { "tls_crl = /c.pem\n", 1, "main option \"tls_crl\" is not implemented by postern yet" },
        { "limits_advertise_hosts = a\n", 1, "its default (\"*\") or left empty" },
        { "begin transports\nt1:\n  driver = smtp\n  tls_crl = /c.pem\n", 4,
          "option \"tls_crl\" (transport \"t1\", driver smtp) is not implemented by postern yet" },
        { "begin routers\nr1:\n  driver = redirect\n  allow_defer\n  forbid_smtp_code\n", 5,
          "option \"forbid_smtp_code\" (router \"r1\", driver redirect) is not implemented" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *err;
        config *c = load(rows[i].text, NULL, &err);
        CHECK(c == NULL, "row %zu should fail: %s", i, rows[i].text);
        if (c) {
            config_free(c);
            continue;
        }
        char want_line[64];
        snprintf(want_line, sizeof want_line, "line %d of test.conf", rows[i].line);
        CHECK(err && strstr(err, want_line), "row %zu: want [%s] in [%s]", i, want_line, err ? err : "");
        CHECK(err && strstr(err, rows[i].want), "row %zu: want [%s] in [%s]", i, rows[i].want, err ? err : "");
    }
}

static const char *mainstr(const config *c, const char *name)
{
    int i = config_main_opt_index(name);
    return i >= 0 ? c->main[i].s : "(no such option)";
}

static long long mainint(const config *c, const char *name)
{
    int i = config_main_opt_index(name);
    return i >= 0 ? c->main[i].n : -999;
}

static void test_values(void)
{
    static const struct { const char *text; const char *opt; const char *want_s; long long want_n; } rows[] = {
        { "primary_hostname = mail.example\n", "primary_hostname", "mail.example", 0 },
        { "primary_hostname = \"a\\tb\\x41\\101\\\"\\\\\"\n", "primary_hostname", "a\tbAA\"\\", 0 },
        { "primary_hostname = a \\\n   b\n", "primary_hostname", "a b", 0 },
        { "primary_hostname = a\\\n# comment inside a continuation\n  b\n", "primary_hostname", "ab", 0 },
        { "MAC = x.example\nprimary_hostname = MAC\n", "primary_hostname", "x.example", 0 },
        { "MAC = x\nMAC == MAC.y\nprimary_hostname = MAC\n", "primary_hostname", "x.y", 0 },
        { "MAC_LONG = 1\nMAC = 2\nprimary_hostname = MAC_LONG.MAC\n", "primary_hostname", "1.2", 0 },
        { "EMPTY =\nEMPTY\nprimary_hostname = z\n", "primary_hostname", "z", 0 },
        { ".ifdef NOPE\nprimary_hostname = a\n.else\nprimary_hostname = b\n.endif\n", "primary_hostname", "b", 0 },
        { "YES = 1\n.ifdef YES\nprimary_hostname = a\n.else\nprimary_hostname = b\n.endif\n", "primary_hostname", "a", 0 },
        { ".ifndef NOPE\nprimary_hostname = a\n.endif\n", "primary_hostname", "a", 0 },
        { "B = 1\n.ifdef A\nprimary_hostname = a\n.elifdef B\nprimary_hostname = b\n.else\nprimary_hostname = c\n.endif\n", "primary_hostname", "b", 0 },
        { ".ifdef A\n.ifdef B\nprimary_hostname = ab\n.endif\n.else\nprimary_hostname = na\n.endif\n", "primary_hostname", "na", 0 },
        { ".ifdef _HAVE_DKIM\nprimary_hostname = dkim\n.endif\n", "primary_hostname", "dkim", 0 },
        { ".ifdef _OPT_MAIN_SMTP_ACCEPT_MAX\nprimary_hostname = opt\n.endif\n", "primary_hostname", "opt", 0 },
        { "message_size_limit = 10M\n", "message_size_limit", "10M", 0 },
        { "smtp_accept_max = 0x10\n", "smtp_accept_max", NULL, 16 },
        { "smtp_accept_max = 010\n", "smtp_accept_max", NULL, 8 },
        { "smtp_accept_max = 2K\n", "smtp_accept_max", NULL, 2048 },
        { "bounce_return_size_limit = 1M\n", "bounce_return_size_limit", NULL, 1048576 },
        { "retry_interval_max = 1h30m\n", "retry_interval_max", NULL, 5400 },
        { "retry_interval_max = 2w1d\n", "retry_interval_max", NULL, 15 * 86400 },
        { "deliver_queue_load_max = 1.5\n", "deliver_queue_load_max", NULL, 1500 },
        { "accept_8bitmime = false\n", "accept_8bitmime", NULL, 0 },
        { "no_accept_8bitmime\n", "accept_8bitmime", NULL, 0 },
        { "not_accept_8bitmime\n", "accept_8bitmime", NULL, 0 },
        { "queue_only\n", "queue_only", NULL, 1 },
        { "queue_only = yes\n", "queue_only", NULL, 1 },
        { "", "smtp_accept_max", NULL, 20 },
        { "", "accept_8bitmime", NULL, 1 },
        { "primary_hostname = p.example\n", "qualify_domain", "p.example", 0 },
        /* options postern does not implement: their default or "off" value */
        { "tls_advertise_hosts =\n", "tls_advertise_hosts", "", 0 },
        { "dkim_verify_hashes = sha256:sha512\n", "dkim_verify_hashes", "sha256:sha512", 0 },
        { "smtp_accept_max_nonmail = 0\n", "smtp_accept_max_nonmail", NULL, 0 },
        { "no_strict_acl_vars\n", "strict_acl_vars", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *err;
        config *c = load(rows[i].text, NULL, &err);
        CHECK(c != NULL, "row %zu failed: %s", i, err ? err : "");
        if (!c)
            continue;
        if (rows[i].want_s)
            CHECK_STR(mainstr(c, rows[i].opt), rows[i].want_s, rows[i].text);
        else
            CHECK(mainint(c, rows[i].opt) == rows[i].want_n, "row %zu: %s = %lld, want %lld",
                  i, rows[i].opt, mainint(c, rows[i].opt), rows[i].want_n);
        config_free(c);
    }
}

static void test_defines_and_includes(void)
{
    char *err;
    const char *defs[] = { "MAC=cmdline", "FLAG", NULL };
    config *c = load("MAC = file\nMAC == again\n.ifdef FLAG\nprimary_hostname = MAC\n.endif\n", defs, &err);
    CHECK(c != NULL, "defines: %s", err ? err : "");
    if (c) {
        CHECK_STR(mainstr(c, "primary_hostname"), "cmdline", "-D overrides definitions in the file");
        config_free(c);
    }
    const char *bad[] = { "lower=1", NULL };
    c = load("", bad, &err);
    CHECK(c == NULL && err && strstr(err, "invalid macro name \"lower\""), "-D name check: %s", err ? err : "");

    char dir[] = "/tmp/postern-config-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char inc[256], top[256];
    snprintf(inc, sizeof inc, "%s/inc.conf", dir);
    snprintf(top, sizeof top, "%s/top.conf", dir);
    FILE *f = fopen(inc, "w");
    fprintf(f, "qualify_domain = from.include\nbad_option = 1\n");
    fclose(f);
    f = fopen(top, "w");
    fprintf(f, "# top\nprimary_hostname = top \\\n.include inc.conf\n");
    fclose(f);
    config_load_args la = { .file = top };
    c = NULL;
    status st = config_load(&la, &c, &err);
    char want[512];
    snprintf(want, sizeof want, "line 2 of %s", inc);
    CHECK(st == ST_ERROR && err && strstr(err, want) && strstr(err, "\"bad_option\""),
          "error inside an include names the included file: %s", err ? err : "");
    f = fopen(inc, "w");
    fprintf(f, "qualify_domain = from.include\n");
    fclose(f);
    f = fopen(top, "w");
    fprintf(f, ".include \"%s\"\n.include_if_exists %s/none.conf\nprimary_hostname = top\n", inc, dir);
    fclose(f);
    st = config_load(&la, &c, &err);
    CHECK(st == ST_OK, "include: %s", st == ST_OK ? "" : err);
    if (st == ST_OK) {
        CHECK_STR(mainstr(c, "qualify_domain"), "from.include", "included value");
        CHECK_STR(c->filename, top, "filename");
        config_free(c);
    }
    la.file = "/nonexistent/a.conf:/nonexistent/b.conf";
    st = config_load(&la, &c, &err);
    CHECK(st == ST_ERROR && strstr(err, "configuration file not found"), "-C list of missing files: %s", err);
    unlink(inc);
    unlink(top);
    rmdir(dir);
}

static void test_sections(void)
{
    const char *text =
        "domainlist local_domains = @ : example.org\n"
        "hide hostlist relay = 10.0.0.0/8\n"
        "hide primary_hostname = secret\n"
        "begin acl\n"
        "check_rcpt:\n"
        "  accept hosts = :\n"
        "  deny   message = nope\n"
        "         !verify = sender\n"
        "  warn   set acl_m_x = ${if eq{1}{1}{y}}\n"
        "  accept\n"
        "begin routers\n"
        "r1:\n"
        "  transport = t1\n"
        "  driver = accept\n"
        "  no_more\n"
        "begin transports\n"
        "t1:\n"
        "  driver = appendfile\n"
        "  file = /var/mail/$local_part\n"
        "  mode = 0640\n"
        "begin retry\n"
        "\"*@example.org\" quota senders=a@b F,2h,15m; G,16h,1h,1.5\n"
        "* * \n"
        "begin rewrite\n"
        "*@old.example $1@new.example Eh\n";
    char *err;
    config *c = load(text, NULL, &err);
    CHECK(c != NULL, "sections: %s", err ? err : "");
    if (!c)
        return;
    config_set_current(c);
    const named_list *nl = config_named_list(NL_DOMAIN, "local_domains");
    CHECK(nl && strcmp(nl->value, "@ : example.org") == 0, "named list");
    nl = config_named_list(NL_HOST, "relay");
    CHECK(nl && nl->hidden, "hidden named list");
    CHECK(c->main[MO_primary_hostname].hidden, "hide option");
    const acl_def *a = config_acl("check_rcpt");
    CHECK(a != NULL, "acl found");
    if (a) {
        const acl_stmt *s = a->stmts;
        CHECK(s && s->verb == ACLV_ACCEPT && s->conds && !strcmp(s->conds->name, "hosts") && !strcmp(s->conds->value, ":"), "stmt 1");
        s = s ? s->next : NULL;
        CHECK(s && s->verb == ACLV_DENY && s->line == 7, "stmt 2 line");
        if (s && s->conds && s->conds->next) {
            CHECK(s->conds->is_modifier && !strcmp(s->conds->value, "nope"), "message modifier");
            CHECK(s->conds->next->negated && !strcmp(s->conds->next->name, "verify"), "negated verify");
        }
        s = s ? s->next : NULL;
        CHECK(s && s->conds && !strcmp(s->conds->name, "set") && !strcmp(s->conds->value, "acl_m_x = ${if eq{1}{1}{y}}"), "set");
        s = s ? s->next : NULL;
        CHECK(s && s->verb == ACLV_ACCEPT && !s->conds && !s->next, "last accept");
    }
    const driver_inst *r1 = config_driver(DC_ROUTER, "r1");
    CHECK(r1 && !strcmp(r1->info->name, "accept"), "router driver");
    if (r1) {
        const optval *more = driver_opt(r1, "more");
        CHECK(more && more->n == 0, "no_more");
        const optval *tr = driver_opt(r1, "transport");
        CHECK(tr && tr->s && !strcmp(tr->s, "t1"), "transport before driver");
        CHECK(driver_opt(r1, "nonexistent") == NULL, "unknown option");
    }
    const driver_inst *t1 = config_driver(DC_TRANSPORT, "t1");
    CHECK(t1 && driver_opt(t1, "mode")->n == 0640, "octal mode");
    CHECK(t1 && driver_opt(t1, "file")->s && !strcmp(driver_opt(t1, "file")->s, "/var/mail/$local_part"), "file");
    const retry_rule *rr = c->retries;
    CHECK(rr && !strcmp(rr->pattern, "*@example.org") && !strcmp(rr->error, "quota") && rr->senders
          && !strcmp(rr->senders, "a@b") && rr->nparams == 2, "retry rule 1");
    if (rr && rr->nparams == 2) {
        CHECK(rr->params[0].algo == 'F' && rr->params[0].cutoff == 7200 && rr->params[0].p1 == 900, "F params");
        CHECK(rr->params[1].algo == 'G' && rr->params[1].p2 == 1500, "G params");
    }
    CHECK(rr && rr->next && rr->next->nparams == 0, "rule without retries");
    const rewrite_rule *rw = c->rewrites;
    CHECK(rw && !strcmp(rw->replacement, "$1@new.example") && !strcmp(rw->flags, "Eh"), "rewrite");
    config_free(c);
}

static void test_builtin_default(void)
{
    char *err;
    config *c = NULL;
    config_load_args la = { .use_builtin = true };
    CHECK(config_load(&la, &c, &err) == ST_OK, "built-in default loads: %s", c ? "" : err);
    if (!c)
        return;
    config_set_current(c);
    const named_list *relay = config_named_list(NL_HOST, "relay_from_hosts");
    CHECK(relay && strstr(relay->value, "127.0.0.1") && !strstr(relay->value, "*"), "relay only from localhost");
    CHECK(config_acl("acl_check_rcpt") != NULL, "rcpt ACL present");
    CHECK_STR(cfg_str(MO_acl_smtp_rcpt), "acl_check_rcpt", "rcpt ACL wired");
    config_free(c);
}

static void test_table_sorted(void)
{
    for (int i = 1; i < MO__COUNT; i++)
        CHECK(strcmp(main_optdefs[i - 1].name, main_optdefs[i].name) < 0,
              "main_opts.def not sorted at %s (binary search needs order)", main_optdefs[i].name);
    CHECK(config_main_opt_index("smtp_accept_max") >= 0, "lookup");
    CHECK(config_main_opt_index("zzz_nonexistent") < 0, "lookup of unknown");
}

int main(void)
{
    test_table_sorted();
    test_errors();
    test_values();
    test_defines_and_includes();
    test_sections();
    test_builtin_default();
    return check_report("config_test");
}
