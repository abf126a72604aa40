/* retry.c: the retry hints database (LMDB, <spool>/db/retry) and the
 * retry rules.  A temporary failure records when the first failure
 * happened and when the next try is due (from the F/G/H rules of the first
 * matching retry rule); later deliveries skip the address until then
 * (unless forced), and once the last cutoff has passed the failure becomes
 * permanent ("retry timeout exceeded").  Success removes the record. */
#include "deliver/retry.h"
#include "config/config.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/match.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define RETRY_DB_MAPSIZE (64UL * 1024 * 1024)
#define RETRY_TEXT_MAX 512

typedef struct retry_record {
    int64_t first_failed;
    int64_t last_try;
    int64_t next_try;
    int32_t last_interval;
    int32_t expired;
    char text[RETRY_TEXT_MAX];
} retry_record;

static MDB_env *env;
static MDB_dbi dbi;
static bool opened, failed_open;

static bool db_open(void)
{
    if (opened)
        return true;
    if (failed_open)
        return false;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/db", cfg_str(MO_spool_directory));
    mkdir(dir, 0750);
    snprintf(dir, sizeof dir, "%s/db/retry", cfg_str(MO_spool_directory));
    mkdir(dir, 0750);
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, RETRY_DB_MAPSIZE);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOTLS, 0640);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        log_write(LOG_MAIN | LOG_PANIC, "cannot open the retry database in %s: %s", dir, mdb_strerror(rc));
        if (env)
            mdb_env_close(env);
        env = NULL;
        failed_open = true;
        return false;
    }
    opened = true;
    return true;
}

void retry_close(void)
{
    if (opened && env)
        mdb_env_close(env);
    env = NULL;
    opened = false;
    failed_open = false;
}

static bool get(const char *key, retry_record *r)
{
    if (!db_open())
        return false;
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
        return false;
    MDB_val k = { strlen(key), (void *)key }, v;
    bool found = mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == sizeof *r;
    if (found)
        memcpy(r, v.mv_data, sizeof *r);
    mdb_txn_abort(txn);
    return found;
}

static void put(const char *key, const retry_record *r)
{
    if (!db_open())
        return;
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        return;
    MDB_val k = { strlen(key), (void *)key }, v = { sizeof *r, (void *)r };
    if (mdb_put(txn, dbi, &k, &v, 0) == 0)
        mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
}

static void del(const char *key)
{
    if (!db_open())
        return;
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        return;
    MDB_val k = { strlen(key), (void *)key };
    if (mdb_del(txn, dbi, &k, NULL) == 0)
        mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
}

/* The first retry rule that matches the address and the error. */
static const retry_rule *find_rule(const address_item *a, int err)
{
    for (const retry_rule *r = cfg->retries; r; r = r->next) {
        const char *val;
        char *e;
        bool match = !strcmp(r->pattern, "*");
        if (!match && strchr(r->pattern, '@'))
            match = match_address(a->address, r->pattern, false, ps.scratch, &val, &e) == ST_OK;
        else if (!match)
            match = match_domain(a->domain, r->pattern, ps.scratch, &val, &e) == ST_OK;
        if (!match)
            continue;
        if (strcmp(r->error, "*") != 0) {
            if (!strncmp(r->error, "quota", 5) && err != EDQUOT)
                continue;
            if (!strncmp(r->error, "refused", 7) && err != ECONNREFUSED)
                continue;
            if (!strncmp(r->error, "timeout", 7) && err != ETIMEDOUT)
                continue;
        }
        return r;
    }
    return NULL;
}

const char *retry_key(const address_item *a, arena *ar)
{
    if (a->host_used)
        return arena_printf(ar, "T:%s:%s:%d", a->host_used, a->host_address_used ? a->host_address_used : "",
                            a->port_used ? a->port_used : 25);
    return arena_printf(ar, "R:%s", a->address);
}

bool retry_due(const address_item *a, time_t now, arena *ar, const char **why)
{
    retry_record r;
    const char *key = arena_printf(ar, "R:%s", a->address);
    if (get(key, &r) && r.next_try > now) {
        *why = "retry time not reached";
        return false;
    }
    return true;
}

/* The interval to wait after a failure, by the rule's parameters. */
static long next_interval(const retry_rule *rule, int64_t since_first, int32_t last)
{
    for (int i = 0; i < rule->nparams; i++) {
        const retry_param *p = &rule->params[i];
        if (since_first > p->cutoff)
            continue;
        switch (p->algo) {
        case 'F':
            return p->p1;
        case 'G':
        case 'H': {
            long base = last > 0 ? (long)((double)last * p->p2 / 1000.0) : p->p1;
            if (base < p->p1)
                base = p->p1;
            if (p->algo == 'H' && base > p->p1)
                base = p->p1 + rand() % (base - p->p1 + 1);
            return base;
        }
        default:
            return p->p1;
        }
    }
    return -1;      /* beyond the last cutoff */
}

bool retry_record_failure(address_item *a, const spool_msg *m, time_t now, arena *ar)
{
    const retry_rule *rule = find_rule(a, a->basic_errno);
    if (!rule)
        return true;        /* no rule: temporary errors are permanent (as Exim) */
    if (rule->nparams == 0)
        return true;
    const char *keys[2] = { arena_printf(ar, "R:%s", a->address), a->host_used ? retry_key(a, ar) : NULL };
    retry_record r;
    bool have = get(keys[0], &r);
    if (!have) {
        memset(&r, 0, sizeof r);
        /* the message's arrival counts as the first failure when it has
         * been waiting longer (a first attempt after a long queue time) */
        r.first_failed = m && m->received < now ? m->received : now;
    }
    long maxcut = 0;
    for (int i = 0; i < rule->nparams; i++)
        if (rule->params[i].cutoff > maxcut)
            maxcut = rule->params[i].cutoff;
    long iv = next_interval(rule, now - r.first_failed, r.last_interval);
    long long rim = cfg_int(MO_retry_interval_max);
    if (iv > 0 && rim > 0 && iv > rim)
        iv = (long)rim;
    r.last_try = now;
    snprintf(r.text, sizeof r.text, "%s", a->message ? a->message : "");
    if (iv < 0 || now - r.first_failed > maxcut) {
        r.expired = 1;
        r.next_try = now;
        for (int k = 0; k < 2; k++)
            if (keys[k])
                put(keys[k], &r);
        return true;
    }
    r.last_interval = (int32_t)iv;
    r.next_try = now + iv;
    for (int k = 0; k < 2; k++)
        if (keys[k])
            put(keys[k], &r);
    return false;
}

void retry_record_success(const address_item *a, arena *ar)
{
    del(arena_printf(ar, "R:%s", a->address));
    if (a->host_used)
        del(retry_key(a, ar));
}

void retry_forget(void)
{
    /* after fork: the parent's environment must not be used (LMDB rule) */
    env = NULL;
    opened = false;
    failed_open = false;
}
