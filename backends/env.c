/* The env backend: a variable of the caller's environment, e.g. a CI-provided secret.
 * The agent removes the variable from the step's environment after fetching. */
#include "backend-private.h"

static int env_fetch(struct backend *b, const struct secret_ref *ref,
                     struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        if (ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (env) has no fields ('#%s')",
                                    ref->secret_name, b->name, ref->field);
        const char *v = getenv(ref->path);
        if (!v)
                return backend_fail(ret_why, -ENOENT, "secret %s: variable %s is not set (backend '%s')",
                                    ref->secret_name, ref->path, b->name);
        if (!*v)
                /* CI systems expand an undefined secret to "", so empty almost always means
                 * "not configured for this pipeline" rather than a real value. */
                return backend_fail(ret_why, -ENOENT,
                                    "secret %s: variable %s is empty (backend '%s'; an undefined CI secret expands to an empty string)",
                                    ref->secret_name, ref->path, b->name);
        return secret_from_bytes(v, strlen(v), ret_value);
}

const struct backend_ops env_backend_ops = {
        .fetch = env_fetch,
};
