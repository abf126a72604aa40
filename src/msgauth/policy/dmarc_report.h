/* dmarc_report.h: what DMARC reporting is made of:
 *  - the per-message history record Exim writes to dmarc_history_file (the
 *    OpenDMARC import format: "key value" lines, a record begins at "job");
 *  - aggregate reports (RFC 9990 XML) built from history records, one per
 *    policy domain and period;
 *  - failure reports (RFC 9991, RFC 6591 AFRF) for one message. */
#ifndef POSTERN_MSGAUTH_DMARC_REPORT_H
#define POSTERN_MSGAUTH_DMARC_REPORT_H

#include "core/arena.h"
#include "msgauth/policy/dmarc.h"
#include <stdbool.h>
#include <time.h>

#define DMARC_HIST_MAX_DKIM 16     /* dkim lines kept per record */
#define DMARC_HIST_MAX_RUA 8
#define DMARC_HIST_MAX_LINE 4096

/* OpenDMARC's numeric codes, as written in history files. */
enum {
    ARES_PASS = 0, ARES_SOFTFAIL = 2, ARES_NEUTRAL = 3, ARES_TEMPERROR = 4,
    ARES_PERMERROR = 5, ARES_NONE = 6, ARES_FAIL = 7, ARES_UNKNOWN = 11,
    HIST_POLICY_ABSENT = 14, HIST_POLICY_PASS = 15, HIST_POLICY_REJECT = 16,
    HIST_POLICY_QUARANTINE = 17, HIST_POLICY_NONE = 18,
    HIST_ALIGN_PASS = 4, HIST_ALIGN_FAIL = 5,
    HIST_ACTION_REJECT = 0, HIST_ACTION_ACCEPT = 2, HIST_ACTION_TEMPFAIL = 3,
    HIST_ACTION_QUARANTINE = 4,
};

typedef struct dmarc_hist_dkim {
    const char *domain, *selector;
    int result;                    /* ARES_* */
} dmarc_hist_dkim;

typedef struct dmarc_hist {
    const char *job, *reporter, *ipaddr, *from, *mfrom, *pdomain;
    long long received;
    int spf;                       /* ARES_*, -1 when absent */
    dmarc_hist_dkim dkim[DMARC_HIST_MAX_DKIM];
    int ndkim;
    int policy;                    /* HIST_POLICY_* */
    const char *rua[DMARC_HIST_MAX_RUA];
    int nrua;
    int pct, adkim, aspf, p, sp;   /* p/sp/adkim/aspf: 'n' 'q' 'r' 's' or 0 */
    int align_dkim, align_spf, action;
} dmarc_hist;

/* Fill a history record from one evaluation. */
void dmarc_hist_from_result(dmarc_hist *h, const dmarc_result *r, const dmarc_input *in,
                            const char *job, const char *reporter, long long received,
                            const char *ip, const char *mfrom_domain, arena *a);
/* The record as text (ends with a newline). */
char *dmarc_hist_format(const dmarc_hist *h, arena *a);
/* Parse history text into records (an arena array).  Malformed lines are
 * skipped and counted in *bad; never fails. */
int dmarc_hist_parse(const char *text, size_t len, arena *a, dmarc_hist **out, int *bad);

typedef struct dmarc_agg_opts {
    const char *org_name, *email, *extra_contact;
    const char *receiver;          /* our domain (file names, Subject); NULL:
                                      the domain of email */
    long long begin, end;          /* records with begin <= received < end */
    const char *report_id_prefix;  /* NULL: derived from org and time */
    dmarc_mode mode;               /* discovery_method: psl or treewalk */
} dmarc_agg_opts;

typedef struct dmarc_agg_report {
    const char *domain;            /* policy domain reported on */
    const char *report_id;
    const char *filename;          /* RFC 9990: receiver!domain!begin!end!id.xml */
    char *xml;
    int records, messages;
    const char *rua;               /* first rua of the domain's records, or NULL */
} dmarc_agg_report;

/* One report per policy domain found in the records within the period. */
int dmarc_agg_build(const dmarc_hist *h, int nh, const dmarc_agg_opts *o, arena *a,
                    dmarc_agg_report **out);
/* The report as an RFC 5322 message (CRLF lines) to the rua= mailto
 * addresses: RFC 9990 Subject, the XML as a text/xml attachment named
 * after the report.  NULL when the domain gave no mailto: address. */
char *dmarc_agg_mail(const dmarc_agg_report *r, const dmarc_agg_opts *o, time_t now, arena *a);

typedef struct dmarc_fail_opts {
    const char *forensic_sender;   /* From: (Exim's dmarc_forensic_sender) */
    const char *to;                /* the ruf address (mailto: stripped) */
    const char *reporter;          /* our host name */
    const char *ip, *mfrom;        /* client address, MAIL FROM */
    const char *spf_domain;        /* the SPF-checked domain and its record */
    const char *spf_record;
    const char *authres;           /* the A-R value recorded for the message */
    const char *delivery_result;   /* "delivered", "spam", "policy", "reject", "other" */
    time_t now;
    const char *headers;           /* original header section (CRLF lines) */
    size_t headers_len;
} dmarc_fail_opts;

/* Should a failure report be sent, under the record's fo= options? */
bool dmarc_fail_wanted(const dmarc_result *r, const dmarc_input *in);
/* The first mailto: address of a rua/ruf list (size limits "!..." removed). */
const char *dmarc_uri_mailto(const char *list, arena *a);
/* Every mailto: address of the list, ", "-separated (RFC 9991: each of
 * them gets the report); NULL when there is none. */
const char *dmarc_uri_mailtos(const char *list, arena *a);
/* A complete RFC 5322 message (CRLF lines): multipart/report with a
 * message/feedback-report part (RFC 6591) and the original headers. */
char *dmarc_fail_build(const dmarc_result *r, const dmarc_fail_opts *o, arena *a);

#endif
