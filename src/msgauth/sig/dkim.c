/* dkim.c: DKIM signature parsing, key records, verification and signing
 * (RFC 6376, 8301, 8463).  See dkim.h. */
#include "msgauth/sig/dkim.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char dkim_default_sign_headers[] =
    "From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:"
    "Content-Transfer-Encoding:Content-ID:Content-Description:Resent-Date:Resent-From:"
    "Resent-Sender:Resent-To:Resent-Cc:Resent-Message-ID:In-Reply-To:References:"
    "List-Id:List-Help:List-Unsubscribe:List-Subscribe:List-Post:List-Owner:List-Archive";

const char *dkim_status_name(dkim_status s)
{
    switch (s) {
    case DKIM_PASS: return "pass";
    case DKIM_FAIL: return "fail";
    case DKIM_INVALID: return "invalid";
    default: return "none";
    }
}

/* ---- signature tags ----------------------------------------------------- */

static bool all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static long long num(const char *s)
{
    if (!s)
        return -1;
    if (!all_digits(s, 18))
        return -2;
    return strtoll(s, NULL, 10);
}

/* Split a colon list (whitespace around items dropped). */
static int split_colon(arena *a, const char *s, const char ***out)
{
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ':';
    const char **v = arena_alloc(a, sizeof *v * (size_t)n);
    int k = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ':');
        if (!e)
            e = p + strlen(p);
        const char *b = p, *f = e;
        while (b < f && isspace((unsigned char)*b)) b++;
        while (f > b && isspace((unsigned char)f[-1])) f--;
        v[k++] = arena_strndup(a, b, (size_t)(f - b));
        if (!*e)
            break;
        p = e + 1;
    }
    *out = v;
    return k;
}

static bool algo_parse(const char *a, sig_keytype *kt, sig_hash *h)
{
    if (strcmp(a, "rsa-sha256") == 0) { *kt = KEY_RSA; *h = HASH_SHA256; return true; }
    if (strcmp(a, "rsa-sha1") == 0) { *kt = KEY_RSA; *h = HASH_SHA1; return true; }
    if (strcmp(a, "ed25519-sha256") == 0) { *kt = KEY_ED25519; *h = HASH_SHA256; return true; }
    return false;
}

status dkim_sig_parse(arena *a, const char *value, size_t len, dkim_sig *s, const char **err)
{
    memset(s, 0, sizeof *s);
    s->l = DKIM_NO_LIMIT;
    s->t = s->x = -1;
    if (tags_parse(a, value, len, &s->tags, err) != ST_OK)
        return ST_FAIL;
    const sig_tags *t = &s->tags;
    s->v = tags_get(t, "v");
    s->a = tags_get(t, "a");
    s->b = tags_get(t, "b");
    s->bh = tags_get(t, "bh");
    s->d = tags_get(t, "d");
    s->s = tags_get(t, "s");
    s->i = tags_get(t, "i");
    s->q = tags_get(t, "q");
    s->z = tags_get(t, "z");
    s->h_raw = tags_get(t, "h");
    if (s->h_raw)
        s->nh = split_colon(a, s->h_raw, &s->h);
    return ST_OK;
}

/* dkim-quoted-printable decoding of i= (=XX escapes). */
static char *qp_decode(arena *a, const char *s)
{
    char *o = arena_alloc(a, strlen(s) + 1), *p = o;
    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        if (*s == '=' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hex[3] = { s[1], s[2], 0 };
            *p++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *p++ = *s;
        }
    }
    *p = 0;
    return o;
}

/* Checks shared by DKIM-Signature and ARC-Message-Signature. */
status dkim_sig_check_common(arena *a, dkim_sig *s, const char **err)
{
    if (!s->a || !s->b || !s->bh || !s->d || !s->h_raw || !s->s) {
        *err = "signature lacks a required tag";
        return ST_FAIL;
    }
    if (!algo_parse(s->a, &s->kt, &s->hash)) {
        *err = "unsupported algorithm";
        return ST_FAIL;
    }
    const char *c = tags_get(&s->tags, "c");
    s->hc = s->bc = CANON_SIMPLE;
    if (c && !canon_parse(c, &s->hc, &s->bc)) {
        *err = "unsupported canonicalization";
        return ST_FAIL;
    }
    if (!(s->sig = b64_decode(a, s->b, &s->siglen)) || s->siglen == 0) {
        *err = "bad b= value";
        return ST_FAIL;
    }
    if (!(s->bhash = b64_decode(a, s->bh, &s->bhlen)) || s->bhlen == 0) {
        *err = "bad bh= value";
        return ST_FAIL;
    }
    if (!domain_syntax_ok(s->d) || !*s->s) {
        *err = "bad d= or s= value";
        return ST_FAIL;
    }
    if (s->nh > DKIM_MAX_SIGNED_HEADERS) {
        *err = "too many header names in h=";
        return ST_FAIL;
    }
    const char *l = tags_get(&s->tags, "l");
    if (l) {
        if (!all_digits(l, 76)) {
            *err = "bad l= value";
            return ST_FAIL;
        }
        s->l = strlen(l) > 18 ? (long long)1e18 : strtoll(l, NULL, 10);
    }
    s->t = num(tags_get(&s->tags, "t"));
    s->x = num(tags_get(&s->tags, "x"));
    if (s->t == -2 || s->x == -2) {
        *err = "bad t= or x= value";
        return ST_FAIL;
    }
    return ST_OK;
}

status dkim_sig_check(arena *a, dkim_sig *s, time_t now, bool strict, const char **err)
{
    /* Pre-RFC drafts (no v=, v=0.5) share the final format once bh= exists;
     * they are accepted unless strict. */
    if (!s->v && strict) {
        *err = "signature lacks a required tag";
        return ST_FAIL;
    }
    if (s->v && strcmp(s->v, "1") != 0 && (strict || strcmp(s->v, "0.5") != 0)) {
        *err = "unsupported version";
        return ST_FAIL;
    }
    if (dkim_sig_check_common(a, s, err) != ST_OK)
        return ST_FAIL;
    if (s->q) {
        const char **qv;
        int nq = split_colon(a, s->q, &qv);
        bool ok = false;
        for (int k = 0; k < nq; k++)
            if (strcasecmp(qv[k], "dns/txt") == 0 || (!strict && strcasecmp(qv[k], "dns") == 0))
                ok = true;   /* "dns" is the pre-RFC drafts' spelling */
        if (!ok) {
            *err = "unsupported query method";
            return ST_FAIL;
        }
    }
    bool from = false;
    for (int k = 0; k < s->nh; k++) {
        if (!*s->h[k]) {
            *err = "empty name in h=";
            return ST_FAIL;
        }
        if (strcasecmp(s->h[k], "from") == 0)
            from = true;
    }
    if (!from) {
        *err = "From: is not signed";
        return ST_FAIL;
    }
    if (s->i) {
        s->i = qp_decode(a, s->i);
        const char *at = strrchr(s->i, '@');
        if (!at || !domain_within(at + 1, s->d)) {
            *err = "i= is not within d=";
            return ST_FAIL;
        }
    }
    if (s->x >= 0 && s->t >= 0 && s->x < s->t) {
        *err = "x= is before t=";
        return ST_FAIL;
    }
    if (s->x >= 0 && s->x < (long long)now) {
        *err = "signature expired";
        return ST_FAIL;
    }
    return ST_OK;
}

/* ---- key records -------------------------------------------------------- */

status dkim_key_parse(arena *a, const char *txt, size_t len, dkim_key *k, const char **err)
{
    memset(k, 0, sizeof *k);
    sig_tags t;
    if (tags_parse(a, txt, len, &t, err) != ST_OK)
        return ST_FAIL;
    const char *v = tags_get(&t, "v");
    if (v && (strcmp(v, "DKIM1") != 0 || strcmp(t.t[0].name, "v") != 0)) {
        *err = "unsupported key record version";
        return ST_FAIL;
    }
    const char *kt = tags_get(&t, "k");
    if (!kt || strcasecmp(kt, "rsa") == 0)
        k->kt = KEY_RSA;
    else if (strcasecmp(kt, "ed25519") == 0)
        k->kt = KEY_ED25519;
    else {
        *err = "unsupported key type";
        return ST_FAIL;
    }
    k->h = tags_get(&t, "h");
    k->srv = tags_get(&t, "s");
    k->g = tags_get(&t, "g");
    k->n = tags_get(&t, "n");
    k->flags = tags_get(&t, "t");
    if (k->flags) {
        const char **fv;
        int nf = split_colon(a, k->flags, &fv);
        for (int i = 0; i < nf; i++) {
            if (strcmp(fv[i], "y") == 0) k->testing = true;
            if (strcmp(fv[i], "s") == 0) k->strict = true;
        }
    }
    const char *p = tags_get(&t, "p");
    if (!p) {
        *err = "key record lacks p=";
        return ST_FAIL;
    }
    char *pp = str_nows(a, p);
    if (!*pp) {
        k->revoked = true;
        return ST_OK;
    }
    if (!(k->p = b64_decode(a, pp, &k->plen)) || k->plen == 0) {
        *err = "bad base64 in p=";
        return ST_FAIL;
    }
    return ST_OK;
}

status dkim_key_fetch(arena *a, const dns_iface *dns, const char *selector, const char *domain,
                      dkim_key *key, const char **err)
{
    const char *name = arena_printf(a, "%s._domainkey.%s", selector, domain);
    dns_answer ans;
    memset(&ans, 0, sizeof ans);
    status st = dns->lookup(dns->ctx, name, DNS_T_TXT, a, &ans);
    if (st == ST_DEFER || ans.st == ST_DEFER) {
        *err = arena_printf(a, "DNS lookup of %s failed temporarily", name);
        return ST_DEFER;
    }
    if (st != ST_OK || ans.st != ST_OK || ans.nrr == 0) {
        *err = arena_printf(a, "no key record at %s", name);
        return ST_NOTFOUND;
    }
    *err = "key record syntax error";
    for (int i = 0; i < ans.nrr; i++) {
        const dns_rr *rr = &ans.rr[i];
        if (rr->type != DNS_T_TXT || !rr->text)
            continue;
        if (memchr(rr->text, 0, rr->text_len))
            continue;
        if (dkim_key_parse(a, rr->text, rr->text_len, key, err) == ST_OK)
            return ST_OK;
    }
    return ST_FAIL;
}

/* RFC 4871 g= matching: '*' matches any run. */
static bool glob_match(const char *pat, const char *s)
{
    if (!*pat)
        return !*s;
    if (*pat == '*') {
        for (;; s++) {
            if (glob_match(pat + 1, s))
                return true;
            if (!*s)
                return false;
        }
    }
    return *s && *pat == *s && glob_match(pat + 1, s + 1);
}

static bool list_has(arena *a, const char *list, const char *want)
{
    const char **v;
    int n = split_colon(a, list, &v);
    for (int i = 0; i < n; i++)
        if (strcasecmp(v[i], want) == 0 || strcmp(v[i], "*") == 0)
            return true;
    return false;
}

/* ---- hashing -------------------------------------------------------------- */

size_t dkim_body_hash(arena *a, const mail_msg *m, canon bc, sig_hash h, long long l,
                      unsigned char *out, const char **err)
{
    size_t n;
    char *cb = canon_body(a, bc, m->body, m->body_len, &n);
    if (l >= 0) {
        if ((unsigned long long)l > n) {
            *err = "l= exceeds the body length";
            return 0;
        }
        n = (size_t)l;
    }
    return hash_buf(h, cb, n, out);
}

size_t dkim_header_hash(arena *a, const mail_msg *m, const char *const *names, int n, canon c,
                        sig_hash h, const mail_header *sighdr, int exclude, unsigned char *out)
{
    gstr g;
    gstr_init(&g, a, 1024);
    /* For each distinct name, where the bottom-up search continues: a
     * name repeated in h= takes the next instance up, and a name that ran
     * out costs nothing more (h= may name a missing header 1000 times). */
    struct cursor { const char *name; size_t len; int next; } *cur =
        arena_alloc(a, sizeof *cur * (size_t)(n + 1));
    int ncur = 0;
    for (int k = 0; k < n; k++) {
        size_t nl = strlen(names[k]);
        struct cursor *cu = NULL;
        for (int j = 0; j < ncur && !cu; j++)
            if (cur[j].len == nl && strncasecmp(cur[j].name, names[k], nl) == 0)
                cu = &cur[j];
        if (!cu) {
            cu = &cur[ncur++];
            *cu = (struct cursor){ names[k], nl, m->nhdr - 1 };
        }
        int i = cu->next;
        while (i >= 0 && (i == exclude || m->hdr[i].name_len != nl ||
                          strncasecmp(m->hdr[i].name, names[k], nl) != 0))
            i--;
        if (i >= 0)
            canon_header(&g, c, &m->hdr[i]);
        cu->next = i >= 0 ? i - 1 : -1;
    }
    size_t before = g.len;
    canon_header(&g, c, sighdr);
    if (g.len >= before + 2 && g.s[g.len - 1] == '\n' && g.s[g.len - 2] == '\r')
        gstr_truncate(&g, g.len - 2);
    return hash_buf(h, g.s, g.len, out);
}

/* ---- verification -------------------------------------------------------- */

/* reason: Exim's $dkim_verify_reason value ("" when Exim has none);
 * detail: what exactly was wrong. */
static void invalid(dkim_result *r, const char *reason, const char *detail)
{
    r->status = DKIM_INVALID;
    r->reason = reason;
    r->detail = detail;
}

/* Fetch the key for s and check the record against the signature.
 * Returns the public key, or NULL with r set to invalid (Exim's reason). */
static sig_key *usable_key(arena *a, const dkim_sig *s, const dkim_verify_opts *o, dkim_result *r)
{
    const char *err = NULL;
    dkim_key key;
    status st = dkim_key_fetch(a, &o->dns, s->s, s->d, &key, &err);
    if (st != ST_OK) {
        r->temperror = st == ST_DEFER;
        invalid(r, st == ST_FAIL ? "pubkey_dns_syntax" : "pubkey_unavailable", err);
        return NULL;
    }
    r->testing = key.testing;
    const char *at = strrchr(r->identity, '@');
    const char *why = NULL;
    if (key.revoked)
        why = "key revoked (empty p=)";
    else if (key.kt != s->kt)
        why = "key type k= does not match a=";
    else if (key.h && !list_has(a, key.h, s->hash == HASH_SHA1 ? "sha1" : "sha256"))
        why = "key h= excludes the hash";
    else if (key.srv && !list_has(a, key.srv, "email"))
        why = "key s= excludes email";
    else if (key.strict && !domain_eq(at + 1, s->d))
        why = "key t=s but i= is in a subdomain of d=";
    else if (key.g && (!*key.g ||
             !glob_match(key.g, arena_strndup(a, r->identity, (size_t)(at - r->identity)))))
        why = "key g= does not match i=";
    if (why) {
        invalid(r, key.revoked ? "pubkey_unavailable" : "pubkey_dns_syntax", why);
        return NULL;
    }
    sig_key *pk = key_load_public(a, key.kt, key.p, key.plen, &err);
    if (!pk) {
        invalid(r, "pubkey_der_syntax", err);
        return NULL;
    }
    r->key_bits = key_bits(pk);
    int min = key.kt == KEY_RSA ? o->min_rsa_bits : o->min_ed25519_bits;
    if (r->key_bits > DKIM_MAX_KEY_BITS || r->key_bits < min) {
        key_free(pk);   /* absurdly large keys are refused: not worth the work */
        invalid(r, r->key_bits < min ? "pubkey_too_short" : "pubkey_der_syntax",
                arena_printf(a, "%d-bit key", r->key_bits));
        return NULL;
    }
    return pk;
}

/* Key, body hash, header hash and signature of a checked signature
 * (shared with ARC's AMS); r->identity must be set. */
void dkim_verify_parsed(arena *a, const mail_msg *m, const mail_header *hdr, dkim_sig *s,
                        const dkim_verify_opts *o, dkim_result *r)
{
    sig_key *pk = usable_key(a, s, o, r);
    if (!pk)
        return;
    const char *err = NULL;
    unsigned char bh[EVP_MAX_MD_SIZE], hh[EVP_MAX_MD_SIZE];
    size_t bhl = 0;
    dkim_bh_cache *bc = o->cache;
    for (int i = 0; bc && i < bc->n && !bhl; i++)
        if (bc->e[i].bc == s->bc && bc->e[i].h == s->hash && bc->e[i].l == s->l) {
            bhl = bc->e[i].len;
            memcpy(bh, bc->e[i].d, bhl);
        }
    if (!bhl) {
        bhl = dkim_body_hash(a, m, s->bc, s->hash, s->l, bh, &err);
        if (bc && bhl && bc->n < (int)(sizeof bc->e / sizeof bc->e[0])) {
            bc->e[bc->n].bc = s->bc;
            bc->e[bc->n].h = s->hash;
            bc->e[bc->n].l = s->l;
            bc->e[bc->n].len = bhl;
            memcpy(bc->e[bc->n].d, bh, bhl);
            bc->n++;
        }
    }
    if (bhl == 0 || bhl != s->bhlen || memcmp(bh, s->bhash, bhl) != 0) {
        key_free(pk);
        r->status = DKIM_FAIL;
        r->reason = "bodyhash_mismatch";
        r->detail = err ? err : "body hash differs from bh=";
        return;
    }
    mail_header stripped;
    strip_b_value(a, hdr, &stripped);
    int self = hdr >= m->hdr && hdr < m->hdr + m->nhdr ? (int)(hdr - m->hdr) : -1;
    size_t hl = dkim_header_hash(a, m, s->h, s->nh, s->hc, s->hash, &stripped, self, hh);
    bool ok = sig_verify(pk, s->hash, hh, hl, s->sig, s->siglen);
    key_free(pk);
    r->status = ok ? DKIM_PASS : DKIM_FAIL;
    r->reason = ok ? "" : "signature_incorrect";
    r->detail = ok ? "" : "the signature does not verify over the signed headers";
}

void dkim_verify_one(arena *a, const mail_msg *m, int idx, const dkim_verify_opts *o,
                     dkim_result *r)
{
    const mail_header *hdr = &m->hdr[idx];
    memset(r, 0, sizeof *r);
    r->hdr_index = idx;
    r->bodylength = DKIM_NO_LIMIT;
    r->created = r->expires = -1;
    r->reason = r->detail = "";
    time_t now = o->now ? o->now : time(NULL);
    dkim_sig s;
    const char *err = NULL;
    if (dkim_sig_parse(a, hdr->value, hdr->value_len, &s, &err) != ST_OK) {
        invalid(r, "", err);
        return;
    }
    r->domain = s.d ? arena_strdup(a, s.d) : NULL;
    r->selector = s.s;
    r->algo = s.a;
    r->identity = s.i;
    r->headernames = s.h_raw ? str_nows(a, s.h_raw) : NULL;
    if (s.b)
        r->b_prefix = arena_strndup(a, str_nows(a, s.b), 8);
    if (dkim_sig_check(a, &s, now, o->rfc_only, &err) != ST_OK) {
        invalid(r, "", err);
        return;
    }
    for (char *p = (char *)r->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->identity = s.i ? s.i : arena_printf(a, "@%s", s.d);
    r->canon_head = canon_name(s.hc);
    r->canon_body = canon_name(s.bc);
    r->bodylength = s.l;
    r->created = s.t;
    r->expires = s.x;
    r->weak = s.hash == HASH_SHA1;
    if (r->weak && o->strict) {
        invalid(r, "", "rsa-sha1 is not acceptable (RFC 8301)");
        return;
    }

    dkim_verify_parsed(a, m, hdr, &s, o, r);
}

int dkim_verify(arena *a, const mail_msg *m, const dkim_verify_opts *o, dkim_result **out)
{
    int n = 0;
    dkim_result *v = arena_calloc(a, sizeof *v * DKIM_MAX_SIGS);
    dkim_verify_opts oc = *o;
    if (!oc.cache)
        oc.cache = arena_calloc(a, sizeof *oc.cache);
    for (int i = mail_find(m, "dkim-signature", 0); i >= 0 && n < DKIM_MAX_SIGS;
         i = mail_find(m, "dkim-signature", i + 1))
        dkim_verify_one(a, m, i, &oc, &v[n++]);
    *out = v;
    return n;
}

/* ---- signing ------------------------------------------------------------- */

const char **dkim_expand_headers(arena *a, const mail_msg *m, const char *list, int *n)
{
    const char **items;
    int ni = split_colon(a, list ? list : dkim_default_sign_headers, &items);
    int cap = ni + m->nhdr + 1;
    const char **out = arena_alloc(a, sizeof *out * (size_t)cap);
    int k = 0;
    for (int i = 0; i < ni; i++) {
        const char *nm = items[i];
        char mode = list ? 0 : '=';          /* default list: present ones */
        if (*nm == '=' || *nm == '+')
            mode = *nm++;
        char *l = arena_strdup(a, nm);
        for (char *p = l; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!mode) {
            if (k < cap)
                out[k++] = l;
            continue;
        }
        for (int h = mail_find(m, l, 0); h >= 0 && k < cap; h = mail_find(m, l, h + 1))
            out[k++] = l;
        if (mode == '+' && k < cap)
            out[k++] = l;                    /* oversign: no more of these */
    }
    *n = k;
    return out;
}


char *dkim_sign(arena *a, const mail_msg *m, const dkim_sign_opts *o, const char **err)
{
    if (!o->domain || !*o->domain || !o->selector || !*o->selector || !o->key) {
        *err = "domain, selector and key are required";
        return NULL;
    }
    if (o->hash == HASH_SHA1) {
        *err = "rsa-sha1 signing is not allowed (RFC 8301)";
        return NULL;
    }
    sig_keytype kt = key_type(o->key);
    const char *algo = kt == KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256";
    if (o->identity) {
        const char *at = strrchr(o->identity, '@');
        if (!at || !domain_within(at + 1, o->domain)) {
            *err = "identity is not within the signing domain";
            return NULL;
        }
    }
    int nn;
    const char **names = dkim_expand_headers(a, m, o->headers, &nn);
    bool from = false;
    for (int i = 0; i < nn; i++) {
        if (!*names[i]) {
            *err = "empty header name in list";
            return NULL;
        }
        if (strcasecmp(names[i], "from") == 0)
            from = true;
    }
    if (!from) {
        *err = o->headers ? "the header list must include From" : "message has no From: header";
        return NULL;
    }
    const char *hsep = o->hsep ? o->hsep : ":";
    unsigned char bh[EVP_MAX_MD_SIZE];
    size_t bhl = dkim_body_hash(a, m, o->bc, o->hash, o->bodylength, bh, err);
    if (bhl == 0)
        return NULL;

    gstr t;
    gstr_init(&t, a, 512);
    gstr_printf(&t, "v=1; a=%s; c=%s/%s; d=%s; ", algo, canon_name(o->hc),
                canon_name(o->bc), o->domain);
    if (o->identity)
        gstr_printf(&t, "i=%s; ", o->identity);
    gstr_printf(&t, "q=dns/txt; s=%s; ", o->selector);
    if (o->timestamp >= 0)
        gstr_printf(&t, "t=%lld; ", o->timestamp);
    if (o->expire >= 0)
        gstr_printf(&t, "x=%lld; ", o->expire);
    if (o->bodylength >= 0)
        gstr_printf(&t, "l=%lld; ", o->bodylength);
    gstr_cat(&t, "h=");
    for (int i = 0; i < nn; i++)
        gstr_printf(&t, "%s%s", i ? hsep : "", names[i]);
    gstr_printf(&t, "; bh=%s; b=", b64_encode(a, bh, bhl));

    char *field = fold_tags(a, "DKIM-Signature", t.s, true);
    mail_msg fm;
    if (mail_parse(a, field, strlen(field), &fm, (char **)err) != ST_OK || fm.nhdr != 1) {
        *err = "internal error building the signature field";
        return NULL;
    }
    unsigned char hh[EVP_MAX_MD_SIZE];
    size_t hl = dkim_header_hash(a, m, names, nn, o->hc, o->hash, &fm.hdr[0], -1, hh);
    size_t sl;
    unsigned char *sig = sig_sign(a, o->key, o->hash, hh, hl, &sl);
    if (!sig) {
        *err = "signing failed";
        return NULL;
    }
    return append_b(a, field, b64_encode(a, sig, sl));
}

void dkim_authres(arena *a, const dkim_result *r, authres_result *out)
{
    memset(out, 0, sizeof *out);
    out->method = "dkim";
    if (!r) {
        out->result = "none";
        return;
    }
    out->result = r->temperror ? "temperror" : r->status == DKIM_PASS ? "pass"
                : r->status == DKIM_FAIL ? "fail" : r->status == DKIM_INVALID ? "permerror"
                : "none";
    if (r->key_bits)
        out->comment = arena_printf(a, "%d-bit key%s", r->key_bits,
                                    r->weak ? "; weak rsa-sha1" : "");
    if (r->status != DKIM_PASS)
        out->reason = r->reason && *r->reason ? r->reason : r->detail && *r->detail ? r->detail : NULL;
    out->props = arena_alloc(a, sizeof(authres_prop) * 5);
    if (r->domain)
        out->props[out->nprops++] = (authres_prop){ "header", "d", r->domain };
    if (r->identity)
        out->props[out->nprops++] = (authres_prop){ "header", "i", r->identity };
    if (r->selector)
        out->props[out->nprops++] = (authres_prop){ "header", "s", r->selector };
    if (r->algo)
        out->props[out->nprops++] = (authres_prop){ "header", "a", r->algo };
    if (r->b_prefix)
        out->props[out->nprops++] = (authres_prop){ "header", "b", r->b_prefix };
}
