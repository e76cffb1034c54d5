/* The contract's value units: durations, sizes and rates, as they appear in
 * the configuration file. Pure functions, no allocation. */
#ifndef RINGGATE_UNITS_H
#define RINGGATE_UNITS_H

#include <stdint.h>

/* "250ms", "2s", "5m", "1h" (also "0"): milliseconds. 0 on success, -1 when
 * the text is not a duration or overflows. */
int duration_parse(const char *text, uint64_t *ms);

/* "512", "64KiB", "8MiB", "1GiB" (also KB/MB/GB as powers of 1000): bytes. */
int size_parse(const char *text, uint64_t *bytes);

/* "100/s", "6000/m", "50000/h": tokens per second (> 0). */
int rate_parse(const char *text, double *per_second);

#endif
