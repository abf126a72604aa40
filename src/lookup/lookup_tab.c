/* lookup_tab.c: the one table of lookup drivers (one line per driver). */
#include "lookup.h"

const lookup_driver *const lookup_drivers[] = {
    &lookup_cdb,
    &lookup_dnsdb,
    &lookup_dsearch,
    &lookup_iplsearch,
    &lookup_lmdb,
    &lookup_lsearch,
    &lookup_nwildlsearch,
    &lookup_wildlsearch,
    NULL,
};
