/* spool.c: message ids, spool paths, the -D file, and committing the -H
 * file (Exim's format). */
#include "spool/spool.h"
#include "core/gstr.h"
#include "core/log.h"
#include "core/state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void base62(char *out, unsigned long long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

void spool_new_id(char id[SPOOL_ID_LEN + 1])
{
    /* An id is unique because no other process has our pid, and this
     * process never issues two ids in the same resolution step. */
    static long last_sec = -1, last_step = -1;
    struct timeval tv;
    for (;;) {
        gettimeofday(&tv, NULL);
        long step = tv.tv_usec / SPOOL_ID_RESOLUTION;
        if (tv.tv_sec != last_sec || step != last_step) {
            last_sec = tv.tv_sec;
            last_step = step;
            break;
        }
        usleep(SPOOL_ID_RESOLUTION - (unsigned)(tv.tv_usec % SPOOL_ID_RESOLUTION));
    }
    base62(id, (unsigned long long)tv.tv_sec, 6);
    id[6] = '-';
    base62(id + 7, (unsigned long long)getpid(), 6);
    id[13] = '-';
    base62(id + 14, (unsigned long long)last_step, 2);
    id[16] = '\0';
}

bool spool_id_valid(const char *id)
{
    if (strlen(id) != SPOOL_ID_LEN || id[6] != '-' || id[13] != '-')
        return false;
    for (int i = 0; i < SPOOL_ID_LEN; i++)
        if (i != 6 && i != 13 && !isalnum((unsigned char)id[i]))
            return false;
    return true;
}

time_t spool_id_time(const char *id)
{
    unsigned long long v = 0;
    for (int i = 0; i < 6; i++)
        v = v * 62 + (unsigned long long)(strchr(b62, id[i]) - b62);
    return (time_t)v;
}

char *spool_path(const spool_settings *ss, const char *id, char suffix, char *buf, size_t len)
{
    if (ss->split)
        snprintf(buf, len, "%s/input/%c/%s-%c", ss->directory, id[5], id, suffix);
    else
        snprintf(buf, len, "%s/input/%s-%c", ss->directory, id, suffix);
    return buf;
}

static status mkdir_one(const char *path, char **err, arena *a)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return ST_OK;
    *err = arena_printf(a, "cannot create spool directory %s: %s", path, strerror(errno));
    return ST_DEFER;
}

status spool_make_dirs(const spool_settings *ss, const char *id, char **err)
{
    arena *a = arena_new("spooldirs", false);
    char path[PATH_MAX];
    status st = mkdir_one(ss->directory, err, a);
    snprintf(path, sizeof path, "%s/input", ss->directory);
    if (st == ST_OK)
        st = mkdir_one(path, err, a);
    if (st == ST_OK && ss->split && id) {
        snprintf(path, sizeof path, "%s/input/%c", ss->directory, id[5]);
        st = mkdir_one(path, err, a);
    }
    if (st != ST_OK) {
        static char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "%s", *err);
        *err = msg;
    }
    arena_free(a);
    return st;
}

static bool lock_fd(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    return fcntl(fd, F_SETLK, &fl) == 0;
}

int spool_open_data(const spool_settings *ss, const char *id, arena *a, char **err)
{
    if (spool_make_dirs(ss, id, err) != ST_OK)
        return -1;
    char path[PATH_MAX];
    spool_path(ss, id, 'D', path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        *err = arena_printf(a, "cannot create spool file %s: %s", path, strerror(errno));
        return -1;
    }
    if (!lock_fd(fd)) {
        *err = arena_printf(a, "cannot lock spool file %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    char first[SPOOL_ID_LEN + 4];
    int n = snprintf(first, sizeof first, "%s-D\n", id);
    if (write(fd, first, (size_t)n) != n) {
        *err = arena_printf(a, "cannot write spool file %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

void spool_add_rcpt(spool_msg *m, arena *a, const spool_rcpt *r)
{
    if (m->n_rcpt == m->cap_rcpt) {
        int cap = m->cap_rcpt ? m->cap_rcpt * 2 : 8;
        spool_rcpt *n = arena_alloc(a, sizeof *n * (size_t)cap);
        if (m->n_rcpt)
            memcpy(n, m->rcpt, sizeof *n * (size_t)m->n_rcpt);
        m->rcpt = n;
        m->cap_rcpt = cap;
    }
    m->rcpt[m->n_rcpt++] = *r;
}

void spool_add_nonrcpt(spool_msg *m, arena *a, const char *addr)
{
    const char **v = arena_alloc(a, sizeof *v * (size_t)(m->n_nonrcpt + 1));
    if (m->n_nonrcpt)
        memcpy(v, m->nonrcpt, sizeof *v * (size_t)m->n_nonrcpt);
    v[m->n_nonrcpt++] = arena_strdup(a, addr);
    m->nonrcpt = v;
}

char spool_header_type(const char *text)
{
    static const struct { const char *name; char type; } t[] = {
        { "bcc", 'B' }, { "cc", 'C' }, { "from", 'F' }, { "message-id", 'I' },
        { "received", 'P' }, { "reply-to", 'R' }, { "sender", 'S' }, { "to", 'T' },
    };
    const char *colon = strchr(text, ':');
    if (!colon)
        return ' ';
    size_t n = (size_t)(colon - text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    /* Resent-Bcc/Cc/From/Sender/To share the letters of the plain names */
    if (n > 7 && strncasecmp(text, "resent-", 7) == 0) {
        const char *rest = text + 7;
        size_t rn = n - 7;
        if (rn == 3 && strncasecmp(rest, "bcc", 3) == 0) return 'B';
        if (rn == 2 && strncasecmp(rest, "cc", 2) == 0) return 'C';
        if (rn == 4 && strncasecmp(rest, "from", 4) == 0) return 'F';
        if (rn == 6 && strncasecmp(rest, "sender", 6) == 0) return 'S';
        if (rn == 2 && strncasecmp(rest, "to", 2) == 0) return 'T';
        return ' ';
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strlen(t[i].name) == n && strncasecmp(text, t[i].name, n) == 0)
            return t[i].type;
    return ' ';
}

spool_header *spool_add_header(spool_msg *m, arena *a, char type, const char *text, size_t len)
{
    spool_header *h = arena_calloc(a, sizeof *h);
    h->type = type;
    h->text = arena_memdup(a, text, len);
    h->len = len;
    if (m->headers_tail)
        m->headers_tail->next = h;
    else
        m->headers = h;
    m->headers_tail = h;
    return h;
}

/* ---- writing -H --------------------------------------------------------- */

/* Balanced tree of the (sorted) delivered addresses, written in preorder
 * with Y/N flags for left/right children. */
static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void write_tree(FILE *f, const char **v, int lo, int hi)
{
    if (lo > hi)
        return;
    int mid = (lo + hi + 1) / 2;
    fprintf(f, "%c%c %s\n", mid > lo ? 'Y' : 'N', mid < hi ? 'Y' : 'N', v[mid]);
    write_tree(f, v, lo, mid - 1);
    write_tree(f, v, mid + 1, hi);
}

static void var_line(FILE *f, const char *name, const char *value)
{
    if (value)
        fprintf(f, "-%s%s %s\n", is_tainted(value) ? "-" : "", name, value);
}

status spool_write_header_file(FILE *f, const spool_msg *m)
{
    fprintf(f, "%s-H\n", m->id);
    fprintf(f, "%s %ld %ld\n", m->login ? m->login : "postern", m->uid, m->gid);
    fprintf(f, "<%s>\n", m->sender ? m->sender : "");
    fprintf(f, "%lld %d\n", (long long)m->received, m->warning_count);
    fprintf(f, "-received_time_usec .%06ld\n", m->received_usec);
    if (m->complete_sec)
        fprintf(f, "-received_time_complete %ld.%06ld\n", m->complete_sec, m->complete_usec);
    /* the rest in Exim 4.99's order (spool_out.c) */
    var_line(f, "helo_name", m->helo_name);
    if (m->host_address) {
        fprintf(f, "-%shost_address [%s]:%d\n", is_tainted(m->host_address) ? "-" : "",
                m->host_address, m->host_port);
        var_line(f, "host_name", m->host_name);
    }
    var_line(f, "host_auth", m->host_auth);
    var_line(f, "host_auth_pubname", m->host_auth_pubname);
    if (m->interface_address)
        fprintf(f, "-%sinterface_address [%s]:%d\n", is_tainted(m->interface_address) ? "-" : "",
                m->interface_address, m->interface_port);
    var_line(f, "active_hostname", m->active_hostname);
    var_line(f, "ident", m->ident);
    var_line(f, "received_protocol", m->received_protocol);
    for (const spool_var *v = m->vars; v; v = v->next)
        fprintf(f, "-%sacl%c %s %zu\n%s\n", is_tainted(v->value) ? "-" : "", v->kind, v->name,
                strlen(v->value), v->value);
    if (m->spool_file_wireformat)
        fprintf(f, "-spool_file_wireformat\n");
    else
        fprintf(f, "-body_linecount %ld\n", m->body_linecount);
    fprintf(f, "-max_received_linelength %ld\n", m->max_received_linelength);
    if (m->body_zerocount)
        fprintf(f, "-body_zerocount %ld\n", m->body_zerocount);
    var_line(f, "auth_id", m->auth_id);
    var_line(f, "auth_sender", m->auth_sender);
    if (m->allow_unqualified_recipient)
        fprintf(f, "-allow_unqualified_recipient\n");
    if (m->allow_unqualified_sender)
        fprintf(f, "-allow_unqualified_sender\n");
    if (m->deliver_firsttime)
        fprintf(f, "-deliver_firsttime\n");
    if (m->frozen)
        fprintf(f, "-frozen %lld\n", (long long)m->frozen);
    if (m->dont_deliver)
        fprintf(f, "-N\n");
    if (m->host_lookup_failed)
        fprintf(f, "-host_lookup_failed\n");
    if (m->local)
        fprintf(f, "-local\n");
    if (m->localerror)
        fprintf(f, "-localerror\n");
    if (m->manual_thaw)
        fprintf(f, "-manual_thaw\n");
    if (m->sender_set_untrusted)
        fprintf(f, "-sender_set_untrusted\n");
    if (m->tls_certificate_verified)
        fprintf(f, "-tls_certificate_verified\n");
    var_line(f, "tls_cipher", m->tls_cipher);
    var_line(f, "tls_peerdn", m->tls_peerdn);
    var_line(f, "tls_sni", m->tls_sni);
    /* (Exim, built with TLS resumption, always writes this; 'A': none used) */
    fprintf(f, "-tls_resumption A\n");
    var_line(f, "tls_ver", m->tls_ver);
    if (m->smtputf8)
        fprintf(f, "-smtputf8\n");
    var_line(f, "dsn_envid", m->dsn_envid);
    if (m->dsn_ret)
        fprintf(f, "-dsn_ret %d\n", m->dsn_ret);

    if (m->n_nonrcpt == 0) {
        fprintf(f, "XX\n");
    } else {
        const char **v = malloc(sizeof *v * (size_t)m->n_nonrcpt);
        if (!v)
            return ST_DEFER;
        memcpy(v, m->nonrcpt, sizeof *v * (size_t)m->n_nonrcpt);
        qsort(v, (size_t)m->n_nonrcpt, sizeof *v, cmpstr);
        write_tree(f, v, 0, m->n_nonrcpt - 1);
        free(v);
    }
    fprintf(f, "%d\n", m->n_rcpt);
    for (int i = 0; i < m->n_rcpt; i++) {
        const spool_rcpt *r = &m->rcpt[i];
        if (!r->orcpt && !r->dsn_flags && !r->errors_to && r->parent < 0) {
            fprintf(f, "%s\n", r->address);
            continue;
        }
        const char *o = r->orcpt ? r->orcpt : "";
        const char *e = r->errors_to ? r->errors_to : "";
        fprintf(f, "%s %s %zu,%u %s %zu,%d#3\n", r->address, o, strlen(o), r->dsn_flags, e,
                strlen(e), r->parent);
    }
    fputc('\n', f);
    for (const spool_header *h = m->headers; h; h = h->next) {
        fprintf(f, "%03zu%c %s", h->len, h->type, h->text);
        if (h->len == 0 || h->text[h->len - 1] != '\n')
            fputc('\n', f);
    }
    return ferror(f) ? ST_DEFER : ST_OK;
}

static status fsync_dir(const char *path, char **err, arena *a)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        *err = arena_printf(a, "cannot sync spool directory %s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return ST_DEFER;
    }
    close(dfd);
    return ST_OK;
}

status spool_commit(const spool_settings *ss, spool_msg *m, int data_fd, arena *a, char **err)
{
    char hpath[PATH_MAX], tpath[PATH_MAX + 32];
    if (data_fd >= 0 && fsync(data_fd) != 0) {
        *err = arena_printf(a, "cannot sync spool data file for %s: %s", m->id, strerror(errno));
        return ST_DEFER;
    }
    spool_path(ss, m->id, 'H', hpath, sizeof hpath);
    char *slash = strrchr(hpath, '/');
    snprintf(tpath, sizeof tpath, "%.*s/hdr.%s", (int)(slash - hpath), hpath, m->id);
    int fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        *err = arena_printf(a, "cannot create %s: %s", tpath, strerror(errno));
        return ST_DEFER;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tpath);
        *err = arena_printf(a, "fdopen failed: %s", strerror(errno));
        return ST_DEFER;
    }
    status st = spool_write_header_file(f, m);
    if (st == ST_OK && (fflush(f) != 0 || fsync(fd) != 0))
        st = ST_DEFER;
    if (fclose(f) != 0)
        st = ST_DEFER;
    if (st != ST_OK) {
        *err = arena_printf(a, "cannot write %s: %s", tpath, strerror(errno));
        unlink(tpath);
        return st;
    }
    if (rename(tpath, hpath) != 0) {
        *err = arena_printf(a, "cannot rename %s to %s: %s", tpath, hpath, strerror(errno));
        unlink(tpath);
        return ST_DEFER;
    }
    return fsync_dir(hpath, err, a);
}

void spool_abandon(const spool_settings *ss, const char *id, int data_fd)
{
    char path[PATH_MAX];
    unlink(spool_path(ss, id, 'H', path, sizeof path));
    unlink(spool_path(ss, id, 'D', path, sizeof path));
    if (data_fd >= 0)
        close(data_fd);
}

void spool_keep_acl_vars(spool_msg *msg, const struct acl_var *c, const struct acl_var *m, arena *a)
{
    for (int pass = 0; pass < 2; pass++)
        for (const acl_var *v = pass ? m : c; v; v = v->next) {
            if (strlen(v->name) < 6)
                continue;
            spool_var *sv = arena_calloc(a, sizeof *sv);
            sv->kind = pass ? 'm' : 'c';
            sv->name = v->name + 5;          /* after "acl_c" / "acl_m" */
            sv->value = v->value ? v->value : "";
            sv->next = msg->vars;
            msg->vars = sv;
        }
}

char *spool_msglog_path(const spool_settings *ss, const char *id, char *buf, size_t len)
{
    if (ss->split)
        snprintf(buf, len, "%s/msglog/%c/%s", ss->directory, id[5], id);
    else
        snprintf(buf, len, "%s/msglog/%s", ss->directory, id);
    return buf;
}

void spool_msglog(const spool_settings *ss, const char *id, const char *line)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/msglog", ss->directory);
    mkdir(path, 0750);
    if (ss->split) {
        snprintf(path, sizeof path, "%s/msglog/%c", ss->directory, id[5]);
        mkdir(path, 0750);
    }
    spool_msglog_path(ss, id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S ", &tm);
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s%s\n", stamp, line);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    close(fd);
}
