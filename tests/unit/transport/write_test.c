/* write_test.c: a spooled message as transports write it: line endings,
 * dot-stuffing, mbox "From " escaping, deleted and removed headers, added
 * headers first or last, prefix and suffix. */
#include "check.h"
#include "core/gstr.h"
#include "transport/write.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static bool to_gstr(void *ctx, const char *p, size_t n)
{
    gstr_catn(ctx, p, n);
    return true;
}

int main(void)
{
    arena *a = arena_new("t", false);
    char path[] = "/tmp/postern-write-test-XXXXXX";
    int fd = mkstemp(path);
    const char *data = "1xUwzk-0007fj-28-D\nline one\n.starts with dot\nFrom the start\n\nlast\n";
    CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data), "write data");
    spool_msg m = { 0 };
    spool_add_header(&m, a, ' ', "Subject: test\n", 14);
    spool_add_header(&m, a, '*', "X-Deleted: gone\n", 16);
    spool_add_header(&m, a, ' ', "X-Remove-Me: yes\n", 17);
    spool_add_header(&m, a, 'F', "From: a@b\n continued\n", 21);

    static const struct {
        write_opts o;
        const char *want;
    } rows[] = {
        { { 0 },
          "Subject: test\nX-Remove-Me: yes\nFrom: a@b\n continued\n\nline one\n.starts with dot\nFrom the start\n\nlast\n" },
        { { .crlf = true, .dot_stuff = true },
          "Subject: test\r\nX-Remove-Me: yes\r\nFrom: a@b\r\n continued\r\n\r\nline one\r\n..starts with dot\r\n"
          "From the start\r\n\r\nlast\r\n" },
        { { .escape_from = ">From ", .prefix = "From x@y Thu Jan  1 00:00:00 1970\n", .suffix = "\n",
            .remove_headers = "x-remove-me : nothing", .top_headers = "Return-path: <x@y>\n",
            .add_headers = "X-Added: 1\n" },
          "From x@y Thu Jan  1 00:00:00 1970\nReturn-path: <x@y>\nSubject: test\nFrom: a@b\n continued\nX-Added: 1\n\n"
          "line one\n.starts with dot\n>From the start\n\nlast\n\n" },
        { { .headers_only = true }, "Subject: test\nX-Remove-Me: yes\nFrom: a@b\n continued\n\n" },
        { { .body_only = true }, "line one\n.starts with dot\nFrom the start\n\nlast\n" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        gstr g;
        gstr_init(&g, a, 256);
        unsigned long long n = 0;
        char *err = NULL;
        status st = transport_write_message(&m, fd, &rows[i].o, to_gstr, &g, &n, a, &err);
        CHECK(st == ST_OK, "row %zu: %s", i, err ? err : "");
        CHECK_STR(g.s, rows[i].want, "row");
        CHECK(n == g.len, "row %zu: byte count %llu vs %zu", i, n, g.len);
    }
    gstr g;
    gstr_init(&g, a, 16);
    char *err = NULL;
    write_opts o = { 0 };
    CHECK(transport_write_message(&m, -1, &o, to_gstr, &g, NULL, a, &err) == ST_DEFER && err,
          "unreadable data file defers with a reason");
    close(fd);
    unlink(path);
    arena_free(a);
    return check_report("write_test");
}
