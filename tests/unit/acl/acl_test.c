/* acl_test.c: the ACL engine, table-driven: configuration text + the
 * session state a stage would have -> verdict, user message, log message,
 * and what the main log must contain.  Expected values are Exim 4.96's
 * (checked with exim4 -bh where a row says so in its name). */
#include "check.h"
#include "acl/acl.h"
#include "acl/acl_int.h"
#include "config/config.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/state.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "spool/spool.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

typedef struct tcase {
    const char *name;
    const char *conf;          /* after the common prefix */
    acl_where where;
    const char *acl;           /* option text given to acl_check (NULL: unset) */
    const char *host, *helo, *sender, *lp, *domain, *auth;
    const char *headers;       /* DATA: "Name: value\n..." */
    const char *rcpts;         /* DATA: comma separated */
    status st;
    bool drop;
    const char *umsg, *lmsg;   /* exact (NULL: must be NULL); "*" = don't care */
    const char *log_has;       /* substring of the main log written by this case */
    const char *err_has;       /* substring of res.error */
    void (*post)(const struct tcase *t, const acl_session *s, const acl_result *r);
    const char *needs;         /* a variable the expander must read from ps (else skipped) */
} tcase;

/* ---- fake DNS ---------------------------------------------------------------- */

typedef struct fake_rr { const char *name; int type; const char *text; } fake_rr;
static const fake_rr fake_zone[] = {
    { "2.2.0.192.bl.example", DNS_T_A, "127.0.0.2" },
    { "2.2.0.192.bl.example", DNS_T_TXT, "listed for testing" },
    { "good.example", DNS_T_A, "192.0.2.1" },
    { "udp.example", DNS_T_A, "127.0.0.1" },
    { "1.2.0.192.in-addr.arpa", DNS_T_PTR, "ptr.example" },
    { "ptr.example", DNS_T_A, "192.0.2.1" },
};

static status fake_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    int n = 0;
    for (size_t i = 0; i < sizeof fake_zone / sizeof fake_zone[0]; i++)
        if (fake_zone[i].type == type && strcasecmp(fake_zone[i].name, name) == 0)
            n++;
    if (!n) {
        out->st = ST_NOTFOUND;
        out->nxdomain = true;
        return out->st;
    }
    out->rr = arena_calloc(a, sizeof *out->rr * (size_t)n);
    for (size_t i = 0; i < sizeof fake_zone / sizeof fake_zone[0]; i++)
        if (fake_zone[i].type == type && strcasecmp(fake_zone[i].name, name) == 0) {
            dns_rr *r = &out->rr[out->nrr++];
            r->owner = name;
            r->type = type;
            r->text = fake_zone[i].text;
            r->text_len = strlen(r->text);
            if (type == DNS_T_TXT) {
                r->nstrings = 1;
                r->strings = arena_calloc(a, sizeof *r->strings);
                r->strings[0] = r->text;
                size_t *l = arena_calloc(a, sizeof *l);
                *l = r->text_len;
                r->string_lens = l;
            }
            if (type == DNS_T_A) {
                unsigned char *b = arena_alloc(a, 4);
                unsigned x[4];
                sscanf(r->text, "%u.%u.%u.%u", &x[0], &x[1], &x[2], &x[3]);
                for (int k = 0; k < 4; k++)
                    b[k] = (unsigned char)x[k];
                r->rdata = b;
                r->rdlen = 4;
            }
        }
    out->st = ST_OK;
    return ST_OK;
}
static const dns_iface fake_dns = { fake_lookup, NULL };

/* ---- a condition of another module (see acl_condition_ext in acl.h) ----- */

status acl_condition_ext(const char *name, acl_where where, const char *arg, arena *a,
                         const char **user_msg, const char **log_msg)
{
    if (strcmp(name, "spf") != 0)
        return ST_NOTFOUND;
    if (strcmp(arg, "pass") == 0)
        return ST_OK;
    *log_msg = arena_printf(a, "spf result is not %s", arg);
    return ST_FAIL;
}

static void post_dk(const struct tcase *t, const acl_session *s, const acl_result *r)
{
    CHECK(s->controls.dk_verify, "%s: dk_verify not set", t->name);
}

/* ---- helpers ------------------------------------------------------------------ */

static char *read_mainlog(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/mainlog", tmpdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strdup(buf);
}

static void truncate_logs(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/mainlog", tmpdir);
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

static void set_headers(const char *text)
{
    ps.msg_headers = NULL;
    if (!text)
        return;
    spool_header **tail = &ps.msg_headers;
    const char *p = text;
    while (*p) {
        const char *e = p;
        /* a header runs to a newline not followed by white space */
        while (*e && !(*e == '\n' && e[1] != ' ' && e[1] != '\t'))
            e++;
        size_t len = (size_t)(e - p) + (*e ? 1 : 0);
        spool_header *h = arena_calloc(ps.msg, sizeof *h);
        h->type = ' ';
        h->text = arena_strndup(ps.msg, p, len);
        h->len = len;
        *tail = h;
        tail = &h->next;
        p = e + (*e ? 1 : 0);
    }
}

static void set_rcpts(const char *list)
{
    ps.recipients = NULL;
    ps.recipients_count = 0;
    if (!list)
        return;
    const char **v = arena_calloc(ps.msg, sizeof *v * 16);
    const char *p = list;
    while (*p && ps.recipients_count < 16) {
        size_t n = strcspn(p, ",");
        v[ps.recipients_count++] = arena_strndup(ps.msg, p, n);
        p += n + (p[n] == ',');
    }
    ps.recipients = v;
}

static config *load(const char *text)
{
    char *full = arena_printf(ps.scratch, "spool_directory = %s\n%s", tmpdir, text);
    config *c = NULL;
    char *err = NULL;
    if (config_load_string(full, "test.conf", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "config error: %s\n", err);
        return NULL;
    }
    config_set_current(c);
    return c;
}

static void reset_state(void)
{
    arena_reset(ps.msg);
    arena_reset(ps.msg_t);
    arena_reset(ps.conn);
    arena_reset(ps.scratch);
    ps.acl_c = ps.acl_m = NULL;
    ps.sender_host_address = ps.sender_helo_name = ps.sender_host_name = NULL;
    ps.sender_address = ps.local_part = ps.domain = NULL;
    ps.sender_host_authenticated = NULL;
    ps.host_lookup_done = ps.host_lookup_failed = false;
    ps.message_id = NULL;
    ps.message_size = -1;
    ps.msg_headers = NULL;
    ps.recipients = NULL;
    ps.recipients_count = 0;
    ps.acl_verify_message = NULL;
    ps.sender_rate = ps.sender_rate_limit = ps.sender_rate_period = NULL;
    ps.dnslist_domain = ps.dnslist_value = ps.dnslist_text = ps.dnslist_matched = NULL;
    ps.host_data = ps.domain_data = ps.local_part_data = NULL;
}

static void want_str(const char *ctx, const char *what, const char *got, const char *want)
{
    if (want && strcmp(want, "*") == 0)
        return;
    CHECK((got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0),
          "%s: %s: got [%s] want [%s]", ctx, what, got ? got : "(null)", want ? want : "(null)");
}

static acl_session last_sess;

/* Does the expander read this variable from ps yet?  (The getters live in
 * src/expand/vars.c; rows that need them are skipped until they exist.) */
static bool var_wired(const char *name)
{
    const char **slot = NULL;
    if (strcmp(name, "acl_verify_message") == 0)
        slot = &ps.acl_verify_message;
    else if (strcmp(name, "acl_arg1") == 0)
        slot = &ps.acl_arg[0];
    else if (strcmp(name, "sender_rate") == 0)
        slot = &ps.sender_rate;
    else if (strcmp(name, "local_part") == 0)
        slot = &ps.local_part;
    if (!slot)
        return false;
    const char *saved = *slot;
    *slot = "PROBE";
    char *out = NULL;
    bool ok = expand_string(arena_printf(ps.scratch, "$%s", name), ps.scratch, &out, NULL) == ST_OK &&
              out && strcmp(out, "PROBE") == 0;
    *slot = saved;
    return ok;
}

static void run_case(const tcase *t, config *c)
{
    reset_state();
    if (t->needs && !var_wired(t->needs)) {
        fprintf(stderr, "SKIP %s: the expander does not read $%s from ps yet\n", t->name, t->needs);
        return;
    }
    ps.sender_host_address = t->host;
    ps.sender_helo_name = t->helo;
    ps.sender_address = t->sender;
    ps.local_part = t->lp;
    ps.domain = t->domain;
    ps.sender_host_authenticated = t->auth;
    set_headers(t->headers);
    set_rcpts(t->rcpts);
    ps.local_part_caseful = t->lp && strcmp(t->lp, "mixed") == 0 ? "Mixed" : NULL;
    if (t->where == ACL_WHERE_DATA && t->headers)
        ps.message_id = "1xUx4W-0006Vn-1Y";
    truncate_logs();
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    status st = acl_check(t->where, t->acl, &sess, ps.scratch, &res);
    CHECK(st == res.st, "%s: return value %s differs from res.st %s", t->name, status_name(st),
          status_name(res.st));
    CHECK(res.st == t->st, "%s: status got %s want %s (log [%s] error [%s])", t->name,
          status_name(res.st), status_name(t->st), res.log_message ? res.log_message : "",
          res.error ? res.error : "");
    CHECK(res.drop == t->drop, "%s: drop got %d want %d", t->name, res.drop, t->drop);
    want_str(t->name, "user message", res.user_message, t->umsg);
    want_str(t->name, "log message", res.log_message, t->lmsg);
    if (t->log_has) {
        char *log = read_mainlog();
        CHECK(strstr(log, t->log_has) != NULL, "%s: main log lacks [%s]; it has [%s]", t->name, t->log_has, log);
        free(log);
    }
    if (t->err_has)
        CHECK(res.error && strstr(res.error, t->err_has), "%s: error [%s] lacks [%s]", t->name,
              res.error ? res.error : "(null)", t->err_has);
    last_sess = sess;
    if (t->post)
        t->post(t, &sess, &res);
    (void)c;
}

/* ---- post checks -------------------------------------------------------------- */

static const char *var(const char *name)
{
    return expand_get_acl_var(name);
}

static void post_case(const struct tcase *t, const acl_session *s, const acl_result *r)
{
    want_str(t->name, "acl_m_seen", var("acl_m_seen"), "Mixed/mixed");
}

static void post_set(const tcase *t, const acl_session *s, const acl_result *r)
{
    want_str(t->name, "acl_m_x", var("acl_m_x"), "one two");
    want_str(t->name, "acl_c1", var("acl_c1"), "7");
}

static void post_headers(const tcase *t, const acl_session *s, const acl_result *r)
{
    static const struct { const char *text; int where; } want[] = {
        { "X-First: 1", ACL_HDR_APPEND }, { "X-Start: 2", ACL_HDR_AT_START },
        { "X-After: 3", ACL_HDR_AFTER_RECEIVED }, { "X-Rfc: 4", ACL_HDR_AT_START_RFC },
        { "X-ACL-Warn: not a header", ACL_HDR_APPEND }, { "X-Multi: a\n\tb", ACL_HDR_APPEND },
        { "x-remove-me : x-other", ACL_HDR_REMOVE },
    };
    const acl_header *h = s->headers;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++, h = h ? h->next : NULL) {
        CHECK(h != NULL, "%s: header %zu missing", t->name, i);
        if (!h)
            return;
        want_str(t->name, "header text", h->text, want[i].text);
        CHECK((int)h->where == want[i].where, "%s: header %zu where %d want %d", t->name, i, (int)h->where,
              want[i].where);
    }
    CHECK(h == NULL, "%s: extra headers (duplicate not suppressed?)", t->name);
}

static void post_controls(const tcase *t, const acl_session *s, const acl_result *r)
{
    const acl_controls *k = &s->controls;
    CHECK(k->queue_only && k->freeze && k->freeze_no_tell && k->submission && k->no_multiline_responses &&
          k->no_pipelining && k->no_enforce_sync && !k->enforce_sync && k->fakereject &&
          k->dkim_disable_verify && k->dmarc_disable_verify && k->dmarc_enable_forensic,
          "%s: controls not all set", t->name);
    want_str(t->name, "submission domain", k->submission_domain, "example.org");
    want_str(t->name, "submission name", k->submission_name, "Postern / Test");
    want_str(t->name, "fakereject text", k->fakereject_message, "go away/later");
    want_str(t->name, "queue name", k->queue_name, "slow");
    acl_session copy = *s;
    acl_session_message_reset(&copy);
    CHECK(!copy.controls.queue_only && !copy.controls.freeze && !copy.controls.submission &&
          copy.controls.no_multiline_responses && copy.controls.no_pipelining && !copy.headers,
          "%s: message reset wrong", t->name);
}

static void post_dnslist(const tcase *t, const acl_session *s, const acl_result *r)
{
    want_str(t->name, "dnslist_domain", ps.dnslist_domain, "bl.example");
    want_str(t->name, "dnslist_value", ps.dnslist_value, "127.0.0.2");
    want_str(t->name, "dnslist_text", ps.dnslist_text, "listed for testing");
    want_str(t->name, "dnslist_matched", ps.dnslist_matched, "192.0.2.2");
}

static void post_args(const tcase *t, const acl_session *s, const acl_result *r)
{
    CHECK(ps.acl_narg == 0 && ps.acl_arg[0] == NULL, "%s: $acl_arg not restored", t->name);
    want_str(t->name, "acl_m_args", var("acl_m_args"), "3 a b c d e");
}

/* ---- the table --------------------------------------------------------------------- */

#define H "192.0.2.1"

static const char conf_basic[] =
    "domainlist local_domains = example.com : @mx_any\n"
    "hostlist relay_hosts = 192.0.2.0/28\n"
    "acl_smtp_rcpt = acl_rcpt\n"
    "begin acl\n"
    "acl_rcpt:\n"
    "  accept  domains = +local_domains\n"
    "          local_parts = postmaster : abuse\n"
    "  deny    local_parts = ^.*[@%!/|]\n"
    "          message = Restricted characters in address\n"
    "  deny    local_parts = bad\n"
    "  deny    local_parts = badmsg\n"
    "          message = nope\n"
    "          log_message = logged nope\n"
    "  defer   local_parts = later\n"
    "  defer   local_parts = later2\n"
    "          message = 451 4.3.0 try later\n"
    "  drop    local_parts = dropme\n"
    "          message = go away\n"
    "  discard local_parts = blackhole\n"
    "          log_message = discarded\n"
    "  require message = required failed\n"
    "          local_parts = !nomatch-required\n"
    "  accept  hosts = +relay_hosts\n"
    "  deny    message = relay not permitted\n";

static const tcase cases[] = {
    /* verbs and messages (exim4 -bh: "550 Administrative prohibition" etc.) */
    { "accept local", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "postmaster", "example.com",
      .st = ST_OK, .umsg = NULL, .lmsg = NULL },
    { "deny no message", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "bad", "z.org",
      .st = ST_FAIL, .umsg = NULL, .lmsg = NULL },
    { "deny message + log_message", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "badmsg", "z.org",
      .st = ST_FAIL, .umsg = "nope", .lmsg = "logged nope" },
    { "deny regex local part", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "a%b", "z.org",
      .st = ST_FAIL, .umsg = "Restricted characters in address", .lmsg = "Restricted characters in address" },
    { "defer", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "later", "z.org",
      .st = ST_DEFER, .umsg = NULL, .lmsg = NULL },
    { "defer with code", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "later2", "z.org",
      .st = ST_DEFER, .umsg = "451 4.3.0 try later", .lmsg = "451 4.3.0 try later" },
    { "drop", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "dropme", "z.org",
      .st = ST_FAIL, .drop = true, .umsg = "go away", .lmsg = "go away" },
    { "discard", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "blackhole", "z.org",
      .st = ST_DISCARD, .umsg = NULL, .lmsg = "discarded" },
    { "require fails", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", H, "x", "a@b", "nomatch-required", "z.org",
      .st = ST_FAIL, .umsg = "required failed", .lmsg = "required failed" },
    { "relay host accepted", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", "192.0.2.5", "x", "a@b", "u", "z.org",
      .st = ST_OK },
    { "relay denied", conf_basic, ACL_WHERE_RCPT, "acl_rcpt", "192.0.2.99", "x", "a@b", "u", "z.org",
      .st = ST_FAIL, .umsg = "relay not permitted", .lmsg = "relay not permitted" },

    /* unset options: Exim's per-stage defaults */
    { "unset rcpt remote", "", ACL_WHERE_RCPT, NULL, H, .lp = "u", .domain = "d", .st = ST_FAIL },
    /* no RCPT ACL refuses RCPT for local -bs too (Exim 4.96 answers 550 Administrative prohibition) */
    { "unset rcpt local", "", ACL_WHERE_RCPT, NULL, NULL, .lp = "u", .domain = "d", .st = ST_FAIL },
    { "unset vrfy", "", ACL_WHERE_VRFY, NULL, H, .st = ST_FAIL },
    { "unset expn", "", ACL_WHERE_EXPN, NULL, H, .st = ST_FAIL },
    { "unset mail", "", ACL_WHERE_MAIL, NULL, H, .st = ST_OK },
    { "unset connect", "", ACL_WHERE_CONNECT, NULL, H, .st = ST_OK },
    { "unset not_smtp", "", ACL_WHERE_NOT_SMTP, NULL, NULL, .st = ST_OK },

    /* inline ACLs and the implicit deny */
    { "inline accept word", "", ACL_WHERE_VRFY, "accept", H, .st = ST_OK },
    { "inline with condition", "", ACL_WHERE_CONNECT, "deny hosts = 192.0.2.0/24\n accept", H, .st = ST_FAIL },
    { "inline falls through to deny", "", ACL_WHERE_CONNECT, "accept hosts = 10.0.0.0/8", H, .st = ST_FAIL },
    { "inline unknown verb", "", ACL_WHERE_CONNECT, "permit", H, .st = ST_ERROR,
      .lmsg = "unknown ACL verb \"permit\" in \"permit\"" },
    { "inline unknown condition", "", ACL_WHERE_CONNECT, "accept frob = 1", H, .st = ST_ERROR, .lmsg = "*",
      .err_has = "unknown ACL condition/modifier in \"accept frob = 1\"" },
    { "empty named acl denies", "begin acl\nempty:\n", ACL_WHERE_MAIL, "empty", H, .st = ST_FAIL },
    { "expanded acl name", "begin acl\nyes:\n accept\n", ACL_WHERE_MAIL, "${if eq{1}{1}{yes}{no}}", H,
      .st = ST_OK },
    { "forced failure of the option accepts", "", ACL_WHERE_MAIL, "${if eq{1}{2}{deny}fail}", H, .st = ST_OK },

    /* endpass */
    { "endpass deny", "begin acl\na:\n accept local_parts = x\n endpass\n domains = y\n"
                      " message = endpass msg\n accept\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "z", .st = ST_FAIL, .umsg = NULL },
    { "endpass accepted, message ignored", "begin acl\na:\n accept local_parts = x\n endpass\n"
                                           " message = endpass msg\n domains = y\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "y", .st = ST_OK, .umsg = NULL },
    { "endpass before failure passes on", "begin acl\na:\n accept local_parts = q\n endpass\n accept\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "y", .st = ST_OK },

    /* negation, forced failure ignores a condition */
    { "negated condition", "begin acl\na:\n deny !hosts = 192.0.2.1\n accept\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_OK },
    { "forced fail ignores a condition (exim4)", "begin acl\na:\n accept !condition = ${if eq{1}{2}{x}fail}\n",
      ACL_WHERE_MAIL, "a", H, .sender = "s@x", .st = ST_OK },
    { "forced fail in a list: not in it (exim4)", "begin acl\na:\n accept senders = ${if eq{1}{2}{x}fail}\n",
      ACL_WHERE_MAIL, "a", H, .sender = "s@x", .st = ST_FAIL },
    { "list expansion failure defers quietly", "begin acl\na:\n accept senders = ${if eq{1}}\n",
      ACL_WHERE_MAIL, "a", H, .sender = "s@x", .st = ST_DEFER, .lmsg = NULL,
      .log_has = "failed to expand \"${if eq{1}}\" while checking a list", .err_has = "condition \"senders\"" },
    { "senders empty list", "begin acl\na:\n deny senders = :\n accept\n", ACL_WHERE_MAIL, "a", H,
      .sender = "", .st = ST_FAIL },
    { "sender_domains", "begin acl\na:\n deny sender_domains = spam.example\n accept\n", ACL_WHERE_MAIL, "a", H,
      .sender = "x@SPAM.example", .st = ST_FAIL },
    { "authenticated any", "begin acl\na:\n accept authenticated = *\n", ACL_WHERE_MAIL, "a", H,
      .auth = "plain", .st = ST_OK },
    { "not authenticated", "begin acl\na:\n accept authenticated = *\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_FAIL },
    { "encrypted false", "begin acl\na:\n accept encrypted = *\n", ACL_WHERE_MAIL, "a", H, .st = ST_FAIL },
    { "recipients", "begin acl\na:\n accept recipients = *@example.com\n", ACL_WHERE_RCPT, "a", H,
      .lp = "u", .domain = "Example.COM", .st = ST_OK },

    /* condition = */
    { "condition true", "begin acl\na:\n accept condition = ${if eq{a}{a}}\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_OK },
    { "condition 0", "begin acl\na:\n accept condition = 0\n", ACL_WHERE_MAIL, "a", H, .st = ST_FAIL },
    { "condition bad value defers (exim4)", "begin acl\na:\n deny condition = foo\n accept\n", ACL_WHERE_MAIL,
      "a", H, .st = ST_DEFER, .lmsg = "invalid \"condition\" value \"foo\"" },
    { "expansion failure is an error (exim4)", "begin acl\na:\n deny condition = ${if eq{a}}\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "failed to expand ACL string \"${if eq{a}}\": missing 2nd string in {} after \"eq\"",
      .err_has = "ACL \"a\", test.conf line 4, condition \"condition\"" },

    /* stage restrictions (exim4 texts) */
    { "domains in MAIL", "begin acl\na:\n deny domains = x\n", ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "cannot test domains condition in MAIL ACL" },
    { "local_parts in EXPN", "begin acl\na:\n deny local_parts = x\n", ACL_WHERE_EXPN, "a", H, .st = ST_ERROR,
      .lmsg = "cannot test local_parts condition in EXPN ACL" },
    { "add_header in connect", "begin acl\na:\n accept add_header = X-A: 1\n", ACL_WHERE_CONNECT, "a", H,
      .st = ST_ERROR, .lmsg = "cannot use add_header condition in connection ACL" },
    { "header_syntax in MAIL", "begin acl\na:\n deny verify = header_syntax\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "cannot verify header_syntax in ACL for MAIL" },
    { "recipient verify in MAIL", "begin acl\na:\n deny verify = recipient\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "cannot verify recipient in ACL for MAIL" },
    { "discard in predata", "begin acl\na:\n discard\n", ACL_WHERE_PREDATA, "a", H, .st = ST_ERROR,
      .lmsg = "\"discard\" verb not allowed in PREDATA ACL" },
    { "control in wrong ACL", "begin acl\na:\n accept control = submission\n", ACL_WHERE_CONNECT, "a", H,
      .st = ST_ERROR, .lmsg = "cannot use \"control=submission\" in connection ACL" },
    { "unknown control", "begin acl\na:\n accept control = frobnicate\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "syntax error in \"control=frobnicate\"" },

    /* nested ACLs (exim4: messages of the inner ACL reach the outer one) */
    { "nested accept", "begin acl\na:\n deny acl = inner\n accept\ninner:\n accept hosts = " H "\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_FAIL },
    { "nested deny message propagates to require",
      "begin acl\na:\n require acl = inner\n accept\ninner:\n deny message = inner says no\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_FAIL, .umsg = "inner says no", .lmsg = "inner says no" },
    { "nested message dropped on outer deny false",
      "begin acl\na:\n deny acl = inner\n deny\ninner:\n deny message = inner says no\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_FAIL, .umsg = NULL, .lmsg = NULL },
    { "nested drop drops", "begin acl\na:\n require acl = inner\n accept\ninner:\n drop\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_FAIL, .drop = true },
    { "nested defer defers", "begin acl\na:\n accept acl = inner\ninner:\n defer\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_DEFER },
    { "nested defer on warn continues", "begin acl\na:\n warn acl = inner\n accept\ninner:\n defer\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK, .log_has = "Warning: ACL \"warn\" statement skipped" },
    { "nested discard on deny is an error", "begin acl\na:\n deny acl = inner\ninner:\n discard\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "y", .st = ST_ERROR,
      .lmsg = "nested ACL returned \"discard\" for \"deny\" command" },
    { "${acl} item", "begin acl\na:\n accept condition = ${acl{inner}{yes}}\ninner:\n accept message = $acl_arg1\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK, .needs = "acl_arg1" },
    { "${acl} loop is bounded", "begin acl\na:\n accept condition = ${acl{a}}\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "*" },
    { "nested loop", "begin acl\na:\n accept acl = a\n", ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "ACL nested too deep: possible loop" },
    { "nested args restored", "begin acl\na:\n accept acl = inner \"a b\" c d e\n"
                              "inner:\n accept set acl_m_args = 3 a b c d e\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK, .post = post_args },
    { "nested args as variables (exim4)",
      "begin acl\na:\n accept acl = inner a \"b c\" ${lc:D}\n message = after $acl_narg\n"
      "inner:\n accept logwrite = sub args $acl_narg $acl_arg1 $acl_arg2 $acl_arg3 [$acl_arg4]\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK, .umsg = "after 0", .lmsg = "*", .log_has = "sub args 3 a b c d []",
      .needs = "acl_arg1" },
    { "message with $local_part (exim4)", "begin acl\na:\n deny message = nope $local_part\n",
      ACL_WHERE_RCPT, "a", H, .lp = "badmsg", .domain = "x.y", .st = ST_FAIL, .umsg = "nope badmsg", .lmsg = "*",
      .needs = "local_part" },
    { "nested extra args ignored (exim4)", "begin acl\na:\n accept acl = inner 1 2 3 4 5 6 7 8 9 10\n"
      "inner:\n accept\n", ACL_WHERE_MAIL, "a", H, .st = ST_OK },
    { "nested inline by file", "begin acl\na:\n accept acl = /nonexistent/acl/file\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "failed to open ACL file \"/nonexistent/acl/file\": No such file or directory" },

    /* warn: log once per message, "Warning:" prefix (exim4) */
    { "warn log_message", "begin acl\na:\n warn log_message = mailwarn $acl_c9\n"
                          " warn log_message = mailwarn $acl_c9\n accept\n",
      ACL_WHERE_MAIL, "a", H, "ok", .st = ST_OK, .log_has = "H=(ok) [192.0.2.1] Warning: mailwarn" },
    { "warn false writes nothing", "begin acl\na:\n warn hosts = 10.0.0.1\n log_message = never\n accept\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK },
    { "logwrite", "begin acl\na:\n accept logwrite = :main: hello there\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_OK, .log_has = "hello there" },
    { "warn then implicit deny has no message", "begin acl\na:\n warn message = X-Warn: w\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_FAIL, .umsg = NULL, .lmsg = NULL },

    /* modifiers */
    { "set", "begin acl\na:\n warn set acl_m_x = one ${if eq{1}{1}{two}}\n set acl_c1 = 7\n accept\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK, .post = post_set },
    { "headers", "begin acl\na:\n warn add_header = X-First: 1\n"
                 " warn add_header = :at_start:X-Start: 2\n"
                 " warn add_header = :after_received:X-After: 3\\n:at_start_rfc:X-Rfc: 4\n"
                 " warn add_header = not a header\n"
                 " warn add_header = X-Multi: a\\n\\tb\n"
                 " warn add_header = X-First: 1\n"
                 " warn remove_header = x-remove-me : x-other\n accept\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "y", .st = ST_OK, .post = post_headers },
    { "controls", "begin acl\na:\n accept control = queue_only\n control = freeze/no_tell\n"
                  " control = submission/domain=example.org/name=Postern / Test\n"
                  " control = no_multiline_responses\n control = no_pipelining\n control = enforce_sync\n"
                  " control = no_enforce_sync\n control = fakereject/go away/later\n"
                  " control = dkim_disable_verify\n control = dmarc_disable_verify\n"
                  " control = dmarc_enable_forensic\n queue = slow\n",
      ACL_WHERE_RCPT, "a", H, .lp = "x", .domain = "y", .st = ST_OK, .post = post_controls },
    { "delay in -bh is skipped", "begin acl\na:\n accept delay = 2s\n", ACL_WHERE_MAIL, "a", H, .st = ST_OK },
    { "bad delay (exim4)", "begin acl\na:\n accept delay = soon\n", ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "syntax error in argument for \"delay\" modifier: \"soon\" is not a time value" },
    { "logwrite unknown log (exim4)", "begin acl\na:\n deny logwrite = :bogus: x\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_FAIL, .log_has = "unknown log name in \":bogus: x\" in \"logwrite\" in MAIL ACL" },
    { "nested unknown name (exim4)", "begin acl\na:\n deny acl = nosuchacl\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "unknown ACL verb \"nosuchacl\" in \"nosuchacl\"" },
    { "log_reject_target", "begin acl\na:\n deny log_reject_target = panic\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_FAIL },

    /* conditions of other modules; seed controls */
    { "external condition true", "begin acl\na:\n require spf = pass\n accept\n", ACL_WHERE_RCPT, "a", H,
      .lp = "x", .domain = "y", .st = ST_OK },
    { "external condition false", "begin acl\na:\n require spf = ${uc:softfail}\n accept\n", ACL_WHERE_RCPT,
      "a", H, .lp = "x", .domain = "y", .st = ST_FAIL, .lmsg = "spf result is not SOFTFAIL" },
    { "condition nobody implements", "begin acl\na:\n require dcc = x\n accept\n", ACL_WHERE_RCPT, "a", H,
      .lp = "x", .domain = "y", .st = ST_DEFER, .lmsg = "the \"dcc\" ACL condition is not yet implemented by postern" },
    { "caseful_local_part", "begin acl\na:\n warn control = caseful_local_part\n set acl_m_a = $local_part\n"
      " control = caselower_local_part\n set acl_m_seen = $acl_m_a/$local_part\n accept\n",
      ACL_WHERE_RCPT, "a", H, .lp = "mixed", .domain = "y", .st = ST_OK, .post = post_case,
      .needs = "local_part" },
    { "control dk_verify", "begin acl\na:\n warn control = dk_verify\n accept\n", ACL_WHERE_RCPT, "a", H,
      .lp = "x", .domain = "y", .st = ST_OK, .post = post_dk },
    { "control bmi_run refused", "begin acl\na:\n warn control = bmi_run\n accept\n", ACL_WHERE_RCPT, "a", H,
      .lp = "x", .domain = "y", .st = ST_ERROR, .lmsg = "*", .err_has = "vendor SDK" },

    /* verify */
    { "helo literal ok", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", H,
      "[192.0.2.1]", .st = ST_OK },
    { "helo literal wrong (exim4)", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", H,
      "[192.0.2.2]", .st = ST_FAIL, .umsg = NULL, .lmsg = NULL },
    { "helo forward match", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", H,
      "good.example", .st = ST_OK },
    { "helo by host name", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", H,
      "PTR.example", .st = ST_OK },
    { "reverse_host_lookup ok", "begin acl\na:\n require verify = reverse_host_lookup\n accept\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_OK },
    { "reverse_host_lookup fails (exim4 texts)", "begin acl\na:\n require verify = reverse_host_lookup\n accept\n",
      ACL_WHERE_MAIL, "a", "192.0.2.9", .st = ST_FAIL,
      .lmsg = "host lookup failed for reverse lookup check (failed to find host name from IP address)",
      .log_has = "no host name found for IP address 192.0.2.9" },
    { "helo unknown", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", H,
      "foo.invalid", .st = ST_FAIL },
    { "helo local always", "begin acl\na:\n require verify = helo\n accept\n", ACL_WHERE_MAIL, "a", NULL,
      NULL, .st = ST_OK },
    { "header_syntax ok", "begin acl\na:\n require verify = header_syntax\n accept\n", ACL_WHERE_DATA, "a", H,
      .headers = "To: Name <a@b.example>, \"q x\"@b, undisclosed-recipients:;\nFrom: a@b\nSubject: @\n",
      .st = ST_OK },
    { "header_syntax bad (exim4)", "begin acl\na:\n deny !verify = header_syntax\n accept\n", ACL_WHERE_DATA,
      "a", H, .headers = "To: @\nFrom: a@x\n", .st = ST_FAIL, .umsg = NULL,
      .lmsg = "domain missing or malformed: failing address in \"To:\" header is: @" },
    { "header_syntax unqualified remote (exim4)", "begin acl\na:\n deny !verify = header_syntax\n accept\n",
      ACL_WHERE_DATA, "a", H, .headers = "Cc: a@b, c\n", .st = ST_FAIL,
      .lmsg = "unqualified address not permitted: failing address in \"Cc:\" header is: c" },
    { "header_syntax unqualified local", "begin acl\na:\n deny !verify = header_syntax\n accept\n",
      ACL_WHERE_NOT_SMTP, "a", NULL, .headers = "Cc: a@b, c\n", .st = ST_OK },
    { "header_syntax Resent-To (exim4)", "begin acl\na:\n deny !verify = header_syntax\n accept\n",
      ACL_WHERE_DATA, "a", H, .headers = "To: a@b\nResent-To: @\n", .st = ST_FAIL,
      .lmsg = "domain missing or malformed: failing address in \"Resent-To:\" header is: @" },
    { "header_syntax other headers unchecked", "begin acl\na:\n deny !verify = header_syntax\n accept\n",
      ACL_WHERE_DATA, "a", H, .headers = "Return-Path: @\nErrors-To: @\nSubject: <@>\n", .st = ST_OK },
    { "header_syntax trailing (exim4)", "begin acl\na:\n deny !verify = header_syntax\n accept\n",
      ACL_WHERE_DATA, "a", H, .headers = "To: a@b c\n", .st = ST_FAIL,
      .lmsg = "malformed address: c\\n may not follow a@b : failing address in \"To:\" header is: a@b c" },
    { "header_syntax acl_verify_message", "begin acl\na:\n deny !verify = header_syntax\n"
                                          " logwrite = HS: $acl_verify_message\n",
      ACL_WHERE_DATA, "a", H, .headers = "From: <a@b\n", .st = ST_FAIL, .lmsg = "*",
      .log_has = "HS: '>' missing at end of address: failing address in \"From:\" header is: <a@b",
      .needs = "acl_verify_message" },
    { "not_blind ok", "begin acl\na:\n require verify = not_blind\n accept\n", ACL_WHERE_DATA, "a", H,
      .headers = "To: b@X.example\nCc: Cee <c@y>\n", .rcpts = "b@x.example,c@y", .st = ST_OK },
    { "not_blind bcc (exim4)", "begin acl\na:\n deny !verify = not_blind\n accept\n", ACL_WHERE_DATA, "a", H,
      .headers = "To: b@x\n", .rcpts = "b@x,c@x", .st = ST_FAIL, .umsg = NULL, .lmsg = "bcc recipient detected" },
    { "not_blind case of local part", "begin acl\na:\n deny !verify = not_blind\n accept\n", ACL_WHERE_DATA,
      "a", H, .headers = "To: B@x\n", .rcpts = "b@x", .st = ST_FAIL, .lmsg = "bcc recipient detected" },
    { "not_blind case_insensitive", "begin acl\na:\n deny !verify = not_blind/case_insensitive\n accept\n",
      ACL_WHERE_DATA, "a", H, .headers = "To: B@x\n", .rcpts = "b@x", .st = ST_OK },
    /* no routers: nothing verifies (Exim 4.96 -bh gives the same replies) */
    { "verify sender fails (exim4)", "begin acl\na:\n require verify = sender\n accept\n", ACL_WHERE_MAIL, "a", H,
      .sender = "s@x", .st = ST_FAIL, .umsg = "Verification failed for <s@x>\nUnrouteable address\nSender verify failed",
      .lmsg = "Sender verify failed" },
    { "verify sender bounce ok", "begin acl\na:\n require verify = sender\n accept\n", ACL_WHERE_MAIL, "a", H,
      .sender = "", .st = ST_OK },
    { "verify recipient fails (exim4)", "begin acl\na:\n require verify = recipient\n accept\n", ACL_WHERE_RCPT, "a",
      H, .lp = "x", .domain = "y", .st = ST_FAIL, .umsg = "Unrouteable address", .lmsg = "Unrouteable address" },
    { "unknown verify (exim4)", "begin acl\na:\n require verify = frob\n", ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "expected \"sender[=address]\", \"recipient\", \"helo\", \"header_syntax\", \"header_sender\", "
              "\"header_names_ascii\" or \"reverse_host_lookup\" at start of ACL condition \"verify frob\"" },

    /* dnslists through the injected resolver */
    { "dnslists listed", "begin acl\na:\n deny dnslists = bl.example\n accept\n", ACL_WHERE_RCPT, "a",
      "192.0.2.2", .lp = "x", .domain = "y", .st = ST_FAIL, .post = post_dnslist },
    { "dnslists not listed", "begin acl\na:\n deny dnslists = bl.example\n accept\n", ACL_WHERE_RCPT, "a",
      "192.0.2.3", .lp = "x", .domain = "y", .st = ST_OK },
    { "dnslists value restriction", "begin acl\na:\n deny dnslists = bl.example=127.0.0.3\n accept\n",
      ACL_WHERE_RCPT, "a", "192.0.2.2", .lp = "x", .domain = "y", .st = ST_OK },

    /* ratelimit argument errors (exim4 texts) */
    { "ratelimit conflicting modes", "begin acl\na:\n warn ratelimit = 3 / 2h / leaky / strict\n accept\n",
      ACL_WHERE_MAIL, "a", H, .st = ST_ERROR,
      .lmsg = "error in arguments to \"ratelimit\" condition: conflicting update modes" },
    { "ratelimit bad number", "begin acl\na:\n warn ratelimit = x / 2h\n accept\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "error in arguments to \"ratelimit\" condition: \"x\" is not a positive number" },
    { "ratelimit bad period", "begin acl\na:\n warn ratelimit = 3 / never\n accept\n", ACL_WHERE_MAIL, "a", H,
      .st = ST_ERROR, .lmsg = "error in arguments to \"ratelimit\" condition: \"never\" is not a time value" },
    { "ratelimit strict in connect", "begin acl\na:\n warn ratelimit = 3 / 1h / per_mail / strict\n accept\n",
      ACL_WHERE_CONNECT, "a", H, .st = ST_ERROR, .lmsg = "*", .err_has = "must not have /leaky or /strict" },
};

/* ---- ratelimit over time (fixed clock) -------------------------------------------- */

static status rl_check(const char *acl, acl_where w, acl_session *sess)
{
    acl_result res;
    return acl_check(w, acl, sess, ps.scratch, &res);
}

static void test_ratelimit(void)
{
    config *c = load("begin acl\n"
                     "mail:\n  deny ratelimit = 2 / 1h / per_mail\n  accept\n"
                     "strict:\n  deny ratelimit = 2 / 1h / per_cmd / strict / k2\n  accept\n"
                     "ro:\n  deny ratelimit = 2 / 1h / readonly\n  accept\n"
                     "addr:\n  deny ratelimit = 2 / 1h / per_addr\n  accept\n"
                     "bytes:\n  deny ratelimit = 1K / 1h / per_byte / k4\n  accept\n");
    if (!c)
        return;
    reset_state();
    ps.host_checking = true;
    ps.sender_host_address = "198.51.100.7";
    ps.acl_now = 1000000.0;
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    /* per_mail: first message rate 1 (< 2: condition false, accept) */
    CHECK(rl_check("mail", ACL_WHERE_MAIL, &sess) == ST_OK, "ratelimit first");
    want_str("ratelimit first", "sender_rate", ps.sender_rate, "1.0");
    want_str("ratelimit first", "sender_rate_limit", ps.sender_rate_limit, "2");
    want_str("ratelimit first", "sender_rate_period", ps.sender_rate_period, "1h");
    /* the same message again: cached, not counted twice */
    CHECK(rl_check("mail", ACL_WHERE_RCPT, &sess) == ST_OK, "ratelimit cached");
    want_str("ratelimit cached", "sender_rate", ps.sender_rate, "1.0");
    /* a second message a second later: just under 2 (1.9995) */
    acl_session_message_reset(&sess);
    ps.acl_now += 1.0;
    CHECK(rl_check("mail", ACL_WHERE_MAIL, &sess) == ST_OK, "ratelimit second message");
    want_str("ratelimit second", "sender_rate", ps.sender_rate, "2.0");
    /* a third: about 3, over the limit; leaky: not stored */
    acl_session_message_reset(&sess);
    ps.acl_now += 1.0;
    CHECK(rl_check("mail", ACL_WHERE_MAIL, &sess) == ST_FAIL, "ratelimit third message over");
    want_str("ratelimit third", "sender_rate", ps.sender_rate, "3.0");
    /* readonly sees the stored rate (the second message's), decayed a little */
    acl_session_message_reset(&sess);
    ps.acl_now += 1.0;
    CHECK(rl_check("ro", ACL_WHERE_CONNECT, &sess) == ST_OK, "ratelimit readonly below");
    want_str("ratelimit readonly", "sender_rate", ps.sender_rate, "2.0");
    double ro = atof(ps.sender_rate ? ps.sender_rate : "9");
    CHECK(ro < 2.0 + 1e-9, "readonly rate %s should be the leaky stored one", ps.sender_rate);
    /* after a long silence the rate is back to one event per period */
    ps.acl_now += 10 * 3600.0;
    CHECK(rl_check("mail", ACL_WHERE_MAIL, &sess) == ST_OK, "ratelimit after silence");
    want_str("ratelimit after silence", "sender_rate", ps.sender_rate, "1.0");
    /* strict per_cmd: every check counts and is stored even when over */
    for (int i = 0; i < 3; i++) {
        ps.acl_now += 0.5;
        rl_check("strict", ACL_WHERE_HELO, &sess);
    }
    double r = atof(ps.sender_rate ? ps.sender_rate : "0");
    CHECK(r > 2.9 && r < 3.1, "ratelimit strict: rate %s want about 3", ps.sender_rate);
    /* the same per_cmd condition twice in one command counts once */
    {
        config *c2 = load("begin acl\ntwice:\n  warn ratelimit = 5 / 1h / per_cmd / k9\n"
                          "  warn ratelimit = 5 / 1h / per_cmd / k9\n  accept\n");
        ps.acl_now += 1.0;
        rl_check("twice", ACL_WHERE_HELO, &sess);
        want_str("per_cmd twice in one command", "sender_rate", ps.sender_rate, "1.0");
        ps.acl_now += 1.0;
        rl_check("twice", ACL_WHERE_HELO, &sess);
        want_str("per_cmd next command", "sender_rate", ps.sender_rate, "2.0");
        config_set_current(c);
        config_free(c2);
    }
    /* per_addr: the same recipient twice counts once */
    acl_session_message_reset(&sess);
    ps.local_part = "u";
    ps.domain = "d.example";
    ps.acl_now += 1.0;
    CHECK(rl_check("addr", ACL_WHERE_RCPT, &sess) == ST_OK, "per_addr first");
    ps.acl_now += 1.0;
    CHECK(rl_check("addr", ACL_WHERE_RCPT, &sess) == ST_OK, "per_addr same address");
    want_str("per_addr same", "sender_rate", ps.sender_rate, "1.0");
    ps.local_part = "v";
    ps.acl_now += 1.0;
    CHECK(rl_check("addr", ACL_WHERE_RCPT, &sess) == ST_OK, "per_addr second address");
    ps.local_part = "w";
    ps.acl_now += 1.0;
    CHECK(rl_check("addr", ACL_WHERE_RCPT, &sess) == ST_FAIL, "per_addr third address over");
    /* per_byte counts $message_size, K suffix on the limit */
    ps.message_size = 600;
    acl_session_message_reset(&sess);
    CHECK(rl_check("bytes", ACL_WHERE_DATA, &sess) == ST_OK, "per_byte first");
    acl_session_message_reset(&sess);
    ps.acl_now += 1.0;
    CHECK(rl_check("bytes", ACL_WHERE_DATA, &sess) == ST_FAIL, "per_byte second over 1K");
    ps.acl_now = 0;
    ps.host_checking = false;
    config_free(c);
}

/* ---- udpsend, delay, log_reject_target ------------------------------------------- */

static int flushes;
static void count_flush(void *ctx)
{
    (void)ctx;
    flushes++;
}

static void test_side_effects(void)
{
    /* udpsend to a socket of our own */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
          getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "udp socket");
    char *conf = arena_printf(ps.scratch, "begin acl\nu:\n  accept udpsend = 127.0.0.1 : %d : hello $acl_c1\n"
                                          "un:\n  accept udpsend = udp.example : %d : by name\n"
                                          "ux:\n  accept udpsend = nowhere.example : %d : x\n"
                                          "d:\n  accept delay = 1s\n"
                                          "r:\n  deny log_reject_target = reject : panic\n"
                                          "n:\n  deny log_reject_target =\n",
                              ntohs(sa.sin_port), ntohs(sa.sin_port), ntohs(sa.sin_port));
    config *c = load(conf);
    if (!c)
        return;
    reset_state();
    expand_set_acl_var("acl_c1", "world", NULL);
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    CHECK(acl_check(ACL_WHERE_MAIL, "u", &sess, ps.scratch, &res) == ST_OK, "udpsend ok");
    char buf[64] = { 0 };
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    CHECK(n == 11 && strcmp(buf, "hello world") == 0, "udpsend payload [%s]", buf);
    CHECK(acl_check(ACL_WHERE_MAIL, "un", &sess, ps.scratch, &res) == ST_OK, "udpsend by name");
    memset(buf, 0, sizeof buf);
    n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    CHECK(n == 7 && strcmp(buf, "by name") == 0, "udpsend by name payload [%s]", buf);
    CHECK(acl_check(ACL_WHERE_MAIL, "ux", &sess, ps.scratch, &res) == ST_DEFER, "udpsend unknown name");
    want_str("udpsend unknown name", "log", res.log_message, "udpsend: failed to find an address for \"nowhere.example\"");
    close(fd);
    /* delay: flushes first (unless no_delay_flush), sleeps, counts */
    sess.flush = count_flush;
    ps.host_checking = false;
    CHECK(acl_check(ACL_WHERE_MAIL, "d", &sess, ps.scratch, &res) == ST_OK, "delay ok");
    CHECK(flushes == 1 && sess.delay_total == 1, "delay: flushes %d total %d", flushes, sess.delay_total);
    /* log_reject_target */
    CHECK(acl_check(ACL_WHERE_MAIL, "r", &sess, ps.scratch, &res) == ST_FAIL && res.log_reject_target_set &&
          res.log_reject_target == (LOG_REJECT | LOG_PANIC), "log_reject_target reject:panic");
    CHECK(acl_check(ACL_WHERE_MAIL, "n", &sess, ps.scratch, &res) == ST_FAIL && res.log_reject_target_set &&
          res.log_reject_target == 0, "log_reject_target empty");
    config_free(c);
}

/* ---- hints files made by root belong to exim_user ------------------------------- */

static void test_hints_owner(void)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw) {
        fprintf(stderr, "SKIP hints owner: needs root and a \"nobody\" user\n");
        return;
    }
    char spool[300];
    snprintf(spool, sizeof spool, "%s/own", tmpdir);
    mkdir(spool, 0755);
    config *c = NULL;
    char *err = NULL;
    char *text = arena_printf(ps.scratch, "spool_directory = %s\nexim_user = nobody\nbegin acl\n"
                                          "r:\n  accept ratelimit = 5 / 1h / per_cmd / strict\n", spool);
    if (config_load_string(text, "test.conf", NULL, &c, &err) != ST_OK) {
        CHECK(0, "hints owner config: %s", err);
        return;
    }
    config_set_current(c);
    reset_state();
    ps.sender_host_address = "192.0.2.1";
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    acl_check(ACL_WHERE_HELO, "r", &sess, ps.scratch, &res);
    const char *files[] = { "db", "db/ratelimit", "db/ratelimit-lock" };
    for (int i = 0; i < 3; i++) {
        char p[400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", spool, files[i]);
        CHECK(stat(p, &sb) == 0 && sb.st_uid == pw->pw_uid && sb.st_gid == pw->pw_gid,
              "hints owner: %s not owned by nobody", files[i]);
    }
    config_free(c);
}

/* ---- seen (fixed clock) ------------------------------------------------------------ */

static void test_seen(void)
{
    char longkey[701];
    memset(longkey, 'k', 700);
    longkey[700] = 0;
    config *c = load(arena_printf(ps.scratch, "begin acl\n"
                     "since:\n  accept seen = 1h / key=s1\n"
                     "before:\n  accept seen = -5m / key=g1\n"
                     "ro:\n  accept seen = 1h / key=r1 / readonly\n"
                     "bad:\n  accept seen = xx / key=k\n"
                     "badopt:\n  accept seen = 1h / frob\n"
                     "local:\n  accept seen = 1h\n"
                     "long:\n  accept seen = 1h / key=%s\n"
                     "longrl:\n  deny ratelimit = 1 / 1h / per_cmd / strict / %s\n"
                     "  accept\n", longkey, longkey));
    if (!c)
        return;
    reset_state();
    ps.acl_now = 2000000.0;
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    /* since: first time false (and recorded), then true within the hour, false after it */
    CHECK(acl_check(ACL_WHERE_RCPT, "since", &sess, ps.scratch, &res) == ST_FAIL, "seen since first");
    ps.acl_now += 60;
    CHECK(acl_check(ACL_WHERE_RCPT, "since", &sess, ps.scratch, &res) == ST_OK, "seen since again");
    ps.acl_now += 7200;
    CHECK(acl_check(ACL_WHERE_RCPT, "since", &sess, ps.scratch, &res) == ST_FAIL, "seen since expired");
    /* greylisting: before 5 minutes ago?  no, no (1 minute), yes (6 minutes) */
    CHECK(acl_check(ACL_WHERE_RCPT, "before", &sess, ps.scratch, &res) == ST_FAIL, "seen before first");
    ps.acl_now += 60;
    CHECK(acl_check(ACL_WHERE_RCPT, "before", &sess, ps.scratch, &res) == ST_FAIL, "seen before too soon");
    ps.acl_now += 300;
    CHECK(acl_check(ACL_WHERE_RCPT, "before", &sess, ps.scratch, &res) == ST_OK, "seen before later");
    /* readonly never records */
    CHECK(acl_check(ACL_WHERE_RCPT, "ro", &sess, ps.scratch, &res) == ST_FAIL, "seen readonly 1");
    CHECK(acl_check(ACL_WHERE_RCPT, "ro", &sess, ps.scratch, &res) == ST_FAIL, "seen readonly 2");
    /* syntax errors defer with Exim's texts */
    CHECK(acl_check(ACL_WHERE_RCPT, "bad", &sess, ps.scratch, &res) == ST_DEFER, "seen bad interval");
    want_str("seen bad interval", "log", res.log_message, "failed to parse 'xx / key=k'");
    CHECK(acl_check(ACL_WHERE_RCPT, "badopt", &sess, ps.scratch, &res) == ST_DEFER, "seen bad option");
    want_str("seen bad option", "log", res.log_message, "unrecognised option 'frob' in '1h / frob'");
    /* no host (local input): the default key is empty, still usable */
    const char *saved = ps.sender_host_address;
    ps.sender_host_address = NULL;
    CHECK(acl_check(ACL_WHERE_NOT_SMTP, "local", &sess, ps.scratch, &res) == ST_FAIL, "seen local first");
    CHECK(acl_check(ACL_WHERE_NOT_SMTP, "local", &sess, ps.scratch, &res) == ST_OK, "seen local again");
    ps.sender_host_address = saved;
    /* keys longer than LMDB allows */
    CHECK(acl_check(ACL_WHERE_RCPT, "long", &sess, ps.scratch, &res) == ST_FAIL, "seen long key first: %s",
          res.log_message ? res.log_message : "");
    CHECK(acl_check(ACL_WHERE_RCPT, "long", &sess, ps.scratch, &res) == ST_OK, "seen long key again");
    CHECK(acl_check(ACL_WHERE_RCPT, "longrl", &sess, ps.scratch, &res) == ST_FAIL, "ratelimit long key: %s",
          res.log_message ? res.log_message : "");
    ps.acl_now = 0;
    config_free(c);
}

/* ---- file ACLs and the text parser --------------------------------------------------- */

static void test_file_acl(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/file.acl", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("# a file ACL\n\ndeny  hosts = 192.0.2.1 : \\\n        192.0.2.2\n      message = from file\n"
          "accept\n", f);
    fclose(f);
    config *c = load("");
    reset_state();
    ps.sender_host_address = "192.0.2.2";
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    CHECK(acl_check(ACL_WHERE_MAIL, path, &sess, ps.scratch, &res) == ST_FAIL, "file acl deny");
    want_str("file acl", "user message", res.user_message, "from file");
    ps.sender_host_address = "192.0.2.3";
    CHECK(acl_check(ACL_WHERE_MAIL, path, &sess, ps.scratch, &res) == ST_OK, "file acl accept");
    config_free(c);
}

static void test_parser(void)
{
    static const struct { const char *text; int nstmt; const char *err; } rows[] = {
        { "accept", 1, NULL },
        { "accept hosts = a : b\n  message = x y\n# c\n\ndeny", 2, NULL },
        { "warn set acl_m_a = 1\n  !hosts = 1.2.3.4", 1, NULL },
        { "deny message = a \\\n   b", 1, NULL },
        { "hosts = 1", 0, "unknown ACL verb \"hosts\" in \"hosts = 1\"" },
        { "accept\n  set foo = 1", 0,
          "invalid variable name after \"set\" in ACL modifier \"set foo = 1\" (must start \"acl_c\" or \"acl_m\")" },
        { "accept !message = x", 0, "ACL error: negation is not allowed with \"message\"" },
        { "accept endpass = 1", 1, NULL },
        { "accept hosts 1", 0, "\"=\" missing after ACL \"hosts\" condition" },
        { "accept spam = x", 0, "not supported by postern" },
        { "accept\n\n  bogus = 1", 0, "unknown ACL condition/modifier in \"bogus = 1\"" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        acl_stmt *s = NULL;
        char *err = NULL;
        status st = acl_parse_text(rows[i].text, "inline", ps.scratch, &s, &err);
        if (rows[i].err) {
            CHECK(st == ST_ERROR && err && strstr(err, rows[i].err), "parse [%s]: err [%s] want [%s]",
                  rows[i].text, err ? err : "(null)", rows[i].err);
            continue;
        }
        int n = 0;
        for (; s; s = s->next)
            n++;
        CHECK(st == ST_OK && n == rows[i].nstmt, "parse [%s]: st %s n %d err %s", rows[i].text,
              status_name(st), n, err ? err : "");
    }
    acl_stmt *s = NULL;
    char *err = NULL;
    acl_parse_text("deny message = a \\\n   b\n set acl_m1 = v", "t", ps.scratch, &s, &err);
    CHECK(s && s->conds && strcmp(s->conds->value, "a b") == 0 && s->conds->next &&
          strcmp(s->conds->next->value, "acl_m1 = v") == 0, "parse: continuation/set values");
}

/* header syntax scanner rows (Exim 4.96 results from exim4 -bh) */
static void test_hdr(void)
{
    static const struct { const char *value; const char *err; } rows[] = {
        { " a@b\n", NULL }, { " @\n", "domain missing or malformed" }, { " a@\n", "domain missing or malformed" },
        { " @b\n", "no local part" },
        { " a b@c\n", "missing or malformed local part (expected word or \"<\")" },
        { " <a@b\n", "'>' missing at end of address" },
        { " a@b>\n", "malformed address: >\\n may not follow a@b" },
        { " \"x\n", "unmatched doublequote in local part" },
        { " undisclosed-recipients:;\n", NULL }, { " a@[1.2.3.4]\n", NULL }, { " Name <a@b.c>\n", NULL },
        { " a@b..c\n", "domain missing or malformed" }, { " (comment) a@b\n", NULL },
        { " a@-b\n", "domain missing or malformed" }, { " a@b,,c@d\n", NULL }, { " a.@b\n", NULL },
        { " .a@b\n", NULL }, { " a@b.\n", "domain missing or malformed" }, { " \"q x\"@b\n", NULL },
        { " Group: a@b, c@d;\n", NULL }, { " <>\n", "missing or malformed local part" },
        { " a@b (c\n", NULL }, { " a@b; c@d\n", "malformed address: ; c@d\\n may not follow a@b" },
        { " Name <@r.x:a@b>\n", NULL }, { " a@b_c\n", "malformed address: _c\\n may not follow a@b" },
        { " \xc3\xa4@b\n", NULL }, { " a@b, <c>\n", "unqualified address not permitted" },
        { " a@[1.2\n", "malformed domain literal" }, { " \"a b\" <>\n", "missing or malformed local part" },
        { " <@>\n", "domain missing or malformed" }, { " a@b, c@d\n", NULL }, { " Group:;\n", NULL },
        { " a@b,\n", NULL }, { " ,\n", NULL }, { "\n", NULL },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *failing;
        const char *e = acl_hdr_syntax(ps.scratch, rows[i].value, false, &failing);
        CHECK((e == NULL && rows[i].err == NULL) || (e && rows[i].err && strcmp(e, rows[i].err) == 0),
              "header [%s]: got [%s] want [%s]", rows[i].value, e ? e : "(ok)", rows[i].err ? rows[i].err : "(ok)");
    }
}

int main(void)
{
    state_init("acl_test");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/acl_test.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    char lp[300];
    snprintf(lp, sizeof lp, "%s/%%slog", tmpdir);
    log_settings ls = { .file_path = lp, .spool_directory = tmpdir };
    log_configure(&ls);
    ps.acl_dns = &fake_dns;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config *c = load(cases[i].conf);
        CHECK(c != NULL, "%s: config did not load", cases[i].name);
        if (!c)
            continue;
        ps.host_checking = true;      /* delay is not obeyed */
        run_case(&cases[i], c);
        ps.host_checking = false;
        config_set_current(NULL);
        config_free(c);
    }
    test_ratelimit();
    test_seen();
    test_hints_owner();
    test_side_effects();
    test_file_acl();
    test_parser();
    test_hdr();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_report("acl_test");
}
