/* What every libFuzzer target here shares: an invariant that, broken,
 * stops the run with the place and the condition (libFuzzer keeps the
 * input as a crash artifact). */
#ifndef RINGGATE_FUZZ_H
#define RINGGATE_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
