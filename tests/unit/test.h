/* A minimal unit-test harness: each test file is one executable whose main()
 * calls RUN(test_fn) for each test; failures are printed and counted. */
#ifndef RINGGATE_TEST_H
#define RINGGATE_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_INT(a, b)                                                             \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                         \
        test_checks++;                                                              \
        if (a_ != b_) {                                                             \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, \
                    #a, a_, b_);                                                    \
        }                                                                           \
    } while (0)

#define CHECK_STR(a, b)                                                             \
    do {                                                                            \
        const char *a_ = (a), *b_ = (b);                                            \
        test_checks++;                                                              \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                    \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
                    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");          \
        }                                                                           \
    } while (0)

#define RUN(fn)                  \
    do {                         \
        int before_ = test_failures; \
        fn();                    \
        if (test_failures != before_) fprintf(stderr, "FAIL %s\n", #fn); \
    } while (0)

#define TEST_REPORT()                                                         \
    (fprintf(stderr, "%d checks, %d failures\n", test_checks, test_failures), \
     test_failures ? 1 : 0)

#endif
