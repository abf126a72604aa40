/* address.h: what delivery knows about one address: where routing sent
 * it, which transport and hosts, and how its delivery went.  Routers,
 * transports and the delivery process share this struct. */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include "config/config.h"
#include "core/state.h"
#include "core/status.h"
#include <stdbool.h>
#include <sys/types.h>

typedef struct host_item {
    const char *name;
    const char *address;       /* NULL until looked up */
    int port;                  /* 0: the transport's default */
    int mx;                    /* MX preference, -1 if not from MX */
    bool dnssec;               /* address came from a secure answer */
    bool unusable;             /* smtp transport: its address lookup failed in this run */
    struct host_item *next;
} host_item;

enum {
    AF_PIPE = 1,               /* "|command" from a redirect */
    AF_FILE = 2,               /* "/path" (or directory with trailing /) */
    AF_REPLY = 4,              /* ">rcpt" autoreply from a filter (reply set) */
    AF_VERIFY_ONLY = 8,
    AF_HOMONYM = 16,
    AF_IGNORE_ERROR = 32,      /* errors_to = "" */
    AF_CONT_CONN = 64,         /* sent down a connection kept from an earlier transaction */
    AF_FORBIDDEN = 512,        /* a pipe or file its router forbids: fails when delivered */
    AF_CHUNKING = 128,         /* smtp: the message went with BDAT (Exim logs " K" after H=) */
    AF_PIPELINING = 256,       /* smtp: PIPELINING was used (Exim logs " L" with +pipelining) */
    AF_RETRY_TIMEDOUT = 1024,  /* failed because its retry rules ran out */
    AF_BYPASSED = 2048,        /* -N: "delivered" without its transport running */
    AF_FALLBACK_RUN = 4096,    /* smtp: (transient) in the run to the fallback hosts */
    AF_WITH_TOP = 8192,        /* timed out with the first address of its remote batch */
};

/* Exim's own error numbers (negative; positive ones are errno values), as
 * Exim logs them in "defer (n)" */
enum {
    ERRNO_UNKNOWNERROR = -1, ERRNO_BADUGID = -6, ERRNO_LOCKFAILED = -9, ERRNO_BADREDIRECT = -17,
    ERRNO_SMTPCLOSED = -18, ERRNO_SMTPFORMAT = -19, ERRNO_NOTABSOLUTE = -21, ERRNO_EXIMQUOTA = -22,
    ERRNO_EXPANDFAIL = -27, ERRNO_UIDFAIL = -29, ERRNO_BADTRANSPORT = -30, ERRNO_UNKNOWNHOST = -32,
    ERRNO_DNSDEFER = -36, ERRNO_RCPT4XX = -44, ERRNO_MAIL4XX = -45, ERRNO_DATA4XX = -46,
    ERRNO_HOST_IS_LOCAL = -50, ERRNO_TAINT = -51, ERRNO_RRETRY = -52, ERRNO_LRETRY = -53,
    ERRNO_HRETRY = -54, ERRNO_TLSFAILURE = -37, ERRNO_TLSREQUIRED = -38, ERRNO_AUTHFAIL = -42,
    ERRNO_AUTHPROB = -48,
};

/* An automatic reply a filter's mail or vacation command set up (the
 * address has AF_REPLY): the autoreply transport builds the message from
 * these values, already expanded, instead of from its own options. */
typedef struct reply_item {
    const char *from, *reply_to, *to, *cc, *bcc, *subject, *headers, *text;
    const char *file, *logfile, *oncelog;
    long long once_repeat;     /* seconds; 0: no repeat */
    bool file_expand, return_message;
    unsigned expand_forbid;    /* EXPAND_FORBID_* of the filter, for the file's lines */
} reply_item;

typedef struct address_item {
    const char *address;       /* local_part@domain as routed */
    const char *local_part;
    const char *domain;
    const char *prefix, *suffix;
    struct address_item *parent;
    int rcpt_index;            /* index of the top-level recipient on the spool */
    unsigned flags;
    unsigned dsn_flags;        /* SPOOL_DSN_* */
    const char *dsn_orcpt;

    const driver_inst *start_router;   /* routing starts here (unseen clones, redirect_router) */
    const char *unique;                /* what the journal and -H record when delivered (NULL: address) */

    /* set by routing */
    const driver_inst *router;
    const driver_inst *transport;
    host_item *hosts;
    const char *errors_to;
    const char *address_data, *domain_data, *local_part_data;
    acl_var *r_vars;                   /* $r_... from routers' "set" (children inherit them) */
    uid_t uid;
    gid_t gid;
    bool uid_set, gid_set, initgroups;
    const char *home_dir, *current_dir;
    const char *headers_add, *headers_remove;
    const reply_item *reply;   /* AF_REPLY: the reply a filter set up */
    int mode;                  /* AF_FILE from a filter's save: file mode (0: the transport's) */

    /* set by the transport / delivery */
    status result;             /* ST_OK delivered, ST_DEFER, ST_FAIL */
    const char *message;       /* reason, for logs and bounces */
    int basic_errno, more_errno;      /* errno or ERRNO_* above; 0 unknown */
    bool pass_message;                 /* message may go to the sender (bounce diagnostic) */
    bool freeze;                       /* with ST_DEFER: freeze the message (filter freeze, freeze_exec_fail) */
    const char *user_message;          /* what a bounce says when message may not go out */
    const char *return_output;         /* a pipe's output for the bounce (return_output...) */
    const char *shadow_message;        /* " ST=name" after a shadow transport, for the log */
    double delivery_secs;              /* how long the transport took (DT=) */
    const char *return_path;           /* the transport's return_path, when it set one (P=) */
    bool host_dnssec;                  /* the host's address came from a secure answer (DS) */
    const char *host_used;             /* H=name */
    const char *host_address_used;     /* [ip] */
    const char *tls_cipher;            /* X=: the TLS session it went over (smtp), or NULL */
    const char *tls_peerdn;            /* DN=: the server certificate's subject */
    bool tls_verified;                 /* CV=yes */
    const char *authenticator;         /* A=: the client authenticator the smtp transport used */
    int port_used;
    const char *smtp_greeting;         /* DSN extra information */
    const char *helo_response;
    const char *smtp_confirmation;     /* C="250 ..." */
    bool remote_reply_5xx;
    bool dsn_passed_on;                /* the next hop took NOTIFY/ORCPT (it sends DSNs now) */
    /* the smtp transport's retry keys, in Exim's forms, for the retry hints */
    const char *retry_host_key;        /* "T:host:ip[:port][/interface]" ("T:host[:port]..." with
                                        * retry_include_ip_address false) of the last host tried */
    bool retry_host_defer;             /* that host failed (connection or session problem) */
    const char *retry_message_key;     /* "<host key>:<message id>": the host deferred this message only */
    const char *retry_address_key;     /* "R:address" or "R:address:<sender>" (address_retry_include_sender):
                                        * the address had a 4xx reply to RCPT */

    struct address_item *dups;         /* the same address reached other ways: delivered with this one */
    struct address_item *dup_next;     /* the next in a dups list */
    struct address_item *next;
} address_item;

#endif
