/* The retry budget of an upstream (per worker): each request earns a
 * fifth of a retry, at most RETRY_BUDGET_MAX saved, and each retry spends
 * one, so retries add at most 20 % to the load however the origin fails. */
#ifndef RINGGATE_RETRY_BUDGET_H
#define RINGGATE_RETRY_BUDGET_H

#include <stdbool.h>

#define RETRY_BUDGET_MAX 10.0
#define RETRY_BUDGET_PER_REQUEST 0.2

struct retry_budget {
    double tokens;
};

static inline void retry_budget_init(struct retry_budget *b)
{
    b->tokens = RETRY_BUDGET_MAX;
}

static inline void retry_budget_earn(struct retry_budget *b)
{
    b->tokens += RETRY_BUDGET_PER_REQUEST;
    if (b->tokens > RETRY_BUDGET_MAX)
        b->tokens = RETRY_BUDGET_MAX;
}

static inline bool retry_budget_spend(struct retry_budget *b)
{
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

#endif
