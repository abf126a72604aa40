/* sig_test.c: tag lists, key records, canonicalization, DKIM / ARC /
 * DomainKeys sign-and-verify round trips against an injected resolver. */
#include "check.h"
#include "msgauth/sig/arc.h"
#include "msgauth/sig/dk.h"
#include "msgauth/sig/dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

/* ---- a mock resolver: TXT records from a table ----------------------------- */

typedef struct mock_rec { const char *name, *txt; } mock_rec;   /* txt "SERVFAIL": defer */

static mock_rec mock_zone[16];
static int mock_n, mock_queries;

static status mock_lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    (void)ctx;
    mock_queries++;
    memset(out, 0, sizeof *out);
    out->rr = arena_calloc(a, sizeof(dns_rr) * 4);
    for (int i = 0; i < mock_n; i++) {
        if (strcmp(mock_zone[i].name, name) != 0)
            continue;
        if (strcmp(mock_zone[i].txt, "SERVFAIL") == 0) {
            out->st = ST_DEFER;
            return ST_DEFER;
        }
        if (type != DNS_T_TXT || out->nrr == 4)
            continue;
        dns_rr *rr = &out->rr[out->nrr++];
        rr->type = DNS_T_TXT;
        rr->text = mock_zone[i].txt;
        rr->text_len = strlen(mock_zone[i].txt);
    }
    out->st = out->nrr ? ST_OK : ST_NOTFOUND;
    return out->st;
}

static void mock_set(const char *name, const char *txt)
{
    for (int i = 0; i < mock_n; i++)
        if (strcmp(mock_zone[i].name, name) == 0) {
            mock_zone[i].txt = txt;
            return;
        }
    mock_zone[mock_n++] = (mock_rec){ name, txt };
}

static const dns_iface mock = { mock_lookup, NULL };

/* ---- tag lists -------------------------------------------------------------- */

static void test_tags(arena *a)
{
    static const struct { const char *in; status st; int n; const char *k, *v; } rows[] = {
        { "a=b; c = d ;", ST_OK, 2, "c", "d" },
        { " v=1;\r\n\th=from : to; b= abc\r\n def ", ST_OK, 3, "b", "abc\r\n def" },
        { "a=b;;c=d", ST_FAIL, 0, NULL, NULL },
        { "a=b; a=c", ST_FAIL, 0, NULL, NULL },
        { "=b", ST_FAIL, 0, NULL, NULL },
        { "a b=c", ST_FAIL, 0, NULL, NULL },
        { "a", ST_FAIL, 0, NULL, NULL },
        { "", ST_OK, 0, NULL, NULL },
        { "x=", ST_OK, 1, "x", "" },
        { "A=1; a=2", ST_OK, 2, "A", "1" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sig_tags t;
        const char *err = NULL;
        status st = tags_parse(a, rows[i].in, strlen(rows[i].in), &t, &err);
        CHECK(st == rows[i].st, "tags [%s]: status %d", rows[i].in, st);
        if (st == ST_OK) {
            CHECK(t.n == rows[i].n, "tags [%s]: n %d", rows[i].in, t.n);
            if (rows[i].k)
                CHECK_STR(tags_get(&t, rows[i].k), rows[i].v, rows[i].in);
        }
    }
}

static void test_keyrec(arena *a)
{
    static const struct { const char *in; status st; bool revoked, testing, strict; int kt; } rows[] = {
        { "v=DKIM1; k=rsa; p=AAAA", ST_OK, false, false, false, KEY_RSA },
        { "p=AAAA", ST_OK, false, false, false, KEY_RSA },
        { "v=DKIM1; k=ed25519; t=y:s; p=AAAA", ST_OK, false, true, true, KEY_ED25519 },
        { "v=DKIM1; p=", ST_OK, true, false, false, KEY_RSA },
        { "v=DKIM2; p=AAAA", ST_FAIL, 0, 0, 0, 0 },
        { "k=rsa; v=DKIM1; p=AAAA", ST_FAIL, 0, 0, 0, 0 },   /* v= must come first */
        { "k=dsa; p=AAAA", ST_FAIL, 0, 0, 0, 0 },
        { "v=DKIM1; k=rsa", ST_FAIL, 0, 0, 0, 0 },
        { "v=DKIM1; p=!!!", ST_FAIL, 0, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dkim_key k;
        const char *err = NULL;
        status st = dkim_key_parse(a, rows[i].in, strlen(rows[i].in), &k, &err);
        CHECK(st == rows[i].st, "key [%s]: status %d", rows[i].in, st);
        if (st == ST_OK) {
            CHECK(k.revoked == rows[i].revoked && k.testing == rows[i].testing &&
                  k.strict == rows[i].strict && (int)k.kt == rows[i].kt, "key [%s] flags", rows[i].in);
        }
    }
}

/* RFC 6376 3.4.5 examples */
static void test_canon(arena *a)
{
    static const char msg[] = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
    static const struct { const char *c, *hdr, *body; } rows[] = {
        { "relaxed/relaxed", "a:X\r\nb:Y Z\r\n", " C\r\nD E\r\n" },
        { "simple/simple", "A: X\r\nB : Y\t\r\n\tZ  \r\n", " C \r\nD \t E\r\n" },
        { "relaxed/simple", "a:X\r\nb:Y Z\r\n", " C \r\nD \t E\r\n" },
    };
    mail_msg m;
    char *err;
    mail_parse(a, msg, sizeof msg - 1, &m, &err);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        canon hc, bc;
        CHECK(canon_parse(rows[i].c, &hc, &bc), "canon %s", rows[i].c);
        gstr g;
        gstr_init(&g, a, 64);
        for (int k = 0; k < m.nhdr; k++)
            canon_header(&g, hc, &m.hdr[k]);
        CHECK_STR(g.s, rows[i].hdr, rows[i].c);
        size_t n;
        char *b = canon_body(a, bc, m.body, m.body_len, &n);
        CHECK(n == strlen(rows[i].body) && memcmp(b, rows[i].body, n) == 0, "body %s", rows[i].c);
    }
    size_t n;
    canon_body(a, CANON_SIMPLE, "", 0, &n);
    CHECK(n == 2, "simple empty body is CRLF");
    canon_body(a, CANON_RELAXED, "\r\n\r\n", 4, &n);
    CHECK(n == 0, "relaxed empty body is empty");
    canon c1, c2;
    CHECK(!canon_parse("relaxed/bogus", &c1, &c2), "bad canon");
    CHECK(canon_parse("relaxed", &c1, &c2) && c2 == CANON_SIMPLE, "body default simple");
}

static void test_b64(arena *a)
{
    size_t n;
    unsigned char *d = b64_decode(a, "aGVs\r\n bG8=", &n);
    CHECK(d && n == 5 && memcmp(d, "hello", 5) == 0, "b64 decode with spaces");
    CHECK(b64_decode(a, "aGV*", &n) == NULL, "b64 bad char");
    CHECK(b64_decode(a, "a=GV", &n) == NULL, "b64 data after pad");
    CHECK_STR(b64_encode(a, (const unsigned char *)"hello", 5), "aGVsbG8=", "b64 encode");
}

/* ---- round trips -------------------------------------------------------------- */

static sig_key *gen_key(arena *a, int type, char **pub)
{
    EVP_PKEY *pk = type == KEY_RSA ? EVP_RSA_gen(1024) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long len = BIO_get_mem_data(b, &pem);
    const char *err;
    sig_key *k = key_load_private(a, pem, (size_t)len, &err);
    BIO_free(b);
    EVP_PKEY_free(pk);
    *pub = arena_printf(a, "v=DKIM1; k=%s; p=%s", type == KEY_RSA ? "rsa" : "ed25519",
                        key_public_b64(a, k));
    return k;
}

static const char test_msg[] =
    "From: Joe <joe@example.com>\r\nTo: x@example.net\r\nSubject: test\r\n\r\nHello\r\n";

static mail_msg with_field(arena *a, const char *field, const char *msg)
{
    char *all = arena_printf(a, "%s%s", field, msg);
    mail_msg m;
    char *err;
    mail_parse(a, all, strlen(all), &m, &err);
    return m;
}

static void test_dkim_roundtrip(arena *a)
{
    for (int type = KEY_RSA; type <= KEY_ED25519; type++) {
        char *pub;
        sig_key *k = gen_key(a, type, &pub);
        mock_set("sel._domainkey.example.com", pub);
        mail_msg m;
        char *err;
        mail_parse(a, test_msg, strlen(test_msg), &m, &err);
        static const struct { canon hc, bc; long long l; } modes[] = {
            { CANON_RELAXED, CANON_RELAXED, -1 }, { CANON_SIMPLE, CANON_SIMPLE, -1 },
            { CANON_RELAXED, CANON_SIMPLE, 3 },
        };
        for (size_t i = 0; i < 3; i++) {
            dkim_sign_opts so = { .domain = "example.com", .selector = "sel", .key = k,
                                  .hash = HASH_SHA256, .hc = modes[i].hc, .bc = modes[i].bc,
                                  .timestamp = 1000, .expire = -1, .bodylength = modes[i].l };
            const char *e = NULL;
            char *f = dkim_sign(a, &m, &so, &e);
            CHECK(f != NULL, "sign: %s", e ? e : "");
            if (!f)
                continue;
            dkim_verify_opts vo = { .dns = mock, .now = 2000, .min_rsa_bits = 1024,
                                    .min_ed25519_bits = 250 };
            mail_msg sm = with_field(a, f, test_msg);
            dkim_result *r;
            int n = dkim_verify(a, &sm, &vo, &r);
            CHECK(n == 1 && r[0].status == DKIM_PASS, "type %d mode %zu: %s %s", type, i,
                  n ? dkim_status_name(r[0].status) : "-", n ? r[0].reason : "");
            /* l= lets appended text pass; changed text fails */
            mail_msg app = with_field(a, f, "From: Joe <joe@example.com>\r\nTo: x@example.net\r\n"
                                            "Subject: test\r\n\r\nHello\r\nmore\r\n");
            n = dkim_verify(a, &app, &vo, &r);
            CHECK(n == 1 && r[0].status == (modes[i].l >= 0 ? DKIM_PASS : DKIM_FAIL),
                  "append mode %zu: %s", i, r[0].reason);
            mail_msg hdr = with_field(a, f, "From: Joe <joe@example.com>\r\nTo: x@example.net\r\n"
                                            "Subject: tesT\r\n\r\nHello\r\n");
            n = dkim_verify(a, &hdr, &vo, &r);
            CHECK(n == 1 && r[0].status == DKIM_FAIL && strcmp(r[0].reason, "signature_incorrect") == 0,
                  "header change: %s", r[0].reason);
            /* expired signature */
            vo.now = 3000;
            so.expire = 2500;
            f = dkim_sign(a, &m, &so, &e);
            sm = with_field(a, f, test_msg);
            n = dkim_verify(a, &sm, &vo, &r);
            CHECK(n == 1 && r[0].status == DKIM_INVALID, "expired");
        }
        /* key record variants */
        static const struct { const char *rec; dkim_status st; const char *reason; bool temp; } keys[] = {
            { "v=DKIM1; p=", DKIM_INVALID, "pubkey_unavailable", false },
            { "SERVFAIL", DKIM_INVALID, "pubkey_unavailable", true },
            { "v=DKIM1; k=rsa; s=chat; p=AAAA", DKIM_INVALID, "pubkey_dns_syntax", false },
            { "v=DKIM1; h=sha1; p=AAAA", DKIM_INVALID, "pubkey_dns_syntax", false },
            { "garbage", DKIM_INVALID, "pubkey_dns_syntax", false },
        };
        dkim_sign_opts so = { .domain = "example.com", .selector = "sel", .key = k,
                              .hash = HASH_SHA256, .hc = CANON_RELAXED, .bc = CANON_RELAXED,
                              .timestamp = -1, .expire = -1, .bodylength = -1 };
        const char *e;
        mail_msg sm = with_field(a, dkim_sign(a, &m, &so, &e), test_msg);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            mock_set("sel._domainkey.example.com", keys[i].rec);
            dkim_verify_opts vo = { .dns = mock, .min_rsa_bits = 1024, .min_ed25519_bits = 250 };
            dkim_result *r;
            dkim_verify(a, &sm, &vo, &r);
            CHECK(r[0].status == keys[i].st && strcmp(r[0].reason, keys[i].reason) == 0 &&
                  r[0].temperror == keys[i].temp, "key %s: %s", keys[i].rec, r[0].reason);
        }
        mock_set("sel._domainkey.example.com", pub);
        {
            /* h= naming DKIM-Signature: the signature being verified is
             * never selected for itself */
            dkim_sign_opts so2 = so;
            so2.headers = "from:subject:dkim-signature";
            const char *e2;
            mail_msg sm2 = with_field(a, dkim_sign(a, &m, &so2, &e2), test_msg);
            dkim_verify_opts vo = { .dns = mock, .min_rsa_bits = 1024, .min_ed25519_bits = 250 };
            dkim_result *r;
            dkim_verify(a, &sm2, &vo, &r);
            CHECK(r[0].status == DKIM_PASS, "h= with dkim-signature: %s", r[0].reason);
        }
        if (type == KEY_RSA) {
            dkim_verify_opts vo = { .dns = mock, .min_rsa_bits = 2048 };
            dkim_result *r;
            dkim_verify(a, &sm, &vo, &r);
            CHECK(r[0].status == DKIM_INVALID && strcmp(r[0].reason, "pubkey_too_short") == 0,
                  "min key size: %s", r[0].reason);
        }
        authres_result ar;
        dkim_result pr = { .status = DKIM_PASS, .domain = "example.com", .selector = "sel",
                           .identity = "@example.com", .key_bits = 1024, .reason = "" };
        dkim_authres(a, &pr, &ar);
        CHECK_STR(authres_result_text(a, &ar),
                  "dkim=pass (1024-bit key) header.d=example.com header.i=@example.com header.s=sel",
                  "dkim authres");
        key_free(k);
    }
    /* unsigned */
    mail_msg m;
    char *err;
    mail_parse(a, test_msg, strlen(test_msg), &m, &err);
    dkim_verify_opts vo = { .dns = mock };
    dkim_result *r;
    CHECK(dkim_verify(a, &m, &vo, &r) == 0, "no signatures");
}

static void test_arc_roundtrip(arena *a)
{
    char *pub;
    sig_key *k = gen_key(a, KEY_RSA, &pub);
    mock_set("arc._domainkey.example.org", pub);
    const char *msg = "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a@b.example\r\n"
                      "Authentication-Results: other.example; garbage;;\r\n"
                      "Authentication-Results: MX.example.org; dkim=pass header.d=b.example\r\n"
                      "From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n";
    mail_msg m;
    char *err;
    mail_parse(a, msg, strlen(msg), &m, &err);
    CHECK_STR(arc_build_aar(a, &m, "mx.example.org", 1),
              "i=1; mx.example.org;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n\tdkim=pass header.d=b.example",
              "AAR from every A-R of the ADMD");
    CHECK(arc_build_aar(a, &m, "nobody.example", 1) == NULL, "no A-R for ADMD");
    arc_sign_opts so = { .srv_id = "mx.example.org", .domain = "example.org", .selector = "arc",
                         .key = k, .headers = "from:subject", .timestamp = 100, .expire = -1,
                         .verify = { .dns = mock, .min_rsa_bits = 1024 } };
    const char *e = NULL;
    bool temp;
    char *set = arc_seal(a, &m, &so, &e, &temp);
    CHECK(set != NULL, "seal: %s", e ? e : "");
    mail_msg sm = with_field(a, set, msg);
    arc_verify_opts vo = { .dns = mock, .min_rsa_bits = 1024 };
    arc_result r;
    arc_verify(a, &sm, &vo, &r);
    CHECK(r.state == ARC_PASS && r.instances == 1 && r.oldest_pass == 1, "arc i=1: %s", r.reason);
    CHECK_STR(r.domains, "example.org", "arc_domains");
    /* second hop */
    char *hop = arena_printf(a, "Authentication-Results: mx.example.org; arc=pass\r\n%s%s", set, msg);
    mail_msg m2;
    mail_parse(a, hop, strlen(hop), &m2, &err);
    char *set2 = arc_seal(a, &m2, &so, &e, &temp);
    CHECK(set2 && strstr(set2, "cv=pass"), "seal i=2");
    mail_msg sm2 = with_field(a, set2, hop);
    arc_verify(a, &sm2, &vo, &r);
    CHECK(r.state == ARC_PASS && r.instances == 2, "arc i=2: %s", r.reason);
    CHECK_STR(r.domains, "example.org:example.org", "arc_domains 2");
    /* tamper with the body: newest AMS fails */
    char *bad = arena_printf(a, "%s%s", set2, hop);
    char *p = strstr(bad, "body\r\n");
    *p = 'B';
    mail_msg sm3;
    mail_parse(a, bad, strlen(bad), &sm3, &err);
    arc_verify(a, &sm3, &vo, &r);
    CHECK(r.state == ARC_FAIL, "tampered body");
    /* none */
    arc_verify(a, &m, &vo, &r);
    CHECK(r.state == ARC_NONE, "no chain");
    authres_result ar;
    arc_result pr = { .state = ARC_PASS, .instances = 2, .oldest_pass = 1 };
    arc_authres(a, &pr, &ar);
    CHECK_STR(authres_result_text(a, &ar), "arc=pass (i=2) header.oldest-pass=0", "arc authres: all AMS pass");
    pr.oldest_pass = 2;
    arc_authres(a, &pr, &ar);
    CHECK_STR(authres_result_text(a, &ar), "arc=pass (i=2) header.oldest-pass=2", "arc authres: AMS(1) broken");
    key_free(k);
}

static void test_dk_roundtrip(arena *a)
{
    char *pub;
    sig_key *k = gen_key(a, KEY_RSA, &pub);
    mock_set("dk._domainkey.example.com", pub);
    mock_set("_domainkey.example.com", "o=-; t=y");
    const char *msg = "From: Joe <joe@example.com>\r\nSubject: x\r\n\r\nbody  text\r\n\r\n";
    mail_msg m;
    char *err;
    mail_parse(a, msg, strlen(msg), &m, &err);
    for (canon c = CANON_SIMPLE; c <= CANON_NOFWS; c += 2) {
        dk_sign_opts so = { .selector = "dk", .key = k, .c = c };
        const char *e = NULL;
        char *f = dk_sign(a, &m, &so, &e);
        CHECK(f != NULL, "dk sign: %s", e ? e : "");
        mail_msg sm = with_field(a, f, msg);
        dk_verify_opts vo = { .dns = mock };
        dk_result *r;
        int n = dk_verify(a, &sm, &vo, &r);
        CHECK(n == 1 && r[0].status == DK_GOOD && r[0].signsall && r[0].testing, "dk %s: %s",
              canon_name(c), r[0].result);
        CHECK_STR(r[0].sender_source, "from", "dk sender source");
    }
    dk_verify_opts vo = { .dns = mock };
    dk_result *r;
    dk_verify(a, &m, &vo, &r);
    CHECK(r[0].status == DK_NOSIG, "dk unsigned with policy: %s", dk_status_name(r[0].status));
    key_free(k);
}

int main(void)
{
    arena *a = arena_new("test", false);
    test_tags(a);
    test_keyrec(a);
    test_canon(a);
    test_b64(a);
    test_dkim_roundtrip(a);
    test_arc_roundtrip(a);
    test_dk_roundtrip(a);
    arena_free(a);
    return check_report("sig_test");
}
