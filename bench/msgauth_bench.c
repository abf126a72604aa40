/* msgauth_bench.c: DKIM sign and verify throughput of src/msgauth in one
 * process (no DNS: an in-memory resolver returns the key), for RSA-2048
 * and Ed25519 over 4 KB and 100 KB messages.  Prints operations per
 * second; bench/msgauth_bench.sh puts them beside `openssl speed`. */
#include "msgauth/sig/dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *bench_rec;

static status lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    (void)ctx; (void)name; (void)type;
    memset(out, 0, sizeof *out);
    out->rr = arena_calloc(a, sizeof(dns_rr));
    out->rr[0].type = DNS_T_TXT;
    out->rr[0].text = bench_rec;
    out->rr[0].text_len = strlen(bench_rec);
    out->nrr = 1;
    out->st = ST_OK;
    return ST_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *make_msg(size_t body)
{
    const char *h = "From: Joe <joe@example.com>\r\nTo: x@example.net\r\nSubject: benchmark\r\n"
                    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n";
    char *m = malloc(strlen(h) + body + 1);
    strcpy(m, h);
    char *p = m + strlen(h);
    for (size_t i = 0; i < body; i++)
        p[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
    p[body] = 0;
    return m;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    const char *kinds[] = { "rsa2048", "ed25519" };
    size_t sizes[] = { 4096, 102400 };
    for (int k = 0; k < 2; k++) {
        arena *ka = arena_new("key", false);
        EVP_PKEY *pk = k == 0 ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
        char *pem;
        long len = BIO_get_mem_data(b, &pem);
        const char *err;
        sig_key *key = key_load_private(ka, pem, (size_t)len, &err);
        BIO_free(b);
        EVP_PKEY_free(pk);
        bench_rec = arena_printf(ka, "v=DKIM1; k=%s; p=%s", k ? "ed25519" : "rsa",
                                 key_public_b64(ka, key));
        for (int s = 0; s < 2; s++) {
            char *raw = make_msg(sizes[s]);
            arena *a = arena_new("bench", false);
            mail_msg m;
            char *e;
            mail_parse(a, raw, strlen(raw), &m, &e);
            dkim_sign_opts so = { .domain = "example.com", .selector = "b", .key = key,
                                  .hash = HASH_SHA256, .hc = CANON_RELAXED, .bc = CANON_RELAXED,
                                  .timestamp = -1, .expire = -1, .bodylength = -1 };
            long n = 0;
            char *field = NULL;
            double t0 = now();
            while (now() - t0 < secs) {
                arena_reset(a);
                mail_parse(a, raw, strlen(raw), &m, &e);
                field = dkim_sign(a, &m, &so, &err);
                n++;
            }
            double sign_rate = (double)n / (now() - t0);
            char *signed_msg = malloc(strlen(field) + strlen(raw) + 1);
            strcpy(signed_msg, field);
            strcat(signed_msg, raw);
            dkim_verify_opts vo = { .dns = { lookup, NULL }, .min_rsa_bits = 1024,
                                    .min_ed25519_bits = 250 };
            n = 0;
            t0 = now();
            int ok = 1;
            while (now() - t0 < secs) {
                arena_reset(a);
                mail_parse(a, signed_msg, strlen(signed_msg), &m, &e);
                dkim_result *r;
                if (dkim_verify(a, &m, &vo, &r) != 1 || r[0].status != DKIM_PASS)
                    ok = 0;
                n++;
            }
            double verify_rate = (double)n / (now() - t0);
            printf("postern %-8s %4zuKB  sign %9.1f/s  verify %9.1f/s%s\n", kinds[k],
                   sizes[s] / 1024, sign_rate, verify_rate, ok ? "" : "  (VERIFY FAILED)");
            free(signed_msg);
            free(raw);
            arena_free(a);
        }
        key_free(key);
        arena_free(ka);
    }
    return 0;
}
