/* acl_names.c: the ACL conditions and modifiers the configuration may
 * name (Exim's vocabulary plus the seed's), so that an unknown word is a
 * configuration error naming its line. */
#include "config/acl_names.h"
#include <string.h>

static const acl_name_info names[] = {
    /* name                  modifier  supported */
    { "acl",                   false, true },
    { "add_header",            true,  true },
    { "atrn_domains",          false, true },
    { "authenticated",         false, true },
    { "bmi_optin",             true,  false },   /* needs a vendor SDK */
    { "condition",             false, true },
    { "continue",              true,  true },
    { "control",               true,  true },
    { "dcc",                   false, true },
    { "decode",                false, true },
    { "delay",                 true,  true },
    { "dk_domain_source",      false, true },
    { "dk_policy",             false, true },
    { "dk_sender_domains",     false, true },
    { "dk_sender_local_parts", false, true },
    { "dk_senders",            false, true },
    { "dk_status",             false, true },
    { "dkim_signers",          false, true },
    { "dkim_status",           false, true },
    { "dmarc_status",          false, true },
    { "dnslists",              false, true },
    { "domains",               false, true },
    { "encrypted",             false, true },
    { "endpass",               true,  true },
    { "hosts",                 false, true },
    { "local_parts",           false, true },
    { "log_message",           true,  true },
    { "log_reject_target",     true,  true },
    { "logwrite",              true,  true },
    { "malware",               false, false },
    { "message",               true,  true },
    { "mime_regex",            false, true },
    { "queue",                 true,  true },
    { "ratelimit",             false, true },
    { "recipients",            false, true },
    { "regex",                 false, true },
    { "remove_header",         true,  true },
    { "seen",                  false, true },
    { "sender_domains",        false, true },
    { "senders",               false, true },
    { "set",                   true,  true },
    { "spam",                  false, false },
    { "spf",                   false, true },
    { "spf_guess",             false, true },
    { "udpsend",               true,  true },
    { "verify",                false, true },
};

const acl_name_info *acl_name_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncmp(names[i].name, name, len) == 0)
            return &names[i];
    return NULL;
}
