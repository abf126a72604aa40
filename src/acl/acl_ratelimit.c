/* acl_ratelimit.c: the "ratelimit" condition with Exim's syntax
 * (m / p / options / key) and semantics: an exponentially weighted moving
 * average of events per period p, kept per key in an LMDB hints database
 * <spool_directory>/db/ratelimit; per_mail, per_rcpt, per_addr, per_byte,
 * per_conn, per_cmd; leaky (default), strict, readonly (noupdate);
 * count=, unique= (a Bloom filter per key, reset every period).
 * Results already computed for a key in this connection/message are
 * reused, as Exim does, so checking the same limit twice counts once. */
#include "acl/acl_int.h"
#include "spool/hints.h"
#include "core/list.h"
#include "core/log.h"
#include "expand/expand.h"

#include <errno.h>
#include <grp.h>
#include <lmdb.h>
#include <pwd.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define RL_MAP_SIZE (64u * 1024 * 1024)   /* LMDB map: the hints file's maximum size */
#define RL_BLOOM_MIN 16                   /* bytes */
#define RL_BLOOM_MAX (64 * 1024)          /* bytes: bounds a record whatever the limit */

enum rl_mode { M_NONE, M_PER_MAIL, M_PER_RCPT, M_PER_ADDR, M_PER_BYTE, M_PER_CONN, M_PER_CMD };
static const char *const mode_names[] = {
    [M_NONE] = "?", [M_PER_MAIL] = "per_mail", [M_PER_RCPT] = "per_rcpt", [M_PER_ADDR] = "per_addr",
    [M_PER_BYTE] = "per_byte", [M_PER_CONN] = "per_conn", [M_PER_CMD] = "per_cmd",
};

/* The stored record (host byte order: the file is a local hints file). */
typedef struct rl_record {
    double time;            /* last update, epoch seconds with fraction */
    double rate;            /* smoothed events per period */
    double bloom_epoch;     /* when the unique= filter was started */
    uint32_t bloom_size;    /* bytes of filter that follow (0: none) */
    uint32_t pad;
} rl_record;

typedef struct acl_rl_entry {
    const char *key;
    double rate;
    struct acl_rl_entry *next;
} acl_rl_entry;

static acl_rc rl_error(acl_ctx *c, const char *fmt, const char *a1)
{
    char *m = arena_printf(c->a, fmt, a1);
    return acl_fail_text(c, RC_ERROR, "error in arguments to \"ratelimit\" condition: %s", m);
}

static double now(void)
{
    if (ps.acl_now > 0)
        return ps.acl_now;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* Bloom filter positions for value v: 8 bit indexes from FNV-1a variants. */
static void bloom_bits(const char *v, uint32_t nbits, uint32_t out[8])
{
    uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        h1 = (h1 ^ *p) * 1099511628211ull;
        h2 = (h2 ^ *p) * 0x100000001b3ull + 0x7f4a7c15u;
    }
    h2 |= 1;
    for (int i = 0; i < 8; i++)
        out[i] = (uint32_t)((h1 + (uint64_t)i * h2) % nbits);
}

#define HINT_KEY_MAX 400        /* bytes; LMDB's default limit is 511 */

const char *acl_hint_key(arena *a, const char *prefix, const char *key)
{
    size_t pl = strlen(prefix), kl = strlen(key);
    if (pl + kl <= HINT_KEY_MAX)
        return arena_printf(a, "%s%s", prefix, key);
    uint64_t h1 = 1469598103934665603ull, h2 = 0x84222325cbf29ce4ull;
    for (size_t i = 0; i < kl; i++) {
        h1 = (h1 ^ (unsigned char)key[i]) * 1099511628211ull;
        h2 = (h2 ^ (unsigned char)key[kl - 1 - i]) * 0x100000001b3ull;
    }
    return arena_printf(a, "%s%.*s#%016llx%016llx", prefix, 300, key, (unsigned long long)h1,
                        (unsigned long long)h2);
}

static char *db_path(acl_ctx *c, char **err)
{
    char *spool = NULL;
    if (expand_string("$spool_directory", c->a, &spool, err) != ST_OK || !spool || !*spool)
        return NULL;
    char *dir = arena_printf(c->a, "%s/db", spool);
    if (mkdir(dir, 0750) == 0)
        hints_owner(dir);
    else if (errno != EEXIST) {
        *err = arena_printf(c->a, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    return arena_printf(c->a, "%s/ratelimit", dir);
}

/* Read, update and (maybe) write the record for key.  *rate gets the new
 * rate; the database is written when write_mode says so given the result. */
static acl_rc db_update(acl_ctx *c, const char *key, double limit, double period, double count,
                        const char *unique, bool readonly, bool strict, double *rate)
{
    char *err = NULL;
    char *path = db_path(c, &err);
    if (!path)
        return acl_fail_text(c, RC_DEFER, "ratelimit database unavailable: %s", err ? err : "no spool_directory");
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int r = hints_open(path, RL_MAP_SIZE, readonly, &env, &txn, &dbi, c->a);
    if (r != 0)
        return acl_fail_text(c, RC_DEFER, "ratelimit database %s: %s", path, mdb_strerror(r));
    key = acl_hint_key(c->a, "", key);
    MDB_val k = { strlen(key), (void *)key }, v;
    rl_record rec = { 0 };
    unsigned char *bloom = NULL;
    bool have = false;
    double t = now();
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size >= sizeof rec) {
        memcpy(&rec, v.mv_data, sizeof rec);
        have = true;
        if (rec.bloom_size && v.mv_size >= sizeof rec + rec.bloom_size) {
            bloom = arena_alloc(c->a, rec.bloom_size);
            memcpy(bloom, (unsigned char *)v.mv_data + sizeof rec, rec.bloom_size);
        } else {
            rec.bloom_size = 0;
        }
    }
    if (unique) {
        /* forget a filter older than the period, or one sized for another limit */
        uint32_t want = (uint32_t)(limit * 2 > RL_BLOOM_MAX ? RL_BLOOM_MAX : limit * 2);
        if (want < RL_BLOOM_MIN)
            want = RL_BLOOM_MIN;
        if (!bloom || t > rec.bloom_epoch + period || rec.bloom_size != want) {
            rec.bloom_size = want;
            rec.bloom_epoch = t;
            bloom = arena_calloc(c->a, want);
        }
        if (!readonly) {
            uint32_t bits[8];
            bloom_bits(unique, rec.bloom_size * 8, bits);
            bool seen = true;
            for (int i = 0; i < 8; i++)
                if (!(bloom[bits[i] / 8] & (1u << (bits[i] % 8))))
                    seen = false;
            if (seen)
                count = 0.0;
            else
                for (int i = 0; i < 8; i++)
                    bloom[bits[i] / 8] |= (unsigned char)(1u << (bits[i] % 8));
        }
    }
    if (!have) {
        rec.time = t;
        rec.rate = count;
    } else {
        /* EWMA over a variable interval: the weight of the old rate decays
           as exp(-interval/period); a new event adds count/period smoothed
           over the interval. */
        double i_over_p = (t - rec.time) / period;
        double a = exp(-i_over_p);
        if (i_over_p < 1e-9)
            i_over_p = 1e-9;
        rec.time = t;
        rec.rate = (1 - a) * count / i_over_p + a * rec.rate;
        /* an isolated event after a long silence counts as count per period */
        if (rec.rate < count)
            rec.rate = count;
    }
    bool over = rec.rate >= limit;
    acl_rc rc = RC_OK;
    if (!readonly && (strict || !over)) {
        size_t sz = sizeof rec + (unique ? rec.bloom_size : 0);
        if (!unique)
            rec.bloom_size = 0;
        unsigned char *buf = arena_alloc(c->a, sz);
        memcpy(buf, &rec, sizeof rec);
        if (unique)
            memcpy(buf + sizeof rec, bloom, rec.bloom_size);
        v.mv_size = sz;
        v.mv_data = buf;
        r = mdb_put(txn, dbi, &k, &v, 0);
        if (r == 0) {
            r = mdb_txn_commit(txn);
            txn = NULL;
        }
        if (r != 0)
            rc = acl_fail_text(c, RC_DEFER, "ratelimit database %s: update failed: %s", path, mdb_strerror(r));
    }
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    *rate = rec.rate;
    return rc;
}

/* Which per_* modes make sense where (others fall back to readonly). */
static bool mode_ok(enum rl_mode m, acl_where w)
{
    switch (m) {
    case M_PER_CONN: return w != ACL_WHERE_NOT_SMTP;
    case M_PER_MAIL:
    case M_PER_BYTE:
        return w == ACL_WHERE_MAIL || w == ACL_WHERE_RCPT || w == ACL_WHERE_PREDATA ||
               w == ACL_WHERE_DATA || w == ACL_WHERE_NOT_SMTP;
    case M_PER_RCPT: return w == ACL_WHERE_RCPT || w == ACL_WHERE_PREDATA || w == ACL_WHERE_DATA;
    case M_PER_ADDR: return w == ACL_WHERE_RCPT;
    default: return true;
    }
}

acl_rc acl_ratelimit(acl_ctx *c, const char *arg)
{
    int sep = '/';
    const char *l = arg;
    char *ls = list_next(&l, &sep, c->a);
    char *ps_ = list_next(&l, &sep, c->a);
    if (!ls || !ps_)
        return rl_error(c, "missing limit or period in \"%s\"", arg);
    char *end;
    double limit = strtod(ls, &end);
    if (end == ls)
        limit = -1;
    else if (*end == 'k' || *end == 'K')
        limit *= 1024.0, end++;
    else if (*end == 'm' || *end == 'M')
        limit *= 1024.0 * 1024.0, end++;
    else if (*end == 'g' || *end == 'G')
        limit *= 1024.0 * 1024.0 * 1024.0, end++;
    if (limit < 0 || *end || !isfinite(limit))
        return rl_error(c, "\"%s\" is not a positive number", ls);
    long long period_s;
    if (opt_parse_time(ps_, &period_s) != ST_OK || period_s <= 0)
        return rl_error(c, "\"%s\" is not a time value", ps_);

    enum rl_mode mode = M_NONE;
    bool leaky = false, strict = false, readonly = false, have_count = false;
    double count = 1.0;
    const char *unique = NULL;
    char *key = NULL, *opt;
    while ((opt = list_next(&l, &sep, c->a))) {
        enum rl_mode m = M_NONE;
        for (int i = M_PER_MAIL; i <= M_PER_CMD; i++)
            if (strcasecmp(opt, mode_names[i]) == 0)
                m = (enum rl_mode)i;
        if (m != M_NONE) {
            if (mode != M_NONE)
                return rl_error(c, "only one per_* option allowed%s", "");
            mode = m;
        } else if (strcasecmp(opt, "leaky") == 0) {
            leaky = true;
        } else if (strcasecmp(opt, "strict") == 0) {
            strict = true;
        } else if (strcasecmp(opt, "readonly") == 0 || strcasecmp(opt, "noupdate") == 0) {
            readonly = true;
        } else if (strncasecmp(opt, "count=", 6) == 0) {
            count = strtod(opt + 6, &end);
            if (end == opt + 6 || *end || count < 0 || !isfinite(count))
                return rl_error(c, "\"%s\" is not a positive number", opt + 6);
            have_count = true;
        } else if (strncasecmp(opt, "unique=", 7) == 0) {
            unique = opt + 7;
        } else if (!key) {
            key = opt;
        } else {
            key = arena_printf(c->a, "%s/%s", key, opt);
        }
    }
    if ((int)leaky + (int)strict + (int)readonly > 1)
        return rl_error(c, "conflicting update modes%s", "");
    if (mode == M_NONE)
        mode = M_PER_MAIL;
    bool badacl = !mode_ok(mode, c->where);
    if (badacl && (leaky || strict))
        return acl_fail_text(c, RC_ERROR, "error in arguments to \"ratelimit\" condition: \"%s\" must not "
                             "have /leaky or /strict option in %s ACL", mode_names[mode], acl_wherename(c->where));
    if (badacl)
        readonly = true;
    if (!have_count) {
        if (mode == M_PER_BYTE)
            count = ps.message_size < 0 ? 0.0 : (double)ps.message_size;
        else if (mode == M_PER_RCPT && c->where != ACL_WHERE_RCPT)
            count = ps.recipients_count;
    }
    if (mode == M_PER_ADDR && !unique)
        unique = arena_printf(c->a, "%s@%s", ps.local_part ? ps.local_part : "", ps.domain ? ps.domain : "");
    if (readonly)
        count = 0.0;
    /* the stored key: period, what is measured, unique or not, then the key */
    const char *dbkey = arena_printf(c->a, "%s/%s/%s%s", ps_,
                                     mode_names[mode == M_PER_ADDR ? M_PER_RCPT : mode],
                                     unique ? "unique/" : "",
                                     key ? key : ps.sender_host_address ? ps.sender_host_address : "");
    arena *va = ps.conn ? ps.conn : c->a;
    ps.sender_rate_limit = arena_strdup(va, ls);
    ps.sender_rate_period = arena_strdup(va, ps_);

    /* computed already this connection / message / command?  (readonly
       results are remembered for this command only, as later commands may
       change the stored rate) */
    acl_rl_entry **cache = &c->rl_cmd;
    arena *ca = c->a;
    if (!readonly) {
        if (mode == M_PER_CONN)
            cache = &c->sess->rl_conn, ca = ps.conn;
        else if (mode == M_PER_MAIL || mode == M_PER_BYTE || (mode == M_PER_RCPT && c->where != ACL_WHERE_RCPT))
            cache = &c->sess->rl_mail, ca = ps.msg;
    }
    if (cache && ca)
        for (acl_rl_entry *e = *cache; e; e = e->next)
            if (strcmp(e->key, dbkey) == 0) {
                ps.sender_rate = arena_printf(va, "%.1f", e->rate);
                return e->rate < limit ? RC_FAIL : RC_OK;
            }
    double rate = 0;
    acl_rc rc = db_update(c, dbkey, limit, (double)period_s, count, unique, readonly, strict, &rate);
    if (rc != RC_OK)
        return rc;
    if (cache && ca) {
        acl_rl_entry *e = arena_calloc(ca, sizeof *e);
        e->key = arena_strdup(ca, dbkey);
        e->rate = rate;
        e->next = *cache;
        *cache = e;
    }
    ps.sender_rate = arena_printf(va, "%.1f", rate);
    return rate < limit ? RC_FAIL : RC_OK;
}
