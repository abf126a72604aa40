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
 * prints the CPU time of everything it reaped to stderr if SUBREAPER_RUSAGE
 * is set.  SIGTERM and SIGINT are passed on to cmd while cmd runs.
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
		fprintf(stderr, "subreaper: children cpu %.3f s\n",
		        (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	return rc;
}
