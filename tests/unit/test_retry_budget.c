/* The retry budget: at most 20 % extra load in steady state. */
#include "retry_budget.h"
#include "test.h"

static void test_starts_with_ten(void)
{
    struct retry_budget b;
    int spent = 0;

    retry_budget_init(&b);
    while (retry_budget_spend(&b))
        spent++;
    CHECK_INT(spent, 10);
}

/* An origin that always fails, every request wanting 3 retries: over many
 * requests the retries converge to 20 % of them. */
static void test_caps_steady_state_at_twenty_percent(void)
{
    struct retry_budget b;
    int requests = 10000, retries = 0;

    retry_budget_init(&b);
    for (int i = 0; i < requests; i++) {
        retry_budget_earn(&b);
        for (int r = 0; r < 3 && retry_budget_spend(&b); r++)
            retries++;
    }
    CHECK(retries <= requests / 5 + 10);
    CHECK(retries >= requests / 5 - 1);
}

static void test_savings_are_bounded(void)
{
    struct retry_budget b;
    int spent = 0;

    retry_budget_init(&b);
    for (int i = 0; i < 1000; i++) /* a long calm period */
        retry_budget_earn(&b);
    while (retry_budget_spend(&b))
        spent++;
    CHECK_INT(spent, 10);
}

int main(void)
{
    RUN(test_starts_with_ten);
    RUN(test_caps_steady_state_at_twenty_percent);
    RUN(test_savings_are_bounded);
    return TEST_REPORT();
}
