/* filter_int.h: the command tree of an Exim filter, shared by the
 * reader (filter_read.c) and the interpreter (filter.c). */
#ifndef POSTERN_FILTER_INT_H
#define POSTERN_FILTER_INT_H

#include "route/filter.h"

typedef enum {
    C_AND, C_OR, C_PERSONAL, C_BEGINS, C_BEGINS_CS, C_ENDS, C_ENDS_CS, C_IS, C_IS_CS,
    C_MATCHES, C_MATCHES_CS, C_CONTAINS, C_CONTAINS_CS, C_DELIVERED, C_ABOVE, C_BELOW,
    C_ERRMSG, C_FIRST, C_THAWED, C_FORANY,
} ctype;

typedef struct alias {
    const char *text;
    struct alias *next;
} alias;

typedef struct cond {
    ctype type;
    bool testfor;              /* false: the condition is negated */
    struct cond *parent;       /* while reading: the chain of "and"s */
    const char *left, *right;  /* unexpanded operands; foranyaddress: left is the list */
    struct cond *l, *r;        /* and/or operands; foranyaddress: r is the inner condition */
    alias *aliases;            /* personal */
} cond;

enum {
    K_ADD, K_DEFER, K_DELIVER, K_ELIF, K_ELSE, K_ENDIF, K_FINISH, K_FAIL, K_FREEZE, K_HEADERS, K_IF,
    K_LOGFILE, K_LOGWRITE, K_MAIL, K_NOERROR, K_PIPE, K_SAVE, K_SEEN, K_TESTPRINT, K_UNSEEN, K_VACATION,
    K__N
};

extern const char *const filter_cmd_names[K__N];

/* the mail command's keywords: header values, then the body text, then
 * file names and the repeat time */
enum { MA_TO, MA_CC, MA_BCC, MA_FROM, MA_REPLY_TO, MA_SUBJECT, MA_HEADERS, MA_TEXT, MA_FILE, MA_LOG, MA_ONCE,
       MA_ONCE_REPEAT, MA_N };
extern const char *const filter_mail_names[MA_N];

enum { H_REMOVE, H_ADD, H_CHARSET };

struct fcmd;
typedef struct branch {        /* "if" or "elif" and its commands */
    cond *c;
    struct fcmd *body;
    struct branch *next;
} branch;

typedef struct fcmd {
    int kind;
    bool seen, noerror;
    const char *arg[MA_N];     /* unexpanded; most commands use arg[0] (and arg[1]) */
    int num;                   /* save/logfile: mode (-1: none); headers: H_* */
    bool expand_file, return_message;
    branch *branches;          /* if */
    struct fcmd *els;          /* if: the else part */
    struct fcmd *next;
} fcmd;

/* Read a whole filter into a command list (in a); NULL with *err (in a)
 * on a syntax error, the message and line as Exim gives them.  flags:
 * FO_DEFER, FO_FAIL, FO_FREEZE, FO_SYSTEM allow those commands. */
fcmd *filter_read(const char *text, unsigned flags, arena *a, const char **err);

#endif
