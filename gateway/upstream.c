/* Connections to origins: round-robin choice of endpoint, a per-worker
 * pool of idle keep-alive connections per endpoint, and the ring
 * operations on them. An idle pooled connection keeps a receive armed, so
 * an origin closing it is noticed at once and the connection dropped. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "endpoint.h"
#include "retry_budget.h"
#include "log.h"
#include "tls.h"

#define UP_HEAD_LIMIT (64 * 1024) /* largest response head we accept */

struct endpoint_pool {
    struct upconn *idle;
    unsigned n_idle;
};

/* A worker's state for one upstream. It outlives configuration reloads
 * that keep the upstream unchanged (same name, same endpoints): its pools
 * carry over. One that a reload drops is retired, and freed when its last
 * connection is. */
struct upstream_state {
    const struct upstream_conf *conf;
    unsigned upstream_id; /* metrics id: outlives conf */
    unsigned next_endpoint;
    struct endpoint_pool *pools;
    unsigned *inflight; /* per endpoint: requests of this worker (least_request) */
    int64_t *wrr;       /* per endpoint: smooth weighted round robin state */
    unsigned *weights;
    size_t n_endpoints;
    size_t live; /* connections pointing here */
    struct retry_budget retries;
    bool retired;
};


static struct upstream_state *state_new(const struct upstream_conf *u)
{
    struct upstream_state *us = calloc(1, sizeof(*us));

    if (!us)
        return NULL;
    us->pools = calloc(u->n_endpoints, sizeof(struct endpoint_pool));
    us->inflight = calloc(u->n_endpoints, sizeof(unsigned));
    us->wrr = calloc(u->n_endpoints, sizeof(int64_t));
    us->weights = calloc(u->n_endpoints, sizeof(unsigned));
    if (!us->pools || !us->inflight || !us->wrr || !us->weights) {
        free(us->pools);
        free(us->inflight);
        free(us->wrr);
        free(us->weights);
        free(us);
        return NULL;
    }
    for (size_t i = 0; i < u->n_endpoints; i++)
        us->weights[i] = u->endpoints[i].weight;
    us->conf = u;
    us->upstream_id = u->metrics_id;
    us->n_endpoints = u->n_endpoints;
    retry_budget_init(&us->retries);
    return us;
}

static void state_free(struct upstream_state *us)
{
    free(us->pools);
    free(us->inflight);
    free(us->wrr);
    free(us->weights);
    free(us);
}

static void upconn_free(struct upconn *up)
{
    struct upstream_state *us = up->us;

    worker_close_fd(up->w, up->fd);
    if (up->held)
        worker_recycle_buffer(up->w, up->held_bid);
    if (up->tls)
        tls_conn_free(up->tls);
    buf_free(&up->in, &up->w->pool);
    buf_free(&up->out, &up->w->pool);
    up->w->n_upconns--;
    if (up->connecting)
        upstream_connect_end(us->upstream_id);
    upstream_connection_closed(us->upstream_id);
    free(up);
    if (--us->live == 0 && us->retired)
        state_free(us);
}

/* Closes the idle pooled connections; the state itself goes with its last
 * connection (at once when there is none). */
static void state_retire(struct upstream_state *us)
{
    us->retired = true;
    us->live++; /* keeps us alive while its pools empty */
    for (size_t e = 0; e < us->n_endpoints; e++) {
        while (us->pools[e].idle) {
            struct upconn *up = us->pools[e].idle;
            us->pools[e].idle = up->next;
            us->pools[e].n_idle--;
            up->closing = true;
            if (up->pending == 0)
                upconn_free(up);
            else
                shutdown(up->fd, SHUT_RDWR);
        }
    }
    if (--us->live == 0)
        state_free(us);
}

void upstreams_init(struct worker *w)
{
    const struct config *cfg = w->cfg;

    w->upstreams = calloc(cfg->n_upstreams + 1, sizeof(*w->upstreams));
    for (size_t i = 0; w->upstreams && i < cfg->n_upstreams; i++)
        w->upstreams[i] = state_new(&cfg->upstreams[i]);
}

static bool same_endpoints(const struct upstream_conf *a, const struct upstream_conf *b)
{
    if (strcmp(a->name, b->name) != 0 || a->n_endpoints != b->n_endpoints)
        return false;
    for (size_t e = 0; e < a->n_endpoints; e++)
        if (!sockaddr_equal(&a->endpoints[e].addr, &b->endpoints[e].addr) ||
            a->endpoints[e].weight != b->endpoints[e].weight)
            return false;
    return true;
}

int upstreams_switch(struct worker *w, const struct config *next)
{
    const struct config *cur = w->cfg;
    struct upstream_state **list = calloc(next->n_upstreams + 1, sizeof(*list));

    if (!list)
        return -1;
    for (size_t i = 0; i < next->n_upstreams; i++) {
        const struct upstream_conf *u = &next->upstreams[i];

        for (size_t j = 0; j < cur->n_upstreams && !list[i]; j++) {
            struct upstream_state *us = w->upstreams[j];
            if (us && same_endpoints(us->conf, u)) {
                us->conf = u;
                list[i] = us;
                w->upstreams[j] = NULL;
            }
        }
        if (!list[i])
            list[i] = state_new(u);
    }
    for (size_t j = 0; j < cur->n_upstreams; j++)
        if (w->upstreams[j])
            state_retire(w->upstreams[j]);
    free(w->upstreams);
    w->upstreams = list;
    return 0;
}

void upstreams_destroy(struct worker *w)
{
    for (size_t i = 0; w->upstreams && i < w->cfg->n_upstreams; i++)
        if (w->upstreams[i])
            state_retire(w->upstreams[i]);
    free(w->upstreams);
    w->upstreams = NULL;
}

/* The worker's state for u: by position, or by name for a request that
 * began under an earlier configuration. */
static struct upstream_state *state_of(struct worker *w, const struct upstream_conf *u)
{
    const struct config *cfg = w->cfg;

    if (u->index < cfg->n_upstreams && w->upstreams[u->index] &&
        w->upstreams[u->index]->conf == u)
        return w->upstreams[u->index];
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (w->upstreams[i] && strcmp(w->upstreams[i]->conf->name, u->name) == 0)
            return w->upstreams[i];
    return NULL;
}

const char *upstream_endpoint_name(const struct upconn *up)
{
    return up->us->conf->endpoints[up->ep].text;
}

static void pool_remove(struct upconn *up)
{
    struct endpoint_pool *pool = &up->us->pools[up->ep];

    for (struct upconn **p = &pool->idle; *p; p = &(*p)->next) {
        if (*p == up) {
            *p = up->next;
            pool->n_idle--;
            return;
        }
    }
}

/* Marks the connection closing; it is freed when its last operation in
 * the ring completes. */
static void upconn_shutdown(struct upconn *up)
{
    if (up->closing)
        return;
    up->closing = true;
    up->client = NULL;
    if (up->pending > (int)up->handling)
        shutdown(up->fd, SHUT_RDWR); /* completes the operations in the ring */
    /* else: only the completion being handled, which frees up on return */
}

static void upconn_close(struct upconn *up)
{
    if (up->pending == 0)
        upconn_free(up);
    else
        upconn_shutdown(up);
}

static void connect_submit(struct upconn *up, const struct sockaddr_any *addr, uint64_t timeout)
{
    struct io_uring_sqe *sqe = worker_sqe(up->w);

    io_uring_prep_connect(sqe, up->fd, (const struct sockaddr *)&addr->ss, addr->len);
    io_uring_sqe_set_data64(sqe, op_data(up, OP_UP_CONNECT));
    sqe->flags |= IOSQE_IO_LINK;
    up->connect_timeout.tv_sec = (long long)(timeout / 1000);
    up->connect_timeout.tv_nsec = (long long)(timeout % 1000) * 1000000;
    sqe = worker_sqe(up->w);
    io_uring_prep_link_timeout(sqe, &up->connect_timeout, 0);
    io_uring_sqe_set_data64(sqe, 0);
    up->pending++;
}

/* May a request go to endpoint ep now (health, breaker)? A half-open
 * breaker counts the request as one of its probes. */
static bool endpoint_usable(const struct upstream_state *us, unsigned ep, uint64_t now)
{
    const struct endpoint_conf *e = &us->conf->endpoints[ep];
    struct breaker_params params = breaker_params_of(us->conf);

    return endpoint_healthy(e->metrics_id) &&
           breaker_allow(endpoint_breaker(e->metrics_id), &params, now);
}

struct pick {
    struct worker *w;
    struct upstream_state *us;
    int avoid;
};

static bool pick_usable(void *arg, size_t i)
{
    struct pick *p = arg;

    if ((int)i == p->avoid && p->us->n_endpoints > 1)
        return false;
    return endpoint_usable(p->us, (unsigned)i, p->w->now);
}

/* The endpoint for the next request, or -1 when none may take it. avoid:
 * the endpoint that just failed this request (-1: none); it is taken only
 * when it is the only one. key_hash: the request's key, for balance hash. */
static int choose_endpoint(struct worker *w, struct upstream_state *us, int avoid,
                           uint64_t key_hash)
{
    unsigned n = (unsigned)us->n_endpoints;
    struct pick p = {w, us, avoid};

    if (us->conf->balance == BALANCE_HASH)
        return hash_ring_pick_hash(&us->conf->ring, key_hash, pick_usable, &p);
    if (us->conf->balance == BALANCE_ROUND_ROBIN)
        return wrr_pick(us->weights, us->wrr, n, pick_usable, &p);

    if (us->conf->balance == BALANCE_LEAST_REQUEST && n > 1) {
        /* Power of two choices: the less busy of two picked at random. */
        unsigned a = (unsigned)(worker_random(w) % n), b = (unsigned)(worker_random(w) % (n - 1));
        unsigned pick;

        b = b >= a ? b + 1 : b;
        pick = us->inflight[b] < us->inflight[a] ? b : a;
        if ((int)pick == avoid)
            pick = pick == a ? b : a;
        if ((int)pick != avoid && endpoint_usable(us, pick, w->now))
            return (int)pick;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned ep = us->next_endpoint++ % n;
        if ((int)ep == avoid && n > 1)
            continue;
        if (endpoint_usable(us, ep, w->now))
            return (int)ep;
    }
    return -1;
}

struct upconn *upstream_acquire(struct worker *w, const struct upstream_conf *u, int avoid,
                                bool first_attempt, uint64_t key_hash, enum acquire_error *why)
{
    struct upstream_state *us = state_of(w, u);
    struct endpoint_pool *pool;
    const struct sockaddr_any *addr;
    struct upconn *up;
    int ep, one = 1;

    *why = ACQUIRE_FAILED;
    if (!us)
        return NULL;
    u = us->conf;
    if (first_attempt) /* each request earns a fraction of a retry */
        retry_budget_earn(&us->retries);
    ep = choose_endpoint(w, us, avoid, key_hash);
    if (ep < 0) {
        *why = ACQUIRE_NO_ENDPOINT;
        return NULL;
    }
    pool = &us->pools[ep];
    addr = &u->endpoints[ep].addr;
    up = pool->idle;
    if (up) {
        pool->idle = up->next;
        pool->n_idle--;
        up->next = NULL;
        up->reused = true;
        us->inflight[ep]++;
        return up;
    }
    if (!upstream_connect_begin(u)) {
        *why = ACQUIRE_LIMIT;
        return NULL;
    }
    up = aligned_alloc(16, sizeof(*up));
    if (up) {
        memset(up, 0, sizeof(*up));
        up->fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (!up || up->fd < 0) {
        log_warn("upstream %s: socket: %s", u->name, strerror(errno));
        free(up);
        upstream_connect_end(us->upstream_id);
        upstream_connection_closed(us->upstream_id);
        return NULL;
    }
    up->w = w;
    up->us = us;
    up->ep = (unsigned)ep;
    up->connecting = true;
    setsockopt(up->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    us->live++;
    us->inflight[ep]++;
    w->n_upconns++;
    connect_submit(up, addr, u->connect_timeout);
    return up;
}

bool upstream_retry_allowed(struct upconn *up)
{
    return retry_budget_spend(&up->us->retries);
}

void upstream_report(struct upconn *up, bool success)
{
    struct upstream_state *us = up->us;
    const struct upstream_conf *u = us->conf;
    const struct endpoint_conf *e = &u->endpoints[up->ep];
    struct breaker *b = endpoint_breaker(e->metrics_id);
    struct breaker_params params = breaker_params_of(u);
    int changed;

    if (up->reported)
        return;
    up->reported = true;
    changed = success ? breaker_success(b) : breaker_failure(b, &params, up->w->now);
    if (changed == BREAKER_OPEN)
        log_warn("upstream %s: endpoint %s: circuit open for %llu ms", u->name, e->text,
                 (unsigned long long)u->circuit.open_for);
    else if (changed == BREAKER_CLOSED)
        log_info("upstream %s: endpoint %s: circuit closed", u->name, e->text);
}

/* In the middle of a response body on a plain connection: the connection
 * holds its buffer until the body is over anyway, so the kernel receives
 * straight into it (no copy out of a provided buffer), and in larger
 * pieces than a provided buffer (fewer round trips). */
static bool receiving_body(const struct upconn *up)
{
    const struct conn *c = up->client;

    return c && !up->tls && c->state == CS_PROXY && c->x->resp_head && !c->x->resp_body.done;
}

void upstream_arm_recv(struct upconn *up)
{
    struct io_uring_sqe *sqe;
    size_t room;

    if (up->recv_armed || up->closing || up->eof)
        return;
    if (receiving_body(up)) {
        /* A body that fits the pooled block stays in it; a longer one gets
         * a larger buffer, up to limits.response_buffer (one allocation per
         * long response): fewer, larger receives cost less CPU per byte. */
        const struct body_relay *r = &up->client->x->resp_body;
        size_t most = (size_t)up->client->x->cfg->limits.response_buffer;
        size_t want = r->in == HTTP_BODY_LENGTH && r->remaining < most ? (size_t)r->remaining
                                                                        : most;

        room = buf_reserve(&up->in, &up->w->pool, want ? want : 1, most);
        if (room == 0)
            return;
        sqe = worker_sqe(up->w);
        io_uring_prep_recv(sqe, up->fd, buf_tail(&up->in), room, 0);
        up->recv_direct = true;
    } else {
        room = buf_len(&up->in) ? buf_reserve(&up->in, &up->w->pool, 4096, UP_HEAD_LIMIT)
                                : BUF_BLOCK;
        if (room == 0)
            return;
        sqe = worker_sqe(up->w);
        io_uring_prep_recv(sqe, up->fd, NULL, room < BUF_BLOCK ? room : BUF_BLOCK, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
    }
    io_uring_sqe_set_data64(sqe, op_data(up, OP_UP_RECV));
    up->recv_armed = true;
    up->pending++;
}

void upstream_release(struct upconn *up, bool reusable)
{
    struct endpoint_pool *pool = &up->us->pools[up->ep];

    if (up->client && up->us->inflight[up->ep])
        up->us->inflight[up->ep]--;
    up->client = NULL;
    up->reported = false;
    if (!reusable || up->eof || buf_len(&up->in) || up->w->draining || up->us->retired ||
        pool->n_idle >= up->us->conf->keepalive) {
        upconn_close(up);
        return;
    }
    buf_free(&up->in, &up->w->pool);
    buf_free(&up->out, &up->w->pool);
    up->next = pool->idle;
    pool->idle = up;
    pool->n_idle++;
    upstream_arm_recv(up);
}

static void send_msg(struct upconn *up, struct outmsg *m)
{
    struct io_uring_sqe *sqe = worker_sqe(up->w);

    outmsg_prep_send(sqe, up->fd, m);
    io_uring_sqe_set_data64(sqe, op_data(up, OP_UP_SEND));
    up->send_armed = true;
    up->pending++;
}

/* TLS: sends the engine's pending ciphertext unless a send is in the ring
 * (its completion sends the rest). */
static void tls_flush(struct upconn *up)
{
    if (!up->send_armed && !up->closing && tls_io_prepare(up->tls, &up->om_tls))
        send_msg(up, &up->om_tls);
}

void upstream_send(struct upconn *up)
{
    if (!up->tls) {
        send_msg(up, &up->om);
        return;
    }
    up->tls_plain_sending = true;
    if (tls_io_write_msg(up->tls, &up->om, &up->tls_bytes) < 0) {
        proxy_on_upstream_sent(up->client, -EPROTO);
        return;
    }
    tls_flush(up);
}

/* The TCP connection is up: over TLS, the handshake comes first, and the
 * request waits for it (tls_input). */
static int tls_begin(struct upconn *up)
{
    const struct upstream_conf *u = up->us->conf;
    const char *name = u->sni;
    char host[256];

    if (!name) { /* the endpoint's host, without the port */
        const char *text = u->endpoints[up->ep].text, *colon = strrchr(text, ':');
        size_t n = colon ? (size_t)(colon - text) : strlen(text);
        if (text[0] == '[') { /* an IPv6 literal: verified as an address, not sent */
            text++;
            n = n >= 2 ? n - 2 : 0;
        }
        snprintf(host, sizeof(host), "%.*s", (int)n, text);
        name = host;
    }
    up->tls = tls_conn_new_client(u->tls, name);
    if (!up->tls)
        return -ENOMEM;
    if (tls_handshake(up->tls) == TLS_ERROR)
        return -EPROTO;
    tls_flush(up);
    return 0;
}

/* Ciphertext from the origin: the handshake, then plaintext into up->in.
 * Returns false when the connection failed (already reported). */
static bool tls_input(struct upconn *up, const char *data, size_t len, int *res)
{
    char plain[BUF_BLOCK];
    size_t before = buf_len(&up->in);
    ssize_t n;

    if (tls_feed(up->tls, data, len) < 0)
        return *res = -ENOMEM, true;
    if (!up->connected) {
        enum tls_status st = tls_handshake(up->tls);

        tls_flush(up);
        if (st == TLS_WANT_INPUT)
            return false; /* nothing for the client yet */
        if (st != TLS_DONE) {
            log_warn("upstream %s (%s): TLS handshake failed: %s", up->us->conf->name,
                     upstream_endpoint_name(up), tls_conn_error(up->tls));
            up->eof = true;
            if (up->client)
                proxy_on_upstream_connected(up->client, -EPROTO);
            return false;
        }
        up->connected = true;
        if (up->client)
            proxy_on_upstream_connected(up->client, 0);
        if (up->closing || !up->client)
            return false;
    }
    while ((n = tls_read(up->tls, plain, sizeof(plain))) > 0)
        if (!buf_append(&up->in, &up->w->pool, plain, (size_t)n, UP_HEAD_LIMIT + 8 * BUF_BLOCK))
            return *res = -EPROTO, true;
    tls_flush(up);
    if (n == TLS_CLOSED)
        *res = 0;
    else if (n < 0)
        *res = -EPROTO;
    /* A record that carried no data (a ticket, a key update) is nothing
     * for the client: keep receiving. */
    return *res <= 0 || buf_len(&up->in) > before;
}

static void on_recv(struct upconn *up, struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    bool deliver = true;

    up->recv_armed = false;
    if (up->recv_direct) { /* the bytes are in up->in already */
        up->recv_direct = false;
        if (res > 0)
            up->in.end += (size_t)res;
    } else if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        const char *data = worker_buffer(up->w, bid);

        if (res > 0 && !up->closing && up->tls && up->client) {
            deliver = tls_input(up, data, (size_t)res, &res);
        } else if (res > 0 && !up->closing && !up->tls && up->client &&
                   up->client->state == CS_TUNNEL && !up->client->x->tun_goodbye) {
            up->held = true; /* sent on from the ring's buffer itself */
            up->held_bid = (uint16_t)bid;
            up->held_len = (uint32_t)res;
        } else if (res > 0 && !up->closing && !up->tls) {
            buf_append(&up->in, &up->w->pool, data, (size_t)res, UP_HEAD_LIMIT + BUF_BLOCK);
        }
        if (!up->held || up->held_bid != bid)
            worker_recycle_buffer(up->w, bid);
    }
    if (up->closing)
        return;
    if (!deliver) { /* handshake in progress, or its failure already reported */
        if (!up->eof)
            upstream_arm_recv(up);
        return;
    }
    if (res == -ENOBUFS) {
        upstream_arm_recv(up);
        return;
    }
    if (res <= 0)
        up->eof = true;
    if (!up->client) { /* pooled: the origin closed it, or spoke out of turn */
        pool_remove(up);
        upconn_shutdown(up);
        return;
    }
    proxy_on_upstream_data(up->client, res);
}

static void on_send(struct upconn *up, int res)
{
    up->send_armed = false;
    if (up->closing || !up->client)
        return;
    if (up->tls && res > 0) {
        tls_consume_output(up->tls, (size_t)res);
        if (up->tls_plain_sending && up->om.left &&
            tls_io_write_msg(up->tls, &up->om, &up->tls_bytes) < 0)
            res = -EPROTO;
        else {
            tls_flush(up);
            if (up->send_armed || !up->tls_plain_sending || up->om.left)
                return;
            up->tls_plain_sending = false;
        }
    } else if (res > 0 && !outmsg_advance(&up->om, (size_t)res)) {
        upstream_send(up);
        return;
    }
    proxy_on_upstream_sent(up->client, res < 0 ? res : 0);
}

/* The operation stays counted in `pending` until its handler returns, so
 * that nothing the handler calls can free the connection under it. */
void upstream_on_cqe(struct upconn *up, enum op op, struct io_uring_cqe *cqe)
{
    up->handling = true;
    switch (op) {
    case OP_UP_CONNECT:
        if (up->connecting) {
            up->connecting = false;
            upstream_connect_end(up->us->upstream_id);
        }
        if (!up->closing && up->client) {
            int res = cqe->res == -ECANCELED ? -ETIMEDOUT : cqe->res;

            if (res == 0 && up->us->conf->tls) {
                res = tls_begin(up);
                if (res == 0) {
                    upstream_arm_recv(up);
                    break; /* the client hears when the handshake is done */
                }
            }
            up->connected = res == 0;
            if (up->connected)
                upstream_arm_recv(up);
            proxy_on_upstream_connected(up->client, res);
        }
        break;
    case OP_UP_RECV:
        on_recv(up, cqe);
        break;
    case OP_UP_SEND:
        on_send(up, cqe->res);
        break;
    default:
        break;
    }
    up->handling = false;
    if (--up->pending == 0 && up->closing)
        upconn_free(up);
}
