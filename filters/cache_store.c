/* The shared cache store (see cache_store.h).
 *
 * Each shard is a chained hash table of entries (one per primary key) and
 * a SIEVE queue over them: entries are queued newest first, a hit sets the
 * entry's visited bit, and eviction moves a hand from the oldest towards
 * the newest, clearing visited bits and evicting the first entry it finds
 * unvisited (and not being filled). Nothing moves on a hit, so hits share
 * the read lock.
 *
 * An object's head, Vary names and variant key live in one allocation
 * (`text`), immutable once published; its body is a separate, reference
 * counted allocation so that a response refreshed by a 304 shares the
 * stored bytes. A body of known length is one buffer allocated up front;
 * one of unknown length grows by CACHE_CHUNK chunks listed in a table
 * sized for max_object: either way stored bytes never move, so readers
 * read them without a lock, up to `filled` (release-stored by the single
 * writer after the bytes, acquire-loaded by the readers). */
#include "cache_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

#define SHARDS_MAX 32
#define SHARD_OBJECTS_MIN 4 /* a shard's budget holds this many largest objects */
#define BYTES_PER_BUCKET 1024
#define BUCKETS_MIN 16
#define ALLOC_OVERHEAD 16 /* what malloc adds to each allocation, counted */
#define VARY_KEY_STACK 1024
#define CACHE_LINE 64

struct body {
    atomic_int refs;
    atomic_size_t filled;
    struct shard *shard;
    size_t charged;
    size_t chunk_size, nchunks;
    char **chunks;
};

struct cache_object {
    atomic_int refs;
    atomic_int state;
    _Atomic int64_t length; /* -1 while unknown */
    struct shard *shard;
    struct entry *entry; /* the entry it is the fill of; under the write lock */
    size_t charged;
    int64_t started;
    /* Published by the state becoming FILLING or COMPLETE. */
    int status;
    struct cache_meta meta;
    char *text; /* head NUL vary-names NUL variant-key NUL */
    size_t head_len, names_len, variant_len;
    struct http_str etag;
    struct body *body;
};

struct entry {
    struct entry *chain;         /* bucket */
    struct entry *newer, *older; /* SIEVE queue */
    uint64_t hash;
    atomic_bool visited;
    int n_variants;
    struct cache_object *variants[CACHE_MAX_VARIANTS]; /* each holds a reference */
    struct cache_object *fill;                         /* holds a reference */
    size_t key_len;
    char key[];
};

struct shard {
    _Alignas(CACHE_LINE) pthread_rwlock_t lock;
    struct entry **buckets;
    size_t mask;
    struct entry *newest, *oldest, *hand;
    size_t keys;
    size_t budget;
    atomic_size_t bytes;
};

struct cache_store {
    uint64_t seed[2];
    unsigned shard_bits;
    size_t nshards, ready, budget, max_object;
    int64_t fill_timeout;
    struct shard *shards;
};

static const size_t object_charge = sizeof(struct cache_object) + ALLOC_OVERHEAD;

static size_t entry_charge(size_t key_len)
{
    return sizeof(struct entry) + key_len + ALLOC_OVERHEAD;
}

/* ---- memory accounting --------------------------------------------------- */

static void uncharge(struct shard *sh, size_t n)
{
    atomic_fetch_sub_explicit(&sh->bytes, n, memory_order_relaxed);
}

static void entry_remove(struct shard *sh, struct entry *e);

/* SIEVE: the first entry from the hand on that is neither visited since
 * the hand last passed nor being filled. At most two turns. */
static bool evict_one(struct shard *sh)
{
    struct entry *e = sh->hand ? sh->hand : sh->oldest;

    for (size_t looked = 0; e && looked <= 2 * sh->keys; looked++) {
        if (!e->fill && !atomic_exchange_explicit(&e->visited, false, memory_order_relaxed)) {
            struct entry *next = e->newer;

            entry_remove(sh, e);
            sh->hand = next;
            return true;
        }
        e = e->newer ? e->newer : sh->oldest;
    }
    return false;
}

/* Counts n more bytes, evicting to make room. Write lock held. */
static bool reserve_locked(struct shard *sh, size_t n)
{
    if (n > sh->budget) return false;
    while (atomic_load_explicit(&sh->bytes, memory_order_relaxed) + n > sh->budget)
        if (!evict_one(sh)) return false;
    atomic_fetch_add_explicit(&sh->bytes, n, memory_order_relaxed);
    return true;
}

static bool reserve(struct shard *sh, size_t n)
{
    bool ok;

    pthread_rwlock_wrlock(&sh->lock);
    ok = reserve_locked(sh, n);
    pthread_rwlock_unlock(&sh->lock);
    return ok;
}

/* ---- bodies and objects -------------------------------------------------- */

/* A body of `length` bytes (-1: unknown, at most max_object), charged. */
static struct body *body_new(struct shard *sh, int64_t length, size_t max_object)
{
    size_t known = length > 0 ? (size_t)length : 0;
    size_t nchunks = length >= 0 ? (length > 0) : max_object / CACHE_CHUNK + 1;
    size_t charge = sizeof(struct body) + nchunks * sizeof(char *) + known + 3 * ALLOC_OVERHEAD;
    struct body *b;

    if (!reserve(sh, charge)) return NULL;
    b = calloc(1, sizeof *b);
    if (b) b->chunks = calloc(nchunks ? nchunks : 1, sizeof *b->chunks);
    if (b && b->chunks && known) b->chunks[0] = malloc(known);
    if (!b || !b->chunks || (known && !b->chunks[0])) {
        if (b) free(b->chunks);
        free(b);
        uncharge(sh, charge);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    atomic_init(&b->filled, 0);
    b->shard = sh;
    b->charged = charge;
    b->chunk_size = length >= 0 ? known : CACHE_CHUNK;
    b->nchunks = nchunks;
    return b;
}

static void body_release(struct body *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < b->nchunks; i++)
        free(b->chunks[i]);
    free(b->chunks);
    uncharge(b->shard, b->charged);
    free(b);
}

/* The next chunk of a body of unknown length, charged. */
static int body_grow(struct body *b, size_t index)
{
    if (!reserve(b->shard, CACHE_CHUNK + ALLOC_OVERHEAD)) return -1;
    b->chunks[index] = malloc(CACHE_CHUNK);
    if (!b->chunks[index]) {
        uncharge(b->shard, CACHE_CHUNK + ALLOC_OVERHEAD);
        return -1;
    }
    b->charged += CACHE_CHUNK + ALLOC_OVERHEAD;
    return 0;
}

struct cache_object *cache_object_retain(struct cache_object *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
    return o;
}

void cache_object_release(struct cache_object *o)
{
    if (!o || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1) return;
    body_release(o->body);
    uncharge(o->shard, o->charged);
    free(o->text);
    free(o);
}

static const char *names_of(const struct cache_object *o)
{
    return o->text + o->head_len + 1;
}

static char *variant_of(const struct cache_object *o)
{
    return o->text + o->head_len + 1 + o->names_len + 1;
}

/* Allocates and charges o->text for a head of head_len bytes, copying in
 * the Vary names; the caller writes the head and the variant key. */
static int object_text(struct cache_object *o, size_t head_len, struct http_str names,
                       size_t variant_len)
{
    size_t size = head_len + 1 + names.len + 1 + variant_len + 1;

    if (!reserve(o->shard, size + ALLOC_OVERHEAD)) return -1;
    o->text = malloc(size);
    if (!o->text) {
        uncharge(o->shard, size + ALLOC_OVERHEAD);
        return -1;
    }
    o->charged += size + ALLOC_OVERHEAD;
    o->head_len = head_len;
    o->names_len = names.len;
    o->variant_len = variant_len;
    memcpy(o->text + head_len + 1, names.p, names.len);
    o->text[head_len + 1 + names.len] = '\0';
    return 0;
}

/* ---- entries ------------------------------------------------------------- */

static struct shard *shard_of(const struct cache_store *s, uint64_t hash)
{
    return &s->shards[s->shard_bits ? hash >> (64 - s->shard_bits) : 0];
}

static struct entry *find_entry(const struct shard *sh, uint64_t hash, const void *key, size_t len)
{
    struct entry *e;

    for (e = sh->buckets[hash & sh->mask]; e; e = e->chain)
        if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    return NULL;
}

/* A new entry, newest in the queue; the caller has charged it. */
static struct entry *entry_new(struct shard *sh, uint64_t hash, const void *key, size_t len)
{
    struct entry *e = calloc(1, sizeof *e + len);
    struct entry **bucket = &sh->buckets[hash & sh->mask];

    if (!e) return NULL;
    e->hash = hash;
    e->key_len = len;
    memcpy(e->key, key, len);
    atomic_init(&e->visited, false);
    e->chain = *bucket;
    *bucket = e;
    e->older = sh->newest;
    if (sh->newest)
        sh->newest->newer = e;
    else
        sh->oldest = e;
    sh->newest = e;
    sh->keys++;
    return e;
}

/* A fill that no longer belongs to its entry: it still serves its waiters. */
static void detach_fill(struct entry *e)
{
    struct cache_object *fill = e->fill;

    fill->entry = NULL;
    e->fill = NULL;
    cache_object_release(fill);
}

static void entry_remove(struct shard *sh, struct entry *e)
{
    struct entry **p = &sh->buckets[e->hash & sh->mask];

    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    if (sh->hand == e) sh->hand = e->newer;
    *(e->newer ? &e->newer->older : &sh->newest) = e->older;
    *(e->older ? &e->older->newer : &sh->oldest) = e->newer;
    sh->keys--;
    for (int i = 0; i < e->n_variants; i++)
        cache_object_release(e->variants[i]);
    if (e->fill) detach_fill(e);
    uncharge(sh, entry_charge(e->key_len));
    free(e);
}

/* ---- variants ------------------------------------------------------------ */

static bool variant_matches(const struct cache_object *o, const struct http_header *h, size_t n)
{
    struct http_str names = {names_of(o), o->names_len};
    char stack[VARY_KEY_STACK], *buf = stack;
    size_t need;
    bool match;

    if (o->names_len == 0) return true;
    need = cache_vary_key(names, h, n, NULL, 0);
    if (need != o->variant_len) return false;
    if (need >= sizeof stack && !(buf = malloc(need + 1))) return false;
    cache_vary_key(names, h, n, buf, need + 1);
    match = memcmp(buf, variant_of(o), need) == 0;
    if (buf != stack) free(buf);
    return match;
}

/* The most recent matching variant (RFC 9111 4.1). */
static struct cache_object *best_variant(const struct entry *e, const struct cache_query *q)
{
    struct cache_object *best = NULL;

    for (int i = 0; i < e->n_variants; i++) {
        struct cache_object *v = e->variants[i];

        if ((!best || v->meta.date >= best->meta.date) &&
            variant_matches(v, q->headers, q->n_headers))
            best = v;
    }
    return best;
}

/* The object takes the place of its variant, or of the oldest when there
 * are too many; the entry's reference to it as a fill becomes one to it as
 * a variant. */
static void add_variant(struct entry *e, struct cache_object *o)
{
    for (int i = 0; i < e->n_variants; i++) {
        struct cache_object *v = e->variants[i];

        if (v->variant_len == o->variant_len &&
            memcmp(variant_of(v), variant_of(o), o->variant_len) == 0) {
            e->variants[i] = o;
            cache_object_release(v);
            return;
        }
    }
    if (e->n_variants == CACHE_MAX_VARIANTS) {
        cache_object_release(e->variants[0]);
        memmove(e->variants, e->variants + 1, sizeof e->variants[0] * (CACHE_MAX_VARIANTS - 1));
        e->n_variants--;
    }
    e->variants[e->n_variants++] = o;
}

/* ---- lookup -------------------------------------------------------------- */

static const struct cache_control *request_cc(const struct cache_query *q)
{
    static const struct cache_control none = {
        .max_age = CACHE_ABSENT,
        .s_maxage = CACHE_ABSENT,
        .stale_while_revalidate = CACHE_ABSENT,
        .stale_if_error = CACHE_ABSENT,
        .max_stale = CACHE_ABSENT,
        .min_fresh = CACHE_ABSENT,
    };

    return q->cc ? q->cc : &none;
}

static bool may_fill(const struct cache_query *q)
{
    return q->method == HTTP_GET && !request_cc(q)->no_store && !request_cc(q)->only_if_cached;
}

static struct cache_object *claim_fill(struct cache_store *s, struct shard *sh, uint64_t hash,
                                       const struct cache_query *q)
{
    size_t for_entry = entry_charge(q->key_len);
    struct cache_object *o;
    struct entry *e;

    if (!reserve_locked(sh, object_charge + for_entry)) return NULL;
    e = find_entry(sh, hash, q->key, q->key_len); /* eviction may have removed it */
    if (e)
        uncharge(sh, for_entry);
    else if (!(e = entry_new(sh, hash, q->key, q->key_len)))
        uncharge(sh, for_entry);
    o = e ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        uncharge(sh, object_charge);
        return NULL;
    }
    atomic_init(&o->refs, 2); /* the entry's and the caller's */
    atomic_init(&o->state, CACHE_PENDING);
    atomic_init(&o->length, -1);
    o->shard = sh;
    o->charged = object_charge;
    o->started = q->now;
    o->entry = e;
    e->fill = o;
    (void)s;
    return o;
}

/* Under the read lock: a fresh hit, or false to look again under the
 * write lock. */
static bool find_fresh(struct shard *sh, uint64_t hash, const struct cache_query *q,
                       struct cache_lookup *out)
{
    struct entry *e = find_entry(sh, hash, q->key, q->key_len);
    struct cache_object *v = e ? best_variant(e, q) : NULL;

    if (!v) return false;
    cache_decide(&v->meta, request_cc(q), q->defaults, q->now, &out->decision);
    if (out->decision.use != CACHE_USE_FRESH) return false;
    atomic_store_explicit(&e->visited, true, memory_order_relaxed);
    out->result = CACHE_HIT;
    out->object = cache_object_retain(v);
    return true;
}

/* Under the write lock: everything but a fresh hit. */
static void resolve(struct cache_store *s, struct shard *sh, uint64_t hash,
                    const struct cache_query *q, struct cache_lookup *out)
{
    struct entry *e = find_entry(sh, hash, q->key, q->key_len);
    struct cache_object *v = e ? best_variant(e, q) : NULL;
    bool may_wait = !request_cc(q)->only_if_cached;

    if (e && e->fill && s->fill_timeout > 0 && q->now - e->fill->started >= s->fill_timeout)
        detach_fill(e);
    if (v) {
        atomic_store_explicit(&e->visited, true, memory_order_relaxed);
        cache_decide(&v->meta, request_cc(q), q->defaults, q->now, &out->decision);
        out->object = cache_object_retain(v);
        out->result = out->decision.use == CACHE_USE_FRESH   ? CACHE_HIT
                      : out->decision.use == CACHE_USE_STALE ? CACHE_STALE
                                                             : CACHE_REVALIDATE;
        if (out->result == CACHE_HIT) return;
    } else {
        out->result = CACHE_MISS;
        out->vary_miss = e && e->n_variants > 0;
    }
    if (e && e->fill) { /* someone is fetching it already */
        if (out->result != CACHE_STALE && may_wait) {
            out->result = CACHE_WAIT;
            out->fill = cache_object_retain(e->fill);
        }
        return;
    }
    if (may_fill(q)) out->fill = claim_fill(s, sh, hash, q);
}

void cache_lookup(struct cache_store *s, const struct cache_query *q, struct cache_lookup *out)
{
    uint64_t hash = siphash13(s->seed, q->key, q->key_len);
    struct shard *sh = shard_of(s, hash);
    bool hit;

    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&sh->lock);
    hit = find_fresh(sh, hash, q, out);
    pthread_rwlock_unlock(&sh->lock);
    if (hit) return;
    memset(out, 0, sizeof *out);
    pthread_rwlock_wrlock(&sh->lock);
    resolve(s, sh, hash, q, out);
    pthread_rwlock_unlock(&sh->lock);
}

void cache_lookup_done(struct cache_lookup *l)
{
    cache_object_release(l->object);
    cache_object_release(l->fill);
    l->object = l->fill = NULL;
}

/* ---- filling ------------------------------------------------------------- */

static int state_of(const struct cache_object *o)
{
    return atomic_load_explicit(&o->state, memory_order_acquire);
}

static void publish(struct cache_object *o, enum cache_state state)
{
    atomic_store_explicit(&o->state, state, memory_order_release);
}

static int64_t body_length(const struct http_response *resp)
{
    if (resp->body == HTTP_BODY_NONE) return 0;
    return resp->body == HTTP_BODY_LENGTH && resp->content_length <= INT64_MAX
               ? (int64_t)resp->content_length
               : -1;
}

static bool has_validator(const struct http_response *resp)
{
    return http1_find_header(resp->headers, resp->n_headers, "etag") ||
           http1_find_header(resp->headers, resp->n_headers, "last-modified");
}

/* The head, Vary names and variant key of a new response to q. */
static int fill_text(struct cache_object *o, const struct cache_query *q,
                     const struct http_response *resp, int64_t response_time)
{
    size_t head_len = cache_head_build(resp->status, resp->reason, resp->headers, resp->n_headers,
                                       response_time, NULL, 0);
    int names_len = cache_vary_names(resp->headers, resp->n_headers, NULL, 0);
    struct http_str names;
    char *buf;
    int rc = -1;

    if (names_len < 0 || !(buf = malloc((size_t)names_len + 1))) return -1;
    cache_vary_names(resp->headers, resp->n_headers, buf, (size_t)names_len + 1);
    names = (struct http_str){buf, (size_t)names_len};
    if (object_text(o, head_len, names, cache_vary_key(names, q->headers, q->n_headers, NULL, 0)) ==
        0) {
        cache_head_build(resp->status, resp->reason, resp->headers, resp->n_headers, response_time,
                         o->text, head_len + 1);
        cache_vary_key(names, q->headers, q->n_headers, variant_of(o), o->variant_len + 1);
        o->etag = cache_head_field(o->text, o->head_len, "etag");
        rc = 0;
    }
    free(buf);
    return rc;
}

enum cache_storable cache_fill_head(struct cache_store *s, struct cache_object *fill,
                                    const struct cache_query *q, const struct http_response *resp,
                                    int64_t request_time, int64_t response_time)
{
    enum cache_storable why;
    struct cache_control cc;
    int64_t length = body_length(resp);

    if (state_of(fill) != CACHE_PENDING) return CACHE_NOT_FILL;
    cache_control_of(&cc, resp->headers, resp->n_headers);
    why = cache_storable(q->method, q->headers, q->n_headers, request_cc(q), resp->status,
                         resp->headers, resp->n_headers, &cc);
    cache_meta_init(&fill->meta, resp->status, resp->headers, resp->n_headers, request_time,
                    response_time);
    if (why == CACHE_STORABLE && (length > (int64_t)s->max_object)) why = CACHE_NOT_TOO_LARGE;
    if (why == CACHE_STORABLE && !cache_worth_storing(&fill->meta, has_validator(resp)))
        why = CACHE_NOT_USEFUL;
    if (why == CACHE_STORABLE && fill_text(fill, q, resp, response_time) < 0)
        why = CACHE_NOT_NO_MEMORY;
    if (why == CACHE_STORABLE && !(fill->body = body_new(fill->shard, length, s->max_object)))
        why = CACHE_NOT_NO_MEMORY;
    if (why != CACHE_STORABLE) {
        cache_fill_abandon(s, fill);
        return why;
    }
    fill->status = resp->status;
    atomic_store_explicit(&fill->length, length, memory_order_relaxed);
    publish(fill, CACHE_FILLING);
    return CACHE_STORABLE;
}

int cache_fill_append(struct cache_store *s, struct cache_object *fill, const void *data,
                      size_t len)
{
    struct body *b = fill->body;
    int64_t length = atomic_load_explicit(&fill->length, memory_order_relaxed);
    size_t filled, limit, done = 0;

    if (state_of(fill) != CACHE_FILLING) return -1;
    filled = atomic_load_explicit(&b->filled, memory_order_relaxed);
    limit = length >= 0 ? (size_t)length : s->max_object;
    if (len > limit - filled) {
        cache_fill_abandon(s, fill);
        return -1;
    }
    while (done < len) {
        size_t at = filled + done, index = at / b->chunk_size, off = at % b->chunk_size;
        size_t n = b->chunk_size - off < len - done ? b->chunk_size - off : len - done;

        if (!b->chunks[index] && body_grow(b, index) < 0) {
            cache_fill_abandon(s, fill);
            return -1;
        }
        memcpy(b->chunks[index] + off, (const char *)data + done, n);
        done += n;
    }
    atomic_store_explicit(&b->filled, filled + len, memory_order_release);
    return 0;
}

/* Makes the fill its key's variant (if it still is the key's fill) and
 * publishes it complete. */
static void link_complete(struct cache_object *fill)
{
    struct shard *sh = fill->shard;
    struct entry *e;

    pthread_rwlock_wrlock(&sh->lock);
    e = fill->entry;
    if (e) {
        fill->entry = NULL;
        e->fill = NULL;
        add_variant(e, fill);
    }
    publish(fill, CACHE_COMPLETE);
    pthread_rwlock_unlock(&sh->lock);
}

int cache_fill_complete(struct cache_store *s, struct cache_object *fill)
{
    int64_t length = atomic_load_explicit(&fill->length, memory_order_relaxed);
    size_t filled;

    if (state_of(fill) != CACHE_FILLING) return -1;
    filled = atomic_load_explicit(&fill->body->filled, memory_order_relaxed);
    if (length >= 0 && (size_t)length != filled) {
        cache_fill_abandon(s, fill);
        return -1;
    }
    atomic_store_explicit(&fill->length, (int64_t)filled, memory_order_relaxed);
    link_complete(fill);
    return 0;
}

int cache_fill_refresh(struct cache_store *s, struct cache_object *fill,
                       const struct cache_object *stale, const struct http_response *resp304,
                       int64_t request_time, int64_t response_time)
{
    struct http_response merged;
    size_t head_len;

    if (state_of(fill) != CACHE_PENDING || state_of(stale) != CACHE_COMPLETE) return -1;
    head_len = cache_head_merge(stale->text, stale->head_len, resp304->headers, resp304->n_headers,
                                response_time, NULL, 0);
    if (object_text(fill, head_len, (struct http_str){names_of(stale), stale->names_len},
                    stale->variant_len) < 0) {
        cache_fill_abandon(s, fill);
        return -1;
    }
    cache_head_merge(stale->text, stale->head_len, resp304->headers, resp304->n_headers,
                     response_time, fill->text, head_len + 1);
    memcpy(variant_of(fill), variant_of(stale), stale->variant_len + 1);
    if (http1_parse_response(fill->text, head_len, HTTP_GET, &merged, NULL) != (int)head_len) {
        cache_fill_abandon(s, fill);
        return -1;
    }
    cache_meta_init(&fill->meta, stale->status, merged.headers, merged.n_headers, request_time,
                    response_time);
    fill->etag = cache_head_field(fill->text, head_len, "etag");
    fill->status = stale->status;
    fill->body = stale->body;
    atomic_fetch_add_explicit(&fill->body->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&fill->length, atomic_load(&stale->length), memory_order_relaxed);
    link_complete(fill);
    return 0;
}

void cache_fill_abandon(struct cache_store *s, struct cache_object *fill)
{
    struct shard *sh = fill->shard;
    struct entry *e;
    int state = state_of(fill);

    (void)s;
    if (state == CACHE_COMPLETE || state == CACHE_ABANDONED) return;
    pthread_rwlock_wrlock(&sh->lock);
    e = fill->entry;
    if (e) {
        detach_fill(e); /* not the last reference: the caller holds one */
        if (e->n_variants == 0) entry_remove(sh, e);
    }
    publish(fill, CACHE_ABANDONED);
    pthread_rwlock_unlock(&sh->lock);
}

/* ---- reading ------------------------------------------------------------- */

enum cache_state cache_object_state(const struct cache_object *o)
{
    return (enum cache_state)state_of(o);
}

static bool published(const struct cache_object *o)
{
    int state = state_of(o);

    return state == CACHE_FILLING || state == CACHE_COMPLETE;
}

size_t cache_object_filled(const struct cache_object *o)
{
    return published(o) ? atomic_load_explicit(&o->body->filled, memory_order_acquire) : 0;
}

int64_t cache_object_length(const struct cache_object *o)
{
    return published(o) ? atomic_load_explicit(&o->length, memory_order_relaxed) : -1;
}

size_t cache_object_read(const struct cache_object *o, size_t offset, const char **p)
{
    size_t filled = cache_object_filled(o), off;
    const struct body *b;

    if (offset >= filled) return 0;
    b = o->body; /* published with the state */
    off = offset % b->chunk_size;
    *p = b->chunks[offset / b->chunk_size] + off;
    return filled - offset < b->chunk_size - off ? filled - offset : b->chunk_size - off;
}

const char *cache_object_head(const struct cache_object *o, size_t *len)
{
    if (!published(o)) return NULL;
    *len = o->head_len;
    return o->text;
}

int cache_object_status(const struct cache_object *o)
{
    return published(o) ? o->status : 0;
}

const struct cache_meta *cache_object_meta(const struct cache_object *o)
{
    return published(o) ? &o->meta : NULL;
}

struct http_str cache_object_etag(const struct cache_object *o)
{
    return published(o) ? o->etag : (struct http_str){NULL, 0};
}

bool cache_object_matches(const struct cache_object *o, const struct http_header *req, size_t n)
{
    return published(o) && variant_matches(o, req, n);
}

int64_t cache_object_started(const struct cache_object *o)
{
    return o->started;
}

/* ---- administration ------------------------------------------------------ */

size_t cache_purge(struct cache_store *s, const void *key, size_t len)
{
    uint64_t hash = siphash13(s->seed, key, len);
    struct shard *sh = shard_of(s, hash);
    struct entry *e;

    pthread_rwlock_wrlock(&sh->lock);
    e = find_entry(sh, hash, key, len);
    if (e) entry_remove(sh, e);
    pthread_rwlock_unlock(&sh->lock);
    return e ? 1 : 0;
}

static size_t purge_shard(struct shard *sh, const void *prefix, size_t len)
{
    struct entry *e, *next;
    size_t n = 0;

    for (e = sh->oldest; e; e = next) {
        next = e->newer;
        if (e->key_len >= len && memcmp(e->key, prefix, len) == 0) {
            entry_remove(sh, e);
            n++;
        }
    }
    return n;
}

size_t cache_purge_prefix(struct cache_store *s, const void *prefix, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nshards; i++) {
        pthread_rwlock_wrlock(&s->shards[i].lock);
        n += purge_shard(&s->shards[i], prefix, len);
        pthread_rwlock_unlock(&s->shards[i].lock);
    }
    return n;
}

size_t cache_store_bytes(const struct cache_store *s)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nshards; i++)
        n += atomic_load_explicit(&s->shards[i].bytes, memory_order_relaxed);
    return n;
}

void cache_store_stats(struct cache_store *s, struct cache_stats *st)
{
    st->bytes = cache_store_bytes(s);
    st->budget = s->budget;
    st->shards = s->nshards;
    st->max_object = s->max_object;
    st->keys = 0;
    for (size_t i = 0; i < s->nshards; i++) {
        pthread_rwlock_rdlock(&s->shards[i].lock);
        st->keys += s->shards[i].keys;
        pthread_rwlock_unlock(&s->shards[i].lock);
    }
}

/* ---- lifecycle ----------------------------------------------------------- */

static int shard_init(struct shard *sh, size_t budget)
{
    size_t nbuckets = BUCKETS_MIN;
    pthread_rwlockattr_t attr;
    int err;

    while (nbuckets < budget / BYTES_PER_BUCKET)
        nbuckets *= 2;
    sh->buckets = calloc(nbuckets, sizeof *sh->buckets);
    if (!sh->buckets) return ENOMEM;
    sh->mask = nbuckets - 1;
    sh->budget = budget;
    atomic_init(&sh->bytes, nbuckets * sizeof *sh->buckets + ALLOC_OVERHEAD);
    /* Misses and fills must not starve behind a stream of hits. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    err = pthread_rwlock_init(&sh->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (err) free(sh->buckets);
    return err;
}

struct cache_store *cache_store_new(size_t memory, size_t max_object, int64_t fill_timeout)
{
    struct cache_store *s;
    size_t per_shard;
    ssize_t got;
    int err;

    if (memory == 0 || max_object == 0) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    got = getrandom(s->seed, sizeof s->seed, 0);
    if (got != (ssize_t)sizeof s->seed) {
        if (got >= 0) errno = EIO;
        free(s);
        return NULL;
    }
    s->shard_bits = 5;
    while (s->shard_bits > 0 && (memory >> s->shard_bits) / SHARD_OBJECTS_MIN < max_object)
        s->shard_bits--;
    s->nshards = (size_t)1 << s->shard_bits;
    per_shard = memory >> s->shard_bits;
    s->budget = memory;
    s->max_object =
        per_shard / SHARD_OBJECTS_MIN < max_object ? per_shard / SHARD_OBJECTS_MIN : max_object;
    s->fill_timeout = fill_timeout;
    s->shards = aligned_alloc(CACHE_LINE, s->nshards * sizeof *s->shards);
    if (!s->shards) {
        free(s);
        return NULL;
    }
    memset(s->shards, 0, s->nshards * sizeof *s->shards);
    for (; s->ready < s->nshards; s->ready++) {
        if ((err = shard_init(&s->shards[s->ready], per_shard)) != 0) {
            cache_store_free(s);
            errno = err;
            return NULL;
        }
    }
    return s;
}

void cache_store_free(struct cache_store *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->ready; i++) {
        struct shard *sh = &s->shards[i];

        while (sh->oldest)
            entry_remove(sh, sh->oldest);
        pthread_rwlock_destroy(&sh->lock);
        free(sh->buckets);
    }
    free(s->shards);
    free(s);
}
