/* `secrets-run redact` and `secrets-run scan`: the run's matcher over stdin or files, with
 * the secrets of the manifest's scope (resolve and fetch, as a run does) or --secret-file. */
#include <fcntl.h>

#include "output.h"
#include "redact.h"
#include "run.h"

/* --secret-file [NAME=]FILE: the file's bytes minus one trailing newline. */
static int redactor_from_files(char *const *files, struct redactor **ret) {
        _cleanup_redactor_ struct redactor *red = NULL;
        size_t patterns = 0;
        int k = redactor_new(8, NULL, &red);
        if (k < 0)
                return k;
        for (char *const *f = files; *f; f++) {
                const char *eq = strchr(*f, '=');
                const char *path = eq ? eq + 1 : *f;
                _cleanup_free_ char *name = eq ? strndup(*f, (size_t) (eq - *f)) : NULL;
                if (!name) {
                        const char *slash = strrchr(path, '/');
                        name = strdup(slash ? slash + 1 : path);
                }
                if (!name)
                        return -ENOMEM;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        log_error("--secret-file %s: %s", path, strerror(errno));
                        return -errno;
                }
                _cleanup_secret_ struct secret *v = NULL;
                if ((k = secret_new(256, &v)) < 0)
                        return k;
                if ((k = secret_read_fd(v, fd, 1024 * 1024)) < 0) {
                        log_error("--secret-file %s: %s", path, k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
                        return k;
                }
                secret_chomp(v);
                if ((k = redactor_add_bounded(red, name, v, &patterns)) < 0)
                        return k;
                if (k == 0) {
                        log_error("--secret-file %s: the value is %zu bytes, shorter than 8: it cannot be masked safely",
                                  path, secret_len(v));
                        return -EINVAL;
                }
                if ((k = output_mask_add(name, secret_data(v), secret_len(v))) < 0)
                        return k;
        }
        if ((k = redactor_compile(red)) < 0)
                return k;
        *ret = steal_pointer(&red);
        return 0;
}

/* The redactor for redact/scan: from --secret-file, else the manifest's in-scope secrets. */
static int redact_setup(struct run *r, enum on_leak *ret_on_leak) {
        if (r->o->secret_files) {
                *ret_on_leak = r->o->on_leak >= 0 ? (enum on_leak) r->o->on_leak : ON_LEAK_FAIL;
                return redactor_from_files(r->o->secret_files, &r->redactor);
        }
        int k = run_resolve(r);
        if (k >= 0)
                k = run_fetch(r);
        if (k >= 0)
                *ret_on_leak = run_on_leak(r);
        return k;
}

static int stdout_write(void *userdata, const void *p, size_t n) {
        return write_all(STDOUT_FILENO, p, n);
}

static void stdin_leak(void *userdata, const struct redact_leak *leak) {
        report_leak(leak, "stdin");
}

int command_redact(const struct options *o) {
        struct run r = RUN_INIT(o);
        enum on_leak on_leak = ON_LEAK_FAIL;
        int status = 2;
        _cleanup_redact_stream_ struct redact_stream *s = NULL;
        /* big reads: fewer system calls when the input is a file or a full pipe */
        const size_t buf_size = 1024 * 1024;
        _cleanup_free_ char *buf = NULL;
        if (o->args) {
                log_error("redact: unexpected argument '%s' (it filters stdin to stdout)", o->args[0]);
                goto out;
        }
        if (redact_setup(&r, &on_leak) < 0 || redact_stream_new(r.redactor, &s) < 0)
                goto out;
        report_leaks_as_warnings(on_leak == ON_LEAK_WARN);
        struct redact_sink sink = { stdout_write, stdin_leak, NULL };
        buf = malloc(buf_size);
        if (!buf)
                goto out;
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, buf_size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_error("redact: reading stdin: %s", strerror(errno));
                        goto out;
                }
                if (n == 0)
                        break;
                int k = redact_stream_feed(s, buf, (size_t) n, &sink);
                /* the input may hold values: not left in the freed buffer */
                explicit_bzero(buf, (size_t) n);
                if (k < 0) {
                        log_error("redact: writing stdout: %s", strerror(errno));
                        goto out;
                }
        }
        if (redact_stream_finish(s, &sink) < 0) {
                log_error("redact: writing stdout: %s", strerror(errno));
                goto out;
        }
        status = redact_stream_leak_count(s) > 0 && on_leak == ON_LEAK_FAIL ? 1 : 0;
out:
        leak_reports_done();
        run_done(&r);
        return status;
}

/* scan --format json: every leak found, by secret name, form, path and offset (never a value);
 * past LEAK_JSON_MAX they are only counted. */
#define LEAK_JSON_MAX 10000
static void scan_leak_json(void *userdata, const struct redact_leak *leak, const char *where, bool reported) {
        json_t *leaks = userdata;
        if (json_array_size(leaks) < LEAK_JSON_MAX)
                json_array_append_new(leaks, json_pack("{s:s, s:s, s:s, s:I}", "name", leak->name, "form",
                                                       redact_form_name(leak->form), "path", where, "offset",
                                                       (json_int_t) leak->offset));
}

static void scan_print_json(json_t *leaks, int count) {
        json_t *doc = json_pack("{s:i, s:O}", "leaks", count, "found", leaks);
        _cleanup_(json_text_freep) char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        json_decref(doc);
        if (text)
                printf("%s\n", text);
}

int command_scan(const struct options *o) {
        struct run r = RUN_INIT(o);
        enum on_leak on_leak = ON_LEAK_FAIL;
        int status = 2;
        json_t *leaks = o->format == FORMAT_JSON ? json_array() : NULL;
        if (leaks)
                report_leaks_to(scan_leak_json, leaks);
        if (!o->args) {
                log_error("scan: no PATH given [usage: secrets-run scan [OPTIONS] PATH...]");
                goto out;
        }
        if (redact_setup(&r, &on_leak) < 0)
                goto out;
        int k = scan_paths(r.redactor, o->args);
        if (k < 0)
                goto out;
        flush_leak_reports();
        if (k > 0)
                log_error("scan: %d leak%s of secrets found", k, k == 1 ? "" : "s");
        if (leaks)
                scan_print_json(leaks, k);
        status = k > 0 ? 1 : 0;
out:
        report_leaks_to(NULL, NULL);
        json_decref(leaks);
        leak_reports_done();
        run_done(&r);
        return status;
}
