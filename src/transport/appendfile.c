/* appendfile.c: the appendfile transport, Exim's interface: its options,
 * defaults, checks, error messages and error numbers.  Runs in the local
 * delivery child, which already has the delivery uid/gid and sends each
 * address's result back to the delivery process.
 *
 * This file: the options of one delivery (Exim's start-up defaults and
 * its quota expansions), the file or directory name, the create_file
 * check, writing the message (message_prefix, BSMTP envelope, headers
 * and body with check_string/escape_string and use_crlf, message_suffix,
 * counting bytes and lines as Exim's $message_size after delivery), the
 * quota checks shared by all formats, and the quota warning message.
 * appendfile_mbox.c appends to one file, appendfile_dir.c makes a new
 * file per message (see appendfile.h).
 *
 * Not done here: notify_comsat is accepted and does nothing (no comsat
 * daemon is notified); Exim's copy of "panic" failures to the panic log
 * and more_errno (time since the mailbox was read, for quota retry
 * rules) need fields on the pipe to the delivery process, so those
 * failures are plain deferrals. */
#include "transport/appendfile.h"
#include "config/config.h"
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand.h"
#include "msgauth/mail.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The default of quota_warn_message (when quota_warn_threshold is set),
 * as the specification gives it. */
static const char default_warn_message[] =
    "To: $local_part@$domain\n"
    "Subject: Your mailbox\n\n"
    "This message is automatically created by mail delivery software.\n\n"
    "The size of your mailbox has exceeded a warning threshold that is\n"
    "set by the system administrator.\n";

static const char default_prefix[] = "From ${if def:return_path{$return_path}{MAILER-DAEMON}} ${tod_bsdinbox}\n";

/* ---- small helpers ------------------------------------------------------- */

status af_defer(af_job *j, int err, const char *msg)
{
    j->a->result = ST_DEFER;
    j->a->basic_errno = err;
    j->a->message = msg;
    return ST_DEFER;
}

status af_syserr(af_job *j, const char *fmt, ...)
{
    int e = errno;                     /* before anything can change it */
    va_list ap;
    va_start(ap, fmt);
    const char *msg = arena_vprintf(j->ctx->a, fmt, ap);
    va_end(ap);
    return af_defer(j, e, msg);
}

/* Set in the configuration file (not just the built-in default)? */
static bool explicit_set(const driver_inst *t, const char *name)
{
    const optval *v = driver_opt(t, name);
    return v && v->src_file;
}

static long long num_opt(const driver_inst *t, const char *name, long long dflt)
{
    const optval *v = driver_opt(t, name);
    return v && v->set ? v->n : dflt;
}

bool af_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return false;
    }
    for (char *p = buf + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char c = *p;
        *p = '\0';
        struct stat sb;
        if (stat(buf, &sb) != 0) {
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return false;
            if (mode & 07000)
                chmod(buf, mode);     /* mkdir ignores the high bits */
        }
        if (!c)
            return true;
        *p = c;
    }
}

void *af_regex(const char *re, arena *a, char **err)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!code) {
        char msg[128];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        *err = arena_printf(a, "appendfile: regular expression error: %s at offset %ld while compiling %s", msg,
                            (long)off, re);
    }
    return code;
}

bool af_regex_match(void *re, const char *s, size_t *start, size_t *end)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    bool ok = rc >= 0;
    if (ok && start) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        ok = rc >= 2 && ov[2] != PCRE2_UNSET;
        if (ok) {
            *start = ov[2];
            *end = ov[3];
        }
    }
    pcre2_match_data_free(md);
    return ok;
}

/* ---- options -------------------------------------------------------------- */

/* Exim's locking defaults: use_flock_lock turns the fcntl default off;
 * mbx_format with no locking option mentioned means MBX locking by
 * fcntl; use_mbx_lock turns off what is not mentioned. */
static void resolve_locking(const driver_inst *t, af_opts *o)
{
    o->use_lockfile = tp_opt_bool(t, "use_lockfile");
    o->use_fcntl = tp_opt_bool(t, "use_fcntl_lock");
    o->use_flock = tp_opt_bool(t, "use_flock_lock");
    o->use_mbx_lock = tp_opt_bool(t, "use_mbx_lock");
    bool set_lf = explicit_set(t, "use_lockfile"), set_fc = explicit_set(t, "use_fcntl_lock");
    bool set_fl = explicit_set(t, "use_flock_lock"), set_mbx = explicit_set(t, "use_mbx_lock");
    if (o->use_flock && !set_fc)
        o->use_fcntl = false;
    if (o->mbx) {
        if (!set_lf && !set_fc && !set_fl && !set_mbx) {
            o->use_lockfile = o->use_flock = false;
            o->use_mbx_lock = o->use_fcntl = true;
        } else if (o->use_mbx_lock) {
            if (!set_lf)
                o->use_lockfile = false;
            if (!set_fc)
                o->use_fcntl = false;
            if (!set_fl)
                o->use_flock = false;
            if (!o->use_fcntl && !o->use_flock)
                o->use_fcntl = true;
        }
    }
}

/* The checks Exim makes when it reads the configuration.  postern makes
 * them before each delivery (the configuration reader can call this to
 * make them at start-up instead). */
status appendfile_check(const driver_inst *t, arena *a, char **err)
{
    const char *file = tp_opt(t, "file"), *dir = tp_opt(t, "directory");
    const char *problem = NULL;
    af_opts o = { .mbx = tp_opt_bool(t, "mbx_format") };
    resolve_locking(t, &o);
    const char *cf = tp_opt(t, "create_file");
    if (file && dir)
        problem = "only one of \"file\" or \"directory\" can be specified";
    else if (file && tp_opt(t, "quota_filecount"))
        problem = "quota_filecount must not be set without \"directory\"";
    else if (file && tp_opt(t, "quota_directory"))
        problem = "quota_directory must not be set without \"directory\"";
    else if (!o.use_fcntl && !o.use_flock && !o.use_lockfile && !o.use_mbx_lock)
        problem = "no locking configured";
    else if (dir && tp_opt_bool(t, "maildir_format") && tp_opt_bool(t, "mailstore_format"))
        problem = "only one of maildir and mailstore may be specified";
    else if (dir && tp_opt(t, "quota_filecount") && !tp_opt(t, "quota"))
        problem = "quota must be set if quota_filecount is set";
    else if (dir && tp_opt(t, "quota_directory") && !tp_opt(t, "quota"))
        problem = "quota must be set if quota_directory is set";
    else if (cf && *cf && strcmp(cf, "anywhere") && strcmp(cf, "belowhome") && strcmp(cf, "inhome") && *cf != '/') {
        *err = arena_printf(a, "invalid value given for \"create_file\" for the %s transport: '%s'", t->name, cf);
        return ST_ERROR;
    }
    if (problem) {
        *err = arena_printf(a, "%s transport: %s", t->name, problem);
        return ST_ERROR;
    }
    return ST_OK;
}

/* One of quota, quota_filecount, quota_warn_threshold, mailbox_size,
 * mailbox_filecount: a number (decimals allowed) with K, M or G, "%"
 * (the threshold only, as a share of quota) and "/no_check" (quota and
 * quota_filecount only). */
enum { Q_QUOTA, Q_FILECOUNT, Q_WARN, Q_MBSIZE, Q_MBCOUNT };

static status quota_value(const driver_inst *t, af_opts *o, int which, arena *a, char **err)
{
    static const char *const names[] = { "quota", "quota_filecount", "quota_warn_threshold", "mailbox_size",
                                         "mailbox_filecount" };
    const char *raw = tp_opt(t, names[which]);
    double d = which >= Q_MBSIZE ? -1.0 : 0.0;
    bool no_check = false;
    if (raw) {
        char *s = NULL, *e = NULL;
        status st = expand_string(raw, a, &s, &e);
        if (st != ST_OK) {
            *err = arena_printf(a, "Expansion of \"%s\" in %s transport failed: %s", raw, t->name, e ? e : "");
            return ST_DEFER;
        }
        char *rest;
        d = strtod(s, &rest);
        int c = tolower((unsigned char)*rest);
        if (c == 'k' || c == 'm' || c == 'g') {
            d *= c == 'k' ? 1024.0 : c == 'm' ? 1024.0 * 1024.0 : 1024.0 * 1024.0 * 1024.0;
            rest++;
        } else if (*rest == '%' && which == Q_WARN) {
            if (o->quota <= 0 && !o->maildir_use_size_file)
                d = 0;
            else if ((int)d < 0 || (int)d > 100) {
                *err = arena_printf(a, "Invalid quota_warn_threshold percentage (%d) for %s transport", (int)d,
                                    t->name);
                return ST_DEFER;
            }
            o->warn_percent = true;
            rest++;
        }
        if (which <= Q_FILECOUNT && !strncmp(rest, "/no_check", 9)) {
            no_check = true;
            rest += 9;
        }
        while (isspace((unsigned char)*rest))
            rest++;
        if (*rest) {
            *err = arena_printf(a, "Malformed value \"%s\" (expansion of \"%s\") in %s transport", s, raw, t->name);
            return ST_DEFER;
        }
    }
    if ((which == Q_FILECOUNT || which == Q_MBCOUNT) && d >= 2.0 * 1024.0 * 1024.0 * 1024.0) {
        *err = arena_printf(a, "%s value %.10g is too large (overflow) in %s transport", names[which], d, t->name);
        return ST_DEFER;
    }
    long long v = which == Q_FILECOUNT || which == Q_MBCOUNT ? (long long)(int)d : (long long)d;
    switch (which) {
    case Q_QUOTA: o->quota = v; o->quota_no_check = no_check; break;
    case Q_FILECOUNT: o->quota_filecount = v; o->filecount_no_check = no_check; break;
    case Q_WARN: o->warn_threshold = v; break;
    case Q_MBSIZE: o->mailbox_size = v; break;
    default: o->mailbox_filecount = v; break;
    }
    return ST_OK;
}

static status resolve_opts(const driver_inst *t, af_opts *o, arena *a, char **err)
{
    memset(o, 0, sizeof *o);
    if (appendfile_check(t, a, err) != ST_OK)
        return ST_ERROR;
    o->t = t;
    o->name = t->name;
    o->maildir = tp_opt_bool(t, "maildir_format");
    o->mailstore = tp_opt_bool(t, "mailstore_format");
    o->mbx = tp_opt_bool(t, "mbx_format");
    o->bsmtp = tp_opt_bool(t, "use_bsmtp");
    o->crlf = tp_opt_bool(t, "use_crlf") || o->mbx;
    o->check_owner = tp_opt_bool(t, "check_owner");
    o->check_group = tp_opt_bool(t, "check_group");
    o->allow_symlink = tp_opt_bool(t, "allow_symlink");
    o->allow_fifo = tp_opt_bool(t, "allow_fifo");
    o->file_must_exist = tp_opt_bool(t, "file_must_exist");
    o->mode_fail_narrower = tp_opt_bool(t, "mode_fail_narrower");
    o->create_directory = tp_opt_bool(t, "create_directory");
    o->quota_inclusive = tp_opt_bool(t, "quota_is_inclusive");
    o->maildir_use_size_file = tp_opt_bool(t, "maildir_use_size_file");
    resolve_locking(t, o);
    o->mode = (mode_t)num_opt(t, "mode", 0600);
    o->dirmode = (mode_t)num_opt(t, "directory_mode", 0700);
    o->lockfile_mode = (mode_t)num_opt(t, "lockfile_mode", 0600);
    o->lock_retries = (int)num_opt(t, "lock_retries", 10);
    if (o->lock_retries == 0)
        o->lock_retries = 1;
    o->lock_interval = (long)num_opt(t, "lock_interval", 3);
    o->lockfile_timeout = (long)num_opt(t, "lockfile_timeout", 30 * 60);
    o->lock_fcntl_timeout = o->use_fcntl ? (long)num_opt(t, "lock_fcntl_timeout", 0) : 0;
    o->lock_flock_timeout = o->use_flock ? (long)num_opt(t, "lock_flock_timeout", 0) : 0;
    o->maildir_retries = (int)num_opt(t, "maildir_retries", 10);
    const char *cf = tp_opt(t, "create_file");
    o->create_file = CF_ANYWHERE;
    if (cf && *cf && strcmp(cf, "anywhere")) {
        o->create_file = !strcmp(cf, "inhome") ? CF_INHOME : CF_BELOWHOME;
        if (*cf == '/')
            o->create_file_dir = cf;
    }

    /* check_string, escape_string, message_prefix, message_suffix: BSMTP
     * forces the escaping of "." lines; a single file ("file" set, not
     * maildir or mailstore) gets the mbox defaults; otherwise only what
     * the configuration says */
    bool mbox_defaults = !o->bsmtp && !tp_opt(t, "directory") && !o->maildir && !o->mailstore;
    const char *cs = explicit_set(t, "check_string") ? tp_opt(t, "check_string") : NULL;
    const char *es = explicit_set(t, "escape_string") ? tp_opt(t, "escape_string") : NULL;
    o->prefix = explicit_set(t, "message_prefix") ? tp_opt(t, "message_prefix") : NULL;
    o->suffix = explicit_set(t, "message_suffix") ? tp_opt(t, "message_suffix") : NULL;
    if (o->bsmtp) {
        cs = ".";
        es = "..";
    } else if (mbox_defaults) {
        if (!explicit_set(t, "message_prefix"))
            o->prefix = default_prefix;
        if (!explicit_set(t, "message_suffix"))
            o->suffix = "\n";
        if (!cs && !explicit_set(t, "check_string"))
            cs = "From ";
        if (!es && !explicit_set(t, "escape_string"))
            es = ">From ";
    }
    if (cs && es && *cs) {
        o->check_string = cs;
        o->escape_string = es;
    }
    /* Exim expands these before it gives up root; here it is the
     * delivery user who does */
    for (int i = Q_QUOTA; i <= Q_MBCOUNT; i++)
        if (quota_value(t, o, i, a, err) != ST_OK)
            return ST_DEFER;
    return ST_OK;
}

/* ---- create_file ----------------------------------------------------------- */

/* May file be created?  "inhome": directly in the home directory (or the
 * create_file directory); "belowhome": anywhere under it, without "/../"
 * and without a symbolic link leading out of it.  Without a home
 * directory nothing is checked. */
bool af_creation_allowed(const char *file, const af_opts *o)
{
    const char *home = o->create_file_dir ? o->create_file_dir : ps.home_dir;
    if (!home || o->create_file == CF_ANYWHERE)
        return true;
    size_t len = strlen(home);
    while (file[0] == '/' && file[1] == '/')
        file++;
    if (strncmp(file, home, len) != 0 || file[len] != '/')
        return false;
    if (file[len + 1] && strchr(file + len + 2, '/') &&
        (o->create_file != CF_BELOWHOME || strstr(file + len, "/../")))
        return false;
    if (o->create_file != CF_BELOWHOME)
        return true;
    /* the real path of the longest part of the name that exists must
     * start with the home directory's real path */
    char buf[PATH_MAX], rp[PATH_MAX], rh[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", file);
    bool found = false;
    for (char *slash = strrchr(buf, '/'); slash && slash > buf; slash = strrchr(buf, '/')) {
        *slash = '\0';
        if (realpath(buf, rp)) {
            found = true;
            break;
        }
    }
    if (!found)
        return true;
    const char *h = home;
    if (realpath(home, rh)) {
        h = rh;
        len = strlen(rh);
    }
    size_t rlen = strlen(rp);
    if (rlen > len)
        rlen = len;
    return strncmp(h, rp, rlen) == 0;
}

/* ---- writing the message ------------------------------------------------- */

/* Output to the file: counted (Exim's transport_count and newlines),
 * buffered, with check_string/escape_string at the start of lines and
 * CR before LF for use_crlf. */
typedef struct af_out {
    int fd;
    int err;                    /* errno of the first failed write */
    unsigned long long total;
    long newlines;
    bool crlf;
    const char *check, *esc;
    size_t clen, elen;
    bool checking;              /* check_string applies now */
    bool at_start;              /* matching the check string at a line start */
    size_t pm;                  /* how much of it matched so far */
    size_t len;
    char buf[32768];
} af_out;

static void out_flush(af_out *o)
{
    const char *p = o->buf;
    while (o->len && !o->err) {
        ssize_t w = write(o->fd, p, o->len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->err = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        o->len -= (size_t)w;
    }
    o->len = 0;
}

static void out_raw(af_out *o, const char *p, size_t n)
{
    o->total += n;
    while (n && !o->err) {
        if (o->len == sizeof o->buf)
            out_flush(o);
        size_t k = sizeof o->buf - o->len;
        if (k > n)
            k = n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
    }
}

static void out_plain(af_out *o, char c)
{
    if (c != '\n') {
        out_raw(o, &c, 1);
        return;
    }
    if (o->crlf)
        out_raw(o, "\r", 1);
    out_raw(o, "\n", 1);
    o->newlines++;
    if (o->checking) {
        o->at_start = true;
        o->pm = 0;
    }
}

/* A byte of message text: a line that starts with check_string gets
 * escape_string instead (the match may run past the line's newline, as
 * MMDF's check string does). */
static void out_text(af_out *o, char c)
{
    if (!o->at_start) {
        out_plain(o, c);
        return;
    }
    if (c == o->check[o->pm]) {
        if (++o->pm == o->clen) {
            out_raw(o, o->esc, o->elen);
            o->at_start = false;
        }
        return;
    }
    size_t k = o->pm;
    o->at_start = false;
    for (size_t i = 0; i < k; i++)
        out_plain(o, o->check[i]);
    o->at_start = false;
    out_plain(o, c);
}

static void out_end_text(af_out *o)
{
    if (o->at_start && o->pm) {
        size_t k = o->pm;
        o->at_start = false;
        for (size_t i = 0; i < k; i++)
            out_plain(o, o->check[i]);
    }
    o->at_start = false;
}

static bool out_fn(void *ctx, const char *p, size_t n)
{
    af_out *o = ctx;
    for (size_t i = 0; i < n; i++)
        out_text(o, p[i]);
    return o->err == 0;
}

static void out_line(af_out *o, const char *s, const char *cr)
{
    out_raw(o, s, strlen(s));
    out_raw(o, cr, strlen(cr));
    out_raw(o, "\n", 1);
    o->newlines++;
}

/* The RCPT TO: address: a file or pipe delivery's parent; without the
 * affixes unless rcpt_include_affixes */
static const char *rcpt_address(const driver_inst *t, const address_item *a, arena *ar)
{
    if ((a->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && a->parent)
        a = a->parent;
    if (tp_opt_bool(t, "rcpt_include_affixes") || ((!a->prefix || !*a->prefix) && (!a->suffix || !*a->suffix)))
        return a->address;
    return arena_printf(ar, "%s@%s", a->local_part, a->domain);
}

status af_write(af_job *j, int fd, int *err)
{
    const af_opts *o = j->o;
    tp_ctx *ctx = j->ctx;
    address_item *a = j->a;
    af_out *out = arena_alloc(ctx->a, sizeof *out);
    memset(out, 0, offsetof(af_out, buf));
    out->fd = fd;
    out->crlf = o->crlf;
    if (o->check_string) {
        out->check = o->check_string;
        out->clen = strlen(o->check_string);
        out->esc = o->escape_string;
        out->elen = strlen(o->escape_string);
    }
    *err = 0;
    char *s = NULL, *e = NULL;
    if (o->prefix && *o->prefix) {
        if (expand_string(o->prefix, ctx->a, &s, &e) != ST_OK) {
            a->message = arena_printf(ctx->a, "Expansion of \"%s\" (prefix for %s transport) failed", o->prefix,
                                      o->name);
            *err = AFE_EXPANDFAIL;
            return ST_DEFER;
        }
        out_raw(out, s, strlen(s));
    }
    const char *cr = tp_opt_bool(o->t, "use_crlf") ? "\r" : "";
    if (o->bsmtp) {
        out->total = 0;
        out->newlines = 0;
        out_line(out, arena_printf(ctx->a, "MAIL FROM:<%s>", ctx->m->sender), cr);
        for (address_item *b = a; b; b = b->next)
            out_line(out, arena_printf(ctx->a, "RCPT TO:<%s>", rcpt_address(o->t, b, ctx->a)), cr);
        out_line(out, "DATA", cr);
    }
    bool no_headers = tp_opt_bool(o->t, "body_only"), no_body = tp_opt_bool(o->t, "headers_only");
    status st = ST_OK;
    char *werr = NULL;
    if (!no_headers) {
        /* the headers: escaped only for BSMTP (as SMTP does) */
        write_opts wo = { .headers_only = true };
        wo.top_headers = tp_top_headers(o->t, a, ctx);
        wo.add_headers = tp_added_headers(o->t, a, ctx);
        wo.remove_headers = tp_removed_headers(o->t, a, ctx);
        out->checking = o->bsmtp && o->check_string;
        st = transport_write_message(ctx->m, ctx->data_fd, &wo, out_fn, out, NULL, ctx->a, &werr);
        out_end_text(out);
    }
    if (st == ST_OK && !no_body) {
        write_opts wo = { .body_only = true };
        out->checking = out->at_start = o->check_string != NULL;
        out->pm = 0;
        st = transport_write_message(ctx->m, ctx->data_fd, &wo, out_fn, out, NULL, ctx->a, &werr);
        out_end_text(out);
    }
    out->checking = false;
    if (st == ST_OK && o->suffix && *o->suffix) {
        if (expand_string(o->suffix, ctx->a, &s, &e) != ST_OK) {
            out_flush(out);
            a->message = arena_printf(ctx->a, "Expansion of \"%s\" (suffix for %s transport) failed", o->suffix,
                                      o->name);
            *err = AFE_EXPANDFAIL;
            return ST_DEFER;
        }
        out_raw(out, s, strlen(s));
    }
    if (st == ST_OK && o->bsmtp)
        out_line(out, ".", cr);
    out_flush(out);
    j->written = out->total;
    j->newlines = out->newlines;
    if (out->err) {
        *err = out->err;
        return ST_DEFER;
    }
    if (st != ST_OK) {
        *err = EIO;
        a->message = werr;
        return ST_DEFER;
    }
    return ST_OK;
}

/* ---- quota ----------------------------------------------------------------- */

bool af_quota_ok(af_job *j)
{
    const af_opts *o = j->o;
    if (j->disable_quota || o->quota <= 0)
        return true;
    bool ok = true;
    if (j->mailbox_size + (o->quota_inclusive ? j->msg_size : 0) > o->quota && !o->quota_no_check)
        ok = false;
    if (o->quota_filecount > 0 && j->mailbox_filecount + (o->quota_inclusive ? 1 : 0) > o->quota_filecount &&
        !o->filecount_no_check) {
        ok = false;
        j->filecount_over = true;
    }
    return ok;
}

void af_threshold(af_job *j)
{
    const af_opts *o = j->o;
    if (j->disable_quota || o->warn_threshold <= 0 || (o->warn_percent && o->quota <= 0))
        return;
    long long thr = o->warn_threshold;
    if (o->warn_percent)
        thr = (long long)(((double)o->quota * (double)thr) / 100);
    if (j->mailbox_size <= thr && j->mailbox_size + (long long)j->written > thr)
        j->warn = true;
}

void af_write_failed(af_job *j, int err, const char *dataname)
{
    address_item *a = j->a;
    arena *ar = j->ctx->a;
    j->warn = false;
    a->basic_errno = err;
    if (err == EDQUOT) {
        a->message = "mailbox is full";
        a->user_message = "mailbox is full";
    } else if (err == AFE_EXIMQUOTA) {
        a->message = arena_printf(ar, "mailbox is full (MTA-imposed%s quota exceeded while writing to %s)",
                                  j->filecount_over ? " filecount" : "", dataname);
        a->user_message = "mailbox is full";
    } else if (err == AFE_MBXLENGTH) {
        a->message = arena_printf(ar, "length mismatch while copying MBX temporary file to %s", dataname);
    } else if (!a->message) {
        a->message = arena_printf(ar, "error while writing to %s", dataname);
    }
    a->result = ST_DEFER;
}

/* ---- the quota warning --------------------------------------------------- */

/* Does a line of text start with the header name? */
static bool has_header(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; *p;) {
        if (!strncasecmp(p, name, n)) {
            const char *q = p + n;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == ':')
                return true;
        }
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return false;
}

static const char *dsn_from(arena *a)
{
    static const char dflt[] = "Mail Delivery System <Mailer-Daemon@$qualify_domain>";
    const char *f = cfg_str(MO_dsn_from) ? cfg_str(MO_dsn_from) : dflt;
    char *x = NULL, *e = NULL;
    if (expand_string(f, a, &x, &e) == ST_OK && x)
        return x;
    if (expand_string(dflt, a, &x, &e) == ST_OK && x)
        return x;
    return arena_printf(a, "Mail Delivery System <Mailer-Daemon@%s>", cfg_str(MO_qualify_domain));
}

#define WARN_MAX_RCPTS 100

/* quota_warn_message, sent as Exim sends it (with "-t": the recipients
 * from To:, Cc: and Bcc:, Bcc: left out, the sender <>), with
 * Auto-Submitted:, and Reply-To: (errors_reply_to) and From: (dsn_from)
 * when the text has none. */
static void quota_warning(af_job *j)
{
    const driver_inst *t = j->o->t;
    tp_ctx *ctx = j->ctx;
    const char *raw = tp_opt(t, "quota_warn_message");
    if (!raw)
        raw = default_warn_message;
    char *text = NULL, *e = NULL;
    if (expand_string(raw, ctx->a, &text, &e) != ST_OK || !text)
        return;
    gstr h;
    gstr_init(&h, ctx->a, strlen(text) + 256);
    if (cfg_str(MO_errors_reply_to) && !has_header(text, "Reply-To"))
        gstr_printf(&h, "Reply-To: %s\n", cfg_str(MO_errors_reply_to));
    gstr_cat(&h, "Auto-Submitted: auto-replied\n");
    if (!has_header(text, "From"))
        gstr_printf(&h, "From: %s\n", dsn_from(ctx->a));
    const char *rcpts[WARN_MAX_RCPTS];
    int n = 0;
    const char *p = text;
    while (*p && *p != '\n') {
        /* one field: a line and its continuation lines */
        const char *end = p;
        for (;;) {
            const char *nl = strchr(end, '\n');
            end = nl ? nl + 1 : end + strlen(end);
            if (*end != ' ' && *end != '\t')
                break;
        }
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon)
            break;                         /* not a header: the body starts here */
        size_t nlen = (size_t)(colon - p);
        while (nlen && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
            nlen--;
        bool bcc = nlen == 3 && !strncasecmp(p, "Bcc", 3);
        if ((nlen == 2 && (!strncasecmp(p, "To", 2) || !strncasecmp(p, "Cc", 2))) || bcc) {
            mail_addr *ad;
            int k = mail_addr_list(ctx->a, colon + 1, (size_t)(end - colon - 1), &ad);
            for (int i = 0; i < k && n < WARN_MAX_RCPTS; i++)
                rcpts[n++] = arena_printf(ctx->a, "%s@%s", ad[i].local,
                                          *ad[i].domain ? ad[i].domain : cfg_str(MO_qualify_recipient));
        }
        if (!bcc) {
            gstr_catn(&h, p, (size_t)(end - p));
            if (end[-1] != '\n')
                gstr_catc(&h, '\n');
        }
        p = end;
    }
    if (*p == '\n')
        p++;
    if (!n)
        return;
    tp_generated g = { .sender = "", .rcpts = rcpts, .nrcpt = n, .headers = h.s, .body = p, .by_delivery = true };
    char *gerr = NULL;
    tp_generate_message(ctx, &g, &gerr);
}

/* ---- the delivery ---------------------------------------------------------- */

/* Exim's $message_size: the headers that are sent, a blank line and the body */
static long long spool_message_size(const tp_ctx *ctx)
{
    long long size = 1;
    struct stat sb;
    if (fstat(ctx->data_fd, &sb) == 0 && sb.st_size > SPOOL_ID_LEN + 3)
        size += (long long)sb.st_size - (SPOOL_ID_LEN + 3);
    for (const spool_header *h = ctx->m->headers; h; h = h->next)
        if (h->type != '*')
            size += (long long)h->len;
    return size;
}

/* Failures Exim counts as its "panic" case: a deferral with errno -1 */
static status panic_defer(address_item *a, const char *msg)
{
    a->result = ST_DEFER;
    a->basic_errno = AFE_UNKNOWN;
    a->message = msg;
    return ST_DEFER;
}

static status appendfile_run(const driver_inst *t, address_item *a, tp_ctx *ctx)
{
    tp_set_vars(t, a);
    ps.message_size = (long)spool_message_size(ctx);   /* for this process's expansions */
    a->basic_errno = AFE_UNKNOWN;      /* Exim's default: "defer (-1)" unless set */
    a->user_message = NULL;
    a->message = NULL;
    char *err = NULL;
    af_opts o;
    if (resolve_opts(t, &o, ctx->a, &err) != ST_OK)
        return panic_defer(a, err);

    /* the file or directory: a "/path" from a redirect when the transport
     * names neither (a directory when it ends in "/", or for maildir and
     * mailstore); else the transport's option, expanded */
    const char *file_opt = tp_opt(t, "file"), *dir_opt = tp_opt(t, "directory"), *fdname = NULL;
    const char *path = NULL;
    bool isdir = false;
    if ((a->flags & AF_FILE) && !file_opt && !dir_opt) {
        path = a->address;
        size_t n = strlen(path);
        isdir = (n && path[n - 1] == '/') || o.maildir || o.mailstore;
    } else if (!(fdname = file_opt)) {
        fdname = dir_opt;
        isdir = true;
        if (!fdname)
            return panic_defer(a, arena_printf(ctx->a, "Mandatory file or directory option missing from %s transport",
                                               t->name));
    }
    if ((o.maildir || o.mailstore) && !isdir)
        return panic_defer(a, arena_printf(ctx->a, "mail%s_format requires \"directory\" to be specified for the %s "
                                           "transport", o.maildir ? "dir" : "store", t->name));
    if (fdname) {
        char *x = NULL;
        if (expand_string(fdname, ctx->a, &x, &err) != ST_OK || !x)
            return panic_defer(a, arena_printf(ctx->a, "Expansion of \"%s\" (file or directory name for %s "
                                               "transport) failed: %s", fdname, t->name, err ? err : ""));
        path = x;
    }
    if (path[0] != '/') {
        a->result = ST_DEFER;
        a->basic_errno = AFE_NOTABSOLUTE;
        a->message = arena_printf(ctx->a, "appendfile: file or directory name \"%s\" is not absolute", path);
        return ST_DEFER;
    }
    /* create_file: where files may be created; a name built from outside
     * data ($local_part, ...) is refused, as Exim does, unless it passed
     * the "belowhome" check */
    bool allowed = af_creation_allowed(isdir ? arena_printf(ctx->a, "%s/any", path) : path, &o);
    if (isdir && !allowed) {
        a->result = ST_DEFER;
        a->basic_errno = AFE_BADCREATE;
        a->message = arena_printf(ctx->a, "tried to create file in %s, but file creation outside the home directory "
                                  "is not permitted", path);
        return ST_DEFER;
    }
    if (fdname && is_tainted(path)) {
        if (!allowed || o.create_file != CF_BELOWHOME)
            return panic_defer(a, arena_printf(ctx->a, "Tainted '%s' (file or directory name for %s transport) not "
                                               "permitted", path, t->name));
        path = arena_strdup(ctx->a, path);
    }
    af_job j = { .o = &o, .a = a, .ctx = ctx, .path = path, .uid = geteuid(), .gid = getegid(),
                 .msg_size = ps.message_size, .mailbox_size = o.mailbox_size,
                 .mailbox_filecount = o.mailbox_filecount, .creation_allowed = allowed };
    status st = isdir ? af_deliver_dir(&j) : af_deliver_file(&j);
    if (a->result == ST_OK && j.warn)
        quota_warning(&j);
    return st;
}

/* A batch (batch_max) gets one copy of the message, with every address in
 * Envelope-to: (and BSMTP's RCPT TO:), and shares its result.  Files are
 * created with the modes configured (Exim works with umask 0). */
status transport_appendfile(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    mode_t old = umask(0);
    addrs->result = ST_DEFER;
    status st = appendfile_run(t, addrs, ctx);
    umask(old);
    for (address_item *b = addrs->next; b; b = b->next) {
        b->result = addrs->result;
        b->message = addrs->message;
        b->user_message = addrs->user_message;
        b->basic_errno = addrs->basic_errno;
        b->more_errno = addrs->more_errno;
        b->freeze = addrs->freeze;
    }
    return st;
}
