/* bench/smtpsink.c: a fast SMTP sink for the delivery benchmark.
 *
 *   smtpsink [-a addr] [-p port] [-t timeout_ms]
 *
 * Listens on addr:port (default 127.0.0.1:2526), one thread per
 * connection, and accepts everything: EHLO (advertising PIPELINING,
 * 8BITMIME and SIZE, nothing else: no STARTTLS, no CHUNKING), HELO, MAIL,
 * RCPT, DATA, RSET, NOOP, QUIT.  Message bodies are scanned for the
 * terminating CRLF.CRLF and thrown away.  Replies are buffered and written
 * when the input buffer holds no further complete command, so a pipelining
 * client gets its replies in one write, as RFC 2920 expects of a server.
 *
 * Counting: messages (the 250 after the dot), recipients, connections (those
 * that said EHLO or HELO) and body bytes.  A client asks for the counts with
 * the command XCOUNT, answered by
 *   250 messages=M recipients=R connections=C bytes=B last_msg=T
 * (T: the wall-clock time of the last message, seconds since the epoch);
 * XRESET sets them to zero.  On SIGTERM or SIGINT the counts are printed on
 * stdout as one key=value line and the sink exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { BUF = 65536, OUT = 8192, LINE_MAX_LEN = 4096 };

static atomic_long n_msgs, n_rcpts, n_conns, n_bytes;
static _Atomic double last_msg;
static int timeout_ms = 60000;
static volatile sig_atomic_t stop;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct conn {
	int fd;
	char in[BUF];
	size_t have, pos;          /* bytes in in[], bytes consumed */
	char out[OUT];
	size_t out_len;
	int data;                  /* in DATA: scanning for CRLF.CRLF */
	int bol;                   /* DATA: at the beginning of a line */
	int dot;                   /* DATA: 1 = "." seen at bol, 2 = ".\r" */
	int cr;                    /* DATA: previous byte was CR */
	long rcpts;
	long bytes;
};

static int flush_out(struct conn *c)
{
	size_t off = 0;
	while (off < c->out_len) {
		ssize_t w = write(c->fd, c->out + off, c->out_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	c->out_len = 0;
	return 0;
}

static int reply(struct conn *c, const char *s)
{
	size_t l = strlen(s);
	if (c->out_len + l > sizeof c->out && flush_out(c) < 0)
		return -1;
	memcpy(c->out + c->out_len, s, l);
	c->out_len += l;
	return 0;
}

/* Read more input; flushes pending replies first (nothing more to do
 * without input).  Returns 0, or -1 on EOF, error or timeout. */
static int fill(struct conn *c)
{
	if (c->out_len && flush_out(c) < 0)
		return -1;
	if (c->pos == c->have)
		c->pos = c->have = 0;
	else if (c->pos > 0 && c->have == sizeof c->in) {
		memmove(c->in, c->in + c->pos, c->have - c->pos);
		c->have -= c->pos;
		c->pos = 0;
	}
	if (c->have == sizeof c->in)
		return -1;                 /* a command line longer than the buffer */
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(c->fd, c->in + c->have, sizeof c->in - c->have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->have += (size_t)n;
		return 0;
	}
}

/* DATA mode: consume input up to and including the terminating CRLF.CRLF.
 * Returns 1 when the message ended, 0 when more input is needed. */
static int scan_data(struct conn *c)
{
	while (c->pos < c->have) {
		if (c->bol && c->dot == 0) {
			/* fast path: skip to the next LF */
			char *s = c->in + c->pos;
			if (*s != '.') {
				char *lf = memchr(s, '\n', c->have - c->pos);
				if (!lf) {
					c->bytes += (long)(c->have - c->pos);
					c->cr = c->in[c->have - 1] == '\r';
					c->pos = c->have;
					c->bol = 0;
					return 0;
				}
				size_t n = (size_t)(lf - s) + 1;
				c->bytes += (long)n;
				c->pos += n;
				c->bol = n >= 2 && lf[-1] == '\r';
				continue;
			}
		}
		char ch = c->in[c->pos++];
		c->bytes++;
		if (c->dot == 1) {
			c->dot = ch == '\r' ? 2 : 0;
			c->cr = ch == '\r';
			c->bol = 0;
			continue;
		}
		if (c->dot == 2) {
			if (ch == '\n')
				return 1;
			c->dot = 0;
		}
		if (c->bol && ch == '.') {
			c->dot = 1;
			c->bol = 0;
			continue;
		}
		c->bol = c->cr && ch == '\n';
		c->cr = ch == '\r';
		if (!c->bol && !c->cr) {
			/* middle of a line: skip to the next LF */
			char *lf = memchr(c->in + c->pos, '\n', c->have - c->pos);
			size_t n = lf ? (size_t)(lf - (c->in + c->pos)) : c->have - c->pos;
			if (n > 0) {
				c->cr = c->in[c->pos + n - 1] == '\r';
				c->bytes += (long)n;
				c->pos += n;
			}
		}
	}
	return 0;
}

static int command(struct conn *c, char *line)
{
	if (!strncasecmp(line, "EHLO", 4)) {
		atomic_fetch_add(&n_conns, 1);
		c->rcpts = 0;
		return reply(c, "250-sink.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n");
	}
	if (!strncasecmp(line, "HELO", 4)) {
		atomic_fetch_add(&n_conns, 1);
		c->rcpts = 0;
		return reply(c, "250 sink.example\r\n");
	}
	if (!strncasecmp(line, "MAIL", 4)) {
		c->rcpts = 0;
		return reply(c, "250 OK\r\n");
	}
	if (!strncasecmp(line, "RCPT", 4)) {
		c->rcpts++;
		return reply(c, "250 Accepted\r\n");
	}
	if (!strncasecmp(line, "DATA", 4)) {
		if (c->rcpts == 0)
			return reply(c, "503 No valid recipients\r\n");
		c->data = 1;
		c->bol = 1;
		c->dot = c->cr = 0;
		c->bytes = 0;
		return reply(c, "354 Go ahead\r\n");
	}
	if (!strncasecmp(line, "RSET", 4)) {
		c->rcpts = 0;
		return reply(c, "250 Reset\r\n");
	}
	if (!strncasecmp(line, "NOOP", 4))
		return reply(c, "250 OK\r\n");
	if (!strncasecmp(line, "QUIT", 4)) {
		reply(c, "221 Bye\r\n");
		flush_out(c);
		return -1;
	}
	if (!strncasecmp(line, "XCOUNT", 6)) {
		char b[256];
		snprintf(b, sizeof b, "250 messages=%ld recipients=%ld connections=%ld bytes=%ld last_msg=%.6f\r\n",
		         atomic_load(&n_msgs), atomic_load(&n_rcpts), atomic_load(&n_conns),
		         atomic_load(&n_bytes), atomic_load(&last_msg));
		return reply(c, b);
	}
	if (!strncasecmp(line, "XRESET", 6)) {
		atomic_store(&n_msgs, 0);
		atomic_store(&n_rcpts, 0);
		atomic_store(&n_conns, 0);
		atomic_store(&n_bytes, 0);
		atomic_store(&last_msg, 0.0);
		return reply(c, "250 Reset\r\n");
	}
	return reply(c, "500 Unrecognized command\r\n");
}

static void *serve(void *arg)
{
	struct conn *c = arg;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (reply(c, "220 sink.example ESMTP smtpsink\r\n") < 0)
		goto out;
	for (;;) {
		if (c->data) {
			if (scan_data(c)) {
				c->data = 0;
				atomic_fetch_add(&n_msgs, 1);
				atomic_fetch_add(&n_rcpts, c->rcpts);
				atomic_fetch_add(&n_bytes, c->bytes);
				atomic_store(&last_msg, now_s());
				c->rcpts = 0;
				if (reply(c, "250 OK queued\r\n") < 0)
					break;
				continue;
			}
			if (fill(c) < 0)
				break;
			continue;
		}
		char *s = c->in + c->pos;
		char *lf = memchr(s, '\n', c->have - c->pos);
		if (!lf) {
			if (c->have - c->pos > LINE_MAX_LEN || fill(c) < 0)
				break;
			continue;
		}
		*lf = 0;
		if (lf > s && lf[-1] == '\r')
			lf[-1] = 0;
		c->pos += (size_t)(lf - s) + 1;
		if (command(c, s) < 0)
			break;
	}
out:
	close(c->fd);
	free(c);
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 2526, ch;
	while ((ch = getopt(argc, argv, "a:p:t:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': timeout_ms = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: smtpsink [-a addr] [-p port] [-t timeout_ms]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_signal };   /* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (ls < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "smtpsink: bad address %s\n", addr);
		return 2;
	}
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 512) < 0) {
		fprintf(stderr, "smtpsink: %s:%d: %s\n", addr, port, strerror(errno));
		return 2;
	}
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	while (!stop) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000);
				continue;
			}
			perror("smtpsink: accept");
			break;
		}
		struct conn *c = calloc(1, sizeof *c);
		pthread_t t;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (pthread_create(&t, &at, serve, c) != 0) {
			close(fd);
			free(c);
		}
	}
	printf("messages=%ld recipients=%ld connections=%ld bytes=%ld\n", atomic_load(&n_msgs),
	       atomic_load(&n_rcpts), atomic_load(&n_conns), atomic_load(&n_bytes));
	fflush(stdout);
	return 0;
}
