/* The worker: one thread, one ring, one loop. It owns its listening
 * sockets (SO_REUSEPORT: the kernel spreads connections over workers), the
 * provided-buffer ring that receives land in, a timer wheel and its
 * connections. Completions are dispatched by the op in their user_data. */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "jwt.h"
#include "log.h"
#include "proxy_cache.h"
#include "ratelimit_redis.h"
#include "redis_link.h"

#define RING_ENTRIES 4096
#define RECV_BUFFERS 512 /* per worker, BUF_BLOCK each; a power of two */
#define BUF_GROUP 0
#define LOOP_WAIT_MS 100
#define ACCEPT_PAUSE_MS 100 /* after an accept error */

atomic_bool workers_stop;
_Atomic(const struct config *) config_published;

static const char *ring_error(int err)
{
    if (err == -ENOSYS)
        return "io_uring is not available: this kernel lacks it or it is compiled out";
    if (err == -EPERM || err == -EACCES)
        return "io_uring is forbidden here (sysctl kernel.io_uring_disabled, or a container "
               "seccomp profile): allow io_uring_setup/io_uring_enter for ringgate";
    if (err == -ENOMEM)
        return "io_uring ring could not be allocated (RLIMIT_MEMLOCK too low?)";
    return strerror(-err);
}

static int ring_create(struct io_uring *ring)
{
    struct io_uring_params p;
    int ret;

    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ret = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (ret == -EINVAL) { /* kernel before 6.1 */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_COOP_TASKRUN;
        ret = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    if (ret == -EINVAL) {
        memset(&p, 0, sizeof(p));
        ret = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    return ret;
}

int worker_probe_kernel(char *err, size_t err_size)
{
    static const struct {
        int op;
        const char *name;
    } needed[] = {
        {IORING_OP_ACCEPT, "accept"},   {IORING_OP_RECV, "recv"},
        {IORING_OP_SEND, "send"},       {IORING_OP_SENDMSG, "sendmsg"},
        {IORING_OP_CONNECT, "connect"}, {IORING_OP_LINK_TIMEOUT, "link_timeout"},
        {IORING_OP_READ, "read"},       {IORING_OP_OPENAT2, "openat2"},
        {IORING_OP_CLOSE, "close"},     {IORING_OP_SHUTDOWN, "shutdown"},
    };
    struct io_uring ring;
    struct io_uring_probe *probe;
    int ret = ring_create(&ring);

    if (ret < 0) {
        snprintf(err, err_size, "%s", ring_error(ret));
        return -1;
    }
    if (!(ring.features & IORING_FEAT_EXT_ARG)) {
        snprintf(err, err_size, "io_uring on this kernel is too old (need 5.19 or later)");
        io_uring_queue_exit(&ring);
        return -1;
    }
    probe = io_uring_get_probe_ring(&ring);
    ret = 0;
    for (size_t i = 0; probe && i < sizeof(needed) / sizeof(needed[0]); i++) {
        if (!io_uring_opcode_supported(probe, needed[i].op)) {
            snprintf(err, err_size, "io_uring on this kernel lacks the %s operation",
                     needed[i].name);
            ret = -1;
            break;
        }
    }
    if (probe)
        io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    return ret;
}

/* deferred_accept: the kernel completes an accept only once the client
 * has sent something (or the time is up), so that the first receive finds
 * the request instead of arming a poll and waking the worker again. */
static int listen_set_deferred(int fd, const struct listener_conf *lc)
{
    int secs = (int)lc->deferred_accept_s;

    return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
}

int listen_open(const struct listener_conf *lc, char *err, size_t err_size)
{
    int one = 1;
    int fd = socket(lc->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        goto fail;
    /* TCP_NODELAY here: accepted connections inherit it, which saves a
     * system call per connection. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        listen_set_deferred(fd, lc) < 0)
        goto fail;
    if (lc->addr.ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&lc->addr.ss, lc->addr.len) < 0)
        goto fail;
    if (listen(fd, 4096) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, err_size, "listener %s (%s): %s", lc->name, lc->listen, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static struct listen_socket *listen_socket_new(struct worker *w, const struct listener_conf *lc,
                                               int fd)
{
    struct listen_socket *ls = aligned_alloc(16, sizeof(*ls));

    if (!ls)
        return NULL;
    memset(ls, 0, sizeof(*ls));
    ls->fd = fd;
    ls->conf = lc;
    ls->worker = w;
    return ls;
}

int worker_init(struct worker *w, unsigned id, const struct config *cfg, char *err,
                size_t err_size)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    atomic_store(&w->acked, cfg);
    w->listens = calloc(cfg->n_listeners + 1, sizeof(*w->listens));
    if (!w->listens) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        int fd = listen_open(&cfg->listeners[i], err, err_size);

        if (fd < 0)
            return -1;
        w->listens[i] = listen_socket_new(w, &cfg->listeners[i], fd);
        if (!w->listens[i]) {
            close(fd);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        w->n_listens++;
    }
    buf_pool_init(&w->pool, 256);
    w->metrics = calloc(1, sizeof(*w->metrics));
    if (!w->metrics) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    access_log_init(&w->access_log);
    w->jwt_cache = jwt_cache_new(8192, 8u << 20, 3600);
    if (!w->jwt_cache) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

    if (!sqe) {
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    /* With RING_ENTRIES slots and a submit just done this cannot fail. */
    return sqe;
}

void worker_close_fd(struct worker *w, int fd)
{
    struct io_uring_sqe *sqe = worker_sqe(w);

    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, OP_IGNORE);
}

static int buffers_setup(struct worker *w)
{
    size_t ring_bytes = RECV_BUFFERS * sizeof(struct io_uring_buf);
    struct io_uring_buf_reg reg;
    void *mem;
    int ret;

    mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    w->buf_ring = mem;
    w->buf_base = malloc((size_t)RECV_BUFFERS * BUF_BLOCK);
    if (!w->buf_base)
        return -ENOMEM;
    w->buf_count = RECV_BUFFERS;
    w->buf_mask = (unsigned)io_uring_buf_ring_mask(RECV_BUFFERS);
    io_uring_buf_ring_init(w->buf_ring);
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)w->buf_ring;
    reg.ring_entries = RECV_BUFFERS;
    reg.bgid = BUF_GROUP;
    ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (ret < 0)
        return ret;
    for (unsigned i = 0; i < RECV_BUFFERS; i++)
        io_uring_buf_ring_add(w->buf_ring, worker_buffer(w, i), BUF_BLOCK, (unsigned short)i,
                              (int)w->buf_mask, (int)i);
    io_uring_buf_ring_advance(w->buf_ring, RECV_BUFFERS);
    return 0;
}

void worker_recycle_buffer(struct worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->buf_ring, worker_buffer(w, bid), BUF_BLOCK, (unsigned short)bid,
                          (int)w->buf_mask, 0);
    io_uring_buf_ring_advance(w->buf_ring, 1);
}

static void accept_arm(struct listen_socket *ls)
{
    struct io_uring_sqe *sqe = worker_sqe(ls->worker);

    io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_data(ls, OP_ACCEPT));
    ls->accepting = true;
}

/* A listener removed by a reload: its socket closes now, and the struct
 * goes when the accept in the ring has ended. */
static void listen_socket_retire(struct worker *w, struct listen_socket *ls)
{
    ls->conf = NULL;
    if (ls->accepting) {
        struct io_uring_sqe *sqe = worker_sqe(w);

        io_uring_prep_cancel64(sqe, op_data(ls, OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }
    shutdown(ls->fd, SHUT_RD);
    close(ls->fd);
    ls->fd = -1;
    if (!ls->accepting)
        free(ls);
}

static void on_accept(struct listen_socket *ls, struct io_uring_cqe *cqe)
{
    struct worker *w = ls->worker;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        ls->accepting = false;
    if (!ls->conf) { /* retired */
        if (cqe->res >= 0)
            close(cqe->res);
        if (!ls->accepting)
            free(ls);
        return;
    }
    if (cqe->res >= 0) {
        if (w->draining)
            close(cqe->res);
        else
            conn_accept(w, ls, cqe->res);
    } else if (cqe->res != -ECANCELED) {
        /* Out of descriptors, typically: accepting pauses for a while (a
         * retry every turn would spin, and take every descriptor freed
         * before the admin thread can use it), and the log says so once a
         * second at most. */
        ls->accept_again = w->now + ACCEPT_PAUSE_MS;
        if (w->now >= w->accept_log_next) {
            w->accept_log_next = w->now + 1000;
            log_warn("worker %u: accept on %s: %s", w->id, ls->conf->name,
                     strerror(-cqe->res));
        }
    }
}

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    enum op op = (enum op)(data & OP_MASK);
    void *owner = (void *)(uintptr_t)(data & ~(uint64_t)OP_MASK);

    if (data == LIBURING_UDATA_TIMEOUT)
        return;
    switch (op) {
    case OP_ACCEPT:
        on_accept(owner, cqe);
        break;
    case OP_CLIENT_RECV:
    case OP_CLIENT_SEND:
    case OP_DETACHED_SEND:
    case OP_FILE_OPEN:
    case OP_FILE_READ:
    case OP_CLIENT_SHUTDOWN:
        conn_on_cqe(owner, op, cqe);
        break;
    case OP_UP_CONNECT:
    case OP_UP_RECV:
    case OP_UP_SEND:
        upstream_on_cqe(owner, op, cqe);
        break;
    case OP_LOG_WRITE:
        access_log_on_write(w, cqe->res);
        break;
    case OP_REDIS_READABLE:
    case OP_REDIS_WRITABLE:
        redis_link_on_poll(owner, op == OP_REDIS_WRITABLE, cqe->res);
        break;
    case OP_IGNORE:
        break;
    }
}

static void drain_start(struct worker *w)
{
    w->draining = true;
    w->drain_deadline = w->now + w->cfg->shutdown_timeout;
    for (size_t i = 0; i < w->n_listens; i++) {
        /* Closing the socket stops new connections at the kernel: the
         * other workers' sockets are closing too. */
        struct io_uring_sqe *sqe = worker_sqe(w);

        io_uring_prep_cancel64(sqe, op_data(w->listens[i], OP_ACCEPT), 0);
        io_uring_sqe_set_data64(sqe, 0);
        shutdown(w->listens[i]->fd, SHUT_RD);
    }
    for (struct conn *c = w->conns, *next; c; c = next) {
        next = c->next;
        conn_close_if_idle(c);
    }
}

/* ---- configuration reloads ---- */

static struct listen_socket *listen_socket_at(struct worker *w, const struct sockaddr_any *addr)
{
    for (size_t i = 0; i < w->n_listens; i++)
        if (w->listens[i] && sockaddr_equal(&w->listens[i]->conf->addr, addr))
            return w->listens[i];
    return NULL;
}

/* Listeners at an unchanged address keep their socket (no connection is
 * refused during a reload); new ones take the socket the main thread
 * opened; removed ones close. */
static int switch_listeners(struct worker *w, const struct config *next)
{
    struct listen_socket **list = calloc(next->n_listeners + 1, sizeof(*list));

    if (!list)
        return -1;
    for (size_t i = 0; i < next->n_listeners; i++) {
        const struct listener_conf *lc = &next->listeners[i];
        struct listen_socket *ls = listen_socket_at(w, &lc->addr);

        if (ls) {
            for (size_t j = 0; j < w->n_listens; j++)
                if (w->listens[j] == ls)
                    w->listens[j] = NULL;
            if (ls->conf->deferred_accept_s != lc->deferred_accept_s &&
                listen_set_deferred(ls->fd, lc) < 0)
                log_warn("listener %s: deferred_accept: %s", lc->name, strerror(errno));
            ls->conf = lc;
        } else {
            ls = listen_socket_new(w, lc, w->new_listen_fds[i]);
            if (!ls) {
                close(w->new_listen_fds[i]);
                continue; /* out of memory: this listener does not start here */
            }
        }
        w->new_listen_fds[i] = -1;
        list[i] = ls;
    }
    for (size_t j = 0; j < w->n_listens; j++)
        if (w->listens[j])
            listen_socket_retire(w, w->listens[j]);
    free(w->listens);
    w->listens = list;
    w->n_listens = next->n_listeners;
    for (size_t i = 0; i < w->n_listens; i++) /* compact what failed */
        if (!w->listens[i]) {
            memmove(&w->listens[i], &w->listens[i + 1],
                    (w->n_listens - i - 1) * sizeof(*w->listens));
            w->n_listens--;
            i--;
        }
    return 0;
}

static const struct listener_conf *listener_in(const struct config *cfg,
                                               const struct listener_conf *old)
{
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (sockaddr_equal(&cfg->listeners[i].addr, &old->addr))
            return &cfg->listeners[i];
    return NULL;
}

static bool needs_redis(const struct config *cfg)
{
    for (size_t i = 0; cfg->has_redis && i < cfg->n_rate_limits; i++)
        if (cfg->rate_limits[i].backend == RL_BACKEND_REDIS)
            return true;
    return false;
}

/* A link to the configured Redis when a policy uses it; a reload keeps
 * the link when the server is the same (calls out stay valid). */
static void redis_switch(struct worker *w, const struct config *cfg)
{
    bool needed = needs_redis(cfg);

    if (w->redis && needed && redis_link_same_server(w->redis, &cfg->redis))
        return;
    redis_link_free(w->redis);
    w->redis = needed ? redis_link_new(w, &cfg->redis, ratelimit_redis_script()) : NULL;
    if (needed && !w->redis)
        log_error("worker %u: out of memory for the Redis link: on_redis_error applies", w->id);
}

static void switch_config(struct worker *w, const struct config *next)
{
    const struct config *old = w->cfg;

    if (w->n_retiring == WORKER_MAX_RETIRING)
        return; /* the main thread does not publish past this */
    if (switch_listeners(w, next) < 0 || upstreams_switch(w, next) < 0) {
        log_error("worker %u: out of memory switching configuration", w->id);
        return;
    }
    w->cfg = next;
    redis_switch(w, next);
    for (struct conn *c = w->conns, *nextc; c; c = nextc) {
        const struct listener_conf *lc = c->listener ? listener_in(next, c->listener) : NULL;

        nextc = c->next;
        if (!c->listener) /* a tunnel: nothing of the configuration */
            continue;
        if (lc)
            c->listener = lc;
        else
            conn_close_if_idle(c); /* its listener is gone */
    }
    w->retiring[w->n_retiring++] = old;
    atomic_store_explicit(&w->acked, next, memory_order_release);
}

static bool config_in_use(const struct worker *w, const struct config *cfg)
{
    const struct listener_conf *first = cfg->listeners, *end = first + cfg->n_listeners;

    for (const struct conn *c = w->conns; c; c = c->next)
        if ((c->x && c->x->cfg == cfg) ||
            (c->listener && c->listener >= first && c->listener < end))
            return true;
    return false;
}

/* Lets go of old snapshots no connection of this worker uses any more; the
 * main thread frees one when every worker has let go. */
static void release_retired(struct worker *w)
{
    for (size_t i = 0; i < w->n_retiring;) {
        if (config_in_use(w, w->retiring[i])) {
            i++;
            continue;
        }
        atomic_fetch_sub_explicit(&((struct config *)w->retiring[i])->retire_holds, 1,
                                  memory_order_release);
        w->retiring[i] = w->retiring[--w->n_retiring];
    }
}

/* ---- the memory budget ---- */

/* What one TLS engine holds (BoringSSL's state and its record buffers):
 * an estimate; the engine's allocations are not counted one by one. */
#define TLS_CONN_BYTES (24 * 1024)
#define SHED_CLOSE_PER_TURN 256

static _Atomic uint64_t memory_of[MAX_WORKERS]; /* per worker, published each turn */

static uint64_t memory_held(const struct worker *w)
{
    return buf_pool_in_use(&w->pool) + w->n_conns * sizeof(struct conn) +
           w->n_exchanges * sizeof(struct exchange) + w->n_upconns * sizeof(struct upconn) +
           w->n_tls_conns * TLS_CONN_BYTES;
}

/* Keep-alive connections between requests, oldest first (accepted longest
 * ago: the list's tail), a bounded number per turn. New connections are
 * left alone: their first request gets the 503. */
static void close_idle_connections(struct worker *w)
{
    struct conn *c = w->conns, *prev;
    unsigned closed = 0;

    while (c && c->next)
        c = c->next;
    for (; c && closed < SHED_CLOSE_PER_TURN; c = prev) {
        prev = c->prev;
        if (c->state != CS_HEAD || c->got_bytes || !c->requests || c->closing)
            continue;
        conn_close(c);
        closed++;
    }
    counter_add(&w->metrics->shed_connections, closed);
}

/* Every worker publishes what its connections hold and reads the others':
 * over limits.max_memory, new requests get 503 and idle connections are
 * closed until the total is back under 90 % of it. */
static void memory_check(struct worker *w)
{
    uint64_t budget = w->cfg->limits.max_memory, total = 0, mine = memory_held(w);

    atomic_store_explicit(&memory_of[w->id], mine, memory_order_relaxed);
    atomic_store_explicit(&w->metrics->memory_bytes, mine, memory_order_relaxed);
    if (!budget) {
        w->shedding = false;
        return;
    }
    for (unsigned i = 0; i < w->cfg->workers && i < MAX_WORKERS; i++)
        total += atomic_load_explicit(&memory_of[i], memory_order_relaxed);
    if (total > budget && !w->shedding && w->now >= w->shed_log_next) {
        log_warn("worker %u: connections hold %llu bytes, over limits.max_memory (%llu): "
                 "shedding load",
                 w->id, (unsigned long long)total, (unsigned long long)budget);
        w->shed_log_next = w->now + 1000;
    }
    w->shedding = total > budget || (w->shedding && total > budget / 10 * 9);
    if (w->shedding) {
        buf_pool_trim(&w->pool);
        close_idle_connections(w);
    }
}

static void clock_read(struct worker *w)
{
    w->now_us = clock_us();
    w->now = w->now_us / 1000;
}

static void loop_turn(struct worker *w)
{
    /* Requests waiting on a cache fill look at it every few ms; a verdict
     * awaited from Redis has a deadline finer than the loop's. */
    long long wait_ms = w->cache_polled                              ? PROXY_CACHE_POLL_MS
                        : w->redis && redis_link_waiting(w->redis) ? TIMER_TICK_MS
                                                                    : LOOP_WAIT_MS;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = wait_ms * 1000000LL};
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;

    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
    clock_read(w);
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        dispatch(w, cqe);
        seen++;
    }
    io_uring_cq_advance(&w->ring, seen);
    timer_wheel_run(&w->timers, w->now, conn_on_timer);
    if (w->cache_polled)
        proxy_cache_poll(w);
    memory_check(w);
    if (w->redis)
        redis_link_tick(w->redis, w->now);
    access_log_flush(w);
    if (w->n_retiring)
        release_retired(w);
    if (!w->draining) {
        for (size_t i = 0; i < w->n_listens; i++)
            if (!w->listens[i]->accepting && w->now >= w->listens[i]->accept_again)
                accept_arm(w->listens[i]);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    clock_read(w);
    timer_wheel_init(&w->timers, w->now);
    upstreams_init(w);
    redis_switch(w, w->cfg);
    while (!w->draining || (w->n_conns && w->now < w->drain_deadline)) {
        const struct config *next = atomic_load_explicit(&config_published, memory_order_acquire);

        if (next && next != w->cfg && !w->draining)
            switch_config(w, next);
        if (!w->draining && atomic_load_explicit(&workers_stop, memory_order_relaxed))
            drain_start(w);
        loop_turn(w);
    }
    /* shutdown_timeout is over: tunnels get a WebSocket close frame (where
     * both directions are between frames) and a second to flush it. */
    bool goodbyes = false;
    for (struct conn *c = w->conns; c; c = c->next)
        if (c->state == CS_TUNNEL && !c->closing)
            goodbyes |= tunnel_goodbye(c);
    for (uint64_t until = clock_ms() + 1000; goodbyes && w->conns && clock_ms() < until;)
        loop_turn(w);
    while (w->conns) {
        struct conn *c = w->conns;
        conn_close(c);
        if (w->conns == c) /* still has operations in the ring */
            loop_turn(w);
    }
    /* Pooled connections close now; closing ones finish their operations. */
    upstreams_destroy(w);
    redis_link_free(w->redis);
    w->redis = NULL;
    for (uint64_t until = clock_ms() + 1000;
         (w->n_upconns || w->redis_socks) && clock_ms() < until;)
        loop_turn(w);
    io_uring_submit(&w->ring); /* the closes queued by the last turn */
    return NULL;
}

struct start_args {
    struct worker *w;
    sem_t ready;
    int result;
};

static void *worker_boot(void *arg)
{
    struct start_args *sa = arg;
    struct worker *w = sa->w;
    int ret = ring_create(&w->ring);

    if (ret == 0)
        ret = buffers_setup(w);
    if (ret < 0)
        log_error("worker %u: io_uring: %s", w->id, ring_error(ret));
    getrandom(&w->rng, sizeof(w->rng), 0);
    w->rng |= 1;
    sa->result = ret;
    sem_post(&sa->ready); /* sa is gone after this */
    if (ret < 0)
        return NULL;
    return worker_main(w);
}

int worker_start(struct worker *w)
{
    struct start_args sa = {.w = w};
    int ret;

    sem_init(&sa.ready, 0, 0);
    ret = pthread_create(&w->thread, NULL, worker_boot, &sa);
    if (ret != 0) {
        sem_destroy(&sa.ready);
        return -ret;
    }
    while (sem_wait(&sa.ready) < 0 && errno == EINTR)
        ;
    sem_destroy(&sa.ready);
    if (sa.result < 0) {
        pthread_join(w->thread, NULL);
        w->thread = 0;
    }
    return sa.result;
}

void worker_join(struct worker *w)
{
    if (w->thread)
        pthread_join(w->thread, NULL);
    w->thread = 0;
}

void worker_destroy(struct worker *w)
{
    for (size_t i = 0; i < w->n_listens; i++) {
        close(w->listens[i]->fd);
        free(w->listens[i]);
    }
    free(w->listens);
    if (w->ring.ring_fd > 0) {
        upstreams_destroy(w);
        io_uring_queue_exit(&w->ring);
    }
    if (w->buf_ring)
        munmap(w->buf_ring, RECV_BUFFERS * sizeof(struct io_uring_buf));
    free(w->buf_base);
    buf_pool_destroy(&w->pool);
    free(w->metrics);
    access_log_destroy(&w->access_log);
    if (w->jwt_cache)
        jwt_cache_free(w->jwt_cache);
    free(w->schema_arena);
    while (w->free_exchanges) {
        struct exchange *x = w->free_exchanges;
        w->free_exchanges = x->next_free;
        free(x);
    }
}
