/* The shared HTTP cache on the proxy path (RFC 9111): lookups for routes
 * with `cache`, answers from stored objects, filling them from the
 * origin's responses, request coalescing, revalidation, stale-while-
 * revalidate (a background refresh) and stale-if-error. The rules are in
 * filters/cache_policy.c, the memory in filters/cache_store.c; this file
 * ties them to connections. Used by conn.c, proxy.c and the worker loop. */
#ifndef RINGGATE_PROXY_CACHE_H
#define RINGGATE_PROXY_CACHE_H

#include <stdbool.h>
#include <stddef.h>

struct cache_store;
struct config;
struct conn;
struct http_request;
struct http_response;
struct worker;

/* How often requests waiting on another request's fill look at it. */
#define PROXY_CACHE_POLL_MS 2

/* The process's store, sized from the first configuration (main thread,
 * before the workers start). -1 when out of memory. */
int proxy_cache_start(const struct config *cfg);
/* Once the workers and the admin thread have stopped. */
void proxy_cache_stop(void);
/* NULL before start and after stop. */
struct cache_store *proxy_cache_store(void);

/* conn.c, for an admitted request on a route with `cache`: true when the
 * cache has taken the exchange over (answered, waiting, or forwarded with
 * a fill); false to forward it as usual. */
bool proxy_cache_request(struct conn *c, const struct http_request *req);

/* proxy.c: the origin's final response head. true when the exchange is
 * to be answered from the cache instead (a 304 to our revalidation, or an
 * error with a stale object allowed): the caller lets go of the upstream
 * and calls proxy_cache_answer(). */
bool proxy_cache_on_response(struct conn *c, const struct http_response *resp);
/* Decoded body bytes of the response (done: it is complete). */
void proxy_cache_on_body(struct conn *c, const char *data, size_t len, bool done);
/* The exchange fails with `status` before any answer went out: true when
 * a stale object answers instead (then call proxy_cache_answer()). */
bool proxy_cache_on_failure(struct conn *c, int status);
void proxy_cache_answer(struct conn *c);

/* conn.c, in state CS_CACHE. */
void proxy_cache_on_client_sent(struct conn *c);
void proxy_cache_on_timeout(struct conn *c);
/* The connection closes: a fill it owns is abandoned (its waiters go to
 * the origin), it stops waiting. Objects stay held until ..._end. */
void proxy_cache_abort(struct conn *c);
/* The exchange is over (nothing in flight): everything released. */
void proxy_cache_end(struct conn *c);
/* The Cache-Status header line for the answer, if any; length written. */
size_t proxy_cache_status_header(const struct conn *c, char *out, size_t cap);

/* The worker loop, each turn while w->cache_polled is set. */
void proxy_cache_poll(struct worker *w);

/* The store's key for a URL given as host/path (admin purges): the host
 * lowercased in place. */
void proxy_cache_key_normalize(char *url, size_t len);

#endif
