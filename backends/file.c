/* The file backend: the embedded encrypted store (store.c), decrypted once when the backend
 * is opened, so a run with many secrets pays for one read and one decryption. apply/rotate
 * write through it: under the writers' lock, against the file as it is then. */
#include <inttypes.h>
#include <time.h>

#include "backend-private.h"

struct file_state {
        struct store *store;   /* as read at open, or as last written */
        struct secret *key;
        char *path;
};

static int file_open(struct backend *b, char **ret_why) {
        const char *path = b->path;
        if (!path)
                return backend_fail(ret_why, -EINVAL, "backend '%s' (file): no store path", b->name);
        _cleanup_free_ char *why = NULL;
        struct file_state *f = calloc(1, sizeof(*f));
        if (!f || !(f->path = strdup(path))) {
                free(f);
                return -ENOMEM;
        }
        b->data = f;
        int r = store_key_load(b->key_file, &f->key, &why);
        if (r < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        /* masked from here on in its raw and base64 forms, as the key file and the variable hold it */
        backend_credential(b, "store-key", f->key);
        if ((r = store_load(path, f->key, &f->store, &why)) < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        return 0;
}

static int no_field(struct backend *b, const struct secret_ref *ref, char **ret_why) {
        return backend_fail(ret_why, -EINVAL, "secret %s: backend '%s' (file) has no fields ('#%s')",
                            ref->secret_name, b->name, ref->field);
}

static int file_fetch(struct backend *b, const struct secret_ref *ref,
                      struct secret **ret_value, struct secret_meta *ret_meta, char **ret_why) {
        struct file_state *f = b->data;
        if (ref->field)
                return no_field(b, ref, ret_why);
        struct store_version_info info;
        int r = store_get(f->store, ref->path, ref->version, ret_value, &info);
        if (r == -ENOENT)
                return backend_fail(ret_why, r, "secret %s: no '%s' in store %s (backend '%s')",
                                    ref->secret_name, ref->path, f->path, b->name);
        if (r == -ESRCH)
                return backend_fail(ret_why, r,
                                    "secret %s: '%s' has no version %" PRIu64 " in store %s (the last %d are kept)",
                                    ref->secret_name, ref->path, ref->version, f->path, STORE_KEEP_VERSIONS);
        if (r < 0)
                return r;
        ret_meta->version = info.version;
        ret_meta->created = info.created;
        return 0;
}

/* What a run would read: the latest version, or the pinned one, so that plan ages the value
 * runs get. */
static int file_stat(struct backend *b, const struct secret_ref *ref, struct secret_meta *ret_meta, char **ret_why) {
        struct file_state *f = b->data;
        if (ref->field)
                return no_field(b, ref, ret_why);
        struct store_version_info info;
        _cleanup_secret_ struct secret *value = NULL;
        int r = store_get(f->store, ref->path, ref->version, &value, &info);
        if (r == -ENOENT)
                return backend_fail(ret_why, r, "no '%s' in store %s", ref->path, f->path);
        if (r == -ESRCH)
                return backend_fail(ret_why, -ENOENT, "'%s' has no version %" PRIu64 " in store %s", ref->path,
                                    ref->version, f->path);
        if (r < 0)
                return r;
        ret_meta->length = secret_len(value);
        ret_meta->version = info.version;
        ret_meta->created = info.created;
        return 0;
}

static int file_write(struct backend *b, const struct secret_ref *ref, const struct secret *value,
                      uint64_t expect_version, struct secret_meta *ret_meta, char **ret_why) {
        struct file_state *f = b->data;
        if (ref->field)
                return no_field(b, ref, ret_why);
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int lock = -1;
        int r = store_lock(f->path, &lock, &why);
        if (r < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why);
        /* the file as it is now: another writer may have changed it since we opened it */
        _cleanup_store_ struct store *now = NULL;
        if ((r = store_load(f->path, f->key, &now, &why)) < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        struct store_version_info info = {};
        r = store_get(now, ref->path, 0, NULL, &info);
        if (r < 0 && r != -ENOENT)
                return r;
        if (info.version != expect_version) {
                store_free(f->store);
                f->store = steal_pointer(&now);
                return backend_fail(ret_why, -ESTALE, "'%s' in store %s is at version %" PRIu64 ", not %" PRIu64
                                    " as expected: another writer changed it", ref->path, f->path,
                                    info.version, expect_version);
        }
        uint64_t version;
        int64_t created = (int64_t) time(NULL);
        r = store_set(now, ref->path, secret_data(value), secret_len(value), created, &version);
        if (r < 0)
                return backend_fail(ret_why, r, "cannot store '%s': %s", ref->path,
                                    r == -EINVAL ? "not a valid store name (letters, digits, _)" : strerror(-r));
        if ((r = store_save(f->path, now, f->key, &why)) < 0)
                return backend_fail(ret_why, r, "backend '%s' (file): %s", b->name, why ? why : strerror(-r));
        store_free(f->store);
        f->store = steal_pointer(&now);
        ret_meta->version = version;
        ret_meta->created = created;
        return 0;
}

static void file_close(struct backend *b) {
        struct file_state *f = b->data;
        if (!f)
                return;
        store_free(f->store);
        secret_free(f->key);
        free(f->path);
        free(f);
        b->data = NULL;
}

/* The key variable is read whether or not a key file is configured: it comes first. */
static int file_credential_env(const struct backend_config *c, char ***vars) {
        return strv_extend(vars, STORE_KEY_ENV);
}

const struct backend_ops file_backend_ops = {
        .open = file_open,
        .fetch = file_fetch,
        .stat = file_stat,
        .write = file_write,
        .close = file_close,
        .credential_env = file_credential_env,
};
