/* authres_test.c: Authentication-Results parsing and building. */
#include "check.h"
#include "msgauth/sig/authres.h"

#include <string.h>

static void test_parse(arena *a)
{
    static const struct {
        const char *in; status st; const char *id; int nres; const char *dump;
    } rows[] = {
        { "example.org; none", ST_OK, "example.org", 0, "" },
        { "example.org 1; spf=pass smtp.mailfrom=a@b.example", ST_OK, "example.org", 1,
          "spf=pass|smtp.mailfrom=a@b.example" },
        { " lists.example.org; arc=none;\r\n  spf=pass smtp.mfrom=jqd@d1.example;\r\n"
          "  dkim=pass (1024-bit key) header.i=@d1.example;\r\n  dmarc=pass", ST_OK,
          "lists.example.org", 4,
          "arc=none|spf=pass|smtp.mfrom=jqd@d1.example|dkim=pass|header.i=@d1.example|dmarc=pass" },
        { "mx.example; DKIM = Fail reason=\"bad; sig\" header.d=x.example (c) header.b=abc",
          ST_OK, "mx.example", 1, "dkim=fail|reason=bad; sig|header.d=x.example|header.b=abc" },
        { "\"quoted.id\"; dkim/1=pass header.d=a", ST_OK, "quoted.id", 1, "dkim=pass|header.d=a" },
        { "example.org; garbage; dkim=pass", ST_FAIL, "example.org", 1, "dkim=pass" },
        { "example.org", ST_FAIL, "example.org", 0, "" },
        { "", ST_FAIL, "", 0, "" },
        { "x; a=b c=d", ST_FAIL, "x", 1, "a=b" },
        { "x; (unterminated", ST_FAIL, "x", 0, "" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        authres r;
        char *err = NULL;
        status st = authres_parse(a, rows[i].in, strlen(rows[i].in), &r, &err);
        CHECK(st == rows[i].st, "%s: status %d", rows[i].in, st);
        CHECK_STR(r.authserv_id ? r.authserv_id : "", rows[i].id, rows[i].in);
        CHECK(r.nres == rows[i].nres, "%s: nres %d", rows[i].in, r.nres);
        char buf[1024] = "";
        for (int k = 0; k < r.nres; k++) {
            if (*buf) strcat(buf, "|");
            strcat(buf, r.res[k].method); strcat(buf, "="); strcat(buf, r.res[k].result);
            if (r.res[k].reason) { strcat(buf, "|reason="); strcat(buf, r.res[k].reason); }
            for (int j = 0; j < r.res[k].nprops; j++) {
                strcat(buf, "|"); strcat(buf, r.res[k].props[j].ptype); strcat(buf, ".");
                strcat(buf, r.res[k].props[j].property); strcat(buf, "=");
                strcat(buf, r.res[k].props[j].value);
            }
        }
        CHECK_STR(buf, rows[i].dump, rows[i].in);
    }
    authres r;
    char *err;
    const char *in = "id; dkim=pass (1024-bit key)\r\n  header.i=@d1.example";
    authres_parse(a, in, strlen(in), &r, &err);
    CHECK_STR(r.res[0].raw, "dkim=pass (1024-bit key) header.i=@d1.example", "raw squeezed");
    CHECK_STR(authres_prop_get(&r.res[0], "header", "i"), "@d1.example", "prop get");
    CHECK(authres_find(&r, "DKIM") == &r.res[0], "find");
    CHECK(authres_find(&r, "spf") == NULL, "find none");
}

static void test_build(arena *a)
{
    authres_prop p1[] = { { "header", "d", "example.com" }, { "header", "s", "sel" } };
    authres_prop p2[] = { { "smtp", "mailfrom", "a b@x" } };
    authres_result r[] = {
        { .method = "dkim", .result = "pass", .comment = "2048-bit key", .props = p1, .nprops = 2 },
        { .method = "spf", .result = "fail", .reason = "say \"no\"", .props = p2, .nprops = 1 },
    };
    CHECK_STR(authres_build(a, "mx.example.org", r, 2),
              "mx.example.org;\r\n\tdkim=pass (2048-bit key) header.d=example.com header.s=sel;\r\n"
              "\tspf=fail reason=\"say \\\"no\\\"\" smtp.mailfrom=\"a b@x\"", "build");
    CHECK_STR(authres_build(a, "mx", NULL, 0), "mx; none", "build none");
    /* round trip */
    char *v = authres_build(a, "mx.example.org", r, 2);
    authres back;
    char *err;
    CHECK(authres_parse(a, v, strlen(v), &back, &err) == ST_OK, "round trip parse");
    CHECK(back.nres == 2 && strcmp(back.res[1].reason, "say \"no\"") == 0, "round trip reason");
    CHECK_STR(authres_prop_get(&back.res[1], "smtp", "mailfrom"), "a b@x", "round trip value");
    CHECK_STR(authres_header(a, "mx", NULL, 0), "Authentication-Results: mx; none\r\n", "header");
}

int main(void)
{
    arena *a = arena_new("test", false);
    test_parse(a);
    test_build(a);
    arena_free(a);
    return check_report("authres_test");
}
