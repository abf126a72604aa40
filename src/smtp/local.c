/* local.c: non-SMTP input (-bm, -t, sendmail): a message on stdin from a
 * local caller.  It goes through the same header handling, fix-ups, ACL
 * (acl_not_smtp), spool commit and logging as SMTP reception. */
#include "smtp/local.h"
#include "smtp/reclog.h"
#include "deliver/deliver.h"
#include "deliver/bounce.h"
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
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

static int receive(const local_args *la, FILE *in);

#define LOCAL_LINE_MAX (1024 * 1024)
#define EXIT_NORECIPIENTS 2    /* Exim's exit code when the report about a message
                                * without recipients could not be sent */

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

/* ---- errors in local input (Exim's moan) -------------------------------
 * Input that cannot be taken is reported to its sender in a message of
 * its own, submitted like any local message (-t -oi -f <>, R= naming the
 * refused one), so the size limit and everything else apply to it too. */

typedef enum moan_kind { MOAN_NOADDRESS, MOAN_IGADDRESS, MOAN_TOOBIG } moan_kind;

static const char *const moan_subject[] = { "no recipient addresses", "no recipient addresses", "message too big" };
static const char *const moan_text[] = {
    "A message that you sent contained no recipient addresses, and therefore no\n"
    "delivery could be attempted.\n",
    "A message that you sent using the -t command line option contained no\n"
    "addresses that were not also on the command line, and were therefore\n"
    "suppressed. This left no recipient addresses, and so no delivery could\n"
    "be attempted.\n",
    "A message that you sent was longer than the maximum size allowed on this\n"
    "system. It was not delivered to any recipients.\n",
};

/* The report: what went wrong, then (bounce_return_message) the headers
 * and (bounce_return_body) the body, up to the size limits. */
static const char *moan_message(moan_kind k, const spool_msg *m, int dfd, unsigned long long msg_size, long long limit,
                                arena *a)
{
    gstr g;
    gstr_init(&g, a, 4096);
    gstr_cat(&g, dsn_report_headers(m, m->sender, a));
    gstr_printf(&g, "Subject: Mail failure - %s\n\n%s", moan_subject[k], moan_text[k]);
    if (!cfg_bool(MO_bounce_return_message))
        return g.s;
    bool body = cfg_bool(MO_bounce_return_body);
    long long size_limit = cfg_int(MO_bounce_return_size_limit);
    long long this_limit = limit > 0 ? limit : INT32_MAX;
    if (size_limit == 0 || size_limit > this_limit)
        size_limit = this_limit;
    if (body) {
        gstr_cat(&g, "\n------ This is a copy of your message, including all the headers.");
        if (size_limit > 0 && (unsigned long long)size_limit < msg_size) {
            long long x = size_limit;
            const char *kb = "";
            if ((x & 1023) == 0) {
                kb = "K";
                x >>= 10;
            }
            gstr_printf(&g, "\n------ No more than %lld%s characters of the body are included.\n\n", x, kb);
        } else {
            gstr_cat(&g, " ------\n\n");
        }
    } else {
        gstr_cat(&g, "\n------ This is a copy of the headers that were received before the error\n"
                     "       was detected.\n\n");
    }
    for (const spool_header *h = m->headers; h; h = h->next)
        if (h->type != '*')
            gstr_catn(&g, h->text, h->len);
    gstr_catc(&g, '\n');
    if (!body || dfd < 0)
        return g.s;
    /* the body as spooled so far: lines cut at bounce_return_linesize_limit,
     * no more than size_limit characters in all */
    long long linemax = cfg_int(MO_bounce_return_linesize_limit);
    off_t off = SPOOL_ID_LEN + 3;
    long long written = 0, col = 0;
    char buf[8192];
    ssize_t n;
    while (written < size_limit && (n = pread(dfd, buf, sizeof buf, off)) > 0) {
        off += n;
        for (ssize_t i = 0; i < n && written < size_limit; i++) {
            if (buf[i] == '\n')
                col = 0;
            else if (linemax > 0 && col++ >= linemax)
                continue;
            gstr_catc(&g, buf[i]);
            written++;
        }
    }
    return g.s;
}

/* Tell the sender of m (Exim's moan_to_sender): false when there is no
 * one to tell (a bounce, or this is itself a report) or the report could
 * not be taken. */
static bool moan_to_sender(const local_args *la, moan_kind k, spool_msg *m, int dfd, unsigned long long msg_size,
                           long long limit)
{
    if (!*m->sender || la->message_ref) {
        const char *why = k == MOAN_TOOBIG ? arena_printf(ps.scratch, "message too big (limit set to %lld)", limit)
                                           : "no recipient addresses";
        log_write(LOG_MAIN, "%s Error while reading message with no usable sender address%s%s%s: %s", m->id,
                  la->message_ref ? " (R=" : "", la->message_ref ? la->message_ref : "", la->message_ref ? ")" : "",
                  why);
        return false;
    }
    const char *text = moan_message(k, m, dfd, msg_size, limit, ps.msg);
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f) {
        log_write(LOG_MAIN | LOG_PANIC, "%s cannot make the error report: %s", m->id, strerror(errno));
        return false;
    }
    local_args r = { .sender = "", .extract = true, .dot_ok = true, .queue_only = la->queue_only,
                     .deliver_mode = la->deliver_mode, .message_ref = m->id };
    char *rcpt_none[] = { NULL };
    r.rcpt = rcpt_none;
    const char *id = arena_strdup(ps.conn, m->id);
    int rc = receive(&r, f);
    fclose(f);
    ps.message_id = id;
    if (rc != 0) {
        log_write(LOG_MAIN, "%s Child mail process returned status %d", id, rc);
        return false;
    }
    return true;
}

int local_receive(const local_args *la)
{
    return receive(la, stdin);
}

static int receive(const local_args *la, FILE *in)
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
        while ((c = getc(in)) != EOF && c != '\n')
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

    /* -t: the recipients come from the headers (Exim takes them as it
     * reads the headers, so a message refused later lists them too) */
    bool extracted_ignored = false;
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
        if (cfg_bool(MO_extract_addresses_remove_arguments)) {
            int found = m->n_rcpt;
            for (int i = 0; i < before; i++)
                remove_rcpt(m, args[i]);
            extracted_ignored = found && !m->n_rcpt;
        }
        for (spool_header *h = m->headers; h; h = h->next)
            if (h->type == 'B')
                h->type = '*';
    }

    /* the fix-ups and address rewriting (the ACL may still suppress them) */
    fixup_ctx fx = {
        .local = true, .trusted = trusted,
        .login = login, .fullname = fullname, .name_forced = la->fullname != NULL,
        .sender_forced = sender_forced,
        .qualify_domain = cfg_str(MO_qualify_domain), .primary_hostname = cfg_str(MO_primary_hostname),
        .local_from_check = cfg_bool(MO_local_from_check),
        .local_sender_retain = cfg_bool(MO_local_sender_retain),
        .rewrite = true, .unqualified_sender = true, .unqualified_recipient = true,
    };
    int error_rc = la->errors_ok && !la->errors_stderr ? EXIT_SUCCESS : EXIT_FAILURE;
    if (b.too_big) {
        /* Exim stops counting at the first byte over the limit */
        msg_fixups(m, &fx, ps.msg);
        if (logsel_on(&cfg->logsel, LS_SIZE_REJECT)) {
            log_write(LOG_MAIN | LOG_REJECT, "%s rejected from <%s> U=%s: message too big: read=%lld max=%lld", m->id,
                      m->sender, login, limit + 1, limit);
            if (logsel_on(&cfg->logsel, LS_REJECTED_HEADER))
                log_reject_headers(m->sender, m);
        }
        if (la->errors_stderr)
            fprintf(stderr, "postern: message rejected: message too big (max=%lld)\n", limit);
        else if (!moan_to_sender(la, MOAN_TOOBIG, m, dfd, (unsigned long long)limit + 1, limit))
            error_rc = EXIT_FAILURE;
        spool_abandon(&ss, m->id, dfd);
        return error_rc;
    }
    if (m->n_rcpt == 0 && la->extract) {
        msg_fixups(m, &fx, ps.msg);
        log_write(LOG_MAIN | LOG_PANIC | LOG_STDERR, "%s no recipients found in headers", m->id);
        if (la->errors_stderr)
            fprintf(stderr, extracted_ignored ? "postern: all -t recipients overridden by command line\n"
                                              : "postern: no recipients in message\n");
        else if (!moan_to_sender(la, extracted_ignored ? MOAN_IGADDRESS : MOAN_NOADDRESS, m, dfd, b.lf_size, limit))
            error_rc = EXIT_NORECIPIENTS;
        spool_abandon(&ss, m->id, dfd);
        return error_rc;
    }
    if (m->n_rcpt == 0) {
        fprintf(stderr, "postern: no recipients given\n");
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
    fx.suppress = as.controls.suppress_local_fixups;
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
        .m = m, .ref = la->message_ref, .user = login, .protocol = "local", .size = b.size, .msgid_created = msgid_created,
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
