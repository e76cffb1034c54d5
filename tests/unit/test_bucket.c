#include <math.h>
#include <stdint.h>

#include "bucket.h"
#include "test.h"

#define SEC 1000000ull /* microseconds */

static struct bucket_params params(double per_second, uint64_t burst)
{
    struct bucket_params p = {0, 0};

    CHECK_INT(bucket_params_init(&p, per_second, burst), 0);
    return p;
}

/* Takes `cost` and checks the whole result. */
static void expect(struct bucket_state *s, const struct bucket_params *p, uint64_t now,
                   unsigned cost, bool allowed, uint64_t remaining, uint64_t reset,
                   uint64_t retry_after)
{
    struct bucket_result r = {9, 9, 9, 9};

    CHECK_INT(bucket_take(s, p, now, cost, &r), allowed);
    CHECK_INT(r.limit, p->burst);
    CHECK_INT(r.remaining, remaining);
    CHECK_INT(r.reset, reset);
    CHECK_INT(r.retry_after, retry_after);
}

static void test_params(void)
{
    struct bucket_params p = {7, 7};

    CHECK_INT(params(100, 200).per_hour, 360000);
    CHECK_INT(params(6000.0 / 60, 1).per_hour, 360000);
    CHECK_INT(params(50000.0 / 3600, 1).per_hour, 50000);
    CHECK_INT(params(1.0 / 3600, 1).per_hour, 1);
    CHECK_INT(params(1e6, 1).per_hour, 3600000000ull);
    CHECK_INT(params(BUCKET_RATE_MAX, BUCKET_BURST_MAX).per_hour, 3600000000000ull);
    CHECK_INT(params(1.0 / 7200, 1).per_hour, 1); /* half a token per hour rounds up */

    CHECK_INT(bucket_params_init(&p, 0, 1), -1);
    CHECK_INT(bucket_params_init(&p, -1, 1), -1);
    CHECK_INT(bucket_params_init(&p, NAN, 1), -1);
    CHECK_INT(bucket_params_init(&p, INFINITY, 1), -1);
    CHECK_INT(bucket_params_init(&p, 2e9, 1), -1);
    CHECK_INT(bucket_params_init(&p, 1.0 / 8000, 1), -1); /* rounds to 0/h */
    CHECK_INT(bucket_params_init(&p, 1, 0), -1);
    CHECK_INT(bucket_params_init(&p, 1, BUCKET_BURST_MAX + 1), -1);
    CHECK_INT(p.per_hour, 7); /* untouched on error */
    CHECK_INT(p.burst, 7);
}

static void test_first_use_and_drain(void)
{
    struct bucket_params p = params(10, 5);
    struct bucket_state s = {0, 0};

    /* All-zero state is a full bucket, whatever the clock says. */
    expect(&s, &p, 123 * SEC, 1, true, 4, 1, 0);
    expect(&s, &p, 123 * SEC, 1, true, 3, 1, 0);
    expect(&s, &p, 123 * SEC, 3, true, 0, 1, 0);
    /* Empty: one token is 0.1 s away, which rounds up to 1. */
    expect(&s, &p, 123 * SEC, 1, false, 0, 1, 1);
    CHECK_INT(bucket_full_at(&s, &p), 123 * SEC + SEC / 2);
}

static void test_refill(void)
{
    struct bucket_params p = params(1, 10);
    struct bucket_state s = {0, 0};

    expect(&s, &p, 0, 10, true, 0, 10, 0);
    expect(&s, &p, SEC / 2, 1, false, 0, 10, 1);
    /* 2.5 tokens back; one taken leaves 1.5: 1 whole, 8.5 s (-> 9) to full. */
    expect(&s, &p, SEC * 5 / 2, 1, true, 1, 9, 0);
    expect(&s, &p, SEC * 5 / 2, 2, false, 1, 9, 1);
    CHECK_INT(bucket_full_at(&s, &p), 11 * SEC);
    /* Refill stops at the burst. */
    expect(&s, &p, 1000 * SEC, 0, true, 10, 0, 0);
    expect(&s, &p, 1000 * SEC, 1, true, 9, 1, 0);
}

/* Fractional periods add up with no drift: at 3/s, polled every
 * microsecond for 10 s, the burst plus exactly 30 tokens, the 30th at
 * 10 s. (With a burst of 1 the sub-microsecond overflow of each refill
 * would be capped away, as a token bucket should.) */
static void test_no_drift(void)
{
    struct bucket_params p = params(3, 2);
    struct bucket_state s = {0, 0};
    struct bucket_result r;
    uint64_t allowed = 0, t;

    for (t = 0; t < 10 * SEC; t++)
        allowed += bucket_take(&s, &p, t, 1, &r);
    CHECK_INT(allowed, 2 + 29);
    CHECK(bucket_take(&s, &p, 10 * SEC, 1, &r));
    CHECK(!bucket_take(&s, &p, 10 * SEC, 1, &r));

    /* 7/m for an hour, polled every millisecond. */
    p = params(7.0 / 60, 2);
    s = (struct bucket_state){0, 0};
    allowed = 0;
    for (t = 0; t <= 3600 * SEC; t += 1000)
        allowed += bucket_take(&s, &p, t, 1, &r);
    CHECK_INT(allowed, 2 + 7 * 60);
}

static void test_clock_backwards(void)
{
    struct bucket_params p = params(1, 10);
    struct bucket_state s = {0, 0};

    expect(&s, &p, 10 * SEC, 10, true, 0, 10, 0);
    /* 5 s in the past: nothing added, nothing negative; the waits count
     * from the reading we are given. */
    expect(&s, &p, 5 * SEC, 1, false, 0, 15, 6);
    CHECK_INT(s.last_us, 10 * SEC);
    expect(&s, &p, 0, 1, false, 0, 20, 11);
    expect(&s, &p, 10 * SEC + SEC / 2, 1, false, 0, 10, 1);
    expect(&s, &p, 11 * SEC, 1, true, 0, 10, 0);

    /* Back and forth refills an interval once only. */
    expect(&s, &p, 13 * SEC, 1, true, 1, 9, 0);
    expect(&s, &p, 12 * SEC, 1, true, 0, 11, 0);
    expect(&s, &p, 13 * SEC, 1, false, 0, 10, 1);

    /* The clock at its end, then back at 0. */
    s = (struct bucket_state){0, 0};
    expect(&s, &p, UINT64_MAX, 10, true, 0, 10, 0);
    expect(&s, &p, 0, 1, false, 0, UINT64_MAX / SEC + 1, UINT64_MAX / SEC + 1);
}

static void test_huge_gaps(void)
{
    struct bucket_params p = params(1e6, BUCKET_BURST_MAX);
    struct bucket_state s = {0, 0};

    expect(&s, &p, 1, 1000000000u, true, 0, 1000, 0);
    expect(&s, &p, UINT64_MAX, 1, true, BUCKET_BURST_MAX - 1, 1, 0);

    p = params(BUCKET_RATE_MAX, BUCKET_BURST_MAX);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, 0, 1000000000u, true, 0, 1, 0);
    expect(&s, &p, UINT64_MAX, 0, true, BUCKET_BURST_MAX, 0, 0);

    /* The slowest rate and the largest burst: 1e9 hours to full, which is
     * past the end of the clock when drained near its end. */
    p = params(1.0 / 3600, BUCKET_BURST_MAX);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, 0, 1000000000u, true, 0, 3600000000000ull, 0);
    /* 1000.5 tokens back, one taken. */
    expect(&s, &p, 3601800 * SEC, 1, true, 999, 3600000000000ull - 3598200, 0);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, UINT64_MAX - SEC, 1000000000u, true, 0, 3600000000000ull, 0);
    CHECK(bucket_full_at(&s, &p) == UINT64_MAX);
}

static void test_extreme_rates(void)
{
    struct bucket_params p = params(1.0 / 3600, 1);
    struct bucket_state s = {0, 0};

    expect(&s, &p, 0, 1, true, 0, 3600, 0);
    expect(&s, &p, 1799 * SEC + SEC / 2, 1, false, 0, 1801, 1801);
    expect(&s, &p, 3600 * SEC - 1, 1, false, 0, 1, 1);
    expect(&s, &p, 3600 * SEC, 1, true, 0, 3600, 0);

    p = params(1e6, 100);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, 5, 100, true, 0, 1, 0);
    expect(&s, &p, 5, 1, false, 0, 1, 1);
    expect(&s, &p, 6, 1, true, 0, 1, 0);
    expect(&s, &p, 106, 0, true, 100, 0, 0);
}

static void test_cost_above_burst(void)
{
    struct bucket_params p = params(1, 5);
    struct bucket_state s = {0, 0};

    /* Never possible: come back when the bucket is full, at least 1 s. */
    expect(&s, &p, 0, 6, false, 5, 0, 1);
    expect(&s, &p, 0, 3, true, 2, 3, 0);
    expect(&s, &p, 0, 6, false, 2, 3, 3);
    expect(&s, &p, 0, UINT32_MAX, false, 2, 3, 3);
    /* Cost 0 asks without taking. */
    expect(&s, &p, SEC, 0, true, 3, 2, 0);
}

/* Retry-After and RateLimit-Reset are whole seconds, rounded up. */
static void test_rounding(void)
{
    struct bucket_params p = params(0.1, 1);
    struct bucket_state s = {0, 0};

    expect(&s, &p, 0, 1, true, 0, 10, 0);
    expect(&s, &p, 0, 1, false, 0, 10, 10);
    expect(&s, &p, SEC / 2, 1, false, 0, 10, 10);
    expect(&s, &p, SEC, 1, false, 0, 9, 9);
    expect(&s, &p, 9 * SEC, 1, false, 0, 1, 1);
    expect(&s, &p, 10 * SEC - 1, 1, false, 0, 1, 1);
    expect(&s, &p, 10 * SEC, 1, true, 0, 10, 0);

    /* 3/s: the three tokens come back in exactly 1 s, not 2. */
    p = params(3, 3);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, 0, 3, true, 0, 1, 0);
    expect(&s, &p, SEC, 0, true, 3, 0, 0);

    /* 2/m: 30 s per token, and still 30 a microsecond later. */
    p = params(2.0 / 60, 2);
    s = (struct bucket_state){0, 0};
    expect(&s, &p, 0, 1, true, 1, 30, 0);
    expect(&s, &p, 1, 2, false, 1, 30, 30);
    expect(&s, &p, 30 * SEC + 1, 2, true, 0, 60, 0);
}

/* A reload may shrink the burst under a live bucket: it is empty, not
 * negative. */
static void test_burst_shrinks(void)
{
    struct bucket_params big = params(1, 100), small = params(1, 10);
    struct bucket_state s = {0, 0};

    expect(&s, &big, 0, 50, true, 50, 50, 0);
    expect(&s, &small, 0, 1, false, 0, 10, 1);
    expect(&s, &small, 3 * SEC, 1, true, 2, 8, 0);
}

int main(void)
{
    RUN(test_params);
    RUN(test_first_use_and_drain);
    RUN(test_refill);
    RUN(test_no_drift);
    RUN(test_clock_backwards);
    RUN(test_huge_gaps);
    RUN(test_extreme_rates);
    RUN(test_cost_above_burst);
    RUN(test_rounding);
    RUN(test_burst_shrinks);
    return TEST_REPORT();
}
