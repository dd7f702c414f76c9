/* The command of `run`, resolved before anything is read, fetched or audited (DESIGN §2): a
 * step that cannot be executed costs nothing and its 126/127 names the command and why. */
#include <fcntl.h>
#include <sys/stat.h>

#include "agent.h"

/* A script's "#!" interpreter that does not exist is execve's ENOENT too (127); a CR before
 * the newline (a script saved with Windows line endings) is the usual cause. */
static int check_interpreter(const char *path, char *why, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return 0;   /* execve will say; reading is not executing */
        char head[256];
        ssize_t n = read(fd, head, sizeof head - 1);
        if (n < 3 || head[0] != '#' || head[1] != '!')
                return 0;
        head[n] = '\0';
        char *p = head + 2;
        while (*p == ' ' || *p == '\t')
                p++;
        size_t len = strcspn(p, " \t\n");
        bool cr = len > 0 && p[len - 1] == '\r';
        if (cr)
                len--;
        p[len] = '\0';
        if (len == 0 || p[0] != '/')
                return 0;
        if (cr) {
                snprintf(why, size, "its interpreter line ends in a carriage return (Windows line endings) "
                         "[convert it: sed -i 's/\\r$//' %s]", path);
                return -ENOENT;
        }
        if (access(p, F_OK) < 0) {
                snprintf(why, size, "its interpreter %s does not exist [fix the #! line]", p);
                return -ENOENT;
        }
        return 0;
}

/* One candidate path: 0 if execve would run it, -ENOENT if there is nothing there, -EACCES
 * (with why) if there is something that cannot be executed. */
static int check_candidate(const char *path, char *why, size_t size) {
        struct stat st;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        snprintf(why, size, "no such file");
                        return -ENOENT;
                }
                snprintf(why, size, "%s", strerror(errno));
                return -EACCES;
        }
        if (S_ISDIR(st.st_mode)) {
                snprintf(why, size, "it is a directory");
                return -EACCES;
        }
        if (!S_ISREG(st.st_mode) || faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
                snprintf(why, size, "it is not executable (mode %04o) [chmod +x %s]", (unsigned) (st.st_mode & 07777),
                         path);
                return -EACCES;
        }
        return check_interpreter(path, why, size);
}

int command_lookup(const char *name, char *why, size_t size) {
        why[0] = '\0';
        if (!*name) {
                snprintf(why, size, "the command is an empty word");
                return -ENOENT;
        }
        if (strchr(name, '/'))
                return check_candidate(name, why, size);
        /* execvpe(3): each $PATH entry in order (an empty one is the working directory), the
         * first that can be executed wins; one that exists but cannot is EACCES unless a later
         * one can */
        const char *path = getenv("PATH");
        if (!path)
                path = "/bin:/usr/bin";
        int result = -ENOENT;
        char saved[512] = "";
        for (const char *p = path;; p++) {
                const char *end = strchrnul(p, ':');
                _cleanup_free_ char *candidate = end == p ? strdup(name)
                                                          : strdup_printf("%.*s/%s", (int) (end - p), p, name);
                if (!candidate)
                        return -ENOMEM;
                int k = check_candidate(candidate, why, size);
                if (k == 0)
                        return 0;
                if (k == -EACCES && result != -EACCES) {
                        result = -EACCES;
                        snprintf(saved, sizeof saved, "%s: %s", candidate, why);
                }
                if (*end == '\0')
                        break;
                p = end;
        }
        snprintf(why, size, "%s", result == -EACCES ? saved : "command not found in $PATH");
        return result;
}
