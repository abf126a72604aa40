/* bench/smtpload.c: SMTP load generator for the acceptance benchmark.
 *
 * Opens C concurrent connections to host:port and sends N messages in
 * total, each a plain EHLO / MAIL / RCPT / DATA transaction with a body of
 * the given size.  Every reply is checked (220, 250, 250, 250, 354, 250,
 * 221); any other reply, a timeout or a closed connection is counted as an
 * error and makes the exit status 1.  No PIPELINING: one command, one reply,
 * as a plain MX client does.
 *
 * By default each message gets its own connection (real MX traffic); -m K
 * sends K messages per connection (MAIL after the previous 250, no RSET).
 *
 * Latency of a message: from the start of connect() (first message of a
 * connection) or from sending MAIL (later messages on the same connection)
 * to the moment the 250 after the final dot has been read.  QUIT is not
 * part of it, but the next connection of the same slot starts only after
 * the 221, so QUIT does count in messages/second.  By default the client
 * half-closes after QUIT (-q shut, as Exim's smtp transport does); -q wait
 * keeps the socket open until the 221 arrives.
 *
 * Output: one line of key=value pairs (or JSON with -j) on stdout:
 *   messages ok errors seconds msgs_per_sec p50_ms p90_ms p99_ms max_ms
 *   client_cpu_s ...
 * Diagnostics (the first few failures) go to stderr.
 *
 * Threads: one per connection slot, blocking sockets, a shared counter of
 * messages still to send.  The client's own CPU time is reported so that a
 * reader can see how much of the machine the client took.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { REPLY_MAX = 8192, MAX_CONC = 4096, MAX_DIAG = 10 };

struct opts {
	const char *host, *port, *helo, *from, *rcpt, *label;
	long total, conc, per_conn, size, timeout_ms;
	int json, quit_wait;
};

struct conn {
	int fd;
	char buf[REPLY_MAX];
	size_t have;       /* bytes in buf */
	int timeout_ms;
};

static struct opts O = {
	.host = "127.0.0.1", .port = "2525", .helo = "load.example",
	.from = "sender@load.example", .rcpt = "rcpt@bench.example",
	.label = "", .total = 1000, .conc = 1, .per_conn = 1, .size = 4096,
	.timeout_ms = 60000,
};

static atomic_long next_msg;          /* messages handed out so far */
static atomic_long n_ok, n_err;
static atomic_int n_diag;
static double *lat_ms;                /* per message, indexed by message number */
static struct addrinfo *target;
static char *body;                    /* shared body text, dot-safe, CRLF lines */
static size_t body_len;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void diag(const char *fmt, ...)
{
	if (atomic_fetch_add(&n_diag, 1) >= MAX_DIAG)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("smtpload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static int send_all(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && wait_fd(c->fd, POLLOUT, c->timeout_ms) > 0)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read one complete reply (all continuation lines).  Returns the code of
 * the last line, or -1 on timeout / close / garbage; the reply text stays
 * in c->buf up to *len for diagnostics. */
static int read_reply(struct conn *c, char *text, size_t textsz)
{
	text[0] = 0;
	size_t tl = 0;
	for (;;) {
		char *eol = memmem(c->buf, c->have, "\r\n", 2);
		if (eol) {
			size_t ll = (size_t)(eol - c->buf);
			if (tl + ll + 2 < textsz) {
				memcpy(text + tl, c->buf, ll);
				tl += ll;
				text[tl++] = '|';
				text[tl] = 0;
			}
			int last = ll < 4 || c->buf[3] != '-';
			int code = -1;
			if (ll >= 3 && c->buf[0] >= '1' && c->buf[0] <= '5' &&
			    c->buf[1] >= '0' && c->buf[1] <= '9' && c->buf[2] >= '0' && c->buf[2] <= '9')
				code = (c->buf[0] - '0') * 100 + (c->buf[1] - '0') * 10 + (c->buf[2] - '0');
			memmove(c->buf, eol + 2, c->have - ll - 2);
			c->have -= ll + 2;
			if (last)
				return code;
			continue;
		}
		if (c->have == sizeof c->buf)
			return -1;       /* line longer than we accept */
		if (wait_fd(c->fd, POLLIN, c->timeout_ms) <= 0) {
			snprintf(text + tl, textsz - tl, "(timeout)");
			return -1;
		}
		ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(text + tl, textsz - tl, "(connection closed)");
			return -1;
		}
		c->have += (size_t)r;
	}
}

/* Send a command (may be NULL: just read) and expect a reply code. */
static int step(struct conn *c, const char *cmd, size_t cmdlen, int want, const char *what)
{
	char text[512];
	if (cmd && send_all(c, cmd, cmdlen) < 0) {
		diag("%s: send: %s", what, strerror(errno));
		return -1;
	}
	int code = read_reply(c, text, sizeof text);
	if (code != want) {
		diag("%s: expected %d, got %d: %s", what, want, code, text);
		return -1;
	}
	return 0;
}

static int do_connect(struct conn *c)
{
	c->have = 0;
	c->fd = socket(target->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		diag("socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, target->ai_addr, target->ai_addrlen) < 0) {
		diag("connect: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

/* One transaction (MAIL .. final 250) on an open, greeted connection. */
static int transaction(struct conn *c, long msgno)
{
	char cmd[1024], hdr[1024];
	int n = snprintf(cmd, sizeof cmd, "MAIL FROM:<%s> SIZE=%zu\r\n", O.from, body_len + 400);
	if (step(c, cmd, (size_t)n, 250, "MAIL") < 0)
		return -1;
	n = snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", O.rcpt);
	if (step(c, cmd, (size_t)n, 250, "RCPT") < 0)
		return -1;
	if (step(c, "DATA\r\n", 6, 354, "DATA") < 0)
		return -1;
	/* headers: identical for every message except the Message-ID */
	int hl = snprintf(hdr, sizeof hdr,
	                  "From: Load Generator <%s>\r\n"
	                  "To: <%s>\r\n"
	                  "Subject: smtpload message %ld\r\n"
	                  "Date: Sun, 22 Nov 2026 00:00:00 +0000\r\n"
	                  "Message-ID: <smtpload.%ld.%ld@load.example>\r\n"
	                  "MIME-Version: 1.0\r\n"
	                  "Content-Type: text/plain; charset=us-ascii\r\n"
	                  "\r\n",
	                  O.from, O.rcpt, msgno, (long)getpid(), msgno);
	if (send_all(c, hdr, (size_t)hl) < 0 || send_all(c, body, body_len) < 0) {
		diag("DATA body: send: %s", strerror(errno));
		return -1;
	}
	return step(c, ".\r\n", 3, 250, "end of data");
}

/* QUIT, then (by default) half-close before reading the 221, as Exim's own
 * smtp transport does: a server that waits for more pipelined input before
 * flushing its 221 (Exim polls up to 200 ms) sees EOF at once. -q wait keeps
 * the write side open until the 221 has arrived. */
static int quit(struct conn *c)
{
	if (send_all(c, "QUIT\r\n", 6) < 0) {
		diag("QUIT: send: %s", strerror(errno));
		return -1;
	}
	if (!O.quit_wait)
		shutdown(c->fd, SHUT_WR);
	return step(c, NULL, 0, 221, "QUIT");
}

static void *worker(void *arg)
{
	(void)arg;
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->timeout_ms = (int)O.timeout_ms;
	char ehlo[300];
	int el = snprintf(ehlo, sizeof ehlo, "EHLO %s\r\n", O.helo);

	for (;;) {
		long first = atomic_fetch_add(&next_msg, O.per_conn);
		if (first >= O.total)
			break;
		long last = first + O.per_conn;
		if (last > O.total)
			last = O.total;

		double t0 = now_s();
		long m = first;
		if (do_connect(c) < 0)
			goto fail;
		if (step(c, NULL, 0, 220, "banner") < 0 || step(c, ehlo, (size_t)el, 250, "EHLO") < 0)
			goto fail;
		for (; m < last; m++) {
			if (m > first)
				t0 = now_s();
			if (transaction(c, m) < 0)
				goto fail;
			lat_ms[m] = (now_s() - t0) * 1000.0;
			atomic_fetch_add(&n_ok, 1);
		}
		if (quit(c) < 0) {
			/* messages were accepted; count the session error only */
			atomic_fetch_add(&n_err, 1);
		}
		close(c->fd);
		c->fd = -1;
		continue;
fail:
		/* the failed message and the rest planned for this connection */
		atomic_fetch_add(&n_err, last - m);
		for (; m < last; m++)
			lat_ms[m] = -1;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
	free(c);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* nearest-rank percentile over a sorted array */
static double pct(const double *v, long n, double p)
{
	if (n == 0)
		return 0;
	long k = (long)(p / 100.0 * (double)n + 0.999999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static void make_body(long size)
{
	/* lines of 76 printable characters + CRLF; none starts with '.' */
	body = malloc((size_t)size + 80);
	if (!body)
		abort();
	size_t n = 0;
	long line = 0;
	while ((long)n < size) {
		long left = size - (long)n;
		long ll = left >= 78 ? 76 : left - 2;
		if (ll < 1) {    /* pad with a final short line */
			ll = 1;
		}
		for (long i = 0; i < ll; i++)
			body[n++] = (char)('A' + (line + i) % 26);
		body[n++] = '\r';
		body[n++] = '\n';
		line++;
	}
	body_len = n;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: smtpload [-h host] [-p port] [-c conc] [-n total] [-s body_bytes]\n"
	        "                [-m msgs_per_conn] [-f from] [-r rcpt] [-e helo]\n"
	        "                [-t timeout_ms] [-q shut|wait] [-l label] [-j]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, "h:p:c:n:s:m:f:r:e:t:l:jq:")) != -1) {
		switch (ch) {
		case 'h': O.host = optarg; break;
		case 'p': O.port = optarg; break;
		case 'c': O.conc = atol(optarg); break;
		case 'n': O.total = atol(optarg); break;
		case 's': O.size = atol(optarg); break;
		case 'm': O.per_conn = atol(optarg); break;
		case 'f': O.from = optarg; break;
		case 'r': O.rcpt = optarg; break;
		case 'e': O.helo = optarg; break;
		case 't': O.timeout_ms = atol(optarg); break;
		case 'l': O.label = optarg; break;
		case 'j': O.json = 1; break;
		case 'q':
			if (strcmp(optarg, "wait") == 0)
				O.quit_wait = 1;
			else if (strcmp(optarg, "shut") == 0)
				O.quit_wait = 0;
			else
				usage();
			break;
		default: usage();
		}
	}
	if (optind != argc || O.conc < 1 || O.conc > MAX_CONC || O.total < 1 ||
	    O.per_conn < 1 || O.size < 2 || O.timeout_ms < 1)
		usage();

	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	int gr = getaddrinfo(O.host, O.port, &hints, &target);
	if (gr != 0) {
		fprintf(stderr, "smtpload: %s:%s: %s\n", O.host, O.port, gai_strerror(gr));
		return 2;
	}
	make_body(O.size);
	lat_ms = calloc((size_t)O.total, sizeof *lat_ms);
	pthread_t *th = calloc((size_t)O.conc, sizeof *th);
	if (!lat_ms || !th)
		abort();

	double t0 = now_s();
	for (long i = 0; i < O.conc; i++) {
		if (pthread_create(&th[i], NULL, worker, NULL) != 0) {
			fprintf(stderr, "smtpload: pthread_create failed\n");
			return 2;
		}
	}
	for (long i = 0; i < O.conc; i++)
		pthread_join(th[i], NULL);
	double secs = now_s() - t0;

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

	long ok = atomic_load(&n_ok), err = atomic_load(&n_err), k = 0;
	for (long i = 0; i < O.total; i++)
		if (lat_ms[i] >= 0 && i < atomic_load(&next_msg))
			lat_ms[k++] = lat_ms[i];
	qsort(lat_ms, (size_t)k, sizeof *lat_ms, cmp_d);
	double rate = secs > 0 ? (double)ok / secs : 0;
	double p50 = pct(lat_ms, k, 50), p90 = pct(lat_ms, k, 90), p99 = pct(lat_ms, k, 99);
	double mx = k ? lat_ms[k - 1] : 0;
	size_t msg_bytes = body_len; /* body as sent; headers add about 300 bytes */

	if (O.json)
		printf("{\"label\":\"%s\",\"size\":%ld,\"body_bytes\":%zu,\"conc\":%ld,\"per_conn\":%ld,"
		       "\"messages\":%ld,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
		       "\"msgs_per_sec\":%.1f,\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,"
		       "\"max_ms\":%.2f,\"client_cpu_s\":%.3f}\n",
		       O.label, O.size, msg_bytes, O.conc, O.per_conn, O.total, ok, err, secs,
		       rate, p50, p90, p99, mx, cpu);
	else
		printf("label=%s size=%ld body_bytes=%zu conc=%ld per_conn=%ld messages=%ld ok=%ld "
		       "errors=%ld seconds=%.3f msgs_per_sec=%.1f p50_ms=%.2f p90_ms=%.2f "
		       "p99_ms=%.2f max_ms=%.2f client_cpu_s=%.3f\n",
		       O.label[0] ? O.label : "-", O.size, msg_bytes, O.conc, O.per_conn, O.total,
		       ok, err, secs, rate, p50, p90, p99, mx, cpu);
	return err ? 1 : 0;
}
