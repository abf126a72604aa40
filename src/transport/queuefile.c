/* queuefile.c: the queuefile transport (seed): copies the message's -H
 * and -D spool files, in Exim's spool format, into the expanded
 * "directory" (a scanner's input queue).  -D is written first and both are
 * synced, so a consumer that looks for -H files sees complete messages. */
#include "transport/transport.h"
#include "core/log.h"
#include "core/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static status copy(const char *from, const char *to, arena *a, char **err)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        *err = arena_printf(a, "cannot open %s: %s", from, strerror(errno));
        return ST_DEFER;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        *err = arena_printf(a, "cannot create %s: %s", tmp, strerror(errno));
        close(in);
        return ST_DEFER;
    }
    char buf[65536];
    ssize_t n;
    status st = ST_OK;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (!write_to_fd(&out, buf, (size_t)n)) {
            st = ST_DEFER;
            break;
        }
    if (n < 0)
        st = ST_DEFER;
    if (st == ST_OK && fsync(out) != 0)
        st = ST_DEFER;
    close(in);
    if (close(out) != 0)
        st = ST_DEFER;
    if (st == ST_OK && rename(tmp, to) != 0)
        st = ST_DEFER;
    if (st != ST_OK) {
        *err = arena_printf(a, "copying %s to %s failed: %s", from, to, strerror(errno));
        unlink(tmp);
    }
    return st;
}

status transport_queuefile(const driver_inst *t, address_item *addrs, tp_ctx *ctx)
{
    address_item *a = addrs;
    tp_set_vars(t, a);
    const char *dir = NULL;
    char *err = NULL;
    if (tp_opt_expand(t, "directory", ctx, &dir, &err) != ST_OK || !dir || !*dir) {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "queuefile transport %s: directory %s", t->name,
                                  err ? err : "is not set");
        return ST_DEFER;
    }
    if (dir[0] != '/') {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "queuefile directory \"%s\" is not absolute", dir);
        return ST_DEFER;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        a->result = ST_DEFER;
        a->message = arena_printf(ctx->a, "queuefile directory %s does not exist", dir);
        return ST_DEFER;
    }
    char from[PATH_MAX], to[PATH_MAX + 32];
    snprintf(to, sizeof to, "%s/%s-D", dir, ctx->m->id);
    if (copy(spool_path(ctx->ss, ctx->m->id, 'D', from, sizeof from), to, ctx->a, &err) != ST_OK) {
        a->result = ST_DEFER;
        a->message = err;
        return ST_DEFER;
    }
    snprintf(to, sizeof to, "%s/%s-H", dir, ctx->m->id);
    if (copy(spool_path(ctx->ss, ctx->m->id, 'H', from, sizeof from), to, ctx->a, &err) != ST_OK) {
        a->result = ST_DEFER;
        a->message = err;
        return ST_DEFER;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    a->result = ST_OK;
    return ST_OK;
}
