/* The secure buffer that carries every secret value from backend to delivery.
 * Backed by sodium_malloc: guarded, locked, wiped on free, never realloc'd in place.
 *
 * Each sodium_malloc costs an mmap, mprotects and an mlock, and each sodium_free as many
 * again: compiling the forms of a thousand secrets would spend seconds in system calls.
 * So buffers up to 4 KiB are carved from 64 KiB locked slabs, and freed buffers are wiped
 * and kept, per power-of-two size class, for the next allocation of that class. The slabs
 * live as long as the process.
 *
 * One lock guards the pool and the list of live buffers: lease renewal runs on a thread of
 * its own while the step runs, and allocates response buffers while the main thread may
 * allocate or free others. secret_wipe_all() takes no lock: it runs in a freshly forked
 * child, where only the forking thread exists and a lock held elsewhere would never be
 * released. */
#include <pthread.h>
#include <sys/resource.h>
#include <sodium.h>

#include "common.h"

#define POOL_MIN_SHIFT 6      /* 64 bytes */
#define POOL_CLASSES 16       /* up to 2 MiB */
#define POOL_DEPTH 32

static struct {
        unsigned char *bufs[POOL_DEPTH];
        size_t n;
} pool[POOL_CLASSES];

static unsigned size_class(size_t *capacity) {
        unsigned c = 0;
        size_t size = (size_t) 1 << POOL_MIN_SHIFT;
        while (size < *capacity && size <= SIZE_MAX / 2) {
                size *= 2;
                c++;
        }
        *capacity = size;
        return c;
}

/* Small buffers are carved from locked slabs: one sodium_malloc serves many of them. */
#define SLAB_SIZE (64 * 1024)
#define SLAB_MAX_BUFFER 4096

static unsigned char *slab_next;
static size_t slab_left;

/* Freed slab buffers, per class, linked through their own (wiped) first bytes. */
static unsigned char *slab_free[POOL_CLASSES];

static unsigned char *buf_alloc(size_t *capacity) {
        unsigned c = size_class(capacity);
        if (*capacity <= SLAB_MAX_BUFFER && slab_free[c]) {
                unsigned char *p = slab_free[c];
                memcpy(&slab_free[c], p, sizeof(unsigned char *));
                memset(p, 0, sizeof(void *));
                return p;
        }
        if (c < POOL_CLASSES && pool[c].n > 0)
                return pool[c].bufs[--pool[c].n];
        if (*capacity > SLAB_MAX_BUFFER)
                return sodium_malloc(*capacity);
        if (slab_left < *capacity) {
                /* the rest of the old slab is lost to small buffers: at most 4 KiB */
                slab_next = sodium_malloc(SLAB_SIZE);
                if (!slab_next) {
                        slab_left = 0;
                        return NULL;
                }
                slab_left = SLAB_SIZE;
        }
        unsigned char *p = slab_next;
        slab_next += *capacity;
        slab_left -= *capacity;
        return p;
}

static void buf_free(unsigned char *p, size_t capacity) {
        if (!p)
                return;
        size_t cap = capacity;
        unsigned c = size_class(&cap);
        if (cap == capacity && capacity <= SLAB_MAX_BUFFER) {
                sodium_memzero(p, capacity);
                memcpy(p, &slab_free[c], sizeof(unsigned char *));
                slab_free[c] = p;
                return;
        }
        if (c < POOL_CLASSES && cap == capacity && pool[c].n < POOL_DEPTH) {
                sodium_memzero(p, capacity);
                pool[c].bufs[pool[c].n++] = p;
                return;
        }
        sodium_free(p);   /* wipes */
}

struct secret {
        unsigned char *data;  /* sodium_malloc'd, capacity bytes */
        size_t len;
        size_t capacity;
        struct secret *prev, *next;   /* every live buffer, for secret_wipe_all */
};

static struct secret *live;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* Locked memory is what keeps values out of swap, and RLIMIT_MEMLOCK caps it for a process
 * without CAP_IPC_LOCK (8 MiB by default, 64 KiB on older systems): the soft limit is raised
 * to the hard one before anything is locked. Past the limit sodium_malloc still succeeds but
 * leaves the memory unlocked, silently; secret_lock_status() tells. */
int secret_init(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_MEMLOCK, &rl);
        }
        return sodium_init() < 0 ? -EIO : 0;
}

#define CAP_IPC_LOCK_BIT 14
/* How close to the limit counts as reached: one slab, the largest locked allocation a small
 * value makes. */
#define LOCK_CEILING_MARGIN (64 * 1024)

int secret_lock_status(uint64_t *ret_locked, uint64_t *ret_limit) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
                return -errno;
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return -errno;
        uint64_t locked_kib = 0, cap_eff = 0;
        char line[256];
        while (fgets(line, sizeof line, f)) {
                unsigned long long v;
                if (sscanf(line, "VmLck: %llu kB", &v) == 1)
                        locked_kib = v;
                else if (sscanf(line, "CapEff: %llx", &v) == 1)
                        cap_eff = v;
        }
        *ret_locked = locked_kib * 1024;
        *ret_limit = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t) rl.rlim_cur;
        /* with CAP_IPC_LOCK (root, usually) the limit does not apply */
        if (rl.rlim_cur == RLIM_INFINITY || (cap_eff & (1ULL << CAP_IPC_LOCK_BIT)))
                return 0;
        return *ret_locked + LOCK_CEILING_MARGIN >= (uint64_t) rl.rlim_cur ? 1 : 0;
}

int secret_new(size_t capacity, struct secret **ret) {
        struct secret *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_lock(&pool_lock);
        s->data = buf_alloc(&capacity);
        if (s->data) {
                s->capacity = capacity;
                s->next = live;
                if (live)
                        live->prev = s;
                live = s;
        }
        pthread_mutex_unlock(&pool_lock);
        if (!s->data) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

int secret_from_bytes(const void *p, size_t n, struct secret **ret) {
        struct secret *s;
        int r = secret_new(n, &s);
        if (r < 0)
                return r;
        memcpy(s->data, p, n);
        s->len = n;
        *ret = s;
        return 0;
}

/* Grows by moving into a fresh locked allocation: the old one is wiped by sodium_free. */
static int secret_reserve(struct secret *s, size_t need) {
        if (need <= s->capacity)
                return 0;
        size_t cap = need;
        pthread_mutex_lock(&pool_lock);
        unsigned char *d = buf_alloc(&cap);
        if (d) {
                memcpy(d, s->data, s->len);
                buf_free(s->data, s->capacity);
        }
        pthread_mutex_unlock(&pool_lock);
        if (!d)
                return -ENOMEM;
        s->data = d;
        s->capacity = cap;
        return 0;
}

int secret_append(struct secret *s, const void *p, size_t n) {
        if (n > SIZE_MAX - s->len)
                return -ENOMEM;
        int r = secret_reserve(s, s->len + n);
        if (r < 0)
                return r;
        memcpy(s->data + s->len, p, n);
        s->len += n;
        return 0;
}

int secret_push(struct secret *s, unsigned char c) {
        if (s->len == s->capacity) {
                int r = secret_reserve(s, s->len + 1);
                if (r < 0)
                        return r;
        }
        s->data[s->len++] = c;
        return 0;
}

int secret_read_fd(struct secret *s, int fd, size_t max) {
        for (;;) {
                if (s->len == s->capacity) {
                        int r = secret_reserve(s, s->capacity + 1);
                        if (r < 0)
                                return r;
                }
                ssize_t n = read(fd, s->data + s->len, s->capacity - s->len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                s->len += (size_t) n;
                if (s->len > max)
                        return -EFBIG;
        }
}

void secret_truncate(struct secret *s, size_t len) {
        if (len >= s->len)
                return;
        sodium_memzero(s->data + len, s->len - len);
        s->len = len;
}

void secret_chomp(struct secret *s) {
        if (s->len > 0 && s->data[s->len - 1] == '\n')
                secret_truncate(s, s->len - 1);
}

const unsigned char *secret_data(const struct secret *s) {
        return s->data;
}

size_t secret_len(const struct secret *s) {
        return s->len;
}

bool secret_has_nul(const struct secret *s) {
        return memchr(s->data, 0, s->len) != NULL;
}

void secret_wipe_all(void) {
        for (struct secret *s = live; s; s = s->next) {
                sodium_memzero(s->data, s->capacity);
                s->len = 0;
        }
}

struct secret *secret_free(struct secret *s) {
        if (!s)
                return NULL;
        pthread_mutex_lock(&pool_lock);
        if (s->prev)
                s->prev->next = s->next;
        else
                live = s->next;
        if (s->next)
                s->next->prev = s->prev;
        buf_free(s->data, s->capacity);
        pthread_mutex_unlock(&pool_lock);
        free(s);
        return NULL;
}
