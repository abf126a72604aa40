/* list.h: Exim-style lists.  Items are separated by ':' unless the list
 * starts with "<x" (x any punctuation or control character), which makes x
 * the separator.  A doubled separator stands for one literal separator
 * character, except when the separator is a control character (newline).
 * Whitespace around items is dropped.
 *
 * The separator state follows Exim's convention:
 *   *sep == 0   default ':' , "<x" prefix honoured
 *   *sep <  0   default is -(*sep), "<x" prefix honoured
 *   *sep >  0   fixed separator, no prefix check
 * After the first call *sep holds the separator in use (> 0). */
#ifndef POSTERN_LIST_H
#define POSTERN_LIST_H

#include "arena.h"
#include "gstr.h"

/* Next item of *listp, allocated in a (or NULL at the end). */
char *list_next(const char **listp, int *sep, arena *a);

/* Number of items. */
int list_count(const char *list, int sep, arena *scratch);

/* Append item to g as a list element with separator sep: a separator
 * inside item is doubled, and sep is written before it unless g is empty
 * (or first is set). */
void list_append(gstr *g, int sep, const char *item, bool first);

/* Does the list (with separator sep) contain item? */
bool list_contains(const char *list, int sep, const char *item, bool caseless, arena *scratch);

#endif
