/* acl_names.h: vocabulary of ACL conditions and modifiers. */
#ifndef POSTERN_CONFIG_ACL_NAMES_H
#define POSTERN_CONFIG_ACL_NAMES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct acl_name_info {
    const char *name;
    bool modifier;
    bool supported;    /* false: Exim has it, postern refuses it clearly */
} acl_name_info;

const acl_name_info *acl_name_lookup(const char *name, size_t len);

#endif
