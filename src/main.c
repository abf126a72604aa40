/* main.c: the command line.  Reads Exim's options, loads the
 * configuration and hands over to the module for the mode; nothing else
 * happens here. */
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "lookup/lookup.h"
#include "smtp/daemon.h"
#include "smtp/local.h"
#include "deliver/deliver.h"
#include "route/route.h"
#include "route/filter.h"
#include "spool/queue.h"
#include "smtp/session.h"
#include "message/rewrite.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEFINES 64

enum mode { M_NONE, M_BE, M_BP, M_BV, M_BD, M_BS, M_BH, M_QLIST, M_MSG, M_EDIT, M_BM, M_DELIVER, M_QRUN, M_BT, M_BF, M_BRW };

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "postern: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return EXIT_FAILURE;
}

/* -bV: what this binary can do now (the README's feature table has the
 * status of everything else). */
static void print_version(FILE *f, const config *c)
{
    fprintf(f, "postern version %s (speaks Exim %s configuration and expansions)\n", POSTERN_VERSION, "4.99");
    fprintf(f, "Modes: -be -bP -bV -bd -bs -bh -bm -t -brw -bt -bv -bf -bF -q -M -Mg -bp -bpa -bpc -bpu -Mvh -Mvb -Mvl -Mrm -Mf -Mt -Mmd -Mmad -Mar -Mes\n");
    fprintf(f, "Routers: accept dnslookup manualroute redirect\n");
    fprintf(f, "Transports: appendfile autoreply lmtp pipe queuefile smtp\n");
    fprintf(f, "Lookups (built-in):");
    for (const lookup_driver *const *d = lookup_drivers; *d; d++)
        fprintf(f, " %s", (*d)->name);
    fprintf(f, "\nConfiguration sections read: main acl routers transports authenticators retry rewrite\n");
    fprintf(f, "Configuration file is %s\n", c && *c->filename ? c->filename : "the built-in default");
}

/* "ip" or "ip.port" (Exim's -bh and -oMa syntax) */
static bool split_host_port(const char *s, char *addr, size_t len, int *port)
{
    unsigned char buf[16];
    *port = 0;
    snprintf(addr, len, "%s", s);
    if (inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1)
        return true;
    char *dot = strrchr(addr, '.');
    if (!dot)
        return false;
    *dot = '\0';
    char *e;
    long p = strtol(dot + 1, &e, 10);
    if (*e || p < 0 || p > 65535)
        return false;
    *port = (int)p;
    return inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1;
}

int main(int argc, char **argv)
{
    state_init(argv[0]);
    const char *defines[MAX_DEFINES + 1];
    int ndefines = 0;
    config_load_args la = { 0 };
    daemon_args da = { 0 };
    const char *bh_addr = NULL, *oma = NULL, *omi = NULL;
    queue_list_mode qmode = QL_ALL;
    char maction = 0;
    local_args lo = { 0 };
    deliver_opts deliver_o = { 0 };
    char bt_kind = 0;
    filter_test_args ft = { 0 };
    const char *brw_address = NULL;
    bool bt_sender = false;
    enum mode mode = M_NONE;
    /* the name it was called by: sendmail takes a message, mailq lists */
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (strcmp(base, "mailq") == 0)
        mode = M_QLIST;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-C") == 0) {
            if (++i >= argc)
                return usage_error("%s requires a file name", a);
            la.file = argv[i];
        } else if (strncmp(a, "-D", 2) == 0) {
            const char *d = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!d)
                return usage_error("%s requires a macro definition", a);
            if (ndefines == MAX_DEFINES)
                return usage_error("too many -D options (at most %s)", "64");
            defines[ndefines++] = d;
        } else if (strcmp(a, "-be") == 0) {
            mode = M_BE;
            i++;
            break;
        } else if (strcmp(a, "-bP") == 0) {
            mode = M_BP;
            i++;
            break;
        } else if (strcmp(a, "-bV") == 0) {
            mode = M_BV;
        } else if (strcmp(a, "-bd") == 0 || strcmp(a, "-bdf") == 0) {
            mode = M_BD;   /* with -q<time> given before or after */
            da.foreground = a[3] == 'f';
        } else if (strcmp(a, "-bp") == 0 || strcmp(a, "-bpc") == 0 || strcmp(a, "-bpu") == 0 ||
                   strcmp(a, "-bpa") == 0) {
            mode = M_QLIST;
            qmode = a[3] == 'c' ? QL_COUNT : a[3] == 'u' ? QL_UNDELIVERED : a[3] == 'a' ? QL_GENERATED : QL_ALL;
        } else if (strcmp(a, "-M") == 0 || strcmp(a, "-Mc") == 0 || strcmp(a, "-Mg") == 0) {
            mode = M_DELIVER;
            /* -M and -Mg: retry times ignored, frozen messages too; -Mc: neither */
            deliver_o.give_up = a[2] == 'g';
            deliver_o.force = deliver_o.thaw = a[2] != 'c';
            i++;
            break;
        } else if (strncmp(a, "-q", 2) == 0 && strncmp(a, "-qR", 3) != 0 && strncmp(a, "-qS", 3) != 0) {
            const char *q = a + 2;
            deliver_o.force = *q == 'f';
            if (*q == 'f')
                q++;
            if (*q == 'f') {
                deliver_o.thaw = true;
                q++;
            }
            if (*q) {
                long long secs;
                if (opt_parse_time(q, &secs) != ST_OK || secs <= 0)
                    return usage_error("malformed queue run interval in %s", a);
                da.queue_interval = (int)secs;
            }
            if (mode != M_BD)
                mode = da.queue_interval ? M_BD : M_QRUN;
        } else if (strcmp(a, "-bt") == 0 || strcmp(a, "-bv") == 0 || strcmp(a, "-bvs") == 0) {
            mode = M_BT;
            bt_kind = a[2];
            bt_sender = a[3] == 's';
            i++;
            break;
        } else if (strcmp(a, "-Mvh") == 0 || strcmp(a, "-Mvb") == 0 || strcmp(a, "-Mvl") == 0 ||
                   strcmp(a, "-Mrm") == 0 || strcmp(a, "-Mf") == 0 || strcmp(a, "-Mt") == 0) {
            mode = M_MSG;
            maction = a[2] == 'v' ? a[3] : a[2] == 'r' ? 'r' : a[2];
            i++;
            break;
        } else if (strcmp(a, "-Mmd") == 0 || strcmp(a, "-Mmad") == 0 || strcmp(a, "-Mar") == 0 ||
                   strcmp(a, "-Mes") == 0) {
            mode = M_EDIT;
            maction = a[2] == 'a' ? 'a' : a[2] == 'e' ? 's' : a[3] == 'a' ? 'A' : 'd';
            i++;
            break;
        } else if (strcmp(a, "-bf") == 0 || strcmp(a, "-bF") == 0) {
            /* filter testing: -bf user file, -bF system filter (both may be given) */
            if (++i >= argc)
                return usage_error("file name expected after %s", a);
            mode = M_BF;
            if (a[2] == 'f')
                ft.user_file = argv[i];
            else
                ft.system_file = argv[i];
        } else if (strcmp(a, "-bfd") == 0 || strcmp(a, "-bfl") == 0 || strcmp(a, "-bfp") == 0 || strcmp(a, "-bfs") == 0) {
            if (++i >= argc)
                return usage_error("string expected after %s", a);
            const char **slot = a[3] == 'd' ? &ft.domain : a[3] == 'l' ? &ft.local_part : a[3] == 'p' ? &ft.prefix : &ft.suffix;
            *slot = argv[i];
        } else if (strcmp(a, "-brw") == 0) {
            if (++i >= argc)
                return usage_error("%s requires an address", a);
            mode = M_BRW;
            brw_address = argv[i];
        } else if (strcmp(a, "-bs") == 0) {
            mode = M_BS;
        } else if (strcmp(a, "-bm") == 0) {
            mode = M_BM;
        } else if (strcmp(a, "-N") == 0) {
            ps.dont_deliver = true;     /* a debugging aid: nothing is delivered, "*>" is logged */
            ps.verbose = true;
        } else if (strcmp(a, "-v") == 0) {
            ps.verbose = true;
        } else if (strcmp(a, "-t") == 0) {
            lo.extract = true;
        } else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
            lo.dot_ok = true;
        } else if (strcmp(a, "-oitrue") == 0) {
            lo.dot_ok = true;
        } else if (strncmp(a, "-f", 2) == 0 || strncmp(a, "-r", 2) == 0) {
            const char *f = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!f)
                return usage_error("%s requires an address", a);
            lo.sender = strcmp(f, "<>") == 0 ? "" : f;
        } else if (strncmp(a, "-F", 2) == 0) {
            const char *f = a[2] ? a + 2 : (++i < argc ? argv[i] : NULL);
            if (!f)
                return usage_error("%s requires a name", a);
            lo.fullname = f;
        } else if (strcmp(a, "-odq") == 0) {
            lo.queue_only = true;
        } else if (strcmp(a, "-odi") == 0 || strcmp(a, "-odf") == 0) {
            lo.deliver_mode = 'i';
        } else if (strcmp(a, "-odb") == 0) {
            lo.deliver_mode = 'b';
        } else if ((strncmp(a, "-oe", 3) == 0 && a[3] && strchr("eqmpw", a[3]) && !a[4]) ||
                   (strncmp(a, "-e", 2) == 0 && a[2] && strchr("eqmpw", a[2]) && !a[3])) {
            /* errors in local input: -oem/-oew mail the sender (the default),
             * -oee too but exits 0, -oep/-oeq write to stderr */
            char e = a[1] == 'o' ? a[3] : a[2];
            lo.errors_stderr = e == 'p' || e == 'q';
            lo.errors_ok = e == 'e';
        } else if (strncmp(a, "-E", 2) == 0 && a[2]) {
            /* -E<id>: a report about message id (used by postern itself) */
            if (!spool_id_valid(a + 2))
                return usage_error("-E: %s is not a message id", a + 2);
            lo.message_ref = a + 2;
        } else if (strcmp(a, "-bh") == 0) {
            if (++i >= argc)
                return usage_error("%s requires an IP address", a);
            mode = M_BH;
            bh_addr = argv[i];
        } else if (strcmp(a, "-oX") == 0) {
            if (++i >= argc)
                return usage_error("%s requires a port or interface list", a);
            da.override = argv[i];
        } else if (strcmp(a, "-oP") == 0) {
            if (++i >= argc)
                return usage_error("%s requires a file name", a);
            da.pidfile = argv[i];
        } else if (strcmp(a, "-oMa") == 0 || strcmp(a, "-oMi") == 0) {
            if (++i >= argc)
                return usage_error("%s requires an address", a);
            if (getuid() != 0)
                return usage_error("%s is permitted only to root", a);
            if (a[3] == 'a')
                oma = argv[i];
            else
                omi = argv[i];
        } else if (strcmp(a, "-d") == 0 || strncmp(a, "-d+", 3) == 0 || strncmp(a, "-d-", 3) == 0) {
            ps.debug = true;
        } else {
            fprintf(stderr, "postern: option %s is not implemented yet "
                            "(implemented: -C -D -be -bP -bV -bd -bs -bh -bm -brw -bt -bv -bf -bF -bfd -bfl -bfp -bfs -t -i -oi -f -F -od* -q -qf -qff -q<time> -M -Mc -Mg -bp -bpa -bpc -bpu -Mvh -Mvb -Mvl -Mrm -Mf -Mt -Mmd -Mmad -Mar -Mes -oX -oP -oMa -oMi)\n", a);
            return 64;
        }
    }
    defines[ndefines] = NULL;
    la.defines = defines;
    /* recipients after the options mean "take a message" (sendmail), as
     * does -t */
    if (mode == M_NONE && (i < argc || lo.extract || strcmp(base, "sendmail") == 0))
        mode = M_BM;
    if (mode == M_NONE) {
        fprintf(stderr, "postern: no mode given (try -bV, -be or -bP)\n");
        return 64;
    }

    config *c;
    char *err;
    if (config_load(&la, &c, &err) != ST_OK) {
        fprintf(stderr, "postern %s\n", err);
        /* and to the paniclog, when the configuration read so far says where */
        if (la.err_log_file_path || la.err_spool_directory) {
            log_settings ls = { .file_path = la.err_log_file_path, .spool_directory = la.err_spool_directory };
            log_configure(&ls);
            log_write(LOG_PANIC | LOG_NOMAIN, "postern %s", err);
        }
        return EXIT_FAILURE;
    }
    config_set_current(c);
    log_settings ls = {
        .file_path = cfg_str(MO_log_file_path),
        .spool_directory = cfg_str(MO_spool_directory),
        .pid = logsel_on(&c->logsel, LS_PID),
        .testing = mode == M_BH,
        .verbose = ps.verbose,
    };
    log_configure(&ls);

    int rc = EXIT_SUCCESS;
    bool admin = getuid() == 0 || geteuid() == 0;
    switch (mode) {
    case M_BV:
        print_version(stdout, c);
        break;
    case M_BP:
        if (i >= argc) {
            config_print(c, "all", stdout, admin);
            break;
        }
        for (; i < argc; i++) {
            const char *n = argv[i];
            /* two-word forms: router NAME, transport NAME, macro NAME, ... */
            static const char *const two[] = { "router", "transport", "authenticator", "macro" };
            for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
                if (strcmp(n, two[k]) == 0 && i + 1 < argc) {
                    n = arena_printf(ps.scratch, "%s %s", argv[i], argv[i + 1]);
                    i++;
                    break;
                }
            if (!config_print(c, n, stdout, admin))
                rc = EXIT_FAILURE;
        }
        break;
    case M_BE:
        rc = expand_test_mode(argc - i, argv + i);
        break;
    case M_DELIVER:
        if (i >= argc) {
            fprintf(stderr, "postern: no message ids given after -M\n");
            rc = EXIT_FAILURE;
            break;
        }
        for (; i < argc; i++) {
            /* locked or frozen: silent, as Exim (the log says so with +skip_delivery) */
            status st = deliver_message(argv[i], &deliver_o);
            if (st == ST_ERROR) {
                fprintf(stderr, "postern: cannot deliver %s (see the panic log)\n", argv[i]);
                rc = EXIT_FAILURE;
            }
        }
        break;
    case M_QRUN:
        rc = deliver_queue_run(&deliver_o);
        break;
    case M_BF:
        ft.sender = lo.sender;
        ft.dot_ends = !lo.dot_ok;
        rc = filter_test_mode(&ft);
        break;
    case M_BRW: {
        rewrite_set rs;
        rewrite_set_config(c, ps.scratch, &rs);
        rewrite_test(&rs, brw_address, stdout);
        break;
    }
    case M_BT:
        rc = route_test(argv + i, argc - i, bt_kind == 'v', bt_sender, stdout);
        break;
    case M_BM:
        lo.rcpt = argv + i;
        lo.nrcpt = argc - i;
        rc = local_receive(&lo);
        break;
    case M_QLIST:
    case M_MSG: {
        spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
        if (mode == M_QLIST) {
            rc = queue_list(&ss, qmode, stdout);
        } else if (i >= argc) {
            fprintf(stderr, "postern: no message ids given after -M option\n");
            rc = EXIT_FAILURE;
        } else {
            rc = queue_action(&ss, maction, argv + i, argc - i, stdout);
        }
        break;
    }
    case M_EDIT: {
        spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
        if (i >= argc) {
            fprintf(stderr, "postern: no message ids given after -M option\n");
            rc = EXIT_FAILURE;
        } else if (maction == 'A') {
            for (; i < argc; i++)
                if (queue_edit(&ss, 'A', argv[i], NULL, 0, stdout) != 0)
                    rc = EXIT_FAILURE;
            putchar('\n');                /* (Exim ends a list of ids so) */
        } else {
            /* the message id, then the addresses (parsed as Exim parses them) */
            arena *ar = arena_new("edit", false);
            int n = argc - i - 1;
            queue_addr *qa = arena_calloc(ar, sizeof *qa * (size_t)(n + 1));
            addr_opts ao = rewrite_addr_opts();
            for (int k = 0; k < n; k++) {
                addr_span sp;
                const char *e = NULL;
                qa[k].arg = argv[i + 1 + k];
                qa[k].addr = addr_extract(ar, qa[k].arg, &ao, NULL, maction == 's', &sp, &e);
                if (!qa[k].addr)
                    qa[k].err = e ? e : "malformed address";
                else if (*qa[k].addr && sp.domain == 0)
                    qa[k].err = "domain missing";
            }
            rc = queue_edit(&ss, maction, argv[i], qa, n, stdout) != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
            arena_free(ar);
        }
        break;
    }
    case M_BD:
        da.load = &la;
        rc = daemon_run(&da);
        break;
    case M_BS:
    case M_BH: {
        smtp_params sp = { .mode = mode == M_BH ? SMTP_BH : SMTP_BS, .in = 0, .out = 1,
                           .queue_only = lo.queue_only, .deliver_mode = lo.deliver_mode, .fullname = lo.fullname };
        char addr[64];
        const char *hp = mode == M_BH ? bh_addr : oma;
        if (hp && !split_host_port(hp, addr, sizeof addr, &sp.remote_port)) {
            fprintf(stderr, "postern: malformed IP address \"%s\"\n", hp);
            rc = EXIT_FAILURE;
            break;
        }
        if (hp)
            sp.remote_ip = addr;
        char laddr[64];
        if (omi && split_host_port(omi, laddr, sizeof laddr, &sp.local_port))
            sp.local_ip = laddr;
        rc = smtp_session(&sp);
        if (mode == M_BH)
            rc = EXIT_SUCCESS;      /* -bh always succeeds, as Exim's */
        break;
    }
    case M_NONE:
        break;
    }
    fflush(stdout);
    config_free(c);
    return rc;
}
