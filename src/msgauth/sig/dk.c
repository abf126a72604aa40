/* dk.c: DomainKeys (RFC 4870) verification and signing.  See dk.h. */
#include "msgauth/sig/dk.h"
#include "msgauth/sig/dkim.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

const char *dk_status_name(dk_status s)
{
    static const char *const names[] = {
        "good", "bad", "no signature", "no key", "bad format", "non-participant", "revoked",
    };
    return names[s];
}

status dk_sig_parse(arena *a, const char *value, size_t len, sig_tags *t, const char **err)
{
    if (tags_parse(a, value, len, t, err) != ST_OK)
        return ST_FAIL;
    const char *alg = tags_get(t, "a"), *q = tags_get(t, "q"), *c = tags_get(t, "c");
    if (!tags_get(t, "b") || !tags_get(t, "d") || !tags_get(t, "s")) {
        *err = "missing b=, d= or s=";
        return ST_FAIL;
    }
    if (alg && strcmp(alg, "rsa-sha1") != 0) {
        *err = "unsupported algorithm";
        return ST_FAIL;
    }
    /* q= is optional here (the field in the wild often lacks it), but an
     * empty or unknown query method is an error */
    if (q && strcmp(q, "dns") != 0) {
        *err = "unsupported query method";
        return ST_FAIL;
    }
    if (c && strcmp(c, "simple") != 0 && strcmp(c, "nofws") != 0) {
        *err = "unsupported canonicalization";
        return ST_FAIL;
    }
    if (!domain_syntax_ok(tags_get(t, "d")) || !*tags_get(t, "s")) {
        *err = "bad d= or s=";
        return ST_FAIL;
    }
    return ST_OK;
}

/* Which headers the signature at index sig covers: those below it, and of
 * those only the ones named in h= when present. */
static bool *covered(arena *a, const mail_msg *m, int sig, const char *h)
{
    bool *cov = arena_calloc(a, (size_t)m->nhdr + 1);
    for (int i = sig + 1; i < m->nhdr; i++) {
        if (!h) {
            cov[i] = true;
            continue;
        }
        const char *p = h;
        while (*p) {
            while (*p == ':' || isspace((unsigned char)*p))
                p++;
            const char *e = p;
            while (*e && *e != ':' && !isspace((unsigned char)*e))
                e++;
            if (e > p && (size_t)(e - p) == m->hdr[i].name_len &&
                strncasecmp(p, m->hdr[i].name, m->hdr[i].name_len) == 0)
                cov[i] = true;
            while (*e && *e != ':')
                e++;
            p = e;
        }
    }
    return cov;
}

/* Hash the covered headers (in h= order when h= is given: every covered
 * field of each listed name, in message order; else message order), the
 * empty line and the body. */
static size_t dk_hash(arena *a, const mail_msg *m, const bool *cov, const char *h, canon c,
                      unsigned char *out)
{
    gstr g;
    gstr_init(&g, a, 4096 + m->body_len);
    if (!h) {
        for (int i = 0; i < m->nhdr; i++)
            if (cov[i])
                canon_header(&g, c, &m->hdr[i]);
    } else {
        bool *done = arena_calloc(a, (size_t)m->nhdr + 1);
        const char *p = h;
        while (*p) {
            while (*p == ':' || isspace((unsigned char)*p))
                p++;
            const char *e = p;
            while (*e && *e != ':' && !isspace((unsigned char)*e))
                e++;
            for (int i = 0; i < m->nhdr && e > p; i++)
                if (cov[i] && !done[i] && (size_t)(e - p) == m->hdr[i].name_len &&
                    strncasecmp(p, m->hdr[i].name, m->hdr[i].name_len) == 0) {
                    canon_header(&g, c, &m->hdr[i]);
                    done[i] = true;
                }
            while (*e && *e != ':')
                e++;
            p = e;
        }
    }
    /* The empty line and the body form one stream whose trailing empty
     * lines are dropped: an empty body drops the separator too. */
    size_t n;
    char *b = canon_body(a, c, m->body, m->body_len, &n);
    if (c == CANON_SIMPLE && n == 2 && strspn(m->body, "\r\n") == m->body_len)
        n = 0;
    if (n) {
        gstr_cat(&g, "\r\n");
        gstr_catn(&g, b, n);
    }
    return hash_buf(HASH_SHA1, g.s, g.len, out);
}

/* The responsible address: first covered Sender:, else first covered From:. */
static void find_sender(arena *a, const mail_msg *m, const bool *cov, dk_result *r)
{
    r->sender_source = "0";
    const char *which[2] = { "sender", "from" };
    for (int w = 0; w < 2; w++)
        for (int i = mail_find(m, which[w], 0); i >= 0; i = mail_find(m, which[w], i + 1)) {
            if (cov && !cov[i])
                continue;
            mail_addr *ad;
            if (mail_addr_list(a, m->hdr[i].value, m->hdr[i].value_len, &ad) < 1 ||
                !*ad[0].domain)
                continue;
            r->sender_local = ad[0].local;
            r->sender_domain = ad[0].domain;
            r->sender = arena_printf(a, "%s@%s", ad[0].local, ad[0].domain);
            r->sender_source = which[w];
            return;
        }
}

/* Policy at _domainkey.<domain>: o=- signs all, t=y testing.  Returns
 * false when the domain has no policy record. */
static bool policy(arena *a, const dk_verify_opts *o, const char *domain, dk_result *r)
{
    dns_answer ans;
    memset(&ans, 0, sizeof ans);
    const char *name = arena_printf(a, "_domainkey.%s", domain);
    status st = o->dns.lookup(o->dns.ctx, name, DNS_T_TXT, a, &ans);
    if (st == ST_DEFER || ans.st == ST_DEFER)
        r->temperror = true;
    if (st != ST_OK || ans.st != ST_OK)
        return false;
    for (int i = 0; i < ans.nrr; i++) {
        sig_tags t;
        const char *err;
        if (!ans.rr[i].text || tags_parse(a, ans.rr[i].text, ans.rr[i].text_len, &t, &err) != ST_OK)
            continue;
        const char *op = tags_get(&t, "o"), *ty = tags_get(&t, "t");
        if (op && strcmp(op, "-") == 0)
            r->signsall = true;
        if (ty && strcmp(ty, "y") == 0)
            r->testing = true;
        return true;
    }
    return false;
}

static bool glob(const char *p, const char *s)
{
    if (!*p)
        return !*s;
    if (*p == '*') {
        for (;; s++) {
            if (glob(p + 1, s))
                return true;
            if (!*s)
                return false;
        }
    }
    return *s && tolower((unsigned char)*p) == tolower((unsigned char)*s) && glob(p + 1, s + 1);
}

static void verify_one(arena *a, const mail_msg *m, int idx, const dk_verify_opts *o, dk_result *r)
{
    memset(r, 0, sizeof *r);
    r->is_signed = true;
    const mail_header *h = &m->hdr[idx];
    sig_tags t;
    const char *err = NULL;
    bool *cov;
    if (dk_sig_parse(a, h->value, h->value_len, &t, &err) != ST_OK) {
        r->status = DK_BADFORMAT;
        r->result = err;
        r->domain = tags_get(&t, "d");
        find_sender(a, m, NULL, r);
        return;
    }
    r->domain = tags_get(&t, "d");
    r->selector = tags_get(&t, "s");
    const char *c = tags_get(&t, "c");
    canon cn = c && strcmp(c, "nofws") == 0 ? CANON_NOFWS : CANON_SIMPLE;
    r->canon = canon_name(cn);
    cov = covered(a, m, idx, tags_get(&t, "h"));
    find_sender(a, m, cov, r);
    if (r->sender_domain)
        policy(a, o, r->sender_domain, r);
    if (!r->sender_domain || !domain_within(r->sender_domain, r->domain)) {
        r->status = DK_BADFORMAT;
        r->result = "the signing domain does not match the sender's domain";
        return;
    }
    dkim_key key;
    status st = dkim_key_fetch(a, &o->dns, r->selector, r->domain, &key, &err);
    if (st == ST_DEFER || st == ST_NOTFOUND) {
        r->temperror = st == ST_DEFER;
        r->status = DK_NOKEY;
        r->result = err;
        return;
    }
    if (st != ST_OK || key.kt != KEY_RSA) {
        r->status = DK_BADFORMAT;
        r->result = "unusable key record";
        return;
    }
    if (key.testing)
        r->testing = true;
    if (key.revoked) {
        r->status = DK_REVOKED;
        r->result = "the key has been revoked";
        return;
    }
    if (key.g && *key.g && !glob(key.g, r->sender_local)) {
        r->status = DK_BADFORMAT;
        r->result = "the key's g= does not match the sender";
        return;
    }
    size_t siglen;
    unsigned char *sig = b64_decode(a, str_nows(a, tags_get(&t, "b")), &siglen);
    sig_key *pk = key_load_public(a, KEY_RSA, key.p, key.plen, &err);
    if (!sig || !siglen || !pk) {
        key_free(pk);
        r->status = DK_BADFORMAT;
        r->result = !pk ? "public key data cannot be decoded" : "bad b= value";
        return;
    }
    unsigned char dig[EVP_MAX_MD_SIZE];
    size_t dl = dk_hash(a, m, cov, tags_get(&t, "h"), cn, dig);
    bool ok = sig_verify(pk, HASH_SHA1, dig, dl, sig, siglen);
    key_free(pk);
    r->status = ok ? DK_GOOD : DK_BAD;
    r->result = ok ? "signature verified" : "signature does not verify";
}

int dk_verify(arena *a, const mail_msg *m, const dk_verify_opts *o, dk_result **out)
{
    dk_result *v = arena_calloc(a, sizeof *v * DK_MAX_SIGS);
    int n = 0;
    for (int i = mail_find(m, "domainkey-signature", 0); i >= 0 && n < DK_MAX_SIGS;
         i = mail_find(m, "domainkey-signature", i + 1))
        verify_one(a, m, i, o, &v[n++]);
    if (n == 0) {
        dk_result *r = &v[n++];
        find_sender(a, m, NULL, r);
        if (r->sender_domain)
            policy(a, o, r->sender_domain, r);
        r->status = DK_NOSIG;
        r->result = "the message is not signed";
    }
    *out = v;
    return n;
}

char *dk_sign(arena *a, const mail_msg *m, const dk_sign_opts *o, const char **err)
{
    if (!o->selector || !o->key || key_type(o->key) != KEY_RSA) {
        *err = "selector and an RSA key are required";
        return NULL;
    }
    dk_result s;
    memset(&s, 0, sizeof s);
    find_sender(a, m, NULL, &s);
    const char *domain = o->domain ? o->domain : s.sender_domain;
    if (!domain) {
        *err = "no sender domain (no From: or Sender: address)";
        return NULL;
    }
    bool *cov = arena_calloc(a, (size_t)m->nhdr + 1);
    if (o->headers) {
        mail_msg tmp = *m;
        /* covered() looks below an index: pretend the signature sits at -1 */
        bool *c2 = covered(a, &tmp, -1, o->headers);
        memcpy(cov, c2, (size_t)m->nhdr);
    } else {
        for (int i = 0; i < m->nhdr; i++)
            cov[i] = true;
    }
    unsigned char dig[EVP_MAX_MD_SIZE];
    size_t dl = dk_hash(a, m, cov, o->headers, o->c, dig);
    size_t sl;
    unsigned char *sig = sig_sign(a, o->key, HASH_SHA1, dig, dl, &sl);
    if (!sig) {
        *err = "signing failed";
        return NULL;
    }
    gstr g;
    gstr_init(&g, a, 512);
    gstr_printf(&g, "a=rsa-sha1; q=dns; c=%s; s=%s; d=%s; ", o->c == CANON_NOFWS ? "nofws" : "simple",
                o->selector, domain);
    if (o->headers)
        gstr_printf(&g, "h=%s; ", o->headers);
    gstr_printf(&g, "b=%s", b64_encode(a, sig, sl));
    return fold_tags(a, "DomainKey-Signature", g.s, true);
}

void dk_authres(arena *a, const dk_result *r, authres_result *out)
{
    memset(out, 0, sizeof *out);
    out->method = "domainkeys";
    switch (r->status) {
    case DK_GOOD: out->result = "pass"; break;
    case DK_BAD: out->result = "fail"; break;
    case DK_NOSIG: case DK_NONPARTICIPANT: out->result = "none"; break;
    default: out->result = r->temperror ? "temperror" : "permerror"; break;
    }
    if (r->status != DK_GOOD && r->result)
        out->reason = r->result;
    out->props = arena_alloc(a, sizeof(authres_prop) * 2);
    if (r->domain)
        out->props[out->nprops++] = (authres_prop){ "header", "d", r->domain };
    if (r->sender)
        out->props[out->nprops++] = (authres_prop){ "header", strcmp(r->sender_source, "sender") == 0
                                                    ? "sender" : "from", r->sender };
}
