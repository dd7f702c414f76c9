/* Where secrets-run keeps its own files: the configuration directory (the store key, the
 * audit keys), which the agent resolves and hands to backends and the sandbox as plain paths. */
#include "agent.h"

int config_path(const char *leaf, char **ret) {
        const char *config = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        const char *sep = leaf ? "/" : "", *name = leaf ? leaf : "";
        char *p;
        if (config && config[0] == '/')
                p = strdup_printf("%s/secrets-run%s%s", config, sep, name);
        else if (home && home[0] == '/')
                p = strdup_printf("%s/.config/secrets-run%s%s", home, sep, name);
        else
                return -ENOENT;
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int store_key_default_path(char **ret) {
        return config_path("store.key", ret);
}
