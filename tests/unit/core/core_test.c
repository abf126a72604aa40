/* core_test.c: arenas, taint, growable strings and Exim lists. */
#include "check.h"
#include "core/arena.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/status.h"

#include <stdlib.h>

/* Render every item of a list as [item] joined by '|'. */
static const char *items(arena *a, const char *list, int sep)
{
    gstr g;
    gstr_init(&g, a, 16);
    char *it;
    bool first = true;
    while ((it = list_next(&list, &sep, a))) {
        if (!first)
            gstr_catc(&g, '|');
        first = false;
        gstr_printf(&g, "[%s]", it);
    }
    return g.s;
}

static void test_lists(arena *a)
{
    static const struct { const char *list; int sep; const char *want; } rows[] = {
        { "a:b:c", 0, "[a]|[b]|[c]" },
        { " a : b ", 0, "[a]|[b]" },
        { "a::b: :c", 0, "[a:b]|[]|[c]" },
        { ":a:b", 0, "[]|[a]|[b]" },
        { "a : b :", 0, "[a]|[b]" },
        { ":", 0, "[]" },
        { "", 0, "" },
        { "   ", 0, "" },
        { "<, a,,b, ,c,", 0, "[a,b]|[]|[c]" },
        { "<; 127.0.0.1 ; ::1", 0, "[127.0.0.1]|[::1]" },
        { "127.0.0.1 : ::::1", 0, "[127.0.0.1]|[::1]" },
        { "<\n a\n\nb", 0, "[a]|[]|[b]" },
        { "<;a;;b", 0, "[a;b]" },
        { "a,b", ',', "[a]|[b]" },
        { "<;a;b", ',', "[<;a;b]" },          /* fixed separator: no prefix */
        { "a\nb", -'\n', "[a]|[b]" },
        { "<a:b", 0, "[<a]|[b]" },            /* '<' + letter is not a change */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK_STR(items(a, rows[i].list, rows[i].sep), rows[i].want, rows[i].list);

    CHECK(list_count("a:b::c:d", 0, a) == 3, "list_count");
    CHECK(list_contains("x : Y : z", 0, "y", true, a), "caseless contains");
    CHECK(!list_contains("x : Y : z", 0, "y", false, a), "caseful contains");

    gstr g;
    gstr_init(&g, a, 4);
    list_append(&g, ':', "a:b", false);
    list_append(&g, ':', "c", false);
    CHECK_STR(g.s, "a::b:c", "list_append doubles the separator");
    CHECK_STR(items(a, g.s, 0), "[a:b]|[c]", "round trip");
}

static void test_arena(void)
{
    arena *a = arena_new("t", false);
    arena *t = arena_new("tt", true);
    char *s = arena_strdup(a, "clean");
    char *d = arena_strdup(t, "dirty");
    CHECK(!is_tainted(s), "untainted arena memory is clean");
    CHECK(is_tainted(d), "tainted arena memory is tainted");
    CHECK(!is_tainted("literal"), "literals are clean");
    /* large allocations and many blocks */
    for (int i = 0; i < 1000; i++) {
        char *p = arena_alloc(t, 1000);
        CHECK(is_tainted(p), "block %d tainted", i);
        if (!is_tainted(p))
            break;
    }
    char *big = arena_alloc(a, 1 << 20);
    big[(1 << 20) - 1] = 'x';
    CHECK(!is_tainted(big), "big block clean");
    CHECK_STR(arena_printf(a, "%d-%s", 42, "x"), "42-x", "arena_printf");
    CHECK_STR(arena_strndup(a, "abcdef", 3), "abc", "strndup");
    arena_reset(t);
    char *again = arena_strdup(t, "again");
    CHECK(is_tainted(again), "tainted after reset");
    gstr g;
    gstr_init(&g, a, 1);
    for (int i = 0; i < 10000; i++)
        gstr_catc(&g, (char)('a' + i % 26));
    CHECK(g.len == 10000 && g.s[9999] == 'a' + 9999 % 26 && g.s[10000] == 0, "gstr growth");
    arena_free(a);
    arena_free(t);
}

int main(void)
{
    arena *a = arena_new("lists", false);
    test_lists(a);
    test_arena();
    CHECK_STR(status_name(ST_DEFER), "DEFER", "status_name");
    CHECK_STR(status_name((status)999), "UNKNOWN", "status_name out of range");
    arena_free(a);
    return check_report("core_test");
}
