/* filter_read.c: reading an Exim filter into its command tree.  Words,
 * quoted strings with their escapes, comments, conditions with "and"
 * binding more tightly than "or", and the commands with their keywords;
 * the line counting and error texts are Exim's, as users see them in
 * bounces and in -bf output.  A syntax error anywhere means nothing in the
 * filter is obeyed. */
#include "route/filter_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const filter_cmd_names[K__N] = {
    "add", "defer", "deliver", "elif", "else", "endif", "finish", "fail", "freeze", "headers", "if",
    "logfile", "logwrite", "mail", "noerror", "pipe", "save", "seen", "testprint", "unseen", "vacation",
};

const char *const filter_mail_names[MA_N] = {
    "to", "cc", "bcc", "from", "reply_to", "subject", "extra_headers", "text", "file", "log", "once", "once_repeat",
};

/* the comparison words (case matters: upper case compares case-sensitively) */
static const struct { const char *word; ctype type; } cond_words[] = {
    { "BEGIN", C_BEGINS_CS }, { "BEGINS", C_BEGINS_CS }, { "CONTAIN", C_CONTAINS_CS },
    { "CONTAINS", C_CONTAINS_CS }, { "END", C_ENDS_CS }, { "ENDS", C_ENDS_CS }, { "IS", C_IS_CS },
    { "MATCH", C_MATCHES_CS }, { "MATCHES", C_MATCHES_CS }, { "above", C_ABOVE }, { "begin", C_BEGINS },
    { "begins", C_BEGINS }, { "below", C_BELOW }, { "contain", C_CONTAINS }, { "contains", C_CONTAINS },
    { "end", C_ENDS }, { "ends", C_ENDS }, { "is", C_IS }, { "match", C_MATCHES }, { "matches", C_MATCHES },
};

enum { HAD_NEITHER, HAD_ELSE, HAD_ELIF, HAD_ENDIF };

typedef struct fp {
    const char *p;
    int line;
    const char *err;
    arena *a;
    unsigned flags;
    int expect_endif, had, depth;
    bool seen_force, seen_value, noerror_force;
    char buf[FILTER_MAX_ITEM];
} fp;

static void __attribute__((format(printf, 2, 3))) ferr(fp *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f->err = arena_vprintf(f->a, fmt, ap);
    va_end(ap);
}

/* Skip white space (counting lines) and comments. */
static void skipsig(fp *f)
{
    const char *p = f->p;
    for (;;) {
        while (isspace((unsigned char)*p))
            if (*p++ == '\n')
                f->line++;
        if (*p != '#')
            break;
        while (*++p && *p != '\n')
            ;
    }
    f->p = p;
}

/* A word ends at white space (or a bracket when bracket is set). */
static void word(fp *f, bool bracket)
{
    size_t n = 0;
    const char *p = f->p;
    while (*p && !isspace((unsigned char)*p) && (!bracket || (*p != '(' && *p != ')'))) {
        if (n >= sizeof f->buf - 1) {
            ferr(f, "word is too long in line %d of filter file (max = %d chars)", f->line, (int)sizeof f->buf);
            break;
        }
        f->buf[n++] = *p++;
    }
    f->buf[n] = '\0';
    f->p = p;
    skipsig(f);
}

/* A backslash escape at *pp (on the backslash); *pp is left on its last
 * character. */
static char escape(const char **pp)
{
    const char *p = *pp;
    int ch = (unsigned char)*++p;
    if (!ch)
        return '\\';
    if (ch >= '0' && ch <= '7') {
        ch -= '0';
        for (int k = 0; k < 2 && p[1] >= '0' && p[1] <= '7'; k++)
            ch = ch * 8 + *++p - '0';
    } else if (ch == 'x') {
        ch = 0;
        for (int k = 0; k < 2 && isxdigit((unsigned char)p[1]); k++) {
            int d = tolower((unsigned char)*++p);
            ch = ch * 16 + (isdigit(d) ? d - '0' : d - 'a' + 10);
        }
    } else {
        static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
        const char *k = strchr(from, ch);
        if (k)
            ch = to[k - from];
    }
    *pp = p;
    return (char)ch;
}

/* A word, or a string in double quotes with backslash escapes; a
 * backslash at the end of a line continues the string on the next one
 * (leading white space dropped). */
static void item(fp *f, bool bracket)
{
    if (*f->p != '"') {
        word(f, bracket);
        return;
    }
    size_t n = 0;
    const char *p = f->p;
    while (*++p && *p != '"' && *p != '\n') {
        if (n >= sizeof f->buf - 1) {
            ferr(f, "string is too long in line %d of filter file (max = %d chars)", f->line, (int)sizeof f->buf);
            break;
        }
        if (*p != '\\') {
            f->buf[n++] = *p;
            continue;
        }
        if (isspace((unsigned char)p[1])) {
            const char *q = p + 1;
            while (*q != '\n' && isspace((unsigned char)*q))
                q++;
            if (*q == '\n') {
                f->line++;
                p = q;
                while (p[1] != '\n' && isspace((unsigned char)p[1]))
                    p++;
                continue;
            }
        }
        f->buf[n++] = escape(&p);
    }
    if (*p == '"')
        p++;
    else if (!f->err)
        ferr(f, "quote missing at end of string in line %d", f->line);
    f->buf[n] = '\0';
    f->p = p;
    skipsig(f);
}

static char *bufcopy(fp *f)
{
    return arena_strdup(f->a, f->buf);
}

static bool depth_ok(fp *f)
{
    if (f->depth < FILTER_MAX_DEPTH)
        return true;
    ferr(f, "conditions or commands nested too deeply near line %d of filter file", f->line);
    return false;
}

/* A condition up to "then" (top) or to the ")" that closes it.  "and"
 * binds more tightly than "or"; both chains are built leaning right. */
static void read_condition(fp *f, cond **out, bool top)
{
    bool testfor = true;
    cond *cur_parent = NULL, **cur = out;
    *cur = NULL;
    f->depth++;
    for (;;) {
        cond *c;
        if (!*f->p) {
            f->err = "\"then\" missing at end of filter file";
            break;
        }
        if (*f->p == '(') {
            if (!depth_ok(f))
                break;
            f->p++;
            skipsig(f);
            read_condition(f, &c, false);
            if (f->err)
                break;
            if (*f->p != ')') {
                ferr(f, "expected \")\" in line %d of filter file", f->line);
                break;
            }
            if (!testfor) {
                c->testfor = !c->testfor;
                testfor = true;
            }
            f->p++;
            skipsig(f);
        } else if (*f->p == ')') {
            ferr(f, "unexpected \")\" in line %d of filter file", f->line);
            break;
        } else {
            item(f, true);
            if (f->err)
                break;
            if (strcmp(f->buf, "then") == 0) {
                ferr(f, "unexpected \"then\" near line %d of filter file", f->line);
                break;
            }
            if (strcmp(f->buf, "not") == 0) {
                testfor = !testfor;
                continue;
            }
            c = arena_calloc(f->a, sizeof *c);
            c->testfor = testfor;
            testfor = true;
            if (strcmp(f->buf, "delivered") == 0) {
                c->type = C_DELIVERED;
            } else if (strcmp(f->buf, "error_message") == 0) {
                c->type = C_ERRMSG;
            } else if (strcmp(f->buf, "first_delivery") == 0) {
                c->type = C_FIRST;
            } else if (strcmp(f->buf, "manually_thawed") == 0) {
                c->type = C_THAWED;
            } else if (strcmp(f->buf, "personal") == 0) {
                c->type = C_PERSONAL;
                for (;;) {
                    const char *save = f->p;
                    word(f, true);
                    if (f->err)
                        break;
                    if (strcmp(f->buf, "alias") != 0) {
                        f->p = save;
                        break;
                    }
                    item(f, true);
                    if (f->err)
                        break;
                    alias *al = arena_alloc(f->a, sizeof *al);
                    al->text = bufcopy(f);
                    al->next = c->aliases;
                    c->aliases = al;
                }
            } else if (strcmp(f->buf, "foranyaddress") == 0) {
                item(f, true);
                if (f->err)
                    break;
                if (*f->p != '(') {
                    ferr(f, "\"(\" expected after \"foranyaddress\" near line %d of filter file", f->line);
                    break;
                }
                if (!depth_ok(f))
                    break;
                c->type = C_FORANY;
                c->left = bufcopy(f);
                f->p++;
                skipsig(f);
                read_condition(f, &c->r, false);
                if (f->err)
                    break;
                if (*f->p != ')') {
                    ferr(f, "expected \")\" in line %d of filter file", f->line);
                    break;
                }
                f->p++;
                skipsig(f);
            } else {
                /* the left operand of a comparison */
                const char *isp = NULL;
                c->left = bufcopy(f);
                word(f, true);
                if (f->err)
                    break;
                if (strcasecmp(f->buf, "does") == 0 || strcasecmp(f->buf, "is") == 0) {
                    if (f->buf[0] == 'i' || f->buf[0] == 'I') {
                        c->type = f->buf[0] == 'i' ? C_IS : C_IS_CS;
                        isp = f->p;
                    }
                    word(f, true);
                    if (f->err)
                        break;
                    if (strcasecmp(f->buf, "not") == 0) {
                        c->testfor = !c->testfor;
                        if (isp)
                            isp = f->p;
                        word(f, true);
                        if (f->err)
                            break;
                    }
                }
                size_t k;
                for (k = 0; k < sizeof cond_words / sizeof cond_words[0]; k++)
                    if (strcmp(f->buf, cond_words[k].word) == 0) {
                        c->type = cond_words[k].type;
                        break;
                    }
                if (k == sizeof cond_words / sizeof cond_words[0]) {
                    /* "is [not] <value>": the word was the right operand */
                    if (!isp) {
                        ferr(f, "unrecognized condition word \"%s\" near line %d of filter file", f->buf, f->line);
                        break;
                    }
                    f->p = isp;
                }
                item(f, true);
                if (f->err)
                    break;
                c->right = bufcopy(f);
            }
        }
        *cur = c;
        if (*f->p == ')') {
            if (top)
                ferr(f, "unexpected \")\" in line %d of filter file", f->line);
            break;
        }
        if (*f->p == '(') {
            ferr(f, "unexpected \"(\" in line %d of filter file", f->line);
            break;
        }
        word(f, false);
        if (f->err)
            break;
        if (strcmp(f->buf, "then") == 0) {
            if (!top)
                ferr(f, "missing \")\" at end of condition near line %d of filter file", f->line);
            break;
        }
        if (strcmp(f->buf, "and") == 0) {
            cond *andc = arena_calloc(f->a, sizeof *andc);
            andc->parent = cur_parent;
            andc->type = C_AND;
            andc->testfor = true;
            andc->l = c;
            *cur = andc;
            cur = &andc->r;
            cur_parent = andc;
        } else if (strcmp(f->buf, "or") == 0) {
            cond *orc = arena_calloc(f->a, sizeof *orc), *or_parent = NULL;
            if (cur_parent) {
                while (cur_parent->parent && cur_parent->parent->type == C_AND)
                    cur_parent = cur_parent->parent;
                or_parent = cur_parent->parent;
            }
            orc->parent = or_parent;
            if (!or_parent)
                *out = orc;
            else
                or_parent->r = orc;
            orc->type = C_OR;
            orc->testfor = true;
            orc->l = cur_parent ? cur_parent : c;
            cur = &orc->r;
            cur_parent = orc;
        } else {
            ferr(f, "\"and\" or \"or\" or \"%s\" expected near line %d of filter file, but found \"%s\"",
                 top ? "then" : ")", f->line, f->buf);
            break;
        }
    }
    f->depth--;
    skipsig(f);
}

static bool read_command_list(fp *f, fcmd ***tail, bool conditional);

static fcmd *new_cmd(fp *f, fcmd ***tail, int kind)
{
    fcmd *c = arena_calloc(f->a, sizeof *c);
    c->kind = kind;
    c->num = -1;
    **tail = c;
    *tail = &c->next;
    return c;
}

/* The single-argument commands (and add and headers). */
static bool read_simple(fp *f, fcmd ***tail, int kind)
{
    bool ok = true;
    if ((kind == K_ADD || kind == K_HEADERS) && (f->seen_force || f->noerror_force)) {
        ferr(f, "\"seen\", \"unseen\", or \"noerror\" found before an \"%s\" command near line %d",
             filter_cmd_names[kind], f->line);
        ok = false;
    }
    item(f, false);
    if (!f->buf[0])
        ferr(f, "\"%s\" requires an argument near line %d of filter file", filter_cmd_names[kind], f->line);
    if (f->err)
        return false;
    const char *arg0 = NULL, *arg1 = NULL;
    int num = -1;
    if (kind == K_ADD) {
        arg0 = bufcopy(f);
        item(f, false);
        if (!f->buf[0] || strcmp(f->buf, "to") != 0) {
            ferr(f, "\"to\" expected in \"add\" command near line %d of filter file", f->line);
        } else {
            item(f, false);
            if (!f->buf[0])
                ferr(f, "value missing after \"to\" near line %d of filter file", f->line);
            else
                arg1 = bufcopy(f);
        }
    } else if (kind == K_HEADERS) {
        num = H_REMOVE;
        if (strcmp(f->buf, "add") == 0) {
            num = H_ADD;
        } else if (strcmp(f->buf, "charset") == 0) {
            num = H_CHARSET;
        } else if (strcmp(f->buf, "remove") != 0) {
            ferr(f, "\"add\", \"remove\", or \"charset\" expected after \"headers\" near line %d of filter file",
                 f->line);
            ok = false;
        }
        if (!(f->flags & FO_SYSTEM) && num != H_CHARSET) {
            ferr(f, "header addition and removal is available only in system filters: near line %d of filter file",
                 f->line);
            return false;
        }
        if (ok) {
            item(f, false);
            if (!f->buf[0])
                ferr(f, "value missing after \"add\", \"remove\", or \"charset\" near line %d of filter file", f->line);
            else
                arg0 = bufcopy(f);
        }
    } else {
        if (kind == K_LOGWRITE) {
            size_t n = strlen(f->buf);
            arg0 = n && f->buf[n - 1] == '\n' ? bufcopy(f) : arena_printf(f->a, "%s\n", f->buf);
        } else {
            arg0 = bufcopy(f);
        }
        if (kind == K_SAVE || kind == K_LOGFILE) {
            if (isdigit((unsigned char)*f->p)) {
                word(f, false);
                num = (int)strtol(f->buf, NULL, 8);
            }
        } else if (kind == K_DELIVER) {
            const char *save = f->p;
            word(f, false);
            if (strcmp(f->buf, "errors_to") == 0) {
                word(f, false);
                arg1 = bufcopy(f);
            } else {
                f->p = save;
            }
        }
    }
    if (f->err)
        return false;
    fcmd *c = new_cmd(f, tail, kind);
    c->seen = f->seen_force ? f->seen_value : (kind == K_DELIVER || kind == K_SAVE || kind == K_PIPE);
    c->noerror = f->noerror_force;
    c->arg[0] = arg0;
    c->arg[1] = arg1;
    c->num = num;
    return ok;
}

static bool read_if(fp *f, fcmd ***tail)
{
    bool ok = true;
    if (f->seen_force || f->noerror_force) {
        ferr(f, "\"seen\", \"unseen\", or \"noerror\" found before an \"if\" command near line %d", f->line);
        ok = false;
    }
    if (!depth_ok(f))
        return false;
    fcmd *c = new_cmd(f, tail, K_IF);
    branch **bt = &c->branches;
    f->depth++;
    do {
        branch *b = arena_calloc(f->a, sizeof *b);
        *bt = b;
        bt = &b->next;
        read_condition(f, &b->c, true);
        if (f->err) {
            ok = false;
            break;
        }
        fcmd **body = &b->body;
        if (!read_command_list(f, &body, true)) {
            ok = false;
            break;
        }
    } while (f->had == HAD_ELIF);
    if (ok && f->had == HAD_ELSE) {
        fcmd **els = &c->els;
        if (!read_command_list(f, &els, true)) {
            ok = false;
        } else if (f->had != HAD_ENDIF) {
            ferr(f, "\"endif\" missing near line %d of filter file", f->line);
            ok = false;
        }
    }
    f->depth--;
    f->had = HAD_NEITHER;
    return ok;
}

static bool read_mail(fp *f, fcmd ***tail, int kind)
{
    bool ok = true;
    fcmd *c = arena_calloc(f->a, sizeof *c);
    c->kind = kind;
    c->num = -1;
    c->seen = f->seen_force ? f->seen_value : false;
    c->noerror = f->noerror_force;
    for (;;) {
        const char *save = f->p;
        word(f, false);
        if (f->err) {
            ok = false;
            break;
        }
        if (strcmp(f->buf, "return") == 0) {
            c->return_message = true;
            word(f, false);
            if (strcmp(f->buf, "message") != 0) {
                ferr(f, "\"return\" not followed by \"message\"  near line %d of filter file", f->line);
                ok = false;
                break;
            }
            continue;
        }
        if (strcmp(f->buf, "expand") == 0) {
            c->expand_file = true;
            word(f, false);
            if (strcmp(f->buf, "file") != 0) {
                ferr(f, "\"expand\" not followed by \"file\"  near line %d of filter file", f->line);
                ok = false;
                break;
            }
        }
        int i;
        for (i = 0; i < MA_N; i++)
            if (strcmp(f->buf, filter_mail_names[i]) == 0)
                break;
        if (i == MA_N) {
            f->p = save;
            break;
        }
        item(f, false);
        if (f->err) {
            ok = false;
            break;
        }
        c->arg[i] = bufcopy(f);
    }
    if (kind == K_VACATION) {
        if (!c->arg[MA_FILE]) {
            c->arg[MA_FILE] = ".vacation.msg";
            c->expand_file = true;
        }
        if (!c->arg[MA_LOG])
            c->arg[MA_LOG] = ".vacation.log";
        if (!c->arg[MA_ONCE])
            c->arg[MA_ONCE] = ".vacation";
        if (!c->arg[MA_ONCE_REPEAT])
            c->arg[MA_ONCE_REPEAT] = "7d";
        if (!c->arg[MA_SUBJECT])
            c->arg[MA_SUBJECT] = "On vacation";
    }
    **tail = c;
    *tail = &c->next;
    return ok;
}

static bool read_command(fp *f, fcmd ***tail)
{
    bool ok = true, seen_word = false, noerror_word = false;
    if (strncmp(f->p, "if(", 3) == 0) {
        strcpy(f->buf, "if");
        f->p += 2;
    } else if (strncmp(f->p, "elif(", 5) == 0) {
        strcpy(f->buf, "elif");
        f->p += 4;
    } else {
        word(f, false);
        if (f->err)
            return false;
    }
    int kind;
    for (kind = 0; kind < K__N; kind++)
        if (strcmp(f->buf, filter_cmd_names[kind]) == 0)
            break;
    switch (kind) {
    case K_ADD: case K_HEADERS: case K_DELIVER: case K_LOGFILE: case K_LOGWRITE: case K_PIPE: case K_SAVE:
    case K_TESTPRINT:
        ok = read_simple(f, tail, kind);
        break;
    case K_ELIF: case K_ELSE: case K_ENDIF:
        if (f->seen_force || f->noerror_force) {
            ferr(f, "\"seen\", \"unseen\", or \"noerror\" near line %d is not followed by a command", f->line);
            ok = false;
        }
        if (f->expect_endif > 0) {
            f->had = kind == K_ELIF ? HAD_ELIF : kind == K_ELSE ? HAD_ELSE : HAD_ENDIF;
        } else {
            ferr(f, "unexpected \"%s\" command near line %d of filter file", f->buf, f->line);
            ok = false;
        }
        break;
    case K_DEFER: case K_FAIL: case K_FREEZE: case K_FINISH: {
        const char *text = NULL;
        bool seen_value = f->seen_value;
        if (kind != K_FINISH) {
            unsigned bit = kind == K_DEFER ? FO_DEFER : kind == K_FAIL ? FO_FAIL : FO_FREEZE;
            if (!(f->flags & bit)) {
                ferr(f, "filtering command \"%s\" is disabled: near line %d of filter file", f->buf, f->line);
                ok = false;
                break;
            }
            /* the text: a quoted string, or after the word "text" */
            const char *save = f->p;
            item(f, false);
            if (*save != '"' && (!f->buf[0] || strcmp(f->buf, "text") != 0)) {
                f->p = save;
                text = "";
            } else {
                if (*save != '"')
                    item(f, false);
                text = bufcopy(f);
            }
            seen_value = false;            /* these never count as deliveries */
        }
        fcmd *c = new_cmd(f, tail, kind);
        c->seen = f->seen_force ? seen_value : false;
        c->arg[0] = text;
        break;
    }
    case K_IF:
        ok = read_if(f, tail);
        break;
    case K_MAIL: case K_VACATION:
        ok = read_mail(f, tail, kind);
        break;
    case K_SEEN: case K_UNSEEN:
        if (!*f->p) {
            ferr(f, "\"seen\" or \"unseen\" near line %d is not followed by a command", f->line);
            ok = false;
        }
        if (f->seen_force) {
            ferr(f, "\"seen\" or \"unseen\" repeated near line %d", f->line);
            ok = false;
        }
        f->seen_value = kind == K_SEEN;
        f->seen_force = true;
        seen_word = true;
        break;
    case K_NOERROR:
        if (!*f->p) {
            ferr(f, "\"noerror\" near line %d is not followed by a command", f->line);
            ok = false;
        }
        f->noerror_force = true;
        noerror_word = true;
        break;
    default:
        ferr(f, "unknown filtering command \"%s\" near line %d of filter file", f->buf, f->line);
        ok = false;
        break;
    }
    if (!seen_word && !noerror_word)
        f->seen_force = f->noerror_force = false;
    return ok;
}

/* Commands up to the end (or, conditional, up to elif/else/endif). */
static bool read_command_list(fp *f, fcmd ***tail, bool conditional)
{
    if (conditional)
        f->expect_endif++;
    f->had = HAD_NEITHER;
    while (*f->p && f->had == HAD_NEITHER) {
        if (!read_command(f, tail))
            return false;
        skipsig(f);
    }
    if (conditional) {
        f->expect_endif--;
        if (f->had == HAD_NEITHER) {
            f->err = "\"endif\" missing at end of filter file";
            return false;
        }
    }
    return true;
}

fcmd *filter_read(const char *text, unsigned flags, arena *a, const char **err)
{
    fp f = { .line = 1, .a = a, .flags = flags, .p = text };
    fcmd *cmds = NULL, **tail = &cmds;
    skipsig(&f);
    if (read_command_list(&f, &tail, false))
        return cmds;
    *err = f.err;
    return NULL;
}
