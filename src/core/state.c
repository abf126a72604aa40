/* state.c: creation of the per-process state. */
#include "state.h"
#include <unistd.h>

proc_state ps;

void state_init(const char *progname)
{
    ps.config = arena_new("config", false);
    ps.conn = arena_new("conn", false);
    ps.msg = arena_new("msg", false);
    ps.scratch = arena_new("scratch", false);
    ps.conn_t = arena_new("conn-tainted", true);
    ps.msg_t = arena_new("msg-tainted", true);
    ps.progname = progname;
    ps.pid = getpid();
    ps.started = time(NULL);
    ps.deliver_notify_fd = -1;
}

void state_message_done(void)
{
    ps.message_body = ps.message_body_end = NULL;
    ps.return_path = ps.filter_thisaddress = NULL;
    ps.message_body_size = ps.body_zerocount = 0;
    arena_reset(ps.msg);
    arena_reset(ps.msg_t);
}
