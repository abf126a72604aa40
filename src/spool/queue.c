/* queue.c: -bp listing and -M actions on spooled messages. */
#include "spool/queue.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct idlist {
    char (*ids)[SPOOL_ID_LEN + 1];
    int n, cap;
} idlist;

static void scan_dir(const char *dir, idlist *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n != SPOOL_ID_LEN + 2 || strcmp(e->d_name + SPOOL_ID_LEN, "-H") != 0)
            continue;
        char id[SPOOL_ID_LEN + 1];
        memcpy(id, e->d_name, SPOOL_ID_LEN);
        id[SPOOL_ID_LEN] = '\0';
        if (!spool_id_valid(id))
            continue;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->ids = realloc(l->ids, sizeof *l->ids * (size_t)l->cap);
            if (!l->ids)
                panic("queue: out of memory");
        }
        memcpy(l->ids[l->n++], id, SPOOL_ID_LEN + 1);
    }
    closedir(d);
}

static int cmpid(const void *a, const void *b)
{
    return strcmp(a, b);   /* ids sort by arrival time */
}

static void collect(const spool_settings *ss, idlist *l)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/input", ss->directory);
    scan_dir(dir, l);
    /* split or not, look in the subdirectories too (the setting may have changed) */
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (const char *c = b62; *c; c++) {
        snprintf(dir, sizeof dir, "%s/input/%c", ss->directory, *c);
        scan_dir(dir, l);
    }
    if (l->n > 1)
        qsort(l->ids, (size_t)l->n, sizeof *l->ids, cmpid);
}

/* The settings with split set the way this message is stored. */
static spool_settings locate(const spool_settings *ss, const char *id)
{
    spool_settings s = *ss;
    char path[PATH_MAX];
    struct stat sb;
    s.split = false;
    if (stat(spool_path(&s, id, 'H', path, sizeof path), &sb) == 0)
        return s;
    s.split = true;
    return s;
}

static long long message_size(const spool_settings *ss, const spool_msg *m)
{
    char path[PATH_MAX];
    struct stat sb;
    long long size = 0;
    if (stat(spool_path(ss, m->id, 'D', path, sizeof path), &sb) == 0)
        size = (long long)sb.st_size - (SPOOL_ID_LEN + 3);
    for (const spool_header *h = m->headers; h; h = h->next)
        if (h->type != '*')
            size += (long long)h->len;
    return size + 1;
}

static void print_age(FILE *out, time_t received)
{
    long age = (long)(time(NULL) - received);
    if (age < 0)
        age = 0;
    if (age < 60 * 60)
        fprintf(out, "%2ldm", age / 60);
    else if (age < 48 * 60 * 60)
        fprintf(out, "%2ldh", age / 3600);
    else
        fprintf(out, "%2ldd", age / 86400);
}

static bool delivered(const spool_msg *m, const char *addr)
{
    for (int i = 0; i < m->n_nonrcpt; i++)
        if (strcmp(m->nonrcpt[i], addr) == 0)
            return true;
    return false;
}

int queue_list(const spool_settings *ss, queue_list_mode mode, FILE *out)
{
    idlist l = { 0 };
    collect(ss, &l);
    if (mode == QL_COUNT) {
        fprintf(out, "%d\n", l.n);
        free(l.ids);
        return 0;
    }
    arena *a = arena_new("queue", false);
    for (int i = 0; i < l.n; i++) {
        spool_settings s = locate(ss, l.ids[i]);
        spool_msg *m;
        char *err;
        status st = spool_read_header(&s, l.ids[i], a, &m, &err);
        if (st == ST_NOTFOUND)
            continue;        /* delivered meanwhile */
        if (st != ST_OK) {
            fprintf(out, "%s: %s\n\n", l.ids[i], err);
            continue;
        }
        print_age(out, m->received);
        fprintf(out, " %5lld %s <%s>%s\n", message_size(&s, m), m->id, m->sender,
                m->frozen ? " *** frozen ***" : "");
        for (int r = 0; r < m->n_rcpt; r++) {
            bool d = delivered(m, m->rcpt[r].address);
            if (d && mode == QL_UNDELIVERED)
                continue;
            fprintf(out, "        %s %s\n", d ? "D" : " ", m->rcpt[r].address);
        }
        fputc('\n', out);
        arena_reset(a);
    }
    arena_free(a);
    free(l.ids);
    return 0;
}

static int copy_file(const char *path, FILE *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, out);
    fclose(f);
    return 0;
}

/* Rewrite the -H file of a message with m changed (freeze/thaw). */
static int rewrite_header(const spool_settings *s, spool_msg *m, arena *a, FILE *out)
{
    char path[PATH_MAX];
    int fd = open(spool_path(s, m->id, 'D', path, sizeof path), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(out, "Spool data file for %s could not be opened: %s\n", m->id, strerror(errno));
        return 1;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        fprintf(out, "Message %s is locked (being delivered)\n", m->id);
        close(fd);
        return 1;
    }
    char *err = NULL;
    status st = spool_commit(s, m, -1, a, &err);
    close(fd);
    if (st != ST_OK) {
        fprintf(out, "%s\n", err);
        return 1;
    }
    return 0;
}

int queue_action(const spool_settings *ss, char action, char **ids, int nids, FILE *out)
{
    int rc = 0;
    arena *a = arena_new("queue", false);
    for (int i = 0; i < nids; i++) {
        const char *id = ids[i];
        if (!spool_id_valid(id)) {
            fprintf(out, "%s: not a valid message id\n", id);
            rc = 1;
            continue;
        }
        spool_settings s = locate(ss, id);
        char path[PATH_MAX];
        switch (action) {
        case 'h':
        case 'b':
            if (copy_file(spool_path(&s, id, action == 'h' ? 'H' : 'D', path, sizeof path), out) != 0) {
                fprintf(out, "Failed to open %s: %s\n", path, strerror(errno));
                rc = 1;
            }
            break;
        case 'l': {
            spool_msglog_path(&s, id, path, sizeof path);
            if (copy_file(path, out) != 0) {
                fprintf(out, "Failed to open %s: %s\n", path, strerror(errno));
                rc = 1;
            }
            break;
        }
        case 'r': {
            int fd = open(spool_path(&s, id, 'D', path, sizeof path), O_RDWR | O_CLOEXEC);
            if (fd < 0) {
                /* as Exim: say so, and remove whatever is left of it */
                fprintf(out, "Spool data file for %s does not exist\nContinuing, to ensure all files removed\n", id);
                log_write(LOG_MAIN, "%s Spool file %s-D not found", id, id);
                bool had_h = unlink(spool_path(&s, id, 'H', path, sizeof path)) == 0;
                if (!had_h)
                    fprintf(out, "Spool read error for %s-H: %s\nContinuing to ensure all files removed\n", id,
                            strerror(errno));
                unlink(spool_path(&s, id, 'J', path, sizeof path));
                unlink(spool_msglog_path(&s, id, path, sizeof path));
                fprintf(out, "Message %s has been removed or did not exist\n", id);
                rc = 1;
                break;
            }
            struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
            if (fcntl(fd, F_SETLK, &fl) != 0) {
                fprintf(out, "Message %s is locked (being delivered or received)\n", id);
                close(fd);
                rc = 1;
                break;
            }
            unlink(spool_path(&s, id, 'H', path, sizeof path));
            unlink(spool_path(&s, id, 'J', path, sizeof path));
            unlink(spool_path(&s, id, 'D', path, sizeof path));
            unlink(spool_msglog_path(&s, id, path, sizeof path));
            close(fd);
            log_write(LOG_MAIN, "%s removed by %s", id, getuid() == 0 ? "root" : "admin");
            log_write(LOG_MAIN, "%s Completed", id);
            fprintf(out, "Message %s has been removed\n", id);
            break;
        }
        case 'f':
        case 't': {
            spool_msg *m;
            char *err;
            if (spool_read_header(&s, id, a, &m, &err) != ST_OK) {
                fprintf(out, "%s\n", err);
                rc = 1;
                break;
            }
            if (action == 'f') {
                if (m->frozen) {
                    fprintf(out, "Message %s is already frozen\n", id);
                    rc = 1;
                    break;
                }
                m->frozen = time(NULL);
                m->manual_thaw = false;
            } else {
                if (!m->frozen) {
                    fprintf(out, "Message %s is not frozen\n", id);
                    rc = 1;
                    break;
                }
                m->frozen = 0;
                m->manual_thaw = true;
            }
            if (rewrite_header(&s, m, a, out) != 0) {
                rc = 1;
                break;
            }
            log_write(LOG_MAIN, "%s %s by %s", id, action == 'f' ? "frozen" : "unfrozen",
                      getuid() == 0 ? "root" : "admin");
            fprintf(out, "Message %s %s\n", id, action == 'f' ? "is now frozen" : "is no longer frozen");
            break;
        }
        }
        arena_reset(a);
    }
    arena_free(a);
    return rc;
}
