/* fixups.c: Exim's header fix-ups for incoming messages. */
#include "message/fixups.h"
#include "config/config.h"
#include "message/msgbuild.h"
#include "message/rewrite.h"
#include "msgauth/mail.h"

#include "core/timefmt.h"
#include <string.h>
#include <strings.h>
#include <time.h>

static void delete_all(spool_msg *m, const char *name)
{
    size_t n = strlen(name);
    for (spool_header *h = m->headers; h; h = h->next)
        if (h->type != '*' && strncasecmp(h->text, name, n) == 0 &&
            (h->text[n] == ':' || h->text[n] == ' ' || h->text[n] == '\t'))
            h->type = '*';
}

static void add(spool_msg *m, arena *a, const char *text)
{
    spool_add_header(m, a, spool_header_type(text), text, strlen(text));
}

/* Does the From: header name exactly the address addr? */
static bool from_is(spool_msg *m, arena *a, const char *addr)
{
    spool_header *h = mb_find_header(m, "From");
    if (!h)
        return false;
    const char *c = strchr(h->text, ':');
    mail_addr *list;
    int n = mail_addr_list(a, c + 1, strlen(c + 1), &list);
    if (n != 1)
        return false;
    const char *at = strrchr(addr, '@');
    if (!at)
        return false;
    return strlen(list[0].local) == (size_t)(at - addr) && strncmp(list[0].local, addr, (size_t)(at - addr)) == 0
           && strcasecmp(list[0].domain, at + 1) == 0;
}

/* A missing From: names the envelope sender, or for a local message
 * with an empty one, the caller.  The caller's name goes with it when the
 * caller is untrusted, gave -F, or sent a non-SMTP message without -f. */
static void add_from(spool_msg *m, const fixup_ctx *fx, arena *a)
{
    const char *name = "";
    if (fx->local && fx->fullname && (!fx->trusted || fx->name_forced || (!fx->smtp && !fx->sender_forced)))
        name = fx->fullname;
    const char *addr = m->sender;
    if (!addr || !*addr) {
        if (!fx->local || !fx->login)
            return;
        addr = arena_printf(a, "%s@%s", fx->login, fx->qualify_domain);
    }
    if (*name)
        add(m, a, arena_printf(a, "From: %s <%s>\n", name, addr));
    else
        add(m, a, arena_printf(a, "From: %s\n", addr));
}

void msg_fixups(spool_msg *m, const fixup_ctx *fx, arena *a)
{
    /* headers only a final delivery adds: incoming ones go */
    if (cfg_bool(MO_return_path_remove))
        delete_all(m, "Return-path");
    if (cfg_bool(MO_delivery_date_remove))
        delete_all(m, "Delivery-date");
    if (cfg_bool(MO_envelope_to_remove))
        delete_all(m, "Envelope-to");
    bool fix = !fx->suppress && (fx->local || fx->submission);
    rewrite_set rs = { 0 };
    if (fx->rewrite)
        rewrite_set_config(cfg, a, &rs);

    if (fix && !mb_find_header(m, "Message-ID") && !mb_find_header(m, "Resent-Message-ID"))
        add(m, a, arena_printf(a, "Message-Id: <E%s@%s>\n", m->id, fx->primary_hostname));

    /* the recipients, then the originator headers, then the sender */
    if (fx->rewrite)
        for (int i = 0; i < m->n_rcpt; i++)
            m->rcpt[i].address = rewrite_envelope(&rs, m->rcpt[i].address, true, m, a);

    if (fix && !mb_find_header(m, "From"))
        add_from(m, fx, a);

    /* Sender: for untrusted local callers */
    if (fix && fx->local && !fx->trusted && fx->login) {
        const char *me = arena_printf(a, "%s@%s", fx->login, fx->qualify_domain);
        if (!fx->local_sender_retain)
            delete_all(m, "Sender");
        if (fx->local_from_check && !from_is(m, a, me)) {
            add(m, a, arena_printf(a, "Sender: %s\n", me));
            m->sender = me;
        }
    }

    if (fx->rewrite) {
        if (rs.n && m->sender && *m->sender)
            m->sender = rewrite_envelope(&rs, m->sender, false, m, a);
        rewrite_headers(&rs, m, fx->unqualified_sender, fx->unqualified_recipient, a);
    }

    if (fix && !mb_find_header(m, "Date")) {
        char date[TIMEFMT_DATE_LEN];
        time_t now = m->received ? m->received : time(NULL);
        timefmt_rfc5322(now, date, sizeof date);
        add(m, a, arena_printf(a, "Date: %s\n", date));
    }
}
