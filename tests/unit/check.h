/* check.h: a minimal harness for table-driven unit tests.
 * CHECK(cond, fmt, ...) records a failure with file:line; main() returns
 * check_report(), non-zero when anything failed. */
#ifndef POSTERN_CHECK_H
#define POSTERN_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        check_count++;                                                       \
        if (!(cond)) {                                                       \
            check_failures++;                                                \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

#define CHECK_STR(got, want, ctx)                                            \
    do {                                                                     \
        const char *g_ = (got), *w_ = (want);                                \
        CHECK((g_ == NULL && w_ == NULL) ||                                  \
              (g_ && w_ && strcmp(g_, w_) == 0),                             \
              "%s: got [%s] want [%s]", (ctx), g_ ? g_ : "(null)",           \
              w_ ? w_ : "(null)");                                           \
    } while (0)

static inline int check_report(const char *name)
{
    fprintf(stderr, "%s: %d checks, %d failures\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
