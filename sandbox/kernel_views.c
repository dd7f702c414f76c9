/* What a root step could change or read of the host through files root owns, no capability
 * needed: inside the step's mount namespace the kernel's knobs are read-only and its memory,
 * keys and timers are masked, as Docker's and bubblewrap's defaults have it. A writable
 * /proc/sys/kernel/core_pattern alone lets a step run a program on the host, outside every
 * namespace, by crashing a process. */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "sandbox-private.h"

/* Read-only, with every mount below them. */
static const char *const read_only_paths[] = {
        "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/sys",
};

/* Covered: files by /dev/null, directories by an empty read-only tmpfs. */
static const char *const masked_paths[] = {
        "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/latency_stats", "/proc/kallsyms", "/proc/acpi", "/proc/asound", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
};

/* The flags a remount must keep: in a user namespace the kernel refuses one that would clear
 * a flag the mount was locked with. */
static unsigned long kept_flags(const char *path) {
        struct statvfs sv;
        if (statvfs(path, &sv) < 0)
                return 0;
        unsigned long f = 0;
        if (sv.f_flag & ST_NOSUID)
                f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
                f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                f |= MS_RELATIME;
        return f;
}

static int remount_read_only(const char *path) {
        return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) < 0 ? -errno : 0;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' in paths as octal. */
static void unescape_octal(char *s) {
        char *o = s;
        for (char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                    p[3] <= '7') {
                        *o++ = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                        p += 3;
                } else
                        *o++ = *p;
        }
        *o = '\0';
}

/* A bind mount of path onto itself, made read-only with every mount below it: a remount
 * applies to one mount, so each submount (/sys/fs/cgroup, /sys/kernel/debug, ...) is
 * remounted on its own. */
static int make_read_only(const char *path, char *what, size_t what_size) {
        if (access(path, F_OK) < 0)
                return 0;   /* not on this kernel */
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 || remount_read_only(path) < 0) {
                snprintf(what, what_size, "making %s read-only", path);
                return -errno;
        }
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f) {
                snprintf(what, what_size, "reading /proc/self/mountinfo");
                return -errno;
        }
        size_t len = strlen(path);
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                char point[4096];
                if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
                        continue;
                unescape_octal(point);
                if (strncmp(point, path, len) != 0 || point[len] != '/')
                        continue;
                int r = remount_read_only(point);
                if (r < 0 && r != -ENOENT && r != -EACCES) {
                        /* a submount we cannot see (EACCES: not ours to look at) stays as is;
                         * any other refusal is a view left writable */
                        snprintf(what, what_size, "making %s read-only", point);
                        return r;
                }
        }
        return 0;
}

static int mask(const char *path, char *what, size_t what_size) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return 0;   /* not on this kernel */
        int r = S_ISDIR(st.st_mode)
                ? mount("secrets-run-masked", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
                : mount("/dev/null", path, NULL, MS_BIND, NULL);
        if (r < 0) {
                snprintf(what, what_size, "masking %s", path);
                return -errno;
        }
        return 0;
}

int kernel_views_protect(char *what, size_t what_size) {
        int r;
        for (size_t i = 0; i < ELEMENTSOF(masked_paths); i++)
                if ((r = mask(masked_paths[i], what, what_size)) < 0)
                        return r;
        /* after the masks: they are mount points under the read-only trees, and stay covered */
        for (size_t i = 0; i < ELEMENTSOF(read_only_paths); i++)
                if ((r = make_read_only(read_only_paths[i], what, what_size)) < 0)
                        return r;
        return 0;
}
