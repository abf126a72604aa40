/* cmd_dmarc.c: "postern-auth dmarc" (SPF, DKIM and DMARC for a message on
 * stdin), "dmarc-report" (aggregate reports from a history file) and
 * "dmarc-orgdomain" (the organizational domain of a name). */
#include "msgauth/cli.h"
#include "msgauth/mail.h"
#include "msgauth/policy/cliutil.h"
#include "msgauth/policy/cmds.h"
#include "msgauth/policy/dmarc.h"
#include "msgauth/policy/dmarc_report.h"
#include "msgauth/sig/authres.h"
#include "msgauth/sig/dkim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DMARC_MAX_GIVEN 32
#define DMARC_SYNOPSIS "--ip IP --sender ADDR --helo NAME [--mode rfc9989|rfc7489] [--psl FILE]\n" \
    "    [--receiver HOST] [--dkim RESULT:DOMAIN[:SELECTOR]]... [--spf RESULT[:DOMAIN] | --no-spf]\n" \
    "    [--history FILE] [--job ID] [--failure-report FILE] [--forensic-sender ADDR]\n" \
    "    [--pct-roll 0-99] [--ar] < message"

static bool mode_parse(const char *s, dmarc_mode *m)
{
    if (strcasecmp(s, "rfc9989") == 0 || strcasecmp(s, "9989") == 0 || strcasecmp(s, "dmarcbis") == 0)
        *m = DMARC_MODE_RFC9989;
    else if (strcasecmp(s, "rfc7489") == 0 || strcasecmp(s, "7489") == 0)
        *m = DMARC_MODE_RFC7489;
    else
        return false;
    return true;
}

/* Append text to a file opened for appending, created 0640 if absent. */
static bool append_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return false;
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return false;
        }
        off += (size_t)w;
    }
    return close(fd) == 0;
}

typedef struct dmarc_cli {
    pol_common c;
    const char *ip, *sender, *helo, *psl_file, *receiver, *history, *job, *failrep, *fsender;
    const char *given_spf;
    bool no_spf, ar_only;
    dmarc_mode mode;
    int pct_roll;
    const char *given_dkim[DMARC_MAX_GIVEN];
    int ngiven_dkim;
} dmarc_cli;

static int parse_args(int argc, char **argv, dmarc_cli *o)
{
    memset(o, 0, sizeof *o);
    o->pct_roll = -1;
    for (int i = 1; i < argc; i++) {
        int r = pol_common_opt(&o->c, argc, argv, &i);
        if (r == -2) {
            pol_help(argv[0], DMARC_SYNOPSIS);
            return -1;
        }
        if (r < 0)
            return AUTH_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--ip") == 0) dst = &o->ip;
        else if (strcmp(a, "--sender") == 0) dst = &o->sender;
        else if (strcmp(a, "--helo") == 0) dst = &o->helo;
        else if (strcmp(a, "--psl") == 0) dst = &o->psl_file;
        else if (strcmp(a, "--receiver") == 0) dst = &o->receiver;
        else if (strcmp(a, "--history") == 0) dst = &o->history;
        else if (strcmp(a, "--job") == 0) dst = &o->job;
        else if (strcmp(a, "--failure-report") == 0) dst = &o->failrep;
        else if (strcmp(a, "--forensic-sender") == 0) dst = &o->fsender;
        else if (strcmp(a, "--spf") == 0) dst = &o->given_spf;
        else if (strcmp(a, "--no-spf") == 0) { o->no_spf = true; continue; }
        else if (strcmp(a, "--ar") == 0) { o->ar_only = true; continue; }
        else if (strcmp(a, "--mode") == 0 || strcmp(a, "--pct-roll") == 0 || strcmp(a, "--dkim") == 0) {
            const char *v = pol_optval(argc, argv, &i);
            if (!v)
                return AUTH_EXIT_USAGE;
            if (a[2] == 'm') {
                if (!mode_parse(v, &o->mode))
                    return pol_usage(argv[0], DMARC_SYNOPSIS);
            } else if (a[2] == 'p') {
                char *e;
                long n = strtol(v, &e, 10);
                if (*e || n < 0 || n > 99)
                    return pol_usage(argv[0], DMARC_SYNOPSIS);
                o->pct_roll = (int)n;
            } else {
                if (o->ngiven_dkim == DMARC_MAX_GIVEN || !strchr(v, ':'))
                    return pol_usage(argv[0], DMARC_SYNOPSIS);
                o->given_dkim[o->ngiven_dkim++] = v;
            }
            continue;
        } else
            return pol_usage(argv[0], DMARC_SYNOPSIS);
        if (!(*dst = pol_optval(argc, argv, &i)))
            return AUTH_EXIT_USAGE;
    }
    if (!o->no_spf && !o->given_spf && !o->ip)
        return pol_usage(argv[0], DMARC_SYNOPSIS);
    return 0;
}

static int exit_for(dmarc_outcome o)
{
    if (o == DMARC_ACCEPT)
        return AUTH_EXIT_OK;
    return o == DMARC_TEMPERROR ? AUTH_EXIT_TEMP : AUTH_EXIT_NOTPASS;
}

int cmd_dmarc(int argc, char **argv)
{
    dmarc_cli o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? AUTH_EXIT_OK : rc;
    arena *a = arena_new("dmarc", false);
    void *psl = NULL;
    rc = AUTH_EXIT_TEMP;
    dns_iface dns;
    if (!pol_dns(&o.c, a, &dns))
        goto out;
    char *err = NULL;
    if (o.mode == DMARC_MODE_RFC7489 && !(psl = dmarc_psl_load(o.psl_file, &err, a))) {
        fprintf(stderr, "postern-auth dmarc: %s\n", err);
        rc = AUTH_EXIT_USAGE;
        goto out;
    }
    size_t len;
    char *text = pol_read_file("-", a, &len);
    mail_msg m;
    if (!text || mail_parse(a, text, len, &m, &err) != ST_OK) {
        fprintf(stderr, "postern-auth dmarc: cannot read the message: %s\n", err ? err : "read error");
        rc = AUTH_EXIT_USAGE;
        goto out;
    }
    const char *receiver = o.receiver ? o.receiver : "localhost";

    /* SPF: given, off, or checked now */
    dmarc_input in = { .mode = o.mode, .psl = psl, .pct_roll = o.pct_roll, .spf = SPF_NONE };
    spf_query sq = { .ip = o.ip, .sender = o.sender, .helo = o.helo, .receiver = receiver,
                     .now = o.c.now };
    spf_outcome so = { 0 };
    bool spf_done = false;
    if (o.given_spf) {
        char *g = arena_strdup(a, o.given_spf), *colon = strchr(g, ':');
        if (colon)
            *colon = 0;
        int r = spf_result_parse(g);
        if (r < 0) {
            rc = pol_usage(argv[0], DMARC_SYNOPSIS);
            goto out;
        }
        in.spf = (spf_result)r;
        in.spf_domain = colon ? colon + 1 : NULL;
    } else if (!o.no_spf) {
        spf_check(&sq, &dns, a, &so);
        in.spf = so.result;
        in.spf_domain = so.domain;
        spf_done = true;
    }
    if (!in.spf_domain && o.sender) {
        const char *at = strrchr(o.sender, '@');
        in.spf_domain = at ? at + 1 : o.sender;
    }
    if (!in.spf_domain || !*in.spf_domain)
        in.spf_domain = o.helo;
    in.spf_helo = !o.sender || !*o.sender;

    /* DKIM: given, or verified now */
    dmarc_dkim *dk = arena_calloc(a, sizeof *dk * (DKIM_MAX_SIGS + DMARC_MAX_GIVEN));
    int nd = 0;
    dkim_result *dres = NULL;
    int ndres = 0;
    if (o.ngiven_dkim) {
        for (int i = 0; i < o.ngiven_dkim; i++) {
            char *g = arena_strdup(a, o.given_dkim[i]);
            char *d = strchr(g, ':');
            *d++ = 0;
            char *s = strchr(d, ':');
            if (s)
                *s++ = 0;
            dk[nd++] = (dmarc_dkim){ .domain = d, .selector = s ? s : "", .result = g };
        }
    } else {
        dkim_verify_opts vo = { .dns = dns, .now = o.c.now, .min_rsa_bits = 1024,
                                .min_ed25519_bits = 250 };
        ndres = dkim_verify(a, &m, &vo, &dres);
        for (int i = 0; i < ndres && nd < DKIM_MAX_SIGS; i++)
            dk[nd++] = (dmarc_dkim){ .domain = dres[i].domain, .selector = dres[i].selector,
                                     .result = dres[i].temperror ? "temperror"
                                               : dkim_status_name(dres[i].status) };
    }
    in.dkim = dk;
    in.ndkim = nd;

    /* From */
    const char **froms = NULL;
    int nfh = 0;
    in.nfrom = mail_from_domains(a, &m, &froms, &nfh);
    in.from_domains = froms;
    in.nfrom_headers = nfh;

    dmarc_result r;
    dmarc_evaluate(&in, &dns, a, &r);

    /* Authentication-Results: spf, dkim..., dmarc */
    authres_result ar[DKIM_MAX_SIGS + DMARC_MAX_GIVEN + 2];
    int nar = 0;
    if (spf_done || o.given_spf) {
        authres_prop *pp = arena_calloc(a, sizeof *pp);
        *pp = (authres_prop){ "smtp", in.spf_helo ? "helo" : "mailfrom",
                              in.spf_helo ? (o.helo ? o.helo : "") : (o.sender ? o.sender : "") };
        ar[nar++] = (authres_result){ .method = "spf", .result = spf_result_name(in.spf),
                                      .props = pp, .nprops = 1 };
    }
    for (int i = 0; i < ndres; i++)
        dkim_authres(a, &dres[i], &ar[nar++]);
    for (int i = 0; i < o.ngiven_dkim; i++) {
        authres_prop *pp = arena_calloc(a, sizeof *pp);
        *pp = (authres_prop){ "header", "d", dk[i].domain };
        ar[nar++] = (authres_result){ .method = "dkim", .result = dk[i].result, .props = pp,
                                      .nprops = 1 };
    }
    {
        authres_prop *pp = arena_calloc(a, sizeof *pp * 4);
        int np = 0;
        if (r.from_domain && *r.from_domain)
            pp[np++] = (authres_prop){ "header", "from", r.from_domain };
        if (r.have_record) {
            pp[np++] = (authres_prop){ "policy", "dmarc", dmarc_pol_name(r.applied) };
            if (r.mode == DMARC_MODE_RFC9989) {    /* RFC 9989's polrec ptype */
                pp[np++] = (authres_prop){ "polrec", "p", dmarc_pol_name(r.rec.p) };
                if (strcmp(r.used_domain, r.from_domain) != 0)
                    pp[np++] = (authres_prop){ "polrec", "domain", r.used_domain };
            }
        }
        ar[nar++] = (authres_result){ .method = "dmarc", .result = r.ar, .comment = r.ar_reason,
                                      .props = pp, .nprops = np };
    }
    char *arh = authres_header(a, receiver, ar, nar);

    /* history record */
    if (o.history && r.have_record) {
        dmarc_hist h;
        const char *mdom = o.sender && strrchr(o.sender, '@') ? strrchr(o.sender, '@') + 1 : NULL;
        dmarc_hist_from_result(&h, &r, &in, o.job ? o.job : "-", receiver,
                               o.c.now ? (long long)o.c.now : (long long)time(NULL),
                               o.ip, mdom, a);
        if (!append_file(o.history, dmarc_hist_format(&h, a))) {
            fprintf(stderr, "postern-auth dmarc: cannot write %s: %s\n", o.history, strerror(errno));
            goto out;
        }
    }
    /* failure report */
    bool fail_written = false;
    if (o.failrep && dmarc_fail_wanted(&r, &in)) {
        const char *to = dmarc_uri_mailtos(r.rec.ruf, a);
        if (to) {
            /* the header section: everything before the body separator */
            gstr hs;
            gstr_init(&hs, a, 1024);
            for (int i = 0; i < m.nhdr; i++)
                gstr_catn(&hs, m.hdr[i].raw, m.hdr[i].raw_len);
            const char *arv = strchr(arh, ':') ? strchr(arh, ':') + 2 : arh;
            dmarc_fail_opts fo = {
                .forensic_sender = o.fsender ? o.fsender : arena_printf(a, "do-not-reply@%s", receiver),
                .to = to, .reporter = receiver, .ip = o.ip,
                .mfrom = o.sender ? o.sender : "", .authres = arv, .now = o.c.now,
                .spf_domain = in.spf_domain, .spf_record = so.record,
                .headers = hs.s, .headers_len = hs.len,
            };
            char *msg = dmarc_fail_build(&r, &fo, a);
            FILE *f = strcmp(o.failrep, "-") == 0 ? stdout : fopen(o.failrep, "w");
            if (!f || fputs(msg, f) < 0 || (f != stdout && fclose(f) != 0)) {
                fprintf(stderr, "postern-auth dmarc: cannot write %s\n", o.failrep);
                goto out;
            }
            fail_written = true;
        }
    }

    if (o.c.json) {
        gstr g;
        gstr_init(&g, a, 1024);
        bool first = true;
        gstr_catc(&g, '{');
        json_kv(&g, &first, "outcome", dmarc_outcome_name(r.outcome));
        json_kv(&g, &first, "status_text", r.status_text);
        json_kv(&g, &first, "detail", r.detail);
        json_kv(&g, &first, "result", r.ar);
        json_kv(&g, &first, "reason", r.ar_reason);
        json_kv(&g, &first, "from_domain", r.from_domain);
        json_kv(&g, &first, "used_domain", r.used_domain);
        json_kv(&g, &first, "org_domain", r.org_domain);
        json_kv(&g, &first, "domain_policy", r.domain_policy);
        json_kv(&g, &first, "disposition", r.have_record && strcmp(r.ar, "fail") == 0
                                           ? dmarc_pol_name(r.disposition) : NULL);
        json_kb(&g, &first, "spf_aligned", r.spf_aligned);
        json_kb(&g, &first, "dkim_aligned", r.dkim_aligned);
        json_kb(&g, &first, "sampled_out", r.sampled_out);
        json_kv(&g, &first, "spf", spf_result_name(in.spf));
        json_kv(&g, &first, "spf_domain", in.spf_domain);
        json_kb(&g, &first, "failure_report", fail_written);
        json_kv(&g, &first, "authentication_results", arh);
        gstr_cat(&g, "}\n");
        fputs(g.s, stdout);
    } else if (o.ar_only) {
        fputs(arh, stdout);
    } else if (!fail_written || strcmp(o.failrep, "-") != 0) {
        printf("%s %s %s\n", dmarc_outcome_name(r.outcome),
               r.used_domain && *r.used_domain ? r.used_domain : "-",
               r.domain_policy && *r.domain_policy ? r.domain_policy : "-");
    }
    rc = exit_for(r.outcome);
out:
    dmarc_psl_free(psl);
    pol_dns_free(&o.c);
    arena_free(a);
    return rc;
}

/* ---- dmarc-report ------------------------------------------------------ */

#define REPORT_SYNOPSIS "--history FILE --org NAME --email ADDR --from T --to T\n" \
    "    [--outdir DIR | --stdout] [--mail] [--receiver DOMAIN] [--domain D]\n" \
    "    [--mode rfc9989|rfc7489] [--report-id PREFIX]"

static bool ll_arg(const char *s, long long *v)
{
    char *e;
    errno = 0;
    *v = strtoll(s, &e, 10);
    return !errno && *s && !*e && *v >= 0;
}

int cmd_dmarc_report(int argc, char **argv)
{
    pol_common c = { 0 };
    const char *hist = NULL, *outdir = ".", *only = NULL, *from = NULL, *to = NULL;
    dmarc_agg_opts ao = { 0 };
    bool to_stdout = false, mail = false;
    for (int i = 1; i < argc; i++) {
        int r = pol_common_opt(&c, argc, argv, &i);
        if (r == -2)
            return pol_help(argv[0], REPORT_SYNOPSIS);
        if (r < 0)
            return AUTH_EXIT_USAGE;
        if (r > 0)
            continue;
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--history") == 0) dst = &hist;
        else if (strcmp(a, "--org") == 0) dst = &ao.org_name;
        else if (strcmp(a, "--email") == 0) dst = &ao.email;
        else if (strcmp(a, "--from") == 0) dst = &from;
        else if (strcmp(a, "--to") == 0) dst = &to;
        else if (strcmp(a, "--outdir") == 0) dst = &outdir;
        else if (strcmp(a, "--domain") == 0) dst = &only;
        else if (strcmp(a, "--report-id") == 0) dst = &ao.report_id_prefix;
        else if (strcmp(a, "--receiver") == 0) dst = &ao.receiver;
        else if (strcmp(a, "--stdout") == 0) { to_stdout = true; continue; }
        else if (strcmp(a, "--mail") == 0) { mail = true; continue; }
        else if (strcmp(a, "--mode") == 0) {
            const char *v = pol_optval(argc, argv, &i);
            if (!v || !mode_parse(v, &ao.mode))
                return pol_usage(argv[0], REPORT_SYNOPSIS);
            continue;
        } else
            return pol_usage(argv[0], REPORT_SYNOPSIS);
        if (!(*dst = pol_optval(argc, argv, &i)))
            return AUTH_EXIT_USAGE;
    }
    if (!hist || !ao.org_name || !ao.email || !from || !to || !ll_arg(from, &ao.begin) ||
        !ll_arg(to, &ao.end) || ao.end <= ao.begin)
        return pol_usage(argv[0], REPORT_SYNOPSIS);
    arena *a = arena_new("dmarc-report", false);
    int rc = AUTH_EXIT_USAGE;
    size_t len;
    char *text = pol_read_file(hist, a, &len);
    if (!text) {
        fprintf(stderr, "postern-auth dmarc-report: cannot read %s: %s\n", hist, strerror(errno));
        goto out;
    }
    dmarc_hist *h;
    int bad;
    int nh = dmarc_hist_parse(text, len, a, &h, &bad);
    if (bad)
        fprintf(stderr, "postern-auth dmarc-report: %s: %d malformed lines skipped\n", hist, bad);
    dmarc_agg_report *rep;
    int nr = dmarc_agg_build(h, nh, &ao, a, &rep);
    gstr js;
    gstr_init(&js, a, 256);
    gstr_cat(&js, "[");
    rc = AUTH_EXIT_OK;
    int written = 0;
    for (int i = 0; i < nr; i++) {
        if (only && strcasecmp(only, rep[i].domain) != 0)
            continue;
        if (to_stdout) {
            fputs(rep[i].xml, stdout);
        } else {
            char *path = arena_printf(a, "%s/%s", outdir, rep[i].filename);
            FILE *f = fopen(path, "w");
            if (!f || fputs(rep[i].xml, f) < 0 || fclose(f) != 0) {
                fprintf(stderr, "postern-auth dmarc-report: cannot write %s: %s\n", path,
                        strerror(errno));
                rc = AUTH_EXIT_TEMP;
                continue;
            }
            const char *mailpath = NULL;
            char *msg = mail ? dmarc_agg_mail(&rep[i], &ao, c.now, a) : NULL;
            if (msg) {
                mailpath = arena_printf(a, "%s.eml", path);
                FILE *mf = fopen(mailpath, "w");
                if (!mf || fputs(msg, mf) < 0 || fclose(mf) != 0) {
                    fprintf(stderr, "postern-auth dmarc-report: cannot write %s\n", mailpath);
                    rc = AUTH_EXIT_TEMP;
                    mailpath = NULL;
                }
            }
            if (c.json) {
                bool first = true;
                gstr_cat(&js, written ? ", {" : "{");
                json_kv(&js, &first, "domain", rep[i].domain);
                json_kv(&js, &first, "file", path);
                json_kv(&js, &first, "rua", rep[i].rua);
                json_kv(&js, &first, "mail", mailpath);
                json_ki(&js, &first, "messages", rep[i].messages);
                json_ki(&js, &first, "rows", rep[i].records);
                gstr_cat(&js, "}");
            } else {
                printf("%s %s %d\n", path, rep[i].rua ? rep[i].rua : "-", rep[i].messages);
            }
        }
        written++;
    }
    if (c.json && !to_stdout)
        printf("%s]\n", js.s);
out:
    arena_free(a);
    return rc;
}

/* ---- dmarc-orgdomain --------------------------------------------------- */

int cmd_dmarc_orgdomain(int argc, char **argv)
{
    pol_common c = { 0 };
    dmarc_mode mode = DMARC_MODE_RFC9989;
    const char *psl_file = NULL;
    int first_name = 0;
    bool registrable = false;
    for (int i = 1; i < argc; i++) {
        int r = pol_common_opt(&c, argc, argv, &i);
        if (r == -2)
            return pol_help(argv[0], "[--mode rfc9989|rfc7489] [--psl FILE] [--registrable] DOMAIN...");
        if (r < 0)
            return AUTH_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--mode") == 0) {
            const char *v = pol_optval(argc, argv, &i);
            if (!v || !mode_parse(v, &mode))
                return pol_usage(argv[0], "[--mode rfc9989|rfc7489] [--psl FILE] DOMAIN...");
        } else if (strcmp(argv[i], "--psl") == 0) {
            if (!(psl_file = pol_optval(argc, argv, &i)))
                return AUTH_EXIT_USAGE;
        } else if (strcmp(argv[i], "--registrable") == 0) {
            registrable = true;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return pol_usage(argv[0], "[--mode rfc9989|rfc7489] [--psl FILE] [--registrable] DOMAIN...");
        } else if (!first_name) {
            first_name = i;
        }
    }
    if (!first_name)
        return pol_usage(argv[0], "[--mode rfc9989|rfc7489] [--psl FILE] DOMAIN...");
    arena *a = arena_new("orgdomain", false);
    int rc = AUTH_EXIT_OK;
    char *err = NULL;
    void *psl = NULL;
    dns_iface dns = { 0 };
    if (mode == DMARC_MODE_RFC7489 && !(psl = dmarc_psl_load(psl_file, &err, a))) {
        fprintf(stderr, "postern-auth dmarc-orgdomain: %s\n", err);
        arena_free(a);
        return AUTH_EXIT_USAGE;
    }
    if (mode == DMARC_MODE_RFC9989 && !pol_dns(&c, a, &dns)) {
        arena_free(a);
        return AUTH_EXIT_TEMP;
    }
    gstr js;
    gstr_init(&js, a, 256);
    gstr_catc(&js, '[');
    for (int i = first_name; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            if (strcmp(argv[i], "--json") != 0 && strcmp(argv[i], "--registrable") != 0)
                i++;
            continue;
        }
        const char *org;
        bool temp = false;
        if (registrable && mode == DMARC_MODE_RFC7489) {
            org = dmarc_psl_registrable(psl, argv[i], a);
        } else if (dmarc_org_domain(argv[i], mode, psl, &dns, a, &org) != ST_OK) {
            org = NULL;
            temp = true;
            rc = AUTH_EXIT_TEMP;
        }
        if (c.json) {
            bool first = true;
            gstr_cat(&js, js.len > 1 ? ", {" : "{");
            json_kv(&js, &first, "domain", argv[i]);
            json_kv(&js, &first, "org_domain", org);
            json_kb(&js, &first, "temperror", temp);
            gstr_catc(&js, '}');
        } else {
            printf("%s %s\n", argv[i], temp ? "temperror" : org ? org : "-");
        }
    }
    if (c.json)
        printf("%s]\n", js.s);
    dmarc_psl_free(psl);
    pol_dns_free(&c);
    arena_free(a);
    return rc;
}
