/* crypto.c: keys, digests, RSA and Ed25519 signatures over OpenSSL 3 EVP
 * for DKIM (RFC 6376, 8301, 8463), ARC and DomainKeys. */
#include "msgauth/sig/sigutil.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <limits.h>
#include <string.h>

struct sig_key {
    EVP_PKEY *pk;
    sig_keytype type;
};

static sig_key *wrap(arena *a, EVP_PKEY *pk)
{
    sig_key *k = arena_alloc(a, sizeof *k);
    k->pk = pk;
    k->type = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ? KEY_ED25519 : KEY_RSA;
    return k;
}

/* Encrypted keys are not supported: never prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

sig_key *key_load_private(arena *a, const char *data, size_t len, const char **err)
{
    if (len > INT_MAX) {
        *err = "key file too large";
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (pk) {
        int id = EVP_PKEY_get_base_id(pk);
        if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
            EVP_PKEY_free(pk);
            *err = "private key is neither RSA nor Ed25519";
            return NULL;
        }
        return wrap(a, pk);
    }
    /* base64 of a 32-byte Ed25519 seed (RFC 8463 / dkimpy format),
     * possibly followed by other lines */
    char *txt = arena_strndup(a, data, len);
    char *nl = strchr(txt, '\n');
    if (nl && nl[1] && strspn(nl, " \t\r\n") != strlen(nl))
        *nl = 0;
    size_t n;
    unsigned char *raw = b64_decode(a, txt, &n);
    if (raw && (n == 32 || n == 64)) {
        pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
        if (pk)
            return wrap(a, pk);
    }
    *err = "cannot read private key (unencrypted PEM or base64 Ed25519 seed expected)";
    return NULL;
}

/* One DER TLV at *p (within end): returns the content and its length,
 * advancing *p past it; NULL if malformed or not of the expected tag. */
static const unsigned char *der_take(const unsigned char **p, const unsigned char *end,
                                     unsigned char tag, size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2 || q[0] != tag)
        return NULL;
    size_t n = q[1];
    q += 2;
    if (n & 0x80) {
        int k = (int)(n & 0x7f);
        if (k < 1 || k > 3 || end - q < k)
            return NULL;
        n = 0;
        while (k--)
            n = (n << 8) | *q++;
    }
    if ((size_t)(end - q) < n)
        return NULL;
    *p = q + n;
    *len = n;
    return q;
}

/* The RSAPublicKey inside an RSA SubjectPublicKeyInfo, or NULL.  OpenSSL
 * 3's generic SPKI decoder costs about a millisecond per key; the PKCS#1
 * one, microseconds. */
static const unsigned char *spki_rsa(const unsigned char *der, size_t len, size_t *outlen)
{
    static const unsigned char rsa_oid[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                             0x0d, 0x01, 0x01, 0x01 };
    const unsigned char *p = der, *end = der + len;
    size_t n;
    const unsigned char *seq = der_take(&p, end, 0x30, &n);
    if (!seq || p != end)
        return NULL;
    p = seq;
    end = seq + n;
    const unsigned char *alg = der_take(&p, end, 0x30, &n);
    if (!alg || n < sizeof rsa_oid || memcmp(alg, rsa_oid, sizeof rsa_oid) != 0)
        return NULL;
    const unsigned char *bits = der_take(&p, end, 0x03, &n);
    if (!bits || p != end || n < 2 || bits[0] != 0)
        return NULL;
    *outlen = n - 1;
    return bits + 1;
}

static EVP_PKEY *rsa_pkcs1(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
    if (pk && p != der + len) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

sig_key *key_load_public(arena *a, sig_keytype kt, const unsigned char *der, size_t len,
                         const char **err)
{
    EVP_PKEY *pk = NULL;
    if (kt == KEY_ED25519) {
        if (len != 32) {
            *err = "Ed25519 public key is not 32 bytes";
            return NULL;
        }
        pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len);
    } else if (len < 1u << 20) {
        size_t inner;
        const unsigned char *rsa = spki_rsa(der, len, &inner);
        pk = rsa ? rsa_pkcs1(rsa, inner) : NULL;
        if (!pk) {                       /* other SPKI encodings: the slow path */
            const unsigned char *p = der;
            pk = d2i_PUBKEY(NULL, &p, (long)len);
            if (pk && (p != der + len || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)) {
                EVP_PKEY_free(pk);
                pk = NULL;
            }
        }
        if (!pk)                         /* a bare PKCS#1 RSAPublicKey */
            pk = rsa_pkcs1(der, len);
    }
    if (!pk) {
        *err = "public key data cannot be decoded";
        return NULL;
    }
    return wrap(a, pk);
}

void key_free(sig_key *k)
{
    if (k) {
        EVP_PKEY_free(k->pk);
        k->pk = NULL;
    }
}

sig_keytype key_type(const sig_key *k) { return k->type; }

int key_bits(const sig_key *k) { return EVP_PKEY_get_bits(k->pk); }

char *key_public_b64(arena *a, const sig_key *k)
{
    if (k->type == KEY_ED25519) {
        unsigned char raw[32];
        size_t n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(k->pk, raw, &n) != 1)
            return NULL;
        return b64_encode(a, raw, n);
    }
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pk, &der);
    if (n <= 0)
        return NULL;
    char *r = b64_encode(a, der, (size_t)n);
    OPENSSL_free(der);
    return r;
}

size_t hash_buf(sig_hash h, const void *data, size_t len, unsigned char *out)
{
    unsigned n = 0;
    EVP_Digest(data, len, out, &n, h == HASH_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
    return n;
}

unsigned char *sig_sign(arena *a, const sig_key *k, sig_hash h, const unsigned char *dig,
                        size_t diglen, size_t *siglen)
{
    unsigned char *out = NULL;
    size_t n = 0;
    if (k->type == KEY_ED25519) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (EVP_DigestSignInit(c, NULL, NULL, NULL, k->pk) == 1 &&
            EVP_DigestSign(c, NULL, &n, dig, diglen) == 1) {
            out = arena_alloc(a, n);
            if (EVP_DigestSign(c, out, &n, dig, diglen) != 1)
                out = NULL;
        }
        EVP_MD_CTX_free(c);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
        if (c && EVP_PKEY_sign_init(c) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(c, h == HASH_SHA1 ? EVP_sha1() : EVP_sha256()) == 1 &&
            EVP_PKEY_sign(c, NULL, &n, dig, diglen) == 1) {
            out = arena_alloc(a, n);
            if (EVP_PKEY_sign(c, out, &n, dig, diglen) != 1)
                out = NULL;
        }
        EVP_PKEY_CTX_free(c);
    }
    *siglen = n;
    return out;
}

bool sig_verify(const sig_key *k, sig_hash h, const unsigned char *dig, size_t diglen,
                const unsigned char *sig, size_t siglen)
{
    bool ok = false;
    if (k->type == KEY_ED25519) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        ok = EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pk) == 1 &&
             EVP_DigestVerify(c, sig, siglen, dig, diglen) == 1;
        EVP_MD_CTX_free(c);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
        ok = c && EVP_PKEY_verify_init(c) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(c, h == HASH_SHA1 ? EVP_sha1() : EVP_sha256()) == 1 &&
             EVP_PKEY_verify(c, sig, siglen, dig, diglen) == 1;
        EVP_PKEY_CTX_free(c);
    }
    return ok;
}
