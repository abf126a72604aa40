/* rewrite_test.c: src/message/addr.c (mailbox parsing with positions) and
 * src/message/rewrite.c (the rewrite engine), table driven.  The expected
 * values are what Exim 4.96 gives for the same input (-brw, the spool);
 * tests/integration/test_rewrite.py compares with Exim itself. */
#include "check.h"
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "message/addr.h"
#include "message/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addr_extract ---------------------------------------------------------- */

static const struct {
    const char *in;
    bool allow_null;
    const char *want;          /* NULL: error */
    int start, end, domain;
    const char *err;           /* expected error (prefix), when want is NULL */
} extract_rows[] = {
    { "a@b.example", false, "a@b.example", 0, 11, 2, NULL },
    { "Ford <fp42@x.example>", false, "fp42@x.example", 6, 20, 5, NULL },
    { "fp42@x.example (Ford)", false, "fp42@x.example", 0, 14, 5, NULL },
    { "  spaced@x.example  ", false, "spaced@x.example", 2, 18, 7, NULL },
    { "\"a b\"@c.com", false, "\"a b\"@c.com", 0, 11, 6, NULL },
    { "u(c1)@(c2)x.example", false, "u@x.example", 0, 19, 2, NULL },
    { "bare", false, "bare", 0, 4, 0, NULL },
    { "u..v@x.example", false, "u..v@x.example", 0, 14, 5, NULL },
    { "John Q. Public <jqp@x.example>", false, "jqp@x.example", 16, 29, 4, NULL },
    { "<@r1,@r2:u@x.example>", false, "u@x.example", 1, 20, 2, NULL },
    { "@route:u@x.example", false, "u@x.example", 0, 18, 2, NULL },
    { "<>", true, "", 1, 1, 0, NULL },
    { "<>", false, NULL, 0, 0, 0, "missing or malformed local part" },
    { "", false, NULL, 0, 0, 0, "empty address" },
    { "a@b@c", false, NULL, 0, 0, 0, "malformed address: @c may not follow a@b" },
    { "u@[1.2.3.4]", false, "u@[1.2.3.4]", 0, 11, 2, NULL },         /* relaxed in the plain form */
    { "<u@[1.2.3.4]>", false, NULL, 0, 0, 0, "domain literals not allowed" },
    { "u@-bad.example", false, NULL, 0, 0, 0, "domain missing or malformed" },
    { "Name <u@x.example", false, NULL, 0, 0, 0, "'>' missing at end of address" },
    { "\"unterminated@x", false, NULL, 0, 0, 0, "unmatched doublequote in local part" },
    { "a b@c", false, NULL, 0, 0, 0, "missing or malformed local part (expected word or \"<\")" },
};

static void test_extract(arena *a)
{
    for (size_t i = 0; i < sizeof extract_rows / sizeof extract_rows[0]; i++) {
        addr_span sp;
        const char *err = NULL;
        char *got = addr_extract(a, extract_rows[i].in, NULL, NULL, extract_rows[i].allow_null, &sp, &err);
        CHECK_STR(got, extract_rows[i].want, extract_rows[i].in);
        if (got) {
            CHECK(sp.start == extract_rows[i].start && sp.end == extract_rows[i].end &&
                  sp.domain == extract_rows[i].domain, "%s: span %d..%d domain %d", extract_rows[i].in,
                  sp.start, sp.end, sp.domain);
        } else {
            CHECK(err && strncmp(err, extract_rows[i].err, strlen(extract_rows[i].err)) == 0,
                  "%s: error [%s] want [%s]", extract_rows[i].in, err ? err : "(null)", extract_rows[i].err);
        }
    }
}

/* A header's items, with group syntax: what each extraction yields. */
static void test_items(arena *a)
{
    const char *text = "grp: a@x.example, \"q, r\" <b@y.example>, c (x, y);, d@z.example";
    const char *want[] = { "a@x.example", "b@y.example", "c", "d@z.example" };
    addr_group g = { .allow = true };
    const char *s = text;
    int n = 0;
    while (*s) {
        const char *e = addr_item_end(s, false);
        char *item = arena_strndup(a, s, (size_t)(e - s));
        addr_span sp;
        const char *err;
        char *got = addr_extract(a, item, NULL, &g, false, &sp, &err);
        if (n < 4)
            CHECK_STR(got, want[n], item);
        n++;
        s = *e ? e + 1 : e;
        while (*s == ' ')
            s++;
    }
    CHECK(n == 4, "items: %d", n);
    CHECK(addr_find_at("a\\@b") == NULL, "escaped @");
    CHECK(addr_find_at("\"a@b\"") == NULL, "quoted @");
    CHECK_STR(addr_find_at("x@y@z"), "@z", "last @");
}

static void test_phrase(arena *a)
{
    static const struct { const char *in, *want; } rows[] = {
        { "John Smith", "John Smith" },
        { "John Q. Smith", "\"John Q. Smith\"" },
        { "  lead", "lead" },
        { "Smith, John", "\"Smith, John\"" },
        { "\"Already, quoted\" Smith", "\"Already, quoted\" Smith" },
        { "J\xc3\xb6rg", "=?UTF-8?Q?J=C3=B6rg?=" },
        { "(comment) Name", "(comment) Name" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK_STR(addr_fix_phrase(a, rows[i].in, strlen(rows[i].in), NULL), rows[i].want, rows[i].in);
}

/* ---- the engine ------------------------------------------------------------- */

static const char rules_conf[] =
    "primary_hostname = test.example\n"
    "qualify_domain = q.example\n"
    "qualify_recipient = r.example\n"
    "domainlist local_domains = a.example : b.example\n"
    "begin rewrite\n"
    "root@*.hitch.example  *\n"
    "*@*.hitch.example  $1@hitch.example\n"
    "fp42@hitch.example  Ford.Prefect@hitch.example  f s F\n"
    "*queen@*.fict.example  \"\\\"$0|$1|$2|$local_part|$domain\\\"@x.example\"  T\n"
    "\\N^(?i)(BOB)@(.*)$\\N  robert@$2  E\n"
    "*@+local_domains  $1@local.example  t\n"
    "!*@*.org  neg@x.example  c\n"
    "*@w.example  \"New Name <$1@w2.example>\"  w\n"
    "*@qq.example  local-$1  Q\n"
    "*@uq.example  unq-$1\n"
    "*@ff.example  \"${if !eq{$1}{keep}{$1@gg.example}fail}\"\n"
    "*@qf.example  \"${if !eq{$1}{keep}{$1@gg.example}fail}\"  q\n"
    "*@qf.example  $1@never.example\n"
    "\\N^(.*)x@r\\.example$\\N  $1@r.example  R\n"
    "\\N^<(.*)@old\\.example>$\\N  $1@new.example  S\n";

static const struct {
    const char *addr;
    unsigned where;
    const char *want;
} one_rows[] = {
    { "root@a.hitch.example", RW_ENVTO, "root@a.hitch.example" },        /* "*": stop */
    { "u@a.hitch.example", RW_ENVTO, "u@hitch.example" },
    { "fp42@a.hitch.example", RW_FROM, "Ford.Prefect@hitch.example" },   /* two rules in turn */
    { "fp42@a.hitch.example", RW_TO, "fp42@hitch.example" },
    { "hearts-queen@Wonderland.fict.example", RW_ENVTO,
      "\"hearts-queen@Wonderland.fict.example|hearts-|wonderland|hearts-queen|Wonderland.fict.example\"@x.example" },
    { "Bob@Some.example", RW_ENVFROM, "robert@some.example" },          /* the domain is lower-cased for matching */
    { "Bob@Some.example", RW_FROM, "Bob@Some.example" },
    { "u@a.example", RW_TO, "u@local.example" },
    { "u@b.org", RW_CC, "u@b.org" },
    { "u@b.net", RW_CC, "neg@x.example" },
    { "u@qq.example", RW_TO, "local-u@r.example" },
    { "u@uq.example", RW_TO, "u@uq.example" },                         /* unqualified: refused */
    { "keep@ff.example", RW_TO, "keep@ff.example" },
    { "other@ff.example", RW_TO, "other@gg.example" },
    { "keep@qf.example", RW_TO, "keep@qf.example" },                   /* forced failure with q */
    { "other@qf.example", RW_TO, "other@gg.example" },
    { "abxxx@r.example", RW_TO, "ab@r.example" },                      /* R */
    { "<u@old.example>", RW_SMTP, "u@new.example" },
    { "u@old.example", RW_ENVTO, "u@old.example" },                    /* S rules only at SMTP time */
};

static void test_one(arena *a)
{
    rewrite_set rs;
    rewrite_set_config(cfg, a, &rs);
    CHECK(rs.n == 15, "rules: %d", rs.n);
    for (size_t i = 0; i < sizeof one_rows / sizeof one_rows[0]; i++) {
        char ctx[200];
        snprintf(ctx, sizeof ctx, "%s for %#x", one_rows[i].addr, one_rows[i].where);
        CHECK_STR(rewrite_one(&rs, one_rows[i].addr, one_rows[i].where, NULL, NULL, NULL, a), one_rows[i].want, ctx);
    }
    /* no rule applies: the same pointer comes back */
    const char *same = "nobody@nowhere.example";
    CHECK(rewrite_one(&rs, same, RW_ENVTO, NULL, NULL, NULL, a) == same, "unchanged address is returned as is");

    /* "w": the whole mailbox in a header, only the address in the envelope */
    bool whole = false;
    CHECK_STR(rewrite_one(&rs, "u@w.example", RW_TO, &whole, NULL, NULL, a), "New Name <u@w2.example>", "w header");
    CHECK(whole, "w sets whole");
    CHECK_STR(rewrite_one(&rs, "u@w.example", RW_ENVTO, NULL, NULL, NULL, a), "u@w2.example", "w envelope");

    /* envelope: qualification, and the X-rewrote- note */
    spool_msg m;
    memset(&m, 0, sizeof m);
    CHECK_STR(rewrite_envelope(&rs, "bare", true, &m, a), "bare@r.example", "qualify recipient");
    CHECK_STR(rewrite_envelope(&rs, "bare", false, &m, a), "bare@q.example", "qualify sender");
    CHECK(m.headers == NULL, "no note without a rewrite");
    CHECK_STR(rewrite_envelope(&rs, "fp42@a.hitch.example", false, &m, a), "Ford.Prefect@hitch.example", "env-from");
    CHECK(m.headers && m.headers->type == '*' &&
          strcmp(m.headers->text, "X-rewrote-sender: fp42@a.hitch.example\n") == 0 &&
          m.headers->next && strcmp(m.headers->next->text, "X-rewrote-sender: fp42@hitch.example\n") == 0,
          "one X-rewrote-sender per rule applied");
}

static const struct {
    const char *text;
    char type;
    bool unq;
    const char *want;          /* NULL: unchanged */
} header_rows[] = {
    { "From: Ford (the man) <fp42@a.hitch.example>\n", 'F', false,
      "From: Ford (the man) <Ford.Prefect@hitch.example>\n" },
    { "To: \"Bob\" <x@a.example>, y@b.example (why),\n  z@c.example\n", 'T', false,
      "To: \"Bob\" <x@local.example>, y@local.example (why),\n  z@c.example\n" },
    { "To: u@nowhere.example\n", 'T', false, NULL },
    { "Subject: x@a.example\n", ' ', false, NULL },
    { "To: bob\n", 'T', false, NULL },                                  /* may not qualify */
    { "To: bob, al\n", 'T', true, "To: bob@r.example, al@r.example\n" },
    { "Reply-To: bob\n", 'R', true, "Reply-To: bob@q.example\n" },       /* a sender-like header */
    { "Cc: team: a@x.hitch.example, b@y.org;, c@z.org\n", 'C', false,
      "Cc: team: neg@x.example, b@y.org;, c@z.org\n" },   /* two rules in turn */
    { "To: Old <u@w.example> (c), v@x.example\n", 'T', false,
      "To: New Name <u@w2.example>, v@x.example\n" },
    /* a longer address more than 40 characters in: folded after it */
    { "To: someone.long@a.example, other.person@a.example, third@a.example\n", 'T', false,
      "To: someone.long@local.example, other.person@local.example, \n\tthird@local.example\n" },
    { "To: bad@@x, u@a.example\n", 'T', false, "To: bad@@x, u@local.example\n" },
    { "To: undisclosed-recipients:;\n", 'T', false, NULL },
};

static void test_headers(arena *a)
{
    rewrite_set rs;
    rewrite_set_config(cfg, a, &rs);
    for (size_t i = 0; i < sizeof header_rows / sizeof header_rows[0]; i++) {
        char *got = rewrite_header_text(&rs, header_rows[i].text, rewrite_header_place(header_rows[i].type),
                                        header_rows[i].unq, header_rows[i].unq, NULL, a);
        CHECK_STR(got, header_rows[i].want, header_rows[i].text);
    }

    /* on a message: the old header stays, deleted, before the new one */
    spool_msg m;
    memset(&m, 0, sizeof m);
    const char *h1 = "Subject: s\n", *h2 = "To: u@a.example\n", *h3 = "X-Last: 1\n";
    spool_add_header(&m, a, ' ', h1, strlen(h1));
    spool_add_header(&m, a, 'T', h2, strlen(h2));
    spool_add_header(&m, a, ' ', h3, strlen(h3));
    rewrite_headers(&rs, &m, false, false, a);
    spool_header *h = m.headers->next;
    CHECK(h->type == '*' && strcmp(h->text, h2) == 0, "old To: kept, deleted");
    CHECK(h->next->type == 'T' && strcmp(h->next->text, "To: u@local.example\n") == 0 &&
          h->next->len == strlen(h->next->text), "new To: after it");
    CHECK(h->next->next && strcmp(h->next->next->text, h3) == 0 && m.headers_tail == h->next->next, "rest kept");
}

static void test_flags(arena *a)
{
    static const struct {
        const char *pattern, *letters;
        bool global;
        unsigned want;        /* 0: error */
    } rows[] = {
        { "a@b", "", true, RW_ALL },
        { "a@b", "", false, RW_HEADERS },
        { "a@b", "f t", true, RW_FROM | RW_TO },
        { "a@b", "Eq", true, RW_ENVELOPE | RW_QUIT },
        { "a@b", "hw", false, RW_HEADERS | RW_WHOLE },
        { "a@b", "Q", true, RW_ALL | RW_QUALIFY },
        { "^x", "S", true, RW_SMTP },
        { "a@b", "S", true, 0 },
        { "a@b", "x", true, 0 },
        { "a@b", "F", false, 0 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned bits = 0;
        char *err = NULL;
        status st = rewrite_flags(rows[i].pattern, rows[i].letters, rows[i].global, &bits, a, &err);
        if (rows[i].want)
            CHECK(st == ST_OK && bits == rows[i].want, "flags %s: %#x want %#x", rows[i].letters, bits, rows[i].want);
        else
            CHECK(st == ST_ERROR && err, "flags %s %s should be refused", rows[i].pattern, rows[i].letters);
    }
    rewrite_set rs;
    char *err = NULL;
    CHECK(rewrite_set_parse("*@a.example $1@b.example : \"*@c.example\" \"$1@d.example\" f", a, &rs, &err) == ST_OK &&
          rs.n == 2 && rs.rule[0].bits == RW_HEADERS && rs.rule[1].bits == RW_FROM &&
          strcmp(rs.rule[1].replacement, "$1@d.example") == 0, "headers_rewrite list");
    CHECK(rewrite_set_parse("*@a.example", a, &rs, &err) == ST_ERROR, "missing replacement");
}

int main(void)
{
    state_init("rewrite_test");
    arena *a = arena_new("test", false);
    test_extract(a);
    test_items(a);
    test_phrase(a);
    test_flags(a);

    config *c;
    char *err;
    if (config_load_string(rules_conf, "test.conf", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    config_set_current(c);
    char dir[] = "/tmp/rewrite_test.XXXXXX", lp[64], panic[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(lp, sizeof lp, "%s/%%slog", dir);
    snprintf(panic, sizeof panic, "%s/paniclog", dir);
    log_settings ls = { .file_path = lp, .spool_directory = dir };
    log_configure(&ls);
    test_one(a);
    test_headers(a);
    /* the rules that could not be applied were panic-logged */
    FILE *f = fopen(panic, "r");
    char buf[8192] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(buf, "Rewrite of u@uq.example yielded unqualified address \"unq-u\"") != NULL,
          "panic log: [%s]", buf);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    config_set_current(NULL);
    config_free(c);
    arena_free(a);
    return check_report("rewrite_test");
}
