/* spool_read.c: parse an Exim-format -H file.  The file is outside input
 * in the sense that another program (or a crash) may have written it, so
 * every field is checked and a malformed file is an error, never a crash. */
#include "spool/spool.h"
#include "core/gstr.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SPOOL_MAX_HEADER_FILE (512L * 1024 * 1024)

typedef struct cursor {
    char *p, *end;
} cursor;

static char *next_line(cursor *c)
{
    if (c->p >= c->end)
        return NULL;
    char *s = c->p;
    char *nl = memchr(s, '\n', (size_t)(c->end - s));
    if (!nl)
        return NULL;
    *nl = '\0';
    c->p = nl + 1;
    return s;
}

static bool parse_long(const char *s, long *out, char **end)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (errno || *end == s)
        return false;
    *out = v;
    return true;
}

/* "[ip]:port" or "ip.port" (older format) */
static bool parse_hostport(arena *a, const char *s, const char **addr, int *port)
{
    const char *colon = NULL;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return false;
        *addr = arena_strndup(a, s + 1, (size_t)(rb - s - 1));
        colon = rb + 1;
    } else {
        colon = strrchr(s, '.');
        if (!colon)
            return false;
        *addr = arena_strndup(a, s, (size_t)(colon - s));
    }
    long p;
    char *e;
    if (!parse_long(colon + 1, &p, &e) || *e || p < 0 || p > 65535)
        return false;
    *port = (int)p;
    return true;
}

static status bad(arena *a, char **err, const char *id, const char *what)
{
    *err = arena_printf(a, "spool file %s-H is malformed: %s", id, what);
    return ST_ERROR;
}

/* Parse a non-recipients tree in preorder. */
static bool read_tree(cursor *c, arena *a, spool_msg *m, int depth)
{
    if (depth > 64)
        return false;
    char *l = next_line(c);
    if (!l || strlen(l) < 4 || (l[0] != 'Y' && l[0] != 'N') || (l[1] != 'Y' && l[1] != 'N') || l[2] != ' ')
        return false;
    const char **n = arena_alloc(a, sizeof *n * (size_t)(m->n_nonrcpt + 1));
    if (m->n_nonrcpt)
        memcpy(n, m->nonrcpt, sizeof *n * (size_t)m->n_nonrcpt);
    n[m->n_nonrcpt++] = arena_strdup(a, l + 3);
    m->nonrcpt = n;
    if (l[0] == 'Y' && !read_tree(c, a, m, depth + 1))
        return false;
    if (l[1] == 'Y' && !read_tree(c, a, m, depth + 1))
        return false;
    return true;
}

/* Recipient line: "addr" or "addr orcpt len,dsn errors_to len,parent#flags". */
static bool parse_rcpt(char *l, arena *a, spool_rcpt *r)
{
    memset(r, 0, sizeof *r);
    r->parent = -1;
    char *hash = strrchr(l, '#');
    if (!hash || strchr(hash, ' ')) {
        r->address = arena_strdup(a, l);
        return *l != '\0';
    }
    long flags;
    char *e;
    if (!parse_long(hash + 1, &flags, &e) || *e) {
        r->address = arena_strdup(a, l);
        return true;
    }
    *hash = '\0';
    /* errors_to part: " <errors_to> <len>,<parent>" */
    char *sp = strrchr(l, ' ');
    if (!sp)
        return false;
    long elen, parent;
    if (!parse_long(sp + 1, &elen, &e) || *e != ',' || !parse_long(e + 1, &parent, &e) || *e)
        return false;
    if (elen < 0 || sp - l < elen + 1)
        return false;
    char *eto = sp - elen;
    if (eto[-1] != ' ')
        return false;
    r->errors_to = elen ? arena_strndup(a, eto, (size_t)elen) : NULL;
    r->parent = (int)parent;
    char *rest_end = eto - 1;          /* the space before errors_to */
    *rest_end = '\0';
    if (flags & 0x02) {
        sp = strrchr(l, ' ');
        long olen, dsn;
        if (!sp || !parse_long(sp + 1, &olen, &e) || *e != ',' || !parse_long(e + 1, &dsn, &e) || *e)
            return false;
        if (olen < 0 || sp - l < olen + 1)
            return false;
        char *o = sp - olen;
        if (o[-1] != ' ')
            return false;
        r->orcpt = olen ? arena_strndup(a, o, (size_t)olen) : NULL;
        r->dsn_flags = (unsigned)dsn;
        o[-1] = '\0';
    }
    r->address = arena_strdup(a, l);
    return *l != '\0';
}

status spool_read_header(const spool_settings *ss, const char *id, arena *a, spool_msg **out, char **err)
{
    char path[PATH_MAX];
    spool_path(ss, id, 'H', path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = arena_printf(a, "cannot open %s: %s", path, strerror(errno));
        return errno == ENOENT ? ST_NOTFOUND : ST_DEFER;
    }
    gstr g;
    gstr_init(&g, a, 4096);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (g.len + n > (size_t)SPOOL_MAX_HEADER_FILE) {
            fclose(f);
            return bad(a, err, id, "too large");
        }
        gstr_catn(&g, buf, n);
    }
    fclose(f);
    cursor c = { g.s, g.s + g.len };
    spool_msg *m = arena_calloc(a, sizeof *m);
    char *l = next_line(&c);
    if (!l || strlen(l) != SPOOL_ID_LEN + 2 || strncmp(l, id, SPOOL_ID_LEN) != 0 || strcmp(l + SPOOL_ID_LEN, "-H"))
        return bad(a, err, id, "first line is not the file name");
    memcpy(m->id, id, SPOOL_ID_LEN);
    if (!(l = next_line(&c)))
        return bad(a, err, id, "missing owner line");
    {
        char *sp = strchr(l, ' ');
        char *e;
        if (!sp || !parse_long(sp + 1, &m->uid, &e) || *e != ' ' || !parse_long(e + 1, &m->gid, &e))
            return bad(a, err, id, "malformed owner line");
        m->login = arena_strndup(a, l, (size_t)(sp - l));
    }
    if (!(l = next_line(&c)) || l[0] != '<' || l[strlen(l) - 1] != '>')
        return bad(a, err, id, "malformed sender line");
    m->sender = arena_strndup(a, l + 1, strlen(l) - 2);
    if (!(l = next_line(&c)))
        return bad(a, err, id, "missing time line");
    {
        long t, w;
        char *e;
        if (!parse_long(l, &t, &e) || *e != ' ' || !parse_long(e + 1, &w, &e))
            return bad(a, err, id, "malformed time line");
        m->received = t;
        m->warning_count = (int)w;
    }
    /* -variables */
    while (c.p < c.end && *c.p == '-') {
        l = next_line(&c);
        if (!l)
            return bad(a, err, id, "truncated");
        char *v = l + 1;
        bool tainted = *v == '-';
        if (tainted)
            v++;
        char *sp = strchr(v, ' ');
        char *val = sp ? sp + 1 : NULL;
        if (sp)
            *sp = '\0';
        arena *va = a;   /* values are stored in a; taint marks are not kept on read */
        (void)tainted;
#define NAME(s) (strcmp(v, s) == 0)
#define STR(field) (m->field = val ? arena_strdup(va, val) : NULL)
        if (NAME("aclc") || NAME("aclm")) {
            char *vs = val ? strrchr(val, ' ') : NULL;
            long len;
            char *e;
            if (!vs || !parse_long(vs + 1, &len, &e) || *e || len < 0 || c.end - c.p < len + 1 || c.p[len] != '\n')
                return bad(a, err, id, "malformed ACL variable");
            spool_var *sv = arena_calloc(a, sizeof *sv);
            sv->kind = v[3];
            sv->name = arena_strndup(a, val, (size_t)(vs - val));
            sv->value = arena_memdup(a, c.p, (size_t)len);
            c.p += len + 1;
            sv->next = m->vars;
            m->vars = sv;
        } else if (NAME("received_time_usec")) {
            if (val && val[0] == '.')
                m->received_usec = strtol(val + 1, NULL, 10);
        } else if (NAME("received_time_complete")) {
            if (val) {
                char *e;
                m->complete_sec = strtol(val, &e, 10);
                if (*e == '.')
                    m->complete_usec = strtol(e + 1, NULL, 10);
            }
        } else if (NAME("host_address")) {
            if (!val || !parse_hostport(a, val, &m->host_address, &m->host_port))
                return bad(a, err, id, "malformed host_address");
        } else if (NAME("interface_address")) {
            if (!val || !parse_hostport(a, val, &m->interface_address, &m->interface_port))
                return bad(a, err, id, "malformed interface_address");
        } else if (NAME("helo_name")) STR(helo_name);
        else if (NAME("host_name")) STR(host_name);
        else if (NAME("ident")) STR(ident);
        else if (NAME("received_protocol")) STR(received_protocol);
        else if (NAME("active_hostname")) STR(active_hostname);
        else if (NAME("auth_id")) STR(auth_id);
        else if (NAME("auth_sender")) STR(auth_sender);
        else if (NAME("host_auth")) STR(host_auth);
        else if (NAME("host_auth_pubname")) STR(host_auth_pubname);
        else if (NAME("tls_cipher")) STR(tls_cipher);
        else if (NAME("tls_peerdn")) STR(tls_peerdn);
        else if (NAME("tls_sni")) STR(tls_sni);
        else if (NAME("tls_ver")) STR(tls_ver);
        else if (NAME("dsn_envid")) STR(dsn_envid);
        else if (NAME("dsn_ret")) m->dsn_ret = val ? atoi(val) : 0;
        else if (NAME("body_linecount")) m->body_linecount = val ? atol(val) : 0;
        else if (NAME("body_zerocount")) m->body_zerocount = val ? atol(val) : 0;
        else if (NAME("max_received_linelength")) m->max_received_linelength = val ? atol(val) : 0;
        else if (NAME("frozen")) m->frozen = val ? atol(val) : 1;
        else if (NAME("deliver_firsttime")) m->deliver_firsttime = true;
        else if (NAME("local")) m->local = true;
        else if (NAME("localerror")) m->localerror = true;
        else if (NAME("manual_thaw")) m->manual_thaw = true;
        else if (NAME("N")) m->dont_deliver = true;
        else if (NAME("host_lookup_failed")) m->host_lookup_failed = true;
        else if (NAME("allow_unqualified_sender")) m->allow_unqualified_sender = true;
        else if (NAME("allow_unqualified_recipient")) m->allow_unqualified_recipient = true;
        else if (NAME("sender_set_untrusted")) m->sender_set_untrusted = true;
        else if (NAME("spool_file_wireformat")) m->spool_file_wireformat = true;
        else if (NAME("tls_certificate_verified")) m->tls_certificate_verified = true;
        else if (NAME("smtputf8")) m->smtputf8 = true;
        /* anything else (tls_resumption, spam_score_int, ...) is skipped */
#undef NAME
#undef STR
    }
    /* non-recipients */
    if (c.p < c.end && strncmp(c.p, "XX\n", 3) == 0) {
        next_line(&c);
    } else if (!read_tree(&c, a, m, 0)) {
        return bad(a, err, id, "malformed non-recipients tree");
    }
    if (!(l = next_line(&c)))
        return bad(a, err, id, "missing recipient count");
    long nr;
    char *e;
    if (!parse_long(l, &nr, &e) || *e || nr < 0 || nr > 1000000)
        return bad(a, err, id, "malformed recipient count");
    for (long i = 0; i < nr; i++) {
        if (!(l = next_line(&c)))
            return bad(a, err, id, "truncated recipient list");
        spool_rcpt r;
        if (!parse_rcpt(l, a, &r))
            return bad(a, err, id, "malformed recipient line");
        spool_add_rcpt(m, a, &r);
    }
    if (!(l = next_line(&c)) || *l)
        return bad(a, err, id, "missing blank line before headers");
    while (c.p < c.end) {
        long len;
        if (!parse_long(c.p, &len, &e) || len < 0 || e + 2 > c.end || e[1] != ' ')
            return bad(a, err, id, "malformed header length");
        char type = e[0];
        char *text = e + 2;
        if (c.end - text < len)
            return bad(a, err, id, "truncated header");
        spool_add_header(m, a, type, text, (size_t)len);
        c.p = text + len;
    }
    *out = m;
    return ST_OK;
}
