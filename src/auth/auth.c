/* auth.c: SMTP AUTH, the shared parts and the plaintext and cram_md5
 * drivers (see auth.h). */
#include "auth/auth.h"
#include "core/gstr.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- base64 --------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *auth_b64encode(const char *data, size_t len, arena *a)
{
    char *out = arena_alloc(a, (len + 2) / 3 * 4 + 1), *o = out;
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

long auth_b64decode(const char *text, arena *a, char **out)
{
    size_t n = strlen(text);
    char *r = arena_alloc(a, n / 4 * 3 + 4);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '=') {
            pad++;
            continue;
        }
        const char *q = pad ? NULL : strchr(b64, c);
        if (!q || !c)
            return -1;                  /* a bad character, or data after padding */
        v = v << 6 | (unsigned)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            r[o++] = (char)(v >> bits & 0xff);
        }
    }
    if ((n - (size_t)pad) % 4 == 1 || pad > 2 || (pad && n % 4))
        return -1;
    r[o] = '\0';
    *out = r;
    return (long)o;
}

auth_rc auth_get_data(const auth_chan *ch, const char *challenge, size_t clen, arena *a, char **data, size_t *dlen)
{
    const char *line = NULL;
    if (!ch->challenge(ch->ctx, challenge, clen, &line))
        return AUTH_LOST;
    if (!strcmp(line, "*"))
        return AUTH_CANCELLED;
    long n = auth_b64decode(line, a, data);
    if (n < 0)
        return AUTH_BAD64;
    *dlen = (size_t)n;
    return AUTH_OK;
}

/* ---- the authenticators ---------------------------------------------------- */

static const char *opt_s(const driver_inst *au, const char *name)
{
    const optval *v = driver_opt(au, name);
    return v && v->s && *v->s ? v->s : NULL;
}

const char *auth_public_name(const driver_inst *au, arena *a)
{
    const char *n = opt_s(au, "public_name");
    char *u = arena_strdup(a, n ? n : au->name);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

bool auth_has_server(const driver_inst *au)
{
    const char *d = au->info->name;
    if (!strcmp(d, "plaintext"))
        return opt_s(au, "server_condition") != NULL;
    if (!strcmp(d, "cram_md5"))
        return opt_s(au, "server_secret") != NULL;
    return false;
}

bool auth_has_client(const driver_inst *au)
{
    const char *d = au->info->name;
    if (!strcmp(d, "plaintext"))
        return opt_s(au, "client_send") != NULL;
    if (!strcmp(d, "cram_md5"))
        return opt_s(au, "client_name") && opt_s(au, "client_secret");
    return false;
}

auth_rc auth_check_condition(const driver_inst *au, const char *opt, arena *a, const char **msg)
{
    const char *cond = opt_s(au, opt);
    if (!cond) {
        *msg = arena_printf(a, "%s authenticator: %s is not set", au->name, opt);
        return AUTH_DEFER;
    }
    char *out = NULL, *err = NULL;
    status st = expand_string(cond, a, &out, &err);
    if (st == ST_FAIL_FORCED)
        return AUTH_FAIL;
    if (st != ST_OK) {
        *msg = arena_printf(a, "expansion of \"%s\" failed: %s", cond, err ? err : "");
        return AUTH_DEFER;
    }
    if (!strcasecmp(out, "yes") || !strcasecmp(out, "true") || !strcmp(out, "1"))
        return AUTH_OK;
    if (!*out || !strcasecmp(out, "no") || !strcasecmp(out, "false") || !strcmp(out, "0"))
        return AUTH_FAIL;
    *msg = arena_printf(a, "\"%s\" is not a valid value for %s", out, opt);
    return AUTH_DEFER;
}

/* Set $auth<n> (1-based) to the NUL-separated fields of data, from n. */
static int set_fields(const char *data, size_t len, int n)
{
    size_t start = 0;
    for (size_t i = 0; i <= len && n <= 4; i++)
        if (i == len || data[i] == '\0') {
            ps.auth_vars[n - 1] = arena_strndup(ps.conn_t, data + start, i - start);
            n++;
            start = i + 1;
        }
    return n;
}

/* plaintext: the initial data's NUL-separated fields, then a prompt
 * (server_prompts, expanded) for each field still missing; then
 * server_condition. */
auth_rc auth_server_plaintext(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a,
                              const char **msg)
{
    const char *prompts = NULL;
    char *err = NULL;
    const char *p = opt_s(au, "server_prompts");
    if (p) {
        char *out;
        if (expand_string(p, a, &out, &err) != ST_OK) {
            *msg = arena_printf(a, "expansion of \"%s\" failed: %s", p, err ? err : "");
            return AUTH_DEFER;
        }
        prompts = out;
    }
    int n = 1;
    if (initial) {
        char *d;
        long len = !strcmp(initial, "=") ? 0 : auth_b64decode(initial, a, &d);
        if (len < 0)
            return AUTH_BAD64;
        n = set_fields(len ? d : "", (size_t)len, 1);
    }
    /* prompts for what the initial data did not give */
    int sep = 0, k = 0;
    char *pr;
    while (prompts && (pr = list_next(&prompts, &sep, a))) {
        if (++k < n)
            continue;
        char *d;
        size_t len;
        auth_rc rc = auth_get_data(ch, pr, strlen(pr), a, &d, &len);
        if (rc != AUTH_OK)
            return rc;
        n = set_fields(d, len, n);
    }
    return auth_check_condition(au, "server_condition", a, msg);
}

/* HMAC-MD5 of text with secret, in lower-case hex (RFC 2195). */
static void cram_digest(const char *secret, const char *text, char hex[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_md5(), secret, (int)strlen(secret), (const unsigned char *)text, strlen(text), md, &mdlen);
    for (unsigned i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* cram_md5 (RFC 2195): a challenge with our pid, the time and our name;
 * the client answers "user digest"; server_secret, expanded with $auth1
 * set to the user, gives the secret (a forced failure: no such user). */
auth_rc auth_server_cram_md5(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a,
                             const char **msg)
{
    if (initial && *initial)
        return AUTH_UNEXPECTED;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    const char *challenge = arena_printf(a, "<%d.%ld@%s>", (int)getpid(), (long)tv.tv_sec,
                                         cfg_str(MO_primary_hostname));
    char *d;
    size_t len;
    auth_rc rc = auth_get_data(ch, challenge, strlen(challenge), a, &d, &len);
    if (rc != AUTH_OK)
        return rc;
    char *sp = memchr(d, ' ', len);
    if (!sp || strlen(sp + 1) != 32)
        return AUTH_BAD64;
    ps.auth_vars[0] = arena_strndup(ps.conn_t, d, (size_t)(sp - d));
    ps.auth_vars[1] = arena_strdup(ps.conn_t, sp + 1);
    const char *ss = opt_s(au, "server_secret");
    char *secret = NULL, *err = NULL;
    status st = expand_string(ss, a, &secret, &err);
    if (st == ST_FAIL_FORCED)
        return AUTH_FAIL;
    if (st != ST_OK) {
        *msg = arena_printf(a, "expansion of \"%s\" failed: %s", ss, err ? err : "");
        return AUTH_DEFER;
    }
    char want[33];
    cram_digest(secret, challenge, want);
    return strcasecmp(want, sp + 1) == 0 ? AUTH_OK : AUTH_FAIL;
}

auth_rc auth_server(const driver_inst *au, const char *initial, const auth_chan *ch, arena *a, const char **msg)
{
    for (int i = 0; i < 4; i++)
        ps.auth_vars[i] = NULL;
    const char *d = au->info->name;
    if (!strcmp(d, "plaintext"))
        return auth_server_plaintext(au, initial, ch, a, msg);
    if (!strcmp(d, "cram_md5"))
        return auth_server_cram_md5(au, initial, ch, a, msg);
    *msg = arena_printf(a, "%s authenticator: driver %s has no server side in postern", au->name, d);
    return AUTH_DEFER;
}

/* ---- the client side -------------------------------------------------------- */

/* A client_send item, expanded: "^" stands for a NUL (a literal "^" is
 * "^^"). */
static bool client_item(const char *item, arena *a, char **out, size_t *len, const char **msg)
{
    char *x = NULL, *err = NULL;
    if (expand_string(item, a, &x, &err) != ST_OK) {
        *msg = arena_printf(a, "expansion of \"%s\" failed: %s", item, err ? err : "");
        return false;
    }
    size_t o = 0;
    for (size_t i = 0; x[i]; i++) {
        if (x[i] == '^')
            x[o++] = x[i + 1] == '^' ? x[++i] : '\0';
        else
            x[o++] = x[i];
    }
    x[o] = '\0';
    *out = x;
    *len = o;
    return true;
}

static auth_rc client_reply(int code, const char *text, arena *a, const char **msg)
{
    if (code / 100 == 2)
        return AUTH_OK;
    *msg = arena_printf(a, "%d %s", code, text ? text : "");
    return code / 100 == 4 || code == 0 ? AUTH_DEFER : AUTH_FAIL;
}

auth_rc auth_client(const driver_inst *au, const auth_client_chan *ch, arena *a, const char **msg)
{
    const char *pub = auth_public_name(au, a);
    int code = 0;
    const char *text = NULL;
    if (!strcmp(au->info->name, "plaintext")) {
        /* the first item goes with the AUTH command, each other one answers
         * a 334 */
        const char *list = opt_s(au, "client_send");
        int sep = 0;
        char *it;
        bool first = true;
        while ((it = list_next(&list, &sep, a))) {
            char *data;
            size_t len;
            if (!client_item(it, a, &data, &len, msg))
                return AUTH_ERROR;
            const char *enc = auth_b64encode(data, len, a);
            const char *line = first ? arena_printf(a, "AUTH %s%s%s", pub, *enc ? " " : "", *enc ? enc : "") : enc;
            if (!first && code != 334)
                break;
            first = false;
            if (!ch->command(ch->ctx, line, &code, &text))
                return client_reply(0, "connection lost", a, msg);
            if (code != 334)
                return client_reply(code, text, a, msg);
        }
        if (first)
            return AUTH_ERROR;
        if (code == 334) {
            /* more asked for than we have to send: cancel */
            ch->command(ch->ctx, "*", &code, &text);
            *msg = arena_printf(a, "%d %s", code, text ? text : "");
            return AUTH_FAIL;
        }
        return client_reply(code, text, a, msg);
    }
    /* cram_md5: the server's challenge, answered with "name digest" */
    if (!ch->command(ch->ctx, arena_printf(a, "AUTH %s", pub), &code, &text))
        return client_reply(0, "connection lost", a, msg);
    if (code != 334)
        return client_reply(code, text, a, msg);
    char *challenge;
    if (auth_b64decode(text ? text : "", a, &challenge) < 0) {
        ch->command(ch->ctx, "*", &code, &text);
        *msg = "invalid base64 in the server's challenge";
        return AUTH_FAIL;
    }
    char *name, *secret, *err = NULL;
    if (expand_string(opt_s(au, "client_name"), a, &name, &err) != ST_OK ||
        expand_string(opt_s(au, "client_secret"), a, &secret, &err) != ST_OK) {
        *msg = arena_printf(a, "expansion of client_name or client_secret failed: %s", err ? err : "");
        ch->command(ch->ctx, "*", &code, &text);
        return AUTH_ERROR;
    }
    char hex[33];
    cram_digest(secret, challenge, hex);
    const char *resp = arena_printf(a, "%s %s", name, hex);
    if (!ch->command(ch->ctx, auth_b64encode(resp, strlen(resp), a), &code, &text))
        return client_reply(0, "connection lost", a, msg);
    return client_reply(code, text, a, msg);
}
