/* A worker: one thread, one io_uring, its own listening sockets (one per
 * listener, SO_REUSEPORT), its connections and its upstream pools. Workers
 * share nothing on the hot path. */
#ifndef RINGGATE_WORKER_H
#define RINGGATE_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accesslog.h"
#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "timer.h"

/* What a completion is for: the low 4 bits of its user_data; the rest is a
 * pointer to the owner (16-byte aligned). */
enum op {
    OP_IGNORE = 0,
    OP_ACCEPT,
    OP_CLIENT_RECV,
    OP_CLIENT_SEND,
    OP_FILE_OPEN,
    OP_FILE_READ,
    OP_UP_CONNECT,
    OP_UP_RECV,
    OP_UP_SEND,
    OP_LOG_WRITE,
    OP_REDIS_READABLE,
    OP_REDIS_WRITABLE,
    OP_DETACHED_SEND, /* a NOP: a detached exchange's send (conn_new_detached) */
    OP_CLIENT_SHUTDOWN,
};

#define OP_MASK 15u

static inline uint64_t op_data(void *owner, enum op op)
{
    return (uint64_t)(uintptr_t)owner | op;
}

struct listen_socket {
    int fd;
    const struct listener_conf *conf; /* NULL once removed by a reload */
    struct worker *worker;
    bool accepting;
    uint64_t accept_again; /* ms: after an accept error (out of descriptors) */
} __attribute__((aligned(16)));

#define WORKER_MAX_RETIRING 16

struct upstream_state; /* upstream.c: per worker, per upstream */
struct redis_link;     /* redis_link.c */
struct exchange;       /* conn.h */
struct cache_exchange; /* proxy_cache.c */

struct worker {
    unsigned id;
    pthread_t thread;
    struct io_uring ring;
    /* Monotonic, read once per loop turn (as nginx caches its time): what
     * happens in a turn is timed from when its completions arrived. */
    uint64_t now;    /* ms */
    uint64_t now_us; /* µs */
    const struct config *cfg;

    struct io_uring_buf_ring *buf_ring; /* provided receive buffers */
    char *buf_base;
    unsigned buf_count;
    unsigned buf_mask;

    struct buf_pool pool;
    struct timer_wheel timers;
    struct listen_socket **listens; /* one per cfg->listeners, same order */
    size_t n_listens;
    struct upstream_state **upstreams; /* one per cfg->upstreams, same order */

    /* Reloads: the snapshot this worker has switched to (read by the main
     * thread), sockets the main thread opened for new listeners, and old
     * snapshots some connection may still be using. */
    _Atomic(const struct config *) acked;
    int *new_listen_fds;
    const struct config *retiring[WORKER_MAX_RETIRING];
    size_t n_retiring;

    struct conn *conns; /* every live client connection */
    size_t n_conns;
    size_t n_upconns; /* live upstream connections */
    size_t n_tls_conns; /* client connections with a TLS engine */
    size_t n_exchanges; /* attached to a connection */
    struct exchange *free_exchanges; /* for reuse */
    size_t n_free_exchanges;
    bool shedding;      /* all workers' connections hold more than limits.max_memory */
    uint64_t shed_log_next; /* ms: logged at most once a second */
    uint64_t rng; /* request ids */
    bool draining;
    uint64_t drain_deadline;
    uint64_t tls_log_next;    /* ms: TLS failures are logged at most once a second */
    uint64_t accept_log_next; /* ms: accept errors too */
    struct worker_metrics *metrics;
    struct access_log access_log;
    struct jwt_cache *jwt_cache; /* verified tokens of this worker */
    struct redis_link *redis;    /* NULL unless a rate limit lives in Redis */
    unsigned redis_socks;        /* Redis sockets the ring may still report on */
    struct cache_exchange *cache_polled; /* requests waiting on cache fills */
    void *schema_arena;          /* kept between validations (body.c) */
    size_t schema_arena_size;
} __attribute__((aligned(16)));

/* Process-wide control, written by the main thread. */
extern atomic_bool workers_stop;
extern _Atomic(const struct config *) config_published;

/* Opens a listening socket (SO_REUSEPORT) for a listener; -1 with err. */
int listen_open(const struct listener_conf *lc, char *err, size_t err_size);

/* Checks that io_uring works here with what ringgate needs; on failure
 * writes a one-line explanation into err and returns -1. */
int worker_probe_kernel(char *err, size_t err_size);

/* Opens a worker's listening sockets and ring; -1 with err on failure. */
int worker_init(struct worker *w, unsigned id, const struct config *cfg, char *err,
                size_t err_size);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* xorshift64*: request ids and balancing need spread, not secrecy. */
static inline uint64_t worker_random(struct worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1DULL;
}

/* For the connection modules. */
struct io_uring_sqe *worker_sqe(struct worker *w);
/* Closes fd with the ring's next submit: a system call fewer per
 * connection. The descriptor's number stays taken until then. */
void worker_close_fd(struct worker *w, int fd);
void worker_recycle_buffer(struct worker *w, unsigned bid);
static inline char *worker_buffer(struct worker *w, unsigned bid)
{
    return w->buf_base + (size_t)bid * BUF_BLOCK;
}

#endif
