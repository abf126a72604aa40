/* retry.c: the retry hints database (<spool>/db/retry, LMDB through
 * spool/hints) and the retry rules, with Exim's keys:
 *   R:<domain> or R:<local_part>@<domain>   a router deferred (the router's
 *                                           retry_use_local_part picks)
 *   R:<address>:<sender>                    an smtp RCPT got 4xx
 *   T:<local_part>@<domain> or T:<domain>   a local transport deferred
 *   T:<host>:<ip>[:port]                    a host failed
 *   T:<host>:<ip>[:port]:<message id>       a host deferred one message
 * A temporary failure updates the records of the failed destinations
 * (first failure, next try by the F/G/H rules of the first matching retry
 * rule).  Queue runs skip what is not due; when every destination of an
 * address is past its last cutoff the failure becomes permanent ("retry
 * timeout exceeded").  Success removes the records. */
#include "deliver/retry.h"
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/match.h"
#include "spool/hints.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RETRY_DB_MAPSIZE (64UL * 1024 * 1024)
#define RETRY_TEXT_MAX 512

typedef struct retry_record {
    int64_t first_failed;
    int64_t last_try;          /* also when the record was written (retry_data_expire) */
    int64_t next_try;
    int32_t basic_errno;
    int32_t expired;
    char text[RETRY_TEXT_MAX];
} retry_record;

static bool warned;

/* One transaction on the retry database: fn runs with it open. */
static bool with_db(bool readonly, bool (*fn)(MDB_txn *, MDB_dbi, void *), void *arg)
{
    char *err = NULL;
    const char *path = hints_path("retry", ps.scratch, &err);
    MDB_env *env;
    MDB_txn *txn;
    unsigned dbi;
    int rc = path ? hints_open(path, RETRY_DB_MAPSIZE, readonly, &env, &txn, &dbi, ps.scratch) : -1;
    if (rc != 0) {
        if (!warned && !(readonly && rc == ENOENT))
            log_write(LOG_MAIN | LOG_PANIC, "cannot open the retry database: %s",
                      path ? mdb_strerror(rc) : err);
        warned = true;
        return false;
    }
    bool commit = fn(txn, dbi, arg) && !readonly;
    return hints_close(env, txn, commit) == 0;
}

typedef struct kv {
    const char *key;
    retry_record *r;
    bool found;
} kv;

static bool do_get(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    kv *x = arg;
    MDB_val k = { strlen(x->key), (void *)x->key }, v;
    x->found = mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof *x->r;
    if (x->found)
        memcpy(x->r, v.mv_data, sizeof *x->r);
    return false;
}

static bool do_put(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    kv *x = arg;
    MDB_val k = { strlen(x->key), (void *)x->key }, v = { sizeof *x->r, x->r };
    return mdb_put(txn, dbi, &k, &v, 0) == 0;
}

/* Delete the keys of a NULL-terminated list; commits only when one was
 * there (no disk write for the common case of no record). */
static bool do_del(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
    bool any = false;
    for (const char **k = arg; *k; k++) {
        MDB_val kv_ = { strlen(*k), (void *)*k };
        any |= mdb_del(txn, dbi, &kv_, NULL) == 0;
    }
    return any;
}

/* A record, unless it is older than retry_data_expire. */
static bool get(const char *key, retry_record *r, time_t now)
{
    kv x = { key, r, false };
    with_db(true, do_get, &x);
    if (!x.found)
        return false;
    long long expire = cfg_int(MO_retry_data_expire);
    return !(expire > 0 && now - r->last_try > expire);
}

static void put(const char *key, retry_record *r)
{
    kv x = { key, r, false };
    with_db(false, do_put, &x);
}

static void del(const char **keys)
{
    if (keys[0])
        with_db(false, do_del, (void *)keys);
}

/* ---- keys ----------------------------------------------------------------- */

static bool uses_local_part(const driver_inst *d, bool dflt)
{
    const optval *v = d ? driver_opt(d, "retry_use_local_part") : NULL;
    return v && v->set ? v->n != 0 : dflt;
}

const char *retry_routing_key(const address_item *a, arena *ar)
{
    /* a router's default: true when it has check_local_user */
    const optval *clu = a->router ? driver_opt(a->router, "check_local_user") : NULL;
    if (uses_local_part(a->router, clu && clu->n))
        return arena_printf(ar, "R:%s@%s", a->local_part, a->domain);
    return arena_printf(ar, "R:%s", a->domain);
}

const char *retry_local_key(const address_item *a, arena *ar)
{
    /* a pipe, file or autoreply: by itself and who generated it (Exim's
     * "unique") */
    if ((a->flags & (AF_PIPE | AF_FILE | AF_REPLY)) && a->parent)
        return arena_printf(ar, "T:%s:%s", a->address, a->parent->unique ? a->parent->unique : a->parent->address);
    if (uses_local_part(a->transport, true))
        return arena_printf(ar, "T:%s@%s", a->local_part, a->domain);
    return arena_printf(ar, "T:%s", a->domain);
}

/* ---- rules ------------------------------------------------------------------ */

/* Does a retry rule's error field let this error through? */
static bool error_matches(const retry_rule *r, int err)
{
    if (!strcmp(r->error, "*"))
        return true;
    if (!strncmp(r->error, "quota", 5))
        return err == EDQUOT || err == ERRNO_EXIMQUOTA;
    if (!strncmp(r->error, "refused", 7))
        return err == ECONNREFUSED;
    if (!strncmp(r->error, "timeout", 7))
        return err == ETIMEDOUT;
    if (!strncmp(r->error, "rcpt_4", 6))
        return err == ERRNO_RCPT4XX;
    if (!strncmp(r->error, "mail_4", 6))
        return err == ERRNO_MAIL4XX;
    if (!strncmp(r->error, "data_4", 6))
        return err == ERRNO_DATA4XX;
    if (!strcmp(r->error, "lost_connection"))
        return err == ERRNO_SMTPCLOSED;
    return false;
}

/* The first rule for the destination of a key (an address, a domain or a
 * host name), or for alt (the address's domain, for host keys), and the
 * error. */
static const retry_rule *find_rule(const char *key, const char *alt, int err, arena *ar)
{
    const char *subject = key + 2;
    if (key[0] == 'T' && !strchr(subject, '@')) {
        /* a host key: the name up to its ":ip", an IP name in [] */
        size_t n = subject[0] == '[' ? strcspn(subject, "]") + 1 : strcspn(subject, ":");
        subject = arena_strndup(ar, subject, n);
    } else if (strchr(subject, '@')) {
        subject = arena_strndup(ar, subject, strcspn(subject, ":"));   /* R:addr:<sender> */
    }
    for (const retry_rule *r = cfg->retries; r; r = r->next) {
        if (!error_matches(r, err))
            continue;
        const char *val;
        char *e;
        bool match = !strcmp(r->pattern, "*");
        for (int pass = 0; !match && pass < 2; pass++) {
            const char *s = pass == 0 ? subject : alt;
            if (!s)
                continue;
            if (strchr(r->pattern, '@'))
                match = strchr(s, '@') && match_address(s, r->pattern, false, ar, &val, &e) == ST_OK;
            else
                match = match_domain(strrchr(s, '@') ? strrchr(s, '@') + 1 : s, r->pattern, ar, &val, &e) == ST_OK;
        }
        if (match)
            return r;
    }
    return NULL;
}

static long last_cutoff(const retry_rule *r)
{
    long cut = -1;
    for (int i = 0; i < r->nparams; i++)
        if (r->params[i].cutoff > cut)
            cut = r->params[i].cutoff;
    return cut;
}

/* Exim's "ultimate address timeout": has the message been waiting longer
 * than the last cutoff of the rule for this destination?  Then it is
 * tried even before the next retry time. */
static bool ultimate_timeout(const char *key, const char *domain, const retry_record *r, time_t received,
                             time_t now, arena *ar)
{
    const retry_rule *rule = find_rule(key, domain, r->basic_errno, ar);
    if (!rule || rule->nparams == 0)
        return true;
    return now - received > last_cutoff(rule);
}

/* ---- checks --------------------------------------------------------------- */

bool retry_routing_due(const address_item *a, const char *sender, time_t now, time_t received, arena *ar,
                       const char **text)
{
    retry_record dr, ar_;
    bool have_d = get(arena_printf(ar, "R:%s", a->domain), &dr, now);
    const char *akey = arena_printf(ar, "R:%s@%s", a->local_part, a->domain);
    bool have_a = get(akey, &ar_, now) || get(arena_printf(ar, "%s:<%s>", akey, sender), &ar_, now);
    bool wait = (have_d && now < dr.next_try && !dr.expired) || (have_a && now < ar_.next_try);
    if (wait && !have_d && have_a && ultimate_timeout(akey, a->domain, &ar_, received, now, ar))
        wait = false;
    if (wait)
        *text = arena_strdup(ar, have_d ? dr.text : ar_.text);
    return !wait;
}

bool retry_local_due(const address_item *a, time_t now, time_t received, arena *ar)
{
    retry_record r;
    const char *key = retry_local_key(a, ar);
    if (!get(key, &r, now) || now >= r.next_try || r.expired)
        return true;
    return ultimate_timeout(key, a->domain, &r, received, now, ar);
}

bool retry_host_usable(const char *host_key, const char *message_key, const char *domain, time_t received,
                       time_t now, arena *ar)
{
    retry_record r;
    if (get(host_key, &r, now) && now < r.next_try &&
        (r.expired || !ultimate_timeout(host_key, domain, &r, received, now, ar)))
        return false;
    if (message_key && get(message_key, &r, now) && now < r.next_try &&
        !ultimate_timeout(host_key, domain, &r, received, now, ar))
        return false;
    return true;
}

/* ---- updates -------------------------------------------------------------- */

/* The next try after a failure of the destination with this record, by
 * the rule; sets r->expired past the last cutoff.  Returns whether this
 * destination has timed out. */
static bool update(const retry_rule *rule, retry_record *r, bool host, time_t received, time_t now)
{
    long failing = (long)(now - r->first_failed);
    if (!host && now - received > failing)
        failing = (long)(now - received);
    const retry_param *p = NULL, *final = NULL;
    for (int i = 0; i < rule->nparams; i++) {
        if (failing <= rule->params[i].cutoff) {
            p = &rule->params[i];
            break;
        }
        final = &rule->params[i];
    }
    bool timed_out = false;
    r->expired = 0;
    if (!p) {
        p = final;
        r->expired = 1;
        timed_out = true;
    } else if (received <= r->first_failed && now - received > last_cutoff(rule)) {
        timed_out = true;
        p = NULL;
    }
    int64_t next = now;
    if (p && p->algo == 'F') {
        next = now + p->p1;
    } else if (p) {
        long predicted = (long)(r->next_try - r->last_try), actual = (long)(now - r->last_try);
        long gap = predicted < actual ? predicted : actual;
        long ngap = (long)((double)gap * p->p2 / 1000.0);
        if (p->algo == 'G')
            next = now + (gap < p->p1 ? p->p1 : ngap);
        else
            next = now + p->p1 + (ngap > p->p1 ? rand() % (ngap - p->p1) / 2 + (ngap - p->p1) / 2 : 0);
    }
    long long rim = cfg_int(MO_retry_interval_max);
    if (rim > 0 && next - now > rim)
        next = now + rim;
    r->last_try = now;
    r->next_try = next;
    return timed_out;
}

typedef struct item {
    const char *key;
    bool host;
} item;

/* The destinations a deferred address failed for (Exim's retry items). */
static int items_of(const address_item *a, item *it, arena *ar)
{
    int n = 0;
    if (!a->transport) {
        it[n++] = (item){ retry_routing_key(a, ar), false };
    } else if (a->retry_host_key || a->retry_address_key || a->retry_message_key) {
        if (a->retry_host_key && a->retry_host_defer)
            it[n++] = (item){ a->retry_host_key, true };
        if (a->retry_message_key)
            it[n++] = (item){ a->retry_message_key, true };
        if (a->retry_address_key)
            it[n++] = (item){ a->retry_address_key, false };
    } else if (!a->host_used && a->basic_errno != ERRNO_HRETRY) {
        it[n++] = (item){ retry_local_key(a, ar), false };
    }
    return n;
}

/* Record a failure of one destination (domain: the address's, also
 * tried for a host's rule).  Returns whether it has timed out (or has no
 * retry rule). */
static bool update_item(const char *key, bool host, const char *domain, int err, const char *message,
                        time_t received, time_t now, arena *ar)
{
    const retry_rule *rule = find_rule(key, host ? domain : NULL, err, ar);
    if (!rule || rule->nparams == 0)
        return true;            /* no rule: temporary errors are permanent (Exim) */
    retry_record r;
    if (!get(key, &r, now)) {
        memset(&r, 0, sizeof r);
        r.first_failed = r.last_try = r.next_try = now;
    }
    r.basic_errno = err;
    snprintf(r.text, sizeof r.text, "%s", err > 0 ? strerror(err) : message ? message : "unknown error");
    bool timed_out = update(rule, &r, host, received, now);
    put(key, &r);
    return timed_out;
}

bool retry_record_failure(address_item *a, const spool_msg *m, time_t now, arena *ar)
{
    if (a->basic_errno == ERRNO_RRETRY || a->basic_errno == ERRNO_LRETRY || a->basic_errno == ERRNO_HRETRY)
        return false;       /* nothing was tried */
    if (ps.dont_deliver)
        return false;       /* -N: the retry data is left alone (Exim) */
    item it[3];
    int n = items_of(a, it, ar);
    time_t received = m ? (time_t)m->received : now;
    int timed_out = 0;
    for (int i = 0; i < n; i++)
        timed_out += update_item(it[i].key, it[i].host, a->domain, a->basic_errno, a->message, received, now, ar);
    return n > 0 && timed_out == n;
}

void retry_host_failed(const char *key, const char *domain, int err, const char *message, time_t received,
                       arena *ar)
{
    if (!ps.dont_deliver)
        update_item(key, true, domain, err, message, received, time(NULL), ar);
}

void retry_routing_success(const address_item *a, const char *sender, arena *ar)
{
    const char *akey = arena_printf(ar, "R:%s@%s", a->local_part, a->domain);
    const char *keys[] = { arena_printf(ar, "%s:<%s>", akey, sender), akey, arena_printf(ar, "R:%s", a->domain), NULL };
    del(keys);
}

void retry_record_success(const address_item *a, arena *ar)
{
    const char *keys[4] = { NULL };
    int n = 0;
    if (a->retry_host_key || a->host_used) {
        const char *k[] = { a->retry_host_key, a->retry_message_key, a->retry_address_key };
        for (int i = 0; i < 3; i++)
            if (k[i])
                keys[n++] = k[i];
    } else if (a->transport) {
        keys[n++] = retry_local_key(a, ar);
    }
    del(keys);
}
