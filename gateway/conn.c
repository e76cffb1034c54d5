/* A client connection: reading request heads, routing, answering errors
 * and static files itself, handing the rest to proxy.c, keep-alive and
 * pipelining (requests are taken one at a time, so answers go out in
 * order), timeouts, and closing politely. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "reply.h"
#include "ipcount.h"
#include "jwt_filter.h"
#include "proxy_cache.h"
#include "ratelimit_redis.h"
#include "redis_link.h"
#include "router.h"
#include "static.h"

#define LINGER_MS 2000
#define FILE_CHUNK BUF_BLOCK

#define conn_of_timer(t) ((struct conn *)((char *)(t) - offsetof(struct conn, timer)))

static void process_head(struct conn *c);

void outmsg_reset(struct outmsg *m)
{
    memset(&m->msg, 0, sizeof(m->msg));
    m->msg.msg_iov = m->iov;
    m->left = 0;
}

void outmsg_add(struct outmsg *m, const void *p, size_t n)
{
    if (n == 0)
        return;
    m->iov[m->msg.msg_iovlen].iov_base = (void *)p;
    m->iov[m->msg.msg_iovlen].iov_len = n;
    m->msg.msg_iovlen++;
    m->left += n;
}

void outmsg_prep_send(struct io_uring_sqe *sqe, int fd, struct outmsg *m)
{
    const struct iovec *next = m->msg.msg_iov; /* outmsg_advance moves it */

    if (m->msg.msg_iovlen == 1)
        io_uring_prep_send(sqe, fd, next->iov_base, next->iov_len, MSG_NOSIGNAL);
    else
        io_uring_prep_sendmsg(sqe, fd, &m->msg, MSG_NOSIGNAL);
}

bool outmsg_advance(struct outmsg *m, size_t n)
{
    m->left -= n;
    while (n && m->msg.msg_iovlen) {
        struct iovec *v = m->msg.msg_iov;
        size_t step = n < v->iov_len ? n : v->iov_len;

        v->iov_base = (char *)v->iov_base + step;
        v->iov_len -= step;
        n -= step;
        if (v->iov_len == 0) {
            m->msg.msg_iov++;
            m->msg.msg_iovlen--;
        }
    }
    return m->left == 0;
}

/* The client's address as 16 bytes (IPv4 v4-mapped), for per-address
 * counts; all zero when unknown. */
static void peer_of(int fd, uint8_t addr[16])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(addr, 0, 16);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        addr[10] = addr[11] = 0xff;
        memcpy(addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

/* Dotted quad; text has room for 16 bytes. Written out by hand: it runs
 * for every request, and glibc's inet_ntop goes through sprintf. */
static void ipv4_text(const uint8_t a[4], char *text)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];

        if (v >= 100)
            *text++ = (char)('0' + v / 100);
        if (v >= 10)
            *text++ = (char)('0' + v / 10 % 10);
        *text++ = (char)('0' + v % 10);
        *text++ = i < 3 ? '.' : '\0';
    }
}

/* The address as text for headers and logs ("" when unknown). */
static void peer_text(const uint8_t addr[16], char *text, size_t text_size)
{
    static const uint8_t none[16];
    const struct in6_addr *a = (const struct in6_addr *)addr;

    text[0] = '\0';
    if (!memcmp(addr, none, 16))
        return;
    if (IN6_IS_ADDR_V4MAPPED(a))
        ipv4_text(addr + 12, text);
    else
        inet_ntop(AF_INET6, a, text, (socklen_t)text_size);
}

/* What c->in may hold: a head, or a whole body being collected. */
static size_t head_limit(const struct conn *c)
{
    if (c->state == CS_BODY)
        return c->x->cfg->limits.max_body_bytes + 2 * BUF_BLOCK;
    return c->w->cfg->limits.max_header_bytes + BUF_BLOCK;
}

/* Client connections open, per listener (by metrics id) and in all; taken
 * once per connection, not per request. */
static atomic_uint open_per_listener[METRICS_MAX_LISTENERS];
static atomic_uint open_in_all;

/* Over a cap, a connection is closed at once: refused cleanly and counted,
 * before it costs a buffer or a request. */
static bool admit(struct worker *w, const struct listener_conf *l, const uint8_t addr[16])
{
    unsigned per_ip = (unsigned)w->cfg->limits.max_connections_per_ip;
    unsigned per = atomic_fetch_add(&open_per_listener[l->metrics_id], 1);
    unsigned all = atomic_fetch_add(&open_in_all, 1);

    if ((l->max_connections && per >= l->max_connections) ||
        (w->cfg->limits.max_connections && all >= w->cfg->limits.max_connections) ||
        (per_ip && !ipcount_acquire(addr, per_ip))) {
        atomic_fetch_sub(&open_per_listener[l->metrics_id], 1);
        atomic_fetch_sub(&open_in_all, 1);
        counter_add(&w->metrics->conns_refused[l->metrics_id], 1);
        return false;
    }
    return true;
}

/* ---- exchanges ---- */

#define EXCHANGES_CACHED 256 /* per worker, kept for reuse */

bool conn_attach_exchange(struct conn *c)
{
    struct worker *w = c->w;
    struct exchange *x = w->free_exchanges;

    if (c->x)
        return true;
    if (x) {
        w->free_exchanges = x->next_free;
        w->n_free_exchanges--;
    } else if (!(x = aligned_alloc(16, sizeof(*x)))) {
        return false;
    }
    memset(x, 0, sizeof(*x));
    x->file_fd = -1;
    peer_text(c->peer_addr, x->peer_ip, sizeof(x->peer_ip));
    w->n_exchanges++;
    c->x = x;
    return true;
}

void conn_detach_exchange(struct conn *c)
{
    struct worker *w = c->w;
    struct exchange *x = c->x;

    if (!x)
        return;
    buf_free(&x->out, &w->pool);
    buf_free(&x->held_head, &w->pool);
    c->x = NULL;
    w->n_exchanges--;
    if (w->n_free_exchanges < EXCHANGES_CACHED) {
        x->next_free = w->free_exchanges;
        w->free_exchanges = x;
        w->n_free_exchanges++;
    } else {
        free(x);
    }
}

static void unadmit(const struct conn *c)
{
    atomic_fetch_sub(&open_per_listener[c->listener_id], 1);
    atomic_fetch_sub(&open_in_all, 1);
    if (c->ip_counted)
        ipcount_release(c->peer_addr);
}

void conn_accept(struct worker *w, struct listen_socket *ls, int fd)
{
    struct conn *c = aligned_alloc(16, sizeof(*c));

    if (!c) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    peer_of(fd, c->peer_addr);
    c->listener_id = ls->conf->metrics_id;
    if (!admit(w, ls->conf, c->peer_addr)) {
        close(fd);
        free(c);
        return;
    }
    c->ip_counted = w->cfg->limits.max_connections_per_ip != 0;
    c->w = w;
    c->fd = fd;
    c->listener = ls->conf;
    c->state = CS_HEAD;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    metrics_conn_opened(w->metrics, c->listener_id);
    /* A TLS session needs its exchange from the handshake on. */
    if (c->listener->tls && (!conn_attach_exchange(c) || !tls_io_start(c))) {
        log_error("listener %s: out of memory for a TLS connection", c->listener->name);
        conn_close(c);
        return;
    }
    timer_arm(&w->timers, &c->timer, w->now + w->cfg->limits.header_timeout);
    conn_arm_recv(c);
}

static bool request_id_valid(struct http_str v)
{
    if (v.len == 0 || v.len > 128)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

/* s into dst (cap bytes), cut short when longer, NUL-terminated. */
static void copy_truncated(char *dst, size_t cap, struct http_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;

    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void hex64(char out[16], uint64_t v)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

/* The client's X-Request-Id when it is a sane token, else a new one. */
static void request_id_set(struct conn *c, const struct http_request *req)
{
    const struct http_header *h =
        req ? http1_find_header(req->headers, req->n_headers, "x-request-id") : NULL;

    if (h && request_id_valid(h->value)) {
        copy_truncated(c->x->request_id, sizeof(c->x->request_id), h->value);
        return;
    }
    hex64(c->x->request_id, worker_random(c->w));
    hex64(c->x->request_id + 16, worker_random(c->w));
    c->x->request_id[32] = '\0';
}

/* Counts the finished (or abandoned) exchange and logs it. */
void conn_exchange_account(struct conn *c)
{
    if (!c->in_exchange)
        return;
    c->in_exchange = false;
    metrics_request(c->w->metrics, c->listener, c->x->route, c->x->status,
                    c->w->now_us - c->x->started_us);
    access_log_request(c->w, c);
}

/* A request whose answer is starting now, counted when it ends. */
static void exchange_begin(struct conn *c, struct http_str method, struct http_str target,
                           size_t head_len)
{
    if (c->in_exchange)
        return;
    c->in_exchange = true;
    c->x->bytes_in = head_len;
    c->x->bytes_out = 0;
    c->x->started_us = c->w->now_us;
    c->x->log_upstream = NULL;
    c->x->upstream_us = 0;
    request_id_set(c, NULL);
    copy_truncated(c->x->log_method, sizeof(c->x->log_method), method);
    copy_truncated(c->x->log_target, sizeof(c->x->log_target), target);
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;

    if (c->x) {
        if (c->in_exchange && (c->x->status == 0 || !c->x->resp_body.done))
            c->x->status = 499; /* closed before the answer was complete (nginx's code) */
        conn_exchange_account(c);
        proxy_cache_end(c);
        tunnel_unreserve(c);
        if (c->x->held)
            worker_recycle_buffer(w, c->x->held_bid);
    }
    if (c->state == CS_TUNNEL)
        metrics_tunnel_closed(w->metrics, c->listener_id);
    if (c->fd >= 0) { /* a detached exchange was never a client connection */
        metrics_conn_closed(w->metrics, c->listener_id);
        unadmit(c);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    tls_io_free(c);
    if (c->fd >= 0)
        worker_close_fd(w, c->fd);
    buf_free(&c->in, &w->pool);
    conn_detach_exchange(c);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    timer_disarm(&c->timer);
    if (c->x && c->x->limits_call) {
        redis_link_forget(c->x->limits_call);
        c->x->limits_call = NULL;
    }
    if (c->x && c->x->up)
        proxy_abort(c);
    if (c->x)
        proxy_cache_abort(c);
    if (c->x && c->x->file_fd >= 0) {
        close(c->x->file_fd);
        c->x->file_fd = -1;
    }
    if (c->pending == 0)
        conn_free(c);
    else if (c->pending > (int)c->handling && c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR); /* completes the operations in the ring */
    /* else: only the completion being handled, which frees c on return */
}

void conn_arm_recv(struct conn *c)
{
    struct io_uring_sqe *sqe;
    size_t room;

    if (c->recv_armed || c->closing || c->fd < 0)
        return;
    /* An empty buffer is not allocated until bytes arrive: an idle
     * connection holds no buffer, only its receive in the ring. */
    room = buf_len(&c->in) && !c->tls ? buf_reserve(&c->in, &c->w->pool, 4096, head_limit(c))
                                       : BUF_BLOCK;
    if (room == 0) {
        conn_close(c);
        return;
    }
    sqe = worker_sqe(c->w);
    io_uring_prep_recv(sqe, c->fd, NULL, room < BUF_BLOCK ? room : BUF_BLOCK, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, op_data(c, OP_CLIENT_RECV));
    c->recv_armed = true;
    c->pending++;
}

void conn_send(struct conn *c)
{
    struct io_uring_sqe *sqe;

    if (c->tls) {
        tls_io_send(c);
        return;
    }
    sqe = worker_sqe(c->w);
    if (c->fd < 0) { /* detached: the answer goes nowhere, next loop turn */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, op_data(c, OP_DETACHED_SEND));
        c->send_armed = true;
        c->pending++;
        return;
    }
    outmsg_prep_send(sqe, c->fd, &c->x->om);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_CLIENT_SEND));
    c->send_armed = true;
    c->pending++;
}

static void shut_write(struct conn *c)
{
    struct io_uring_sqe *sqe = worker_sqe(c->w);

    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_CLIENT_SHUTDOWN));
    c->pending++;
    c->x->write_shut = true;
}

/* Connection: close. Stop writing, then read and drop what the client
 * still sends for a while, so that closing with unread input does not
 * reset the connection before the client has read our answer. Over TLS a
 * close_notify goes first (the end of the stream, as opposed to a
 * truncation): the completion of its send shuts the write side. */
static void conn_linger(struct conn *c)
{
    c->state = CS_LINGER;
    c->x->write_shut = false;
    if (c->tls)
        tls_io_close_notify(c);
    if (!c->send_armed)
        shut_write(c); /* before the receive below */
    buf_free(&c->x->out, &c->w->pool);
    c->in.start = c->in.end = 0;
    timer_arm(&c->w->timers, &c->timer, c->w->now + LINGER_MS);
    conn_arm_recv(c);
}

static void send_out_buffer(struct conn *c)
{
    outmsg_reset(&c->x->om);
    outmsg_add(&c->x->om, buf_head(&c->x->out), buf_len(&c->x->out));
    timer_arm(&c->w->timers, &c->timer, c->w->now + c->w->cfg->limits.idle_timeout);
    conn_send(c);
}

void conn_respond_error(struct conn *c, int status, const char *message)
{
    conn_respond_error_with(c, status, message, NULL);
}

void conn_respond_error_with(struct conn *c, int status, const char *message,
                             const char *extra_headers)
{
    conn_respond_error_json(c, status, NULL, message, NULL, extra_headers);
}

void conn_respond_error_json(struct conn *c, int status, const char *code, const char *message,
                             const char *extra_members, const char *extra_headers)
{
    size_t room = buf_reserve(&c->x->out, &c->w->pool, 2048, BUF_BLOCK * 4);
    char headers[512];
    size_t n = extra_headers ? strlen(extra_headers) : 0;

    if (n < sizeof(headers)) { /* plus the exchange's own (RateLimit-*) */
        memcpy(headers, extra_headers ? extra_headers : "", n);
        n += conn_extra_headers(c, headers + n, sizeof(headers) - n - 1);
        headers[n] = '\0';
        extra_headers = headers;
    }

    c->state = CS_RESPOND;
    c->x->status = status;
    exchange_begin(c, (struct http_str){"-", 1}, (struct http_str){"-", 1}, 0);
    c->x->resp_body.done = true;
    if (c->x->req_body.in != HTTP_BODY_NONE && !c->x->req_body.done)
        c->x->keep_alive = false; /* the unread body would be taken for a request */
    if (status == 400 || status == 408 || status == 431 || status >= 500)
        c->x->keep_alive = false;
    if (c->w->draining)
        c->x->keep_alive = false;
    n = reply_error_json(buf_tail(&c->x->out), room, status, code, message, extra_members,
                         c->x->keep_alive, extra_headers);
    c->x->out.end += n;
    send_out_buffer(c);
}

static void exchange_reset(struct conn *c)
{
    c->x->cfg = NULL; /* lets a reload free the snapshot */
    c->x->route = NULL;
    c->x->up = NULL;
    c->x->status = 0;
    c->x->attempts = 0;
    c->x->req_sent = c->x->resp_head = c->x->resp_started = c->x->up_reusable = false;
    c->x->expect_continue = false;
    if (c->state != CS_TUNNEL)
        tunnel_unreserve(c); /* the handshake was refused */
    c->x->upgrade = false;
    c->x->upgrade_proto = NULL;
    memset(&c->x->req_body, 0, sizeof(c->x->req_body));
    c->x->req_body.done = true;
    memset(&c->x->resp_body, 0, sizeof(c->x->resp_body));
    memset(&c->x->rl, 0, sizeof(c->x->rl));
    c->x->consume_after_send = 0;
    proxy_cache_end(c);
}

/* As nginx's "lingering_close on": a client that asked to close, whose
 * request was read to its end with nothing after it, sends no more; close
 * at once, so that its own close wakes nobody here. Any other client may
 * still be sending: linger, lest closing with unread input reset the
 * connection before the answer is read. */
static bool client_may_send_more(const struct conn *c)
{
    return !c->x->client_closes || !c->x->req_body.done || buf_len(&c->in) > 0 || c->tls;
}

void conn_exchange_done(struct conn *c)
{
    struct worker *w = c->w;

    c->requests++;
    conn_exchange_account(c);
    buf_free(&c->x->out, &w->pool);
    if (c->x->file_fd >= 0) {
        close(c->x->file_fd);
        c->x->file_fd = -1;
    }
    if (c->fd < 0) { /* detached: no client to keep alive */
        exchange_reset(c);
        conn_close(c);
        return;
    }
    if (!c->x->keep_alive || w->draining) {
        bool linger = client_may_send_more(c);

        exchange_reset(c);
        if (linger)
            conn_linger(c);
        else
            conn_close(c);
        return;
    }
    exchange_reset(c);
    c->state = CS_HEAD;
    c->got_bytes = buf_len(&c->in) > 0;
    if (c->got_bytes) {
        timer_arm(&w->timers, &c->timer, w->now + w->cfg->limits.header_timeout);
        process_head(c);
        return;
    }
    buf_release(&c->in, &w->pool); /* idle: hold no buffer, and no exchange */
    if (!c->tls)
        conn_detach_exchange(c);
    timer_arm(&w->timers, &c->timer, w->now + w->cfg->limits.idle_timeout);
    conn_arm_recv(c);
}

void conn_close_if_idle(struct conn *c)
{
    if (c->state == CS_HEAD && !c->got_bytes)
        conn_close(c);
}

/* ---- static files ---- */

static void file_read_next(struct conn *c)
{
    uint64_t left = c->x->file_end - c->x->file_off;
    size_t room = buf_reserve(&c->x->out, &c->w->pool, FILE_CHUNK, BUF_BLOCK * 4);
    struct io_uring_sqe *sqe;

    if (room > left)
        room = (size_t)left;
    sqe = worker_sqe(c->w);
    io_uring_prep_read(sqe, c->x->file_fd, buf_tail(&c->x->out), (unsigned)room, c->x->file_off);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_FILE_READ));
    c->pending++;
}

static void on_file_read(struct conn *c, int res)
{
    if (res <= 0) { /* the file shrank under us: the length is already sent */
        log_warn("static file read: %s", res < 0 ? strerror(-res) : "unexpected end of file");
        conn_close(c);
        return;
    }
    c->x->out.end += (size_t)res;
    c->x->file_off += (uint64_t)res;
    send_out_buffer(c);
}

static void on_respond_sent(struct conn *c)
{
    buf_consume(&c->x->out, buf_len(&c->x->out));
    if (c->x->file_fd >= 0 && c->x->file_off < c->x->file_end) {
        file_read_next(c);
        return;
    }
    conn_exchange_done(c);
}

/* Serving a file takes three steps: the open goes through the ring
 * (openat2 with RESOLVE_BENEATH: no path, symlink or ".." can lead out of
 * the root, whatever static_map_path let through), then the answer head is
 * written, then the reads go through the ring too. While the open is in
 * flight, c->x->out holds the relative path and, after it, the request path
 * (for a directory's redirect). */
static const struct open_how static_open_how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
};

static void serve_static(struct conn *c, const struct http_request *req)
{
    char path[4096];
    const struct http_header *h;
    struct io_uring_sqe *sqe;
    size_t room, rel_len;
    int n;

    if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
        conn_respond_error(c, 405, "static files answer GET and HEAD only");
        return;
    }
    n = static_map_path("", req->path.p, req->path.len, path, sizeof(path));
    if (n < 0) {
        conn_respond_error(c, n == STATIC_TOO_LONG ? 414 : 400,
                           n == STATIC_TOO_LONG ? "path too long" : "invalid path");
        return;
    }
    rel_len = (size_t)n - 1; /* without the leading '/' */
    room = buf_reserve(&c->x->out, &c->w->pool, rel_len + req->path.len + 2, BUF_BLOCK * 4);
    if (room < rel_len + req->path.len + 2) {
        conn_respond_error(c, 414, "path too long");
        return;
    }
    memcpy(buf_tail(&c->x->out), path + 1, rel_len + 1);
    memcpy(buf_tail(&c->x->out) + rel_len + 1, req->path.p, req->path.len);
    buf_tail(&c->x->out)[rel_len + 1 + req->path.len] = '\0';

    c->state = CS_RESPOND;
    c->x->file_type = static_content_type(path);
    c->x->file_ims = -1;
    h = http1_find_header(req->headers, req->n_headers, "if-modified-since");
    if (h && http_date_parse(h->value.p, h->value.len, &c->x->file_ims) < 0)
        c->x->file_ims = -1;
    c->x->file_range[0] = '\0';
    h = http1_find_header(req->headers, req->n_headers, "range");
    if (h && h->value.len < sizeof(c->x->file_range)) {
        memcpy(c->x->file_range, h->value.p, h->value.len);
        c->x->file_range[h->value.len] = '\0';
    }
    c->x->file_head_only = req->method_id == HTTP_HEAD;
    sqe = worker_sqe(c->w);
    io_uring_prep_openat2(sqe, c->x->route->static_root_fd, buf_tail(&c->x->out),
                          (struct open_how *)&static_open_how);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_FILE_OPEN));
    c->pending++;
}

static int open_error_status(int err)
{
    return err == EACCES || err == EPERM ? 403 : err == ENAMETOOLONG ? 414 : 404;
}

static int static_head(struct conn *c, const struct stat *st, char *head, size_t cap)
{
    char date[32];
    uint64_t first = 0, last = 0;
    enum range_result rr = RANGE_NONE;
    const char *conn_hdr = c->x->keep_alive ? "" : "Connection: close\r\n";
    int n;

    http_date_format(date, st->st_mtime);
    if (c->x->file_ims >= 0 && (int64_t)st->st_mtime <= c->x->file_ims) {
        c->x->status = 304;
        c->x->file_off = c->x->file_end = 0;
        return snprintf(head, cap, "HTTP/1.1 304 Not Modified\r\nLast-Modified: %s\r\n%s\r\n",
                        date, conn_hdr);
    }
    if (c->x->file_range[0])
        rr = static_parse_range(c->x->file_range, strlen(c->x->file_range), (uint64_t)st->st_size,
                                &first, &last);
    if (rr == RANGE_UNSATISFIABLE) {
        char extra[64];
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%lld\r\n", (long long)st->st_size);
        c->x->status = 416;
        c->x->file_off = c->x->file_end = 0;
        return (int)reply_error(head, cap, 416, "range not satisfiable", c->x->keep_alive, extra);
    }
    if (rr == RANGE_NONE) {
        first = 0;
        last = st->st_size ? (uint64_t)st->st_size - 1 : 0;
    }
    c->x->status = rr == RANGE_OK ? 206 : 200;
    c->x->file_off = first;
    c->x->file_end = st->st_size ? last + 1 : 0;
    n = snprintf(head, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %llu\r\n"
                 "Last-Modified: %s\r\nAccept-Ranges: bytes\r\n",
                 c->x->status, http_reason(c->x->status), c->x->file_type,
                 (unsigned long long)(c->x->file_end - c->x->file_off), date);
    if (c->x->status == 206)
        n += snprintf(head + n, cap - (size_t)n, "Content-Range: bytes %llu-%llu/%lld\r\n",
                      (unsigned long long)first, (unsigned long long)last,
                      (long long)st->st_size);
    n += (int)conn_extra_headers(c, head + n, cap - (size_t)n - 64);
    n += snprintf(head + n, cap - (size_t)n, "%s\r\n", conn_hdr);
    if (c->x->file_head_only)
        c->x->file_end = c->x->file_off;
    return n;
}

static void on_file_open(struct conn *c, int res)
{
    const char *rel = buf_tail(&c->x->out);
    const char *request_path = rel + strlen(rel) + 1;
    char head[1024];
    struct stat st;
    int n;

    if (res < 0) {
        int status = open_error_status(-res);
        conn_respond_error(c, status,
                           status == 404   ? "no such file"
                           : status == 403 ? "file not readable"
                                           : "path too long");
        return;
    }
    c->x->file_fd = res;
    /* fstat of an open file reads the in-memory inode: it does not block. */
    if (fstat(c->x->file_fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
        conn_respond_error(c, 404, "no such file");
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        c->x->status = 301;
        c->x->file_off = c->x->file_end = 0;
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 301 Moved Permanently\r\nLocation: %.900s/\r\n"
                     "Content-Length: 0\r\n%s\r\n",
                     request_path, c->x->keep_alive ? "" : "Connection: close\r\n");
    } else {
        n = static_head(c, &st, head, sizeof(head));
    }
    if (c->x->file_off >= c->x->file_end) {
        close(c->x->file_fd);
        c->x->file_fd = -1;
    }
    buf_append(&c->x->out, &c->w->pool, head, (size_t)n, BUF_BLOCK * 4);
    send_out_buffer(c);
}

/* ---- request heads ---- */

static void start_exchange(struct conn *c, const struct http_request *req)
{
    exchange_reset(c);
    c->x->cfg = c->w->cfg;
    c->x->method = req->method_id;
    c->x->minor_version = req->minor_version;
    c->x->keep_alive = req->keep_alive && !c->w->draining;
    c->x->client_closes = !req->keep_alive;
    c->x->https = c->tls != NULL;
    c->x->expect_continue = req->expect_continue;
    c->x->started = c->w->now;
    c->x->req_body.in = req->body;
    c->x->req_body.remaining = req->content_length;
    c->x->req_body.done = req->body == HTTP_BODY_NONE ||
                       (req->body == HTTP_BODY_LENGTH && req->content_length == 0);
    c->x->req_body.out_chunked = req->body == HTTP_BODY_CHUNKED;
}

struct conn *conn_new_detached(struct conn *parent, const struct http_request *req)
{
    struct worker *w = parent->w;
    struct conn *c = aligned_alloc(16, sizeof(*c));

    if (!c)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->fd = -1;
    c->listener = parent->listener;
    c->listener_id = parent->listener_id;
    memcpy(c->peer_addr, parent->peer_addr, sizeof(c->peer_addr));
    if (!conn_attach_exchange(c)) {
        free(c);
        return NULL;
    }
    c->state = CS_HEAD;
    c->next = w->conns; /* listed: reloads see its listener and snapshot */
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    start_exchange(c, req);
    c->x->cfg = parent->x->cfg; /* the one parent's route belongs to */
    c->x->route = parent->x->route;
    c->x->keep_alive = false;
    c->x->https = parent->x->https; /* on behalf of the parent's client */
    c->x->expect_continue = false;
    exchange_begin(c, req->method, req->target, 0);
    request_id_set(c, NULL);
    return c;
}

static bool websocket_key_valid(struct http_str key)
{
    /* base64 of 16 bytes: 22 characters and "==" */
    if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char ch = key.p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return false;
    }
    return true;
}

/* RFC 6455 4.2.1: what a WebSocket opening handshake must carry. 0 when
 * valid, else the status to answer (426 names the version we speak). */
static int websocket_handshake_check(const struct http_request *req)
{
    const struct http_header *key =
        http1_find_header(req->headers, req->n_headers, "sec-websocket-key");
    const struct http_header *version =
        http1_find_header(req->headers, req->n_headers, "sec-websocket-version");

    if (req->method_id != HTTP_GET || req->minor_version != 1 || req->body != HTTP_BODY_NONE)
        return 400;
    if (!key || !websocket_key_valid(key->value))
        return 400;
    if (!version || version->value.len != 2 || memcmp(version->value.p, "13", 2) != 0)
        return 426;
    return 0;
}

/* The route's upgrade: entry the client asks for, or NULL. */
static const char *configured_upgrade(const struct route_conf *r, const struct http_request *req)
{
    const struct http_header *h = http1_find_header(req->headers, req->n_headers, "upgrade");

    for (size_t i = 0; h && r->upgrades && r->upgrades[i]; i++)
        if (http1_has_token(h->value, r->upgrades[i]))
            return r->upgrades[i];
    return NULL;
}

static bool wants_websocket(const struct http_request *req)
{
    const struct http_header *h = http1_find_header(req->headers, req->n_headers, "upgrade");

    return req->upgrade && h && http1_has_token(h->value, "websocket");
}

/* The route's JWT provider accepts the request's token; else 401 has been
 * answered. Forwarded claim headers go to `up_headers`. */
static bool authenticated(struct conn *c, const struct http_request *req, char *up_headers,
                          size_t cap)
{
    const struct jwt_conf *jwt = c->x->route->jwt;
    char challenge[160];
    size_t len;
    int rc;

    if (!jwt)
        return true;
    rc = jwt_filter_check(jwt, c->w->jwt_cache, req, (int64_t)time(NULL), &c->x->claims,
                          up_headers, cap, &len);
    if (rc == JWT_OK) {
        c->x->up_headers = up_headers;
        c->x->up_headers_len = len;
        return true;
    }
    metrics_jwt_rejected(c->w->metrics, jwt->metrics_id, rc);
    snprintf(challenge, sizeof(challenge),
             "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"%s\"\r\n",
             jwt_reason_name(rc));
    conn_respond_error_with(c, 401,
                            rc == JWT_MISSING ? "a bearer token is required"
                                              : "the bearer token was refused",
                            challenge);
    return false;
}

void conn_send_continue(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (!c->x->expect_continue || c->x->req_body.done || buf_len(&c->in))
        return;
    if (c->tls)
        tls_io_write_raw(c, cont, sizeof(cont) - 1);
    else /* 25 bytes into an idle socket's empty send buffer: cannot block. */
        send(c->fd, cont, sizeof(cont) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

size_t conn_extra_headers(const struct conn *c, char *out, size_t cap)
{
    size_t n = ratelimit_headers(&c->x->rl, out, cap);

    return n + proxy_cache_status_header(c, out + n, cap - n);
}

static void answer_rate_limited(struct conn *c)
{
    char message[160];

    metrics_ratelimit_rejected(c->w->metrics, c->x->rl.denied_by->metrics_id);
    snprintf(message, sizeof(message), "rate limit '%s' exceeded", c->x->rl.denied_by->name);
    conn_respond_error(c, 429, message); /* RateLimit-* and Retry-After added there */
}

/* ---- the shared (Redis) rate limiter ---- */

static void route_request(struct conn *c, const struct http_request *req);

static void resume_after_limits(struct conn *c);

static void on_limits_reply(void *arg, const redisReply *reply)
{
    struct conn *c = arg;

    c->x->limits_call = NULL;
    c->x->limits = reply && ratelimit_redis_verdict(reply, c->x->route, c->x->limits_policies, &c->x->rl)
                    ? LIMITS_ANSWERED
                    : LIMITS_UNANSWERED;
    resume_after_limits(c);
}

/* Sends the route's Redis policies to Redis and parks the request (true);
 * false when there is nothing to ask or Redis cannot be asked now
 * (c->x->limits says which). */
static bool ask_redis(struct conn *c, const struct http_request *req)
{
    char *cmd;
    int len;

    len = ratelimit_redis_command(c->x->route, req, c->x->peer_ip, &c->x->claims,
                                  &c->x->limits_policies, &cmd);
    if (!c->x->limits_policies)
        return false;
    c->x->limits = LIMITS_UNANSWERED;
    if (len < 0)
        return false;
    if (!c->w->redis) {
        redisFreeCommand(cmd);
        return false;
    }
    c->x->limits_call = redis_link_send(c->w->redis, cmd, (size_t)len, on_limits_reply, c);
    if (!c->x->limits_call)
        return false;
    c->x->limits = LIMITS_ASKED;
    c->state = CS_LIMITS;
    timer_arm(&c->w->timers, &c->timer, c->w->now + c->x->cfg->redis.timeout);
    return true;
}

static void count_backend_errors(struct conn *c)
{
    for (size_t i = 0; i < c->x->route->n_rate_limits; i++)
        if (c->x->limits_policies & (1u << i))
            metrics_ratelimit_backend_error(c->w->metrics, c->x->route->rate_limits[i]->metrics_id);
}

/* The request's Redis policies have been asked (or could not be): resume
 * where route_request() left it. */
static void resume_after_limits(struct conn *c)
{
    struct http_request req;
    struct http_error err;

    if (c->x->limits_call) { /* too late: on_redis_error decides */
        redis_link_forget(c->x->limits_call);
        c->x->limits_call = NULL;
        c->x->limits = LIMITS_UNANSWERED;
    }
    c->state = CS_HEAD;
    if (http1_parse_request(c->in.data + c->x->head_off, c->x->head_len, &req, &err) !=
        (int)c->x->head_len) { /* cannot happen: the same bytes parsed before */
        conn_close(c);
        return;
    }
    route_request(c, &req);
    c->x->up_headers = NULL;
    c->x->up_headers_len = 0;
}

enum admission { ADMITTED, ANSWERED, PARKED };

/* Rate limits and authentication, in order: local limits keyed before
 * the token (by IP, header, route), the token, local limits keyed by its
 * claims, then every Redis policy in one round trip (parked meanwhile).
 * On resumption the limits are not counted again; the token is checked
 * again (a cache hit) for the claim headers sent upstream. */
static enum admission limits_and_auth(struct conn *c, const struct http_request *req, char *up_headers,
                            size_t cap)
{
    bool resumed = c->x->limits != LIMITS_UNDECIDED;
    uint64_t now_us = c->w->now_us;

    if (!resumed &&
        !ratelimit_check(c->x->route, RATELIMIT_BEFORE_AUTH, req, c->x->peer_ip, NULL, now_us, &c->x->rl))
        goto refused;
    if (!authenticated(c, req, up_headers, cap)) {
        c->x->limits = LIMITS_UNDECIDED;
        return ANSWERED;
    }
    if (!resumed) {
        if (!ratelimit_check(c->x->route, RATELIMIT_AFTER_AUTH, req, c->x->peer_ip, &c->x->claims, now_us,
                             &c->x->rl))
            goto refused;
        if (c->x->route->redis_limited && ask_redis(c, req))
            return PARKED;
    }
    if (c->x->limits == LIMITS_UNANSWERED) {
        count_backend_errors(c);
        if (!ratelimit_redis_fallback(c->x->route, c->x->limits_policies, req, c->x->peer_ip, &c->x->claims,
                                      now_us, &c->x->rl))
            goto refused;
    }
    c->x->limits = LIMITS_UNDECIDED;
    if (c->x->rl.denied_by)
        goto refused;
    return ADMITTED;
refused:
    c->x->limits = LIMITS_UNDECIDED;
    answer_rate_limited(c);
    return ANSWERED;
}

static void route_request(struct conn *c, const struct http_request *req)
{
    const struct limits_conf *lim = &c->w->cfg->limits;
    char up_headers[1024]; /* forwarded claims: used before this returns */

    if (c->w->shedding) {
        counter_add(&c->w->metrics->shed_requests, 1);
        c->x->keep_alive = false;
        conn_respond_error_with(c, 503, "the gateway is short of memory: retry shortly",
                                "Retry-After: 1\r\n");
        return;
    }
    if (req->method_id == HTTP_CONNECT) {
        conn_respond_error(c, 405, "CONNECT is not enabled on this gateway");
        return;
    }
    if (req->body == HTTP_BODY_LENGTH && req->content_length > lim->max_body_bytes) {
        conn_respond_error(c, 413, "request body is larger than limits.max_body_bytes");
        return;
    }
    if (c->x->limits == LIMITS_UNDECIDED)
        c->x->route = router_match(c->w->cfg, req->host, req->path, req->method_id);
    if (!c->x->route) {
        conn_respond_error(c, 404, "no route matches this request");
        return;
    }
    if (limits_and_auth(c, req, up_headers, sizeof(up_headers)) != ADMITTED)
        return;
    if (c->x->route->websocket && wants_websocket(req)) {
        int status = websocket_handshake_check(req);

        if (status) {
            conn_respond_error_with(c, status,
                                    status == 426 ? "unsupported WebSocket version"
                                                  : "invalid WebSocket handshake",
                                    status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
            return;
        }
        if (!tunnel_reserve(c)) {
            conn_respond_error_with(c, 503, "too many WebSocket tunnels on this listener",
                                    "Retry-After: 1\r\n");
            return;
        }
        c->x->upgrade = true;
        c->x->upgrade_proto = "websocket";
    } else if (req->upgrade && !c->x->route->static_root) {
        const char *proto = configured_upgrade(c->x->route, req);
        if (proto) { /* another protocol this route tunnels: no handshake rules */
            if (!tunnel_reserve(c)) {
                conn_respond_error_with(c, 503, "too many tunnels on this listener",
                                        "Retry-After: 1\r\n");
                return;
            }
            c->x->upgrade = true;
            c->x->upgrade_proto = proto;
        }
    }
    if (c->x->route->static_root) {
        if (!c->x->req_body.done) {
            conn_respond_error(c, 405, "static files take no request body");
            return;
        }
        serve_static(c, req);
        return;
    }
    if (c->x->route->cache.enabled && proxy_cache_request(c, req))
        return;
    if (body_collect_start(c, req))
        return;
    proxy_start(c, req);
}

static void process_head(struct conn *c)
{
    const struct limits_conf *lim = &c->w->cfg->limits;
    struct http_request req;
    struct http_error err;
    size_t len = buf_len(&c->in);
    int n;

    /* A head ends with a newline: a client trickling bytes without one
     * costs no re-parse (which would be quadratic). */
    if (c->head_scanned && !memchr(buf_head(&c->in) + c->head_scanned, '\n',
                                   len - c->head_scanned))
        n = HTTP_INCOMPLETE;
    else
        n = http1_parse_request(buf_head(&c->in), len, &req, &err);
    c->head_scanned = n == HTTP_INCOMPLETE ? len : 0;
    if (n == HTTP_INCOMPLETE) {
        if (buf_len(&c->in) > lim->max_header_bytes) {
            conn_respond_error(c, 431, "request header section is larger than "
                                       "limits.max_header_bytes");
            return;
        }
        conn_arm_recv(c);
        return;
    }
    if (n == HTTP_ERROR) {
        exchange_reset(c);
        exchange_begin(c, (struct http_str){"-", 1}, (struct http_str){"-", 1},
                       buf_len(&c->in));
        c->x->keep_alive = false;
        conn_respond_error(c, err.status, err.message);
        return;
    }
    start_exchange(c, &req);
    exchange_begin(c, req.method, req.target, (size_t)n);
    request_id_set(c, &req);
    if ((size_t)n > lim->max_header_bytes) {
        c->x->keep_alive = false;
        conn_respond_error(c, 431, "request header section is larger than "
                                   "limits.max_header_bytes");
        return;
    }
    /* Consumed before use: what follows the head is body or the next
     * request. req still points into c->in, which stays where it is
     * until the next receive is armed. */
    c->x->head_off = c->in.start;
    c->x->head_len = (uint32_t)n;
    buf_consume(&c->in, (size_t)n);
    route_request(c, &req);
    c->x->up_headers = NULL; /* they lived on route_request's stack */
    c->x->up_headers_len = 0;
}

/* ---- completions ---- */

/* Plain HTTP sent to a TLS port: answered in plain HTTP, like nginx's 400
 * "plain HTTP request was sent to HTTPS port", then closed. */
static void answer_plaintext_on_tls(struct conn *c)
{
    tls_io_free(c);
    c->in.start = c->in.end = 0;
    exchange_reset(c);
    c->x->keep_alive = false;
    conn_respond_error(c, 400, "plain HTTP request sent to a TLS port: use https://");
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
    enum tls_io_result tls = TLS_IO_OK;
    int res = cqe->res;

    c->recv_armed = false;
    if (res > 0 && !c->closing && !conn_attach_exchange(c))
        res = -ENOMEM; /* a request arriving, and no memory to answer it */
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        const char *data = worker_buffer(c->w, bid);

        if (res > 0 && !c->closing && c->tls) {
            tls = tls_io_input(c, data, (size_t)res);
        } else if (res > 0 && !c->closing && c->state == CS_TUNNEL && !c->x->tun_goodbye) {
            c->x->held = true; /* sent on from the ring's buffer itself */
            c->x->held_bid = (uint16_t)bid;
            c->x->held_len = (uint32_t)res;
        } else if (res > 0 && !c->closing && c->state != CS_LINGER) {
            buf_append(&c->in, &c->w->pool, data, (size_t)res, head_limit(c));
        }
        if (!c->x || !c->x->held || c->x->held_bid != bid)
            worker_recycle_buffer(c->w, bid);
    }
    if (c->closing)
        return;
    if (tls == TLS_IO_ERROR) {
        if (c->send_armed) /* the alert goes out first */
            c->x->close_when_sent = true;
        else
            conn_close(c);
        return;
    }
    if (tls == TLS_IO_PLAINTEXT) {
        answer_plaintext_on_tls(c);
        return;
    }
    if (tls == TLS_IO_CLOSED)
        res = 0; /* close_notify: the client's end of the stream */
    if (c->state == CS_LINGER && c->tls) /* TLS input is decrypted: drop it here */
        c->in.start = c->in.end = 0;
    if (res == -ENOBUFS) {
        conn_arm_recv(c);
        return;
    }
    if (c->state == CS_TUNNEL) {
        tunnel_on_client_data(c, res);
        return;
    }
    if (res <= 0) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case CS_HEAD:
        if (!c->got_bytes) {
            c->got_bytes = true;
            timer_arm(&c->w->timers, &c->timer, c->w->now + c->w->cfg->limits.header_timeout);
        }
        process_head(c);
        break;
    case CS_PROXY:
        proxy_on_client_data(c);
        break;
    case CS_BODY:
        body_on_client_data(c);
        break;
    case CS_LINGER:
        conn_arm_recv(c);
        break;
    case CS_RESPOND:
    case CS_TUNNEL:
    case CS_LIMITS:
    case CS_CACHE:
        break;
    }
}

static void on_send(struct conn *c, int res)
{
    c->send_armed = false;
    if (c->closing)
        return;
    if (res <= 0) {
        conn_close(c);
        return;
    }
    if (c->x->close_when_sent) {
        conn_close(c);
        return;
    }
    if (c->tls) {
        if (!tls_io_on_sent(c, res)) {
            if (c->state == CS_LINGER && !c->send_armed && !c->x->write_shut)
                shut_write(c); /* the close_notify is out */
            return;
        }
    } else {
        c->x->bytes_out += (uint64_t)res;
        if (!outmsg_advance(&c->x->om, (size_t)res)) {
            conn_send(c);
            return;
        }
    }
    if (c->state == CS_TUNNEL)
        tunnel_on_client_sent(c);
    else if (c->state == CS_PROXY)
        proxy_on_client_sent(c);
    else if (c->state == CS_RESPOND)
        on_respond_sent(c);
    else if (c->state == CS_CACHE)
        proxy_cache_on_client_sent(c);
}

/* The operation stays counted in `pending` until its handler returns, so
 * that nothing the handler calls can free the connection under it. */
void conn_on_cqe(struct conn *c, enum op op, struct io_uring_cqe *cqe)
{
    c->handling = true;
    switch (op) {
    case OP_CLIENT_RECV:
        on_recv(c, cqe);
        break;
    case OP_CLIENT_SEND:
        on_send(c, cqe->res);
        break;
    case OP_DETACHED_SEND: /* as if the whole message had been sent */
        on_send(c, (int)c->x->om.left);
        break;
    case OP_FILE_OPEN:
        if (c->closing && cqe->res >= 0)
            close(cqe->res);
        else if (!c->closing)
            on_file_open(c, cqe->res);
        break;
    case OP_FILE_READ:
        if (!c->closing)
            on_file_read(c, cqe->res);
        break;
    default:
        break;
    }
    c->handling = false;
    if (--c->pending == 0 && c->closing)
        conn_free(c);
}

void conn_on_timer(struct timer *t)
{
    struct conn *c = conn_of_timer(t);

    switch (c->state) {
    case CS_HEAD:
        if (c->tls && !c->tls_ready) {
            counter_add(&c->w->metrics->tls_failures[c->listener_id], 1);
            conn_close(c); /* handshake not finished within header_timeout */
        } else if ((c->got_bytes || c->requests == 0) && conn_attach_exchange(c)) {
            c->x->keep_alive = false;
            conn_respond_error(c, 408, "request head not received within "
                                       "limits.header_timeout");
        } else {
            conn_close(c);
        }
        break;
    case CS_PROXY:
        proxy_on_timeout(c);
        break;
    case CS_BODY:
        c->x->keep_alive = false;
        buf_free(&c->x->held_head, &c->w->pool);
        conn_respond_error(c, 408, "request body not received within limits.idle_timeout");
        break;
    case CS_LIMITS:
        resume_after_limits(c);
        break;
    case CS_CACHE:
        proxy_cache_on_timeout(c);
        break;
    case CS_RESPOND:
    case CS_LINGER:
    case CS_TUNNEL:
        conn_close(c);
        break;
    }
}
