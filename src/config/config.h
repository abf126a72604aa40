/* config.h: the loaded configuration (read-only once loaded).
 *
 * The reader understands all of Exim's syntax: macros (with -D overrides
 * and builtin _HAVE_/_OPT_/_DRIVER_ macros), .include, .include_if_exists,
 * .ifdef/.ifndef/.elifdef/.elifndef/.else/.endif, continuation lines,
 * comments, "hide", named lists and the sections acl, routers, transports,
 * authenticators, retry and rewrite.  Option values are kept as parsed
 * values; expanded strings are kept unexpanded for the expander. */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include "core/arena.h"
#include "core/logsel.h"
#include "core/status.h"
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum opt_type {
    OT_BOOL,      /* name / no_name / not_name / name = true|false|yes|no */
    OT_INT,       /* decimal, 0x hex, leading-0 octal, K/M/G suffix */
    OT_OCTINT,    /* always octal (modes) */
    OT_FIXED,     /* fixed point, 3 decimals, stored *1000 */
    OT_TIME,      /* 1h30m style, stored in seconds */
    OT_TIMELIST,  /* colon list of times (delay_warning) */
    OT_STRING,    /* string, quotes and escapes processed */
    OT_UID,       /* user name or number */
    OT_GID,       /* group name or number */
} opt_type;

enum {
    OF_EXPAND = 1,    /* expanded at use */
    OF_LIST = 2,      /* a list (string list, host list, ...) */
    OF_HIDE = 4,      /* set with "hide" */
    OF_DOMAINLIST = 8, OF_HOSTLIST = 16, OF_ADDRLIST = 32, OF_LPLIST = 64,
    OF_EXPBOOL = 128, /* generic router options that may be expanded to a bool */
    OF_UNIMPL = 256,  /* not implemented yet: a value other than the default is a
                       * configuration error (DESIGN.md section 1) */
    OF_OFFOK = 512,   /* with OF_UNIMPL: the "off" value (false, 0, empty) is
                       * accepted too, because that is what postern does */
};

typedef struct optdef {
    const char *name;
    opt_type type;
    unsigned flags;
    const char *dflt;  /* default in config syntax, NULL = unset */
} optdef;

typedef struct optval {
    bool set;          /* explicitly set in the file (or has a default) */
    bool hidden;
    bool is_expanded_bool; /* bool option given as an expansion string */
    const char *src_file;
    int src_line;
    long long n;       /* OT_BOOL (0/1), OT_INT, OT_OCTINT, OT_FIXED, OT_TIME, OT_UID, OT_GID */
    const char *s;     /* OT_STRING, OT_TIMELIST, expanded bools; NULL = unset */
} optval;

/* ---- main options: the enum MO_<name> ----------------------------------- */
#define MAINOPT(name, type, flags, dflt) MO_##name,
enum main_opt {
#include "config/main_opts.def"
    MO__COUNT
};
#undef MAINOPT

extern const optdef main_optdefs[MO__COUNT];

/* ---- named lists -------------------------------------------------------- */
typedef enum list_kind { NL_DOMAIN, NL_HOST, NL_ADDRESS, NL_LOCALPART, NL__COUNT } list_kind;

typedef struct named_list {
    list_kind kind;
    const char *name;
    const char *value;
    bool hidden;
    const char *file;
    int line;
    struct named_list *next;
} named_list;

/* ---- ACLs --------------------------------------------------------------- */
typedef enum acl_verb {
    ACLV_ACCEPT, ACLV_DEFER, ACLV_DENY, ACLV_DISCARD, ACLV_DROP, ACLV_REQUIRE,
    ACLV_WARN, ACLV__COUNT
} acl_verb;

typedef struct acl_cond {
    const char *name;        /* condition or modifier name ("set", "control", ...) */
    const char *value;       /* unexpanded; for "set": "acl_m_x = value" */
    bool negated;            /* written "!name = ..." */
    bool is_modifier;
    const char *file;
    int line;
    struct acl_cond *next;
} acl_cond;

typedef struct acl_stmt {
    acl_verb verb;
    const char *file;
    int line;
    acl_cond *conds;
    struct acl_stmt *next;
} acl_stmt;

typedef struct acl_def {
    const char *name;
    const char *file;
    int line;
    acl_stmt *stmts;
    struct acl_def *next;
} acl_def;

const char *acl_verb_name(acl_verb v);

/* ---- drivers ------------------------------------------------------------ */
typedef enum driver_class { DC_ROUTER, DC_TRANSPORT, DC_AUTH, DC__COUNT } driver_class;

typedef struct driver_info {
    const char *name;              /* "dnslookup" */
    const optdef *opts;            /* private options */
    int nopts;
} driver_info;

typedef struct driver_inst {
    driver_class cls;
    const char *name;              /* instance name */
    const char *file;
    int line;
    const driver_info *info;       /* from driver = ... */
    optval *generic;               /* indexed like config_generic_opts(cls) */
    optval *priv;                  /* indexed like info->opts */
    struct driver_inst *next;
} driver_inst;

const optdef *config_generic_opts(driver_class cls, int *n);
const driver_info *config_driver_info(driver_class cls, const char *name);
const char *driver_class_name(driver_class cls);   /* "router", ... */
/* The value of an option of a driver instance, generic or private; NULL if
 * the driver has no such option. */
const optval *driver_opt(const driver_inst *d, const char *name);

/* ---- retry and rewrite -------------------------------------------------- */
typedef struct retry_param {
    char algo;          /* 'F', 'G', 'H' */
    int cutoff;         /* seconds since first failure */
    int p1;             /* seconds */
    int p2;             /* G/H multiplier * 1000 */
} retry_param;

typedef struct retry_rule {
    const char *pattern;
    const char *error;        /* "*", "quota_7d", "rcpt_4xx", ... */
    const char *senders;      /* senders= list or NULL */
    int nparams;
    retry_param *params;
    const char *file;
    int line;
    struct retry_rule *next;
} retry_rule;

typedef struct rewrite_rule {
    const char *pattern;
    const char *replacement;
    const char *flags;        /* letters from EFTbcfhrstSQqRw */
    const char *file;
    int line;
    struct rewrite_rule *next;
} rewrite_rule;

/* ---- macros ------------------------------------------------------------- */
typedef struct macro {
    const char *name;
    const char *value;
    bool from_cmdline;
    bool builtin;
    struct macro *next;
} macro;

/* ---- the whole configuration -------------------------------------------- */
typedef struct config {
    arena *a;
    const char *filename;     /* "" when the built-in default is used */
    optval main[MO__COUNT];
    named_list *lists;
    acl_def *acls;
    driver_inst *drivers[DC__COUNT];
    retry_rule *retries;
    rewrite_rule *rewrites;
    macro *macros;            /* definition order (builtins first) */
    bool has_section[8];
    log_selectors logsel;     /* log_selector, parsed */
} config;

/* The loaded configuration; NULL before config_load(). */
extern const config *cfg;

typedef struct config_load_args {
    const char *file;          /* -C value, or NULL for the default search */
    const char **defines;      /* -D name[=value] strings, NULL-terminated */
    bool use_builtin;          /* force the built-in default */
    /* filled in on error: log_file_path and spool_directory as far as the
     * configuration was read (NULL when not reached), for the paniclog */
    const char *err_log_file_path, *err_spool_directory;
} config_load_args;

/* Read a configuration.  On error returns ST_ERROR with *err set to
 * "configuration error in line N of FILE: <what> \"<word>\"". */
status config_load(config_load_args *args, config **out, char **err);
/* Parse config text (used for the builtin default and by tests). */
status config_load_string(const char *text, const char *name, const char **defines,
                          config **out, char **err);
void config_set_current(const config *c);
void config_free(config *c);

extern const char config_builtin_default[];
#define CONFIG_DEFAULT_FILE "/etc/postern/postern.conf"

/* Accessors for main options (cfg must be loaded). */
const char *cfg_str(enum main_opt o);     /* NULL if unset */
long long cfg_int(enum main_opt o);
bool cfg_bool(enum main_opt o);
const named_list *config_named_list(list_kind kind, const char *name);
const acl_def *config_acl(const char *name);
const driver_inst *config_driver(driver_class cls, const char *name);
int config_main_opt_index(const char *name);   /* -1 if unknown */

/* Option value syntax, shared with the expander and drivers. */
status opt_parse_int(const char *s, long long *out);
status opt_parse_time(const char *s, long long *out);  /* seconds */
status opt_parse_fixed(const char *s, long long *out); /* *1000 */
void opt_format(const optdef *d, const optval *v, FILE *f); /* "name = value" as -bP */
char *opt_format_time(long long secs, char *buf, size_t len);

/* -bP: print one option, "all", or special names (config_file, macros,
 * routers, transports, authenticators, router_list, ...).  Returns false
 * if name is unknown. */
bool config_print(const config *c, const char *name, FILE *f, bool admin);

#endif
