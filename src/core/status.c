/* status.c: names of status values, for logs and debugging. */
#include "status.h"

const char *status_name(status st)
{
    static const char *const names[ST__COUNT] = {
        [ST_OK] = "OK",           [ST_DEFER] = "DEFER",
        [ST_FAIL] = "FAIL",       [ST_ERROR] = "ERROR",
        [ST_FAIL_FORCED] = "FAIL_FORCED",
        [ST_DECLINED] = "DECLINED", [ST_PASS] = "PASS",
        [ST_DISCARD] = "DISCARD", [ST_SKIP] = "SKIP",
        [ST_REROUTED] = "REROUTED", [ST_PANIC] = "PANIC",
        [ST_NOTFOUND] = "NOTFOUND",
    };
    if ((unsigned)st >= ST__COUNT || !names[st])
        return "UNKNOWN";
    return names[st];
}
