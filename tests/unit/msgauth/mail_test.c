/* mail_test.c: message splitting, header lookup, address lists, From domains. */
#include "check.h"
#include "msgauth/mail.h"

#include <string.h>

static void test_parse(arena *a)
{
    static const char msg[] =
        "From sender@x Mon Jan  1 00:00:00 2024\n"
        "From: Joe <joe@Example.COM>\n"
        "Subject: hello\n"
        " folded\n"
        "X-Empty:\n"
        "subject : second\r\n"
        "\n"
        "body line\n"
        "\n";
    mail_msg m;
    char *err = NULL;
    CHECK(mail_parse(a, msg, sizeof msg - 1, &m, &err) == ST_OK, "parse");
    CHECK(m.nhdr == 4, "nhdr %d", m.nhdr);
    CHECK(m.bare_lf, "bare lf");
    CHECK(m.has_body_sep, "sep");
    CHECK_STR(m.hdr[1].name, "Subject", "name");
    CHECK(m.hdr[1].raw_len == strlen("Subject: hello\r\n folded\r\n"), "raw len %zu", m.hdr[1].raw_len);
    CHECK(memcmp(m.hdr[1].value, " hello\r\n folded", m.hdr[1].value_len) == 0, "value");
    CHECK_STR(mail_unfold(a, &m.hdr[1]), "hello folded", "unfold");
    CHECK_STR(mail_unfold(a, &m.hdr[2]), "", "empty value");
    CHECK_STR(m.hdr[3].name, "subject", "obs name with space");
    CHECK(m.body_len == 13 && memcmp(m.body, "body line\r\n\r\n", 13) == 0, "body");
    CHECK(mail_find(a ? &m : &m, "SUBJECT", 0) == 1, "find");
    CHECK(mail_find(&m, "subject", 2) == 3, "find next");
    CHECK(mail_find_last(&m, "subject", -1) == 3, "find last");
    CHECK(mail_count(&m, "subject") == 2, "count");
    CHECK(mail_find(&m, "to", 0) == -1, "missing");
    size_t n;
    char *r = mail_render(a, &m, &n);
    CHECK(strstr(r, "Subject: hello\r\n folded\r\nX-Empty:\r\n") != NULL, "render");

    /* no body separator, no final newline */
    mail_msg m2;
    CHECK(mail_parse(a, "A: b", 4, &m2, &err) == ST_OK, "parse2");
    CHECK(m2.nhdr == 1 && m2.body_len == 0 && !m2.has_body_sep, "no body");
    CHECK(m2.hdr[0].value_len == 2, "value len no crlf");
    /* a non-header line starts the body */
    mail_msg m3;
    CHECK(mail_parse(a, "A: b\r\nnot a header\r\n", 20, &m3, &err) == ST_OK, "parse3");
    CHECK(m3.nhdr == 1 && m3.body_len == 14, "garbage body %zu", m3.body_len);
}

static void test_addrs(arena *a)
{
    static const struct { const char *in; const char *want; } rows[] = {
        { "joe@example.com", "joe@example.com" },
        { "Joe Doe <joe@Example.com>", "joe@example.com" },
        { "\"Doe, Joe\" <joe@a.example>, bob@B.example", "joe@a.example|bob@b.example" },
        { "(comment) joe(x)@(y)example.com (z)", "joe@example.com" },
        { "group: a@x.example, b@y.example;, c@z.example", "a@x.example|b@y.example|c@z.example" },
        { "<@route.example:joe@r.example>", "joe@r.example" },
        { "\"quoted@local\"@q.example", "\"quoted@local\"@q.example" },
        { "undisclosed-recipients:;", "" },
        { "joe", "joe@" },
        { "Joe <joe@example.com.>", "joe@example.com" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        mail_addr *ad;
        int n = mail_addr_list(a, rows[i].in, strlen(rows[i].in), &ad);
        char buf[512] = "";
        for (int k = 0; k < n; k++) {
            if (k)
                strcat(buf, "|");
            strcat(buf, ad[k].local);
            strcat(buf, "@");
            strcat(buf, ad[k].domain);
        }
        CHECK_STR(buf, rows[i].want, rows[i].in);
    }
}

static void test_from(arena *a)
{
    static const char msg[] = "From: a@one.example, b@Two.example\r\nTo: x@y\r\nFrom: c@three.example\r\n\r\n";
    mail_msg m;
    char *err;
    mail_parse(a, msg, sizeof msg - 1, &m, &err);
    const char **d;
    int nh;
    int n = mail_from_domains(a, &m, &d, &nh);
    CHECK(n == 3 && nh == 2, "from domains %d %d", n, nh);
    if (n == 3) {
        CHECK_STR(d[0], "one.example", "d0");
        CHECK_STR(d[1], "two.example", "d1");
        CHECK_STR(d[2], "three.example", "d2");
    }
}

int main(void)
{
    arena *a = arena_new("test", false);
    test_parse(a);
    test_addrs(a);
    test_from(a);
    arena_free(a);
    return check_report("mail_test");
}
