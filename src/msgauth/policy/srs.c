/* srs.c: Sender Rewriting Scheme, the Shevek (libsrs2/Mail::SRS/postsrsd)
 * dialect and Exim's native one (see srs.h). */
#include "msgauth/policy/srs.h"
#include "core/gstr.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

static const char b32_upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char b32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";

const char *srs_err_class(srs_err e)
{
    static const char *const c[] = {
        [SRS_OK] = "ok", [SRS_E_NOT_SRS] = "not-srs", [SRS_E_NO_DOMAIN] = "no-domain",
        [SRS_E_NO_HASH] = "no-hash", [SRS_E_NO_TIMESTAMP] = "no-timestamp",
        [SRS_E_NO_HOST] = "no-host", [SRS_E_NO_USER] = "no-user", [SRS_E_HASH] = "hash",
        [SRS_E_TIMESTAMP] = "timestamp", [SRS_E_TOO_LONG] = "too-long",
        [SRS_E_SECRET] = "secret",
    };
    return (unsigned)e < sizeof c / sizeof c[0] ? c[e] : "unknown";
}

const char *srs_err_text(srs_err e)
{
    static const char *const t[] = {
        [SRS_OK] = "ok", [SRS_E_NOT_SRS] = "not an SRS address",
        [SRS_E_NO_DOMAIN] = "address has no domain", [SRS_E_NO_HASH] = "no hash in SRS address",
        [SRS_E_NO_TIMESTAMP] = "no timestamp in SRS address",
        [SRS_E_NO_HOST] = "no host in SRS address", [SRS_E_NO_USER] = "no user in SRS address",
        [SRS_E_HASH] = "hash invalid in SRS address",
        [SRS_E_TIMESTAMP] = "timestamp out of date or invalid",
        [SRS_E_TOO_LONG] = "address too long", [SRS_E_SECRET] = "no secret given",
    };
    return (unsigned)e < sizeof t / sizeof t[0] ? t[e] : "unknown error";
}

static int today(time_t now)
{
    if (!now)
        now = time(NULL);
    return (int)((now / 86400) % 1024);
}

/* HMAC over the lower-cased concatenation of the parts, base64, first n chars. */
static char *shevek_hash(const char *secret, const char *const *parts, int nparts, int n,
                         bool url, arena *a)
{
    gstr g;
    gstr_init(&g, a, 128);
    for (int i = 0; i < nparts; i++)
        for (const char *p = parts[i]; *p; p++)
            gstr_catc(&g, (char)tolower((unsigned char)*p));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mlen = 0;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)g.s, g.len, mac, &mlen);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)mlen);
    if (n > (int)strlen(b64))
        n = (int)strlen(b64);
    char *h = arena_strndup(a, b64, (size_t)n);
    if (url)
        for (char *p = h; *p; p++)
            *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return h;
}

static bool hash_ok(const srs_opts *o, const char *given, const char *const *parts, int nparts,
                    arena *a)
{
    int n = o->hash_len > 0 ? o->hash_len : SRS_DEFAULT_HASH_LEN;
    if ((int)strlen(given) < n)
        return false;
    char *g = arena_strndup(a, given, strlen(given));
    for (char *p = g; *p; p++)          /* base64url spelling accepted */
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    for (int i = 0; i < o->nsecrets; i++) {
        const char *want = shevek_hash(o->secrets[i], parts, nparts, n, false, a);
        if (strlen(g) == strlen(want) && strcasecmp(g, want) == 0)
            return true;
    }
    return false;
}

static bool sep_char(char c) { return c == '=' || c == '-' || c == '+'; }

/* Is local an SRSn local part ("SRS0=" etc., case-insensitive)? */
static bool is_srs(const char *local, char n)
{
    return strncasecmp(local, "SRS", 3) == 0 && local[3] == n && sep_char(local[4]);
}

srs_err srs_forward(const srs_opts *o, const char *addr, const char *alias_domain,
                    arena *a, char **out)
{
    if (!o->nsecrets || !o->secrets[0] || !*o->secrets[0])
        return SRS_E_SECRET;
    if (strlen(addr) > SRS_MAX_ADDRESS)
        return SRS_E_TOO_LONG;
    const char *at = strrchr(addr, '@');
    if (!at || !at[1])
        return SRS_E_NO_DOMAIN;
    const char *host = at + 1;
    char *local = arena_strndup(a, addr, (size_t)(at - addr));
    if (!o->always_rewrite && strcasecmp(host, alias_domain) == 0) {
        *out = arena_strdup(a, addr);
        return SRS_OK;
    }
    int hl = o->hash_len > 0 ? o->hash_len : SRS_DEFAULT_HASH_LEN;
    const char *secret = o->secrets[0];
    if (is_srs(local, '0')) {
        /* foreign SRS0: SRS1 naming the first forwarder */
        const char *user = local + 4;          /* keeps its separator */
        const char *parts[] = { host, user };
        const char *h = shevek_hash(secret, parts, 2, hl, o->base64url, a);
        *out = arena_printf(a, "SRS1=%s=%s=%s@%s", h, host, user, alias_domain);
        return SRS_OK;
    }
    if (is_srs(local, '1')) {
        /* SRS1: keep the first forwarder and its opaque part, new hash */
        const char *p = local + 5;
        const char *e1 = strchr(p, '=');
        const char *e2 = e1 ? strchr(e1 + 1, '=') : NULL;
        if (e1 && e2 && e2 > e1 + 1) {
            char *fhost = arena_strndup(a, e1 + 1, (size_t)(e2 - e1 - 1));
            const char *user = e2 + 1;
            const char *parts[] = { fhost, user };
            const char *h = shevek_hash(secret, parts, 2, hl, o->base64url, a);
            *out = arena_printf(a, "SRS1=%s=%s=%s@%s", h, fhost, user, alias_domain);
            return SRS_OK;
        }
        /* malformed SRS1: treated as an ordinary local part */
    }
    int d = today(o->now);
    char ts[3] = { b32_upper[(d >> 5) & 31], b32_upper[d & 31], 0 };
    const char *parts[] = { ts, host, local };
    const char *h = shevek_hash(secret, parts, 3, hl, o->base64url, a);
    *out = arena_printf(a, "SRS0=%s=%s=%s=%s@%s", h, ts, host, local, alias_domain);
    return SRS_OK;
}

static int b32_val(char c)
{
    const char *p = strchr(b32_upper, toupper((unsigned char)c));
    return c && p ? (int)(p - b32_upper) : -1;
}

/* Is the two-character timestamp within max_age days of now (not ahead)? */
static bool ts_ok(const char *ts, size_t n, int max_age, time_t now)
{
    if (n != 2)
        return false;
    int hi = b32_val(ts[0]), lo = b32_val(ts[1]);
    if (hi < 0 || lo < 0)
        return false;
    int then = hi * 32 + lo;
    int age = (today(now) - then + 1024) % 1024;
    return age <= max_age;
}

srs_err srs_reverse(const srs_opts *o, const char *addr, arena *a, char **out)
{
    if (!o->nsecrets || !o->secrets[0])
        return SRS_E_SECRET;
    if (strlen(addr) > SRS_MAX_ADDRESS)
        return SRS_E_TOO_LONG;
    const char *at = strrchr(addr, '@');
    char *local = at ? arena_strndup(a, addr, (size_t)(at - addr)) : arena_strdup(a, addr);
    bool s0 = is_srs(local, '0'), s1 = is_srs(local, '1');
    if (!s0 && !s1)
        return SRS_E_NOT_SRS;
    int max_age = o->max_age > 0 ? o->max_age : SRS_DEFAULT_MAX_AGE;
    char *p = local + 5;
    char *f[4] = { 0 };
    int nf = s0 ? 4 : 3;
    /* split at '=' into nf fields, the last one taking the rest */
    for (int i = 0; i < nf; i++) {
        if (!p)
            break;
        if (i == nf - 1) {
            f[i] = p;
            break;
        }
        char *e = strchr(p, '=');
        if (e)
            *e = 0;
        f[i] = p;
        p = e ? e + 1 : NULL;
    }
    if (!f[0] || !*f[0])
        return SRS_E_NO_HASH;
    if (s0) {
        if (!f[1] || !*f[1])
            return SRS_E_NO_TIMESTAMP;
        if (!f[2] || !*f[2])
            return SRS_E_NO_HOST;
        if (!f[3] || !*f[3])
            return SRS_E_NO_USER;
        const char *parts[] = { f[1], f[2], f[3] };
        if (!hash_ok(o, f[0], parts, 3, a))
            return SRS_E_HASH;
        if (!ts_ok(f[1], strlen(f[1]), max_age, o->now))
            return SRS_E_TIMESTAMP;
        *out = arena_printf(a, "%s@%s", f[3], f[2]);
        return SRS_OK;
    }
    if (!f[1] || !*f[1])
        return SRS_E_NO_HOST;
    if (!f[2] || !*f[2])
        return SRS_E_NO_USER;
    const char *parts[] = { f[1], f[2] };
    if (!hash_ok(o, f[0], parts, 2, a))
        return SRS_E_HASH;
    *out = arena_printf(a, "SRS0%s@%s", f[2], f[1]);
    return SRS_OK;
}

/* ---- Exim's native SRS ------------------------------------------------- */

static void hmac_md5_hex4(const char *secret, const char *data, char out[5])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mlen = 0;
    HMAC(EVP_md5(), secret, (int)strlen(secret), (const unsigned char *)data, strlen(data),
         mac, &mlen);
    static const char hx[] = "0123456789abcdef";
    out[0] = hx[mac[0] >> 4];
    out[1] = hx[mac[0] & 15];
    out[2] = hx[mac[1] >> 4];
    out[3] = hx[mac[1] & 15];
    out[4] = 0;
}

static char *lower(arena *a, const char *s)
{
    char *o = arena_strdup(a, s);
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return o;
}

char *srs_exim_encode(const char *secret, const char *return_path, const char *orig_domain,
                      time_t now, arena *a, char **err)
{
    if (!return_path || !*return_path)
        return "";
    /* the address: angle brackets and surrounding space removed */
    const char *b = return_path, *e = return_path + strlen(return_path);
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    if (b < e && *b == '<' && e[-1] == '>')
        b++, e--;
    char *addr = arena_strndup(a, b, (size_t)(e - b));
    if (!*addr || strpbrk(addr, "<>\r\n")) {
        *err = arena_printf(a, "malformed address \"%s\" for srs_encode", return_path);
        return NULL;
    }
    char cksum[5];
    hmac_md5_hex4(secret, lower(a, addr), cksum);
    int d = today(now);
    char *at = strrchr(addr, '@');
    const char *dom = at ? at + 1 : "";
    char *local = at ? arena_strndup(a, addr, (size_t)(at - addr)) : addr;
    bool quoted = strchr(local, '"') != NULL;
    if (quoted) {
        gstr g;
        gstr_init(&g, a, strlen(local));
        for (const char *p = local; *p; p++)
            if (*p != '"')
                gstr_catc(&g, *p);
        local = g.s;
    }
    return arena_printf(a, "%sSRS0=%s=%c%c=%s=%s%s@%s", quoted ? "\"" : "", cksum,
                        b32_lower[(d >> 5) & 31], b32_lower[d & 31], dom, local,
                        quoted ? "\"" : "", orig_domain ? orig_domain : "");
}

bool srs_exim_inbound(const char *local_part, const char *secret, time_t now, arena *a,
                      char **recipient)
{
    /* SRS0=<hash>=<tt>=<domain>=<local>, case-insensitive */
    const char *s = local_part;
    if (strncasecmp(s, "SRS0=", 5) != 0)
        return false;
    const char *h = s + 5, *he = strchr(h, '=');
    if (!he || he == h)
        return false;
    const char *t = he + 1;
    if (!t[0] || !t[1] || t[2] != '=' || b32_val(t[0]) < 0 || b32_val(t[1]) < 0)
        return false;
    const char *dom = t + 3, *de = strchr(dom, '=');
    if (!de)
        return false;
    const char *user = de + 1;
    bool quoting = local_part[0] == '"';
    for (const char *p = local_part; *p && !quoting; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".!#$%&'*+-/=?^_`{|}~", *p))
            quoting = true;
    char *rcpt = arena_printf(a, "%s%s%s@%.*s", quoting ? "\"" : "", user, quoting ? "\"" : "",
                              (int)(de - dom), dom);
    rcpt = lower(a, rcpt);
    *recipient = rcpt;
    if (!secret || !*secret)
        return true;
    int then = b32_val(t[0]) * 32 + b32_val(t[1]);
    if (((today(now) - then) & 0x3ff) > SRS_EXIM_MAX_AGE)
        return false;
    if (he - h != 4)
        return false;
    char ck[5];
    hmac_md5_hex4(secret, rcpt, ck);
    return strncmp(ck, h, 4) == 0;
}
