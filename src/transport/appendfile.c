/* appendfile.c: the appendfile transport: an mbox file ("file", with
 * fcntl and dot-lock locking, "From " lines and escaping, rolled back on
 * failure) or a maildir ("directory" with maildir_format: tmp/ then
 * new/).  Runs in a child process that already has the delivery uid/gid. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/vars_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static status fail_addr(address_item *a, status st, const char *msg)
{
    a->result = st;
    a->message = msg;
    return st;
}

static bool mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(buf, mode) == 0 || errno == EEXIST;
}

static long long quota_of(const driver_inst *t, tp_ctx *ctx)
{
    const char *q;
    char *err;
    if (tp_opt_expand(t, "quota", ctx, &q, &err) != ST_OK || !q || !*q)
        return 0;
    long long v = 0;
    opt_parse_int(q, &v);
    return v;
}

static status deliver_mbox(const driver_inst *t, address_item *a, tp_ctx *ctx, const char *path)
{
    mode_t mode = (mode_t)(driver_opt(t, "mode") ? driver_opt(t, "mode")->n : 0600);
    if (tp_opt_bool(t, "create_directory")) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mode_t dm = (mode_t)(driver_opt(t, "directory_mode") ? driver_opt(t, "directory_mode")->n : 0700);
            mkdirs(dir, dm);
        }
    }
    /* dot-lock: path.lock created exclusively, retried */
    bool use_lockfile = tp_opt_bool(t, "use_lockfile");
    char lockpath[PATH_MAX];
    snprintf(lockpath, sizeof lockpath, "%s.lock", path);
    long long retries = driver_opt(t, "lock_retries") ? driver_opt(t, "lock_retries")->n : 10;
    long long interval = driver_opt(t, "lock_interval") ? driver_opt(t, "lock_interval")->n : 3;
    int lfd = -1;
    if (use_lockfile) {
        for (long long i = 0;; i++) {
            lfd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (lfd >= 0)
                break;
            if (errno != EEXIST || i >= retries) {
                if (errno == EACCES) {
                    use_lockfile = false;   /* directory not writable: rely on fcntl */
                    break;
                }
                return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "failed to lock mailbox %s (lock file)", path));
            }
            sleep((unsigned)(interval > 0 ? interval : 1));
        }
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        const char *msg = arena_printf(ctx->a, "failed to open mailbox %s: %s", path, strerror(errno));
        if (lfd >= 0) {
            close(lfd);
            unlink(lockpath);
        }
        return fail_addr(a, ST_DEFER, msg);
    }
    if (tp_opt_bool(t, "use_fcntl_lock")) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        bool locked = false;
        for (long long i = 0; i <= retries; i++) {
            if (fcntl(fd, F_SETLK, &fl) == 0) {
                locked = true;
                break;
            }
            sleep((unsigned)(interval > 0 ? interval : 1));
        }
        if (!locked) {
            close(fd);
            if (lfd >= 0) {
                close(lfd);
                unlink(lockpath);
            }
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "failed to lock mailbox %s (fcntl)", path));
        }
    }
    struct stat sb;
    fstat(fd, &sb);
    off_t start = sb.st_size;
    long long quota = quota_of(t, ctx);
    if (quota > 0 && (long long)sb.st_size >= quota) {
        close(fd);
        if (lfd >= 0) {
            close(lfd);
            unlink(lockpath);
        }
        a->basic_errno = EDQUOT;
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "mailbox is full (quota %lld exceeded)", quota));
    }
    write_opts wo = { 0 };
    const char *prefix = NULL, *suffix = NULL, *check = NULL;
    char *err = NULL;
    if (tp_opt_expand(t, "message_prefix", ctx, &prefix, &err) != ST_OK ||
        tp_opt_expand(t, "message_suffix", ctx, &suffix, &err) != ST_OK) {
        close(fd);
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "expansion of message_prefix/suffix failed: %s", err));
    }
    check = tp_opt(t, "check_string");
    wo.prefix = prefix;
    wo.suffix = suffix;
    wo.escape_from = check && !strcmp(check, "From ") ? tp_opt(t, "escape_string") : NULL;
    wo.top_headers = tp_top_headers(t, a, ctx);
    wo.add_headers = tp_added_headers(t, a, ctx);
    const char *hr;
    tp_opt_expand(t, "headers_remove", ctx, &hr, &err);
    wo.remove_headers = hr;
    unsigned long long bytes;
    status st = transport_write_message(ctx->m, ctx->data_fd, &wo, write_to_fd, &fd, &bytes, ctx->a, &err);
    if (st == ST_OK && quota > 0 && (long long)(start + (off_t)bytes) > quota) {
        st = ST_DEFER;
        err = arena_printf(ctx->a, "mailbox is full (quota %lld exceeded)", quota);
    }
    if (st == ST_OK && fsync(fd) != 0) {
        st = ST_DEFER;
        err = arena_printf(ctx->a, "fsync of %s failed: %s", path, strerror(errno));
    }
    if (st != ST_OK) {
        if (ftruncate(fd, start) != 0)
            log_write(LOG_MAIN | LOG_PANIC, "failed to roll back %s after a failed delivery", path);
    }
    close(fd);
    if (lfd >= 0) {
        close(lfd);
        unlink(lockpath);
    }
    if (st != ST_OK)
        return fail_addr(a, ST_DEFER, err);
    a->result = ST_OK;
    return ST_OK;
}

/* "directory" without maildir_format: each message in its own file, first
 * written under a temporary name, then renamed to directory_file (expanded
 * with $inode set). */
static status deliver_dirfile(const driver_inst *t, address_item *a, tp_ctx *ctx, const char *dir)
{
    mode_t mode = (mode_t)(driver_opt(t, "mode") ? driver_opt(t, "mode")->n : 0600);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        mode_t dm = (mode_t)(driver_opt(t, "directory_mode") ? driver_opt(t, "directory_mode")->n : 0700);
        if (!tp_opt_bool(t, "create_directory") || !mkdirs(dir, dm))
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "directory %s is missing and could not be created", dir));
    }
    char tpath[PATH_MAX];
    snprintf(tpath, sizeof tpath, "%s/temp.%d.%s", dir, (int)getpid(), ctx->m->id);
    int fd = open(tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "failed to create %s: %s", tpath, strerror(errno)));
    write_opts wo = { 0 };
    wo.top_headers = tp_top_headers(t, a, ctx);
    wo.add_headers = tp_added_headers(t, a, ctx);
    char *err = NULL;
    unsigned long long bytes;
    status st = transport_write_message(ctx->m, ctx->data_fd, &wo, write_to_fd, &fd, &bytes, ctx->a, &err);
    if (st == ST_OK && fsync(fd) != 0)
        st = ST_DEFER;
    fstat(fd, &sb);
    close(fd);
    if (st != ST_OK) {
        unlink(tpath);
        return fail_addr(a, ST_DEFER, err ? err : "write failed");
    }
    vars_set_inode((unsigned long)sb.st_ino);
    const char *name;
    if (tp_opt_expand(t, "directory_file", ctx, &name, &err) != ST_OK || !name || !*name || strchr(name, '/')) {
        unlink(tpath);
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "bad directory_file in %s transport: %s", t->name,
                                                   err ? err : "empty or contains /"));
    }
    char npath[PATH_MAX];
    snprintf(npath, sizeof npath, "%s/%s", dir, name);
    if (rename(tpath, npath) != 0) {
        unlink(tpath);
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "rename to %s failed: %s", npath, strerror(errno)));
    }
    a->result = ST_OK;
    return ST_OK;
}

static status deliver_maildir(const driver_inst *t, address_item *a, tp_ctx *ctx, const char *dir)
{
    mode_t dm = (mode_t)(driver_opt(t, "directory_mode") ? driver_opt(t, "directory_mode")->n : 0700);
    mode_t mode = (mode_t)(driver_opt(t, "mode") ? driver_opt(t, "mode")->n : 0600);
    char tmp[PATH_MAX], cur[PATH_MAX], newd[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    snprintf(cur, sizeof cur, "%s/cur", dir);
    snprintf(newd, sizeof newd, "%s/new", dir);
    struct stat sb;
    if (stat(tmp, &sb) != 0 || stat(newd, &sb) != 0 || stat(cur, &sb) != 0) {
        if (!tp_opt_bool(t, "create_directory") || !mkdirs(tmp, dm) || !mkdirs(newd, dm) || !mkdirs(cur, dm))
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "maildir %s is missing and could not be created", dir));
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char host[256];
    gethostname(host, sizeof host);
    for (char *p = host; *p; p++)
        if (*p == '/' || *p == ':')
            *p = '_';
    char name[512];
    snprintf(name, sizeof name, "%ld.M%ldP%dQ%s.%s", (long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(), ctx->m->id, host);
    char tpath[PATH_MAX + 600], npath[PATH_MAX + 600];
    snprintf(tpath, sizeof tpath, "%s/%s", tmp, name);
    int fd = open(tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "failed to create %s: %s", tpath, strerror(errno)));
    write_opts wo = { 0 };
    wo.top_headers = tp_top_headers(t, a, ctx);
    wo.add_headers = tp_added_headers(t, a, ctx);
    char *err = NULL;
    const char *hr;
    tp_opt_expand(t, "headers_remove", ctx, &hr, &err);
    wo.remove_headers = hr;
    unsigned long long bytes;
    status st = transport_write_message(ctx->m, ctx->data_fd, &wo, write_to_fd, &fd, &bytes, ctx->a, &err);
    if (st == ST_OK && fsync(fd) != 0) {
        st = ST_DEFER;
        err = arena_printf(ctx->a, "fsync failed: %s", strerror(errno));
    }
    close(fd);
    if (st != ST_OK) {
        unlink(tpath);
        return fail_addr(a, ST_DEFER, err);
    }
    snprintf(npath, sizeof npath, "%s/%s,S=%llu", newd, name, bytes);
    if (rename(tpath, npath) != 0) {
        unlink(tpath);
        return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "rename into %s failed: %s", newd, strerror(errno)));
    }
    a->result = ST_OK;
    return ST_OK;
}

static status appendfile_run(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    address_item *a = addrs;
    tp_set_vars(t, a);
    const char *file = NULL, *dir = NULL;
    char *err = NULL;
    if (a->flags & AF_FILE) {
        /* a "/path" from a redirect: a directory when it ends in '/' */
        size_t n = strlen(a->address);
        if (a->address[n - 1] == '/')
            dir = arena_strndup(ctx->a, a->address, n - 1);
        else
            file = a->address;
    } else {
        if (tp_opt_expand(t, "file", ctx, &file, &err) != ST_OK ||
            tp_opt_expand(t, "directory", ctx, &dir, &err) != ST_OK)
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "expansion of file/directory failed in %s transport: %s",
                                                       t->name, err ? err : ""));
    }
    /* a path built from outside data ($local_part, ...) is refused, as
     * Exim does: use $local_part_data and the like, which routers check */
    if (!(a->flags & AF_FILE)) {
        const char *p = file && *file ? file : dir;
        if (p && is_tainted(p))
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "Tainted '%s' (file or directory name for %s transport) "
                                                       "not permitted", p, t->name));
    }
    if (file && *file) {
        if (file[0] != '/')
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "file name \"%s\" is not absolute", file));
        if (strstr(file, "/../"))
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "file name \"%s\" contains /../", file));
        return deliver_mbox(t, a, ctx, file);
    }
    if (dir && *dir) {
        if (dir[0] != '/')
            return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "directory \"%s\" is not absolute", dir));
        return tp_opt_bool(t, "maildir_format") ? deliver_maildir(t, a, ctx, dir) : deliver_dirfile(t, a, ctx, dir);
    }
    return fail_addr(a, ST_DEFER, arena_printf(ctx->a, "neither file nor directory is set in %s transport", t->name));
}

/* A batch (batch_max) gets one copy of the message, with every address in
 * Envelope-to:, and shares its result. */
status transport_appendfile(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    status st = appendfile_run(t, addrs, ctx);
    for (address_item *b = addrs->next; b; b = b->next) {
        b->result = addrs->result;
        b->message = addrs->message;
    }
    return st;
}
