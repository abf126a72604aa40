/* cliutil.h: what the policy subcommands of postern-auth share: the common
 * options (--dns, --now, --json, --zone, --dns-timeout), the resolver they
 * select, and JSON output. */
#ifndef POSTERN_MSGAUTH_POLICY_CLIUTIL_H
#define POSTERN_MSGAUTH_POLICY_CLIUTIL_H

#include "core/arena.h"
#include "core/gstr.h"
#include "dns/dns.h"
#include <stdbool.h>
#include <time.h>

typedef struct pol_common {
    const char *dns;        /* --dns ip@port */
    const char *zone;       /* --zone FILE: answer from zone data, no network */
    int dns_timeout;        /* --dns-timeout seconds (retransmit interval) */
    int dns_retry;          /* --dns-retry count */
    time_t now;             /* --now */
    bool json;              /* --json */
    dns_resolver *resolver; /* set by pol_dns(), freed by pol_dns_free() */
} pol_common;

/* If argv[*i] is a common option, consume it (and its value) and return 1;
 * return 0 when it is not one; -1 (message printed) on a bad value; -2 for
 * --help. */
int pol_common_opt(pol_common *c, int argc, char **argv, int *i);

/* The value of option argv[*i] (advancing *i), or NULL with a message. */
const char *pol_optval(int argc, char **argv, int *i);

/* Set up the resolver the options ask for.  false (message printed) on error. */
bool pol_dns(pol_common *c, arena *a, dns_iface *out);
void pol_dns_free(pol_common *c);

/* Read all of a file ("-" = stdin) into the arena. */
char *pol_read_file(const char *path, arena *a, size_t *len);

/* JSON: append "key": "value" pairs to an object under construction. */
void json_str(gstr *g, const char *s);
void json_kv(gstr *g, bool *first, const char *key, const char *val);   /* val NULL -> null */
void json_kb(gstr *g, bool *first, const char *key, bool val);
void json_ki(gstr *g, bool *first, const char *key, long long val);

int pol_usage(const char *cmd, const char *synopsis);   /* stderr, 64 */
int pol_help(const char *cmd, const char *synopsis);    /* stdout, 0 */

#endif
