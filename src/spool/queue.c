/* queue.c: -bp listing and -M actions on spooled messages. */
#include "spool/queue.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
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

/* Who did it, for the log: the caller's login name (Exim's wording). */
static const char *username(arena *a)
{
    struct passwd *pw = getpwuid(getuid());
    return pw ? arena_strdup(a, pw->pw_name) : arena_printf(a, "uid %ld", (long)getuid());
}

static bool delivered(const spool_msg *m, const char *addr)
{
    for (int i = 0; i < m->n_nonrcpt; i++)
        if (strcmp(m->nonrcpt[i], addr) == 0)
            return true;
    return false;
}

static int cmpstrp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
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
        if (mode == QL_GENERATED) {
            /* the delivered addresses that are not recipients (what
             * aliasing or forwarding made), sorted as Exim's tree walk */
            const char **v = arena_alloc(a, sizeof *v * (size_t)(m->n_nonrcpt + 1));
            int nv = 0;
            for (int k = 0; k < m->n_nonrcpt; k++) {
                bool top = false;
                for (int r = 0; r < m->n_rcpt && !top; r++)
                    top = strcmp(m->nonrcpt[k], m->rcpt[r].address) == 0;
                if (!top)
                    v[nv++] = m->nonrcpt[k];
            }
            qsort(v, (size_t)nv, sizeof *v, cmpstrp);
            for (int k = 0; k < nv; k++)
                fprintf(out, "       +D %s\n", v[k]);
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
            log_write(LOG_MAIN, "%s removed by %s", id, username(a));
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
            log_write(LOG_MAIN, "%s %s by %s", id, action == 'f' ? "frozen" : "unfrozen", username(a));
            fprintf(out, "Message %s %s\n", id, action == 'f' ? "is now frozen" : "is no longer frozen");
            break;
        }
        }
        arena_reset(a);
    }
    arena_free(a);
    return rc;
}

static void add_nonrcpt(spool_msg *m, arena *a, const char *addr)
{
    if (!delivered(m, addr))
        spool_add_nonrcpt(m, a, addr);
}

int queue_edit(const spool_settings *ss, char action, const char *id, const queue_addr *addrs, int n, FILE *out)
{
    if (!spool_id_valid(id)) {
        fprintf(out, "%s: not a valid message id\n", id);
        return 1;
    }
    arena *a = arena_new("queue", false);
    spool_settings s = locate(ss, id);
    char path[PATH_MAX];
    int rc = 1;
    spool_msg *m;
    char *err;
    /* the -D file's lock keeps deliveries away while the -H file changes */
    int fd = open(spool_path(&s, id, 'D', path, sizeof path), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(out, "Spool data file for %s could not be opened: %s\n", id, strerror(errno));
        goto done;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        fprintf(out, "Message %s is locked (being delivered)\n", id);
        goto done;
    }
    if (spool_read_header(&s, id, a, &m, &err) != ST_OK) {
        fprintf(out, "Spool read error for %s-H: %s\n", id, err);
        goto done;
    }
    const char *who = username(a);
    const char *doing = action == 's' ? "editing sender" : action == 'a' ? "adding recipient" : "marking as delivered";
    fprintf(out, "Message %s ", id);
    bool ok = true;
    if (action == 'A') {
        for (int r = 0; r < m->n_rcpt; r++)
            add_nonrcpt(m, a, m->rcpt[r].address);
    } else if (action == 's' && n > 1) {
        fprintf(out, "- only one sender address can be specified\n");
        goto done;
    } else if (n == 0) {
        fprintf(out, "- error while %s: no address given\n", doing);
        goto done;
    }
    /* what is logged once the file is written */
    const char **logs = arena_alloc(a, sizeof *logs * (size_t)(n + m->n_rcpt + 1));
    int nlog = 0;
    if (action == 'A')
        for (int r = 0; r < m->n_rcpt; r++)
            logs[nlog++] = arena_printf(a, "%s address <%s> marked delivered by %s", id, m->rcpt[r].address, who);
    for (int i = 0; action != 'A' && i < n; i++) {
        const queue_addr *q = &addrs[i];
        if (q->err) {
            ok = false;
            fprintf(out, "- error while %s:\n  bad address %s: %s\n", doing, q->arg, q->err);
        } else if (action == 'a') {
            spool_rcpt r = { .address = arena_strdup(a, q->addr), .parent = -1 };
            spool_add_rcpt(m, a, &r);
            logs[nlog++] = arena_printf(a, "%s recipient <%s> added by %s", id, q->addr, who);
        } else if (action == 'd') {
            int r = 0;
            while (r < m->n_rcpt && strcmp(m->rcpt[r].address, q->addr) != 0)
                r++;
            if (r == m->n_rcpt) {
                ok = false;
                fprintf(out, "- error while %s:\n  %s is not a recipient: message not updated\n", doing, q->addr);
            } else {
                add_nonrcpt(m, a, m->rcpt[r].address);
                logs[nlog++] = arena_printf(a, "%s address <%s> marked delivered by %s", id, q->addr, who);
            }
        } else {
            m->sender = arena_strdup(a, q->addr);
            logs[nlog++] = arena_printf(a, "%s sender address changed to <%s> by %s", id, q->addr, who);
        }
    }
    /* Exim logs each address as it goes and writes the file only when
     * all went well; -Mmad logs once the file is written */
    for (int i = 0; action != 'A' && i < nlog; i++)
        log_write(LOG_MAIN, "%s", logs[i]);
    if (!ok)
        goto done;
    if (spool_commit(&s, m, -1, a, &err) != ST_OK) {
        if (action == 'A')
            fprintf(out, "- could not mark all delivered: %s\n", err);
        else
            fprintf(out, "- while %s: %s\n", doing, err);
        goto done;
    }
    fprintf(out, "has been modified\n");
    for (int i = 0; action == 'A' && i < nlog; i++)
        log_write(LOG_MAIN, "%s", logs[i]);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    arena_free(a);
    return rc;
}
