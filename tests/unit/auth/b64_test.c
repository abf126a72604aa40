/* b64_test.c: auth_b64encode / auth_b64decode (RFC 4648 vectors, SASL data
 * with NULs, and what must be refused). */
#include "check.h"
#include "auth/auth.h"

static const struct {
    const char *plain;
    size_t len;
    const char *enc;
} rows[] = {
    { "", 0, "" },
    { "f", 1, "Zg==" },
    { "fo", 2, "Zm8=" },
    { "foo", 3, "Zm9v" },
    { "foob", 4, "Zm9vYg==" },
    { "fooba", 5, "Zm9vYmE=" },
    { "foobar", 6, "Zm9vYmFy" },
    { "\0bob\0s3cret", 11, "AGJvYgBzM2NyZXQ=" },
    { "\xff\xfe\xfd", 3, "//79" },
};

static const char *const bad[] = {
    "Zg=", "Zg===", "Z", "Zm9v!", "Zm9v Zg==", "Zg==Zg==", "=Zg=", "Zm9vYmFy=",
};

int main(void)
{
    arena *a = arena_new("b64", false);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *e = auth_b64encode(rows[i].plain, rows[i].len, a);
        CHECK_STR(e, rows[i].enc, "encode");
        char *d = NULL;
        long n = auth_b64decode(rows[i].enc, a, &d);
        CHECK(n == (long)rows[i].len, "decode [%s]: length %ld want %zu", rows[i].enc, n, rows[i].len);
        CHECK(n >= 0 && memcmp(d, rows[i].plain, rows[i].len) == 0, "decode [%s]: bytes differ", rows[i].enc);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *d = NULL;
        CHECK(auth_b64decode(bad[i], a, &d) < 0, "decode [%s] should fail", bad[i]);
    }
    arena_free(a);
    return check_report("b64_test");
}
