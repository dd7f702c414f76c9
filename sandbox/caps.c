/* Capabilities of the step: none for a non-root caller; for root, Docker's default set (so
 * `apt-get` in a step works), none at all in strict mode. The bounding set is cut too, so
 * nothing exec'ed later can regain what was dropped. */
#include <sys/capability.h>
#include <sys/prctl.h>

#include "sandbox-private.h"

/* Docker's default capability set, as documented for `docker run`, less CAP_NET_RAW: a step
 * runs in the host's network namespace unless --network off, and raw sockets would let a
 * root step read the loopback traffic of everything else on the runner (the supervisor's
 * own Vault token over http://127.0.0.1 included). ping needs it no more (ICMP sockets). */
static const cap_value_t docker_default[] = {
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_SETGID,
        CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,
        CAP_AUDIT_WRITE,
};

static bool kept(cap_value_t c, bool root_keeps_default) {
        if (!root_keeps_default)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(docker_default); i++)
                if (docker_default[i] == c)
                        return true;
        return false;
}

/* Whether we hold c in our permitted set now. */
static bool held(cap_t now, cap_value_t c) {
        cap_flag_value_t v = CAP_CLEAR;
        return now && cap_get_flag(now, c, CAP_PERMITTED, &v) == 0 && v == CAP_SET;
}

bool caps_effective_has(int cap) {
        cap_t now = cap_get_proc();
        cap_flag_value_t v = CAP_CLEAR;
        bool has = !now || (cap_get_flag(now, (cap_value_t) cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET);
        cap_free(now);
        return has;
}

/* Drops what we hold and the step must not have. Only what is held can be dropped: root
 * without capabilities (docker run --cap-drop=ALL, a Kubernetes restricted pod, a strict
 * outer run) has nothing to drop and no CAP_SETPCAP to cut the bounding set with, and needs
 * neither: no_new_privs, set next, stops an exec from gaining any. */
int caps_drop(bool root_keeps_default) {
        cap_t now = cap_get_proc();
        if (!now)
                return -errno;
        bool setpcap = held(now, CAP_SETPCAP);
        /* the bounding set first: it needs CAP_SETPCAP, which the next step may remove */
        for (cap_value_t c = 0; setpcap && c <= CAP_LAST_CAP; c++) {
                if (kept(c, root_keeps_default) || prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0 || errno == EINVAL)
                        continue;
                int e = -errno;
                cap_free(now);
                return e;
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
                int e = -errno;
                cap_free(now);
                return e;
        }
        cap_t caps = cap_init();   /* all clear */
        int r = caps ? 0 : -ENOMEM;
        /* root keeps Docker's set, as far as it holds it: one cannot give oneself more */
        for (size_t i = 0; r == 0 && root_keeps_default && i < ELEMENTSOF(docker_default); i++)
                if (held(now, docker_default[i]) &&
                    (cap_set_flag(caps, CAP_PERMITTED, 1, &docker_default[i], CAP_SET) < 0 ||
                     cap_set_flag(caps, CAP_EFFECTIVE, 1, &docker_default[i], CAP_SET) < 0))
                        r = -errno;
        if (r == 0 && cap_set_proc(caps) < 0)
                r = -errno;
        cap_free(caps);
        cap_free(now);
        return r;
}
