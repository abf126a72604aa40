/* appendfile_mbox.c: appendfile's delivery to one file ("file", or a
 * "/path" from a redirect), as Exim does it:
 *
 *   - /dev/null: nothing to do;
 *   - create_directory makes the missing directories (create_file allowing);
 *   - file_format: an existing file's first bytes choose the transport;
 *   - use_lockfile: <file>.lock, made by linking a "hitching post" to it
 *     (safe over NFS), retried lock_retries times lock_interval apart, a
 *     lock file older than lockfile_timeout removed;
 *   - the file is checked before and after it is opened: owner
 *     (check_owner, check_group), one link, a regular file (or a FIFO with
 *     allow_fifo; a symbolic link only with allow_symlink), its mode
 *     (wider is reduced to "mode", narrower defers unless
 *     mode_fail_narrower is false), the same inode; a missing file is
 *     created unless file_must_exist, or create_file forbids it there;
 *   - fcntl and/or flock locks (blocking with lock_fcntl_timeout /
 *     lock_flock_timeout), or MBX locking (a shared lock on the mailbox,
 *     an exclusive one on /tmp/.<dev>.<inode>); a failed lock closes the
 *     file and starts again;
 *   - quota, then the message (for MBX first into a temporary file, to
 *     know its size for the MBX header); a failure truncates the file
 *     back; the access time is kept, the modification time set. */
#include "transport/appendfile.h"
#include "transport/write.h"
#include "config/config.h"
#include "core/list.h"
#include "core/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#define FORMAT_DEPTH_MAX 10     /* file_format passing to file_format ... */

static int format_depth;

static status fail(af_job *j, int err, const char *fmt, const char *name)
{
    return af_defer(j, err, arena_printf(j->ctx->a, fmt, name));
}

/* ---- locks ------------------------------------------------------------------ */

static volatile sig_atomic_t alarm_seen;

static void on_alarm(int sig)
{
    (void)sig;
    alarm_seen = 1;
}

/* A blocking lock call with a timeout (SIGALRM interrupts it) */
static int timed(int fd, int how, struct flock *fl, long timeout)
{
    struct sigaction sa = { .sa_handler = on_alarm }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarm((unsigned)timeout);
    int rc = fl ? fcntl(fd, F_SETLKW, fl) : flock(fd, how);
    int e = errno;
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    errno = e;
    return rc;
}

/* fcntl() and/or flock() locks of type F_WRLCK or F_RDLCK, non-blocking
 * unless a timeout is given.  alarm_seen tells of a timeout. */
static int apply_lock(int fd, short type, bool dofcntl, long fcntl_timeout, bool doflock, long flock_timeout)
{
    int rc = 0;
    alarm_seen = 0;
    if (dofcntl) {
        struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
        rc = fcntl_timeout > 0 ? timed(fd, 0, &fl, fcntl_timeout) : fcntl(fd, F_SETLK, &fl);
    }
    if (doflock && rc >= 0) {
        int how = type == F_WRLCK ? LOCK_EX : LOCK_SH;
        rc = flock_timeout > 0 ? timed(fd, how, NULL, flock_timeout) : flock(fd, how | LOCK_NB);
    }
    return rc;
}

/* The lock file: a unique "hitching post" linked to <file>.lock */
static status make_lockfile(af_job *j, const char *lockname)
{
    const af_opts *o = j->o;
    const char *hitch = arena_printf(j->ctx->a, "%s.%s.%08x.%08x", lockname, cfg_str(MO_primary_hostname),
                                     (unsigned)time(NULL), (unsigned)getpid());
    int i;
    for (i = 0; i < o->lock_retries; sleep((unsigned)o->lock_interval), i++) {
        int hd = open(hitch, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, o->lockfile_mode);
        if (hd < 0)
            return af_syserr(j, "creating lock file hitching post %s (euid=%ld egid=%ld)", hitch, (long)geteuid(),
                             (long)getegid());
        struct stat sb = { 0 };
        int rc = link(hitch, lockname);
        if (rc != 0)
            fstat(hd, &sb);
        close(hd);
        unlink(hitch);
        if (rc != 0 && sb.st_nlink != 2) {
            if (o->lockfile_timeout > 0 && stat(lockname, &sb) == 0 && time(NULL) - sb.st_ctime > o->lockfile_timeout)
                unlink(lockname);          /* left behind: too old */
            continue;
        }
        return ST_OK;
    }
    return fail(j, AFE_LOCKFAILED, "failed to lock mailbox %s (lock file)", j->path);
}

/* MBX locking: a shared lock on the mailbox, an exclusive one on
 * /tmp/.<dev>.<inode> (created with lockfile_mode, never through a
 * link).  Returns 1 when locked, 0 to try again, -1 on an error (the
 * address says which). */
static int mbx_lock(af_job *j, int fd, char *lockname, size_t lsize, int *lockfd)
{
    const af_opts *o = j->o;
    arena *ar = j->ctx->a;
    struct stat sb, lsb, fsb;
    if (apply_lock(fd, F_RDLCK, o->use_fcntl, o->lock_fcntl_timeout, o->use_flock, o->lock_flock_timeout) < 0 ||
        fstat(fd, &sb) < 0)
        return 0;
    snprintf(lockname, lsize, "/tmp/.%lx.%lx", (long)sb.st_dev, (long)sb.st_ino);
    if (lstat(lockname, &sb) >= 0) {
        if (S_ISLNK(sb.st_mode)) {
            fail(j, AFE_LOCKFAILED, "symbolic link on MBX lock file %s", lockname);
            return -1;
        }
        if (sb.st_nlink > 1) {
            fail(j, AFE_LOCKFAILED, "hard link to MBX lock file %s", lockname);
            return -1;
        }
    }
    int lfd = open(lockname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, o->lockfile_mode);
    if (lfd < 0) {
        af_defer(j, AFE_LOCKFAILED, arena_printf(ar, "failed to open MBX lock file %s :%s", lockname, strerror(errno)));
        return -1;
    }
    *lockfd = lfd;
    if (lstat(lockname, &lsb) < 0) {
        af_defer(j, AFE_LOCKFAILED, arena_printf(ar, "attempting to lstat open MBX lock file %s: %s", lockname,
                                                 strerror(errno)));
        return -1;
    }
    if (fstat(lfd, &fsb) < 0) {
        af_defer(j, AFE_LOCKFAILED, arena_printf(ar, "attempting to stat fd of open MBX lock file %s: %s", lockname,
                                                 strerror(errno)));
        return -1;
    }
    if (fsb.st_nlink > 1 || lsb.st_nlink > 1 || !S_ISREG(lsb.st_mode) || lsb.st_dev != fsb.st_dev ||
        lsb.st_ino != fsb.st_ino) {
        af_defer(j, AFE_LOCKFAILED, arena_printf(ar, "RACE CONDITION detected: mismatch post-initial-checks between "
                                                 "\"%s\" and opened fd lead us to abort!", lockname));
        return -1;
    }
    chmod(lockname, o->lockfile_mode);
    if (apply_lock(lfd, F_WRLCK, o->use_fcntl, o->lock_fcntl_timeout, o->use_flock, o->lock_flock_timeout) >= 0 &&
        lstat(lockname, &sb) == 0 && fstat(lfd, &fsb) == 0 && sb.st_dev == fsb.st_dev && sb.st_ino == fsb.st_ino)
        return 1;
    close(lfd);
    *lockfd = -1;
    return 0;
}

/* ---- file_format ----------------------------------------------------------- */

/* The transport an existing file's first bytes ask for (t itself to go
 * on here), or NULL with the address's error set. */
static const driver_inst *check_format(af_job *j, int fd)
{
    const driver_inst *t = j->o->t;
    const char *list = tp_opt(t, "file_format");
    char data[256];
    ssize_t len = read(fd, data, sizeof data);
    if (len == 0)
        return t;                      /* an empty file suits this transport */
    int sep = 0;
    char *s;
    while ((s = list_next(&list, &sep, j->ctx->a))) {
        size_t slen = strlen(s);
        bool match = len >= (ssize_t)slen && memcmp(data, s, slen) == 0;
        char *tp = list_next(&list, &sep, j->ctx->a);
        if (!match || !tp)
            continue;
        const driver_inst *tt = config_driver(DC_TRANSPORT, tp);
        if (tt)
            return tt;
        af_defer(j, AFE_BADTRANSPORT, arena_printf(j->ctx->a, "%s transport (for %.*s format) not found", tp,
                                                   (int)slen, data));
        return NULL;
    }
    af_defer(j, AFE_FORMATUNKNOWN, "mailbox file format unrecognized");
    return NULL;
}

/* ---- MBX -------------------------------------------------------------------- */

#define MBX_HDRSIZE 2048
#define MBX_NUSERFLAGS 30

static bool write_all(int fd, const char *p, size_t n)
{
    return write_to_fd(&fd, p, n);         /* (transport/write.c) */
}

/* Copy the message from the temporary file to the mailbox with the MBX
 * separator line (date, size, flags and uid zero); an empty mailbox gets
 * the MBX header block first. */
static status mbx_copy(af_job *j, int to, int from, off_t saved_size, int *err)
{
    char buf[65536];
    j->written = 0;
    if (saved_size == 0) {
        memset(buf, 0, MBX_HDRSIZE);
        int k = snprintf(buf, MBX_HDRSIZE, "*mbx*\r\n%08lx00000000\r\n", (long)time(NULL));
        for (int i = 0; i < MBX_NUSERFLAGS; i++)
            k += snprintf(buf + k, (size_t)(MBX_HDRSIZE - k), "\r\n");
        if (!write_all(to, buf, MBX_HDRSIZE))
            goto failed;
        j->written += MBX_HDRSIZE;
    }
    struct stat sb;
    if (fstat(from, &sb) < 0)
        goto failed;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    int hh = (int)(off / 60), mm = (int)labs(off - hh * 60);
    char date[64];
    int n = snprintf(date, sizeof date, "%02u-", (unsigned)tm.tm_mday);
    strftime(date + n, sizeof date - (size_t)n, "%b-%Y %H:%M:%S", &tm);
    n = snprintf(buf, sizeof buf, "%s %+03d%02d,%lld;%08lx%04x-%08x\r\n", date, hh, mm, (long long)sb.st_size, 0L, 0,
                 0);
    if (!write_all(to, buf, (size_t)n))
        goto failed;
    j->written += (unsigned long long)n;
    if (lseek(from, 0, SEEK_SET) < 0)
        goto failed;
    for (off_t left = sb.st_size; left > 0;) {
        ssize_t r = read(from, buf, sizeof buf);
        if (r <= 0) {
            if (r == 0)
                errno = AFE_MBXLENGTH;
            goto failed;
        }
        if (!write_all(to, buf, (size_t)r))
            goto failed;
        j->written += (unsigned long long)r;
        left -= r;
    }
    return ST_OK;
failed:
    *err = errno;
    return ST_DEFER;
}

/* ---- opening ------------------------------------------------------------------ */

/* The checks on a file that exists (found by lstat, or stat for a
 * permitted symbolic link), then its opening and the same checks on
 * what was opened.  Returns the descriptor; -1 with the address's error
 * set; -2 when the file vanished (start again); -3 for a permitted
 * symbolic link (stat it instead). */
static int open_existing(af_job *j, const struct stat *sb, mode_t mode, bool *isfifo)
{
    const af_opts *o = j->o;
    const char *filename = j->path;
    address_item *a = j->a;
    arena *ar = j->ctx->a;
    bool islink = S_ISLNK(sb->st_mode);
    const char *lk = islink ? " (symlink)" : "";
    *isfifo = false;
    if (o->check_owner && sb->st_uid != j->uid) {
        af_defer(j, AFE_BADUGID, arena_printf(ar, "mailbox %s%s has wrong uid (%ld != %ld)", filename, lk,
                                              (long)sb->st_uid, (long)j->uid));
        return -1;
    }
    if (o->check_group && sb->st_gid != j->gid) {
        af_defer(j, AFE_BADUGID, arena_printf(ar, "mailbox %s%s has wrong gid (%d != %d)", filename, lk,
                                              (int)sb->st_gid, (int)j->gid));
        return -1;
    }
    if (sb->st_nlink != 1) {
        af_defer(j, AFE_NOTREGULAR, arena_printf(ar, "mailbox %s%s has too many links (%lu)", filename, lk,
                                                 (unsigned long)sb->st_nlink));
        return -1;
    }
    if (islink && o->allow_symlink)
        return -3;
    if (o->allow_fifo && S_ISFIFO(sb->st_mode))
        *isfifo = true;
    else if (!S_ISREG(sb->st_mode)) {
        af_defer(j, AFE_NOTREGULAR, arena_printf(ar, "mailbox %s is not a regular file%s", filename,
                                                 o->allow_fifo ? " or named pipe" : ""));
        return -1;
    }
    /* a wider mode is narrowed (any mode when a filter's "save" gave
     * one); a narrower one is an error unless mode_fail_narrower is off */
    mode_t oldmode = sb->st_mode & 07777;
    if (oldmode != mode) {
        mode_t diffs = oldmode ^ mode;
        if (a->mode > 0 || (diffs & oldmode) == diffs) {
            if (chmod(filename, mode) < 0) {
                fail(j, errno, "attempting to chmod mailbox %s", filename);
                return -1;
            }
            oldmode = mode;
        } else if (o->mode_fail_narrower) {
            af_defer(j, AFE_BADMODE, arena_printf(ar, "mailbox %s has the wrong mode %o (%o expected)", filename,
                                                  (unsigned)oldmode, (unsigned)mode));
            return -1;
        }
    }
    /* a FIFO with no reader fails at once rather than blocking */
    int fd = open(filename, (*isfifo ? O_WRONLY | O_NONBLOCK : O_RDWR | O_APPEND) | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == ENOENT)
            return -2;
        a->basic_errno = errno;
        a->result = ST_DEFER;
        if (*isfifo)
            a->message = arena_printf(ar, "while opening named pipe %s (could mean no process is reading it)",
                                      filename);
        else if (errno != EWOULDBLOCK)
            a->message = arena_printf(ar, "while opening mailbox %s", filename);
        return -1;
    }
    /* what was opened must be what was checked; if not, something is
     * badly wrong and the message is frozen */
    struct stat now;
    const char *what = NULL;
    int err = 0;
    bool freeze = true;
    if (fstat(fd, &now) < 0) {
        err = errno;
        freeze = false;
        what = arena_printf(ar, "attempting to stat open mailbox %s", filename);
    } else if (now.st_ino != sb->st_ino) {
        err = AFE_INODECHANGED;
        what = arena_printf(ar, "opened mailbox %s inode number changed from %lu to %lu", filename,
                            (unsigned long)sb->st_ino, (unsigned long)now.st_ino);
    } else if (*isfifo ? !S_ISFIFO(now.st_mode) : !S_ISREG(now.st_mode)) {
        err = AFE_NOTREGULAR;
        what = arena_printf(ar, "opened mailbox %s is no longer a %s", filename, *isfifo ? "named pipe" : "regular file");
    } else if ((o->check_owner && now.st_uid != j->uid) || (o->check_group && now.st_gid != j->gid)) {
        err = AFE_BADUGID;
        what = arena_printf(ar, "opened mailbox %s has wrong uid or gid", filename);
    } else if ((now.st_mode & 07777) != oldmode) {
        err = AFE_BADMODE;
        what = arena_printf(ar, "opened mailbox %s has wrong mode %o (%o expected)", filename,
                            (unsigned)(now.st_mode & 07777), (unsigned)mode);
    } else if (tp_opt(o->t, "file_format") && check_format(j, fd) != o->t) {
        a->message = "open mailbox has changed format";
        close(fd);
        return -1;
    }
    if (what) {
        close(fd);
        af_defer(j, err, what);
        a->freeze = freeze;
        return -1;
    }
    return fd;
}

/* ---- the delivery ------------------------------------------------------------ */

status af_deliver_file(af_job *j)
{
    const af_opts *o = j->o;
    address_item *a = j->a;
    arena *ar = j->ctx->a;
    const char *filename = j->path;
    mode_t mode = a->mode > 0 ? (mode_t)a->mode : o->mode;
    if (!strcmp(filename, "/dev/null")) {
        a->result = ST_OK;
        return ST_OK;
    }
    if (o->create_directory && j->creation_allowed) {
        const char *slash = strrchr(filename, '/');
        if (slash > filename && !af_mkdirs(arena_strndup(ar, filename, (size_t)(slash - filename)), o->dirmode))
            return af_syserr(j, "failed to create directories for %s: %s", filename, strerror(errno));
    }
    /* file_format: another transport may be the one for this file */
    if (tp_opt(o->t, "file_format")) {
        int cfd = open(filename, O_RDONLY | O_CLOEXEC);
        if (cfd >= 0) {
            const driver_inst *tt = check_format(j, cfd);
            close(cfd);
            if (tt != o->t) {
                transport_driver fn = tt ? transport_find(tt) : NULL;
                if (fn && format_depth < FORMAT_DEPTH_MAX) {
                    format_depth++;
                    a->transport = tt;
                    fn(tt, a, j->ctx);
                    format_depth--;
                } else if (tt) {
                    af_defer(j, AFE_BADTRANSPORT, arena_printf(ar, "%s transport cannot take over from %s transport",
                                                               tt->name, o->name));
                }
                return a->result;
            }
        }
    }

    const char *lockname = NULL;
    if (o->use_lockfile) {
        lockname = arena_printf(ar, "%s.lock", filename);
        if (make_lockfile(j, lockname) != ST_OK)
            return ST_DEFER;
    }

    /* open the file, checking it, and lock it; a lock that cannot be had
     * closes the file and starts again (as does a file that appears or
     * vanishes meanwhile) */
    int fd = -1, mbx_lockfd = -1, i;
    char mbx_lockname[64] = "";
    bool use_lstat = true, file_opened = false, isfifo = false;
    status yield = ST_DEFER;
    for (i = 0; i < o->lock_retries; i++) {
        bool sleep_before_retry = true;
        file_opened = false;
        struct stat sb;
        if ((use_lstat ? lstat(filename, &sb) : stat(filename, &sb)) != 0) {
            if (errno != ENOENT) {
                fail(j, errno, "attempting to stat mailbox %s", filename);
                goto out;
            }
            if (o->file_must_exist) {
                fail(j, errno, "mailbox %s does not exist, but file_must_exist is set", filename);
                goto out;
            }
            if (!j->creation_allowed) {
                fail(j, AFE_BADCREATE, "mailbox %s does not exist, but creation outside the home directory is not "
                     "permitted", filename);
                goto out;
            }
            fd = open(filename, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | (use_lstat ? O_EXCL : 0), mode);
            if (fd < 0) {
                if (errno == EEXIST)
                    continue;
                int e = errno;
                fail(j, e, "while creating mailbox %s", filename);
                /* a file named in a .forward or filter: most likely the
                 * user's mistake */
                if ((a->flags & AF_FILE) && (e == EPERM || e == ENOENT || e == EACCES))
                    a->result = ST_FAIL;
                goto out;
            }
            if (fchown(fd, j->uid, j->gid) != 0 || fchmod(fd, mode) != 0) {
                fail(j, errno, "while setting perms on mailbox %s", filename);
                a->result = ST_FAIL;
                goto out;
            }
        } else {
            fd = open_existing(j, &sb, mode, &isfifo);
            if (fd == -3) {
                use_lstat = false;         /* a permitted link: what it points to */
                i--;
                continue;
            }
            if (fd == -2) {
                use_lstat = true;          /* vanished: as if it never existed */
                continue;
            }
            if (fd < 0)
                goto out;
        }
        file_opened = true;
        if (o->lock_fcntl_timeout > 0 || o->lock_flock_timeout > 0)
            sleep_before_retry = false;
        if (!o->use_mbx_lock && (o->use_fcntl || o->use_flock)) {
            if (apply_lock(fd, F_WRLCK, o->use_fcntl, o->lock_fcntl_timeout, o->use_flock, o->lock_flock_timeout) >= 0)
                break;
        } else if (o->use_mbx_lock) {
            int r = mbx_lock(j, fd, mbx_lockname, sizeof mbx_lockname, &mbx_lockfd);
            if (r > 0)
                break;
            if (r < 0)
                goto out;
        } else {
            break;                         /* no lock on the file itself */
        }
        close(fd);
        fd = -1;
        use_lstat = true;
        long longest = o->lock_fcntl_timeout > o->lock_flock_timeout ? o->lock_fcntl_timeout : o->lock_flock_timeout;
        if (alarm_seen && (i + 1) * longest >= o->lock_retries * o->lock_interval)
            i = o->lock_retries;
        if (i < o->lock_retries && sleep_before_retry)
            sleep((unsigned)o->lock_interval);
    }
    if (i >= o->lock_retries) {
        if (!file_opened) {                /* coming and going: frozen */
            fail(j, AFE_EXISTRACE, "mailbox %s: existence unclear", filename);
            a->freeze = true;
        } else
            fail(j, AFE_LOCKFAILED, "failed to lock mailbox %s (fcntl/flock)", filename);
        goto out;
    }

    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        fail(j, errno, "while fstatting opened mailbox %s", filename);
        goto out;
    }
    struct utimbuf times = { .actime = sb.st_atime, .modtime = sb.st_mtime };
    off_t saved_size = sb.st_size;
    if (j->mailbox_size < 0)
        j->mailbox_size = saved_size;
    j->mailbox_filecount = 0;

    int err = 0;
    yield = ST_OK;
    if (!af_quota_ok(j)) {
        yield = ST_DEFER;
        err = AFE_EXIMQUOTA;
    }
    /* MBX: the message goes to a temporary file first, for its size */
    FILE *tmp = NULL;
    int wfd = fd;
    if (yield == ST_OK && o->mbx) {
        if (!(tmp = tmpfile())) {
            af_defer(j, errno, "while setting up temporary file");
            yield = ST_DEFER;
            goto out;
        }
        wfd = fileno(tmp);
    }
    if (yield == ST_OK)
        yield = af_write(j, wfd, &err);
    const char *dataname = filename;
    if (tmp) {
        if (yield == ST_OK)
            yield = mbx_copy(j, fd, wfd, saved_size, &err);
        else if (err >= 0)
            dataname = "temporary file";
        fclose(tmp);
    }
    if (yield == ST_OK && !isfifo && fsync(fd) < 0) {
        yield = ST_DEFER;
        err = errno;
    }
    af_threshold(j);
    if (yield != ST_OK) {
        af_write_failed(j, err, dataname);
        (void)!ftruncate(fd, saved_size);  /* back to its old length; nothing more to do if not */
    } else {
        times.modtime = time(NULL);
        a->basic_errno = 0;
        a->result = ST_OK;
    }
    utime(filename, &times);               /* the access time kept: "new mail" */
    /* notify_comsat: accepted, and nothing is sent */

out:
    if (mbx_lockfd >= 0) {
        /* no other MBX reader: the /tmp lock file can go */
        if (yield == ST_OK && apply_lock(fd, F_WRLCK, o->use_fcntl, 0, o->use_flock, 0) >= 0)
            unlink(mbx_lockname);
        close(mbx_lockfd);
    }
    if (fd >= 0 && close(fd) < 0 && yield == ST_OK)
        yield = fail(j, errno, "while closing %s", filename);
    if (lockname)
        unlink(lockname);
    return a->result;
}
