/* Per-address connection counts. */
#include <stdio.h>
#include <string.h>

#include "ipcount.h"
#include "test.h"

static void addr_of(uint8_t out[16], uint32_t n)
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = (uint8_t)(n >> 24);
    out[13] = (uint8_t)(n >> 16);
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
}

static void test_cap_and_release(void)
{
    uint8_t a[16], b[16];

    addr_of(a, 1);
    addr_of(b, 2);
    for (int i = 0; i < 3; i++)
        CHECK(ipcount_acquire(a, 3));
    CHECK(!ipcount_acquire(a, 3));
    CHECK(ipcount_acquire(b, 3));
    ipcount_release(a);
    CHECK(ipcount_acquire(a, 3));
    CHECK(!ipcount_acquire(a, 3));
    for (int i = 0; i < 3; i++)
        ipcount_release(a);
    ipcount_release(b);
    CHECK(ipcount_acquire(a, 1));
    ipcount_release(a);
}

/* Many addresses in and out: counts stay exact (deletion keeps every
 * probe run reachable). */
static void test_churn(void)
{
    uint8_t a[16];

    for (uint32_t round = 0; round < 4; round++) {
        for (uint32_t i = 0; i < 50000; i++) {
            addr_of(a, i * 7919 + round);
            CHECK(ipcount_acquire(a, 2));
        }
        for (uint32_t i = 0; i < 50000; i++) {
            addr_of(a, i * 7919 + round);
            if (i % 2 == 0)
                ipcount_release(a);
        }
        for (uint32_t i = 1; i < 50000; i += 2) {
            addr_of(a, i * 7919 + round);
            CHECK(ipcount_acquire(a, 2));  /* second one */
            CHECK(!ipcount_acquire(a, 2)); /* third refused */
            ipcount_release(a);
            ipcount_release(a);
        }
    }
}

int main(void)
{
    RUN(test_cap_and_release);
    RUN(test_churn);
    return TEST_REPORT();
}
