/* fuzz_spool_header.c: the -H reader on arbitrary files (written by Exim,
 * by postern, or left half-written by a crash). */
#include "spool/spool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-spool-%d", (int)getpid());
        mkdir(dir, 0700);
        char in[128];
        snprintf(in, sizeof in, "%s/input", dir);
        mkdir(in, 0700);
    }
    spool_settings ss = { .directory = dir };
    char path[256];
    spool_path(&ss, "1xUwzr-0007o7-0I", 'H', path, sizeof path);
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    arena *a = arena_new("fuzz", false);
    spool_msg *m = NULL;
    char *err = NULL;
    if (spool_read_header(&ss, "1xUwzr-0007o7-0I", a, &m, &err) == ST_OK) {
        FILE *out = fopen("/dev/null", "w");
        spool_write_header_file(out, m);   /* anything read can be written back */
        fclose(out);
    }
    arena_free(a);
    return 0;
}
