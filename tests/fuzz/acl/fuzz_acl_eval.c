/* fuzz_acl_eval.c: the whole engine on arbitrary ACL text: parse, then run
 * it at the stage chosen by the first byte, with a session state that
 * has a host, sender, recipient and headers.  Commands, file reads and
 * query lookups are refused in expansions, DNS answers come from a stub
 * that knows nothing, hints databases live in a private directory, logs go
 * to /dev/null, "delay" is not obeyed (-bh mode) and "udpsend" is skipped. */
#include "acl/acl.h"
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "dns/dns.h"
#include "expand/expand.h"
#include "spool/spool.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT 4096

static status stub_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    (void)ctx; (void)name; (void)type; (void)a;
    memset(out, 0, sizeof *out);
    out->st = ST_NOTFOUND;
    out->nxdomain = true;
    return ST_NOTFOUND;
}
static const dns_iface stub_dns = { stub_lookup, NULL };
static spool_header hdr_to = { 'T', "To: a@b.example, \"x y\" <c@d>\n", 30, NULL };
static spool_header hdr_from = { 'F', "From: <e@f.example>\n", 20, &hdr_to };
static const char *rcpts[] = { "a@b.example", "z@y.example" };

static char hints_dir[] = "/tmp/fuzz_acl_eval.XXXXXX";

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nftw(hints_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    state_init("fuzz_acl_eval");
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "r", stdin))
        abort();
    char *dir = mkdtemp(hints_dir);
    if (!dir)
        abort();
    atexit(cleanup);
    char *text = arena_printf(ps.config,
        "spool_directory = %s\n"
        "hostlist nets = 10.0.0.0/8 : 192.0.2.0/24\n"
        "domainlist doms = b.example : *.y.example\n"
        "begin acl\n"
        "sub:\n  accept hosts = +nets\n  deny message = sub $acl_arg1\n", dir);
    config *c;
    char *err;
    if (config_load_string(text, "fuzz", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "fuzz_acl_eval: config: %s\n", err);
        abort();
    }
    config_set_current(c);
    log_settings ls = { .file_path = "/dev/null", .spool_directory = dir };
    log_configure(&ls);
    ps.exp_forbid = EXPAND_FORBID_RUN | EXPAND_FORBID_READFILE | EXPAND_FORBID_QUERY;
    ps.acl_dns = &stub_dns;
    ps.host_checking = true;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    /* no packets to the network; no ACL files or ${acl} loops through files */
    if (strstr(text, "udpsend") || text[0] == '/' || strstr(text, "= /") || strstr(text, "acl {/")) {
        free(text);
        return 0;
    }
    acl_where where = (acl_where)(data[0] % ACL_WHERE__COUNT);
    ps.sender_host_address = "192.0.2.1";
    ps.sender_helo_name = "helo.example";
    ps.sender_address = "s@sender.example";
    ps.local_part = "a";
    ps.domain = "b.example";
    ps.message_size = 1234;
    ps.msg_headers = &hdr_from;
    ps.recipients = rcpts;
    ps.recipients_count = 2;
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    status st = acl_check(where, text, &sess, ps.scratch, &res);
    if (st != res.st || (st == ST_ERROR && !res.error))
        abort();
    acl_session_message_reset(&sess);
    expand_reset_message();
    arena_reset(ps.scratch);
    arena_reset(ps.msg);
    arena_reset(ps.msg_t);
    arena_reset(ps.conn);
    ps.acl_c = NULL;
    /* values the engine keeps in connection or message memory, just reset */
    ps.sender_rate = ps.sender_rate_limit = ps.sender_rate_period = NULL;
    ps.host_data = ps.domain_data = ps.local_part_data = ps.sender_data = ps.recipient_data = NULL;
    ps.dnslist_domain = ps.dnslist_matched = ps.dnslist_text = ps.dnslist_value = NULL;
    ps.acl_verify_message = NULL;
    ps.local_part_caseful = NULL;
    free(text);
    return 0;
}
