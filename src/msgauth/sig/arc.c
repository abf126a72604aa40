/* arc.c: ARC chain validation and sealing (RFC 8617).  See arc.h. */
#include "msgauth/sig/arc.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *arc_state_name(arc_state s)
{
    return s == ARC_PASS ? "pass" : s == ARC_FAIL ? "fail" : "none";
}

/* One instance's three header fields (indexes into the message). */
typedef struct arc_set {
    int as, ams, aar;
    sig_tags as_tags;
    bool as_ok;           /* tags parsed */
} arc_set;

typedef struct arc_chain {
    arc_set set[ARC_MAX_INSTANCE + 1];
    int n;                /* highest instance */
    bool any;             /* any ARC header at all */
    const char *broken;   /* structural problem, or NULL */
} arc_chain;

/* Instance from "i=N" in a tag list: 1..50, or 0 if missing/invalid. */
static int tag_instance(const char *v)
{
    if (!v || !*v || strlen(v) > 3)
        return 0;
    for (const char *p = v; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    int i = atoi(v);
    return i >= 1 && i <= ARC_MAX_INSTANCE ? i : 0;
}

/* AAR: the value must start with "i=N;" (whitespace allowed around). */
static int aar_instance(const mail_header *h, size_t *after)
{
    const char *p = h->value, *e = h->value + h->value_len;
    while (p < e && isspace((unsigned char)*p)) p++;
    if (p >= e || *p != 'i')
        return 0;
    p++;
    while (p < e && isspace((unsigned char)*p)) p++;
    if (p >= e || *p != '=')
        return 0;
    p++;
    while (p < e && isspace((unsigned char)*p)) p++;
    int n = 0, digits = 0;
    while (p < e && isdigit((unsigned char)*p) && digits < 4) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    while (p < e && isspace((unsigned char)*p)) p++;
    if (!digits || p >= e || *p != ';' || n < 1 || n > ARC_MAX_INSTANCE)
        return 0;
    *after = (size_t)(p + 1 - h->value);
    return n;
}

static void chain_collect(arena *a, const mail_msg *m, arc_chain *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i <= ARC_MAX_INSTANCE; i++)
        c->set[i].as = c->set[i].ams = c->set[i].aar = -1;
    for (int k = 0; k < m->nhdr; k++) {
        const mail_header *h = &m->hdr[k];
        int kind;
        if (h->name_len == 8 && strncasecmp(h->name, "arc-seal", 8) == 0)
            kind = 0;
        else if (h->name_len == 21 && strncasecmp(h->name, "arc-message-signature", 21) == 0)
            kind = 1;
        else if (h->name_len == 26 && strncasecmp(h->name, "arc-authentication-results", 26) == 0)
            kind = 2;
        else
            continue;
        c->any = true;
        int inst = 0;
        sig_tags t;
        const char *err;
        bool ok = true;
        if (kind == 2) {
            size_t after;
            inst = aar_instance(h, &after);
        } else {
            ok = tags_parse(a, h->value, h->value_len, &t, &err) == ST_OK;
            if (ok)
                inst = tag_instance(tags_get(&t, "i"));
            else if (!c->broken)
                c->broken = arena_printf(a, "malformed %s: %s", kind ? "AMS" : "AS", err);
        }
        if (!inst) {
            if (!c->broken)
                c->broken = arena_printf(a, "%s without a valid instance",
                                         kind == 0 ? "AS" : kind == 1 ? "AMS" : "AAR");
            continue;
        }
        arc_set *s = &c->set[inst];
        int *slot = kind == 0 ? &s->as : kind == 1 ? &s->ams : &s->aar;
        if (*slot >= 0 && !c->broken)
            c->broken = arena_printf(a, "duplicate %s for i=%d",
                                     kind == 0 ? "AS" : kind == 1 ? "AMS" : "AAR", inst);
        *slot = k;
        if (kind == 0 && ok) {
            s->as_tags = t;
            s->as_ok = true;
        }
        if (inst > c->n)
            c->n = inst;
    }
    for (int i = 1; i <= c->n && !c->broken; i++)
        if (c->set[i].as < 0 || c->set[i].ams < 0 || c->set[i].aar < 0)
            c->broken = arena_printf(a, "incomplete ARC set i=%d", i);
}

static const char *chain_domains(arena *a, const arc_chain *c)
{
    gstr g;
    gstr_init(&g, a, 64);
    for (int i = 1; i <= c->n; i++) {
        const char *d = c->set[i].as_ok ? tags_get(&c->set[i].as_tags, "d") : NULL;
        if (i > 1)
            gstr_catc(&g, ':');
        if (d)
            for (const char *p = d; *p; p++) {
                if (*p == ':')
                    gstr_catc(&g, ':');
                gstr_catc(&g, *p);
            }
    }
    return g.s;
}

/* ---- AMS ------------------------------------------------------------------ */

static bool ams_verify(arena *a, const mail_msg *m, int idx, const arc_verify_opts *o,
                       dkim_bh_cache *cache, const char **why, bool *temp)
{
    const mail_header *h = &m->hdr[idx];
    dkim_sig s;
    const char *err = NULL;
    if (dkim_sig_parse(a, h->value, h->value_len, &s, &err) != ST_OK) {
        *why = err;
        return false;
    }
    /* ARC is relaxed/relaxed in practice; a missing c= means that here (as
     * dkimpy, which generated the ValiMail suite, does), not simple/simple */
    if (!tags_get(&s.tags, "c") && s.tags.n < TAGS_MAX)
        s.tags.t[s.tags.n++] = (sig_tag){ "c", "relaxed/relaxed" };
    if (dkim_sig_check_common(a, &s, &err) != ST_OK) {
        *why = err;
        return false;
    }
    if (s.hash == HASH_SHA1) {
        *why = "rsa-sha1 is not allowed in ARC";
        return false;
    }
    for (int k = 0; k < s.nh; k++)
        if (strcasecmp(s.h[k], "arc-seal") == 0) {
            *why = "AMS signs an ARC-Seal";
            return false;
        }
    dkim_verify_opts vo = { .dns = o->dns, .now = o->now, .min_rsa_bits = o->min_rsa_bits,
                            .min_ed25519_bits = 250, .strict = true, .cache = cache };
    dkim_result r;
    memset(&r, 0, sizeof r);
    r.identity = arena_printf(a, "@%s", s.d);
    r.reason = r.detail = "";
    dkim_verify_parsed(a, m, h, &s, &vo, &r);
    if (r.status == DKIM_PASS)
        return true;
    *temp = r.temperror;
    *why = *r.reason ? r.reason : r.detail;
    return false;
}

/* ---- AS ------------------------------------------------------------------- */

/* Fetch the key for d/s, check it like DKIM does, and verify sig over dig. */
static bool key_verify(arena *a, const arc_verify_opts *o, const char *d, const char *sel,
                       sig_keytype kt, const unsigned char *dig, size_t diglen,
                       const unsigned char *sig, size_t siglen, const char **why, bool *temp)
{
    dkim_key key;
    const char *err;
    status st = dkim_key_fetch(a, &o->dns, sel, d, &key, &err);
    if (st != ST_OK) {
        *temp = st == ST_DEFER;
        *why = st == ST_FAIL ? "key record syntax" : "no key";
        return false;
    }
    if (key.revoked || key.kt != kt) {
        *why = key.revoked ? "key revoked" : "key type mismatch";
        return false;
    }
    sig_key *pk = key_load_public(a, key.kt, key.p, key.plen, &err);
    if (!pk) {
        *why = "key data syntax";
        return false;
    }
    bool ok = true;
    if (kt == KEY_RSA && key_bits(pk) < o->min_rsa_bits) {
        *why = "key too short";
        ok = false;
    } else if (!sig_verify(pk, HASH_SHA256, dig, diglen, sig, siglen)) {
        *why = "signature does not verify";
        ok = false;
    }
    key_free(pk);
    return ok;
}

/* Hash of the ARC sets 1..upto for the seal of instance upto: AAR, AMS,
 * AS of each, relaxed; the last AS (sealhdr) with b= emptied, no CRLF. */
static size_t seal_hash(arena *a, const mail_msg *m, const arc_chain *c, int upto,
                        const mail_header *extra_aar, const mail_header *extra_ams,
                        const mail_header *sealhdr, unsigned char *out)
{
    gstr g;
    gstr_init(&g, a, 4096);
    for (int j = 1; j <= upto; j++) {
        bool last = j == upto;
        if (!last && (c->set[j].aar < 0 || c->set[j].ams < 0 || c->set[j].as < 0))
            continue;   /* sealing a broken chain with cv=fail: only ours */
        const mail_header *aar = last && extra_aar ? extra_aar : &m->hdr[c->set[j].aar];
        const mail_header *ams = last && extra_ams ? extra_ams : &m->hdr[c->set[j].ams];
        canon_header(&g, CANON_RELAXED, aar);
        canon_header(&g, CANON_RELAXED, ams);
        if (last) {
            mail_header st;
            strip_b_value(a, sealhdr, &st);
            canon_header(&g, CANON_RELAXED, &st);
            gstr_truncate(&g, g.len - 2);
        } else {
            canon_header(&g, CANON_RELAXED, &m->hdr[c->set[j].as]);
        }
    }
    return hash_buf(HASH_SHA256, g.s, g.len, out);
}

/* Checks of one AS's tags; cv is returned. */
static bool as_check(arena *a, const arc_set *s, int inst, const char **cv, sig_keytype *kt,
                     unsigned char **sig, size_t *siglen, const char **why)
{
    if (!s->as_ok) {
        *why = "malformed AS";
        return false;
    }
    const sig_tags *t = &s->as_tags;
    const char *alg = tags_get(t, "a"), *b = tags_get(t, "b"), *d = tags_get(t, "d");
    const char *sel = tags_get(t, "s"), *ts = tags_get(t, "t");
    *cv = tags_get(t, "cv");
    if (!alg || !b || !d || !sel || !*cv) {
        *why = "AS lacks a required tag";
        return false;
    }
    if (tags_get(t, "h")) {
        *why = "AS has an h= tag";
        return false;
    }
    if (strcmp(alg, "rsa-sha256") == 0)
        *kt = KEY_RSA;
    else if (strcmp(alg, "ed25519-sha256") == 0)
        *kt = KEY_ED25519;
    else {
        *why = "AS algorithm not supported";
        return false;
    }
    if (strcmp(*cv, "none") != 0 && strcmp(*cv, "pass") != 0 && strcmp(*cv, "fail") != 0) {
        *why = "AS cv= invalid";
        return false;
    }
    if (!domain_syntax_ok(d) || !*sel) {
        *why = "AS d= or s= invalid";
        return false;
    }
    if (ts) {
        if (!*ts || strlen(ts) > 18 || strspn(ts, "0123456789") != strlen(ts)) {
            *why = "AS t= invalid";
            return false;
        }
    }
    if (!(*sig = b64_decode(a, str_nows(a, b), siglen)) || !*siglen) {
        *why = "AS b= invalid";
        return false;
    }
    (void)inst;
    return true;
}

/* ---- verification ------------------------------------------------------------- */

static void fail(arc_result *r, const char *why)
{
    r->state = ARC_FAIL;
    r->reason = why;
}

void arc_verify(arena *a, const mail_msg *m, const arc_verify_opts *o, arc_result *r)
{
    memset(r, 0, sizeof *r);
    r->reason = "";
    r->domains = "";
    arc_chain *c = arena_calloc(a, sizeof *c);
    chain_collect(a, m, c);
    if (!c->any) {
        r->state = ARC_NONE;
        return;
    }
    r->instances = c->n;
    r->domains = chain_domains(a, c);
    if (c->broken) {
        fail(r, c->broken);
        return;
    }
    const arc_set *top = &c->set[c->n];
    if (top->as_ok)
        r->as_domain = tags_get(&top->as_tags, "d");
    const char *cv = top->as_ok ? tags_get(&top->as_tags, "cv") : NULL;
    if (cv && strcmp(cv, "fail") == 0) {
        fail(r, arena_printf(a, "i=%d seal has cv=fail", c->n));
        return;
    }
    /* every seal's shape and cv (RFC 8617 5.2 step 3) */
    sig_keytype kts[ARC_MAX_INSTANCE + 1];
    unsigned char *sigs[ARC_MAX_INSTANCE + 1];
    size_t siglens[ARC_MAX_INSTANCE + 1];
    for (int i = 1; i <= c->n; i++) {
        const char *why;
        if (!as_check(a, &c->set[i], i, &cv, &kts[i], &sigs[i], &siglens[i], &why)) {
            fail(r, arena_printf(a, "i=%d %s", i, why));
            return;
        }
        if ((i == 1 && strcmp(cv, "none") != 0) || (i > 1 && strcmp(cv, "pass") != 0)) {
            fail(r, arena_printf(a, "i=%d seal cv=%s is wrong", i, cv));
            return;
        }
    }
    /* the newest AMS */
    const char *why = NULL;
    bool temp = false;
    dkim_bh_cache *cache = arena_calloc(a, sizeof *cache);
    if (!ams_verify(a, m, top->ams, o, cache, &why, &temp)) {
        r->temperror = temp;
        fail(r, arena_printf(a, "i=%d AMS: %s", c->n, why));
        return;
    }
    {
        sig_tags t;
        const char *e;
        if (tags_parse(a, m->hdr[top->ams].value, m->hdr[top->ams].value_len, &t, &e) == ST_OK)
            r->ams_domain = tags_get(&t, "d");
    }
    /* oldest pass: older AMSes while they still validate */
    r->oldest_pass = c->n;
    for (int i = c->n - 1; i >= 1; i--) {
        bool t2 = false;
        if (!ams_verify(a, m, c->set[i].ams, o, cache, &why, &t2))
            break;
        r->oldest_pass = i;
    }
    /* every seal, newest first */
    for (int i = c->n; i >= 1; i--) {
        unsigned char dig[EVP_MAX_MD_SIZE];
        size_t dl = seal_hash(a, m, c, i, NULL, NULL, &m->hdr[c->set[i].as], dig);
        const sig_tags *t = &c->set[i].as_tags;
        if (!key_verify(a, o, tags_get(t, "d"), tags_get(t, "s"), kts[i], dig, dl, sigs[i],
                        siglens[i], &why, &temp)) {
            r->temperror = temp;
            fail(r, arena_printf(a, "i=%d AS: %s", i, why));
            return;
        }
    }
    r->state = ARC_PASS;
}

void arc_authres(arena *a, const arc_result *r, authres_result *out)
{
    memset(out, 0, sizeof *out);
    out->method = "arc";
    out->result = r->temperror && r->state == ARC_FAIL ? "temperror" : arc_state_name(r->state);
    if (r->state == ARC_FAIL && r->reason && *r->reason)
        out->reason = r->reason;
    if (r->state == ARC_PASS) {
        out->comment = arena_printf(a, "i=%d", r->instances);
        out->props = arena_alloc(a, sizeof(authres_prop));
        /* RFC 8617 / IANA: 0 when every AMS validates, else the oldest
         * validating instance (Exim's $arc_oldest_pass is 1 in the first case) */
        out->props[0] = (authres_prop){ "header", "oldest-pass",
                                        arena_printf(a, "%d", r->oldest_pass <= 1 ? 0
                                                                                : r->oldest_pass) };
        out->nprops = 1;
    }
}

/* ---- sealing ---------------------------------------------------------------- */

char *arc_build_aar(arena *a, const mail_msg *m, const char *srv_id, int instance)
{
    gstr g;
    gstr_init(&g, a, 512);
    bool found = false;
    int nres = 0;
    gstr_printf(&g, "i=%d; %s;", instance, srv_id);
    for (int i = mail_find(m, "authentication-results", 0); i >= 0;
         i = mail_find(m, "authentication-results", i + 1)) {
        authres ar;
        char *err;
        authres_parse(a, m->hdr[i].value, m->hdr[i].value_len, &ar, &err);
        if (!ar.authserv_id || strcasecmp(ar.authserv_id, srv_id) != 0)
            continue;   /* another ADMD's (possibly malformed) field */
        found = true;
        for (int k = 0; k < ar.nres; k++) {
            gstr_printf(&g, "%s\r\n\t%s", nres ? ";" : "", ar.res[k].raw);
            nres++;
        }
    }
    if (!found)
        return NULL;
    if (!nres) {
        gstr_truncate(&g, g.len - 1);
        gstr_cat(&g, "; none");
    }
    return g.s;
}

/* arc= result of the newest A-R of the ADMD, or NULL. */
static const char *authres_arc(arena *a, const mail_msg *m, const char *srv_id)
{
    for (int i = mail_find(m, "authentication-results", 0); i >= 0;
         i = mail_find(m, "authentication-results", i + 1)) {
        authres ar;
        char *err;
        authres_parse(a, m->hdr[i].value, m->hdr[i].value_len, &ar, &err);
        if (!ar.authserv_id || strcasecmp(ar.authserv_id, srv_id) != 0)
            continue;
        const authres_result *r = authres_find(&ar, "arc");
        if (r && (strcmp(r->result, "pass") == 0 || strcmp(r->result, "fail") == 0 ||
                  strcmp(r->result, "none") == 0))
            return r->result;
    }
    return NULL;
}

/* Parse one synthetic header field "Name: value\r\n". */
static mail_header *one_header(arena *a, const char *field)
{
    mail_msg fm;
    char *err;
    if (mail_parse(a, field, strlen(field), &fm, &err) != ST_OK || fm.nhdr != 1)
        return NULL;
    return &fm.hdr[0];
}

/* value with "b=;" (or a final "b=") filled with b64 */
static char *fill_b(arena *a, const char *value, const char *b64)
{
    const char *p = strstr(value, "b=;");
    if (!p)
        return NULL;
    return arena_printf(a, "%.*sb=%s%s", (int)(p - value), value, b64, p + 2);
}

/* The cv= for the new seal, or NULL with *err when the message must not
 * be sealed. */
static const char *seal_cv(arena *a, const mail_msg *m, const arc_chain *c,
                           const arc_sign_opts *o, const char **err, bool *temp)
{
    if (c->n >= 1 && c->set[c->n].as_ok) {
        const char *top = tags_get(&c->set[c->n].as_tags, "cv");
        if (top && strcmp(top, "fail") == 0) {
            *err = "the ARC chain has already failed (cv=fail): not sealing";
            return NULL;
        }
    }
    if (c->n >= ARC_MAX_INSTANCE) {
        *err = "the ARC chain is at its maximum length";
        return NULL;
    }
    if (!c->any)
        return "none";
    const char *cv = o->cv ? o->cv : authres_arc(a, m, o->srv_id);
    if (cv && strcmp(cv, "none") != 0)
        return cv;
    /* unknown (or "none" although there is a chain): validate it */
    arc_result vr;
    arc_verify(a, m, &o->verify, &vr);
    if (vr.temperror) {
        *temp = true;
        *err = "ARC chain validation failed temporarily";
        return NULL;
    }
    return arc_state_name(vr.state);
}

/* Sign the digest dig and put the signature into the empty "b=;" of
 * value. */
static char *sign_value(arena *a, const sig_key *key, const char *value, const unsigned char *dig,
                        size_t dl, const char **err)
{
    size_t sl;
    unsigned char *sig = sig_sign(a, key, HASH_SHA256, dig, dl, &sl);
    if (!sig) {
        *err = "signing failed";
        return NULL;
    }
    return fill_b(a, value, b64_encode(a, sig, sl));
}

/* The ARC-Message-Signature field for instance inst; aar_h is the new
 * AAR, which the AMS may sign. */
static char *build_ams(arena *a, const mail_msg *m, const arc_sign_opts *o, int inst,
                       const mail_header *aar_h, const char *alg, const char *tstamp,
                       const char **err)
{
    int nn;
    const char **names = dkim_expand_headers(a, m, o->headers, &nn);
    gstr h;
    gstr_init(&h, a, 256);
    for (int i = 0; i < nn; i++) {
        if (strcmp(names[i], "arc-seal") == 0) {
            *err = "the AMS must not sign ARC-Seal";
            return NULL;
        }
        gstr_printf(&h, "%s%s", i ? ":" : "", names[i]);
    }
    /* the message as the AMS sees it: the new AAR on top */
    mail_msg m2 = *m;
    m2.hdr = arena_alloc(a, sizeof(mail_header) * (size_t)(m->nhdr + 1));
    m2.hdr[0] = *aar_h;
    memcpy(m2.hdr + 1, m->hdr, sizeof(mail_header) * (size_t)m->nhdr);
    m2.nhdr = m->nhdr + 1;

    unsigned char bh[EVP_MAX_MD_SIZE], dig[EVP_MAX_MD_SIZE];
    size_t bhl = dkim_body_hash(a, m, CANON_RELAXED, HASH_SHA256, -1, bh, err);
    char *v = arena_printf(a, "a=%s; b=; bh=%s; c=relaxed/relaxed; d=%s; h=%s; i=%d; s=%s%s%s",
                           alg, b64_encode(a, bh, bhl), o->domain, h.s, inst, o->selector, tstamp,
                           o->expire >= 0 ? arena_printf(a, "; x=%lld", o->expire) : "");
    mail_header *ams_h = one_header(a, arena_printf(a, "ARC-Message-Signature: %s\r\n", v));
    size_t dl = dkim_header_hash(a, &m2, names, nn, CANON_RELAXED, HASH_SHA256, ams_h, -1, dig);
    v = sign_value(a, o->key, v, dig, dl, err);
    return v ? fold_tags(a, "ARC-Message-Signature", v, false) : NULL;
}

char *arc_seal(arena *a, const mail_msg *m, const arc_sign_opts *o, const char **err, bool *temp)
{
    *temp = false;
    if (!o->srv_id || !*o->srv_id || !o->domain || !o->selector || !o->key) {
        *err = "srv-id, domain, selector and key are required";
        return NULL;
    }
    arc_chain *c = arena_calloc(a, sizeof *c);
    chain_collect(a, m, c);
    const char *cv = seal_cv(a, m, c, o, err, temp);
    if (!cv)
        return NULL;
    int inst = c->n + 1;
    char *aar = arc_build_aar(a, m, o->srv_id, inst);
    if (!aar) {
        *err = arena_printf(a, "no Authentication-Results field for %s", o->srv_id);
        return NULL;
    }
    char *aar_field = arena_printf(a, "ARC-Authentication-Results: %s\r\n", aar);
    mail_header *aar_h = one_header(a, aar_field);
    const char *alg = key_type(o->key) == KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256";
    const char *tstamp = o->timestamp >= 0 ? arena_printf(a, "; t=%lld", o->timestamp) : "";

    char *ams_field = build_ams(a, m, o, inst, aar_h, alg, tstamp, err);
    if (!ams_field)
        return NULL;
    char *as_v = arena_printf(a, "a=%s; b=; cv=%s; d=%s; i=%d; s=%s%s", alg, cv, o->domain,
                              inst, o->selector, tstamp);
    mail_header *as_h = one_header(a, arena_printf(a, "ARC-Seal: %s\r\n", as_v));
    if (c->broken || strcmp(cv, "fail") == 0) {
        /* sealing a failed chain: the seal covers only this set (the chain
         * ends here; validators stop at cv=fail) */
        arc_chain *solo = arena_calloc(a, sizeof *solo);
        for (int i = 0; i <= ARC_MAX_INSTANCE; i++)
            solo->set[i].as = solo->set[i].ams = solo->set[i].aar = -1;
        c = solo;
    }
    unsigned char dig[EVP_MAX_MD_SIZE];
    size_t dl = seal_hash(a, m, c, inst, aar_h, one_header(a, ams_field), as_h, dig);
    as_v = sign_value(a, o->key, as_v, dig, dl, err);
    if (!as_v)
        return NULL;
    return arena_printf(a, "%s%s%s", fold_tags(a, "ARC-Seal", as_v, false), ams_field, aar_field);
}
