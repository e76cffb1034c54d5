/* Balancers: smooth weighted round robin and the consistent-hash ring. */
#include <stdio.h>
#include <string.h>

#include "balance.h"
#include "test.h"

static bool all_usable(void *arg, size_t i)
{
    (void)arg;
    (void)i;
    return true;
}

static bool not_this(void *arg, size_t i)
{
    return i != *(size_t *)arg;
}

static void test_wrr_spreads_by_weight(void)
{
    unsigned weights[3] = {5, 1, 1};
    int64_t current[3] = {0};
    int counts[3] = {0}, seq[7];

    for (int i = 0; i < 7; i++) {
        seq[i] = wrr_pick(weights, current, 3, all_usable, NULL);
        counts[seq[i]]++;
    }
    CHECK_INT(counts[0], 5);
    CHECK_INT(counts[1], 1);
    CHECK_INT(counts[2], 1);
    /* Smooth: nginx's sequence for 5,1,1 is a a b a c a a. */
    CHECK_INT(seq[0], 0);
    CHECK_INT(seq[1], 0);
    CHECK_INT(seq[2], 1);
    CHECK_INT(seq[3], 0);
    CHECK_INT(seq[4], 2);
    CHECK_INT(seq[5], 0);
    CHECK_INT(seq[6], 0);
}

static void test_wrr_skips_vetoed(void)
{
    unsigned weights[2] = {1, 1};
    int64_t current[2] = {0};
    size_t down = 0;

    for (int i = 0; i < 10; i++)
        CHECK_INT(wrr_pick(weights, current, 2, not_this, &down), 1);
}

static const char *names4[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"};

static void test_ring_distribution(void)
{
    unsigned weights[4] = {1, 1, 1, 1};
    struct hash_ring ring;
    int counts[4] = {0};
    char key[32];

    CHECK_INT(hash_ring_build(&ring, names4, weights, 4), 0);
    CHECK_INT(ring.n_points, 4 * RING_POINTS_PER_WEIGHT);
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof(key), "user-%d", i);
        counts[hash_ring_pick(&ring, key, (size_t)n, all_usable, NULL)]++;
    }
    for (int e = 0; e < 4; e++) /* each near 25 % */
        CHECK(counts[e] > 20000 && counts[e] < 30000);
    hash_ring_free(&ring);
}

/* Adding a fifth endpoint moves about 1/5 of the keys, all to the new one. */
static void test_ring_key_movement(void)
{
    const char *names5[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80",
                            "10.0.0.5:80"};
    unsigned weights[5] = {1, 1, 1, 1, 1};
    struct hash_ring four, five;
    int moved = 0, moved_elsewhere = 0, keys = 100000;
    char key[32];

    hash_ring_build(&four, names4, weights, 4);
    hash_ring_build(&five, names5, weights, 5);
    for (int i = 0; i < keys; i++) {
        int n = snprintf(key, sizeof(key), "session-%d", i);
        int a = hash_ring_pick(&four, key, (size_t)n, all_usable, NULL);
        int b = hash_ring_pick(&five, key, (size_t)n, all_usable, NULL);
        if (a != b) {
            moved++;
            moved_elsewhere += b != 4;
        }
    }
    fprintf(stderr, "4 -> 5 endpoints: %.1f %% of keys moved\n", 100.0 * moved / keys);
    CHECK(moved < keys * (1.0 / 5 + 0.05));
    CHECK(moved > keys * (1.0 / 5 - 0.05));
    CHECK_INT(moved_elsewhere, 0);
    hash_ring_free(&four);
    hash_ring_free(&five);
}

static void test_ring_skips_vetoed_and_weights(void)
{
    unsigned weights[2] = {3, 1};
    struct hash_ring ring;
    int counts[2] = {0};
    size_t down = 0;
    char key[32];

    hash_ring_build(&ring, names4, weights, 2);
    for (int i = 0; i < 40000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        counts[hash_ring_pick(&ring, key, (size_t)n, all_usable, NULL)]++;
        CHECK(hash_ring_pick(&ring, key, (size_t)n, not_this, &down) == 1);
    }
    CHECK(counts[0] > 27000 && counts[0] < 33000); /* ~75 % */
    hash_ring_free(&ring);
}

int main(void)
{
    RUN(test_wrr_spreads_by_weight);
    RUN(test_wrr_skips_vetoed);
    RUN(test_ring_distribution);
    RUN(test_ring_key_movement);
    RUN(test_ring_skips_vetoed_and_weights);
    return TEST_REPORT();
}
