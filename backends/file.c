/* The file backend: the embedded encrypted store (store.c), decrypted once when the backend
 * is opened, so a run with many secrets pays for one read and one decryption. */
#include <inttypes.h>

#include "backend-private.h"

static int file_open(struct backend *b, char **ret_why) {
        const char *path = b->path ? b->path : STORE_DEFAULT_PATH;
        _cleanup_secret_ struct secret *key = NULL;
        _cleanup_free_ char *why = NULL;
        int r = store_key_load(b->key_file, &key, &why);
        if (r < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        struct store *s = NULL;
        if ((r = store_load(path, key, &s, &why)) < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        b->data = s;
        return 0;
}

static int file_fetch(struct backend *b, const struct secret_ref *ref,
                      struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        const char *path = b->path ? b->path : STORE_DEFAULT_PATH;
        if (ref->field)
                return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (file) has no fields ('#%s')",
                                    ref->secret_name, b->name, ref->field);
        struct store_version_info info;
        int r = store_get(b->data, ref->path, ref->version, ret_value, &info);
        if (r == -ENOENT)
                return backend_fail(ret_why, r, "secret %s: no '%s' in store %s (backend '%s')",
                                    ref->secret_name, ref->path, path, b->name);
        if (r == -ESRCH)
                return backend_fail(ret_why, r,
                                    "secret %s: '%s' has no version %" PRIu64 " in store %s (the last %d are kept)",
                                    ref->secret_name, ref->path, ref->version, path, STORE_KEEP_VERSIONS);
        if (r < 0)
                return r;
        ret_meta->version = info.version;
        ret_meta->created = info.created;
        return 0;
}

static void file_close(struct backend *b) {
        b->data = store_free(b->data);
}

const struct backend_ops file_backend_ops = {
        .open = file_open,
        .fetch = file_fetch,
        .close = file_close,
};
