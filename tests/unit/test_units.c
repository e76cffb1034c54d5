#include <stdint.h>

#include "test.h"
#include "units.h"

static uint64_t duration_or_max(const char *text)
{
    uint64_t ms = 0;

    return duration_parse(text, &ms) == 0 ? ms : UINT64_MAX;
}

static uint64_t size_or_max(const char *text)
{
    uint64_t bytes = 0;

    return size_parse(text, &bytes) == 0 ? bytes : UINT64_MAX;
}

static double rate_or_neg(const char *text)
{
    double per_second = 0;

    return rate_parse(text, &per_second) == 0 ? per_second : -1.0;
}

static void test_durations(void)
{
    CHECK(duration_or_max("250ms") == 250);
    CHECK(duration_or_max("2s") == 2000);
    CHECK(duration_or_max("5m") == 300000);
    CHECK(duration_or_max("1h") == 3600000);
    CHECK(duration_or_max("0") == 0);
    CHECK(duration_or_max("0s") == 0);
    CHECK(duration_or_max("0ms") == 0);
    CHECK(duration_or_max("10s") == 10000);
    CHECK(duration_or_max("18446744073709551615ms") == UINT64_MAX - 0); /* fits exactly */
}

static void test_bad_durations(void)
{
    const char *bad[] = {"",    "s",    "10",  "1.5s", "-1s",  "+1s",   " 1s",
                         "1s ", "1 s",  "1S",  "1d",   "1sec", "1m30s", "ms",
                         "00x", "0x1s", "1hh", "1mss", "1/s",  "1ms\n"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 42;
        CHECK_INT(duration_parse(bad[i], &ms), -1);
        CHECK_INT(ms, 42);
    }
    uint64_t ms;
    CHECK_INT(duration_parse(NULL, &ms), -1);
    /* Overflow: in the digits, and in the multiplication by the unit. */
    CHECK_INT(duration_parse("18446744073709551616ms", &ms), -1);
    CHECK_INT(duration_parse("18446744073709551615s", &ms), -1);
    CHECK_INT(duration_parse("5124095576031h", &ms), -1);
    CHECK_INT(duration_parse("5124095576030h", &ms), 0);
}

static void test_sizes(void)
{
    CHECK(size_or_max("512") == 512);
    CHECK(size_or_max("0") == 0);
    CHECK(size_or_max("64KiB") == 65536);
    CHECK(size_or_max("8MiB") == 8u << 20);
    CHECK(size_or_max("1GiB") == 1u << 30);
    CHECK(size_or_max("32KiB") == 32768);
    CHECK(size_or_max("1KB") == 1000);
    CHECK(size_or_max("3MB") == 3000000);
    CHECK(size_or_max("2GB") == 2000000000ull);
    CHECK(size_or_max("17179869184GiB") == UINT64_MAX); /* 2^64: overflows */
    CHECK(size_or_max("17179869183GiB") == 17179869183ull << 30);
}

static void test_bad_sizes(void)
{
    const char *bad[] = {"",   "KiB",  "64kib", "64 KiB", "-1",    "+1",     "1.5MiB",
                         " 1", "1 ",   "1k",    "1K",     "1Ki",   "1TB",    "1MiBs",
                         "1B", "0x10", "1e3",   "1_0",    "1,000", "64KiB\n"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t bytes = 42;
        CHECK_INT(size_parse(bad[i], &bytes), -1);
        CHECK_INT(bytes, 42);
    }
    uint64_t bytes;
    CHECK_INT(size_parse(NULL, &bytes), -1);
    CHECK_INT(size_parse("18446744073709551616", &bytes), -1);
    CHECK_INT(size_parse("18446744073709551615", &bytes), 0);
    CHECK(bytes == UINT64_MAX);
    CHECK_INT(size_parse("18446744073709552KB", &bytes), -1);
}

static void test_rates(void)
{
    CHECK(rate_or_neg("100/s") == 100.0);
    CHECK(rate_or_neg("6000/m") == 100.0);
    CHECK(rate_or_neg("50000/h") > 13.88 && rate_or_neg("50000/h") < 13.89);
    CHECK(rate_or_neg("1/h") > 0.0);
    CHECK(rate_or_neg("1/s") == 1.0);
}

static void test_bad_rates(void)
{
    const char *bad[] = {
        "",     "0/s",  "100",   "/s",    "100/",   "100/d",   "100 /s", "100/ s",
        "-1/s", "+1/s", "1.5/s", "100/S", "100/ms", "100/sec", "100/s ", "18446744073709551616/s"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double r = 42;
        CHECK_INT(rate_parse(bad[i], &r), -1);
        CHECK(r == 42);
    }
    double r;
    CHECK_INT(rate_parse(NULL, &r), -1);
}

int main(void)
{
    RUN(test_durations);
    RUN(test_bad_durations);
    RUN(test_sizes);
    RUN(test_bad_sizes);
    RUN(test_rates);
    RUN(test_bad_rates);
    return TEST_REPORT();
}
