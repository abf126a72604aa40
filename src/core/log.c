/* log.c: log line formatting and writing.  Each write opens the file in
 * append mode and writes one line with a single write(2), so concurrent
 * processes never interleave within a line. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static log_settings cfg = { .file_path = NULL, .spool_directory = "/var/spool/postern" };

/* The settings are copied: the configuration they came from may be freed
 * (SIGHUP) while logging goes on. */
void log_configure(const log_settings *ls)
{
    static char path[4096], spool[4096], fac[64], name[64];
    cfg = *ls;
    if (ls->file_path) {
        snprintf(path, sizeof path, "%s", ls->file_path);
        cfg.file_path = path;
    }
    if (ls->spool_directory) {
        snprintf(spool, sizeof spool, "%s", ls->spool_directory);
        cfg.spool_directory = spool;
    }
    if (ls->syslog_facility) {
        snprintf(fac, sizeof fac, "%s", ls->syslog_facility);
        cfg.syslog_facility = fac;
    }
    if (ls->process_name) {
        snprintf(name, sizeof name, "%s", ls->process_name);
        cfg.process_name = name;
    }
}

static size_t stamp(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    if (cfg.utc)
        gmtime_r(&now, &tm);
    else
        localtime_r(&now, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S ", &tm);
    if (cfg.pid)
        n += (size_t)snprintf(buf + n, len - n, "[%d] ", (int)getpid());
    return n;
}

/* Expand one log_file_path item for kind into buf; "" for syslog. */
static void item_path(const char *item, size_t ilen, const char *kind, char *buf, unsigned buflen)
{
    size_t o = 0;
    for (size_t i = 0; i < ilen && o + 1 < buflen; i++) {
        if (item[i] == '%' && i + 1 < ilen && item[i + 1] == 's') {
            o += (size_t)snprintf(buf + o, buflen - o, "%s", kind);
            if (o >= buflen)
                o = buflen - 1;
            i++;
        } else if (item[i] == '%' && i + 1 < ilen && item[i + 1] == 'D') {
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            o += strftime(buf + o, buflen - o, "%Y%m%d", &tm);
            i++;
        } else {
            buf[o++] = item[i];
        }
    }
    buf[o] = '\0';
}

const char *log_path_for(const char *kind, char *buf, unsigned buflen)
{
    const char *fp = cfg.file_path;
    buf[0] = '\0';
    if (!fp || !*fp) {
        snprintf(buf, buflen, "%s/log/%slog", cfg.spool_directory ? cfg.spool_directory : ".", kind);
        return buf;
    }
    while (*fp) {
        const char *e = strchr(fp, ':');
        size_t l = e ? (size_t)(e - fp) : strlen(fp);
        while (l && (*fp == ' ' || *fp == '\t')) { fp++; l--; }
        while (l && (fp[l - 1] == ' ' || fp[l - 1] == '\t')) l--;
        if (l && !(l == 6 && strncmp(fp, "syslog", 6) == 0)) {
            if (l == 0 || *fp == '\0') {
            } else {
                item_path(fp, l, kind, buf, buflen);
                return buf;
            }
        }
        if (!e)
            break;
        fp = e + 1;
    }
    return buf;
}

static bool wants_syslog(void)
{
    const char *fp = cfg.file_path;
    if (!fp)
        return false;
    const char *p = strstr(fp, "syslog");
    return p != NULL;
}

static void write_file(const char *kind, const char *line, size_t len)
{
    char path[1024];
    log_path_for(kind, path, sizeof path);
    if (!path[0])
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0750);
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        }
    }
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, len);
    (void)w;
    close(fd);
}

/* The length of the message id a log line starts with ("<id> "), or 0:
 * -v shows the lines without it, as Exim does. */
static size_t id_prefix(const char *s)
{
    size_t n = strcspn(s, " ");
    if ((n != 16 && n != 23) || s[n] != ' ' || s[6] != '-' || s[n - (n == 16 ? 3 : 5)] != '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return n + 1;
}

static void vlog(int which, const char *fmt, va_list ap)
{
    char line[8192];
    size_t n = stamp(line, sizeof line);
    size_t head = n;
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    line[n] = '\0';
    if (cfg.testing) {
        /* once, without the time stamp; not the rejectlog's header copies */
        if (!(which & LOG_NOMAIN))
            fprintf(stderr, "LOG: %.*s", (int)(n - head), line + head);
        return;
    }
    if (cfg.verbose) {
        size_t skip = id_prefix(line + head);
        fprintf(stderr, "LOG:%s%s%s\n  %.*s", (which & LOG_NOMAIN) ? "" : " MAIN", (which & LOG_PANIC) ? " PANIC" : "",
                (which & LOG_REJECT) ? " REJECT" : "", (int)(n - head - skip), line + head + skip);
    }
    if (!(which & LOG_NOMAIN))
        write_file("main", line, n);
    if (which & LOG_REJECT)
        write_file("reject", line, n);
    if (which & LOG_PANIC)
        write_file("panic", line, n);
    if (wants_syslog()) {
        int pri = (which & LOG_PANIC) ? LOG_ALERT : (which & LOG_REJECT) ? LOG_NOTICE : LOG_INFO;
        syslog(LOG_MAIL | pri, "%.*s", (int)(n - head - 1), line + head);
    }
    if (which & LOG_STDERR)
        fprintf(stderr, "%.*s", (int)(n - head), line + head);
}

void log_write(int which, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(which, fmt, ap);
    va_end(ap);
}

_Noreturn void panic(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "postern: panic: %s\n", msg);
    log_write(LOG_PANIC, "panic: %s", msg);
    abort();
}
