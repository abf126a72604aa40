/* builtins.h: builtin macros (internal to src/config).  Every builtin
 * macro has the value "y". */
#ifndef POSTERN_CONFIG_BUILTINS_H
#define POSTERN_CONFIG_BUILTINS_H

#include <stddef.h>

/* The sorted table of builtin macro names. */
const char *const *builtin_macros(int *n);
/* Length of the builtin macro name at the start of s, 0 if none. */
size_t builtin_macro_at(const char *s);

#endif
