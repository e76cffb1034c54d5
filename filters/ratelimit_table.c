/* The shared table of local buckets (see ratelimit_table.h).
 *
 * Each shard owns a fixed array of entries and an open-addressing index
 * over them (linear probing, at most two thirds full): a slot holds 32 bits
 * of the entry's hash and its index + 1 (0 for an empty slot), so a probe
 * reads one or two cache lines of slots and touches an entry only when
 * those 32 bits match. Entries are never freed: until a shard is full
 * it hands out the next unused one, after that it reuses one chosen by
 * evict(). The hash is computed before the lock is taken; under it there
 * is one probe, the bucket arithmetic, and on a miss in a full shard a
 * short sweep. */
#include "ratelimit_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"

#define SHARD_BITS_MAX 6 /* 64 shards */
#define SHARD_MIN_ENTRIES 64
#define EVICT_LOOKAHEAD 8
#define CACHE_LINE 64

struct entry {
    uint64_t hash; /* SipHash-1-3 of (policy, key) under seed[0..1] */
    uint32_t policy;
    uint16_t key_len;   /* saturated: longer keys differ by their hash */
    uint8_t referenced; /* CLOCK: touched since the hand last passed */
    struct bucket_state bucket;
    uint64_t full_at_us; /* from then on the bucket carries no information */
    /* The key, or when longer than RL_KEY_INLINE its hash under seed[2..3]
     * (a byte array rather than a union keeps the entry at 80 bytes). */
    uint8_t key[RL_KEY_INLINE];
};

struct slot {
    uint32_t hash;  /* the entry's, low half: its home slot, and a tag */
    uint32_t entry; /* index + 1; 0 for an empty slot */
};

struct shard {
    _Alignas(CACHE_LINE) pthread_mutex_t lock;
    struct entry *entries;
    struct slot *slots;
    uint32_t nslots;
    uint32_t cap;
    uint32_t used;
    uint32_t hand; /* CLOCK */
};

struct rl_table {
    uint64_t seed[4];
    unsigned shard_bits;
    size_t nshards;
    size_t ready; /* shards initialized, for rl_table_free() on a failed new */
    struct shard *shards;
};

/* One lookup's key, hashed outside the lock. */
struct probe {
    uint64_t hash, hash2;
    const void *key;
    size_t len;
    uint32_t policy;
};

/* ----------------------------------------------------------------- Lookup */

static void probe_init(const struct rl_table *t, struct probe *q, uint32_t policy, const void *key,
                       size_t len)
{
    q->policy = policy;
    q->key = key;
    q->len = len;
    q->hash = siphash13_prefixed(&t->seed[0], policy, key, len);
    q->hash2 = len > RL_KEY_INLINE ? siphash13_prefixed(&t->seed[2], policy, key, len) : 0;
}

static uint16_t saturated_len(size_t len)
{
    return len > UINT16_MAX ? UINT16_MAX : (uint16_t)len;
}

static bool entry_matches(const struct entry *e, const struct probe *q)
{
    if (e->hash != q->hash || e->policy != q->policy) return false;
    if (e->key_len != saturated_len(q->len)) return false;
    if (q->len > RL_KEY_INLINE) return memcmp(e->key, &q->hash2, sizeof q->hash2) == 0;
    return q->len == 0 || memcmp(e->key, q->key, q->len) == 0;
}

static struct shard *shard_of(const struct rl_table *t, uint64_t hash)
{
    /* The top bits pick the shard, the low half the slot. */
    return &t->shards[t->shard_bits ? hash >> (64 - t->shard_bits) : 0];
}

/* Scales the 32 bits to [0, nslots) with a multiply: nslots need not be a
 * power of two, so the index can be sized to the entries it holds. */
static uint32_t home_slot(const struct shard *sh, uint32_t hash)
{
    return (uint32_t)(((uint64_t)hash * sh->nslots) >> 32);
}

static uint32_t slot_next(const struct shard *sh, uint32_t i)
{
    return i + 1 == sh->nslots ? 0 : i + 1;
}

/* Slots from `from` forward to `to`, wrapping around. */
static uint32_t slot_distance(const struct shard *sh, uint32_t from, uint32_t to)
{
    return to >= from ? to - from : to + sh->nslots - from;
}

/* The slot holding the entry, or the empty slot where it would go. */
static uint32_t probe_slot(const struct shard *sh, const struct probe *q)
{
    uint32_t i;

    for (i = home_slot(sh, (uint32_t)q->hash); sh->slots[i].entry; i = slot_next(sh, i)) {
        const struct slot *s = &sh->slots[i];

        if (s->hash == (uint32_t)q->hash && entry_matches(&sh->entries[s->entry - 1], q)) break;
    }
    return i;
}

/* Empties the slot of entries[index], then moves back the slots after it
 * that may (backward-shift deletion: no tombstones, probes stay short). */
static void unlink_entry(struct shard *sh, uint32_t index)
{
    uint32_t hole = home_slot(sh, (uint32_t)sh->entries[index].hash), i;

    while (sh->slots[hole].entry != index + 1)
        hole = slot_next(sh, hole);
    for (i = slot_next(sh, hole); sh->slots[i].entry; i = slot_next(sh, i)) {
        uint32_t home = home_slot(sh, sh->slots[i].hash);

        /* Movable when the hole lies between its home and where it is. */
        if (slot_distance(sh, home, i) >= slot_distance(sh, hole, i)) {
            sh->slots[hole] = sh->slots[i];
            hole = i;
        }
    }
    sh->slots[hole].entry = 0;
}

static uint32_t clock_next(const struct shard *sh, uint32_t i)
{
    return i + 1 == sh->cap ? 0 : i + 1;
}

/* A full bucket carries no information: the first near the hand, if any. */
static bool find_full(const struct shard *sh, uint64_t now_us, uint32_t *index)
{
    uint32_t i = sh->hand, n;

    for (n = 0; n < EVICT_LOOKAHEAD && n < sh->cap; n++, i = clock_next(sh, i)) {
        if (sh->entries[i].full_at_us <= now_us) {
            *index = i;
            return true;
        }
    }
    return false;
}

/* CLOCK: the first entry the hand finds untouched since its last pass,
 * clearing the marks it passes. Ends within one turn, when every mark is
 * cleared. */
static uint32_t clock_sweep(struct shard *sh)
{
    uint32_t i;

    for (i = sh->hand; sh->entries[i].referenced; i = clock_next(sh, i))
        sh->entries[i].referenced = 0;
    sh->hand = clock_next(sh, i);
    return i;
}

static uint32_t evict(struct shard *sh, uint64_t now_us)
{
    uint32_t i;

    if (!find_full(sh, now_us, &i)) i = clock_sweep(sh);
    unlink_entry(sh, i);
    return i;
}

static struct entry *insert(struct shard *sh, const struct probe *q, uint64_t now_us)
{
    uint32_t i = sh->used < sh->cap ? sh->used++ : evict(sh, now_us);
    struct entry *e = &sh->entries[i];
    uint32_t slot = probe_slot(sh, q); /* again: evict() may have moved slots */

    /* A zero bucket is a full one; a new entry starts unmarked, so that a
     * key seen only once is the first to go. */
    memset(e, 0, sizeof *e);
    e->hash = q->hash;
    e->policy = q->policy;
    e->key_len = saturated_len(q->len);
    if (q->len > RL_KEY_INLINE)
        memcpy(e->key, &q->hash2, sizeof q->hash2);
    else if (q->len)
        memcpy(e->key, q->key, q->len);
    sh->slots[slot] = (struct slot){(uint32_t)q->hash, i + 1};
    return e;
}

bool rl_table_take(struct rl_table *t, uint32_t policy, const void *key, size_t key_len,
                   const struct bucket_params *p, uint64_t now_us, unsigned cost,
                   struct bucket_result *res)
{
    struct probe q;
    struct shard *sh;
    struct entry *e;
    uint32_t slot;
    bool allowed;

    probe_init(t, &q, policy, key, key_len);
    sh = shard_of(t, q.hash);
    pthread_mutex_lock(&sh->lock);
    slot = probe_slot(sh, &q);
    if (sh->slots[slot].entry) {
        e = &sh->entries[sh->slots[slot].entry - 1];
        e->referenced = 1;
    } else {
        e = insert(sh, &q, now_us);
    }
    allowed = bucket_take(&e->bucket, p, now_us, cost, res);
    e->full_at_us = bucket_full_at(&e->bucket, p);
    pthread_mutex_unlock(&sh->lock);
    return allowed;
}

/* -------------------------------------------------------------- Lifecycle */

static int shard_init(struct shard *sh, uint32_t cap)
{
    pthread_mutexattr_t attr;
    int err;

    sh->cap = cap;
    sh->nslots = cap + cap / 2 + 1; /* never full: a probe always ends */
    sh->entries = calloc(cap, sizeof *sh->entries);
    sh->slots = calloc(sh->nslots, sizeof *sh->slots);
    if (!sh->entries || !sh->slots) {
        free(sh->entries);
        free(sh->slots);
        errno = ENOMEM;
        return -1;
    }
    /* Spins briefly before sleeping: the critical section is short. */
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    err = pthread_mutex_init(&sh->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (err) {
        free(sh->entries);
        free(sh->slots);
        errno = err;
        return -1;
    }
    return 0;
}

static unsigned shard_bits_for(size_t max_entries)
{
    unsigned bits = SHARD_BITS_MAX;

    /* Small tables get fewer shards, each still worth sweeping. */
    while (bits > 0 && (max_entries >> bits) < SHARD_MIN_ENTRIES)
        bits--;
    return bits;
}

struct rl_table *rl_table_new(size_t max_entries)
{
    struct rl_table *t;
    ssize_t got;
    size_t i;

    if (max_entries == 0 || max_entries > RL_TABLE_MAX_ENTRIES) {
        errno = EINVAL;
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    got = getrandom(t->seed, sizeof t->seed, 0);
    if (got != (ssize_t)sizeof t->seed) {
        if (got >= 0) errno = EIO;
        free(t);
        return NULL;
    }
    t->shard_bits = shard_bits_for(max_entries);
    t->nshards = (size_t)1 << t->shard_bits;
    t->shards = aligned_alloc(CACHE_LINE, t->nshards * sizeof *t->shards);
    if (!t->shards) {
        free(t);
        return NULL;
    }
    memset(t->shards, 0, t->nshards * sizeof *t->shards);
    for (i = 0; i < t->nshards; i++) {
        if (shard_init(&t->shards[i], (uint32_t)(max_entries >> t->shard_bits)) < 0) {
            rl_table_free(t);
            return NULL;
        }
        t->ready++;
    }
    return t;
}

void rl_table_free(struct rl_table *t)
{
    size_t i;

    if (!t) return;
    for (i = 0; i < t->ready; i++) {
        pthread_mutex_destroy(&t->shards[i].lock);
        free(t->shards[i].entries);
        free(t->shards[i].slots);
    }
    free(t->shards);
    free(t);
}

/* Upper bound per entry: the entry, and its one and a half slots (the
 * one more per shard counted as if per entry). */
static size_t bytes_per_entry(void)
{
    return sizeof(struct entry) + 2 * sizeof(struct slot);
}

size_t rl_table_entries_for(size_t budget)
{
    size_t fixed = sizeof(struct rl_table) + ((size_t)1 << SHARD_BITS_MAX) * sizeof(struct shard);

    return budget > fixed ? (budget - fixed) / bytes_per_entry() : 0;
}

size_t rl_table_count(struct rl_table *t)
{
    size_t i, n = 0;

    for (i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].used;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

size_t rl_table_capacity(const struct rl_table *t)
{
    return t->nshards * t->shards[0].cap;
}

size_t rl_table_bytes(const struct rl_table *t)
{
    const struct shard *sh = &t->shards[0];

    return sizeof *t + t->nshards * (sizeof *sh + sh->cap * sizeof(struct entry) +
                                     sh->nslots * sizeof(struct slot));
}
