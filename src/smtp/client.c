/* client.c: SMTP client protocol layer. */
#include "smtp/client.h"
#include "core/gstr.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int atoi_n(const char *s)
{
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

static int wait_fd(int fd, short ev, int timeout)
{
    struct pollfd p = { .fd = fd, .events = ev };
    for (;;) {
        int r = poll(&p, 1, timeout > 0 ? timeout * 1000 : -1);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

status smtp_client_connect(smtp_client *c, const char *ip, int port, const char *interface,
                           int connect_timeout, int timeout, arena *a, char **err)
{
    smtp_connect_opts o = { .interface = interface, .connect_timeout = connect_timeout, .tos = -1 };
    return smtp_client_connect_opts(c, ip, port, &o, timeout, a, err);
}

status smtp_client_connect_opts(smtp_client *c, const char *ip, int port, const smtp_connect_opts *o, int timeout,
                                arena *a, char **err)
{
    const char *interface = o->interface;
    int connect_timeout = o->connect_timeout;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->a = a;
    c->timeout = timeout;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int fam;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        fam = AF_INET;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof *s4;
        c->peer = arena_printf(a, "[%s]:%d", ip, port);
    } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        fam = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof *s6;
        c->peer = arena_printf(a, "[%s]:%d", ip, port);
    } else {
        *err = arena_printf(a, "invalid IP address %s", ip);
        return ST_FAIL;
    }
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = arena_printf(a, "socket: %s", strerror(errno));
        return ST_DEFER;
    }
    if (interface && *interface) {
        struct sockaddr_storage ls;
        memset(&ls, 0, sizeof ls);
        if (fam == AF_INET && inet_pton(AF_INET, interface, &((struct sockaddr_in *)&ls)->sin_addr) == 1) {
            ((struct sockaddr_in *)&ls)->sin_family = AF_INET;
            bind(fd, (struct sockaddr *)&ls, sizeof(struct sockaddr_in));
        } else if (fam == AF_INET6 && inet_pton(AF_INET6, interface, &((struct sockaddr_in6 *)&ls)->sin6_addr) == 1) {
            ((struct sockaddr_in6 *)&ls)->sin6_family = AF_INET6;
            bind(fd, (struct sockaddr *)&ls, sizeof(struct sockaddr_in6));
        }
    }
    if (o->tos >= 0) {
        int v = o->tos;
        if (fam == AF_INET)
            setsockopt(fd, IPPROTO_IP, IP_TOS, &v, sizeof v);
        else
            setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v);
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        c->os_errno = errno;
        *err = arena_printf(a, "%s", strerror(errno));
        close(fd);
        return ST_DEFER;
    }
    int r = wait_fd(fd, POLLOUT, connect_timeout);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (r <= 0) {
        c->os_errno = ETIMEDOUT;
        *err = "Connection timed out";
        close(fd);
        return ST_DEFER;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        c->os_errno = soerr;
        *err = arena_printf(a, "%s", strerror(soerr));
        close(fd);
        return ST_DEFER;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int on = 1;
    if (o->keepalive)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    /* commands and the end of data go out at once: without this, Nagle
     * holds a short write (".\r\n" after a body) until the body is
     * acknowledged, which a delayed ACK makes 40 ms per message */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    c->fd = fd;
    return ST_OK;
}

status smtp_client_connect_unix(smtp_client *c, const char *path, int timeout, arena *a, char **err)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->a = a;
    c->timeout = timeout;
    c->peer = arena_strdup(a, path);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) {
        *err = arena_printf(a, "socket path %s is too long", path);
        return ST_FAIL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        c->os_errno = errno;
        *err = arena_printf(a, "failed to connect to socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return ST_DEFER;
    }
    c->fd = fd;
    return ST_OK;
}

static int getbyte(smtp_client *c)
{
    if (c->rpos >= c->rlen && c->tls) {
        ssize_t n = tls_read(c->tls, c->rbuf, sizeof c->rbuf, c->timeout);
        if (n == -2)
            return -2;
        if (n <= 0)
            return -1;
        c->rpos = 0;
        c->rlen = (size_t)n;
    }
    if (c->rpos >= c->rlen) {
        if (wait_fd(c->fd, POLLIN, c->timeout) <= 0)
            return -2;
        ssize_t n;
        do
            n = read(c->fd, c->rbuf, sizeof c->rbuf);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
        c->rpos = 0;
        c->rlen = (size_t)n;
    }
    return (unsigned char)c->rbuf[c->rpos++];
}

status smtp_client_read(smtp_client *c, smtp_reply *r)
{
    memset(r, 0, sizeof *r);
    gstr text, first;
    gstr_init(&text, c->a, 128);
    gstr_init(&first, c->a, 128);
    gstr line;
    gstr_init(&line, c->a, 128);
    size_t total = 0;
    for (;;) {
        gstr_reset(&line);
        int ch;
        while ((ch = getbyte(c)) >= 0 && ch != '\n') {
            if (total++ > SMTP_CLIENT_REPLY_MAX)
                break;
            gstr_catc(&line, (char)ch);
        }
        if (ch < 0) {
            c->last_code = 0;
            c->read_error = ch == -2 ? ETIMEDOUT : -18 /* ERRNO_SMTPCLOSED */;
            c->last_reply = ch == -2 ? "timeout" : "connection closed";
            r->text = c->last_reply;
            r->first_line = "";
            return ST_DEFER;
        }
        if (line.len && line.s[line.len - 1] == '\r')
            gstr_truncate(&line, line.len - 1);
        if (line.len < 3 || !isdigit((unsigned char)line.s[0]) || !isdigit((unsigned char)line.s[1]) ||
            !isdigit((unsigned char)line.s[2])) {
            c->last_code = 0;
            c->read_error = -19 /* ERRNO_SMTPFORMAT */;
            c->last_reply = arena_printf(c->a, "malformed SMTP reply: %s", line.s);
            r->text = c->last_reply;
            r->first_line = line.s;
            return ST_DEFER;
        }
        int code = atoi_n(line.s);
        if (!first.len)
            gstr_cat(&first, line.s);
        if (text.len)
            gstr_catc(&text, '\n');
        gstr_cat(&text, line.len > 4 ? line.s + 4 : "");
        r->code = code;
        if (line.len < 4 || line.s[3] != '-')
            break;
    }
    r->text = text.s;
    r->first_line = first.s;
    c->read_error = 0;
    c->last_code = r->code;
    c->last_reply = r->first_line;
    return ST_OK;
}

status smtp_client_write(smtp_client *c, const char *p, size_t n)
{
    if (c->tls) {
        if (!tls_write(c->tls, p, n, c->timeout)) {
            c->os_errno = EPIPE;
            return ST_DEFER;
        }
        c->written += (unsigned long long)n;
        return ST_OK;
    }
    while (n) {
        int r = wait_fd(c->fd, POLLOUT, c->timeout);
        if (r <= 0) {
            c->os_errno = r == 0 ? ETIMEDOUT : errno;
            return ST_DEFER;
        }
        /* never block in the write itself: the timeout is poll's */
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT | (c->more ? MSG_MORE : 0));
        if (w < 0 && errno == ENOTSOCK)
            w = write(c->fd, p, n);            /* a pipe (lmtp's command) */
        if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (w <= 0) {
            c->os_errno = w < 0 ? errno : EPIPE;
            return ST_DEFER;
        }
        p += w;
        n -= (size_t)w;
        c->written += (unsigned long long)w;
    }
    return ST_OK;
}

status smtp_client_send(smtp_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(c->a, fmt, ap);
    va_end(ap);
    return smtp_client_write(c, s, strlen(s));
}

void smtp_client_close(smtp_client *c)
{
    if (c->tls) {
        tls_close(c->tls, true);
        c->tls = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void smtp_client_parse_ehlo(smtp_client *c, const char *text)
{
    const char *p = text;
    bool first = true;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!first) {
            if (n >= 10 && !strncasecmp(p, "PIPELINING", 10)) c->pipelining = true;
            else if (n >= 4 && !strncasecmp(p, "SIZE", 4)) c->size = true;
            else if (n >= 8 && !strncasecmp(p, "8BITMIME", 8)) c->eightbit = true;
            else if (n >= 3 && !strncasecmp(p, "DSN", 3)) c->dsn = true;
            else if (n >= 8 && !strncasecmp(p, "CHUNKING", 8)) c->chunking = true;
            else if (n >= 11 && !strncasecmp(p, "IGNOREQUOTA", 11)) c->ignorequota = true;
            else if (n == 8 && !strncasecmp(p, "STARTTLS", 8)) c->starttls = true;
            else if (n == 8 && !strncasecmp(p, "SMTPUTF8", 8)) c->smtputf8 = true;
            else if (n > 5 && !strncasecmp(p, "AUTH ", 5)) c->auth_mechs = arena_strndup(c->a, p + 5, n - 5);
        }
        first = false;
        p += n + (nl ? 1 : 0);
    }
}
