/* spool.h: messages on the spool in Exim's format (Exim spec, "Format of
 * spool files"), so that Exim 4.96 can list and deliver what postern
 * queued: message ids, the -D (body) and -H (envelope + headers) files,
 * locking, and the one function that makes a message durable.
 *
 * Layout: <spool>/input/[<sub>/]<id>-D, <id>-H, <id>-J; <sub> is id[5]
 * when split_spool_directory is set. */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include "core/arena.h"
#include "core/status.h"
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#define SPOOL_ID_LEN 16          /* Exim 4.96: tttttt-pppppp-ss */
#define SPOOL_ID_RESOLUTION 5000 /* microseconds per id sub-second step */

/* DSN NOTIFY bits as Exim stores them in -H recipient lines */
enum {
    SPOOL_DSN_NEVER = 0x02, SPOOL_DSN_SUCCESS = 0x04, SPOOL_DSN_FAILURE = 0x08,
    SPOOL_DSN_DELAY = 0x10,
};
enum { SPOOL_RET_NONE = 0, SPOOL_RET_FULL = 1, SPOOL_RET_HDRS = 2 };

typedef struct spool_rcpt {
    const char *address;
    const char *orcpt;        /* DSN ORCPT (with its "type;" prefix) or NULL */
    unsigned dsn_flags;
    const char *errors_to;    /* NULL: none */
    int parent;               /* -1: top-level */
} spool_rcpt;

typedef struct spool_header {
    char type;                /* ' ' B C F I P R S T, '*' = deleted */
    char *text;               /* "Name: value\n", continuation lines keep their newlines */
    size_t len;
    struct spool_header *next;
} spool_header;

typedef struct spool_var {    /* -aclc / -aclm variables */
    char kind;                /* 'c' or 'm' */
    const char *name;         /* rest of name after acl_c / acl_m */
    const char *value;
    struct spool_var *next;
} spool_var;

typedef struct spool_msg {
    char id[SPOOL_ID_LEN + 1];
    const char *login;
    long uid, gid;
    const char *sender;       /* without <>; "" for a bounce */
    time_t received;
    long received_usec;
    long complete_sec, complete_usec;
    int warning_count;

    const char *helo_name, *host_address, *interface_address, *host_name;
    int host_port, interface_port;
    bool host_lookup_failed;
    const char *ident, *received_protocol, *active_hostname;
    const char *auth_id, *auth_sender, *host_auth, *host_auth_pubname;
    const char *tls_cipher, *tls_peerdn, *tls_sni, *tls_ver;
    bool tls_certificate_verified;
    bool smtputf8;            /* -smtputf8: an international message (MAIL ... SMTPUTF8) */
    long body_linecount, body_zerocount, max_received_linelength;
    bool deliver_firsttime, local, localerror, manual_thaw;
    bool dont_deliver;        /* -N: deliveries are only pretended ("*>") */
    bool allow_unqualified_sender, allow_unqualified_recipient, sender_set_untrusted;
    bool spool_file_wireformat;
    time_t frozen;            /* 0: not frozen */
    const char *dsn_envid;
    int dsn_ret;
    spool_var *vars;

    int n_nonrcpt;            /* delivered addresses (the non-recipients tree) */
    const char **nonrcpt;
    int n_rcpt, cap_rcpt;
    spool_rcpt *rcpt;
    spool_header *headers, *headers_tail;
} spool_msg;

typedef struct spool_settings {
    const char *directory;    /* spool_directory */
    bool split;               /* split_spool_directory */
} spool_settings;

/* Message ids */
void spool_new_id(char id[SPOOL_ID_LEN + 1]);
bool spool_id_valid(const char *id);
time_t spool_id_time(const char *id);

/* Paths: <spool>/input[/<sub>]/<id>-<suffix>; buf must be PATH_MAX. */
char *spool_path(const spool_settings *ss, const char *id, char suffix, char *buf, size_t len);
status spool_make_dirs(const spool_settings *ss, const char *id, char **err);

/* Start the -D file: created exclusively, write-locked, first line written.
 * Returns the fd (kept open and locked until the message is committed or
 * abandoned) or -1 with *err. */
int spool_open_data(const spool_settings *ss, const char *id, arena *a, char **err);

/* Envelope and headers */
void spool_add_rcpt(spool_msg *m, arena *a, const spool_rcpt *r);
/* Append addr to the delivered addresses (the caller checks it is not there). */
void spool_add_nonrcpt(spool_msg *m, arena *a, const char *addr);
spool_header *spool_add_header(spool_msg *m, arena *a, char type, const char *text, size_t len);
char spool_header_type(const char *text);   /* the type letter for a header */

/* Make the message durable: fsync the -D file, write the -H file under a
 * temporary name, fsync it, rename it into place and fsync the directory.
 * The only way a message becomes visible to queue runners; the SMTP 250
 * is sent only after it returns ST_OK (DESIGN.md section 8). */
status spool_commit(const spool_settings *ss, spool_msg *m, int data_fd, arena *a, char **err);

/* Throw away a half-received message (removes -D and any -H). */
void spool_abandon(const spool_settings *ss, const char *id, int data_fd);

/* Copy the ACL variables that must survive to delivery ($acl_c*, $acl_m*)
 * into the message (as -aclc/-aclm lines).  c and m are core/state.h
 * acl_var lists. */
struct acl_var;
void spool_keep_acl_vars(spool_msg *msg, const struct acl_var *c, const struct acl_var *m, arena *a);

/* Append a time-stamped line to the message log <spool>/msglog/[<sub>/]<id>. */
char *spool_msglog_path(const spool_settings *ss, const char *id, char *buf, size_t len);
void spool_msglog(const spool_settings *ss, const char *id, const char *line);

/* Write the -H contents to f (used by spool_commit and -Mvh tests). */
status spool_write_header_file(FILE *f, const spool_msg *m);

/* Read a -H file.  ST_NOTFOUND if absent, ST_ERROR if malformed. */
status spool_read_header(const spool_settings *ss, const char *id, arena *a, spool_msg **out, char **err);

#endif
