/* vars.c: the expansion variable table.  One row per variable, each with
 * a getter; later modules add rows (message and connection variables)
 * with their own getters.  Values that came from outside live in tainted
 * arenas, so a getter needs no taint flag: is_tainted() on the value says. */
#include "expand_int.h"
#include "expand.h"
#include "config/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <pwd.h>
#include <unistd.h>

/* The Exim release whose expansion semantics postern follows. */
#define EXIM_COMPAT_VERSION "4.99"

typedef const char *(*var_fn)(xs *x, const char *name);

typedef struct var_row {
    const char *name;
    var_fn get;
} var_row;

static const char *opt_or(enum main_opt o, const char *dflt)
{
    const char *v = cfg ? cfg_str(o) : NULL;
    return v ? v : dflt;
}

static const char *v_primary_hostname(xs *x, const char *n)
{
    const char *v = cfg ? cfg_str(MO_primary_hostname) : NULL;
    if (v)
        return v;
    static char host[256];
    if (!host[0]) {
        struct utsname u;
        if (uname(&u) == 0)
            snprintf(host, sizeof host, "%s", u.nodename);
    }
    return host;
}

static const char *v_qualify_domain(xs *x, const char *n)
{
    return opt_or(MO_qualify_domain, v_primary_hostname(x, n));
}

static const char *v_qualify_recipient(xs *x, const char *n)
{
    return opt_or(MO_qualify_recipient, v_qualify_domain(x, n));
}

static const char *v_spool_directory(xs *x, const char *n)
{
    return opt_or(MO_spool_directory, "/var/spool/postern");
}

static const char *v_config_file(xs *x, const char *n)
{
    return cfg && cfg->filename ? cfg->filename : "";
}

static const char *v_config_dir(xs *x, const char *n)
{
    const char *f = v_config_file(x, n);
    const char *sl = strrchr(f, '/');
    if (!sl)
        return ".";
    return arena_strndup(x->w, f, sl == f ? 1 : (size_t)(sl - f));
}

static const char *v_exim_path(xs *x, const char *n)
{
    const char *v = opt_or(MO_exim_path, NULL);
    if (v)
        return v;
    char buf[4096];
    ssize_t r = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (r <= 0)
        return "";
    return arena_strndup(x->w, buf, (size_t)r);
}

static const char *v_initial_cwd(xs *x, const char *n)
{
    char buf[4096];
    return getcwd(buf, sizeof buf) ? arena_strdup(x->w, buf) : "";
}

static const char *v_version(xs *x, const char *n) { return EXIM_COMPAT_VERSION; }

/* $spool_space, $log_space (KiB free) and $spool_inodes, $log_inodes. */
static const char *v_space(xs *x, const char *n)
{
    const char *dir = v_spool_directory(x, n);
    if (n[0] == 'l') {
        const char *lp = opt_or(MO_log_file_path, NULL);
        if (lp && *lp && strncmp(lp, "syslog", 6) != 0) {
            const char *sl = strrchr(lp, '/');
            if (sl)
                dir = arena_strndup(x->w, lp, (size_t)(sl - lp));
        } else {
            dir = arena_printf(x->w, "%s/log", dir);
        }
    }
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return "-1";
    if (strstr(n, "inodes"))
        return arena_printf(x->w, "%llu", (unsigned long long)sv.f_favail);
    return arena_printf(x->w, "%llu", (unsigned long long)sv.f_bavail * sv.f_frsize / 1024);
}

static const char *v_bounce_return_size_limit(xs *x, const char *n)
{
    return arena_printf(x->w, "%lld", cfg ? cfg_int(MO_bounce_return_size_limit) : 102400LL);
}
static const char *v_compile_number(xs *x, const char *n) { return "1"; }
static const char *v_compile_date(xs *x, const char *n) { return __DATE__ " " __TIME__; }
static const char *v_zero(xs *x, const char *n) { return "0"; }
static const char *v_minus1(xs *x, const char *n) { return "-1"; }
static const char *v_empty(xs *x, const char *n) { return ""; }

static const char *v_pid(xs *x, const char *n)
{
    return arena_printf(x->w, "%d", (int)getpid());
}

static const char *v_caller_uid(xs *x, const char *n)
{
    return arena_printf(x->w, "%u", (unsigned)getuid());
}

static const char *v_caller_gid(xs *x, const char *n)
{
    return arena_printf(x->w, "%u", (unsigned)getgid());
}

static const char *v_value(xs *x, const char *n) { return ps.exp_value; }

/* The caller's login name (Exim's $sender_ident for local submissions). */
static const char *caller_login(xs *x)
{
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? arena_strdup(x->w, pw->pw_name) : "";
}

static const char *v_sender_ident(xs *x, const char *n)
{
    return ps.sender_host_address ? "" : caller_login(x);
}

/* $sender_address_domain and $sender_address_local_part */
static const char *v_sender_part(xs *x, const char *n)
{
    const char *a = ps.sender_address;
    if (!a)
        return "";
    const char *at = strrchr(a, '@');
    if (strcmp(n, "sender_address_domain") == 0)
        return at ? at + 1 : "";
    return at ? arena_strndup(x->w, a, (size_t)(at - a)) : a;
}
static const char *v_runrc(xs *x, const char *n) { return arena_printf(x->w, "%d", ps.exp_runrc); }
static const char *v_prvscheck(xs *x, const char *n)
{
    return n[10] == 'r' ? ps.exp_prvscheck_result : n[10] == 'a' ? ps.exp_prvscheck_address
                                                                  : ps.exp_prvscheck_keynum;
}
static const char *v_item(xs *x, const char *n) { return ps.exp_item; }

static const char *v_acl(xs *x, const char *n)
{
    return expand_get_acl_var(n);
}

/* Times: in the configured timezone, else the system's (/etc/localtime;
 * like Exim, the TZ of the caller's environment is not used). */
static void now_tm(struct tm *tm, struct timeval *tv, long *off)
{
    gettimeofday(tv, NULL);
    time_t t = tv->tv_sec;
    const char *tz = opt_or(MO_timezone, NULL);
    const char *want = tz && *tz ? tz : ":/etc/localtime";
    const char *cur = getenv("TZ");
    if (!cur || strcmp(cur, want) != 0) {
        setenv("TZ", want, 1);
        tzset();
    }
    localtime_r(&t, tm);
    *off = tm->tm_gmtoff;
}

static const char *v_tod(xs *x, const char *n)
{
    struct tm tm;
    struct timeval tv;
    long off;
    now_tm(&tm, &tv, &off);
    char buf[128], zone[40];
    long ao = off < 0 ? -off : off;
    snprintf(zone, sizeof zone, "%c%02ld%02ld", off < 0 ? '-' : '+', ao / 3600, ao % 3600 / 60);
    const char *w = n + 4;
    if (strcmp(w, "bsdinbox") == 0)
        strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
    else if (strcmp(w, "epoch") == 0)
        snprintf(buf, sizeof buf, "%lld", (long long)tv.tv_sec);
    else if (strcmp(w, "epoch_l") == 0)
        snprintf(buf, sizeof buf, "%lld%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
    else if (strcmp(w, "full") == 0) {
        strftime(buf, sizeof buf, "%a, %e %b %Y %H:%M:%S ", &tm);
        if (buf[5] == ' ')
            memmove(buf + 5, buf + 6, strlen(buf + 5));
        strcat(buf, zone);
    } else if (strcmp(w, "log") == 0)
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    else if (strcmp(w, "logfile") == 0)
        strftime(buf, sizeof buf, "%Y%m%d", &tm);
    else if (strcmp(w, "zone") == 0)
        snprintf(buf, sizeof buf, "%s", zone);
    else { /* zulu */
        time_t t = tv.tv_sec;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
    }
    return arena_strdup(x->w, buf);
}

/* Sorted by name (binary search). */
static const var_row var_table[] = {
    {"acl_narg", v_zero},
    {"acl_verify_message", v_empty},
    {"address_data", v_empty},
    {"address_file", v_empty},
    {"address_pipe", v_empty},
    {"authenticated_fail_id", v_empty},
    {"authenticated_id", v_empty},
    {"authenticated_sender", v_empty},
    {"authentication_failed", v_zero},
    {"body_linecount", v_zero},
    {"body_zerocount", v_zero},
    {"bounce_recipient", v_empty},
    {"bounce_return_size_limit", v_bounce_return_size_limit},
    {"caller_gid", v_caller_gid},
    {"caller_uid", v_caller_uid},
    {"callout_address", v_empty},
    {"compile_date", v_compile_date},
    {"compile_number", v_compile_number},
    {"config_dir", v_config_dir},
    {"config_file", v_config_file},
    {"dnslist_domain", v_empty},
    {"dnslist_matched", v_empty},
    {"dnslist_text", v_empty},
    {"dnslist_value", v_empty},
    {"domain", v_empty},
    {"domain_data", v_empty},
    {"exim_path", v_exim_path},
    {"exim_version", v_version},
    {"headers_added", v_empty},
    {"home", v_empty},
    {"host", v_empty},
    {"host_address", v_empty},
    {"host_data", v_empty},
    {"host_lookup_deferred", v_zero},
    {"host_lookup_failed", v_zero},
    {"host_port", v_zero},
    {"initial_cwd", v_initial_cwd},
    {"inode", v_zero},
    {"interface_address", v_empty},
    {"interface_port", v_minus1},
    {"item", v_item},
    {"local_part", v_empty},
    {"local_part_data", v_empty},
    {"local_part_prefix", v_empty},
    {"local_part_prefix_v", v_empty},
    {"local_part_suffix", v_empty},
    {"local_part_suffix_v", v_empty},
    {"localhost_number", v_zero},
    {"log_inodes", v_space},
    {"log_space", v_space},
    {"lookup_dnssec_authenticated", v_empty},
    {"message_age", v_zero},
    {"message_body", v_empty},
    {"message_body_end", v_empty},
    {"message_body_size", v_zero},
    {"message_exim_id", v_empty},
    {"message_headers", v_empty},
    {"message_headers_raw", v_empty},
    {"message_id", v_empty},
    {"message_linecount", v_zero},
    {"message_size", v_zero},
    {"original_domain", v_empty},
    {"original_local_part", v_empty},
    {"originator_gid", v_caller_gid},
    {"originator_uid", v_caller_uid},
    {"parent_domain", v_empty},
    {"parent_local_part", v_empty},
    {"pid", v_pid},
    {"primary_hostname", v_primary_hostname},
    {"prvscheck_address", v_prvscheck},
    {"prvscheck_keynum", v_prvscheck},
    {"prvscheck_result", v_prvscheck},
    {"qualify_domain", v_qualify_domain},
    {"qualify_recipient", v_qualify_recipient},
    {"queue_name", v_empty},
    {"rcpt_count", v_zero},
    {"rcpt_defer_count", v_zero},
    {"rcpt_fail_count", v_zero},
    {"received_count", v_zero},
    {"received_for", v_empty},
    {"received_ip_address", v_empty},
    {"received_port", v_minus1},
    {"received_protocol", v_empty},
    {"received_time", v_zero},
    {"recipient_data", v_empty},
    {"recipient_verify_failure", v_empty},
    {"recipients", v_empty},
    {"recipients_count", v_zero},
    {"regex_match_string", v_empty},
    {"reply_address", v_empty},
    {"return_path", v_empty},
    {"return_size_limit", v_bounce_return_size_limit},
    {"router_name", v_empty},
    {"runrc", v_runrc},
    {"self_hostname", v_empty},
    {"sender_address_data", v_empty},
    {"sender_address_domain", v_sender_part},
    {"sender_address_local_part", v_sender_part},
    {"sender_data", v_empty},
    {"sender_fullhost", v_empty},
    {"sender_helo_name", v_empty},
    {"sender_host_address", v_empty},
    {"sender_host_authenticated", v_empty},
    {"sender_host_name", v_empty},
    {"sender_host_port", v_zero},
    {"sender_ident", v_sender_ident},
    {"sender_rcvhost", v_empty},
    {"sender_verify_failure", v_empty},
    {"sending_ip_address", v_empty},
    {"sending_port", v_minus1},
    {"smtp_active_hostname", v_primary_hostname},
    {"smtp_command", v_empty},
    {"smtp_command_argument", v_empty},
    {"spool_directory", v_spool_directory},
    {"spool_inodes", v_space},
    {"spool_space", v_space},
    {"thisaddress", v_empty},
    {"tod_bsdinbox", v_tod},
    {"tod_epoch", v_tod},
    {"tod_epoch_l", v_tod},
    {"tod_full", v_tod},
    {"tod_log", v_tod},
    {"tod_logfile", v_tod},
    {"tod_zone", v_tod},
    {"tod_zulu", v_tod},
    {"transport_name", v_empty},
    {"value", v_value},
    {"verify_mode", v_empty},
    {"version_number", v_version},
    {"warn_message_delay", v_empty},
    {"warn_message_recipients", v_empty},
};

static int row_cmp(const void *k, const void *r)
{
    return strcmp(k, ((const var_row *)r)->name);
}

const char *var_get(xs *x, const char *name, bool *known)
{
    *known = false;
    if (strncmp(name, "acl_c", 5) == 0 || strncmp(name, "acl_m", 5) == 0) {
        const char *p = name + 5;
        if ((isdigit((unsigned char)*p) && !p[1]) || (*p == '_' && p[1])) {
            *known = true;
            return v_acl(x, name);
        }
        xfail(x, "unknown variable name \"%s\" (6th character of a user-defined ACL variable must be a digit or underscore)", name);
        return NULL;
    }
    if (strncmp(name, "acl_", 4) == 0 && strcmp(name, "acl_narg") != 0 &&
        strcmp(name, "acl_verify_message") != 0 && strncmp(name, "acl_arg", 7) != 0) {
        xfail(x, "unknown variable name \"%s\" (user-defined ACL variables must start acl_c or acl_m)", name);
        return NULL;
    }
    if (strncmp(name, "acl_arg", 7) == 0 && name[7] >= '1' && name[7] <= '9' && !name[8]) {
        *known = true;
        const char *v = ps.acl_arg[name[7] - '1'];
        return v ? v : "";
    }
    if (strcmp(name, "acl_narg") == 0) {
        *known = true;
        return arena_printf(x->w, "%d", ps.acl_narg);
    }
    if (name[0] == 'r' && name[1] == '_') {
        /* router variables ("set" on routers) */
        *known = true;                  /* unset ones are empty, like ACL variables */
        for (const acl_var *v = ps.router_vars; v; v = v->next)
            if (!strcmp(v->name, name))
                return v->value;
        return "";
    }
    const char *sv = vars_state(x, name, known);
    if (*known)
        return sv;
    const var_row *r = bsearch(name, var_table, sizeof var_table / sizeof var_table[0],
                               sizeof var_table[0], row_cmp);
    if (!r)
        return NULL;
    *known = true;
    return r->get(x, name);
}
