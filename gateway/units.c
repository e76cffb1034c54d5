/* Durations, sizes and rates as the configuration writes them. The grammar
 * is deliberately narrow: decimal digits immediately followed by a unit from
 * a fixed list. No sign, no spaces, no fractions, so "1.5s", " 2s" and "-1"
 * are errors instead of surprises. */
#include "units.h"

#include <stddef.h>
#include <string.h>

struct unit {
    const char *suffix;
    uint64_t factor;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1},         {"KiB", 1ull << 10},    {"MiB", 1ull << 20},           {"GiB", 1ull << 30},
    {"KB", 1000ull}, {"MB", 1000ull * 1000}, {"GB", 1000ull * 1000 * 1000}, {NULL, 0},
};

static const struct unit rate_units[] = {
    {"/s", 1},
    {"/m", 60},
    {"/h", 60 * 60},
    {NULL, 0},
};

/* Reads one or more decimal digits at *p; advances *p past them. */
static int parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t n = 0;

    if (*s < '0' || *s > '9') return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t digit = (uint64_t)(*s - '0');
        if (n > (UINT64_MAX - digit) / 10) return -1;
        n = n * 10 + digit;
    }
    *p = s;
    *out = n;
    return 0;
}

static const struct unit *find_unit(const struct unit *units, const char *suffix)
{
    for (; units->suffix; units++)
        if (strcmp(units->suffix, suffix) == 0) return units;
    return NULL;
}

/* digits + one of units, checked for overflow. */
static int parse_with_unit(const char *text, const struct unit *units, uint64_t *number,
                           uint64_t *factor)
{
    const char *p = text;
    const struct unit *u;

    if (!text || parse_digits(&p, number) < 0) return -1;
    u = find_unit(units, p);
    if (!u) return -1;
    *factor = u->factor;
    return 0;
}

int duration_parse(const char *text, uint64_t *ms)
{
    uint64_t n, factor;

    if (text && strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (parse_with_unit(text, duration_units, &n, &factor) < 0) return -1;
    if (n > UINT64_MAX / factor) return -1;
    *ms = n * factor;
    return 0;
}

int size_parse(const char *text, uint64_t *bytes)
{
    uint64_t n, factor;

    if (parse_with_unit(text, size_units, &n, &factor) < 0) return -1;
    if (n > UINT64_MAX / factor) return -1;
    *bytes = n * factor;
    return 0;
}

int rate_parse(const char *text, double *per_second)
{
    uint64_t n, seconds;

    if (parse_with_unit(text, rate_units, &n, &seconds) < 0 || n == 0) return -1;
    *per_second = (double)n / (double)seconds;
    return 0;
}
