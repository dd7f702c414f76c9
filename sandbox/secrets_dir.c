/* The per-run secrets directory and sealed memfds: how values reach the step without ever
 * touching persistent storage. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "sandbox-private.h"

struct secrets_dir {
        char *path;
        int fd;              /* the directory itself; flock'ed while the run lives */
        char *own_base;      /* a base made for this run alone, removed with it; or NULL */
        char *refused_base;  /* the shared base it stands in for, refused */
        bool on_disk;        /* no memory file system was to be had: only a mount point */
        int lock_fd;         /* run-X.lock beside it, flock'ed while the run lives */
};

static bool is_memory_fs(int fd) {
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return false;
        return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

/* A base of our own for this run only, when the shared one cannot be trusted: next to it,
 * with a random name mkdtemp makes 0700 and ours. */
static int fresh_base(const char *shared, bool disk_ok, char **ret_path, int *ret_fd) {
        _cleanup_free_ char *path = strdup_printf("%s.XXXXXX", shared);
        if (!path)
                return -ENOMEM;
        if (!mkdtemp(path))
                return -errno;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || (!disk_ok && !is_memory_fs(fd)) || flock(fd, LOCK_EX) < 0) {
                int r = fd < 0 ? -errno : -EXDEV;
                safe_close(fd);
                (void) rmdir(path);
                return r;
        }
        *ret_path = steal_pointer(&path);
        *ret_fd = fd;
        return 0;
}

/* Opens (creating if needed) the per-user base directory on a tmpfs, checks that it is
 * ours and private (so nobody else can pre-create it or look inside), and locks it: creators
 * hold the lock between mkdir and flock of their run directory, the sweeper while it looks.
 * One that is someone else's, open to others or not a directory (a local user pre-created
 * /dev/shm/secrets-run-<uid> to stop our runs) is refused: with fallback, the run gets a
 * fresh base of its own (1, *ret_refused naming the one refused); without, -EPERM. */
static int base_dir_open_locked(bool fallback, bool disk_ok, char **ret_path, int *ret_fd, char **ret_refused) {
        _cleanup_free_ char *path = NULL;
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (xdg && xdg[0] == '/') {
                _cleanup_close_ int xfd = open(xdg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (xfd >= 0 && is_memory_fs(xfd))
                        path = strdup_printf("%s/secrets-run", xdg);
        }
        if (!path)
                /* disk_ok: a host with no tmpfs at all; only a mount point for the private one */
                path = strdup_printf("%s/secrets-run-%u", disk_ok ? "/tmp" : "/dev/shm", (unsigned) geteuid());
        if (!path)
                return -ENOMEM;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 && errno != ELOOP && errno != ENOTDIR)
                return -errno;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
                if (!fallback)
                        return -EPERM;
                int r = fresh_base(path, disk_ok, ret_path, ret_fd);
                if (r < 0)
                        return r;
                *ret_refused = steal_pointer(&path);
                return 1;
        }
        if (!disk_ok && !is_memory_fs(fd))
                return -EXDEV;   /* never put a secret on a disk-backed file system */
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        *ret_path = steal_pointer(&path);
        *ret_fd = steal_fd(&fd);
        return 0;
}

/* Overwrites a file's bytes before unlinking it: unlinked tmpfs pages are not zeroed. */
static void wipe_and_unlink(int dir_fd, const char *name) {
        if (fchmodat(dir_fd, name, 0600, 0) < 0) {
                /* root can open it anyway; otherwise the unlink below still runs */
        }
        int fd = openat(dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                        static const char zeros[4096];
                        for (off_t left = st.st_size; left > 0;) {
                                size_t n = left > (off_t) sizeof zeros ? sizeof zeros : (size_t) left;
                                if (write_all(fd, zeros, n) < 0)
                                        break;
                                left -= (off_t) n;
                        }
                }
                safe_close(fd);
        }
        (void) unlinkat(dir_fd, name, 0);
}

static void empty_dir(int dir_fd, unsigned depth) {
        if (depth > 16)
                return;
        DIR *d = opendir_dup(dir_fd);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                if (e->d_type == DT_DIR) {
                        /* something the step made in $SECRETS_DIR */
                        _cleanup_close_ int sub = openat(dir_fd, e->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                empty_dir(sub, depth + 1);
                        (void) unlinkat(dir_fd, e->d_name, AT_REMOVEDIR);
                } else
                        wipe_and_unlink(dir_fd, e->d_name);
        }
        closedir(d);
}

void secrets_dir_wipe(int dir_fd) {
        empty_dir(dir_fd, 0);
}

/* A run's liveness is the lock on run-X.lock, a file in the base directory, not the lock on
 * the run's directory: inside a run's mount namespace that directory's path is its private
 * tmpfs, another inode, whose lock a nested run would take and find free, and it would
 * empty the outer step's $SECRETS_DIR while it runs. The base directory is the same file
 * in every namespace of ours. */
static bool run_is_live(int base_fd, const char *name, int run_fd) {
        _cleanup_free_ char *lock = strdup_printf("%s.lock", name);
        if (!lock)
                return true;   /* cannot tell: leave it */
        _cleanup_close_ int fd = openat(base_fd, lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
                return true;
        /* no lock file: a run of an earlier version, which locked its directory */
        return flock(fd >= 0 ? fd : run_fd, LOCK_EX | LOCK_NB) < 0;
}

int secrets_dir_sweep(void) {
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int base_fd = -1;
        int r = base_dir_open_locked(false, false, &base, &base_fd, NULL);
        if (r < 0)
                return r;
        DIR *d = opendir_dup(base_fd);
        if (!d)
                return -errno;
        int swept = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (!startswith(e->d_name, "run-") || e->d_type == DT_REG)
                        continue;
                _cleanup_close_ int run_fd = openat(base_fd, e->d_name,
                                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (run_fd < 0 || run_is_live(base_fd, e->d_name, run_fd))
                        continue;
                empty_dir(run_fd, 0);
                if (unlinkat(base_fd, e->d_name, AT_REMOVEDIR) == 0)
                        swept++;
                _cleanup_free_ char *lock = strdup_printf("%s.lock", e->d_name);
                if (lock)
                        (void) unlinkat(base_fd, lock, 0);
        }
        closedir(d);
        (void) flock(base_fd, LOCK_UN);
        return swept;
}

int secrets_dir_create(struct secrets_dir **ret) {
        _cleanup_free_ char *base = NULL, *refused = NULL;
        _cleanup_close_ int base_fd = -1;
        int r = base_dir_open_locked(true, false, &base, &base_fd, &refused);
        bool on_disk = false;
        if (r == -EXDEV || r == -ENOENT) {
                /* no memory file system here (no /dev/shm, or it is on disk): a directory on disk
                 * can still be the mount point of the sandbox's private tmpfs, and stays empty;
                 * without a mount namespace the sandbox refuses to write files into it */
                free(steal_pointer(&refused));
                r = base_dir_open_locked(true, true, &base, &base_fd, &refused);
                on_disk = true;
        }
        if (r < 0)
                return r;
        bool own_base = r > 0;
        _cleanup_close_ int fd = -1;

        char name[64], lock[80];
        snprintf(name, sizeof name, "run-%d-%08x", (int) getpid(), randombytes_random());
        snprintf(lock, sizeof lock, "%s.lock", name);
        /* the run's liveness, held until it is removed (run_is_live) */
        _cleanup_close_ int lock_fd = openat(base_fd, lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                if (lock_fd >= 0)
                        (void) unlinkat(base_fd, lock, 0);
                goto out_base;
        }
        if (mkdirat(base_fd, name, 0700) < 0) {
                r = -errno;
                (void) unlinkat(base_fd, lock, 0);
                goto out_base;
        }
        fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                goto out_run;
        }
        (void) flock(base_fd, LOCK_UN);

        struct secrets_dir *d = calloc(1, sizeof(*d));
        if (!d || !(d->path = strdup_printf("%s/%s", base, name))) {
                free(d);
                r = -ENOMEM;
                goto out_run;
        }
        d->fd = steal_fd(&fd);
        d->lock_fd = steal_fd(&lock_fd);
        d->on_disk = on_disk;
        if (own_base) {
                d->own_base = steal_pointer(&base);
                d->refused_base = steal_pointer(&refused);
        }
        *ret = d;
        return own_base ? 1 : 0;
out_run:
        (void) unlinkat(base_fd, name, AT_REMOVEDIR);
        (void) unlinkat(base_fd, lock, 0);
out_base:
        if (own_base)
                (void) rmdir(base);
        return r;
}

bool secrets_dir_on_disk(const struct secrets_dir *d) {
        return d->on_disk;
}

const char *secrets_dir_refused_base(const struct secrets_dir *d) {
        return d->refused_base;
}

const char *secrets_dir_path(const struct secrets_dir *d) {
        return d->path;
}

int secrets_dir_fd(const struct secrets_dir *d) {
        return d->fd;
}

int secret_file_write(int dir_fd, const char *name, const struct secret *value) {
        if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
        if (fd < 0)
                return -errno;
        return write_all(fd, secret_data(value), secret_len(value));
}

struct secrets_dir *secrets_dir_remove(struct secrets_dir *d) {
        if (!d)
                return NULL;
        empty_dir(d->fd, 0);   /* our files, and anything the step added */
        (void) rmdir(d->path);
        _cleanup_free_ char *lock = strdup_printf("%s.lock", d->path);
        if (lock)
                (void) unlink(lock);
        safe_close(d->lock_fd);
        if (d->own_base)
                (void) rmdir(d->own_base);
        safe_close(d->fd);
        free(d->path);
        free(d->own_base);
        free(d->refused_base);
        free(d);
        return NULL;
}

int memfd_sealed(const char *name, const struct secret *value) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, secret_data(value), secret_len(value));
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return steal_fd(&fd);
}
