/* local.c: non-SMTP input (-bm, -t, sendmail): a message on stdin from a
 * local caller.  It goes through the same header handling, fix-ups, ACL
 * (acl_not_smtp), spool commit and logging as SMTP reception. */
#include "smtp/local.h"
#include "smtp/reclog.h"
#include "deliver/deliver.h"
#include "acl/acl.h"
#include "config/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "message/fixups.h"
#include "message/msgbuild.h"
#include "msgauth/mail.h"
#include "spool/spool.h"

#include "core/timefmt.h"
#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define LOCAL_LINE_MAX (1024 * 1024)

static bool in_name_list(const char *list, const char *name)
{
    if (!list || !name)
        return false;
    return list_contains(list, 0, name, false, ps.scratch);
}

bool local_caller_trusted(uid_t uid, gid_t gid, const char *login)
{
    if (uid == 0)
        return true;
    const char *eu = cfg_str(MO_exim_user);
    struct passwd *pw = eu ? getpwnam(eu) : NULL;
    if (pw && pw->pw_uid == uid)
        return true;
    if (in_name_list(cfg_str(MO_trusted_users), login))
        return true;
    const char *tg = cfg_str(MO_trusted_groups);
    if (tg) {
        int sep = 0;
        char *g;
        while ((g = list_next(&tg, &sep, ps.scratch))) {
            struct group *gr = getgrnam(g);
            if (gr && gr->gr_gid == gid)
                return true;
        }
    }
    return false;
}

/* Add the addresses of an address header to the recipients (-t). */
static void extract(spool_msg *m, const char *name, arena *a)
{
    size_t n = strlen(name);
    for (spool_header *h = m->headers; h; h = h->next) {
        if (h->type == '*' || strncasecmp(h->text, name, n) != 0 || h->text[n] != ':')
            continue;
        mail_addr *list;
        int k = mail_addr_list(a, h->text + n + 1, h->len - n - 1, &list);
        for (int i = 0; i < k; i++) {
            const char *addr = *list[i].domain
                ? arena_printf(ps.msg_t, "%s@%s", list[i].local, list[i].domain)
                : arena_printf(ps.msg_t, "%s@%s", list[i].local, cfg_str(MO_qualify_recipient));
            spool_rcpt r = { addr, NULL, 0, NULL, -1 };
            spool_add_rcpt(m, a, &r);
        }
    }
}

static void remove_rcpt(spool_msg *m, const char *addr)
{
    int o = 0;
    for (int i = 0; i < m->n_rcpt; i++)
        if (strcasecmp(m->rcpt[i].address, addr) != 0)
            m->rcpt[o++] = m->rcpt[i];
    m->n_rcpt = o;
}

const char *local_caller_name(const struct passwd *pw, arena *a)
{
    if (!pw || !pw->pw_gecos)
        return NULL;
    return arena_strndup(a, pw->pw_gecos, strcspn(pw->pw_gecos, ","));
}

int local_receive(const local_args *la)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    struct passwd *pw = getpwuid(uid);
    const char *login = pw ? arena_strdup(ps.conn, pw->pw_name) : arena_printf(ps.conn, "uid%d", (int)uid);
    const char *fullname = la->fullname ? la->fullname : local_caller_name(pw, ps.conn);
    bool sender_forced = false;
    bool trusted = local_caller_trusted(uid, gid, login);

    spool_msg *m = arena_calloc(ps.msg, sizeof *m);
    spool_new_id(m->id);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    m->received = tv.tv_sec;
    m->received_usec = tv.tv_usec;
    m->login = login;
    m->uid = (long)uid;
    m->gid = (long)gid;
    /* Exim's "locally submitted": unless a trusted caller gave the sender */
    m->local = !la->sender || !trusted;
    m->allow_unqualified_recipient = m->allow_unqualified_sender = true;
    m->dont_deliver = ps.dont_deliver;
    m->ident = login;
    m->received_protocol = "local";
    m->deliver_firsttime = true;
    ps.message_id = m->id;
    ps.received_protocol = "local";

    /* envelope sender */
    const char *sender = arena_printf(ps.msg, "%s@%s", login, cfg_str(MO_qualify_domain));
    if (la->sender) {
        const char *f = la->sender;
        bool allowed = trusted || *f == '\0';
        if (!allowed && cfg_str(MO_untrusted_set_sender)) {
            const char *v;
            char *e;
            allowed = match_address(f, cfg_str(MO_untrusted_set_sender), false, ps.scratch, &v, &e) == ST_OK;
        }
        sender_forced = allowed;
        if (allowed) {
            sender = *f && !strchr(f, '@') ? arena_printf(ps.msg, "%s@%s", f, cfg_str(MO_qualify_domain)) : f;
        } else {
            m->sender_set_untrusted = false;   /* -f ignored for untrusted callers */
        }
    }
    m->sender = sender;

    for (int i = 0; i < la->nrcpt; i++) {
        /* an argument may hold several comma-separated addresses */
        mail_addr *list;
        int k = mail_addr_list(ps.msg, la->rcpt[i], strlen(la->rcpt[i]), &list);
        for (int j = 0; j < k; j++) {
            const char *addr = *list[j].domain
                ? arena_printf(ps.msg, "%s@%s", list[j].local, list[j].domain)
                : arena_printf(ps.msg, "%s@%s", list[j].local, cfg_str(MO_qualify_recipient));
            spool_rcpt r = { addr, NULL, 0, NULL, -1 };
            spool_add_rcpt(m, ps.msg, &r);
        }
    }

    spool_settings ss = { .directory = cfg_str(MO_spool_directory), .split = cfg_bool(MO_split_spool_directory) };
    char *err = NULL;
    int dfd = spool_open_data(&ss, m->id, ps.scratch, &err);
    if (dfd < 0) {
        fprintf(stderr, "postern: cannot queue the message: %s\n", err ? err : "");
        log_write(LOG_MAIN | LOG_PANIC, "%s", err ? err : "cannot open spool file");
        return EX_TEMPFAIL_LOCAL;
    }
    long long limit = receive_size_limit();
    msgbuild b;
    mb_init(&b, m, dfd, ps.msg, (unsigned long long)limit);

    /* read stdin: LF or CRLF line ends; "." alone ends it unless -i */
    gstr line;
    gstr_init(&line, ps.msg, 1024);
    bool first = true;
    int c;
    for (;;) {
        gstr_reset(&line);
        bool eof = false;
        while ((c = getchar()) != EOF && c != '\n')
            if (line.len < LOCAL_LINE_MAX)
                gstr_catc(&line, (char)c);
        if (c == EOF) {
            eof = true;
            if (!line.len)
                break;
        }
        if (line.len && line.s[line.len - 1] == '\r')
            gstr_truncate(&line, line.len - 1);
        if (!la->dot_ok && line.len == 1 && line.s[0] == '.')
            break;
        if (first && strncmp(line.s, "From ", 5) == 0) {
            /* an mbox "From " line: the sender, for trusted callers */
            first = false;
            if (trusted && !la->sender) {
                sender_forced = true;
                char *sp = strchr(line.s + 5, ' ');
                const char *addr = arena_strndup(ps.msg, line.s + 5, sp ? (size_t)(sp - line.s - 5) : line.len - 5);
                m->sender = *addr && !strchr(addr, '@') ? arena_printf(ps.msg, "%s@%s", addr, cfg_str(MO_qualify_domain)) : addr;
            }
            continue;
        }
        first = false;
        mb_line(&b, line.s, line.len);
        if (eof)
            break;
    }
    if (mb_finish(&b) != ST_OK) {
        fprintf(stderr, "postern: cannot write the spool data file\n");
        spool_abandon(&ss, m->id, dfd);
        return EX_TEMPFAIL_LOCAL;
    }
    if (b.too_big) {
        fprintf(stderr, "postern: message is too big (message_size_limit = %lld)\n", limit);
        log_write(LOG_MAIN | LOG_REJECT, "%s F=<%s> U=%s rejected: message too big", m->id, m->sender, login);
        spool_abandon(&ss, m->id, dfd);
        return EXIT_FAILURE;
    }

    if (la->extract) {
        int before = m->n_rcpt;
        const char **args = NULL;
        if (before) {
            args = arena_alloc(ps.msg, sizeof *args * (size_t)before);
            for (int i = 0; i < before; i++)
                args[i] = m->rcpt[i].address;
        }
        m->n_rcpt = 0;
        extract(m, "To", ps.msg);
        extract(m, "Cc", ps.msg);
        extract(m, "Bcc", ps.msg);
        /* Exim's extract_addresses_remove_arguments: command-line addresses
         * are removed from those found in the header */
        if (cfg_bool(MO_extract_addresses_remove_arguments))
            for (int i = 0; i < before; i++)
                remove_rcpt(m, args[i]);
        for (spool_header *h = m->headers; h; h = h->next)
            if (h->type == 'B')
                h->type = '*';
    }
    if (m->n_rcpt == 0) {
        fprintf(stderr, "postern: no recipients%s\n", la->extract ? " found in the message headers" : " given");
        spool_abandon(&ss, m->id, dfd);
        return EXIT_FAILURE;
    }

    ps.sender_address = m->sender;
    ps.message_size = (long)b.size;
    ps.body_linecount = b.body_lines;
    ps.msg_headers = m->headers;
    const char **rl = arena_alloc(ps.msg, sizeof *rl * (size_t)m->n_rcpt);
    for (int i = 0; i < m->n_rcpt; i++)
        rl[i] = m->rcpt[i].address;
    ps.recipients = rl;
    ps.recipients_count = m->n_rcpt;

    acl_session as;
    memset(&as, 0, sizeof as);
    acl_result r;
    memset(&r, 0, sizeof r);
    status st = acl_check(ACL_WHERE_NOT_SMTP, cfg_str(MO_acl_not_smtp), &as, ps.scratch, &r);
    if (st != ST_OK && st != ST_DISCARD) {
        const char *why = r.user_message ? r.user_message : r.error ? r.error : "rejected by acl_not_smtp";
        fprintf(stderr, "postern: message %s: %s\n", st == ST_FAIL ? "rejected" : "temporarily rejected", why);
        log_write(LOG_MAIN | LOG_REJECT, "U=%s F=<%s> %srejected by non-SMTP ACL: %s", login, m->sender,
                  st == ST_FAIL ? "" : "temporarily ", r.log_message ? r.log_message : why);
        spool_abandon(&ss, m->id, dfd);
        return st == ST_FAIL ? EXIT_FAILURE : EX_TEMPFAIL_LOCAL;
    }

    /* the fix-ups and address rewriting, then Received: (it names the
     * rewritten envelope) */
    fixup_ctx fx = {
        .local = true, .suppress = as.controls.suppress_local_fixups, .trusted = trusted,
        .login = login, .fullname = fullname, .name_forced = la->fullname != NULL,
        .sender_forced = sender_forced,
        .qualify_domain = cfg_str(MO_qualify_domain), .primary_hostname = cfg_str(MO_primary_hostname),
        .local_from_check = cfg_bool(MO_local_from_check),
        .local_sender_retain = cfg_bool(MO_local_sender_retain),
        .rewrite = true, .unqualified_sender = true, .unqualified_recipient = true,
    };
    bool msgid_created = !mb_find_header(m, "Message-ID");
    msg_fixups(m, &fx, ps.msg);
    msgid_created = msgid_created && mb_find_header(m, "Message-ID");
    received_header_add(m, NULL, login, m->sender);
    if (as.controls.freeze)
        m->frozen = time(NULL);

    gettimeofday(&tv, NULL);
    m->complete_sec = tv.tv_sec;
    m->complete_usec = tv.tv_usec;
    spool_keep_acl_vars(m, ps.acl_c, ps.acl_m, ps.msg);
    if (spool_commit(&ss, m, dfd, ps.scratch, &err) != ST_OK) {
        fprintf(stderr, "postern: cannot queue the message: %s\n", err ? err : "");
        log_write(LOG_MAIN | LOG_PANIC, "%s: spool commit failed: %s", m->id, err ? err : "");
        spool_abandon(&ss, m->id, dfd);
        return EX_TEMPFAIL_LOCAL;
    }
    close(dfd);
    reclog entry = {
        .m = m, .user = login, .protocol = "local", .size = b.size, .msgid_created = msgid_created,
        .receive_secs = (double)(tv.tv_sec - m->received) + (tv.tv_usec - m->received_usec) / 1e6,
    };
    log_received(&entry);
    /* -odi/-odb override queue_only (unless queue_only_override is off);
     * -odi delivers before we return, as Exim's interactive mode */
    bool queue = la->queue_only || as.controls.queue_only || m->frozen ||
                 (cfg_bool(MO_queue_only) && !(la->deliver_mode && cfg_bool(MO_queue_only_override)));
    if (!queue) {
        if (la->deliver_mode == 'i')
            deliver_now(m->id);
        else
            deliver_after_receive(m->id, false, true);
    }
    if (cfg_bool(MO_message_logs))
        spool_msglog(&ss, m->id, arena_printf(ps.scratch, "Received from %s U=%s P=local S=%llu",
                                              *m->sender ? m->sender : "<>", login, b.size));
    return 0;
}
