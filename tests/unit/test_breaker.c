/* Circuit breaker state machine. */
#include "breaker.h"
#include "test.h"

static const struct breaker_params params = {.failures = 3, .open_for = 1000,
                                             .half_open_requests = 1};

static void test_opens_after_consecutive_failures(void)
{
    struct breaker b = {0};

    CHECK(breaker_allow(&b, &params, 0));
    CHECK_INT(breaker_failure(&b, &params, 0), -1);
    CHECK_INT(breaker_failure(&b, &params, 0), -1);
    CHECK_INT(breaker_success(&b), -1); /* a success resets the count */
    CHECK_INT(breaker_failure(&b, &params, 0), -1);
    CHECK_INT(breaker_failure(&b, &params, 0), -1);
    CHECK_INT(breaker_failure(&b, &params, 10), BREAKER_OPEN);
    CHECK_INT(breaker_state(&b), BREAKER_OPEN);
    CHECK(!breaker_allow(&b, &params, 500));
    CHECK_INT(breaker_retry_after(&b, 500), 1);
    CHECK(!breaker_allow(&b, &params, 1009));
}

static void test_half_open_probe_closes(void)
{
    struct breaker b = {0};

    for (int i = 0; i < 3; i++)
        breaker_failure(&b, &params, 0);
    CHECK(breaker_allow(&b, &params, 1000)); /* the probe */
    CHECK_INT(breaker_state(&b), BREAKER_HALF_OPEN);
    CHECK(!breaker_allow(&b, &params, 1001)); /* only one probe at a time */
    CHECK_INT(breaker_success(&b), BREAKER_CLOSED);
    CHECK(breaker_allow(&b, &params, 1002));
    CHECK(breaker_allow(&b, &params, 1003));
}

static void test_half_open_failure_reopens_with_backoff(void)
{
    struct breaker b = {0};

    for (int i = 0; i < 3; i++)
        breaker_failure(&b, &params, 0);
    CHECK(breaker_allow(&b, &params, 1000));
    CHECK_INT(breaker_failure(&b, &params, 1000), BREAKER_OPEN);
    CHECK(!breaker_allow(&b, &params, 2500)); /* open for 2 s now */
    CHECK_INT(breaker_retry_after(&b, 2500), 1);
    CHECK_INT(breaker_retry_after(&b, 1000), 2);
    CHECK(breaker_allow(&b, &params, 3000));
    CHECK_INT(breaker_failure(&b, &params, 3000), BREAKER_OPEN);
    CHECK(!breaker_allow(&b, &params, 6999)); /* 4 s */
    CHECK(breaker_allow(&b, &params, 7000));
    CHECK_INT(breaker_success(&b), BREAKER_CLOSED);
    /* Closed again: the back-off starts over. */
    for (int i = 0; i < 3; i++)
        breaker_failure(&b, &params, 8000);
    CHECK(!breaker_allow(&b, &params, 8999));
    CHECK(breaker_allow(&b, &params, 9000));
}

static void test_backoff_is_capped(void)
{
    struct breaker b = {0};
    uint64_t now = 0;

    for (int i = 0; i < 3; i++)
        breaker_failure(&b, &params, now);
    for (int i = 0; i < 20; i++) {
        now = atomic_load(&b.open_until);
        CHECK(breaker_allow(&b, &params, now));
        breaker_failure(&b, &params, now);
    }
    CHECK(atomic_load(&b.open_until) - now <= 32 * 1000);
}

static void test_late_success_does_not_close_open_breaker(void)
{
    struct breaker b = {0};

    for (int i = 0; i < 3; i++)
        breaker_failure(&b, &params, 0);
    CHECK_INT(breaker_success(&b), -1); /* sent before it opened */
    CHECK_INT(breaker_state(&b), BREAKER_OPEN);
    CHECK(!breaker_allow(&b, &params, 10));
}

static void test_zero_failures_never_opens(void)
{
    struct breaker_params off = {.failures = 0, .open_for = 1000, .half_open_requests = 1};
    struct breaker b = {0};

    for (int i = 0; i < 100; i++)
        breaker_failure(&b, &off, 0);
    CHECK_INT(breaker_state(&b), BREAKER_CLOSED);
    CHECK(breaker_allow(&b, &off, 0));
}

int main(void)
{
    RUN(test_opens_after_consecutive_failures);
    RUN(test_half_open_probe_closes);
    RUN(test_half_open_failure_reopens_with_backoff);
    RUN(test_backoff_is_capped);
    RUN(test_late_success_does_not_close_open_breaker);
    RUN(test_zero_failures_never_opens);
    return TEST_REPORT();
}
