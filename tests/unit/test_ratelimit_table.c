#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bucket.h"
#include "ratelimit_table.h"
#include "test.h"

#define SEC 1000000ull /* microseconds */

/* Sanitizers slow the table down 5-20x: the flood shrinks to stay quick. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define FLOOD_KEYS 1000000u
#define EVICTING_KEYS 40000u
#define BENCH_OPS 25000u
#else
#define FLOOD_KEYS 10000000u
#define EVICTING_KEYS 400000u
#define BENCH_OPS 250000u
#endif
#define BUSY_EVERY (FLOOD_KEYS / 10000)
#define FLOOD_FULL 200000u /* keys after which the table is surely full */

static struct bucket_params params(double per_second, uint64_t burst)
{
    struct bucket_params p = {0, 0};

    CHECK_INT(bucket_params_init(&p, per_second, burst), 0);
    return p;
}

static bool take(struct rl_table *t, uint32_t policy, const char *key, size_t len,
                 const struct bucket_params *p, uint64_t now, unsigned cost)
{
    struct bucket_result r;

    return rl_table_take(t, policy, key, len, p, now, cost, &r);
}

/* Tokens left, asked with cost 0 (which touches the entry). */
static uint64_t remaining(struct rl_table *t, uint32_t policy, const void *key, size_t len,
                          const struct bucket_params *p, uint64_t now)
{
    struct bucket_result r;

    rl_table_take(t, policy, key, len, p, now, 0, &r);
    return r.remaining;
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec / 1000;
}

static size_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void test_new(void)
{
    struct rl_table *t;

    errno = 0;
    CHECK(rl_table_new(0) == NULL);
    CHECK_INT(errno, EINVAL);
    CHECK(rl_table_new(RL_TABLE_MAX_ENTRIES + 1) == NULL);
    CHECK_INT(errno, EINVAL);

    t = rl_table_new(1);
    CHECK(t != NULL);
    CHECK_INT(rl_table_capacity(t), 1);
    CHECK_INT(rl_table_count(t), 0);
    rl_table_free(t);

    /* 64 shards: 100000 / 64 rounds down to 1562 each. */
    t = rl_table_new(100000);
    CHECK_INT(rl_table_capacity(t), 99968);
    CHECK(rl_table_bytes(t) < 100000 * 96 + 16384);
    rl_table_free(t);

    /* A memory budget holds. */
    t = rl_table_new(rl_table_entries_for(8 << 20));
    CHECK(rl_table_bytes(t) <= 8 << 20);
    CHECK(rl_table_capacity(t) > (8 << 20) / 100);
    rl_table_free(t);
    CHECK_INT(rl_table_entries_for(100), 0);
    rl_table_free(NULL);
}

static void test_keys(void)
{
    struct rl_table *t = rl_table_new(1000);
    struct bucket_params p = params(1.0 / 3600, 3);
    char long_a[300], long_b[300], inline_max[RL_KEY_INLINE], just_over[RL_KEY_INLINE + 1];

    memset(long_a, 'a', sizeof long_a);
    memcpy(long_b, long_a, sizeof long_b);
    long_b[299] = 'b';
    memset(inline_max, 'k', sizeof inline_max);
    memset(just_over, 'k', sizeof just_over);

    CHECK(take(t, 1, "10.0.0.1", 8, &p, 0, 2));
    CHECK_INT(remaining(t, 1, "10.0.0.1", 8, &p, 0), 1);
    /* Another policy, another key, a prefix of the key: other buckets. */
    CHECK_INT(remaining(t, 2, "10.0.0.1", 8, &p, 0), 3);
    CHECK_INT(remaining(t, 1, "10.0.0.2", 8, &p, 0), 3);
    CHECK_INT(remaining(t, 1, "10.0.0.1", 7, &p, 0), 3);
    CHECK_INT(remaining(t, 1, "", 0, &p, 0), 3);
    CHECK(take(t, 1, NULL, 0, &p, 0, 1));
    CHECK_INT(remaining(t, 1, "", 0, &p, 0), 2);

    /* Long keys: same bytes, same bucket; one byte apart, or a length
     * apart, another. */
    CHECK(take(t, 1, long_a, sizeof long_a, &p, 0, 3));
    CHECK(!take(t, 1, long_a, sizeof long_a, &p, 0, 1));
    CHECK_INT(remaining(t, 1, long_b, sizeof long_b, &p, 0), 3);
    CHECK_INT(remaining(t, 1, long_a, sizeof long_a - 1, &p, 0), 3);
    CHECK(take(t, 1, inline_max, sizeof inline_max, &p, 0, 1));
    CHECK_INT(remaining(t, 1, inline_max, sizeof inline_max, &p, 0), 2);
    CHECK_INT(remaining(t, 1, just_over, sizeof just_over, &p, 0), 3);
    CHECK(take(t, 1, just_over, sizeof just_over, &p, 0, 3));
    CHECK_INT(remaining(t, 1, just_over, sizeof just_over, &p, 0), 0);
    CHECK_INT(remaining(t, 1, inline_max, sizeof inline_max, &p, 0), 2);

    /* Each distinct (policy, key) above holds one entry. */
    CHECK_INT(rl_table_count(t), 10);
    rl_table_free(t);
}

/* In a one-shard table of 8: keys 0-7 in order. */
static struct rl_table *table_of_eight(const struct bucket_params *p)
{
    struct rl_table *t = rl_table_new(8);
    char k;

    CHECK_INT(rl_table_capacity(t), 8);
    for (k = '0'; k < '8'; k++)
        CHECK(take(t, 1, &k, 1, p, 0, 1));
    CHECK_INT(rl_table_count(t), 8);
    return t;
}

/* A bucket that is full again is forgotten before any that is not, even
 * one that has not been touched since. */
static void test_evicts_full_first(void)
{
    struct bucket_params slow = params(1.0 / 3600, 10), fast = params(1e6, 10);
    struct rl_table *t = table_of_eight(&slow);
    char k = '5', fresh = 'x';

    /* Key 5 again, at a rate that has it full a microsecond later. */
    CHECK(take(t, 1, &k, 1, &fast, 0, 1));
    CHECK(take(t, 1, &fresh, 1, &slow, SEC, 1));
    CHECK_INT(rl_table_count(t), 8);
    for (k = '0'; k < '8'; k++)
        if (k != '5') CHECK_INT(remaining(t, 1, &k, 1, &slow, SEC), 9);
    CHECK_INT(remaining(t, 1, &fresh, 1, &slow, SEC), 9);
    rl_table_free(t);
}

/* With nothing full, CLOCK: keys touched again (0-3) outlive keys seen
 * once (4-7), whose places go to the newcomers in order. */
static void test_clock(void)
{
    struct bucket_params p = params(1.0 / 3600, 10);
    struct rl_table *t = table_of_eight(&p);
    char k;

    for (k = '0'; k < '4'; k++)
        CHECK(take(t, 1, &k, 1, &p, 0, 1));
    for (k = 'a'; k < 'c'; k++)
        CHECK(take(t, 1, &k, 1, &p, 0, 1));
    for (k = '0'; k < '4'; k++)
        CHECK_INT(remaining(t, 1, &k, 1, &p, 0), 8);
    for (k = '6'; k < '8'; k++)
        CHECK_INT(remaining(t, 1, &k, 1, &p, 0), 9);
    CHECK_INT(rl_table_count(t), 8);
    rl_table_free(t);
}

/* --------------------------------------------------- exactness in threads */

#define HAMMER_THREADS 4
#define HAMMER_STEP_US 19997 /* prime: readings fall anywhere between tokens */

struct hammer {
    struct rl_table *t;
    struct bucket_params p;
    _Atomic uint64_t now;      /* the simulated clock */
    _Atomic uint64_t attempts; /* by all threads */
    atomic_bool done;          /* set after the clock's last step */
    uint64_t allowed[HAMMER_THREADS];
};

struct hammer_arg {
    struct hammer *h;
    int id;
};

static void *hammer_thread(void *arg)
{
    struct hammer_arg *a = arg;
    struct hammer *h = a->h;
    struct bucket_result r;

    for (;;) {
        bool last_round = atomic_load(&h->done);
        uint64_t now = atomic_load(&h->now);
        bool ok = rl_table_take(h->t, 7, "one-key", 7, &h->p, now, 1, &r);

        h->allowed[a->id] += ok;
        atomic_fetch_add(&h->attempts, 1);
        if (last_round && !ok) return NULL;
    }
}

/* HAMMER_THREADS threads on one key while the clock advances to `seconds`
 * in steps of HAMMER_STEP_US, each step waiting for enough attempts that
 * the bucket stays drained (a bucket left to fill up to its burst would
 * lose tokens, as it should). Allowed, in total: the burst plus rate *
 * time, exactly. */
static void hammer(double rate, uint64_t burst, uint64_t seconds)
{
    static struct hammer h;
    struct hammer_arg args[HAMMER_THREADS];
    pthread_t threads[HAMMER_THREADS];
    uint64_t now = 0, total = 0, per_step = 8 + 2 * (uint64_t)(rate * HAMMER_STEP_US / SEC);
    int i;

    memset(&h, 0, sizeof h);
    h.t = rl_table_new(1000);
    h.p = params(rate, burst);
    for (i = 0; i < HAMMER_THREADS; i++) {
        args[i] = (struct hammer_arg){&h, i};
        pthread_create(&threads[i], NULL, hammer_thread, &args[i]);
    }
    while (now < seconds * SEC) {
        uint64_t seen = atomic_load(&h.attempts);

        while (atomic_load(&h.attempts) < seen + per_step)
            sched_yield();
        now = now + HAMMER_STEP_US < seconds * SEC ? now + HAMMER_STEP_US : seconds * SEC;
        atomic_store(&h.now, now);
    }
    atomic_store(&h.done, true);
    for (i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(threads[i], NULL);
        total += h.allowed[i];
    }
    CHECK_INT(total, burst + (uint64_t)(rate * (double)seconds + 0.5));
    rl_table_free(h.t);
}

static void test_exact_across_threads(void)
{
    hammer(1000, 50, 5);
    hammer(7, 5, 10); /* a period of 142857.14 us */
}

/* ----------------------------------------------------------------- flood */

/* FLOOD_KEYS distinct 16-byte keys (IPv6 addresses, say) against a table of
 * 100k, at a rate so slow that no bucket is ever full again: every insert
 * past the first 100k evicts by CLOCK. Meanwhile one busy key is taken
 * 10000 times with a burst of 1000; it must never be forgotten (which
 * would refill it). */
static void test_flood(void)
{
    struct bucket_params p = params(1.0 / 3600, 1000);
    struct rl_table *t;
    size_t rss_start = rss_bytes(), rss_full = 0, peak = 0;
    uint64_t i, busy_allowed = 0, start = monotonic_us();
    uint8_t key[16] = {0x20, 0x01, 0x0d, 0xb8};

    t = rl_table_new(100000);
    for (i = 0; i < FLOOD_KEYS; i++) {
        memcpy(key + 8, &i, sizeof i);
        take(t, 1, (const char *)key, sizeof key, &p, i, 1);
        if (i % BUSY_EVERY == 0) busy_allowed += take(t, 1, "busy", 4, &p, i, 1);
        if (i == FLOOD_FULL) rss_full = rss_bytes();
        if (i % 100000 == 0 && rl_table_count(t) > peak) peak = rl_table_count(t);
    }
    start = monotonic_us() - start;
    CHECK_INT(busy_allowed, 1000);
    CHECK(peak <= rl_table_capacity(t));
    CHECK_INT(rl_table_count(t), rl_table_capacity(t));
    /* Resident memory: no growth once the table is full, and (but for a
     * sanitizer's shadow memory) the table's size and some slack. */
    CHECK(rss_bytes() <= rss_full + (64 << 10));
#ifndef SANITIZED
    CHECK(rss_full - rss_start <= rl_table_bytes(t) + (1 << 20));
#endif
    fprintf(stderr,
            "flood: %u keys into %zu entries (%zu KiB) in %.2f s, %.0f ns/key; RSS +%zu KiB "
            "after %u keys, then %+zd KiB\n",
            FLOOD_KEYS, rl_table_capacity(t), rl_table_bytes(t) >> 10, (double)start / 1e6,
            (double)start * 1000 / FLOOD_KEYS, (rss_full - rss_start) >> 10, FLOOD_FULL,
            ((ssize_t)rss_bytes() - (ssize_t)rss_full) / 1024);
    rl_table_free(t);
}

/* Two threads flooding a small table, each with a busy key of its own:
 * eviction under concurrency, with the same exactness. The threads keep
 * in step (neither more than EVICTING_LEAD keys ahead): a thread that is
 * descheduled for a while leaves its busy key idle, and a key idle while
 * more keys than the table holds come in is rightly forgotten. */
#define EVICTING_LEAD 100

struct evicting {
    struct rl_table *t;
    struct bucket_params p;
    uint32_t id;
    uint64_t busy_allowed;
    _Atomic uint32_t *progress; /* of both threads */
};

static void keep_in_step(struct evicting *e, uint32_t done)
{
    _Atomic uint32_t *other = &e->progress[1 - e->id];

    atomic_store(&e->progress[e->id], done);
    while (done > atomic_load(other) + EVICTING_LEAD && atomic_load(other) < EVICTING_KEYS)
        sched_yield();
}

static void *evicting_thread(void *arg)
{
    struct evicting *e = arg;
    uint32_t key[2] = {e->id, 0}, busy[2] = {e->id, UINT32_MAX};
    struct bucket_result r;

    for (key[1] = 0; key[1] < EVICTING_KEYS; key[1]++) {
        keep_in_step(e, key[1]);
        rl_table_take(e->t, 1, key, sizeof key, &e->p, key[1], 1, &r);
        if (key[1] % (EVICTING_KEYS / 2000) == 0)
            e->busy_allowed += rl_table_take(e->t, 1, busy, sizeof busy, &e->p, key[1], 1, &r);
    }
    atomic_store(&e->progress[e->id], EVICTING_KEYS);
    return NULL;
}

static void test_threads_evicting(void)
{
    struct rl_table *t = rl_table_new(4096);
    _Atomic uint32_t progress[2] = {0, 0};
    struct evicting e[2];
    pthread_t threads[2];
    int i;

    for (i = 0; i < 2; i++) {
        e[i] = (struct evicting){t, params(1.0 / 3600, 500), (uint32_t)i, 0, progress};
        pthread_create(&threads[i], NULL, evicting_thread, &e[i]);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(e[i].busy_allowed, 500);
    }
    CHECK_INT(rl_table_count(t), rl_table_capacity(t));
    rl_table_free(t);
}

/* ----------------------------------------------------------- contention */

#define BENCH_KEYS 4096

enum bench_mode {
    DISTINCT_KEYS, /* each thread its own 4096 keys, in one table */
    ONE_KEY,       /* every thread the same key */
    OWN_TABLES,    /* as DISTINCT_KEYS, a table per thread: nothing shared */
};

struct bench {
    struct rl_table *t;
    struct bucket_params p;
    uint32_t id;
    enum bench_mode mode;
};

static void *bench_thread(void *arg)
{
    struct bench *b = arg;
    struct bucket_result r;
    uint32_t key[2] = {b->mode == ONE_KEY ? 0 : b->id, 0};
    uint32_t i;

    for (i = 0; i < BENCH_OPS; i++) {
        if (b->mode != ONE_KEY) key[1] = i % BENCH_KEYS;
        rl_table_take(b->t, 1, key, sizeof key, &b->p, i, 1, &r);
    }
    return NULL;
}

/* Operations per second, all threads together. */
static double bench_once(int nthreads, enum bench_mode mode)
{
    struct rl_table *tables[2] = {rl_table_new(16384), rl_table_new(16384)};
    struct bench b[2];
    pthread_t threads[2];
    uint64_t start = monotonic_us();
    int i;

    for (i = 0; i < nthreads; i++) {
        b[i] =
            (struct bench){tables[mode == OWN_TABLES ? i : 0], params(1e6, 100), (uint32_t)i, mode};
        pthread_create(&threads[i], NULL, bench_thread, &b[i]);
    }
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    start = monotonic_us() - start;
    rl_table_free(tables[0]);
    rl_table_free(tables[1]);
    return (double)nthreads * BENCH_OPS * 1e6 / (double)start;
}

/* The best of three: the machine may be busy with something else. */
static double bench(int nthreads, enum bench_mode mode)
{
    double best = 0, ops;
    int i;

    for (i = 0; i < 3; i++)
        if ((ops = bench_once(nthreads, mode)) > best) best = ops;
    return best / 1e6;
}

/* A figure, not a check: what sharing one table costs on this machine. */
static void test_contention(void)
{
    double one = bench(1, DISTINCT_KEYS), two = bench(2, DISTINCT_KEYS);
    double own = bench(2, OWN_TABLES), one_key = bench(1, ONE_KEY), two_one_key = bench(2, ONE_KEY);

    CHECK(one > 0 && two > 0 && own > 0 && one_key > 0 && two_one_key > 0);
    fprintf(stderr,
            "contention (%ld CPUs, Mops/s, best of 3): distinct keys %.1f with 1 thread, %.1f "
            "with 2 (a table each: %.1f); one key %.1f with 1 thread, %.1f with 2\n",
            sysconf(_SC_NPROCESSORS_ONLN), one, two, own, one_key, two_one_key);
}

int main(void)
{
    RUN(test_new);
    RUN(test_keys);
    RUN(test_evicts_full_first);
    RUN(test_clock);
    RUN(test_exact_across_threads);
    RUN(test_flood);
    RUN(test_threads_evicting);
    RUN(test_contention);
    return TEST_REPORT();
}
