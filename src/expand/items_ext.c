/* items_ext.c: expansion items that reach outside the process or need
 * keys or charsets: ${run} (a command without a shell, output in $value,
 * exit code in $runrc), ${readsocket}, ${acl}, the BATV items ${prvs} and
 * ${prvscheck}, and ${imapfolder}. */
#include "expand_int.h"
#include "expand.h"
#include "config/config.h"
#include "acl/acl.h"
#include "config/config.h"
#include "core/list.h"
#include "dns/dns.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_MAX_ARGS    256
#define RUN_TIMEOUT_MS  60000              /* Exim's 60 s for the output */
#define RUN_MAX_OUTPUT  (16 * 1024 * 1024)

static void skip_ws(const char **sp)
{
    while (isspace((unsigned char)**sp))
        (*sp)++;
}

/* Split a command line as Exim's transports do: white space separates
 * arguments, "..." quotes with backslash escapes, '...' quotes literally. */
static int split_command(arena *a, const char *s, char **argv, int max)
{
    int n = 0;
    for (;;) {
        skip_ws(&s);
        if (!*s)
            break;
        if (n == max)
            return -1;
        gstr g;
        gstr_init(&g, a, 32);
        if (*s == '"') {
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && s[1]) {
                    s++;
                    switch (*s) {
                    case 'n': gstr_catc(&g, '\n'); break;
                    case 't': gstr_catc(&g, '\t'); break;
                    case 'r': gstr_catc(&g, '\r'); break;
                    default: gstr_catc(&g, *s); break;
                    }
                } else
                    gstr_catc(&g, *s);
            }
            if (*s)
                s++;
        } else if (*s == '\'') {
            for (s++; *s && *s != '\''; s++)
                gstr_catc(&g, *s);
            if (*s)
                s++;
        } else {
            while (*s && !isspace((unsigned char)*s))
                gstr_catc(&g, *s++);
        }
        argv[n++] = g.s;
    }
    argv[n] = NULL;
    return n;
}

/* Run argv, output into out; returns the exit code, -1 on timeout,
 * -2 on a signal (sig in *sig), -3 when the process could not be made. */
static int run_command(char **argv, gstr *out, int *sig)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -3;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -3;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 2);
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        umask(0077);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= RUN_TIMEOUT_MS) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(RUN_TIMEOUT_MS - el));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out->len + (size_t)n <= RUN_MAX_OUTPUT)
            gstr_catn(out, buf, (size_t)n);
    }
    close(pfd[0]);
    if (timed_out)
        kill(-pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out)
        return -1;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return -2;
    }
    return WEXITSTATUS(status);
}

status it_run(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    bool preexpand = false;
    status st;
    if (ps.exp_forbid & EXPAND_FORBID_RUN)
        return xfail(x, "running a command is not permitted");
    while (*s == ',') {
        s++;
        if (strncmp(s, "preexpand", 9) == 0) {
            preexpand = true;
            s += 9;
        } else {
            const char *t = s;
            while (isalpha((unsigned char)*t))
                t++;
            *sp = s;
            return xfail(x, "bad option '%.*s' for run", (int)(t - s + 1), s - 1);
        }
    }
    skip_ws(&s);
    if (*s != '{') {
        *sp = s;
        return xfail(x, "missing '{' for command arg of run");
    }
    s++;
    const char *raw = s;
    gstr cmd;
    gstr_init(&cmd, x->w, 64);
    bool ct = false;
    if ((st = xp_sub(x, &s, true, skip || !preexpand, &cmd, &ct)) != ST_OK) {
        *sp = s;
        return st;
    }
    if (!preexpand)
        cmd.s = arena_strndup(x->w, raw, (size_t)(s - raw));
    skip_ws(&s);
    if (*s != '}') {
        *sp = s;
        return xfail(x, "missing '}' closing command arg of run");
    }
    s++;
    const char *value = NULL;
    if (skip) {
        ps.exp_runrc = 0;
    } else {
        char *argv[RUN_MAX_ARGS + 1];
        int argc = split_command(x->w, cmd.s, argv, RUN_MAX_ARGS);
        if (argc < 0) {
            *sp = s;
            return xfail(x, "too many arguments in command \"%s\" in ${run} expansion", cmd.s);
        }
        if (argc == 0) {
            *sp = s;
            return xfail(x, "missing command name in ${run} expansion");
        }
        if (!preexpand)
            for (int i = 0; i < argc; i++) {
                char *e, *v;
                xs sub = {.w = x->w, .depth = x->depth};
                gstr g;
                gstr_init(&g, x->w, 32);
                bool t = false;
                const char *p = argv[i];
                if (xp_sub(&sub, &p, false, false, &g, &t) != ST_OK) {
                    e = sub.err;
                    *sp = s;
                    return xfail(x, "failed to expand argument %d (%s) of ${run} expansion: %s", i, argv[i],
                                 e ? e : "");
                }
                v = g.s;
                if (i == 0 && t) {
                    *sp = s;
                    return xfail(x, "attempt to use tainted command name '%s' in ${run} expansion", v);
                }
                argv[i] = v;
            }
        else if (ct) {
            *sp = s;
            return xfail(x, "attempt to use tainted string '%s' for ${run} command", cmd.s);
        }
        gstr o;
        gstr_init(&o, x->w, 256);
        int sig = 0;
        int rc = run_command(argv, &o, &sig);
        if (rc == -1) {
            *sp = s;
            return xfail(x, "command timed out");
        }
        if (rc == -2) {
            *sp = s;
            return xfail(x, "command killed by signal %d", sig);
        }
        if (rc == -3) {
            *sp = s;
            return xfail(x, "couldn't create child process: %s", strerror(errno));
        }
        ps.exp_runrc = rc;
        value = o.s;
    }
    /* $value is the output in both the yes and the no string, and stays set
     * afterwards (a skipped ${run} clears it), as in Exim */
    ps.exp_value = value;
    st = xp_yesno(x, &s, skip, ps.exp_runrc == 0, value, false, "run", out, taint);
    ps.exp_value = value;
    x->sticky = true;
    x->sticky_value = value;
    *sp = s;
    return st;
}

/* ---- prvs (BATV) -------------------------------------------------------- */

/* Last three digits of the day number, offset by days. */
static void daystamp(char out[4], int offset)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", ((long long)time(NULL) + (long long)offset * 86400) / 86400);
    size_t n = strlen(buf);
    memcpy(out, n >= 3 ? buf + n - 3 : "100", 3);
    out[3] = 0;
}

/* First three bytes of HMAC-SHA1(key, keynum . day . address), in hex. */
static bool prvs_hash(const char *address, const char *key, const char *keynum, const char *day,
                      char hex[7])
{
    if (strlen(key) > 64)
        return false;
    char src[4096];
    int n = snprintf(src, sizeof src, "%c%.3s%s", keynum ? keynum[0] : '0', day, address);
    if (n < 0 || (size_t)n >= sizeof src)
        return false;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    HMAC(EVP_sha1(), key, (int)strlen(key), (const unsigned char *)src, (size_t)n, d, &dl);
    snprintf(hex, 7, "%02x%02x%02x", d[0], d[1], d[2]);
    return true;
}

status it_prvs(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[3];
    status st = xp_args(x, sp, skip, 2, 3, true, "prvs", v, NULL, NULL);
    if (st != ST_OK || skip)
        return st;
    char *at = strrchr(v[0], '@');
    if (!at || at == v[0] || !at[1])
        return xfail(x, "prvs first argument must be a qualified email address");
    if (v[2] && (!isdigit((unsigned char)v[2][0]) || v[2][1]))
        return xfail(x, "prvs third argument must be a single digit");
    char day[4], hex[7];
    daystamp(day, 7);
    if (!prvs_hash(v[0], v[1], v[2], day, hex))
        return xfail(x, "prvs hmac-sha1 conversion failed");
    gstr_printf(out, "prvs=%c%s%s=%.*s@%s", v[2] ? v[2][0] : '0', day, hex, (int)(at - v[0]), v[0], at + 1);
    return ST_OK;
}

/* Read exactly one "{...}" argument. */
static status one_arg(xs *x, const char **sp, bool skip, char **v)
{
    skip_ws(sp);
    if (**sp != '{')
        return xfail(x, "Not enough arguments for 'prvscheck' (min is 1)");
    return xp_braced(x, sp, skip, v, NULL);
}

status it_prvscheck(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    status st;
    char *addr, *key, *third = NULL;
    ps.exp_prvscheck_result = NULL;
    ps.exp_prvscheck_address = NULL;
    ps.exp_prvscheck_keynum = NULL;
    if ((st = one_arg(x, sp, skip, &addr)) != ST_OK)
        return st;
    /* prvs=KDDDHHHHHH=local@domain */
    const char *p = skip ? "" : addr;
    bool is_prvs = strncasecmp(p, "prvs=", 5) == 0 && isdigit((unsigned char)p[5]) &&
                   isdigit((unsigned char)p[6]) && isdigit((unsigned char)p[7]) && isdigit((unsigned char)p[8]);
    for (int i = 9; is_prvs && i < 15; i++)
        if (!isxdigit((unsigned char)p[i]))
            is_prvs = false;
    const char *at = is_prvs && p[15] == '=' ? strrchr(p + 16, '@') : NULL;
    if (!at || at == p + 16 || !at[1])
        is_prvs = false;
    if (!is_prvs) {
        /* not a prvs address: read the rest and yield nothing */
        char *v[2];
        return xp_args(x, sp, skip, 1, 2, true, "prvscheck", v, NULL, NULL);
    }
    char keynum[2] = {p[5], 0}, day[4] = {p[6], p[7], p[8], 0}, hash[7];
    memcpy(hash, p + 9, 6);
    hash[6] = 0;
    ps.exp_prvscheck_address = arena_strdup(x->w, p + 16);
    ps.exp_prvscheck_keynum = arena_strdup(x->w, keynum);
    if ((st = one_arg(x, sp, skip, &key)) != ST_OK)
        goto done;
    char hex[7];
    if (!prvs_hash(ps.exp_prvscheck_address, key, keynum, day, hex)) {
        st = xfail(x, "hmac-sha1 conversion failed");
        goto done;
    }
    if (strcmp(hex, hash) == 0) {
        char now[4];
        daystamp(now, 0);
        unsigned inow = (unsigned)atoi(now), iexp = (unsigned)atoi(day);
        if (iexp < 7 && inow >= 993)
            inow = 0;
        ps.exp_prvscheck_result = iexp >= inow ? "1" : NULL;
    }
    {
        char *v[1];
        int cnt = 0;
        if ((st = xp_args(x, sp, skip, 0, 1, true, "prvscheck", v, NULL, &cnt)) != ST_OK)
            goto done;
        third = cnt ? v[0] : NULL;
    }
    if (!skip)
        gstr_cat(out, third && *third ? third : ps.exp_prvscheck_address);
done:
    ps.exp_prvscheck_address = NULL;
    ps.exp_prvscheck_keynum = NULL;
    return st;
}

/* ---- imapfolder ----------------------------------------------------------- */

/* ${imapfolder{name}{sep}{specials}}: the name (in headers_charset) in
 * IMAP modified UTF-7 (RFC 2060) as Courier-style Maildir folder names use
 * it: sep becomes '.', and '.', '/' and the specials are base64-encoded. */
static status imap_utf7(xs *x, const char *in, char sep, const char *specials, gstr *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    const char *str = in;
    const char *s;
    for (s = str; *s; s++) {
        if (s == str && *s == sep)
            str++;
        unsigned char c = (unsigned char)*s;
        if (c >= 0x7f || c < 0x20 || strchr("./&", c) || c == (unsigned char)sep || strchr(specials, c))
            break;
    }
    if (!*s) {
        gstr_cat(out, str);
        return ST_OK;
    }
    const char *cs = cfg ? cfg_str(MO_headers_charset) : NULL;
    iconv_t cd = iconv_open("UTF-16BE", cs ? cs : "UTF-8");
    if (cd == (iconv_t)-1)
        return xfail(x, "imapfolder: iconv_open(\"UTF-16BE\", \"%s\") failed: %s", cs ? cs : "UTF-8", strerror(errno));
    size_t inl = strlen(str);
    char *ip = (char *)str;
    gstr u16;
    gstr_init(&u16, x->w, inl * 2 + 4);
    while (inl > 0) {
        char buf[512], *op = buf;
        size_t left = sizeof buf;
        if (iconv(cd, &ip, &inl, &op, &left) == (size_t)-1 && errno != E2BIG) {
            iconv_close(cd);
            return xfail(x, "imapfolder: iconv() failed to convert from %s: %s", cs ? cs : "UTF-8", strerror(errno));
        }
        gstr_catn(&u16, buf, (size_t)(op - buf));
    }
    iconv_close(cd);
    gstr o;
    gstr_init(&o, x->w, u16.len + 8);
    bool b64mode = false, lastsep = false;
    int i = 0;
    unsigned c = 0;
    const unsigned char *u = (const unsigned char *)u16.s, *e = u + u16.len;
    while (u + 1 < e) {
        if (u[0] != 0 || u[1] >= 0x7f || u[1] < 0x20 || (strchr(specials, u[1]) && u[1] != (unsigned char)sep)) {
            lastsep = false;
            if (!b64mode) {
                gstr_catc(&o, '&');
                b64mode = true;
                i = 0;
            }
            for (int j = 0; j < 2; j++, u++) {
                switch (i++) {
                case 0:
                    gstr_catc(&o, b64[(*u >> 2) & 0x3f]);
                    c = *u & 0x03;
                    break;
                case 1:
                    gstr_catc(&o, b64[(c << 4) | ((*u >> 4) & 0x0f)]);
                    c = *u & 0x0f;
                    break;
                default:
                    gstr_catc(&o, b64[(c << 2) | ((*u >> 6) & 0x03)]);
                    gstr_catc(&o, b64[*u & 0x3f]);
                    i = 0;
                    break;
                }
            }
        } else if ((u[1] != '.' && u[1] != '/') || u[1] == (unsigned char)sep) {
            if (b64mode) {
                if (i == 1)
                    gstr_catc(&o, b64[c << 4]);
                else if (i == 2)
                    gstr_catc(&o, b64[c << 2]);
                gstr_catc(&o, '-');
                b64mode = false;
            }
            if (u[1] == (unsigned char)sep) {
                if (!lastsep) {
                    gstr_catc(&o, '.');
                    lastsep = true;
                }
            } else {
                gstr_catc(&o, (char)u[1]);
                if (u[1] == '&')
                    gstr_catc(&o, '-');
                lastsep = false;
            }
            u += 2;
        } else {
            return xfail(x, "imapfolder: illegal character '%c'", u[1]);
        }
    }
    if (b64mode) {
        if (i == 1)
            gstr_catc(&o, b64[c << 4]);
        else if (i == 2)
            gstr_catc(&o, b64[c << 2]);
        gstr_catc(&o, '-');
    }
    while (o.len && o.s[o.len - 1] == '.')
        o.len--;
    gstr_catn(out, o.s, o.len);
    return ST_OK;
}

status it_imapfolder(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[3];
    bool t[3];
    int n;
    status st = xp_args(x, sp, skip, 1, 3, true, "imapfolder", v, t, &n);
    if (st != ST_OK)
        return st;
    const char *sep = "/", *specials = "";
    if (n >= 2) {
        if (strlen(v[1]) != 1)
            return xfail(x, "IMAP folder separator must be one character, found %s", xq(x, v[1]));
        sep = v[1];
        if (n == 3)
            specials = v[2];
    }
    if (skip)
        return ST_OK;
    *taint |= t[0];
    return imap_utf7(x, v[0], sep[0], specials, out);
}

/* ---- acl ------------------------------------------------------------------ */

/* The ACL engine (src/acl) is linked into postern but not into every
 * program that uses the expander (unit tests, fuzzers): a weak reference
 * lets ${acl} work where the engine is present. */
#pragma weak acl_eval_with_args

/* Run ACL sub[0] with arguments sub[1..n-1]; *msg is its "message". */
status x_run_acl(xs *x, char **sub, int n, const char **msg, bool *ok)
{
    if (!acl_eval_with_args)
        return xfail(x, "the \"acl\" expansion item is not supported in this program");
    acl_session sess;
    memset(&sess, 0, sizeof sess);
    acl_result res;
    status st = acl_eval_with_args(ACL_WHERE_NOT_SMTP, sub[0], (const char **)sub + 1, n - 1,
                                   &sess, x->w, &res);
    (void)st;
    switch (res.st) {
    case ST_OK:
    case ST_FAIL:
        *ok = res.st == ST_OK;
        *msg = res.user_message;
        return ST_OK;
    case ST_DEFER:
        x->forced = true;
        return xfail(x, "DEFER from acl %s", xq(x, sub[0]));
    case ST_DISCARD:
        return xfail(x, "DISCARD from acl %s", xq(x, sub[0]));
    default:
        return xfail(x, "ERROR from acl %s", xq(x, sub[0]));
    }
}

status it_acl(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *sub[10];
    bool t[10];
    int n;
    status st = xp_args(x, sp, skip, 1, 10, true, "acl", sub, t, &n);
    if (st != ST_OK || skip)
        return st;
    const char *msg = NULL;
    bool ok;
    if ((st = x_run_acl(x, sub, n, &msg, &ok)) != ST_OK)
        return st;
    if (msg) {
        gstr_cat(out, msg);
        if (is_tainted(msg))
            *taint = true;
    }
    return ST_OK;
}

/* ---- readsocket ----------------------------------------------------------- */

#define READSOCK_MAX (16 * 1024 * 1024)

/* Connect fd to addr within timeout seconds. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(fd, sa, len);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        r = poll(&p, 1, timeout * 1000);
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            errno = e;
            return -1;
        }
        r = 0;
    }
    fcntl(fd, F_SETFL, fl);
    return r;
}

/* Addresses of host: an IP literal (optionally in []) or a name looked up
 * through src/dns (AAAA then A). */
static int host_addrs(xs *x, const char *host, int port, struct sockaddr_storage *out, int max, char **err)
{
    char h[300];
    snprintf(h, sizeof h, "%s", host);
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = 0;
    }
    int n = 0;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out[0];
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return 1;
    }
    if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return 1;
    }
    char *e2 = NULL;
    dns_resolver *r = ps.exp_forbid & EXPAND_FORBID_DNS ? NULL : dns_process_resolver(&e2, x->w);
    if (!r) {
        *err = arena_printf(x->w, "no IP address found for host %s", h);
        return 0;
    }
    static const int types[] = {DNS_T_AAAA, DNS_T_A};
    for (int t = 0; t < 2; t++) {
        dns_answer ans;
        if (dns_lookup(r, h, types[t], x->w, &ans) != ST_OK || ans.st != ST_OK)
            continue;
        for (int i = 0; i < ans.nrr && n < max; i++) {
            memset(&out[n], 0, sizeof out[n]);
            if (types[t] == DNS_T_A) {
                struct sockaddr_in *a = (struct sockaddr_in *)&out[n];
                if (inet_pton(AF_INET, ans.rr[i].text, &a->sin_addr) != 1)
                    continue;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)port);
            } else {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out[n];
                if (inet_pton(AF_INET6, ans.rr[i].text, &a->sin6_addr) != 1)
                    continue;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
            }
            n++;
        }
    }
    if (!n)
        *err = arena_printf(x->w, "no IP address found for host %s", h);
    return n;
}

/* Connect, send, read.  ST_OK with *res, ST_FAIL (socket problem: the fail
 * string may be used, message in *err), ST_ERROR (bad spec: expansion
 * failure, message via xfail). */
static status readsock(xs *x, const char *spec, const char *req, const char *opts, const char *eol,
                       char **res, char **err)
{
    int timeout = 5;
    bool do_shutdown = true;
    if (opts) {
        int sep = 0;
        const char *l = opts;
        char *item;
        bool first = true;
        while ((item = list_next(&l, &sep, x->w))) {
            if (first) {
                long long t;
                if (opt_parse_time(item, &t) != ST_OK || t < 0)
                    t = 5;
                timeout = (int)(t > 3600 ? 3600 : t);
                first = false;
            } else if (strncmp(item, "shutdown=", 9) == 0) {
                do_shutdown = strcmp(item + 9, "no") != 0;
            } else if (strncmp(item, "tls=", 4) == 0 && strcmp(item + 4, "no") != 0) {
                return xfail(x, "TLS for ${readsocket} is not supported by postern"), ST_ERROR;
            }
        }
    }
    int fd = -1;
    if (strncmp(spec, "inet:", 5) == 0) {
        char *host = arena_strdup(x->w, spec + 5);
        char *pn = strrchr(host, ':');
        if (!pn)
            return xfail(x, "missing port for readsocket %s", spec), ST_ERROR;
        *pn++ = 0;
        int port;
        if (isdigit((unsigned char)*pn)) {
            char *e;
            port = (int)strtol(pn, &e, 0);
            if (*e)
                return xfail(x, "invalid port number %s", pn), ST_ERROR;
        } else {
            struct servent *se = getservbyname(pn, "tcp");
            if (!se)
                return xfail(x, "unknown port %s", xq(x, pn)), ST_ERROR;
            port = ntohs((uint16_t)se->s_port);
        }
        struct sockaddr_storage addrs[16];
        int n = host_addrs(x, host, port, addrs, 16, err);
        if (!n)
            return ST_FAIL;
        int last = 0;
        for (int i = 0; i < n && fd < 0; i++) {
            fd = socket(addrs[i].ss_family, SOCK_STREAM, 0);
            if (fd < 0)
                continue;
            socklen_t sl = addrs[i].ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
            if (connect_timeout(fd, (struct sockaddr *)&addrs[i], sl, timeout) != 0) {
                last = errno;
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0) {
            const char *h = host[0] == '[' ? host : host;
            *err = arena_printf(x->w, "failed to connect to any address for %s: %s", h, strerror(last));
            return ST_FAIL;
        }
    } else {
        struct sockaddr_un su;
        memset(&su, 0, sizeof su);
        su.sun_family = AF_UNIX;
        snprintf(su.sun_path, sizeof su.sun_path, "%s", spec);
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
            *err = arena_printf(x->w, "failed to create socket: %s", strerror(errno));
            return ST_FAIL;
        }
        if (connect_timeout(fd, (struct sockaddr *)&su, sizeof su, timeout) != 0) {
            *err = errno == ETIMEDOUT ? arena_strdup(x->w, "socket connect timed out")
                                      : arena_printf(x->w, "failed to connect to socket %s: %s", spec, strerror(errno));
            close(fd);
            return ST_FAIL;
        }
    }
    if (*req) {
        size_t len = strlen(req), off = 0;
        while (off < len) {
            ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                *err = arena_printf(x->w, "request write to socket failed: %s", strerror(errno));
                close(fd);
                return ST_FAIL;
            }
            off += (size_t)w;
        }
    }
    if (do_shutdown)
        shutdown(fd, SHUT_WR);
    gstr g;
    gstr_init(&g, x->w, 256);
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout * 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            *err = arena_strdup(x->w, "socket read timed out");
            close(fd);
            return ST_FAIL;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && g.len < READSOCK_MAX; i++) {
            if (buf[i] == '\n' && eol)
                gstr_cat(&g, eol);
            else
                gstr_catc(&g, buf[i]);
        }
    }
    close(fd);
    *res = g.s;
    return ST_OK;
}

status it_readsocket(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[4];
    bool t[4] = {false, false, false, false};
    int n = 0;
    status st;
    if (ps.exp_forbid & (EXPAND_FORBID_RUN | EXPAND_FORBID_READSOCKET))
        return xfail(x, "socket insertions are not permitted");
    /* up to four arguments; a fifth {...} is the failure string */
    const char *s = *sp;
    skip_ws(&s);
    while (n < 4 && *s == '{') {
        if ((st = xp_braced(x, &s, skip, &v[n], &t[n])) != ST_OK) {
            *sp = s;
            return st;
        }
        n++;
        skip_ws(&s);
    }
    if (n < 2) {
        *sp = s;
        return xfail(x, "Not enough arguments for 'readsocket' (min is 2)");
    }
    char *res = NULL, *err = NULL;
    status rs = ST_OK;
    if (!skip) {
        if (t[0]) {
            *sp = s;
            return xfail(x, "attempt to use tainted socket name '%s' for readsocket", v[0]);
        }
        rs = readsock(x, v[0], v[1], n >= 3 ? v[2] : NULL, n >= 4 && *v[3] ? v[3] : NULL, &res, &err);
        if (rs == ST_ERROR) {
            *sp = s;
            return ST_FAIL;
        }
    }
    skip_ws(&s);
    if (skip || rs == ST_OK) {
        if (!skip) {
            gstr_cat(out, res);
            *taint = true;   /* data from a socket is outside data */
        }
        if (*s == '{') {
            if ((st = xp_braced(x, &s, true, NULL, NULL)) != ST_OK) {
                *sp = s;
                return st;
            }
            skip_ws(&s);
        }
    } else {
        if (*s != '{') {
            *sp = s;
            return xfail(x, "%s", err ? err : "readsocket failed");
        }
        char *fs;
        bool ft;
        if ((st = xp_braced(x, &s, false, &fs, &ft)) != ST_OK) {
            *sp = s;
            return st;
        }
        gstr_cat(out, fs);
        *taint |= ft;
        skip_ws(&s);
    }
    if (*s != '}') {
        *sp = s;
        return xfail(x, "missing '}' closing readsocket");
    }
    *sp = s + 1;
    return ST_OK;
}
