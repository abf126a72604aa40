/* fuzz_acl_text.c: the parser of inline/file ACL text (acl_parse_text) on
 * arbitrary bytes: statements, conditions, continuations, comments.  The
 * parsed statements are walked to touch every string the parser built. */
#include "acl/acl.h"
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    static arena *a;
    if (!a)
        a = arena_new("fuzz", false);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    acl_stmt *s = NULL;
    char *err = NULL;
    size_t total = 0;
    if (acl_parse_text(text, "fuzz", a, &s, &err) == ST_OK) {
        for (; s; s = s->next)
            for (const acl_cond *c = s->conds; c; c = c->next)
                total += strlen(c->name) + strlen(c->value);
    } else if (!err) {
        abort();        /* an error must come with its text */
    }
    (void)total;
    arena_reset(a);
    free(text);
    return 0;
}
