/* clicmd.h: shared plumbing of postern-auth's sig subcommands. */
#ifndef POSTERN_MSGAUTH_CLICMD_H
#define POSTERN_MSGAUTH_CLICMD_H

#include "core/arena.h"
#include "dns/dns.h"
#include "msgauth/mail.h"
#include "msgauth/sig/clidns.h"
#include "msgauth/sig/sigutil.h"
#include <stdbool.h>
#include <stdio.h>

typedef struct cli_spec {
    const char *usage;           /* options synopsis */
    const char *help;            /* lines describing the specific options */
} cli_spec;

typedef struct cli_opts {
    bool json, strict, rfc_only;
    const char *dns, *dns_zone;
    long long now;               /* 0: real clock */
    const char *domain, *selector, *key, *algorithm, *canon, *headers, *identity;
    const char *srv_id, *hsep, *expire_str, *cv;
    long long timestamp;         /* -1 none, -2 "now" (--timestamps) */
    long long expire;
    long long bodylength;
    int min_rsa_bits;
} cli_opts;

/* 0 on success, -1 after --help (exit 0), or an exit status. */
int cli_parse(int argc, char **argv, const cli_spec *spec, cli_opts *o);
int cli_setup_dns(arena *a, const cli_opts *o, dns_iface *dns, dns_resolver **res);
int cli_read_message(arena *a, mail_msg *m);
char *cli_read_all(arena *a, FILE *f, size_t *len);
sig_key *cli_load_key(arena *a, const char *path);
void cli_json_str(FILE *f, const char *s);
void cli_write_signed(const char *fields, const mail_msg *m, arena *a);

int cmd_dkim_sign(int argc, char **argv);
int cmd_dkim_verify(int argc, char **argv);
int cmd_dkim_canon(int argc, char **argv);
int cmd_arc_sign(int argc, char **argv);
int cmd_arc_verify(int argc, char **argv);
int cmd_dk_sign(int argc, char **argv);
int cmd_dk_verify(int argc, char **argv);
int cmd_authres(int argc, char **argv);

#endif
