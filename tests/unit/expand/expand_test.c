/* expand_test.c: table-driven tests of the expansion engine: items,
 * operators, conditions, variables, failures, taint and the API. */
#include "check.h"
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *data_dir;

typedef struct row {
    const char *in;
    status st;          /* expected status */
    const char *want;   /* result (ST_OK) or error text prefix */
} row;

static const row rows[] = {
    /* text, escapes, \N */
    {"plain", ST_OK, "plain"},
    {"a\\tb\\x41\\101", ST_OK, "a\tbAA"},
    {"\\N${not}$expanded\\N", ST_OK, "${not}$expanded"},
    {"a\\", ST_FAIL, "\\ at end of string"},
    {"$", ST_FAIL, "$ not followed by letter, digit, or {"},
    /* variables */
    {"$primary_hostname", ST_OK, "unit.example"},
    {"${qualify_domain}", ST_OK, "q.example"},
    {"$qualify_recipient", ST_OK, "q.example"},
    {"$nosuch", ST_FAIL, "unknown variable name \"nosuch\""},
    {"${nosuch}", ST_FAIL, "unknown variable in \"${nosuch}\""},
    {"[$acl_m_unset]", ST_OK, "[]"},
    {"$acl_x", ST_FAIL, "unknown variable name \"acl_x\" (user-defined ACL variables must start acl_c or acl_m)"},
    {"[$h_subject:]", ST_OK, "[]"},
    {"$version_number", ST_OK, "4.99"},
    /* if and conditions */
    {"${if eq{a}{a}{y}{n}}", ST_OK, "y"},
    {"${if eq {a} {b} {y} {n} }", ST_OK, "n"},
    {"${if eq{a}{a}}", ST_OK, "true"},
    {"${if eq{a}{b}}", ST_OK, ""},
    {"${if !eq{a}{b}{y}}", ST_OK, "y"},
    {"${if eqi{A}{a}{y}{n}}", ST_OK, "y"},
    {"${if <{1}{2k}{y}{n}}", ST_OK, "y"},
    {"${if ={a}{1}}", ST_FAIL, "integer expected but \"a\" found"},
    {"${if and{{eq{a}{a}}{eq{b}{b}}}{y}{n}}", ST_OK, "y"},
    {"${if or{{eq{a}{b}}{eq{b}{c}}}{y}{n}}", ST_OK, "n"},
    {"${if and{}{y}{n}}", ST_OK, "y"},
    {"${if or{}{y}{n}}", ST_OK, "n"},
    {"${if forall{a:a}{eq{$item}{a}}{y}{n}}", ST_OK, "y"},
    {"${if forany{a:b}{eq{$item}{b}}{y}{n}}", ST_OK, "y"},
    {"${if forall{}{eq{$item}{a}}{y}{n}}", ST_OK, "n"},
    {"${if match{abc}{(b)(c)}{$2$1}}", ST_OK, "cb"},
    {"${if match{abc}{(b)}{$1}}$1", ST_OK, "b"},
    {"${if isip{1.2.3.4}{y}{n}}${if isip4{::1}{y}{n}}${if isip6{::1}{y}{n}}", ST_OK, "yny"},
    {"${if bool{yes}{y}{n}}${if bool_lax{x}{y}{n}}${if bool{no}{y}{n}}", ST_OK, "yyn"},
    {"${if bool{maybe}}", ST_FAIL, "unrecognised boolean value \"maybe\""},
    {"${if inlist{b}{a:b}{$value}}", ST_OK, "b"},
    {"${if inlisti{B}{a:b}{y}{n}}", ST_OK, "y"},
    {"${if def:primary_hostname{y}{n}}", ST_OK, "y"},
    {"${if def:value{y}{n}}", ST_OK, "n"},
    {"${if crypteq{abc}{\\{md5\\}900150983cd24fb0d6963f7d28e17f72}{y}{n}}", ST_OK, "y"},
    {"${if crypteq{abc}{\\{sha1\\}qZk+NkcGgWq6PiVxeFDCbJzQ2J0=}{y}{n}}", ST_OK, "y"},
    {"${if crypteq{abc}{abFZSxKKdq5s6}{y}{n}}", ST_OK, "y"},
    {"${if eq{a}{b}{y}fail}", ST_FAIL_FORCED, "\"if\" failed and \"fail\" requested"},
    {"${if foo{a}}", ST_FAIL, "unknown condition \"foo\""},
    {"${if eq{a}}", ST_FAIL, "missing 2nd string in {} after \"eq\""},
    {"${if eq{a}{b}{y}{n}", ST_FAIL, "curly-bracket problem"},
    {"${if eq{a}{b}{${nosuchop:x}}{skipped}}", ST_FAIL, "unknown expansion operator \"nosuchop\""},
    {"${if eq{a}{b}{$nosuchvar}{skipped}}", ST_FAIL, "unknown variable name \"nosuchvar\""},   /* checked even when skipped, as Exim */
    {"${if eq{a}{b}{$primary_hostname}{skipped}}", ST_OK, "skipped"},
    /* items */
    {"${sg{abcdef}{^(..)(..)}{\\$2\\$1}}", ST_OK, "cdabef"},
    {"${sg{abc}{}{-}}", ST_OK, "-a-b-c-"},
    {"${sg{abc}{(}{x}}", ST_FAIL, "regular expression error in \"(\""},
    {"${sg{a}{b}}", ST_FAIL, "Not enough arguments for 'sg' (min is 3)"},
    {"${substr{1}{2}{abcde}}${substr{-2}{abcde}}", ST_OK, "bcabc"},
    {"${length{2}{abcd}}", ST_OK, "ab"},
    {"${hash{3}{abcdef}}", ST_OK, "fmc"},
    {"${nhash{8}{4}{abc}}", ST_OK, "3/0"},
    {"${hmac{md5}{key}{data}}", ST_OK, "9d5c73ef85594d34ec4438b7c97e51d8"},
    {"${tr{hello}{el}{ip}}", ST_OK, "hippo"},
    {"${extract{b}{a=1 b=2}}", ST_OK, "2"},
    {"${extract{k}{k=\"a b\"}{<$value>}}", ST_OK, "<a b>"},
    {"${extract{2}{:}{a:b:c}}", ST_OK, "b"},
    {"${extract{-1}{:}{a:b:c}}", ST_OK, "c"},
    {"${extract{9}{:}{a:b:c}{y}{n}}", ST_OK, "n"},
    {"${listextract{2}{a:b:c}}", ST_OK, "b"},
    {"${listquote{:}{a:b}}", ST_OK, "a::b"},
    {"${map{a:b}{<$item>}}", ST_OK, "<a>:<b>"},
    {"${map{<;a;b}{$item}}", ST_OK, "a;b"},
    {"${filter{a:b:c}{!eq{$item}{b}}}", ST_OK, "a:c"},
    {"${reduce{1:2:3}{0}{${eval:$value+$item}}}", ST_OK, "6"},
    {"${sort{3:1:2}{<}{$item}}", ST_OK, "1:2:3"},
    {"${sort{b:c:a}{gt}{$item}}", ST_OK, "c:b:a"},
    {"${env{POSTERN_UNSET_VAR}{$value}{unset}}", ST_OK, "unset"},
    {"${run{/bin/echo hi}}", ST_OK, "hi\n"},
    {"${run{/bin/sh -c 'exit 3'}{y}{n:$value}}$runrc", ST_OK, "n:3"},
    {"${run{/nonexistent/cmd}{y}{n}}$runrc", ST_OK, "n127"},
    {"${run{relative}{y}{n}}$runrc", ST_OK, "n127"},
    {"${authresults{mx.example}}", ST_OK, "Authentication-Results: mx.example"},
    {"${if pam{x:y}}", ST_FAIL, "support for \"pam\" not compiled"},
    {"${run,preexpand{/bin/echo ${uc:x}}}", ST_OK, "X\n"},
    {"${run{/bin/echo v}}[$value]", ST_OK, "v\n[v\n]"},
    {"${prvscheck{${prvs{u@x.example}{secret}{3}}}{secret}{$prvscheck_keynum:$prvscheck_result}}", ST_OK, "3:1"},
    {"${prvscheck{${prvs{u@x.example}{secret}}}{wrong}}[$prvscheck_result]", ST_OK, "u@x.example[]"},
    {"[${prvscheck{plain@x.example}{secret}}]", ST_OK, "[]"},
    {"${prvs{nodomain}{secret}}", ST_FAIL, "prvs first argument must be a qualified email address"},
    {"${prvs{a@b}{secret}{12}}", ST_FAIL, "prvs third argument must be a single digit"},
    {"${acl{x}}", ST_FAIL, "the \"acl\" expansion item is not supported in this program"},
    {"${if acl{{x}}{y}{n}}", ST_FAIL, "the \"acl\" expansion item is not supported in this program"},
    {"${extract json{2}{[1, \"two\", 3]}}", ST_OK, "\"two\""},
    {"${extract jsons{b}{\\{\"a\": 1, \"b\": \"x y\"\\}}}", ST_OK, "x y"},
    {"${if forany_json{[1,2,3]}{=={$item}{2}}{y}{n}}", ST_OK, "y"},
    {"${map{a:b}{:$item}}", ST_OK, "::a: ::b"},
    {"${listnamed:doms}|${listnamed_h:nets}", ST_OK, "a.example : *.b.example|10.0.0.0/8 : 192.168.0.0/16"},
    /* operators */
    {"${lc:ABC}${uc:def}", ST_OK, "abcDEF"},
    {"${strlen:hello}", ST_OK, "5"},
    {"${md5:abc}", ST_OK, "900150983cd24fb0d6963f7d28e17f72"},
    {"${sha1:abc}", ST_OK, "A9993E364706816ABA3E25717850C26C9CD0D89D"},
    {"${sha256:abc}", ST_OK, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"},
    {"${sha3_256:abc}", ST_OK, "3A985DA74FE225B2045C172D6BD390BD855F086E3E9D525B46BFE24511431532"},
    {"${base64:hello}${base64d:aGk=}", ST_OK, "aGVsbG8=hi"},
    {"${base64d:aGk}", ST_FAIL, "string \"aGk\" is not well-formed for \"base64d\" operator"},
    {"${base32:12345}|${base32d:mbz}", ST_OK, "mbz|12345"},
    {"${base62:12345}|${base62d:3D7}", ST_OK, "0003D7|12345"},
    {"${hex2b64:0123ab}", ST_OK, "ASOr"},
    {"${eval:1+2*3}|${eval:(1+2)*3}|${eval:0x10}|${eval10:010}|${eval:-7/2}", ST_OK, "7|9|16|10|-3"},
    {"${eval:5&3|8}", ST_OK, "9"},
    {"${eval:1/0}", ST_FAIL, "error in expression evaluation: divide by zero (after processing \"1/0\")"},
    {"${eval:1+}", ST_FAIL, "error in expression evaluation: expecting number or opening parenthesis"},
    {"${quote:a b}|${quote:ab}", ST_OK, "\"a b\"|ab"},
    {"${quote_local_part:a b}", ST_OK, "\"a b\""},
    {"${rxquote:a.b}", ST_OK, "a\\.b"},
    {"${escape:a\\nb}", ST_OK, "a\\nb"},
    {"${escape8bit:a\\x80}", ST_OK, "a\\200"},
    {"${address:Joe <joe@x.example>}|${domain:joe@X.example}|${local_part:joe@x}", ST_OK, "joe@x.example|X.example|joe"},
    {"${addresses:a@b, Joe <c@d>}", ST_OK, "a@b:c@d"},
    {"${mask:192.168.3.4/20}|${mask_n:2001:db8::5/48}", ST_OK, "192.168.0.0/20|2001:db8::/48"},
    {"${reverse_ip:1.2.3.4}", ST_OK, "4.3.2.1"},
    {"${ipv6denorm:::1}|${ipv6norm:2001:0db8::0001}", ST_OK, "0000:0000:0000:0000:0000:0000:0000:0001|2001:db8::1"},
    {"${time_interval:3700}|${time_eval:1h30m}", ST_OK, "1h1m40s|5400"},
    {"${time_eval:45}", ST_FAIL, "string \"45\" is not an Exim time interval"},
    {"${listcount:a:b::c}|${listcount:<;a;b}", ST_OK, "2|2"},
    {"${listnamed:doms}", ST_OK, "a.example : *.b.example"},
    {"${rfc2047:h\xc3\xa9}|${rfc2047d:=?utf-8?q?h=C3=A9?=}", ST_OK, "=?UTF-8?Q?h=C3=A9?=|h\xc3\xa9"},
    {"${utf8clean:a\\xffb}", ST_OK, "a?b"},
    {"${from_utf8:h\xc3\xa9}", ST_OK, "h\xe9"},
    {"${substr_1_2:abcde}|${s_-3:abcde}|${l_2:abcde}", ST_OK, "bc|ab|ab"},
    {"${h_3:abcde}|${nh_5_3:abcde}", ST_OK, "fmv|4/0"},
    {"${headerwrap_20:aaaa bbbb cccc dddd eeee}", ST_OK, "aaaa bbbb cccc dddd\n\teeee"},
    {"${bar:x}", ST_FAIL, "unknown expansion operator \"bar\""},
    {"${expand:\\$nosuch}", ST_FAIL, "internal expansion of \"$nosuch\" failed: unknown variable name \"nosuch\""},
    {"${uc:abc", ST_FAIL, "missing } at end of string"},
    {"${foo", ST_FAIL, "\"${foo\" is not a known operator"},
    /* nesting */
    {"${uc:${lc:${uc:deep}}}", ST_OK, "DEEP"},
    {"${if eq{${uc:a}}{A}{${lc:YES}}{no}}", ST_OK, "yes"},
    {"${lc:a{b}c}", ST_OK, "a{bc}"},
    {NULL, 0, NULL},
};

/* rows that need the data directory: DATA is replaced */
static const row lookup_rows[] = {
    {"${lookup{foo}lsearch{DATA/l1}}", ST_OK, "bar"},
    {"${lookup{FOO}lsearch{DATA/l1}{<$value>}{no}}", ST_OK, "<bar>"},
    {"${lookup{cont}lsearch{DATA/l1}}", ST_OK, "one two"},
    {"${lookup{nope}lsearch{DATA/l1}{y}{n}}", ST_OK, "n"},
    {"${lookup{nope}lsearch{DATA/l1}{y}fail}", ST_FAIL_FORCED, "\"lookup\" failed and \"fail\" requested"},
    {"${lookup{a.wild.example}partial-lsearch{DATA/l1}}", ST_OK, "wild"},
    {"${lookup{wild.example}partial-lsearch{DATA/l1}}", ST_OK, "wild"},
    {"${lookup{x@dom.example}lsearch*@{DATA/l1}}", ST_OK, "atdom"},
    {"${lookup{foo}lsearch,ret=key{DATA/l1}}", ST_OK, "foo"},
    {"${lookup{10.9.8.7}iplsearch{DATA/ip}}", ST_OK, "ten"},
    {"${lookup{2001:db8::1}iplsearch{DATA/ip}}", ST_OK, "doc6"},
    {"${lookup{l1}dsearch{DATA}}", ST_OK, "l1"},
    {"${lookup{l1}dsearch,ret=full{DATA}}", ST_OK, "DATA/l1"},
    {"${lookup{a/b}dsearch{DATA}}", ST_FAIL, "lookup of \"a/b\" gave DEFER"},
    {"${lookup{x}lsearch{DATA/nonexistent}}", ST_FAIL, "failed to open DATA/nonexistent for linear search"},
    {"${lookup{x}nosuch{DATA/l1}}", ST_FAIL, "unknown lookup type \"nosuch\""},
    {"${readfile{DATA/ip}{|}}", ST_OK, "10.0.0.0/8: ten|\"2001:db8::/32\": doc6|"},
    {"${if exists{DATA/l1}{y}{n}}", ST_OK, "y"},
    {NULL, 0, NULL},
};

static char *subst(const char *s)
{
    static char buf[4096];
    char *o = buf;
    while (*s && o < buf + sizeof buf - 512) {
        if (strncmp(s, "DATA", 4) == 0) {
            o += sprintf(o, "%s", data_dir);
            s += 4;
        } else
            *o++ = *s++;
    }
    *o = 0;
    return buf;
}

static void run_rows(const row *r, bool sub)
{
    for (; r->in; r++) {
        char *in = strdup(sub ? subst(r->in) : r->in);
        char want[4096];
        snprintf(want, sizeof want, "%s", sub ? subst(r->want) : r->want);
        char *out = NULL, *err = NULL;
        status st = expand_string(in, ps.scratch, &out, &err);
        CHECK(st == r->st, "%s: status %s want %s (%s)", in, status_name(st), status_name(r->st),
              err ? err : out);
        if (st == ST_OK && r->st == ST_OK)
            CHECK_STR(out, want, in);
        else if (st == r->st)
            CHECK(err && strncmp(err, want, strlen(want)) == 0, "%s: error [%s] want prefix [%s]", in,
                  err ? err : "(null)", want);
        free(in);
        arena_reset(ps.scratch);
    }
}

static void test_taint(void)
{
    char *tv = arena_strdup(ps.msg_t, "outside");
    CHECK(expand_set_acl_var("acl_m_t", tv, NULL) == ST_OK, "set acl_m_t");
    CHECK(expand_set_acl_var("acl_m_u", "inside", NULL) == ST_OK, "set acl_m_u");
    char *out, *err;
    CHECK(expand_string("x$acl_m_t", ps.msg, &out, &err) == ST_OK, "tainted expand");
    CHECK_STR(out, "xoutside", "tainted value");
    CHECK(is_tainted(out), "result from tainted variable is tainted");
    CHECK(expand_string("x$acl_m_u", ps.msg, &out, &err) == ST_OK, "clean expand");
    CHECK(!is_tainted(out), "result from untainted variable is not tainted");
    CHECK(expand_string("${if eq{$acl_m_t}{outside}{yes}{no}}", ps.msg, &out, &err) == ST_OK, "cond");
    CHECK_STR(out, "yes", "condition on tainted");
    CHECK(!is_tainted(out), "condition result is not tainted");
    CHECK(expand_string("${uc:$acl_m_t}", ps.msg, &out, &err) == ST_OK, "op");
    CHECK(is_tainted(out), "operator on tainted is tainted");
    CHECK(expand_string("${strlen:$acl_m_t}", ps.msg, &out, &err) == ST_OK, "strlen");
    CHECK(!is_tainted(out), "strlen of tainted is not tainted");
    CHECK(expand_string("${lookup{$acl_m_t}lsearch{/nonexistent/$acl_m_t}}", ps.msg, &out, &err) == ST_FAIL,
          "tainted lookup file name refused");
    CHECK(err && strstr(err, "Tainted filename"), "tainted file message: %s", err ? err : "");
    CHECK(expand_string("${readfile{$acl_m_t}}", ps.msg, &out, &err) == ST_FAIL, "tainted readfile refused");
    CHECK(expand_string("${expand:$acl_m_t}", ps.msg, &out, &err) == ST_FAIL, "tainted expand refused");
    CHECK_STR(err, "internal expansion of \"outside\" failed: attempt to expand tainted string 'outside'",
              "tainted expand message");
    CHECK(expand_string("${hash{$acl_m_t}{x}}", ps.msg, &out, &err) == ST_FAIL, "tainted hash arg refused");
    CHECK_STR(err, "attempt to use tainted string 'outside' for hash", "tainted hash message");
    CHECK(expand_string(tv, ps.msg, &out, &err) == ST_ERROR, "tainted string is never expanded");
    /* ACL variable names */
    CHECK(expand_set_acl_var("acl_x", "v", &err) == ST_ERROR, "bad acl var name");
    CHECK(expand_set_acl_var("acl_c0", "zero", NULL) == ST_OK, "acl_c0");
    CHECK_STR(expand_get_acl_var("acl_c0"), "zero", "get acl_c0");
    expand_reset_message();
    CHECK(expand_get_acl_var("acl_m_u") == NULL, "acl_m reset");
    CHECK_STR(expand_get_acl_var("acl_c0"), "zero", "acl_c survives message reset");
}

static void test_condition_api(void)
{
    static const struct { const char *in; status st; bool res; } c[] = {
        {"eq{a}{a}", ST_OK, true},
        {"!eq{a}{a}", ST_OK, false},
        {"  and{{eq{a}{a}}{match{abc}{^a}}}", ST_OK, true},
        {"match_domain{x.b.example}{+doms}", ST_OK, true},
        {"match_ip{10.1.1.1}{+nets}", ST_OK, true},
        {"eq{a}{a} junk", ST_FAIL, false},
        {"nosuch{a}", ST_FAIL, false},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        bool r = !c[i].res;
        char *err = NULL;
        status st = expand_condition(c[i].in, ps.scratch, &r, &err);
        CHECK(st == c[i].st, "condition %s: %s (%s)", c[i].in, status_name(st), err ? err : "");
        if (st == ST_OK)
            CHECK(r == c[i].res, "condition %s: got %d", c[i].in, r);
    }
    static const struct { const char *in; status st; bool res; } b[] = {
        {"yes", ST_OK, true}, {"", ST_OK, false}, {" 0 ", ST_OK, false}, {"${if eq{a}{a}}", ST_OK, true},
        {"maybe", ST_OK, true}, {" FALSE ", ST_OK, false}, {"${if eq{a}{b}{y}fail}", ST_FAIL_FORCED, false},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        bool r = !b[i].res;
        char *err = NULL;
        status st = expand_check_bool(b[i].in, ps.scratch, &r, &err);
        CHECK(st == b[i].st, "check_bool %s: %s", b[i].in, status_name(st));
        if (st == ST_OK)
            CHECK(r == b[i].res, "check_bool %s: got %d", b[i].in, r);
    }
    long long n = 0;
    CHECK(expand_integer("${eval:2*21}k", ps.scratch, &n, NULL) == ST_OK && n == 42 * 1024, "expand_integer");
}

static void test_depth(void)
{
    /* deep nesting must fail cleanly, not overflow the stack */
    size_t depth = 5000;
    char *s = malloc(depth * 6 + 64), *p = s;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "${lc:");
    for (size_t i = 0; i < depth; i++)
        *p++ = '}';
    *p = 0;
    char *out, *err = NULL;
    CHECK(expand_string(s, ps.scratch, &out, &err) == ST_FAIL, "deep nesting fails");
    CHECK(err && strstr(err, "too deep"), "deep nesting message: %s", err ? err : "");
    /* conditions nest without xp_sub: and{{and{{...}}}} */
    p = s;
    p += sprintf(p, "${if ");
    for (size_t i = 0; i < depth / 2; i++)
        p += sprintf(p, "and{{");
    p += sprintf(p, "eq{a}{a}");
    for (size_t i = 0; i < depth / 2; i++)
        p += sprintf(p, "}}");
    sprintf(p, "{y}{n}}");
    err = NULL;
    CHECK(expand_string(s, ps.scratch, &out, &err) == ST_FAIL, "deep condition nesting fails");
    CHECK(err && strstr(err, "too deep"), "deep condition nesting message: %s", err ? err : "");
    free(s);
}

int main(void)
{
    state_init("expand_test");
    data_dir = getenv("EXPAND_TEST_DATA");
    if (!data_dir)
        data_dir = "tests/unit/expand/data";
    static char absdir[4096];
    if (realpath(data_dir, absdir))   /* dsearch wants absolute names */
        data_dir = absdir;
    config *c;
    char *err;
    const char *text =
        "primary_hostname = unit.example\n"
        "qualify_domain = q.example\n"
        "domainlist doms = a.example : *.b.example\n"
        "hostlist nets = 10.0.0.0/8 : 192.168.0.0/16\n"
        "addresslist addrs = x@y.example : *@z.example\n"
        "localpartlist lps = bob : ^al.*\n";
    if (config_load_string(text, "unit", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    config_set_current(c);
    run_rows(rows, false);
    run_rows(lookup_rows, true);
    test_taint();
    test_condition_api();
    test_depth();
    return check_report("expand_test");
}
