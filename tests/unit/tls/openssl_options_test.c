/* openssl_options_test.c: tls_parse_openssl_options() on Exim's syntax. */
#include "check.h"
#include "tls/tls.h"

#include <openssl/ssl.h>

static const struct {
    const char *in;
    bool ok;
    unsigned long long set, clear;
} rows[] = {
    { "", true, 0, 0 },
    { "+no_sslv3", true, SSL_OP_NO_SSLv3, 0 },
    { "  +no_tlsv1   +no_tlsv1_1 ", true, SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1, 0 },
    { "+no_sslv2 +no_sslv3 +single_dh_use +no_ticket +no_renegotiation", true,
      SSL_OP_NO_SSLv3 | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION, 0 },   /* Exim's default */
    { "+no_ticket -no_ticket", true, 0, SSL_OP_NO_TICKET },                /* the later one wins */
    { "-no_compression +NO_COMPRESSION", true, SSL_OP_NO_COMPRESSION, 0 }, /* names are caseless */
    { "+cipher_server_preference -all", true, SSL_OP_CIPHER_SERVER_PREFERENCE, SSL_OP_ALL },
    { "no_sslv3", false, 0, 0 },                                            /* no sign */
    { "+no_such_option", false, 0, 0 },
    { "+no_tlsv1_4", false, 0, 0 },
    { "+", false, 0, 0 },
};

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned long long set = 99, clear = 99;
        const char *err = NULL;
        bool ok = tls_parse_openssl_options(rows[i].in, &set, &clear, &err);
        CHECK(ok == rows[i].ok, "[%s]: ok %d want %d", rows[i].in, ok, rows[i].ok);
        if (ok && rows[i].ok) {
            CHECK(set == rows[i].set, "[%s]: set %llx want %llx", rows[i].in, set, rows[i].set);
            CHECK(clear == rows[i].clear, "[%s]: clear %llx want %llx", rows[i].in, clear, rows[i].clear);
        }
        if (!ok)
            CHECK(err && *err, "[%s]: no error text", rows[i].in);
    }
    return check_report("openssl_options_test");
}
