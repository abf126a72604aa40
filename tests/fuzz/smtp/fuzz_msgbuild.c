/* fuzz_msgbuild.c: header/body split of incoming message lines. */
#include "message/msgbuild.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    int fd = open("/dev/null", O_WRONLY);
    arena *a = arena_new("fuzz", false);
    spool_msg *m = arena_calloc(a, sizeof *m);
    msgbuild b;
    mb_init(&b, m, fd, a, 100000);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        mb_line(&b, p, n);
        p += n + (nl ? 1 : 0);
    }
    mb_finish(&b);
    for (spool_header *h = m->headers; h; h = h->next)
        if (h->len == 0 || h->text[h->len - 1] != '\n' || strlen(h->text) > h->len)
            abort();   /* every header ends in a newline */
    (void)mb_find_header(m, "From");
    arena_free(a);
    close(fd);
    return 0;
}
