/* The process-wide HTTP cache store: one per process, shared by all
 * workers, bounded by a memory budget. Pure: no I/O, no clock, no calls
 * back into the workers; any thread may call any function.
 *
 * A primary key (the bytes the caller passes: host and request-target)
 * holds up to CACHE_MAX_VARIANTS stored responses, one per variant (Vary),
 * and at most one fill: the origin fetch that will store a response for
 * it. Lookups that find a fill in progress wait on it instead of going to
 * the origin themselves (request coalescing), and may stream its body as
 * it arrives.
 *
 * Sharded by a keyed hash, each shard with a read-write lock, its share of
 * the budget and its own SIEVE eviction: a hit takes the read lock and
 * marks the key visited; only misses, fills and eviction take the write
 * lock. Everything the store holds is counted against the budget (heads,
 * bodies, keys, bookkeeping), objects still held by readers included, so
 * the total never exceeds it.
 *
 * Objects are reference counted: whatever a lookup returns stays valid,
 * and readable, until released, whatever happens to the key meanwhile. */
#ifndef RINGGATE_CACHE_STORE_H
#define RINGGATE_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache_policy.h"
#include "http1.h"

#define CACHE_MAX_VARIANTS 4
#define CACHE_CHUNK (64 * 1024) /* bodies of unknown length grow by this */

struct cache_store;
struct cache_object;

/* A store of at most `memory` bytes that keeps objects of at most
 * max_object bytes of body (less when a shard's share of the budget is
 * small: at most a quarter of it). A fill nobody has finished after
 * fill_timeout seconds no longer holds other requests back. NULL with
 * errno set (EINVAL, ENOMEM, or getrandom()'s error). */
struct cache_store *cache_store_new(size_t memory, size_t max_object, int64_t fill_timeout);
/* Only once nothing is held any more (workers stopped). */
void cache_store_free(struct cache_store *s);

/* One request, as the store needs to see it. */
struct cache_query {
    const void *key; /* primary key: host and request-target */
    size_t key_len;
    enum http_method method;           /* GET and HEAD share entries; only GET fills */
    const struct http_header *headers; /* the client's, for Vary */
    size_t n_headers;
    const struct cache_control *cc;        /* the request's Cache-Control */
    const struct cache_defaults *defaults; /* the route's stale-* defaults, or NULL */
    int64_t now;
};

enum cache_result {
    CACHE_HIT,        /* object is fresh (or acceptably stale to the client): serve it */
    CACHE_STALE,      /* serve object stale; if fill is set, revalidate it in the background */
    CACHE_REVALIDATE, /* object must be revalidated before use; fill is yours (if set) */
    CACHE_MISS,       /* nothing usable; fill is yours (if set): fetch and fill it */
    CACHE_WAIT,       /* another request is fetching this key: wait on fill */
};

/* What a lookup found. object and fill are references the caller releases
 * (either may be NULL). A fill handed to the caller as its own (MISS,
 * REVALIDATE, STALE) must be ended: cache_fill_head() then append and
 * cache_fill_complete(), or cache_fill_refresh(), or cache_fill_abandon().
 * No fill is handed out when the request may not be stored (not GET,
 * no-store, only-if-cached) or there is no memory for it. */
struct cache_lookup {
    enum cache_result result;
    struct cache_object *object;    /* the matching stored response, if any */
    struct cache_object *fill;      /* the fill to do, or to wait on */
    struct cache_decision decision; /* how object may be used (valid when object is set) */
    bool vary_miss;                 /* MISS, but other variants are stored */
};

void cache_lookup(struct cache_store *s, const struct cache_query *q, struct cache_lookup *out);
/* Releases out->object and out->fill. */
void cache_lookup_done(struct cache_lookup *l);

/* ---- filling (the fill's owner only) ---- */

/* The response head arrived (at response_time, for a request sent at
 * request_time). Stores it if the policy allows, the body's size is known
 * not to exceed max_object and there is room; from then on waiters can
 * read it. Otherwise abandons the fill and says why. q is the lookup's. */
enum cache_storable cache_fill_head(struct cache_store *s, struct cache_object *fill,
                                    const struct cache_query *q, const struct http_response *resp,
                                    int64_t request_time, int64_t response_time);

/* Body bytes, as decoded (no chunked framing). -1 when the fill is (now)
 * abandoned: too large, no memory, more than Content-Length, or not
 * filling. The caller goes on serving its own client either way. */
int cache_fill_append(struct cache_store *s, struct cache_object *fill, const void *data,
                      size_t len);

/* The body is complete: the object becomes the key's variant (replacing
 * the one with the same variant key). -1 (and abandoned) when fewer bytes
 * than Content-Length came; 0 otherwise, also when the key was purged
 * meanwhile (the object then serves its waiters, and is not kept). */
int cache_fill_complete(struct cache_store *s, struct cache_object *fill);

/* The origin answered 304 to the revalidation of `stale`: the fill becomes
 * a complete copy of it with the headers refreshed (RFC 9111 4.3.4),
 * sharing its body, and replaces it. -1 (and abandoned) when the merged
 * head is not valid or there is no room. */
int cache_fill_refresh(struct cache_store *s, struct cache_object *fill,
                       const struct cache_object *stale, const struct http_response *resp304,
                       int64_t request_time, int64_t response_time);

/* The fetch failed or the response is not to be stored: waiters go to the
 * origin themselves. A no-op on a fill already ended. */
void cache_fill_abandon(struct cache_store *s, struct cache_object *fill);

/* ---- reading (any holder) ---- */

enum cache_state {
    CACHE_PENDING,   /* the head has not arrived */
    CACHE_FILLING,   /* head readable, body arriving */
    CACHE_COMPLETE,  /* head and body readable */
    CACHE_ABANDONED, /* will not complete: go to the origin (and cut a started stream) */
};

/* State, acquire ordered: once FILLING or COMPLETE is seen, the head, the
 * meta and the bytes filled so far may be read without a lock. */
enum cache_state cache_object_state(const struct cache_object *o);
/* Body bytes readable now; grows while FILLING. Poll it with the state. */
size_t cache_object_filled(const struct cache_object *o);
/* The body length: Content-Length, or once COMPLETE the bytes stored; -1
 * while unknown. */
int64_t cache_object_length(const struct cache_object *o);
/* Contiguous body bytes at `offset` readable now (0 when none yet): *p
 * points at them. Call again with offset + the returned length. */
size_t cache_object_read(const struct cache_object *o, size_t offset, const char **p);

/* Head (from FILLING on): built by cache_head_build(); no Content-Length,
 * Transfer-Encoding or Age: the sender adds them. */
const char *cache_object_head(const struct cache_object *o, size_t *len);
int cache_object_status(const struct cache_object *o);
const struct cache_meta *cache_object_meta(const struct cache_object *o);
struct http_str cache_object_etag(const struct cache_object *o); /* len 0: none */
/* Whether the request selects this object's variant (from FILLING on). */
bool cache_object_matches(const struct cache_object *o, const struct http_header *req, size_t n);
/* When the fill was begun (lookup's now): the waiter's clock for its bound. */
int64_t cache_object_started(const struct cache_object *o);

/* Another reference to o (released with cache_object_release). */
struct cache_object *cache_object_retain(struct cache_object *o);
void cache_object_release(struct cache_object *o);

/* ---- administration ---- */

/* Drop the key (every variant; a fill in progress still serves its
 * waiters but is not kept). Returns how many keys were dropped. */
size_t cache_purge(struct cache_store *s, const void *key, size_t len);
size_t cache_purge_prefix(struct cache_store *s, const void *prefix, size_t len);

struct cache_stats {
    size_t bytes;  /* counted now: ringgate_cache_bytes */
    size_t budget; /* the memory given */
    size_t keys;   /* primary keys */
    size_t shards;
    size_t max_object; /* effective */
};

void cache_store_stats(struct cache_store *s, struct cache_stats *st);
size_t cache_store_bytes(const struct cache_store *s);

#endif
