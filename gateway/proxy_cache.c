/* The shared HTTP cache on the proxy path (see proxy_cache.h).
 *
 * A request on a cache route is looked up before it is forwarded. A hit is
 * answered from the object's memory: the head is built in c->x->out and the
 * body goes out in iovecs pointing into the object (which stays referenced
 * until the send has completed), through the TLS engine when there is one.
 * A miss or a revalidation that owns the key's fill is forwarded without
 * the client's conditionals and Range; proxy.c hands the final response
 * head and the decoded body to the fill, and a 304 to our validators
 * refreshes the stored object, which then answers. Requests that find a
 * fill in progress wait for it (CS_CACHE, polled each loop turn from the
 * worker's list) and are answered from it as it fills, or go to the origin
 * when it fails. A stale object that may be served while revalidating is
 * answered at once, and a detached exchange (conn_new_detached) refreshes
 * it through the normal proxy path: retries, breakers, timeouts and
 * upstream TLS apply, and it is counted and logged like any request.
 *
 * What a lookup leaves for later (the fill, the stale object, a copy of
 * the request head for Vary and for forwarding later) lives in a
 * struct cache_exchange, allocated only when the origin is involved: a
 * hit allocates nothing. */
#include "proxy_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache_store.h"
#include "conn.h"
#include "log.h"
#include "reply.h"

#define KEY_MAX 4096            /* longer URLs are not cached */
#define SEND_BATCH (256 * 1024) /* body bytes per send: the idle timeout re-arms */
#define HEAD_LIMIT (256 * 1024) /* the answer's head in c->x->out */
#define OUT_IOVS (sizeof(((struct outmsg *)0)->iov) / sizeof(struct iovec))

struct cache_exchange {
    struct conn *c;
    struct cache_exchange *prev, *next; /* w->cache_polled */
    bool polled;
    struct cache_lookup lk;      /* the fill (ours or awaited) and the stored object */
    struct cache_object *answer; /* what proxy_cache_answer() serves */
    struct cache_defaults defaults;
    int64_t request_time; /* seconds: when the request was forwarded */
    bool revalidating;    /* our validators went with the request */
    bool filling;         /* the response is being stored: body to the fill */
    bool invalidate;      /* an unsafe method: purge the URL on 2xx/3xx */
    size_t key_len, head_len, up_headers_len;
    size_t host_len; /* the key's host part (invalidations only) */
    char text[]; /* key, request head, forwarded claim headers */
};

static struct cache_store *store;

/* ---- the store ---- */

int proxy_cache_start(const struct config *cfg)
{
    uint64_t longest = 0;

    /* A fill not done within the longest upstream wait is given up on. */
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        uint64_t t = cfg->upstreams[i].connect_timeout + cfg->upstreams[i].timeout;
        longest = t > longest ? t : longest;
    }
    store =
        cache_store_new(cfg->cache.memory, cfg->cache.max_object, (int64_t)(longest / 1000) + 1);
    return store ? 0 : -1;
}

void proxy_cache_stop(void)
{
    cache_store_free(store);
    store = NULL;
}

struct cache_store *proxy_cache_store(void)
{
    return store;
}

void proxy_cache_key_normalize(char *url, size_t len)
{
    for (size_t i = 0; i < len && url[i] != '/'; i++)
        if (url[i] >= 'A' && url[i] <= 'Z') url[i] = (char)(url[i] - 'A' + 'a');
}

/* host (lowercased) + path + ?query: what purges name. 0 when too long. */
static size_t cache_key(const struct http_request *req, char *out, size_t cap)
{
    size_t n = req->host.len + req->path.len + (req->query.len ? 1 + req->query.len : 0);

    if (n >= cap || req->path.len == 0) return 0;
    memcpy(out, req->host.p, req->host.len);
    proxy_cache_key_normalize(out, req->host.len);
    memcpy(out + req->host.len, req->path.p, req->path.len);
    if (req->query.len) {
        out[req->host.len + req->path.len] = '?';
        memcpy(out + n - req->query.len, req->query.p, req->query.len);
    }
    return n;
}

static int64_t wall_seconds(void)
{
    return (int64_t)time(NULL);
}

static struct cache_defaults defaults_of(const struct route_conf *r)
{
    struct cache_defaults d = {CACHE_ABSENT, CACHE_ABSENT};

    if (r->cache.stale_while_revalidate)
        d.stale_while_revalidate = (int64_t)(r->cache.stale_while_revalidate / 1000);
    if (r->cache.stale_if_error) d.stale_if_error = (int64_t)(r->cache.stale_if_error / 1000);
    return d;
}

/* ---- metrics and Cache-Status ---- */

static void count(struct conn *c, enum cache_outcome outcome)
{
    if (c->x->cache_counted) return;
    c->x->cache_counted = true;
    metrics_cache_request(c->w->metrics, outcome);
}

static void set_status(struct conn *c, enum cache_fwd fwd, int fwd_status, const char *detail)
{
    memset(&c->x->cache_st, 0, sizeof(c->x->cache_st));
    c->x->cache_st.fwd = fwd;
    c->x->cache_st.fwd_status = fwd_status;
    c->x->cache_st.detail = detail;
    c->x->cache_st_set = true;
}

size_t proxy_cache_status_header(const struct conn *c, char *out, size_t cap)
{
    static const char name[] = "Cache-Status: ";
    size_t n;

    if (!c->x->cache_st_set || cap < sizeof(name) + 3) return 0;
    n = cache_status_format(&c->x->cache_st, out + sizeof(name) - 1, cap - sizeof(name) - 2);
    if (n >= cap - sizeof(name) - 2) return 0;
    memcpy(out, name, sizeof(name) - 1);
    memcpy(out + sizeof(name) - 1 + n, "\r\n", 3);
    return sizeof(name) - 1 + n + 2;
}

/* ---- the exchange's saved state ---- */

static const char *cx_key(const struct cache_exchange *cx)
{
    return cx->text;
}

static const char *cx_head(const struct cache_exchange *cx)
{
    return cx->text + cx->key_len;
}

/* For c, a copy of the key and (with_head) of src's request head and
 * forwarded claim headers, which must still be where routing left them. */
static struct cache_exchange *cx_new(struct conn *c, const struct conn *src, const char *key,
                                     size_t key_len, bool with_head)
{
    size_t head_len = with_head ? src->x->head_len : 0;
    size_t up_len = with_head ? src->x->up_headers_len : 0;
    struct cache_exchange *cx = calloc(1, sizeof(*cx) + key_len + head_len + up_len);

    if (!cx) return NULL;
    cx->c = c;
    cx->key_len = key_len;
    cx->head_len = head_len;
    cx->up_headers_len = up_len;
    memcpy(cx->text, key, key_len);
    if (head_len) memcpy(cx->text + key_len, src->in.data + src->x->head_off, head_len);
    if (up_len) memcpy(cx->text + key_len + head_len, src->x->up_headers, up_len);
    c->x->cx = cx;
    return cx;
}

/* The saved request head, parsed again (its fields point into cx). */
static bool cx_request(const struct cache_exchange *cx, struct http_request *req)
{
    struct http_error err;

    return cx->head_len &&
           http1_parse_request(cx_head(cx), cx->head_len, req, &err) == (int)cx->head_len;
}

static void poll_add(struct cache_exchange *cx)
{
    struct worker *w = cx->c->w;

    if (cx->polled) return;
    cx->polled = true;
    cx->prev = NULL;
    cx->next = w->cache_polled;
    if (w->cache_polled) w->cache_polled->prev = cx;
    w->cache_polled = cx;
}

static void poll_remove(struct cache_exchange *cx)
{
    if (!cx->polled) return;
    cx->polled = false;
    if (cx->prev)
        cx->prev->next = cx->next;
    else
        cx->c->w->cache_polled = cx->next;
    if (cx->next) cx->next->prev = cx->prev;
}

static void abandon_fill(struct cache_exchange *cx)
{
    cx->filling = false;
    if (cx->lk.fill) cache_fill_abandon(store, cx->lk.fill); /* a no-op once it is complete */
}

void proxy_cache_abort(struct conn *c)
{
    if (!c->x->cx) return;
    poll_remove(c->x->cx);
    abandon_fill(c->x->cx);
}

void proxy_cache_end(struct conn *c)
{
    struct cache_exchange *cx = c->x->cx;

    if (cx) {
        if (!c->x->cache_counted && !cx->invalidate)
            count(c, CACHE_OUTCOME_MISS); /* ended before the cache had its say */
        poll_remove(cx);
        abandon_fill(cx);
        cache_lookup_done(&cx->lk);
        cache_object_release(cx->answer);
        free(cx);
        c->x->cx = NULL;
    }
    cache_object_release(c->x->cache_obj);
    c->x->cache_obj = NULL;
    c->x->cache_off = c->x->cache_end = 0;
    c->x->cache_st_set = false;
    c->x->cache_counted = false;
}

/* ---- answering from an object ---- */

static bool put(struct conn *c, const void *p, size_t n)
{
    return buf_append(&c->x->out, &c->w->pool, p, n, HEAD_LIMIT);
}

/* The answer's head: the stored one (its status line replaced when the
 * status differs), then framing, Age, the exchange's extra headers and
 * Connection, as build_response_head() does for relayed answers. */
static bool build_head(struct conn *c, struct cache_object *o, int status, uint64_t length,
                       const char *content_range, int64_t age)
{
    size_t len, line_end;
    const char *head = cache_object_head(o, &len);
    const char *eol = head ? memchr(head, '\n', len) : NULL;
    char line[1024];
    bool ok = true;
    int n;

    if (!eol || len < 2) return false;
    line_end = (size_t)(eol - head) + 1;
    if (status == cache_object_status(o)) {
        ok &= put(c, head, line_end);
    } else {
        n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, http_reason(status));
        ok &= put(c, line, (size_t)n);
    }
    ok &= put(c, head + line_end, len - line_end - 2); /* without the final CRLF */
    n = 0;
    if (status != 304)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Content-Length: %llu\r\n",
                      (unsigned long long)length);
    if (content_range)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Content-Range: %s\r\n", content_range);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "Age: %lld\r\n", (long long)age);
    if (!c->x->keep_alive)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Connection: close\r\n");
    else if (c->x->minor_version == 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "Connection: keep-alive\r\n");
    n += (int)conn_extra_headers(c, line + n, sizeof(line) - (size_t)n - 3);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "\r\n");
    ok &= put(c, line, (size_t)n);
    return ok;
}

/* Queues the head and the body bytes readable now; sends them, or waits
 * for more (a fill in progress), or ends the exchange. */
static void send_more(struct conn *c)
{
    struct cache_object *o = c->x->cache_obj;
    size_t batch = 0;

    outmsg_reset(&c->x->om);
    if (buf_len(&c->x->out)) outmsg_add(&c->x->om, buf_head(&c->x->out), buf_len(&c->x->out));
    while (c->x->cache_off < c->x->cache_end && c->x->om.msg.msg_iovlen < OUT_IOVS && batch < SEND_BATCH) {
        const char *p;
        size_t n = cache_object_read(o, (size_t)c->x->cache_off, &p);

        if (n == 0) break;
        if (n > c->x->cache_end - c->x->cache_off) n = (size_t)(c->x->cache_end - c->x->cache_off);
        if (n > SEND_BATCH - batch) n = SEND_BATCH - batch;
        outmsg_add(&c->x->om, p, n);
        c->x->cache_off += n;
        batch += n;
    }
    timer_arm(&c->w->timers, &c->timer, c->w->now + c->x->cfg->limits.idle_timeout);
    if (c->x->om.left) {
        c->x->resp_started = true;
        conn_send(c);
    } else if (c->x->cache_off >= c->x->cache_end) {
        c->x->resp_body.done = true;
        conn_exchange_done(c);
    } else if (cache_object_state(o) == CACHE_ABANDONED || !c->x->cx) {
        conn_close(c); /* the fill failed under a started answer */
    } else {
        poll_add(c->x->cx); /* the bytes are still on their way from the origin */
    }
}

/* Answers the request (method c->x->method, headers h) from o, taking over
 * the reference: 304 for a conditional that holds, 206 or 416 for a
 * single Range on a GET, else the stored status; HEAD gets the head. */
static void serve(struct conn *c, const struct http_header *h, size_t n, struct cache_object *o)
{
    const struct cache_meta *meta = cache_object_meta(o);
    const struct http_header *range = http1_find_header(h, n, "range");
    const struct http_header *if_range = http1_find_header(h, n, "if-range");
    int64_t now = wall_seconds(), age = cache_current_age(meta, now);
    int64_t last_modified = meta->last_modified != CACHE_ABSENT ? meta->last_modified : meta->date;
    uint64_t length = (uint64_t)cache_object_length(o), first = 0, last = 0;
    enum cache_range r = CACHE_RANGE_NONE;
    char content_range[80];
    int status = cache_object_status(o);

    c->x->cache_obj = o;
    c->state = CS_CACHE;
    if (c->x->cache_st_set && c->x->cache_st.fwd != CACHE_FWD_MISS &&
        c->x->cache_st.fwd != CACHE_FWD_VARY_MISS) {
        c->x->cache_st.has_ttl = true;
        c->x->cache_st.ttl = meta->lifetime - age;
    }
    if (c->w->draining) c->x->keep_alive = false;
    if (cache_not_modified(c->x->method, h, n, cache_object_etag(o), last_modified))
        status = 304;
    else if (c->x->method == HTTP_GET && status == 200 && range &&
             (!if_range || cache_if_range_holds(if_range->value, cache_object_etag(o),
                                                meta->last_modified, meta->date)))
        r = cache_range_parse(range->value, length, &first, &last);
    if (r == CACHE_RANGE_UNSATISFIABLE) {
        char extra[112];
        cache_content_range(r, 0, 0, length, content_range, sizeof(content_range));
        snprintf(extra, sizeof(extra), "Content-Range: %s\r\n", content_range);
        conn_respond_error_with(c, 416, "range not satisfiable", extra);
        return;
    }
    if (r == CACHE_RANGE_PARTIAL) {
        status = 206;
        cache_content_range(r, first, last, length, content_range, sizeof(content_range));
    }
    c->x->status = status;
    c->x->cache_off = r == CACHE_RANGE_PARTIAL ? first : 0;
    c->x->cache_end = r == CACHE_RANGE_PARTIAL ? last + 1 : length;
    if (!build_head(c, o, status, c->x->cache_end - c->x->cache_off,
                    r == CACHE_RANGE_PARTIAL ? content_range : NULL, age)) {
        buf_free(&c->x->out, &c->w->pool);
        conn_respond_error(c, 502, "stored response head too large");
        return;
    }
    if (status == 304 || c->x->method == HTTP_HEAD) c->x->cache_end = c->x->cache_off;
    send_more(c);
}

void proxy_cache_on_client_sent(struct conn *c)
{
    buf_consume(&c->x->out, buf_len(&c->x->out));
    send_more(c);
}

void proxy_cache_answer(struct conn *c)
{
    struct cache_exchange *cx = c->x->cx;
    struct cache_object *o = cx->answer;
    struct http_request req;

    cx->answer = NULL;
    if (!cx_request(cx, &req)) { /* cannot happen: the same bytes parsed before */
        cache_object_release(o);
        conn_close(c);
        return;
    }
    serve(c, req.headers, req.n_headers, o);
}

/* ---- forwarding ---- */

static bool conditional_or_range(struct http_str name)
{
    return http1_str_is(name, "if-none-match") || http1_str_is(name, "if-modified-since") ||
           http1_str_is(name, "if-range") || http1_str_is(name, "range") ||
           http1_str_is(name, "if-match") || http1_str_is(name, "if-unmodified-since");
}

/* The request as sent to fill: without the client's conditionals and
 * Range (the cache answers those itself, from what it stores), with our
 * validators when revalidating `stale`. */
static void fill_request(const struct http_request *req, const struct cache_object *stale,
                         char date_buf[30], struct http_request *out)
{
    const struct cache_meta *meta = stale ? cache_object_meta(stale) : NULL;
    size_t n = 0;

    *out = *req;
    for (size_t i = 0; i < req->n_headers; i++)
        if (!conditional_or_range(req->headers[i].name)) out->headers[n++] = req->headers[i];
    if (meta && n + 2 <= HTTP_MAX_HEADERS)
        n += cache_revalidation_headers(cache_object_etag(stale), meta->last_modified, date_buf,
                                        out->headers + n);
    out->n_headers = n;
}

/* The stale object answers the failed exchange, if its freshness rules
 * allow it (stale-if-error); the fill, if any, is given up. */
static bool stale_on_error(struct conn *c, int status)
{
    struct cache_exchange *cx = c->x->cx;

    if (!cx->lk.object || !cx->lk.decision.serve_on_error || c->x->resp_started) return false;
    abandon_fill(cx);
    cx->answer = cx->lk.object;
    cx->lk.object = NULL;
    count(c, CACHE_OUTCOME_STALE);
    set_status(c, CACHE_FWD_STALE, status, "stale-if-error");
    return true;
}

/* Waiting was in vain (the fill failed, was for another variant, or took
 * too long): the request goes to the origin as the client sent it. */
static void go_to_origin(struct conn *c)
{
    struct cache_exchange *cx = c->x->cx;
    struct http_request req;

    poll_remove(cx);
    cache_object_release(cx->lk.fill);
    cx->lk.fill = NULL;
    count(c, CACHE_OUTCOME_MISS);
    set_status(c, CACHE_FWD_MISS, 0, NULL);
    if (!cx_request(cx, &req)) {
        conn_close(c);
        return;
    }
    c->x->up_headers = cx_head(cx) + cx->head_len;
    c->x->up_headers_len = cx->up_headers_len;
    proxy_start(c, &req);
    c->x->up_headers = NULL;
    c->x->up_headers_len = 0;
}

/* RFC 9111 4.4: a successful unsafe request also invalidates what its
 * response's Location or Content-Location names, when that is on the
 * request's own host (another host's objects are not its to touch): an
 * absolute path, or an absolute URI with the same host[:port]. */
static void purge_named(const struct cache_exchange *cx, const struct http_response *resp,
                        const char *name)
{
    const struct http_header *h = http1_find_header(resp->headers, resp->n_headers, name);
    const char *host = cx_key(cx), *p, *fragment;
    size_t len, skip;
    char key[KEY_MAX];

    if (!h) return;
    p = h->value.p;
    len = h->value.len;
    if ((skip = http1_scheme_length(h->value))) {
        p += skip;
        len -= skip;
        if (len < cx->host_len || strncasecmp(p, host, cx->host_len) != 0 ||
            (len > cx->host_len && p[cx->host_len] != '/'))
            return;
        p += cx->host_len;
        len -= cx->host_len;
    }
    if (len == 0 || p[0] != '/' || (len > 1 && p[1] == '/')) return;
    if ((fragment = memchr(p, '#', len))) len = (size_t)(fragment - p);
    if (cx->host_len + len > sizeof(key)) return;
    memcpy(key, host, cx->host_len);
    memcpy(key + cx->host_len, p, len);
    cache_purge(store, key, cx->host_len + len);
}

bool proxy_cache_on_response(struct conn *c, const struct http_response *resp)
{
    struct cache_exchange *cx = c->x->cx;
    bool failing =
        resp->status == 500 || resp->status == 502 || resp->status == 503 || resp->status == 504;
    struct http_request req;
    struct cache_control cc;
    struct cache_query q;
    enum cache_storable why;

    if (!cx) return false;
    if (cx->invalidate) { /* RFC 9111 4.4 */
        if (resp->status >= 200 && resp->status < 400) {
            cache_purge(store, cx_key(cx), cx->key_len);
            purge_named(cx, resp, "location");
            purge_named(cx, resp, "content-location");
        }
        return false;
    }
    if (failing && stale_on_error(c, resp->status)) return true;
    if (!cx->lk.fill) return false;
    if (cx->revalidating && resp->status == 304) {
        if (cache_fill_refresh(store, cx->lk.fill, cx->lk.object, resp, cx->request_time,
                               wall_seconds()) == 0) {
            cx->answer = cx->lk.fill;
            cx->lk.fill = NULL;
        } else { /* no room for the new head: the stored one is valid all the same */
            cx->answer = cx->lk.object;
            cx->lk.object = NULL;
        }
        count(c, CACHE_OUTCOME_REVALIDATED);
        set_status(c, CACHE_FWD_STALE, 304, NULL);
        return true;
    }
    if (!cx_request(cx, &req)) {
        abandon_fill(cx);
        return false;
    }
    cache_control_of(&cc, req.headers, req.n_headers);
    q = (struct cache_query){cx_key(cx),    cx->key_len, HTTP_GET,      req.headers,
                             req.n_headers, &cc,         &cx->defaults, cx->request_time};
    why = cache_fill_head(store, cx->lk.fill, &q, resp, cx->request_time, wall_seconds());
    cx->filling = why == CACHE_STORABLE;
    c->x->cache_st.stored = cx->filling;
    if (cx->revalidating) c->x->cache_st.fwd_status = resp->status;
    if (!cx->filling) c->x->cache_st.detail = cache_storable_name(why);
    count(c, CACHE_OUTCOME_MISS);
    return false;
}

void proxy_cache_on_body(struct conn *c, const char *data, size_t len, bool done)
{
    struct cache_exchange *cx = c->x->cx;

    if (!cx || !cx->filling) return;
    if (len && cache_fill_append(store, cx->lk.fill, data, len) < 0) {
        cx->filling = false; /* too large after all, or no room: the client is served anyway */
        return;
    }
    if (done) {
        cache_fill_complete(store, cx->lk.fill);
        cx->filling = false;
    }
}

bool proxy_cache_on_failure(struct conn *c, int status)
{
    if (!c->x->cx) return false;
    if (status >= 500 && !c->x->cx->invalidate && stale_on_error(c, status)) return true;
    abandon_fill(c->x->cx); /* its waiters go to the origin now, not after our answer */
    return false;
}

/* stale-while-revalidate: a detached exchange asks the origin with our
 * validators and ends the fill (refreshed by a 304, replaced by a 200).
 * It has no client: it only holds the fill and its own stale reference. */
static void refresh_in_background(struct conn *c, const struct http_request *req, const char *key,
                                  size_t key_len, struct cache_lookup *lk,
                                  const struct cache_defaults *defaults, int64_t now)
{
    struct conn *bg = conn_new_detached(c, req);
    struct cache_exchange *cx = bg ? cx_new(bg, c, key, key_len, true) : NULL;
    struct http_request fwd;
    char date_buf[30];

    if (!cx) {
        log_warn("cache: out of memory for a background refresh");
        cache_fill_abandon(store, lk->fill);
        if (bg) conn_close(bg);
        return;
    }
    bg->x->cache_counted = true; /* the client's request was counted, as stale */
    cx->lk.fill = lk->fill;
    lk->fill = NULL;
    cx->lk.object = cache_object_retain(lk->object);
    cx->lk.decision = lk->decision;
    cx->defaults = *defaults;
    cx->request_time = now;
    cx->revalidating = true;
    set_status(bg, CACHE_FWD_STALE, 0, NULL);
    fill_request(req, cx->lk.object, date_buf, &fwd);
    bg->x->up_headers = c->x->up_headers;
    bg->x->up_headers_len = c->x->up_headers_len;
    proxy_start(bg, &fwd);
    bg->x->up_headers = NULL;
    bg->x->up_headers_len = 0;
}

static bool unsafe_method(enum http_method m)
{
    return m == HTTP_POST || m == HTTP_PUT || m == HTTP_DELETE || m == HTTP_PATCH;
}

/* Not for the cache: forwarded as is (an unsafe method still purges). */
static bool bypass(struct conn *c, const struct http_request *req, const char *key, size_t key_len)
{
    bool method = req->method_id != HTTP_GET && req->method_id != HTTP_HEAD;
    struct cache_exchange *cx;

    set_status(c, method ? CACHE_FWD_METHOD : CACHE_FWD_BYPASS, 0, NULL);
    count(c, CACHE_OUTCOME_BYPASS);
    if (unsafe_method(req->method_id) && key_len && (cx = cx_new(c, c, key, key_len, false))) {
        cx->invalidate = true;
        cx->host_len = req->host.len;
    }
    return false;
}

/* A miss or a revalidation: forwarded, filling the key when the fill is
 * ours; the stored object is kept for stale-if-error. */
static bool forward(struct conn *c, const struct http_request *req, const char *key, size_t key_len,
                    struct cache_lookup *lk, const struct cache_defaults *d, int64_t now)
{
    bool revalidate = lk->result == CACHE_REVALIDATE;
    struct cache_exchange *cx = cx_new(c, c, key, key_len, true);
    struct http_request fwd;
    char date_buf[30];

    if (!cx) {
        if (lk->fill) cache_fill_abandon(store, lk->fill);
        cache_lookup_done(lk);
        return false;
    }
    cx->lk = *lk;
    cx->defaults = *d;
    cx->request_time = now;
    cx->revalidating = revalidate && lk->fill;
    set_status(c,
               revalidate      ? CACHE_FWD_STALE
               : lk->vary_miss ? CACHE_FWD_VARY_MISS
                               : CACHE_FWD_MISS,
               0, NULL);
    if (!revalidate) count(c, CACHE_OUTCOME_MISS);
    if (!lk->fill) {
        proxy_start(c, req);
        return true;
    }
    fill_request(req, revalidate ? lk->object : NULL, date_buf, &fwd);
    proxy_start(c, &fwd);
    return true;
}

/* Another request is fetching the key: wait for its head (polled), at
 * most as long as the origin may take. */
static bool wait_for_fill(struct conn *c, const char *key, size_t key_len, struct cache_lookup *lk)
{
    const struct upstream_conf *u = c->x->route->upstream;
    struct cache_exchange *cx = cx_new(c, c, key, key_len, true);

    if (!cx) {
        cache_lookup_done(lk);
        return false;
    }
    cx->lk = *lk;
    c->state = CS_CACHE;
    poll_add(cx);
    timer_arm(&c->w->timers, &c->timer, c->w->now + u->connect_timeout + u->timeout);
    return true;
}

bool proxy_cache_request(struct conn *c, const struct http_request *req)
{
    char key[KEY_MAX];
    size_t key_len = cache_key(req, key, sizeof(key));
    struct cache_defaults d = defaults_of(c->x->route);
    struct cache_control cc;
    struct cache_query q;
    struct cache_lookup lk;
    int64_t now = wall_seconds();

    if (!store || c->x->upgrade || !key_len || req->body != HTTP_BODY_NONE ||
        (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD))
        return bypass(c, req, key, key_len);
    cache_control_of(&cc, req->headers, req->n_headers);
    q = (struct cache_query){key, key_len, req->method_id, req->headers, req->n_headers, &cc,
                             &d,  now};
    cache_lookup(store, &q, &lk);
    if (cc.only_if_cached && lk.result != CACHE_HIT && lk.result != CACHE_STALE) {
        cache_lookup_done(&lk);
        count(c, CACHE_OUTCOME_MISS);
        set_status(c, CACHE_FWD_MISS, 0, "only-if-cached");
        conn_respond_error(c, 504, "only-if-cached: the response is not in the cache");
        return true;
    }
    switch (lk.result) {
    case CACHE_HIT:
        count(c, CACHE_OUTCOME_HIT);
        set_status(c, CACHE_FWD_NONE, 0, NULL);
        break;
    case CACHE_STALE:
        count(c, CACHE_OUTCOME_STALE);
        set_status(c, CACHE_FWD_NONE, 0, "stale-while-revalidate");
        if (lk.fill) refresh_in_background(c, req, key, key_len, &lk, &d, now);
        break;
    case CACHE_WAIT:
        return wait_for_fill(c, key, key_len, &lk);
    case CACHE_REVALIDATE:
    case CACHE_MISS:
        if (lk.fill || lk.object) return forward(c, req, key, key_len, &lk, &d, now);
        cache_lookup_done(&lk); /* nothing stored, and not ours to store */
        set_status(c, lk.vary_miss ? CACHE_FWD_VARY_MISS : CACHE_FWD_MISS, 0, NULL);
        count(c, cc.no_store ? CACHE_OUTCOME_BYPASS : CACHE_OUTCOME_MISS);
        return false;
    }
    serve(c, req->headers, req->n_headers, lk.object);
    lk.object = NULL;
    cache_lookup_done(&lk);
    return true;
}

/* ---- waiting on another request's fill ---- */

static void poll_one(struct cache_exchange *cx)
{
    struct conn *c = cx->c;
    struct cache_object *fill = cx->lk.fill;
    struct http_request req;

    if (c->x->cache_obj) { /* streaming a fill: more bytes, or its end */
        if (cache_object_filled(c->x->cache_obj) > c->x->cache_off ||
            cache_object_state(c->x->cache_obj) != CACHE_FILLING) {
            poll_remove(cx);
            send_more(c);
        }
        return;
    }
    switch (cache_object_state(fill)) {
    case CACHE_PENDING:
        return;
    case CACHE_FILLING:
    case CACHE_COMPLETE:
        if (!cx_request(cx, &req) || !cache_object_matches(fill, req.headers, req.n_headers)) {
            go_to_origin(c); /* the fill is for another variant */
            return;
        }
        if (cache_object_length(fill) < 0)
            return; /* chunked from the origin: served whole, with its length */
        poll_remove(cx);
        cx->lk.fill = NULL;
        count(c, CACHE_OUTCOME_HIT);
        set_status(c, CACHE_FWD_MISS, 0, NULL);
        c->x->cache_st.collapsed = true;
        serve(c, req.headers, req.n_headers, fill);
        return;
    case CACHE_ABANDONED:
        poll_remove(cx);
        if (stale_on_error(c, 0))
            proxy_cache_answer(c);
        else
            go_to_origin(c);
        return;
    }
}

void proxy_cache_poll(struct worker *w)
{
    for (struct cache_exchange *cx = w->cache_polled, *next; cx; cx = next) {
        next = cx->next;
        poll_one(cx);
    }
}

void proxy_cache_on_timeout(struct conn *c)
{
    if (c->x->cx && c->x->cx->polled && !c->x->cache_obj)
        go_to_origin(c); /* the fill has not even its head after the origin's timeout */
    else
        conn_close(c);
}
