/* authres.h: Authentication-Results header fields (RFC 8601): parse the
 * ones a message carries, and build the one an ADMD adds.
 *
 * Parsing is tolerant: a field that cannot be fully parsed still yields
 * its authserv-id and every resinfo that could be understood, and the
 * call returns ST_FAIL so the caller knows it was malformed.  Method,
 * result, ptype and property names are lower-cased; values are kept as
 * written (quotes removed from quoted strings).
 *
 * Example of building:
 *     authres_result r[2] = {
 *         { .method = "dkim", .result = "pass", .comment = "2048-bit key",
 *           .nprops = 2, .props = (authres_prop[]){ {"header","d","example.com"},
 *                                                   {"header","s","sel"} } },
 *         { .method = "spf", .result = "none", ... } };
 *     char *v = authres_build(a, "mx.example.org", r, 2);
 *     -> "mx.example.org;\r\n\tdkim=pass (2048-bit key) header.d=example.com header.s=sel;\r\n\tspf=none ..."
 * The caller prepends "Authentication-Results: " (or uses authres_header()).
 */
#ifndef POSTERN_MSGAUTH_AUTHRES_H
#define POSTERN_MSGAUTH_AUTHRES_H

#include "core/arena.h"
#include "core/status.h"
#include <stddef.h>

typedef struct authres_prop {
    const char *ptype;       /* "smtp", "header", "body", "policy" */
    const char *property;    /* "mailfrom", "d", "i", "b" */
    const char *value;
} authres_prop;

typedef struct authres_result {
    const char *method;      /* "dkim", "spf", "dmarc", "arc", "dkim-adsp" ... */
    const char *result;      /* "pass", "fail", "none", ... */
    const char *reason;      /* reason= value, or NULL */
    const char *comment;     /* building only: a comment after the result, or NULL */
    authres_prop *props;
    int nprops;
    const char *raw;         /* parsing: the resinfo as written, whitespace runs
                                (incl. folding) made one space, trimmed */
} authres_result;

typedef struct authres {
    const char *authserv_id; /* as written */
    int version;             /* authres-version, 0 when absent */
    authres_result *res;     /* in field order; nres == 0 for "none" */
    int nres;
} authres;

/* Parse the value of one Authentication-Results (or the part of an
 * ARC-Authentication-Results after its "i=N;") field. */
status authres_parse(arena *a, const char *value, size_t len, authres *out, char **err);

/* Value of ptype.property in r, or NULL (first occurrence). */
const char *authres_prop_get(const authres_result *r, const char *ptype, const char *property);

/* First result of r with this method, or NULL. */
const authres_result *authres_find(const authres *r, const char *method);

/* "method=result (comment) reason=\"..\" ptype.prop=value ..." */
char *authres_result_text(arena *a, const authres_result *r);

/* The field value "authserv-id;\r\n\tres1;\r\n\tres2" (folded, one result a
 * line), or "authserv-id; none" when n == 0. */
char *authres_build(arena *a, const char *authserv_id, const authres_result *res, int n);

/* The whole field, "Authentication-Results: <authres_build>\r\n". */
char *authres_header(arena *a, const char *authserv_id, const authres_result *res, int n);

#endif
