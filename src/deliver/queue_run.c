/* queue_run.c: the queue runner (-q, -qf, -qff) and delivery after
 * reception. */
#include "deliver/deliver.h"
#include "route/route.h"
#include "transport/smtp_wait.h"
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmpid(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(const char *dir, char ***ids, int *n, int *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != SPOOL_ID_LEN + 2 || strcmp(e->d_name + SPOOL_ID_LEN, "-H"))
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *ids = realloc(*ids, sizeof **ids * (size_t)*cap);
            if (!*ids)
                panic("queue run: out of memory");
        }
        (*ids)[(*n)++] = strndup(e->d_name, SPOOL_ID_LEN);
    }
    closedir(d);
}

/* Deliver one message in a child process (so that a crash or a leak in one
 * delivery costs only that delivery).  Returns the child's status. */
static int deliver_child(const char *id, const deliver_opts *o)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_write(LOG_MAIN | LOG_PANIC, "fork for delivery of %s failed", id);
        return -1;
    }
    if (pid == 0) {
        ps.pid = getpid();
        smtp_kept_forget();
        status st = deliver_message(id, o);
        fflush(NULL);
        _exit(st == ST_OK ? 0 : st == ST_DEFER ? 1 : 2);
    }
    int wst;
    while (waitpid(pid, &wst, 0) < 0)
        ;
    return wst;
}

int deliver_queue_run(const deliver_opts *o)
{
    const char *spool = cfg_str(MO_spool_directory);
    char **ids = NULL;
    int n = 0, cap = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/input", spool);
    collect(dir, &ids, &n, &cap);
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (const char *c = b62; *c; c++) {
        snprintf(dir, sizeof dir, "%s/input/%c", spool, *c);
        collect(dir, &ids, &n, &cap);
    }
    /* Exim's default is a random order (so one stuck message does not
     * always go first); queue_run_in_order keeps arrival order */
    if (n > 1)
        qsort(ids, (size_t)n, sizeof *ids, cmpid);
    route_seed_random();
    if (!cfg_bool(MO_queue_run_in_order))
        for (int i = n - 1; i > 0; i--) {
            int j = rand() % (i + 1);
            char *t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
    deliver_opts qo = *o;
    qo.queue_run = true;
    o = &qo;
    if (logsel_on(&cfg->logsel, LS_QUEUE_RUN))
        log_write(LOG_MAIN, "Start queue run: pid=%d%s", (int)getpid(), o->force ? (o->thaw ? " -qff" : " -qf") : "");
    for (int i = 0; i < n; i++) {
        deliver_child(ids[i], o);
        free(ids[i]);
    }
    free(ids);
    if (logsel_on(&cfg->logsel, LS_QUEUE_RUN))
        log_write(LOG_MAIN, "End queue run: pid=%d%s", (int)getpid(), o->force ? (o->thaw ? " -qff" : " -qf") : "");
    return 0;
}

void deliver_now(const char *id)
{
    deliver_opts o = { 0 };
    deliver_child(id, &o);
}

void deliver_after_receive(const char *id, bool queue_only, bool override_queue_only)
{
    if (queue_only || (cfg_bool(MO_queue_only) && !override_queue_only))
        return;
    pid_t pid = fork();
    if (pid != 0) {
        /* the receiving process does not wait for the delivery */
        return;
    }
    /* detach: a grandchild delivers, so nobody has to reap it */
    pid_t g = fork();
    if (g != 0)
        _exit(0);
    setsid();
    ps.pid = getpid();
    smtp_kept_forget();         /* a connection the parent keeps is not ours */
    ps.deliver_continuing = false;
    deliver_opts o = { 0 };
    deliver_message(id, &o);
    _exit(0);
}

void deliver_generated(const char *id)
{
    if (cfg_bool(MO_queue_only))
        return;
    deliver_opts o = { 0 };
    bool cont = ps.deliver_continuing;
    ps.deliver_continuing = false;
    deliver_child(id, &o);
    ps.deliver_continuing = cont;
}
