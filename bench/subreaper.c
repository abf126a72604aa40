/* bench/subreaper.c: run a command as a child subreaper.
 *
 *   subreaper cmd [args...]
 *
 * Daemons that fork into the background (exim4 -bd, postfix start) or
 * whose children outlive them (Postfix's services after "postfix stop")
 * are re-parented to this process instead of to PID 1, so that
 *  - the whole server is one process tree under this pid, and bench/run.sh
 *    can add up its CPU time from /proc, and
 *  - every exited process is reaped (PID 1 of a container may not reap).
 * It exits when it has no children left, with the exit status of cmd, and
 * if SUBREAPER_RUSAGE is set prints to stderr the CPU time of everything it
 * reaped (the whole tree: a process's reaped children count in its own
 * figures), then one key=value line: user_s, sys_s, cpu_s, maxrss_kb (the
 * peak resident set of the largest single process in the tree, from the
 * kernel's ru_maxrss) and wall_s (from the start of cmd to the last exit).
 * SIGTERM and SIGINT are passed on to cmd while cmd runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: subreaper cmd [args...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("subreaper: prctl");
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("subreaper: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "subreaper: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	child = pid;
	struct sigaction sa = { .sa_handler = forward };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int status = 0, rc = 0;
	for (;;) {
		pid_t w = wait(&status);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;   /* ECHILD: nothing left */
		}
		if (w == pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			child = 0;
		}
	}
	if (getenv("SUBREAPER_RUSAGE")) {
		struct rusage ru;
		getrusage(RUSAGE_CHILDREN, &ru);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double u = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
		double y = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
		fprintf(stderr, "subreaper: children cpu %.3f s\n", u + y);
		fprintf(stderr, "subreaper: user_s=%.3f sys_s=%.3f cpu_s=%.3f maxrss_kb=%ld wall_s=%.3f\n",
		        u, y, u + y, ru.ru_maxrss,
		        (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return rc;
}
