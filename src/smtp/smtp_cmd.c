/* smtp_cmd.c: MAIL/RCPT argument parsing. */
#include "smtp/smtp_cmd.h"
#include "spool/spool.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parse "<path>" (or a bare address) at *pp.  Quoted local parts may hold
 * '>' and spaces; a source route "@a,@b:" is dropped. */
static const char *parse_path(const char **pp, arena *a, const char **out)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    bool angle = *p == '<';
    if (angle)
        p++;
    const char *start = p;
    bool inq = false;
    while (*p) {
        if (inq) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                inq = false;
        } else if (*p == '"') {
            inq = true;
        } else if (angle ? *p == '>' : (*p == ' ' || *p == '\t')) {
            break;
        } else if (*p < 32 || *p == 127) {
            return "control characters are not allowed in addresses";
        }
        p++;
    }
    if (inq)
        return "unbalanced quotes in address";
    if (angle && *p != '>')
        return "missing closing angle bracket in address";
    size_t n = (size_t)(p - start);
    if (n > SMTP_MAX_ADDRESS)
        return "address too long";
    const char *addr = start;
    if (n && addr[0] == '@') {           /* source route */
        const char *colon = memchr(addr, ':', n);
        if (!colon)
            return "malformed source route in address";
        n -= (size_t)(colon + 1 - addr);
        addr = colon + 1;
    }
    if (!angle && n == 0)
        return "missing address";
    *out = arena_strndup(a, addr, n);
    if (angle)
        p++;
    *pp = p;
    return NULL;
}

static const char *param(const char **pp, arena *a, const char **key, const char **val)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    if (!*p) {
        *key = NULL;
        return NULL;
    }
    const char *k = p;
    while (*p && *p != '=' && *p != ' ')
        p++;
    *key = arena_strndup(a, k, (size_t)(p - k));
    *val = NULL;
    if (*p == '=') {
        const char *v = ++p;
        while (*p && *p != ' ')
            p++;
        *val = arena_strndup(a, v, (size_t)(p - v));
    }
    for (const char *c = *key; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-')
            return "malformed ESMTP parameter";
    *pp = p;
    return NULL;
}



long smtp_xtext_decode(const char *in, arena *a, char **out)
{
    char *r = arena_alloc(a, strlen(in) + 1);
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        if (*p == '+') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return -1;
            char hex[3] = { p[1], p[2], 0 };
            r[o++] = (char)strtol(hex, NULL, 16);
            p += 2;
        } else if (*p < 33 || *p > 126 || *p == '=') {
            return -1;
        } else {
            r[o++] = *p;
        }
    }
    r[o] = '\0';
    *out = r;
    return (long)o;
}

static bool xtext_ok(const char *s, arena *a)
{
    char *x;
    return smtp_xtext_decode(s, a, &x) >= 0;
}

const char *smtp_parse_mail(const char *arg, bool esmtp, arena *a, smtp_mail_args *out)
{
    memset(out, 0, sizeof *out);
    if (strncasecmp(arg, "FROM:", 5) != 0)
        return "MAIL must have an address operand";
    const char *p = arg + 5;
    const char *e = parse_path(&p, a, &out->address);
    if (e)
        return e;
    for (;;) {
        const char *k, *v;
        if ((e = param(&p, a, &k, &v)))
            return e;
        if (!k)
            break;
        if (!esmtp)
            return "parameters are not allowed after HELO (use EHLO)";
        if (!strcasecmp(k, "SIZE")) {
            char *end;
            if (!v || !*v || !isdigit((unsigned char)*v))
                return "SIZE requires a number";
            out->size = strtoull(v, &end, 10);
            if (*end)
                return "SIZE requires a number";
        } else if (!strcasecmp(k, "BODY")) {
            if (!v || (strcasecmp(v, "7BIT") && strcasecmp(v, "8BITMIME")))
                return "BODY must be 7BIT or 8BITMIME";
            out->body = v;
        } else if (!strcasecmp(k, "RET")) {
            if (out->ret)
                return "RET given twice";
            if (v && !strcasecmp(v, "FULL"))
                out->ret = SPOOL_RET_FULL;
            else if (v && !strcasecmp(v, "HDRS"))
                out->ret = SPOOL_RET_HDRS;
            else
                return "RET must be FULL or HDRS";
        } else if (!strcasecmp(k, "ENVID")) {
            if (out->envid)
                return "ENVID given twice";
            if (!v || !*v || strlen(v) > 100 || !xtext_ok(v, a))
                return "malformed ENVID";
            out->envid = v;
        } else if (!strcasecmp(k, "AUTH")) {
            if (!v || !*v)
                return "malformed AUTH parameter";
            out->auth = v;
        } else if (!strcasecmp(k, "SMTPUTF8")) {
            if (v)
                return "SMTPUTF8 takes no value";
            out->smtputf8 = true;
        } else {
            return "unsupported MAIL parameter";
        }
    }
    return NULL;
}

const char *smtp_parse_rcpt(const char *arg, arena *a, smtp_rcpt_args *out)
{
    memset(out, 0, sizeof *out);
    if (strncasecmp(arg, "TO:", 3) != 0)
        return "RCPT must have an address operand";
    const char *p = arg + 3;
    const char *e = parse_path(&p, a, &out->address);
    if (e)
        return e;
    if (!*out->address)
        return "empty recipient address";
    for (;;) {
        const char *k, *v;
        if ((e = param(&p, a, &k, &v)))
            return e;
        if (!k)
            break;
        if (!strcasecmp(k, "NOTIFY")) {
            if (out->notify || !v || !*v)
                return "malformed NOTIFY";
            if (!strcasecmp(v, "NEVER")) {
                out->notify = SPOOL_DSN_NEVER;
                continue;
            }
            const char *s = v;
            while (*s) {
                size_t n = strcspn(s, ",");
                if (n == 7 && !strncasecmp(s, "SUCCESS", 7)) out->notify |= SPOOL_DSN_SUCCESS;
                else if (n == 7 && !strncasecmp(s, "FAILURE", 7)) out->notify |= SPOOL_DSN_FAILURE;
                else if (n == 5 && !strncasecmp(s, "DELAY", 5)) out->notify |= SPOOL_DSN_DELAY;
                else return "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY";
                s += n;
                if (*s == ',')
                    s++;
            }
        } else if (!strcasecmp(k, "ORCPT")) {
            if (out->orcpt || !v || !strchr(v, ';') || strlen(v) > 500 || !xtext_ok(strchr(v, ';') + 1, a))
                return "malformed ORCPT";
            out->orcpt = v;
        } else {
            return "unsupported RCPT parameter";
        }
    }
    return NULL;
}
