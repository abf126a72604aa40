/* appendfile_dir.c: appendfile's deliveries into a directory, a new file
 * per message, as Exim makes them:
 *
 *   - maildir_format: the delivery directory gets tmp/, new/ and cur/
 *     (create_directory), and a maildirfolder file when its name matches
 *     maildirfolder_create_regex; the message is written as
 *     tmp/<sec>.M<usec>P<pid>.<host> (retried maildir_retries times, two
 *     seconds apart, while the name is taken) and renamed into new/, with
 *     maildir_tag (expanded after writing, $message_size then being what
 *     was written) appended;
 *   - mailstore_format: <directory>/<id>-<pid in base 62> .env (the
 *     envelope, between mailstore_prefix and mailstore_suffix, written as
 *     .tmp and renamed last) and .msg (the message);
 *   - neither: written as temp.<pid>.<host>, then linked to the name
 *     directory_file gives ($inode set), retried while that name exists
 *     and changes.
 *
 * Quota: the size of the directory tree (quota_directory, or the parent
 * of a maildir++ folder with a maildirfolder file) found by adding up its
 * files, a size in a file's name (quota_size_regex) saving the stat; or
 * the maildir++ maildirsize file (maildir_use_size_file), for the
 * directories maildir_quota_directory_regex selects; or mailbox_size and
 * mailbox_filecount given by the configuration.  quota_filecount limits
 * the number of files. */
#include "transport/appendfile.h"
#include "config/config.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/vars_state.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SIZEFILE_MAX 5120          /* a longer maildirsize file is recalculated */
#define SIZEFILE_STALE (15 * 60)   /* over quota and older than this: recalculated */
#define DIR_RACE_TRIES 10

/* ---- sizes ------------------------------------------------------------------- */

/* The size of the files under dir (each divided by its link count),
 * counting every entry in *count.  A file name that size_re matches
 * with its first group all digits gives the size without a stat. */
long long af_dir_size(const char *dir, long long *count, const void *size_re)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    long long sum = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *name = ent->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        (*count)++;
        size_t s0, s1;
        if (size_re && af_regex_match((void *)size_re, name, &s0, &s1)) {
            char *end;
            double v = strtod(name + s0, &end);
            if (end == name + s1) {
                sum += (long long)v;
                continue;
            }
        }
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
            continue;
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISREG(sb.st_mode))
            sum += (long long)(sb.st_size / (off_t)sb.st_nlink);
        else if (S_ISDIR(sb.st_mode))
            sum += af_dir_size(path, count, size_re);
    }
    closedir(d);
    return sum;
}

/* A maildir's size: the directories dir_re selects (cur, new, and the
 * ".folder" ones, which are maildirs themselves).  *latest gets the
 * newest modification time of those directories; timestamp_only skips
 * the sizes. */
static long long maildir_size(const char *path, long long *count, time_t *latest, const void *size_re,
                              const void *dir_re, bool timestamp_only)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    long long sum = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *name = ent->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        if (dir_re && !af_regex_match((void *)dir_re, name, NULL, NULL))
            continue;
        char s[PATH_MAX];
        struct stat sb;
        if (snprintf(s, sizeof s, "%s/%s", path, name) >= (int)sizeof s || stat(s, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (sb.st_mtime > *latest)
            *latest = sb.st_mtime;
        if (name[0] == '.')
            sum += maildir_size(s, count, latest, size_re, dir_re, timestamp_only);
        else if (!timestamp_only)
            sum += af_dir_size(s, count, size_re);
    }
    closedir(d);
    return sum;
}

/* The maildirsize file of the maildir at path: made (from a scan) when
 * missing, unreadable, too long, for another quota, or when it says the
 * maildir is over quota and it has several entries or is stale.  Returns
 * the open file (-1: an error, errno set; -2: dropped because the
 * maildir changed during the scan) and the size and count it gives. */
static int sizefile(af_job *j, const char *path, const void *size_re, const void *dir_re, long long *size_out,
                    long long *count_out)
{
    const af_opts *o = j->o;
    mode_t mode = o->mode ? o->mode : 0600;
    char filename[PATH_MAX], buf[SIZEFILE_MAX];
    snprintf(filename, sizeof filename, "%s/maildirsize", path);
    long long size = 0, filecount = 0, cached_quota = 0, cached_count = 0;
    int linecount = 0;
    int fd = open(filename, O_RDWR | O_APPEND | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno != ENOENT)
            return -1;
        goto recalculate;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf)
        goto recalculate;
    buf[n] = '\0';
    /* the first line: the quota ("<n>S") and file count quota ("<n>C") */
    char *ptr = buf, *end;
    for (;;) {
        double v = strtod(ptr, &end);
        if (*end == 'S')
            cached_quota = (long long)v;
        else if (*end == 'C')
            cached_count = (long long)v;
        if (!isalpha((unsigned char)*end++))
            goto recalculate;
        if (*end == '\n' || !*end)
            break;
        if (*end++ != ',')
            goto recalculate;
        ptr = end;
    }
    if (cached_quota != o->quota || cached_count != o->quota_filecount)
        goto recalculate;
    /* then one "<size> <count>" line per change */
    while (*end++ == '\n' && *end) {
        linecount++;
        size += (long long)strtod(end, &end);
        if (*end != ' ')
            break;
        filecount += strtol(end + 1, &end, 10);
    }
    if (*end)
        goto recalculate;                  /* a syntax error */
    if (size < 0 || filecount < 0)
        goto recalculate;
    if (o->quota > 0 &&
        (size + (o->quota_inclusive ? j->msg_size : 0) > o->quota ||
         (o->quota_filecount > 0 && filecount + (o->quota_inclusive ? 1 : 0) > o->quota_filecount))) {
        struct stat sb;
        if (linecount > 1 || fstat(fd, &sb) < 0 || time(NULL) - sb.st_mtime > SIZEFILE_STALE)
            goto recalculate;
    }
    *size_out = size;
    *count_out = filecount;
    return fd;

recalculate:
    if (fd >= 0)
        close(fd);
    time_t old_latest = 0, new_latest = 0;
    filecount = 0;
    size = maildir_size(path, &filecount, &old_latest, size_re, dir_re, false);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char tempname[PATH_MAX];
    snprintf(tempname, sizeof tempname, "%s/tmp/%ld.H%luP%lu.%s", path, (long)tv.tv_sec, (unsigned long)tv.tv_usec,
             (unsigned long)getpid(), cfg_str(MO_primary_hostname));
    fd = open(tempname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd >= 0) {
        int len = snprintf(buf, sizeof buf, "%lldS,%dC\n%lld %d\n", o->quota, (int)o->quota_filecount, size,
                           (int)filecount);
        if (write(fd, buf, (size_t)len) != len || rename(tempname, filename) < 0) {
            close(fd);
            fd = -1;
        }
    }
    /* a directory changed meanwhile: the new file may be wrong already */
    long long dummy = 0;
    maildir_size(path, &dummy, &new_latest, NULL, dir_re, true);
    if (new_latest > old_latest) {
        unlink(filename);
        if (fd >= 0)
            close(fd);
        fd = -2;
    }
    *size_out = size;
    *count_out = filecount;
    return fd;
}

static void sizefile_record(int fd, unsigned long long size)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%d 1\n", (int)size);
    if (lseek(fd, 0, SEEK_END) >= 0 && write(fd, line, (size_t)n) != n)
        return;                            /* nothing more to do about it */
}

/* ---- maildir -------------------------------------------------------------------- */

/* The delivery directory and its tmp/, new/ and cur/ (made when missing
 * and create_directory is set), then the working directory is the
 * maildir; a maildirfolder file when the name matches
 * maildirfolder_create_regex. */
static bool maildir_dirs(af_job *j)
{
    const af_opts *o = j->o;
    const char *path = j->path;
    arena *ar = j->ctx->a;
    static const char *const subdirs[] = { "/tmp", "/new", "/cur" };
    for (int i = 0; i < 4; i++) {
        const char *mdir = i ? subdirs[i - 1] : "", *dir = i ? mdir + 1 : path;
        int k;
        for (k = 0; k < DIR_RACE_TRIES; k++) {
            struct stat sb;
            if (stat(dir, &sb) == 0) {
                if (S_ISDIR(sb.st_mode))
                    break;
                af_defer(j, AFE_NOTDIRECTORY, arena_printf(ar, "%s%s is not a directory", path, mdir));
                return false;
            }
            if (errno == ENOENT && o->create_directory) {
                if (!af_mkdirs(dir, o->dirmode)) {
                    if (errno == EEXIST)
                        continue;
                    af_syserr(j, "cannot create %s%s", path, mdir);
                    return false;
                }
                break;
            }
            af_syserr(j, "stat() error for %s%s: %s", path, mdir, strerror(errno));
            return false;
        }
        if (k >= DIR_RACE_TRIES) {        /* coming and going: the message is frozen */
            af_syserr(j, "existence of %s%s unclear\n", path, mdir);
            j->a->freeze = true;
            return false;
        }
        if (i == 0 && chdir(path) != 0) {
            af_syserr(j, "cannot chdir to %s", path);
            return false;
        }
    }
    const char *mre = tp_opt(o->t, "maildirfolder_create_regex");
    if (mre) {
        char *err = NULL;
        void *re = af_regex(mre, ar, &err);
        if (!re) {
            j->a->result = ST_DEFER;
            j->a->message = err;
            return false;
        }
        bool m = af_regex_match(re, path, NULL, NULL);
        pcre2_code_free(re);
        struct stat sb;
        const char *fname = arena_printf(ar, "%s/maildirfolder", path);
        if (m && stat(fname, &sb) != 0) {
            int fd = open(fname, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0) {
                j->a->result = ST_DEFER;
                j->a->message = arena_printf(ar, "appendfile: failed to create maildirfolder file in %s directory: %s",
                                             path, strerror(errno));
                return false;
            }
            close(fd);
        }
    }
    return true;
}

/* The maildir tag: printing characters but "/", a ':' put first when it
 * starts with a letter or digit. */
static const char *clean_tag(const char *s, arena *ar)
{
    char *out = arena_alloc(ar, strlen(s) + 2), *p = out;
    for (; *s; s++)
        if (isgraph((unsigned char)*s) && *s != '/') {
            if (p == out && isalnum((unsigned char)*s))
                *p++ = ':';
            *p++ = *s;
        }
    *p = '\0';
    return out;
}

/* Maildir names are unique by time and pid: the clock must move on
 * before this process may end. */
static void wait_for_tick(const struct timeval *then)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    long diff = (long)(now.tv_sec - then->tv_sec) * 1000000L + (long)(now.tv_usec - then->tv_usec);
    if (diff <= 0)
        usleep((useconds_t)(1 - diff));
}

/* ---- mailstore ------------------------------------------------------------------ */

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* mailstore_prefix or _suffix into the envelope file, ending in a
 * newline; a forced failure leaves it out */
static bool envelope_affix(af_job *j, FILE *f, const char *opt, const char *what)
{
    const char *raw = tp_opt(j->o->t, opt);
    if (!raw)
        return true;
    char *s = NULL, *e = NULL;
    status st = expand_string(raw, j->ctx->a, &s, &e);
    if (st == ST_FAIL_FORCED)
        return true;
    if (st != ST_OK) {
        j->a->result = ST_DEFER;
        j->a->basic_errno = AFE_UNKNOWN;
        j->a->message = arena_printf(j->ctx->a, "Expansion of \"%s\" (mailstore %s for %s transport) failed: %s", raw,
                                     what, j->o->name, e ? e : "");
        return false;
    }
    size_t n = strlen(s);
    fputs(s, f);
    if (!n || s[n - 1] != '\n')
        fputc('\n', f);
    return true;
}

/* The .tmp envelope file (closed), then the .msg file, open: its fd;
 * -1 (nothing left behind) with the address's error set. */
static int mailstore_open(af_job *j, const char *filename, const char *dataname, mode_t mode)
{
    const af_opts *o = j->o;
    arena *ar = j->ctx->a;
    int fd = open(filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && (errno != ENOENT || !o->create_directory || !af_mkdirs(j->path, o->dirmode) ||
                   (fd = open(filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)) {
        af_syserr(j, "while creating file %s", filename);
        return -1;
    }
    if (fchown(fd, j->uid, j->gid) != 0 || fchmod(fd, mode) != 0) {
        af_syserr(j, "while setting perms on file %s", filename);
        close(fd);
        unlink(filename);
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        af_defer(j, AFE_UNKNOWN, arena_printf(ar, "fdopen of %s (for %s transport) failed", filename, o->name));
        close(fd);
        unlink(filename);
        return -1;
    }
    if (!envelope_affix(j, f, "mailstore_prefix", "prefix")) {
        fclose(f);
        unlink(filename);
        return -1;
    }
    fprintf(f, "%s\n", ps.sender_address ? ps.sender_address : "");
    for (address_item *b = j->a; b; b = b->next)
        fprintf(f, "%s@%s\n", b->local_part, b->domain);
    if (!envelope_affix(j, f, "mailstore_suffix", "suffix")) {
        fclose(f);
        unlink(filename);
        return -1;
    }
    if (fclose(f) != 0) {
        af_syserr(j, "while closing %s", filename);
        unlink(filename);
        return -1;
    }
    fd = open(dataname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        af_syserr(j, "while creating file %s", dataname);
        unlink(filename);
        return -1;
    }
    if (fchown(fd, j->uid, j->gid) != 0 || fchmod(fd, mode) != 0) {
        af_syserr(j, "while setting perms on file %s", dataname);
        close(fd);
        unlink(filename);
        unlink(dataname);
        return -1;
    }
    return fd;
}

/* ---- quota set-up -------------------------------------------------------------- */

/* The directory the quota is about, the current size and file count.
 * false with the address's error set. */
static bool quota_setup(af_job *j, void **size_re)
{
    const af_opts *o = j->o;
    address_item *a = j->a;
    arena *ar = j->ctx->a;
    const char *check_path = j->path;
    bool threshold = o->warn_threshold > 0 && (!o->warn_percent || o->quota > 0);
    char *err = NULL;
    if (o->quota > 0 || threshold || o->maildir_use_size_file) {
        const char *qre = tp_opt(o->t, "quota_size_regex");
        if (qre && !(*size_re = af_regex(qre, ar, &err))) {
            a->result = ST_DEFER;
            a->message = err;
            return false;
        }
        const char *qd = tp_opt(o->t, "quota_directory");
        if (qd) {
            char *x = NULL;
            if (expand_string(qd, ar, &x, &err) != ST_OK || !x) {
                af_defer(j, AFE_UNKNOWN, arena_printf(ar, "Expansion of \"%s\" (quota_directory name for %s "
                                                      "transport) failed: %s", qd, o->name, err ? err : ""));
                return false;
            }
            if (x[0] != '/') {
                af_defer(j, AFE_NOTABSOLUTE, arena_printf(ar, "appendfile: quota_directory name \"%s\" is not "
                                                          "absolute", x));
                return false;
            }
            check_path = x;
        } else if (o->maildir) {
            /* a maildir++ folder: the quota is the whole maildir's */
            struct stat sb;
            if (stat(arena_printf(ar, "%s/maildirfolder", j->path), &sb) >= 0) {
                char *cp = arena_strdup(ar, check_path), *slash = strrchr(cp, '/');
                if (slash && !slash[1]) {
                    *slash = '\0';
                    slash = strrchr(cp, '/');
                }
                if (slash) {
                    *slash = '\0';
                    check_path = cp;
                }
            }
        }
    }
    if (o->maildir_use_size_file) {
        void *dir_re = NULL;
        const char *dre = tp_opt(o->t, "maildir_quota_directory_regex");
        if (dre) {
            if (!(dir_re = af_regex(dre, ar, &err))) {
                a->result = ST_DEFER;
                a->message = err;
                return false;
            }
            /* delivering into a directory the quota leaves out: no quota */
            size_t len = strlen(check_path);
            if (!strncmp(j->path, check_path, len)) {
                const char *s = j->path + len;
                while (*s == '/')
                    s++;
                if (!af_regex_match(dir_re, *s ? arena_printf(ar, "%s/new", s) : "new", NULL, NULL))
                    j->disable_quota = true;
            }
        }
        if (!j->disable_quota) {
            long long size = 0, count = 0;
            int fd = sizefile(j, check_path, *size_re, dir_re, &size, &count);
            if (fd == -1) {
                af_syserr(j, "while opening or reading %s/maildirsize", check_path);
                if (dir_re)
                    pcre2_code_free(dir_re);
                return false;
            }
            j->sizefile_fd = fd;
            if (j->mailbox_size < 0)
                j->mailbox_size = size;
            if (j->mailbox_filecount < 0)
                j->mailbox_filecount = count;
        }
        if (dir_re)
            pcre2_code_free(dir_re);
    }
    if (!j->disable_quota && (o->quota > 0 || threshold) &&
        (j->mailbox_size < 0 || (j->mailbox_filecount < 0 && o->quota_filecount > 0))) {
        long long count = 0;
        long long size = af_dir_size(check_path, &count, *size_re);
        if (j->mailbox_size < 0)
            j->mailbox_size = size;
        if (j->mailbox_filecount < 0)
            j->mailbox_filecount = count;
    }
    return true;
}

/* ---- the delivery --------------------------------------------------------------- */

status af_deliver_dir(af_job *j)
{
    const af_opts *o = j->o;
    address_item *a = j->a;
    arena *ar = j->ctx->a;
    const char *path = j->path, *host = cfg_str(MO_primary_hostname);
    mode_t mode = a->mode > 0 ? (mode_t)a->mode : o->mode;
    void *size_re = NULL;
    const char *filename = NULL, *dataname = NULL, *newname = NULL, *nametag = NULL;
    int fd = -1;
    struct timeval msg_tv = { 0 };
    bool tick = false;
    status yield = ST_DEFER;
    j->sizefile_fd = -1;

    if (o->maildir && !maildir_dirs(j))
        return ST_DEFER;
    if (!quota_setup(j, &size_re))
        goto out;

    char *err = NULL;
    if (o->maildir) {
        /* maildir_tag: a hard expansion failure is known now, before the
         * message is written (it is expanded again after) */
        nametag = tp_opt(o->t, "maildir_tag");
        char *x = NULL;
        status ts = nametag ? expand_string(nametag, ar, &x, &err) : ST_OK;
        if (ts != ST_OK && ts != ST_FAIL_FORCED) {
            af_defer(j, AFE_UNKNOWN, arena_printf(ar, "Expansion of \"%s\" (maildir_tag for %s transport) failed: %s",
                                                  nametag, o->name, err ? err : ""));
            goto out;
        }
        for (int i = 1;; i++) {
            gettimeofday(&msg_tv, NULL);
            const char *base = arena_printf(ar, "%ld.M%luP%ld.%s", (long)msg_tv.tv_sec, (unsigned long)msg_tv.tv_usec,
                                            (long)getpid(), host);
            filename = dataname = arena_printf(ar, "tmp/%s", base);
            newname = arena_printf(ar, "new/%s", base);
            struct stat sb;
            if (stat(filename, &sb) == 0)
                errno = EEXIST;
            else if (errno == ENOENT && (fd = open(filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) >= 0)
                break;
            if (i >= o->maildir_retries) {
                int e = errno;
                af_defer(j, e, arena_printf(ar, "failed to open %s (%d tr%s)", filename, i, i == 1 ? "y" : "ies"));
                if (e == EDQUOT || e == ENOSPC)
                    a->user_message = "mailbox is full";
                filename = NULL;
                goto out;
            }
            sleep(2);
        }
        tick = true;
    } else if (o->mailstore) {
        char b62[7];
        unsigned long v = (unsigned long)getpid();
        for (int i = 5; i >= 0; i--, v /= 62)
            b62[i] = base62[v % 62];
        b62[6] = '\0';
        const char *base = arena_printf(ar, "%s/%s-%s", path, ps.message_id ? ps.message_id : j->ctx->m->id, b62);
        filename = arena_printf(ar, "%s.tmp", base);
        newname = arena_printf(ar, "%s.env", base);
        dataname = arena_printf(ar, "%s.msg", base);
        if ((fd = mailstore_open(j, filename, dataname, mode)) < 0) {
            filename = NULL;
            goto out;
        }
    } else {
        filename = dataname = arena_printf(ar, "%s/temp.%d.%s", path, (int)getpid(), host);
        fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 && (errno != ENOENT || !o->create_directory || !af_mkdirs(path, o->dirmode) ||
                       (fd = open(filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)) {
            af_syserr(j, "while creating file %s", filename);
            filename = NULL;
            goto out;
        }
    }
    if (fchown(fd, j->uid, j->gid) != 0 || fchmod(fd, mode) != 0) {
        af_syserr(j, o->maildir ? "while setting perms on maildir %s" : "while setting perms on file %s", filename);
        goto out;
    }

    int werr = 0;
    yield = ST_OK;
    if (!af_quota_ok(j)) {
        yield = ST_DEFER;
        werr = AFE_EXIMQUOTA;
    }
    if (yield == ST_OK)
        yield = af_write(j, fd, &werr);
    if (yield == ST_OK && fsync(fd) < 0) {
        yield = ST_DEFER;
        werr = errno;
    }
    if (!j->disable_quota && yield == ST_OK && j->sizefile_fd >= 0)
        sizefile_record(j->sizefile_fd, j->written);
    af_threshold(j);
    if (yield != ST_OK) {
        af_write_failed(j, werr, dataname);
        goto out;
    }
    a->basic_errno = 0;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        af_syserr(j, "while fstatting opened message file %s", filename);
        goto out;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) < 0) {
        af_syserr(j, "close() error for %s", o->mailstore ? dataname : filename);
        goto out;
    }
    if (!newname) {
        /* directory_file, expanded with $inode; an existing name is not
         * replaced: a new expansion a second later (up to five) */
        const char *old_leaf = "", *df = tp_opt(o->t, "directory_file");
        if (!df)
            df = "q${base62:$tod_epoch}-$inode";
        for (int i = 0;; sleep(1), i++) {
            vars_set_inode((unsigned long)sb.st_ino);
            char *leaf = NULL;
            status st = expand_string(df, ar, &leaf, &err);
            vars_set_inode(0);
            if (st != ST_OK || !leaf) {
                af_defer(j, AFE_UNKNOWN, arena_printf(ar, "Expansion of \"%s\" (directory_file for %s transport) "
                                                      "failed: %s", df, o->name, err ? err : ""));
                goto out;
            }
            const char *target = arena_printf(ar, "%s/%s", path, leaf);
            if (link(filename, target) < 0) {
                if (errno != EEXIST || i >= 4 || !strcmp(leaf, old_leaf)) {
                    af_syserr(j, "while renaming %s as %s", filename, target);
                    goto out;
                }
                old_leaf = leaf;
                continue;
            }
            unlink(filename);
            filename = NULL;
            break;
        }
    } else {
        const char *target = newname;
        if (nametag) {
            /* $message_size is what was written */
            long saved = ps.message_size;
            ps.message_size = (long)j->written;
            char *x = NULL;
            if (expand_string(nametag, ar, &x, &err) == ST_OK && x)
                target = arena_printf(ar, "%s%s", newname, clean_tag(x, ar));
            ps.message_size = saved;
        }
        if (rename(filename, target) < 0 &&
            (!nametag || errno != ENAMETOOLONG || (target = newname, rename(filename, target) < 0))) {
            af_syserr(j, "while renaming %s as %s", filename, target);
            goto out;
        }
        filename = dataname = NULL;
    }
    a->result = ST_OK;

out:
    if (j->sizefile_fd >= 0)
        close(j->sizefile_fd);
    if (size_re)
        pcre2_code_free(size_re);
    if (fd >= 0)
        close(fd);
    if (filename) {
        unlink(filename);
        if (dataname && dataname != filename)
            unlink(dataname);
    }
    if (tick)
        wait_for_tick(&msg_tv);
    return a->result;
}
