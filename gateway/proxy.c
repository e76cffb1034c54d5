/* Forwarding one request to an origin and relaying its answer.
 *
 * The exchange is a relay in one direction at a time: the request head and
 * body go up (each receive from the client waits until the previous bytes
 * have been sent: the client is slowed to the origin's pace, never
 * buffered in full), then the response comes down the same way. Bodies are
 * decoded as they pass and re-framed, so a malformed chunked body is
 * caught here and never reaches the other side. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conn.h"
#include "jwt_filter.h"
#include "log.h"
#include "proxy_cache.h"
#include "reply.h"

#define UP_HEAD_LIMIT (64 * 1024)
#define CHUNK_FRAMING_LIMIT (64 * 1024) /* chunk headers, extensions, trailers */

static const char last_chunk[] = "0\r\n\r\n";

void body_relay_take(struct body_relay *r, struct buf *src, bool eof, struct outmsg *m,
                     size_t *consume, int *error)
{
    char *p = buf_head(src);
    size_t avail = buf_len(src), data_len = 0;

    *consume = 0;
    *error = 0;
    if (r->done)
        return;
    switch (r->in) {
    case HTTP_BODY_NONE:
        r->done = true;
        return;
    case HTTP_BODY_LENGTH:
        data_len = avail < r->remaining ? avail : (size_t)r->remaining;
        r->remaining -= data_len;
        *consume = data_len;
        r->done = r->remaining == 0;
        break;
    case HTTP_BODY_TO_EOF:
        data_len = avail;
        *consume = avail;
        r->done = eof;
        break;
    case HTTP_BODY_CHUNKED: {
        size_t len = avail;
        int rc = chunked_decode(&r->dec, p, &len, &data_len);

        if (rc == HTTP_ERROR) {
            *error = 1;
            return;
        }
        *consume = len;
        r->done = rc == CHUNKED_DONE;
        break;
    }
    }
    r->total += data_len;
    r->wire += *consume;
    if (data_len && r->out_chunked) {
        outmsg_add(m, r->size_line, chunked_size_line(r->size_line, data_len));
        outmsg_add(m, p, data_len);
        outmsg_add(m, "\r\n", 2);
    } else {
        outmsg_add(m, p, data_len);
    }
    if (r->done && r->out_chunked)
        outmsg_add(m, last_chunk, sizeof(last_chunk) - 1);
}

/* ---- the request head sent upstream ---- */

/* `name` is listed in one of the Connection headers: hop-by-hop too. */
static bool named_in_connection(const struct http_header *headers, size_t n, struct http_str name)
{
    for (size_t i = 0; i < n; i++)
        if (http1_str_is(headers[i].name, "connection") && http1_list_has(headers[i].value, name))
            return true;
    return false;
}

/* Headers the gateway sets itself, or that describe this hop only. */
static bool dropped_upstream(const struct conn *c, const struct http_request *req,
                             struct http_str name)
{
    return http1_is_hop_by_hop(name) || http1_str_is(name, "content-length") ||
           jwt_filter_forwards_header(c->x->route->jwt, name) ||
           http1_str_is(name, "expect") || http1_str_is(name, "x-forwarded-for") ||
           http1_str_is(name, "x-forwarded-proto") || http1_str_is(name, "x-forwarded-host") ||
           http1_str_is(name, "x-request-id") || named_in_connection(req->headers, req->n_headers, name);
}

static bool put(struct buf *b, struct buf_pool *pool, const char *p, size_t n)
{
    return buf_append(b, pool, p, n, UP_HEAD_LIMIT * 2);
}

/* A string literal. */
#define put_lit(b, pool, s) put(b, pool, s, sizeof(s) - 1)

static bool put_cstr(struct buf *b, struct buf_pool *pool, const char *s)
{
    return put(b, pool, s, strlen(s));
}

/* Decimal, without printf: heads are built on every request. */
static bool put_u64(struct buf *b, struct buf_pool *pool, uint64_t v)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, pool, digits + sizeof(digits) - n, n);
}

static bool put_str(struct buf *b, struct buf_pool *pool, struct http_str s)
{
    return put(b, pool, s.p, s.len);
}

bool proxy_build_head(struct conn *c, const struct http_request *req, struct buf *out,
                      bool hold_framing)
{
    struct buf_pool *pool = &c->w->pool;
    const struct http_header *host = http1_find_header(req->headers, req->n_headers, "host");
    bool ok = true, first_xff = true;

    ok &= put_str(out, pool, req->method);
    ok &= put(out, pool, " ", 1);
    ok &= put_str(out, pool, req->target);
    ok &= put(out, pool, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (dropped_upstream(c, req, h->name))
            continue;
        ok &= put_str(out, pool, h->name);
        ok &= put(out, pool, ": ", 2);
        ok &= put_str(out, pool, h->value);
        ok &= put(out, pool, "\r\n", 2);
    }
    ok &= put(out, pool, "X-Forwarded-For: ", 17);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!http1_str_is(h->name, "x-forwarded-for") || h->value.len == 0)
            continue;
        if (!first_xff)
            ok &= put(out, pool, ", ", 2);
        ok &= put_str(out, pool, h->value);
        first_xff = false;
    }
    if (!first_xff)
        ok &= put_lit(out, pool, ", ");
    ok &= put_cstr(out, pool, c->x->peer_ip);
    ok &= c->x->https ? put_lit(out, pool, "\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
                 : put_lit(out, pool, "\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ");
    ok &= put_cstr(out, pool, c->x->request_id);
    ok &= put_lit(out, pool, "\r\n");
    if (host) {
        ok &= put_lit(out, pool, "X-Forwarded-Host: ");
        ok &= put_str(out, pool, host->value);
        ok &= put_lit(out, pool, "\r\n");
    } else { /* an HTTP/1.0 client: HTTP/1.1 upstream needs a Host */
        ok &= put_lit(out, pool, "Host: ");
        ok &= put_cstr(out, pool, c->x->route->upstream->endpoints[0].text);
        ok &= put_lit(out, pool, "\r\n");
    }
    if (c->x->upgrade) {
        ok &= put_lit(out, pool, "Connection: Upgrade\r\nUpgrade: ");
        ok &= put_cstr(out, pool, c->x->upgrade_proto);
        ok &= put_lit(out, pool, "\r\n");
    }
    if (c->x->up_headers_len)
        ok &= put(out, pool, c->x->up_headers, c->x->up_headers_len);
    if (hold_framing)
        return ok;
    if (req->body == HTTP_BODY_LENGTH) {
        ok &= put_lit(out, pool, "Content-Length: ");
        ok &= put_u64(out, pool, req->content_length);
        ok &= put_lit(out, pool, "\r\n\r\n");
    } else if (req->body == HTTP_BODY_CHUNKED) {
        ok &= put_lit(out, pool, "Transfer-Encoding: chunked\r\n\r\n");
    } else {
        ok &= put_lit(out, pool, "\r\n");
    }
    return ok;
}

/* ---- failing ---- */

static void detach_upstream(struct conn *c, bool reusable)
{
    if (!c->x->up)
        return;
    upstream_release(c->x->up, reusable);
    c->x->up = NULL;
}

void proxy_abort(struct conn *c)
{
    detach_upstream(c, false);
}

static void fail(struct conn *c, int status, const char *message)
{
    detach_upstream(c, false);
    if (c->x->resp_started) { /* part of the answer is out: only closing is honest */
        conn_close(c);
        return;
    }
    if (proxy_cache_on_failure(c, status)) { /* stale-if-error */
        proxy_cache_answer(c);
        return;
    }
    conn_respond_error(c, status, message);
}

static void arm_timeout(struct conn *c, uint64_t ms)
{
    timer_arm(&c->w->timers, &c->timer, c->w->now + ms);
}

/* ---- sending the request ---- */

static void send_request_part(struct conn *c)
{
    struct upconn *up = c->x->up;
    int error;

    outmsg_reset(&up->om);
    if (!c->x->req_sent && buf_len(&up->out)) {
        outmsg_add(&up->om, buf_head(&up->out), buf_len(&up->out));
        up->out.start = up->out.end; /* kept in memory for a retry */
    }
    body_relay_take(&c->x->req_body, &c->in, false, &up->om, &c->x->consume_after_send, &error);
    if (error) {
        detach_upstream(c, false);
        c->x->keep_alive = false;
        conn_respond_error(c, 400, "malformed chunked request body");
        return;
    }
    if (c->x->req_body.wire - c->x->req_body.total > CHUNK_FRAMING_LIMIT) {
        detach_upstream(c, false);
        c->x->keep_alive = false;
        conn_respond_error(c, 400, "chunked framing (extensions, trailers) too large");
        return;
    }
    if (c->x->req_body.total > c->x->cfg->limits.max_body_bytes) {
        detach_upstream(c, false);
        c->x->keep_alive = false;
        conn_respond_error(c, 413, "request body is larger than limits.max_body_bytes");
        return;
    }
    if (up->om.left == 0) { /* nothing yet, or framing only: wait for the client */
        buf_consume(&c->in, c->x->consume_after_send);
        c->x->consume_after_send = 0;
        arm_timeout(c, c->x->cfg->limits.idle_timeout);
        conn_arm_recv(c);
        return;
    }
    upstream_send(up);
}

/* ---- choosing, retrying, failing ---- */

static void attach(struct conn *c, struct upconn *up)
{
    up->client = c;
    c->x->up = up;
    c->x->log_upstream = upstream_endpoint_name(up);
    c->x->up_started_us = c->w->now_us;
}

static void answer_unavailable(struct conn *c, enum acquire_error why)
{
    char retry_after[48];
    unsigned seconds = (unsigned)((c->x->route->upstream->circuit.open_for + 999) / 1000);

    if (why == ACQUIRE_FAILED) {
        fail(c, 502, "cannot open a connection to the upstream");
        return;
    }
    snprintf(retry_after, sizeof(retry_after), "Retry-After: %u\r\n",
             why == ACQUIRE_LIMIT || seconds == 0 ? 1 : seconds);
    detach_upstream(c, false);
    if (proxy_cache_on_failure(c, 503)) { /* stale-if-error: the circuit is open */
        proxy_cache_answer(c);
        return;
    }
    conn_respond_error_with(c, 503,
                            why == ACQUIRE_LIMIT ? "upstream connection limit reached"
                                                 : "no available upstream endpoint (circuit "
                                                   "open or health checks failing)",
                            retry_after);
}

static bool idempotent(enum http_method m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PUT || m == HTTP_DELETE ||
           m == HTTP_OPTIONS || m == HTTP_TRACE;
}

/* Sends the request again on another connection (another endpoint unless
 * avoid is -1), moving the request head over. */
static void resend(struct conn *c, int avoid)
{
    struct upconn *old = c->x->up, *up;
    enum acquire_error why;

    up = upstream_acquire(c->w, c->x->route->upstream, avoid, false, c->x->key_hash, &why);
    if (!up) {
        answer_unavailable(c, why);
        return;
    }
    up->out = old->out; /* the request head, kept for this */
    up->out.start = 0;
    memset(&old->out, 0, sizeof(old->out));
    detach_upstream(c, false);
    attach(c, up);
    c->x->req_sent = false;
    c->x->resp_head = false;
    buf_free(&c->x->out, &c->w->pool); /* 1xx heads of the failed attempt */
    c->x->attempts++;
    arm_timeout(c, c->x->route->upstream->connect_timeout + c->x->route->upstream->timeout);
    if (up->connected)
        send_request_part(c);
}

/* A pooled connection the origin had closed: the request did not reach
 * it. Sent again on a fresh connection, outside the retry budget (the
 * origin never saw it). */
static bool stale_connection(const struct conn *c)
{
    return c->x->up->reused && c->x->req_body.in == HTTP_BODY_NONE && !c->x->resp_head &&
           buf_len(&c->x->up->in) == 0;
}

static unsigned retry_condition(const struct conn *c, enum upstream_outcome outcome, int status)
{
    switch (outcome) {
    case OUTCOME_CONNECT_FAILURE:
        return RETRY_CONNECT_FAILURE;
    case OUTCOME_TIMEOUT:
        return c->x->up->connected ? RETRY_TIMEOUT : RETRY_CONNECT_FAILURE;
    case OUTCOME_HTTP_5XX:
        return status == 502 ? RETRY_502 : status == 503 ? RETRY_503 : status == 504 ? RETRY_504 : 0;
    default:
        return RETRY_502; /* reset or garbage: what the client would see as 502 */
    }
}

/* May this failed attempt be tried again elsewhere? Only requests that can
 * be replayed whole: never reached the origin (connect failure), or
 * idempotent without a body; never once the answer has started. */
static bool may_retry(struct conn *c, enum upstream_outcome outcome, int status)
{
    const struct upstream_conf *u = c->x->route->upstream;
    bool reached = c->x->up->connected;

    if (c->x->resp_started || c->x->attempts >= u->retries.attempts)
        return false;
    if (!(u->retries.on & retry_condition(c, outcome, status)))
        return false;
    if (reached && (!idempotent(c->x->method) || c->x->req_body.in != HTTP_BODY_NONE))
        return false;
    return upstream_retry_allowed(c->x->up);
}

/* The origin failed this attempt: counted, reported to the breaker,
 * logged; then tried again elsewhere when allowed, else answered. */
static void upstream_fail(struct conn *c, enum upstream_outcome outcome, int status,
                          const char *message)
{
    struct upconn *up = c->x->up;

    metrics_upstream(c->w->metrics, c->x->route->upstream, up->ep, outcome,
                     c->w->now_us - c->x->up_started_us);
    upstream_report(up, false);
    log_warn("upstream %s (%s): %s", c->x->route->upstream->name, upstream_endpoint_name(up),
             message);
    if (may_retry(c, outcome, status)) {
        resend(c, (int)up->ep);
        return;
    }
    fail(c, status, message);
}

uint64_t proxy_key_hash(const struct conn *c, const struct http_request *req)
{
    const struct upstream_conf *u = c->x->route->upstream;
    const char *key;
    size_t len;

    if (u->balance != BALANCE_HASH ||
        !request_key(u->hash_key, u->hash_key_arg, c->x->route, req, c->x->peer_ip, &c->x->claims, &key,
                     &len))
        return 0;
    return balance_hash(key, len);
}

void proxy_start(struct conn *c, const struct http_request *req)
{
    const struct upstream_conf *u = c->x->route->upstream;
    enum acquire_error why;
    struct upconn *up;

    c->state = CS_PROXY;
    c->x->key_hash = proxy_key_hash(c, req);
    up = upstream_acquire(c->w, u, -1, true, c->x->key_hash, &why);
    if (!up) {
        answer_unavailable(c, why);
        return;
    }
    attach(c, up);
    if (!proxy_build_head(c, req, &up->out, false)) {
        c->x->keep_alive = false;
        fail(c, 431, "request head too large to forward");
        return;
    }
    conn_send_continue(c);
    arm_timeout(c, u->connect_timeout + u->timeout);
    if (up->connected)
        send_request_part(c);
}

void proxy_start_held(struct conn *c)
{
    const struct upstream_conf *u = c->x->route->upstream;
    enum acquire_error why;
    struct upconn *up;

    c->state = CS_PROXY;
    up = upstream_acquire(c->w, u, -1, true, c->x->key_hash, &why);
    if (!up) {
        answer_unavailable(c, why);
        return;
    }
    attach(c, up);
    buf_free(&up->out, &c->w->pool);
    up->out = c->x->held_head; /* moved: the connection owns it now */
    memset(&c->x->held_head, 0, sizeof(c->x->held_head));
    arm_timeout(c, u->connect_timeout + u->timeout);
    if (up->connected)
        send_request_part(c);
}

void proxy_on_upstream_connected(struct conn *c, int res)
{
    if (res < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "cannot connect to the upstream: %s", strerror(-res));
        if (res == -ETIMEDOUT)
            upstream_fail(c, OUTCOME_TIMEOUT, 504, msg);
        else
            upstream_fail(c, OUTCOME_CONNECT_FAILURE, 502, msg);
        return;
    }
    send_request_part(c);
}

static void process_response(struct conn *c);

void proxy_on_upstream_sent(struct conn *c, int res)
{
    if (c->state == CS_TUNNEL) {
        tunnel_on_upstream_sent(c, res);
        return;
    }
    if (res < 0) {
        if (buf_len(&c->x->up->in)) { /* the origin answered early, then closed */
            c->x->req_sent = true;
            c->x->req_body.done = true;
            c->x->keep_alive = false;
            process_response(c);
        } else if (stale_connection(c)) {
            resend(c, -1);
        } else {
            upstream_fail(c, OUTCOME_RESET, 502,
                          "upstream connection lost while sending the request");
        }
        return;
    }
    buf_consume(&c->in, c->x->consume_after_send);
    c->x->consume_after_send = 0;
    if (!c->x->req_body.done) {
        c->x->req_sent = false;
        send_request_part(c);
        return;
    }
    c->x->req_sent = true;
    arm_timeout(c, c->x->route->upstream->timeout);
    if (buf_len(&c->x->up->in) || c->x->up->eof)
        process_response(c);
}

void proxy_on_client_data(struct conn *c)
{
    if (c->x->up && !c->x->req_body.done)
        send_request_part(c);
}

/* ---- relaying the response ---- */

static bool dropped_downstream(const struct http_response *resp, struct http_str name)
{
    if (http1_is_hop_by_hop(name))
        return true;
    if (resp->body != HTTP_BODY_NONE && http1_str_is(name, "content-length"))
        return true;
    return named_in_connection(resp->headers, resp->n_headers, name);
}

static bool build_response_head(struct conn *c, const struct http_response *resp)
{
    struct buf_pool *pool = &c->w->pool;
    struct buf *out = &c->x->out;
    char line[512];
    bool ok = true;
    size_t n;

    ok &= put_lit(out, pool, "HTTP/1.1 ");
    ok &= put_u64(out, pool, (uint64_t)resp->status);
    ok &= put_lit(out, pool, " ");
    ok &= put_str(out, pool, resp->reason);
    ok &= put(out, pool, "\r\n", 2);
    for (size_t i = 0; i < resp->n_headers; i++) {
        const struct http_header *h = &resp->headers[i];
        if (dropped_downstream(resp, h->name))
            continue;
        ok &= put_str(out, pool, h->name);
        ok &= put(out, pool, ": ", 2);
        ok &= put_str(out, pool, h->value);
        ok &= put(out, pool, "\r\n", 2);
    }
    if (resp->status >= 200 && resp->body == HTTP_BODY_LENGTH) {
        ok &= put_lit(out, pool, "Content-Length: ");
        ok &= put_u64(out, pool, resp->content_length);
        ok &= put_lit(out, pool, "\r\n");
    } else if (c->x->resp_body.out_chunked) {
        ok &= put_lit(out, pool, "Transfer-Encoding: chunked\r\n");
    }
    if (resp->status == 101) {
        ok &= put_lit(out, pool, "Connection: Upgrade\r\nUpgrade: ");
        ok &= put_cstr(out, pool, c->x->upgrade_proto);
        ok &= put_lit(out, pool, "\r\n");
    } else if (resp->status >= 200 && !c->x->keep_alive) {
        ok &= put_lit(out, pool, "Connection: close\r\n");
    } else if (resp->status >= 200 && c->x->minor_version == 0) {
        ok &= put_lit(out, pool, "Connection: keep-alive\r\n");
    }
    if (resp->status >= 200) {
        n = conn_extra_headers(c, line, sizeof(line));
        ok &= put(out, pool, line, n);
    }
    ok &= put_lit(out, pool, "\r\n");
    return ok;
}

static void response_framing(struct conn *c, const struct http_response *resp)
{
    struct body_relay *r = &c->x->resp_body;

    memset(r, 0, sizeof(*r));
    r->in = resp->body;
    r->remaining = resp->content_length;
    r->done = resp->body == HTTP_BODY_NONE ||
              (resp->body == HTTP_BODY_LENGTH && resp->content_length == 0);
    if (resp->body == HTTP_BODY_CHUNKED || resp->body == HTTP_BODY_TO_EOF) {
        if (c->x->minor_version >= 1)
            r->out_chunked = true;
        else
            c->x->keep_alive = false; /* HTTP/1.0: the end is the close */
    }
    c->x->up_reusable = resp->keep_alive;
    c->x->status = resp->status;
}

/* The origin's 101 to a WebSocket handshake: the answer goes to the client
 * with its Upgrade headers, and the connection becomes a tunnel. Only
 * then are bytes that followed the handshake relayed, as tunnel data. */
static bool switch_protocols(struct conn *c, const struct http_response *resp, size_t head_len)
{
    const struct http_header *upgrade =
        http1_find_header(resp->headers, resp->n_headers, "upgrade");

    if (!c->x->upgrade || !upgrade || !http1_has_token(upgrade->value, c->x->upgrade_proto)) {
        upstream_fail(c, OUTCOME_INVALID, 502, "upstream switched protocols unasked");
        return false;
    }
    c->x->status = 101;
    c->x->resp_head = true;
    upstream_report(c->x->up, true);
    c->x->upstream_us = c->w->now_us - c->x->up_started_us;
    metrics_upstream(c->w->metrics, c->x->route->upstream, c->x->up->ep, OUTCOME_SUCCESS,
                     c->x->upstream_us);
    if (!build_response_head(c, resp)) {
        upstream_fail(c, OUTCOME_INVALID, 502, "upstream response head too large");
        return false;
    }
    buf_consume(&c->x->up->in, head_len);
    tunnel_start(c);
    return false;
}

/* The 5xx answers that say the origin is unwell. 501, 505 and the like
 * answer this request, not the origin's health: counting them would let
 * a client trip the breaker with odd methods. */
static bool origin_failing(int status)
{
    return status == 500 || status == 502 || status == 503 || status == 504;
}

/* Parses response heads in c->x->up->in: 1xx ones are queued for the client,
 * the final one sets the framing. false when more bytes are needed or the
 * exchange has failed. */
static bool take_response_head(struct conn *c)
{
    struct upconn *up = c->x->up;

    while (!c->x->resp_head) {
        struct http_response resp;
        struct http_error err;
        int n = http1_parse_response(buf_head(&up->in), buf_len(&up->in), c->x->method, &resp, &err);

        if (n == HTTP_INCOMPLETE) {
            if (up->eof && buf_len(&up->in) == 0 && stale_connection(c))
                resend(c, -1);
            else if (up->eof)
                upstream_fail(c, OUTCOME_RESET, 502,
                              "upstream closed the connection before a complete response head");
            else if (buf_len(&up->in) >= UP_HEAD_LIMIT)
                upstream_fail(c, OUTCOME_INVALID, 502, "upstream response head too large");
            else
                upstream_arm_recv(up);
            return false;
        }
        if (n == HTTP_ERROR) {
            upstream_fail(c, OUTCOME_INVALID, 502, "invalid response from the upstream");
            return false;
        }
        if (resp.status == 101)
            return switch_protocols(c, &resp, (size_t)n);
        if (resp.status >= 500 && may_retry(c, OUTCOME_HTTP_5XX, resp.status)) {
            /* Retried: this answer is dropped with its connection. */
            metrics_upstream(c->w->metrics, c->x->route->upstream, up->ep, OUTCOME_HTTP_5XX,
                             c->w->now_us - c->x->up_started_us);
            upstream_report(up, false);
            resend(c, (int)up->ep);
            return false;
        }
        if (resp.status >= 200) {
            response_framing(c, &resp);
            c->x->upstream_us = c->w->now_us - c->x->up_started_us;
            metrics_upstream(c->w->metrics, c->x->route->upstream, up->ep,
                             resp.status >= 500 ? OUTCOME_HTTP_5XX : OUTCOME_SUCCESS,
                             c->x->upstream_us);
            upstream_report(up, !origin_failing(resp.status));
            if (c->x->cx && proxy_cache_on_response(c, &resp)) { /* answered from the cache */
                buf_consume(&up->in, (size_t)n);
                detach_upstream(c, resp.body == HTTP_BODY_NONE && resp.keep_alive);
                proxy_cache_answer(c);
                return false;
            }
        }
        if (!build_response_head(c, &resp)) {
            fail(c, 502, "upstream response head too large");
            return false;
        }
        buf_consume(&up->in, (size_t)n);
        c->x->resp_head = resp.status >= 200;
    }
    return true;
}

/* After the relayed bytes have gone (or when there were none to send):
 * finish, go on with what is buffered, or wait for the origin. */
static void response_continue(struct conn *c)
{
    struct upconn *up = c->x->up;

    buf_consume(&up->in, c->x->consume_after_send);
    c->x->consume_after_send = 0;
    if (c->x->resp_body.done) {
        detach_upstream(c, c->x->up_reusable && c->x->resp_body.in != HTTP_BODY_TO_EOF);
        conn_exchange_done(c);
    } else if (buf_len(&up->in)) {
        process_response(c);
    } else if (up->eof) {
        log_warn("upstream %s: closed in the middle of a response", c->x->route->upstream->name);
        fail(c, 502, "upstream closed the connection in the middle of the response");
    } else {
        upstream_arm_recv(up);
        arm_timeout(c, c->x->route->upstream->timeout);
    }
}

static void process_response(struct conn *c)
{
    struct upconn *up;
    uint64_t before = c->x->resp_body.total;
    int error;

    if (!c->x->resp_head && !take_response_head(c))
        return;
    up = c->x->up;
    outmsg_reset(&c->x->om);
    if (buf_len(&c->x->out))
        outmsg_add(&c->x->om, buf_head(&c->x->out), buf_len(&c->x->out));
    body_relay_take(&c->x->resp_body, &up->in, up->eof, &c->x->om, &c->x->consume_after_send, &error);
    if (error) {
        log_warn("upstream %s: malformed chunked response body", c->x->route->upstream->name);
        fail(c, 502, "malformed chunked response body from the upstream");
        return;
    }
    if (c->x->cx) /* decoded in place: the body bytes start at the buffer's head */
        proxy_cache_on_body(c, buf_head(&up->in), (size_t)(c->x->resp_body.total - before),
                            c->x->resp_body.done);
    if (c->x->om.left == 0) { /* framing only, or the end with nothing to add */
        response_continue(c);
        return;
    }
    c->x->resp_started = true;
    arm_timeout(c, c->x->cfg->limits.idle_timeout);
    conn_send(c);
}

void proxy_on_client_sent(struct conn *c)
{
    buf_consume(&c->x->out, buf_len(&c->x->out));
    response_continue(c);
}

void proxy_on_upstream_data(struct conn *c, int res)
{
    if (c->state == CS_TUNNEL) {
        tunnel_on_upstream_data(c, res);
        return;
    }
    (void)res; /* the bytes are in c->x->up->in; up->eof tells the end */
    if (!c->x->req_sent || c->send_armed)
        return; /* taken up when the current send completes */
    process_response(c);
}

void proxy_on_timeout(struct conn *c)
{
    if (!c->x->req_sent && !c->x->up)
        conn_close(c);
    else if (!c->x->req_sent && !c->x->req_body.done)
        fail(c, 408, "request body not received in time");
    else if (!c->x->resp_head)
        upstream_fail(c, OUTCOME_TIMEOUT, 504, "upstream did not answer within its timeout");
    else
        fail(c, 504, "upstream stalled in the middle of the response");
}
