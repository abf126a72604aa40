/* spool_test.c: message ids, and -H files: a file in Exim 4.96's own
 * format is read and written back byte for byte; a message written by
 * postern reads back with every field. */
#include "check.h"
#include "core/arena.h"
#include "spool/spool.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Written by Exim 4.96 (-bs with DSN parameters), minus its
 * -tls_resumption line, which postern does not keep. */
static const char exim_h[] =
    "1xUwzr-0007o7-0I-H\n"
    "root 0 0\n"
    "<alice@example.org>\n"
    "1795313283 0\n"
    "-received_time_usec .093815\n"
    "-received_time_complete 1795313283.094509\n"
    "-helo_name client.example\n"
    "-host_address [192.0.2.1]:4242\n"
    "-interface_address [127.0.0.1]:25\n"
    "-ident root\n"
    "-received_protocol esmtp\n"
    "-body_linecount 1\n"
    "-max_received_linelength 11\n"
    "-deliver_firsttime\n"
    "-tls_resumption A\n"
    "-dsn_envid xyz\n"
    "-dsn_ret 2\n"
    "XX\n"
    "3\n"
    "bob@example.net rfc822;bob@example.net 22,12  0,-1#3\n"
    "carol@example.net  0,2  0,-1#3\n"
    "dave@example.net\n"
    "\n"
    "192P Received: from [192.0.2.1] (helo=client.example ident=root)\n"
    "\tby test.example with esmtp (Exim 4.96)\n"
    "\t(envelope-from <alice@example.org>)\n"
    "\tid 1xUwzr-0007o7-0I;\n"
    "\tSun, 22 Nov 2026 02:08:03 +0000\n"
    "012  Subject: hi\n";

static char dir[] = "/tmp/postern-spool-test-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static char *slurp(FILE *f, arena *a)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *b = arena_alloc(a, (size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    return b;
}

static void test_ids(void)
{
    char a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1];
    spool_new_id(a);
    spool_new_id(b);
    CHECK(spool_id_valid(a) && spool_id_valid(b), "ids valid: %s %s", a, b);
    CHECK(strcmp(a, b) != 0, "two ids from one process differ: %s %s", a, b);
    CHECK(spool_id_time("1xUwzk-0007fj-28") == 1795313276, "id time");
    CHECK(!spool_id_valid("1xUwzk-0007fj-2"), "short id");
    CHECK(!spool_id_valid("1xUwzk-0007fj-2/"), "bad char");
    CHECK(!spool_id_valid("1xUwzk_0007fj-28"), "bad dash");
}

static void test_exim_roundtrip(arena *a)
{
    spool_settings ss = { .directory = dir };
    char err_dummy[1];
    (void)err_dummy;
    char *err = NULL;
    CHECK(spool_make_dirs(&ss, NULL, &err) == ST_OK, "mkdirs: %s", err ? err : "");
    char path[PATH_MAX];
    write_file(spool_path(&ss, "1xUwzr-0007o7-0I", 'H', path, sizeof path), exim_h);
    spool_msg *m = NULL;
    status st = spool_read_header(&ss, "1xUwzr-0007o7-0I", a, &m, &err);
    CHECK(st == ST_OK, "read Exim's -H: %s", err ? err : "");
    if (st != ST_OK)
        return;
    CHECK_STR(m->sender, "alice@example.org", "sender");
    CHECK_STR(m->host_address, "192.0.2.1", "host");
    CHECK(m->host_port == 4242 && m->interface_port == 25, "ports");
    CHECK(m->n_rcpt == 3, "3 recipients");
    CHECK(m->rcpt[0].orcpt && !strcmp(m->rcpt[0].orcpt, "rfc822;bob@example.net") && m->rcpt[0].dsn_flags == 12, "DSN of rcpt 1");
    CHECK(m->rcpt[1].orcpt == NULL && m->rcpt[1].dsn_flags == SPOOL_DSN_NEVER, "NOTIFY=NEVER");
    CHECK(m->rcpt[2].dsn_flags == 0 && m->rcpt[2].parent == -1, "plain recipient");
    CHECK(m->dsn_ret == SPOOL_RET_HDRS && m->dsn_envid && !strcmp(m->dsn_envid, "xyz"), "RET/ENVID");
    int nh = 0;
    for (spool_header *h = m->headers; h; h = h->next)
        nh++;
    CHECK(nh == 2 && m->headers->type == 'P' && m->headers->len == 192, "headers");
    FILE *f = tmpfile();
    spool_write_header_file(f, m);
    CHECK_STR(slurp(f, a), exim_h, "written back byte for byte");
    fclose(f);
}

static void test_write_read(arena *a)
{
    spool_settings ss = { .directory = dir, .split = true };
    spool_msg m = { 0 };
    spool_new_id(m.id);
    char *err = NULL;
    int fd = spool_open_data(&ss, m.id, a, &err);
    CHECK(fd >= 0, "open data: %s", err ? err : "");
    if (fd < 0)
        return;
    CHECK(write(fd, "body\n", 5) == 5, "write body");
    m.login = "postern";
    m.uid = 100;
    m.gid = 101;
    m.sender = "";
    m.received = 1700000000;
    m.received_usec = 5;
    arena *tainted = arena_new("t", true);
    m.helo_name = arena_strdup(tainted, "evil\xff");
    m.host_address = "2001:db8::1";
    m.host_port = 25;
    m.received_protocol = "esmtps";
    m.body_linecount = 1;
    m.deliver_firsttime = true;
    spool_var v = { 'm', "_x", "line1\nline2", NULL };
    m.vars = &v;
    const char *done[] = { "d@x", "a@x", "c@x", "b@x", "e@x" };
    m.nonrcpt = done;
    m.n_nonrcpt = 5;
    spool_rcpt r1 = { "u1@example.org", NULL, 0, NULL, -1 };
    spool_rcpt r2 = { "u2@example.org", "rfc822;U2@example.org", SPOOL_DSN_FAILURE | SPOOL_DSN_DELAY, NULL, -1 };
    spool_add_rcpt(&m, a, &r1);
    spool_add_rcpt(&m, a, &r2);
    const char *h1 = "Subject: multi\n line\n";
    spool_add_header(&m, a, spool_header_type(h1), h1, strlen(h1));
    const char *h2 = "from: x@y\n";
    spool_add_header(&m, a, spool_header_type(h2), h2, strlen(h2));
    CHECK(spool_commit(&ss, &m, fd, a, &err) == ST_OK, "commit: %s", err ? err : "");
    close(fd);
    char path[PATH_MAX];
    struct stat sb;
    CHECK(stat(spool_path(&ss, m.id, 'H', path, sizeof path), &sb) == 0, "-H in split dir %s", path);
    CHECK(path[strlen(dir) + 7] == m.id[5], "split subdirectory is id[5]");
    spool_msg *r = NULL;
    CHECK(spool_read_header(&ss, m.id, a, &r, &err) == ST_OK, "read back: %s", err ? err : "");
    if (!r) {
        arena_free(tainted);
        return;
    }
    CHECK_STR(r->sender, "", "bounce sender");
    CHECK_STR(r->helo_name, "evil\xff", "helo");
    CHECK_STR(r->host_address, "2001:db8::1", "IPv6 host");
    CHECK(r->n_nonrcpt == 5, "non-recipient tree size");
    int found = 0;
    for (int i = 0; i < r->n_nonrcpt; i++)
        for (int j = 0; j < 5; j++)
            found += strcmp(r->nonrcpt[i], done[j]) == 0;
    CHECK(found == 5, "non-recipient tree content");
    CHECK(r->n_rcpt == 2 && !strcmp(r->rcpt[1].orcpt, "rfc822;U2@example.org")
          && r->rcpt[1].dsn_flags == (SPOOL_DSN_FAILURE | SPOOL_DSN_DELAY), "DSN round trip");
    CHECK(r->vars && !strcmp(r->vars->value, "line1\nline2") && r->vars->kind == 'm', "acl var with newline");
    CHECK(r->headers && r->headers->type == ' ' && r->headers->next && r->headers->next->type == 'F', "header types");
    CHECK(r->headers && r->headers->len == strlen(h1), "header length");
    FILE *f = fopen(path, "r");
    char line[256] = "";
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "--helo_name", 11) == 0)
            break;
    CHECK(strncmp(line, "--helo_name", 11) == 0, "tainted value marked with a second hyphen");
    if (f)
        fclose(f);
    spool_abandon(&ss, m.id, -1);
    CHECK(stat(path, &sb) != 0, "abandon removes -H");
    arena_free(tainted);
}

static void test_malformed(arena *a)
{
    spool_settings ss = { .directory = dir };
    static const char *const bad[] = {
        "",
        "1xUwzr-0007o7-0I-H\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\nalice\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\n<a>\n1 0\n-aclm _x 999\nshort\nXX\n0\n\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\n<a>\n1 0\nXX\n5\na@b\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\n<a>\n1 0\nXX\n1\na@b\n\n999  Subject: x\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\n<a>\n1 0\nYY a\n1\na@b\n\n",
        "1xUwzr-0007o7-0I-H\nroot 0 0\n<a>\n1 0\n-host_address [1.2.3.4]:99999\nXX\n0\n\n",
    };
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(spool_path(&ss, "1xUwzr-0007o7-0I", 'H', path, sizeof path), bad[i]);
        spool_msg *m = NULL;
        char *err = NULL;
        status st = spool_read_header(&ss, "1xUwzr-0007o7-0I", a, &m, &err);
        CHECK(st == ST_ERROR && err && strstr(err, "malformed"), "bad file %zu rejected (st=%d)", i, st);
    }
    unlink(path);
    spool_msg *m;
    char *err;
    CHECK(spool_read_header(&ss, "1xUwzr-0007o7-0X", a, &m, &err) == ST_NOTFOUND, "missing file");
}

int main(void)
{
    arena *a = arena_new("test", false);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_ids();
    test_exim_roundtrip(a);
    test_write_read(a);
    test_malformed(a);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    arena_free(a);
    return check_report("spool_test");
}
