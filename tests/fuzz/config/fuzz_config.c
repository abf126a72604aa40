/* fuzz_config.c: the configuration reader on arbitrary text: macros,
 * directives, sections, option values.  Includes are confined to paths
 * that do not exist, so the fuzzer cannot read the machine's files. */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    /* Keep .include away from real files: rewrite "/" at the start of a
     * directive argument is not enough, so refuse inputs naming include. */
    if (strstr(text, "include")) {
        free(text);
        return 0;
    }
    const char *defs[] = { "FUZZ=1", "EMPTY", NULL };
    config *c = NULL;
    char *err = NULL;
    if (config_load_string(text, "fuzz.conf", defs, &c, &err) == ST_OK) {
        config_set_current(c);
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            config_print(c, "all", devnull, true);
            config_print(c, "routers", devnull, true);
            config_print(c, "transports", devnull, true);
            config_print(c, "acl", devnull, true);
            fclose(devnull);
        }
        config_free(c);
    }
    free(text);
    return 0;
}
