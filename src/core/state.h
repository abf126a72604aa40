/* state.h: the one per-process state struct (DESIGN.md section 4).
 * Holds the arenas with their lifetimes and what the current process knows
 * about its connection and message.  Modules add their fields here, grouped
 * by lifetime, rather than keeping mutable globals of their own. */
#ifndef POSTERN_STATE_H
#define POSTERN_STATE_H

#include "arena.h"
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* An ACL variable ($acl_c..., $acl_m...), kept in a short list. */
/* A TLS session as the expansions and the logs see it. */
typedef struct tls_vars {
    const char *ver;           /* "TLS1.3" */
    const char *cipher;        /* Exim's form: "TLS1.3:TLS_AES_256_GCM_SHA384:256" */
    const char *cipher_std;    /* the RFC name of the cipher suite */
    int bits;
    bool peercert;             /* the peer presented a certificate */
    bool certificate_verified; /* ... and it verified */
    const char *peerdn;        /* its subject, or NULL */
    const char *sni;           /* the server name asked for, or NULL */
} tls_vars;

typedef struct acl_var {
    const char *name;
    const char *value;
    struct acl_var *next;
} acl_var;

typedef struct proc_state {
    /* arenas */
    arena *config;      /* lives as long as the loaded configuration */
    arena *conn;        /* one SMTP connection / one process job */
    arena *msg;         /* one message */
    arena *scratch;     /* reset freely between steps */
    arena *conn_t;      /* tainted: data from outside, connection lifetime */
    arena *msg_t;       /* tainted: data from outside, message lifetime */

    const char *progname;
    pid_t pid;
    pid_t random_seeded;      /* the process that seeded rand() (forks must again) */
    time_t started;
    bool debug;

    /* string expansion (src/expand) */
    const char *exp_num[21];  /* $0..$20 from the last successful match (Exim's EXPAND_MAXN) */
    int exp_nmax;             /* number of $n set (0 = none) */
    const char *exp_item;     /* $item in forall/forany/map/filter/reduce/sort */
    const char *exp_value;    /* $value: lookup/extract result, reduce value */
    acl_var *acl_c;           /* connection ACL variables (conn lifetime) */
    acl_var *acl_m;           /* message ACL variables (msg lifetime) */
    int exp_runrc;            /* $runrc: exit code of the last ${run} */
    unsigned exp_forbid;      /* EXPAND_FORBID_* bits (src/expand/expand.h) */
    int exp_level;            /* expand_string() calls in progress (lookups expand too) */
    const char *exp_prvscheck_result;  /* $prvscheck_result ("1" or NULL) */
    const char *exp_prvscheck_address; /* $prvscheck_address, during ${prvscheck} */
    const char *exp_prvscheck_keynum;  /* $prvscheck_keynum, during ${prvscheck} */
    /* SMTP connection (src/smtp): the values behind $sender_host_address,
     * $sender_helo_name, $interface_address, ... (conn lifetime) */
    const char *sender_host_address;
    int sender_host_port;
    const char *sender_host_name;
    const char *sender_helo_name;
    const char *interface_address;
    int interface_port;
    const char *received_protocol;
    const char *smtp_active_hostname;
    const char *smtp_command;         /* the command being handled */
    const char *authenticated_id, *authenticated_sender, *sender_host_authenticated;
    const char *auth_vars[4];         /* $auth1..$auth4 during an authentication (src/auth) */
    const char *sender_host_auth_pubname;  /* the mechanism the client authenticated with */
    bool host_checking;               /* -bh */
    tls_vars tls_in;                  /* the incoming TLS session ($tls_in_*; cipher NULL: none) */
    tls_vars tls_out;                 /* the smtp transport's ($tls_out_*) */

    /* message being received or delivered (msg lifetime) */
    const char *message_id;
    const char *sender_address;
    long message_size;                /* -1 until known */
    int recipients_count;
    const char **recipients;          /* accepted so far */
    const char *local_part, *domain;  /* address being checked (RCPT) */
    struct spool_header *msg_headers; /* for $h_ variables */
    long body_linecount;
    bool message_smtputf8;            /* $message_smtputf8: MAIL had SMTPUTF8 */
    const char *acl_verify_message;
    const char *sender_verify_failure, *recipient_verify_failure; /* callouts: mail, recipient, ... */

    /* ACL engine (src/acl): values behind $acl_arg1..9, $acl_narg,
     * $sender_rate*, $host_data, $domain_data, $local_part_data,
     * $sender_data, $recipient_data and $dnslist_* (NULL = unset/empty) */
    const char *acl_arg[9];
    int acl_narg;
    const char *sender_rate, *sender_rate_limit, *sender_rate_period;
    const char *host_data, *domain_data, *local_part_data, *sender_data, *recipient_data;
    const char *dnslist_domain, *dnslist_matched, *dnslist_text, *dnslist_value;
    const void *acl_dns;      /* tests: a dns_iface * used instead of the process resolver */
    double acl_now;           /* tests: when > 0, "now" (epoch seconds) for ratelimit */
    int acl_level;            /* nesting of ACLs being run ("acl =" and ${acl}) */
    const char *local_part_caseful; /* RCPT: the local part as the client wrote it, for
                                       control = caseful_local_part (NULL: as $local_part) */
    bool host_lookup_done;    /* the client's name was looked up (PTR + forward check), */
    bool host_lookup_failed;  /* ... and none was found ($host_lookup_failed); conn lifetime */

    /* delivery (src/deliver, src/route, src/transport): the address being
     * routed or delivered ($domain_data and $local_part_data above) */
    const char *address_data;
    acl_var *router_vars;     /* $r_... of the address being routed or delivered */
    const char *home_dir, *router_name, *transport_name;
    const char *original_local_part, *original_domain;
    const char *deliver_host, *deliver_host_address;
    struct smtp_kept *smtp_kept;  /* src/transport/smtp.c: the outbound connection kept open
                                   * for the next batch or message (process lifetime) */
    bool deliver_continuing;      /* a process started to send one more message down it */
    bool deliver_force;           /* -M, -qf: retry times do not hold deliveries back */
    bool dont_deliver;            /* -N: transports are not run, deliveries logged "*>" */
    bool verbose;                 /* -v (and -N): log lines and deliveries shown on stderr */
    const char *local_part_prefix, *local_part_suffix;
    int deliver_notify_fd;    /* daemon child: where to send ids to deliver (-1: none) */
    /* a bounce or delay warning being built (src/deliver/bounce.c):
     * $bounce_recipient, $warn_message_delay, $warn_message_recipients */
    const char *bounce_recipient, *warn_message_delay, *warn_message_recipients;
    bool helo_verified;       /* $helo_verified (helo_verify_hosts, helo_try_verify_hosts) */

    /* Exim filters (src/route/filter.c) and the body variables (msg lifetime) */
    bool filter_running;              /* $n0..$n9 exist only while a filter runs */
    long filter_n[10], filter_sn[10]; /* $n0..$n9, $sn0..$sn9 */
    const char *filter_thisaddress;   /* $thisaddress (foranyaddress) */
    const char *headers_charset;      /* a filter's "headers charset" (NULL: headers_charset) */
    const char *return_path;          /* $return_path when it is not the sender (-bf) */
    const char *message_body, *message_body_end;   /* NULL: not read */
    long message_body_size, body_zerocount;
} proc_state;

extern proc_state ps;

void state_init(const char *progname);
void state_message_done(void);   /* drop message arenas */

#endif
