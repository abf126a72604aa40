/* appendfile.h: what the files of the appendfile transport share (not an
 * interface for the rest of postern, except appendfile_check, which the
 * configuration reader can call to refuse a bad transport at start-up).
 *
 *   appendfile.c        entry point, options, the checks shared by all
 *                       formats, writing the message, quota warnings
 *   appendfile_mbox.c   appending to one file: lock file, fcntl/flock/MBX
 *                       locks, the existing file's checks, MBX format
 *   appendfile_dir.c    a new file per message: maildir, mailstore and
 *                       plain "directory" delivery; quota by directory
 *                       scanning and maildirsize files */
#ifndef POSTERN_TRANSPORT_APPENDFILE_H
#define POSTERN_TRANSPORT_APPENDFILE_H

#include "transport/transport.h"
#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exim's error numbers that appendfile reports (address.h has some) */
enum {
    AFE_UNKNOWN = -1, AFE_EXISTRACE = -3, AFE_NOTREGULAR = -4, AFE_NOTDIRECTORY = -5, AFE_BADUGID = -6,
    AFE_BADMODE = -7, AFE_INODECHANGED = -8, AFE_LOCKFAILED = -9, AFE_NOTABSOLUTE = -21, AFE_EXIMQUOTA = -22,
    AFE_EXPANDFAIL = -27, AFE_BADTRANSPORT = -30, AFE_MBXLENGTH = -31, AFE_FORMATUNKNOWN = -33,
    AFE_BADCREATE = -34,
};

enum af_create { CF_ANYWHERE, CF_BELOWHOME, CF_INHOME };

/* The options of one delivery, after Exim's start-up defaults (locking,
 * check/escape strings, prefix/suffix) and the quota expansions. */
typedef struct af_opts {
    const driver_inst *t;
    const char *name;                  /* the transport's name */
    bool maildir, mailstore, mbx, bsmtp, crlf;
    bool check_owner, check_group, allow_symlink, allow_fifo, file_must_exist;
    bool mode_fail_narrower, create_directory, quota_inclusive, maildir_use_size_file;
    bool use_lockfile, use_fcntl, use_flock, use_mbx_lock;
    int create_file;                   /* enum af_create */
    const char *create_file_dir;       /* create_file given as an absolute path */
    mode_t mode, dirmode, lockfile_mode;
    int lock_retries, maildir_retries;
    long lock_interval, lock_fcntl_timeout, lock_flock_timeout, lockfile_timeout;
    const char *check_string, *escape_string;   /* NULL: no escaping */
    const char *prefix, *suffix;       /* unexpanded; NULL: none */
    long long quota, quota_filecount, warn_threshold;
    bool quota_no_check, filecount_no_check, warn_percent;
    long long mailbox_size, mailbox_filecount; /* -1: find out */
} af_opts;

/* One delivery in progress. */
typedef struct af_job {
    const af_opts *o;
    address_item *a;                   /* the first address of the batch */
    tp_ctx *ctx;
    const char *path;                  /* the file or directory */
    uid_t uid;
    gid_t gid;
    long long msg_size;                /* Exim's $message_size before writing */
    long long mailbox_size;            /* for the quota checks */
    long long mailbox_filecount;
    int sizefile_fd;                   /* maildirsize, open (-1: none) */
    bool creation_allowed;             /* create_file permits creating the file */
    bool disable_quota;
    bool filecount_over;               /* the file count quota was the one exceeded */
    bool warn;                         /* quota_warn_threshold crossed: send the warning */
    /* what the writer did */
    unsigned long long written;        /* bytes (Exim's transport_count) */
    long newlines;
} af_job;

/* appendfile.c */

/* Exim's start-up checks of a transport's options: ST_ERROR with Exim's
 * reason in *err (allocated in a) for an inconsistent combination */
status appendfile_check(const driver_inst *t, arena *a, char **err);
/* Set the first address's result: DEFER with error number err and msg. */
status af_defer(af_job *j, int err, const char *msg);
/* The same with errno (as it is on entry) and a formatted message */
status af_syserr(af_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Create a directory and the missing ones above it (Exim's directory_make) */
bool af_mkdirs(const char *path, mode_t mode);
/* A compiled regular expression (pcre2_code *), or NULL with *err set */
void *af_regex(const char *re, arena *a, char **err);
/* Does re match s?  With start/end: where its first group is (false
 * when it has none). */
bool af_regex_match(void *re, const char *s, size_t *start, size_t *end);
/* May the file be created there (create_file)? */
bool af_creation_allowed(const char *file, const af_opts *o);
/* Write prefix, (BSMTP envelope), message and suffix to fd.  ST_OK, or
 * ST_DEFER with the error number in *err (and perhaps a->message set). */
status af_write(af_job *j, int fd, int *err);
/* The quota check before writing: false when the message does not fit. */
bool af_quota_ok(af_job *j);
/* After writing: has the mailbox crossed quota_warn_threshold? */
void af_threshold(af_job *j);
/* After a failed write: the address's message and error numbers as Exim
 * words them (errno in err); dataname names the file being written. */
void af_write_failed(af_job *j, int err, const char *dataname);

/* appendfile_mbox.c: append to one file */
status af_deliver_file(af_job *j);

/* appendfile_dir.c: a new file per message (maildir, mailstore, plain) */
status af_deliver_dir(af_job *j);
long long af_dir_size(const char *dir, long long *count, const void *size_re);

#endif
