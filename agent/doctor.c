/* `secrets-run doctor`: builds the sandbox on this host as a run would, with nothing fetched
 * and nothing run, and says which layers work, why the others do not and how to fix that, and
 * what `auto` and `strict` would get. CI users paste it into bug reports. */
#include <jansson.h>

#include "agent.h"
#include "sandbox.h"

struct probe {
        struct sandbox_status status;
        int error;                  /* < 0: the sandbox could not be set up at all */
};

/* One sandbox as a run would make it (a secrets directory of its own, a path to hide), taken
 * down at once. */
static void probe_sandbox(enum sandbox_level level, bool network_off, struct probe *ret) {
        *ret = (struct probe) {};
        _cleanup_secrets_dir_ struct secrets_dir *dir = NULL;
        int k = secrets_dir_create(&dir);
        if (k < 0) {
                ret->error = k;
                snprintf(ret->status.why, sizeof ret->status.why, "cannot create a secrets directory on a tmpfs "
                         "(/dev/shm or $XDG_RUNTIME_DIR): %s", strerror(-k));
                return;
        }
        /* something to hide, as a store's directory would be */
        char hidden[] = "/tmp/secrets-run-doctor-XXXXXX";
        char *hide[] = { mkdtemp(hidden), NULL };
        struct sandbox_options so = {
                .level = level, .network_off = network_off, .secrets_dir = secrets_dir_path(dir),
                .secrets_dir_on_disk = secrets_dir_on_disk(dir),
                .hide = hide[0] ? hide : NULL,
        };
        _cleanup_sandbox_ struct sandbox *sb = NULL;
        k = sandbox_create(&so, &sb, &ret->status);
        if (k >= 0)
                k = sandbox_ready(sb, &ret->status);
        ret->error = k < 0 ? k : 0;
        if (hide[0])
                (void) rmdir(hidden);
}

static const char *layer_fix(enum sandbox_layer l) {
        switch (l) {
        case LAYER_USER:
                return "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                       "user.max_user_namespaces > 0; on Ubuntu the secrets-run AppArmor profile)";
        case LAYER_NET:
                return "--network off needs it: allow network namespaces (a container: --cap-add or a profile that "
                       "permits CLONE_NEWNET)";
        case LAYER_SECCOMP:
                return "a kernel with CONFIG_SECCOMP_FILTER";
        case LAYER_CAPS:
                return "nothing to do: capabilities are dropped where held";
        case LAYER_GUARD:
                return "a kernel with seccomp user notification (Linux 5.0+); without it, runs scan the working "
                       "directory's changed files instead (strict does not need it)";
        case LAYER_MOUNT:
        case LAYER_PID:
        case LAYER_IPC:
        case LAYER_UTS:
        case LAYER_PROC:
        case LAYER_SECRETS_FS:
        case LAYER_HIDE:
        default:
                return "let the runner create namespaces and mount in them (a container: --security-opt "
                       "seccomp=unconfined or a profile allowing them; Ubuntu 23.10+: the secrets-run AppArmor profile)";
        }
}

static bool layer_applies(enum sandbox_layer l) {
        return l != LAYER_USER || geteuid() != 0;   /* root needs no user namespace */
}

int command_doctor(const struct options *o) {
        if (o->args) {
                log_error("doctor: unexpected argument '%s'", o->args[0]);
                return 1;
        }
        struct probe full, net;
        probe_sandbox(SANDBOX_LEVEL_AUTO, false, &full);
        probe_sandbox(SANDBOX_LEVEL_AUTO, true, &net);   /* auto: only the network layer can refuse */
        const struct sandbox_status *st = &full.status;
        bool net_works = net.error >= 0;
        bool strict_works = full.error >= 0 && st->missing == 0;
        int guard = guard_probe();
        json_t *layers = json_array();
        for (int l = 0; l < _LAYER_MAX; l++) {
                enum sandbox_layer layer = (enum sandbox_layer) l;
                bool works = layer == LAYER_NET ? net_works : layer == LAYER_GUARD ? guard == 0
                             : full.error >= 0 && (st->active & (1u << l));
                const char *why = works || !layer_applies(layer) ? NULL
                                  : layer == LAYER_NET ? net.status.why
                                  : layer == LAYER_GUARD ? guard_unavailable_why(-guard) : st->why;
                json_array_append_new(layers, json_pack("{s:s, s:s, s:s?, s:s?}", "layer", sandbox_layer_name(layer),
                                                        "works", !layer_applies(layer) ? "not needed" : works ? "yes" : "no",
                                                        "why", why && *why ? why : NULL,
                                                        "fix", why ? layer_fix(layer) : NULL));
        }
        char missing[768] = "";
        if (full.error >= 0)
                sandbox_status_format(st, missing, sizeof missing);
        if (o->format == FORMAT_JSON) {
                json_t *doc = json_pack("{s:o, s:{s:s, s:s?}, s:{s:b, s:s?}}", "layers", layers,
                                        "auto", "mode", full.error < 0 ? "refuses" : st->missing ? "degraded" : "full",
                                        "layers", full.error >= 0 ? missing : NULL,
                                        "strict", "works", strict_works, "why", strict_works ? NULL : st->why);
                json_dumpf(doc, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(doc);
                return strict_works ? 0 : 1;
        }
        /* each reason once, below the table: one failure usually takes several layers */
        const char *reasons[_LAYER_MAX], *fixes[_LAYER_MAX];
        size_t n_reasons = 0, i;
        json_t *row;
        printf("%-14s %s\n", "LAYER", "WORKS");
        json_array_foreach(layers, i, row) {
                const char *why = json_string_value(json_object_get(row, "why"));
                size_t r = 0;
                while (why && r < n_reasons && !streq(reasons[r], why))
                        r++;
                if (why && r == n_reasons) {
                        reasons[n_reasons] = why;
                        fixes[n_reasons++] = json_string_value(json_object_get(row, "fix"));
                }
                if (why)
                        printf("%-14s no (%zu)\n", json_string_value(json_object_get(row, "layer")), r + 1);
                else
                        printf("%-14s %s\n", json_string_value(json_object_get(row, "layer")),
                               json_string_value(json_object_get(row, "works")));
        }
        for (size_t r = 0; r < n_reasons; r++)
                printf("\n(%zu) %s\n    fix: %s\n", r + 1, reasons[r], fixes[r]);
        json_decref(layers);
        printf("\nauto:   %s\n", full.error < 0 ? "refuses to run (exit 125)"
                                 : st->missing ? "runs, without what is missing (one line says so)" : "every layer");
        if (full.error >= 0)
                printf("        %s\n", missing);
        printf("strict: %s%s\n", strict_works ? "works" : "refuses (exit 125): ", strict_works ? "" : st->why);
        printf("--network off: %s%s\n", net_works ? "works" : "refuses (exit 125): ", net_works ? "" : net.status.why);
        return strict_works ? 0 : 1;
}
