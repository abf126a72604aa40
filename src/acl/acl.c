/* acl.c: the ACL engine's core: finding the ACL an option names (by name,
 * inline text or file), running its statements with Exim's verb semantics
 * (accept, defer, deny, discard, drop, require, warn, endpass, implicit
 * deny at the end) and turning "message"/"log_message" into the texts the
 * SMTP server answers and logs.  Conditions live in acl_cond.c, modifiers
 * in acl_mod.c, verification in acl_verify.c, ratelimit in acl_ratelimit.c. */
#include "acl/acl_int.h"
#include "core/gstr.h"
#include "core/log.h"
#include "expand/expand.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <pwd.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const where_names[ACL_WHERE__COUNT] = {
    [ACL_WHERE_CONNECT] = "CONNECT", [ACL_WHERE_HELO] = "HELO", [ACL_WHERE_MAIL] = "MAIL",
    [ACL_WHERE_RCPT] = "RCPT", [ACL_WHERE_PREDATA] = "PREDATA", [ACL_WHERE_DATA] = "DATA",
    [ACL_WHERE_QUIT] = "QUIT", [ACL_WHERE_NOTQUIT] = "NOTQUIT", [ACL_WHERE_VRFY] = "VRFY",
    [ACL_WHERE_EXPN] = "EXPN", [ACL_WHERE_NOT_SMTP] = "non-SMTP", [ACL_WHERE_EXPANSION] = "expansion",
};

/* Exim's names in "cannot test X condition in <where> ACL" texts. */
static const char *const where_msg_names[ACL_WHERE__COUNT] = {
    [ACL_WHERE_CONNECT] = "connection", [ACL_WHERE_HELO] = "EHLO or HELO", [ACL_WHERE_MAIL] = "MAIL",
    [ACL_WHERE_RCPT] = "RCPT", [ACL_WHERE_PREDATA] = "PREDATA", [ACL_WHERE_DATA] = "DATA",
    [ACL_WHERE_QUIT] = "QUIT", [ACL_WHERE_NOTQUIT] = "NOTQUIT", [ACL_WHERE_VRFY] = "VRFY",
    [ACL_WHERE_EXPN] = "EXPN", [ACL_WHERE_NOT_SMTP] = "non-SMTP", [ACL_WHERE_EXPANSION] = "expansion",
};

const char *acl_where_name(acl_where w)
{
    return (unsigned)w < ACL_WHERE__COUNT ? where_names[w] : "?";
}

const char *acl_wherename(acl_where w)
{
    return (unsigned)w < ACL_WHERE__COUNT ? where_msg_names[w] : "?";
}

const char *acl_default_text(status st)
{
    switch (st) {
    case ST_FAIL: return ACL_TEXT_FAIL;
    case ST_DEFER:
    case ST_ERROR: return ACL_TEXT_DEFER;
    default: return NULL;
    }
}

void acl_session_message_reset(acl_session *sess)
{
    acl_controls *k = &sess->controls;
    k->queue_only = k->freeze = k->submission = k->suppress_local_fixups = false;
    k->submission_domain = NULL;
    k->fakedefer = k->fakereject = false;
    k->dkim_disable_verify = k->dmarc_disable_verify = k->dmarc_enable_forensic = false;
    k->fakereject_message = NULL;
    k->freeze_no_tell = false;
    k->submission_name = NULL;
    k->submission_sender_retain = false;
    k->queue_first_pass_route = false;
    k->queue_name = NULL;
    k->caseful_local_part = false;
    k->dk_verify = false;
    sess->headers = NULL;
    sess->rl_mail = NULL;
    sess->warned = NULL;
}

/* ---- messages and logging ------------------------------------------------ */

acl_rc acl_fail_text(acl_ctx *c, acl_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *t = arena_vprintf(c->a, fmt, ap);
    va_end(ap);
    *c->lmsg = t;
    if (!c->error) {
        const acl_cond *cd = c->cond;
        if (cd)
            c->error = arena_printf(c->a, "%s (ACL \"%s\", %s line %d, %s%s \"%s\")", t, c->acl_name,
                                    cd->file ? cd->file : "inline", cd->line,
                                    cd->is_modifier ? "modifier" : "condition", "", cd->name);
        else
            c->error = arena_printf(c->a, "%s (ACL \"%s\")", t, c->acl_name);
    }
    return rc;
}

acl_rc acl_expand_arg(acl_ctx *c, const char *raw, char **out, bool *forced)
{
    char *err = NULL;
    *forced = false;
    status st = expand_string(raw, c->a, out, &err);
    if (st == ST_OK)
        return RC_OK;
    if (st == ST_FAIL_FORCED) {
        *forced = true;
        return RC_OK;
    }
    return acl_fail_text(c, st == ST_DEFER ? RC_DEFER : RC_ERROR, "failed to expand ACL string \"%s\": %s",
                         raw, err ? err : "unknown error");
}

/* Escape what would break a log line (Exim's string_printing). */
static const char *printing(arena *a, const char *s)
{
    gstr g;
    gstr_init(&g, a, strlen(s) + 8);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            gstr_cat(&g, "\\n");
        else if (*p == '\r')
            gstr_cat(&g, "\\r");
        else if (*p == '\t')
            gstr_cat(&g, "\\t");
        else if (*p < 32 || *p == 127)
            gstr_printf(&g, "\\%03o", *p);
        else
            gstr_catc(&g, (char)*p);
    }
    return g.s;
}

void acl_log(int which, const char *text)
{
    arena *a = ps.scratch ? ps.scratch : ps.msg;
    const char *t = a ? printing(a, text) : text;
    if (ps.message_id && *ps.message_id)
        log_write(which, "%s %s", ps.message_id, t);
    else
        log_write(which, "%s", t);
}

const char *acl_host_ident(arena *a)
{
    if (!ps.sender_host_address) {
        /* a local caller: its login, as Exim's host_and_ident */
        struct passwd *pw = getpwuid(getuid());
        return arena_printf(a, "U=%s", pw ? pw->pw_name : "unknown");
    }
    gstr g;
    gstr_init(&g, a, 64);
    gstr_cat(&g, "H=");
    const char *n = ps.sender_host_name, *h = ps.sender_helo_name;
    if (n && *n) {
        gstr_cat(&g, n);
        if (h && *h && strcasecmp(h, n) != 0)
            gstr_printf(&g, " (%s)", h);
        gstr_catc(&g, ' ');
    } else if (h && *h) {
        gstr_printf(&g, "(%s) ", h);
    }
    gstr_printf(&g, "[%s]", ps.sender_host_address);
    return g.s;
}

typedef struct acl_logged {
    const char *text;
    struct acl_logged *next;
} acl_logged;

/* A true "warn" statement: log its log_message once per message. */
static void warn_log(acl_ctx *c, const char *text)
{
    if (!text || !*text)
        return;
    for (acl_logged *l = c->sess->warned; l; l = l->next)
        if (strcmp(l->text, text) == 0)
            return;
    arena *la = ps.msg ? ps.msg : c->a;
    acl_logged *l = arena_calloc(la, sizeof *l);
    l->text = arena_strdup(la, text);
    l->next = c->sess->warned;
    c->sess->warned = l;
    const char *nl = strchr(text, '\n');
    char *line = nl ? arena_strndup(c->a, text, (size_t)(nl - text)) : (char *)text;
    acl_log(LOG_MAIN, arena_printf(c->a, "%s Warning: %s", acl_host_ident(c->a), line));
}

/* Add "message =" text on a true warn verb as header lines (deprecated Exim
 * usage), in ACLs that receive a message. */
static void warn_header(acl_ctx *c, const char *text)
{
    acl_where w = c->where;
    if (w != ACL_WHERE_MAIL && w != ACL_WHERE_RCPT && w != ACL_WHERE_PREDATA &&
        w != ACL_WHERE_DATA && w != ACL_WHERE_NOT_SMTP) {
        log_write(LOG_MAIN | LOG_PANIC, "ACL \"warn\" with \"message\" setting found in a non-message "
                  "(%s) ACL: cannot specify header lines here: message ignored", acl_wherename(w));
        return;
    }
    acl_cond fake = { .name = "add_header", .value = "", .is_modifier = true };
    const acl_cond *saved = c->cond;
    c->cond = &fake;
    acl_modifier(c, &fake, text);     /* text is already expanded */
    c->cond = saved;
}

/* ---- finding the statements ---------------------------------------------- */

static acl_rc read_file(acl_ctx *c, const char *path, char **text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not block us */
    if (fd < 0)
        return acl_fail_text(c, RC_ERROR, "failed to open ACL file \"%s\": %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > ACL_FILE_MAX) {
        close(fd);
        return acl_fail_text(c, RC_ERROR, "ACL file \"%s\" is not a regular file of at most %d bytes",
                             path, ACL_FILE_MAX);
    }
    char *buf = arena_alloc(c->a, (size_t)sb.st_size + 1);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    if (strlen(buf) != got)
        return acl_fail_text(c, RC_ERROR, "ACL file \"%s\" contains a NUL character", path);
    *text = buf;
    return RC_OK;
}

/* The statements for the expanded text `s`; *name describes them. */
static acl_rc find_stmts(acl_ctx *c, const char *s, const acl_stmt **stmts, const char **name)
{
    char *err = NULL;
    acl_stmt *parsed = NULL;
    if (*s == '/') {
        if (is_tainted(s))
            return acl_fail_text(c, RC_ERROR, "attempt to use tainted ACL file name \"%s\"", s);
        char *text = NULL;
        if (read_file(c, s, &text) != RC_OK)
            return RC_ERROR;
        if (acl_parse_text(text, s, c->a, &parsed, &err) != ST_OK)
            return acl_fail_text(c, RC_ERROR, "%s", err);
        *name = s;
        *stmts = parsed;
        return RC_OK;
    }
    bool space = false;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p))
            space = true;
    if (!space) {
        const acl_def *d = cfg ? config_acl(s) : NULL;
        if (d) {
            *name = d->name;
            *stmts = d->stmts;
            return RC_OK;
        }
    }
    if (is_tainted(s))
        return acl_fail_text(c, RC_ERROR, "attempt to use tainted ACL text \"%s\"", s);
    if (acl_parse_text(s, "inline", c->a, &parsed, &err) != ST_OK)
        return acl_fail_text(c, RC_ERROR, "%s", err);
    *name = "inline ACL";
    *stmts = parsed;
    return RC_OK;
}

/* ---- one statement -------------------------------------------------------- */

#define BIT(r) (1u << (r))
static const unsigned msgcond[ACLV__COUNT] = {
    [ACLV_ACCEPT] = BIT(RC_OK) | BIT(RC_FAIL) | BIT(RC_FAIL_DROP),
    [ACLV_DEFER] = BIT(RC_OK),
    [ACLV_DENY] = BIT(RC_OK),
    [ACLV_DISCARD] = BIT(RC_OK) | BIT(RC_FAIL) | BIT(RC_FAIL_DROP),
    [ACLV_DROP] = BIT(RC_OK),
    [ACLV_REQUIRE] = BIT(RC_FAIL) | BIT(RC_FAIL_DROP),
    [ACLV_WARN] = BIT(RC_OK),
};

static acl_rc conditions(acl_ctx *c, const acl_stmt *s, const char **user_message,
                         const char **log_message, bool *endpass)
{
    for (const acl_cond *cd = s->conds; cd; cd = cd->next) {
        c->cond = cd;
        if (cd->is_modifier) {
            if (strcmp(cd->name, "message") == 0) {
                *user_message = cd->value;
                continue;
            }
            if (strcmp(cd->name, "log_message") == 0) {
                *log_message = cd->value;
                continue;
            }
            if (strcmp(cd->name, "endpass") == 0) {
                if (s->verb != ACLV_ACCEPT && s->verb != ACLV_DISCARD)
                    return acl_fail_text(c, RC_ERROR, "\"endpass\" is permitted only with \"accept\" or \"discard\"");
                *endpass = true;
                continue;
            }
        }
        const char *arg = cd->value;
        char *exp = NULL;
        bool forced = false;
        /* "acl" expands its words itself, "set" only its value, and list
           conditions expand their list with list semantics (acl_cond.c) */
        if (strcmp(cd->name, "acl") != 0 && strcmp(cd->name, "set") != 0 && !acl_is_list_condition(cd->name)) {
            acl_rc r = acl_expand_arg(c, cd->value, &exp, &forced);
            if (r != RC_OK)
                return r;
            if (forced)
                continue;      /* a forced failure ignores the condition */
            arg = exp;
        }
        acl_rc rc = cd->is_modifier ? acl_modifier(c, cd, arg) : acl_condition(c, cd, arg);
        if (cd->is_modifier) {
            if (rc != RC_OK)
                return rc;
            continue;
        }
        if (rc == RC_DISCARD && s->verb != ACLV_ACCEPT && s->verb != ACLV_DISCARD)
            return acl_fail_text(c, RC_ERROR, "nested ACL returned \"discard\" for \"%s\" command",
                                 acl_verb_name(s->verb));
        if (cd->negated) {
            if (rc == RC_OK)
                rc = RC_FAIL;
            else if (rc == RC_FAIL || rc == RC_FAIL_DROP)
                rc = RC_OK;
        }
        if (rc != RC_OK)
            return rc;
    }
    c->cond = NULL;
    return RC_OK;
}

/* Evaluate statement s; apply message/log_message as Exim does. */
static acl_rc statement(acl_ctx *c, const acl_stmt *s, bool *endpass)
{
    const char *user_message = NULL, *log_message = NULL;
    c->verb = s->verb;
    *endpass = false;
    /* messages from conditions of earlier statements do not carry over */
    *c->umsg = *c->lmsg = NULL;
    acl_rc rc = conditions(c, s, &user_message, &log_message, endpass);
    c->cond = NULL;
    if (*endpass && rc == RC_OK)
        user_message = NULL;
    if (msgcond[s->verb] & BIT(rc)) {
        const char *old_u = *c->umsg;
        const char *old_l = *c->lmsg ? *c->lmsg : old_u;
        if (s->verb == ACLV_WARN || (rc == RC_OK && (s->verb == ACLV_ACCEPT || s->verb == ACLV_DISCARD)))
            *c->umsg = *c->lmsg = NULL;
        char *e = NULL, *err = NULL;
        if (user_message) {
            ps.acl_verify_message = old_u;
            status st = expand_string(user_message, c->a, &e, &err);
            if (st == ST_OK && *e)
                *c->umsg = e;
            else if (st != ST_OK && st != ST_FAIL_FORCED)
                log_write(LOG_MAIN | LOG_PANIC, "failed to expand ACL message \"%s\": %s", user_message,
                          err ? err : "");
        }
        if (log_message) {
            ps.acl_verify_message = old_l;
            status st = expand_string(log_message, c->a, &e, &err);
            if (st == ST_OK && *e)
                *c->lmsg = *c->lmsg ? arena_printf(c->a, "%s: %s", e, *c->lmsg) : e;
            else if (st != ST_OK && st != ST_FAIL_FORCED)
                log_write(LOG_MAIN | LOG_PANIC, "failed to expand ACL message \"%s\": %s", log_message,
                          err ? err : "");
        }
        if (!*c->lmsg)
            *c->lmsg = *c->umsg;
    }
    ps.acl_verify_message = NULL;
    return rc;
}

/* ---- running an ACL -------------------------------------------------------- */

static acl_rc run_stmts(acl_ctx *c, const acl_stmt *stmts)
{
    for (const acl_stmt *s = stmts; s; s = s->next) {
        bool endpass;
        acl_rc cond = statement(c, s, &endpass);
        switch (cond) {
        case RC_DEFER:
            if (s->verb != ACLV_WARN)
                return RC_DEFER;
            break;
        case RC_ERROR:
            return RC_ERROR;
        default:
            break;
        }
        switch (s->verb) {
        case ACLV_ACCEPT:
            if (cond == RC_OK || cond == RC_DISCARD)
                return cond;
            if (endpass && cond != RC_DEFER)
                return cond;
            break;
        case ACLV_DEFER:
            if (cond == RC_OK)
                return RC_DEFER;
            break;
        case ACLV_DENY:
            if (cond == RC_OK)
                return RC_FAIL;
            break;
        case ACLV_DISCARD:
            if (cond == RC_OK || cond == RC_DISCARD)
                return RC_DISCARD;
            if (endpass && cond != RC_DEFER)
                return cond;
            break;
        case ACLV_DROP:
            if (cond == RC_OK)
                return RC_FAIL_DROP;
            break;
        case ACLV_REQUIRE:
            if (cond != RC_OK)
                return cond;
            break;
        case ACLV_WARN:
            if (cond == RC_OK) {
                if (*c->lmsg && *c->lmsg != *c->umsg)
                    warn_log(c, *c->lmsg);
                if (*c->umsg)
                    warn_header(c, *c->umsg);
            } else if (cond == RC_DEFER) {
                acl_log(LOG_MAIN, arena_printf(c->a, "%s Warning: ACL \"warn\" statement skipped: "
                                                     "condition test deferred%s%s",
                                               acl_host_ident(c->a), *c->lmsg ? ": " : "",
                                               *c->lmsg ? *c->lmsg : ""));
            }
            *c->umsg = *c->lmsg = NULL;
            break;
        default:
            break;
        }
    }
    return RC_FAIL;      /* the implicit "deny" at the end */
}

acl_rc acl_run_spec(acl_ctx *c, const char *spec, bool expand, const char **umsg, const char **lmsg)
{
    const char **su = c->umsg, **sl = c->lmsg;
    const char *sname = c->acl_name;
    const acl_cond *scond = c->cond;
    acl_verb sverb = c->verb;
    c->umsg = umsg;
    c->lmsg = lmsg;
    acl_rc rc;
    if (c->depth > ACL_MAX_NEST) {
        rc = acl_fail_text(c, RC_ERROR, "ACL nested too deep: possible loop");
        goto out;
    }
    char *s = (char *)spec;
    bool forced = false;
    if (expand) {
        rc = acl_expand_arg(c, spec, &s, &forced);
        if (rc != RC_OK)
            goto out;
        if (forced) {
            rc = RC_OK;
            goto out;
        }
    }
    const acl_stmt *stmts = NULL;
    const char *name = NULL;
    c->cond = NULL;
    rc = find_stmts(c, s, &stmts, &name);
    if (rc != RC_OK)
        goto out;
    c->acl_name = name;
    c->depth++;
    int saved_level = ps.acl_level;
    ps.acl_level = c->depth;     /* an ${acl} inside continues the count */
    rc = run_stmts(c, stmts);
    ps.acl_level = saved_level;
    c->depth--;
out:
    c->umsg = su;
    c->lmsg = sl;
    c->acl_name = sname;
    c->cond = scond;
    c->verb = sverb;
    return rc;
}

static bool discard_allowed(acl_where w)
{
    return w == ACL_WHERE_MAIL || w == ACL_WHERE_RCPT || w == ACL_WHERE_DATA || w == ACL_WHERE_NOT_SMTP;
}

static status run_top(acl_where where, const char *acl, const char **args, int nargs,
                      acl_session *sess, arena *a, acl_result *res)
{
    memset(res, 0, sizeof *res);
    if (!acl) {
        /* Unset option: Exim's default for the stage. */
        /* (no RCPT ACL: every RCPT is refused, local -bs too, as Exim) */
        bool deny = where == ACL_WHERE_VRFY || where == ACL_WHERE_EXPN || where == ACL_WHERE_RCPT;
        res->st = deny ? ST_FAIL : ST_OK;
        return res->st;
    }
    const char *umsg = NULL, *lmsg = NULL;
    acl_ctx c = { .where = where, .sess = sess, .a = a, .acl_name = "?", .res = res, .depth = ps.acl_level };
    c.umsg = &umsg;
    c.lmsg = &lmsg;
    const char *saved_args[ACL_MAX_ARGS];
    int saved_narg = ps.acl_narg;
    memcpy(saved_args, ps.acl_arg, sizeof saved_args);
    if (args) {
        for (int i = 0; i < ACL_MAX_ARGS; i++)
            ps.acl_arg[i] = i < nargs ? args[i] : NULL;
        ps.acl_narg = nargs < ACL_MAX_ARGS ? nargs : ACL_MAX_ARGS;
    }
    acl_rc rc = acl_run_spec(&c, acl, true, &umsg, &lmsg);
    if (args) {
        memcpy(ps.acl_arg, saved_args, sizeof saved_args);
        ps.acl_narg = saved_narg;
    }
    if (rc == RC_DISCARD && !discard_allowed(where)) {
        lmsg = arena_printf(a, "\"discard\" verb not allowed in %s ACL", acl_wherename(where));
        log_write(LOG_MAIN | LOG_PANIC, "%s", lmsg);
        c.error = lmsg;
        rc = RC_ERROR;
    }
    switch (rc) {
    case RC_OK: res->st = ST_OK; break;
    case RC_FAIL: res->st = ST_FAIL; break;
    case RC_FAIL_DROP: res->st = ST_FAIL; res->drop = true; break;
    case RC_DEFER: res->st = ST_DEFER; break;
    case RC_DISCARD: res->st = ST_DISCARD; break;
    default: res->st = ST_ERROR; break;
    }
    res->user_message = umsg;
    res->log_message = lmsg;
    if (res->st == ST_ERROR)
        res->error = c.error ? c.error : lmsg ? lmsg : "ACL error";
    else if (res->st == ST_DEFER && c.error)
        res->error = c.error;
    return res->st;
}

status acl_check(acl_where where, const char *acl, acl_session *sess, arena *a, acl_result *res)
{
    return run_top(where, acl, NULL, 0, sess, a, res);
}

status acl_eval_with_args(acl_where where, const char *acl, const char **args, int nargs,
                          acl_session *sess, arena *a, acl_result *res)
{
    if (!acl) {
        memset(res, 0, sizeof *res);
        res->st = ST_FAIL;
        return res->st;
    }
    return run_top(where, acl, args ? args : (const char *[1]){ NULL }, args ? nargs : 0, sess, a, res);
}
