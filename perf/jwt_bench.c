/* JWT verification cost per core: filters/jwt.c's jwt_verify() on one thread
 * for RS256, ES256, EdDSA and HS256, without the cache (a cache of 0 entries:
 * every call checks the signature and parses the claims) and with it (the
 * same token again: a hit). Run by perf/jwt_bench.sh, which builds it against
 * build/libringgate_core.a and makes the keys and tokens.
 *
 *     jwt_bench DIR [SECONDS] [ROUNDS]
 *
 * DIR holds jwks.json and tokens.txt as tests/unit/jwt_fixtures.py writes
 * them. Each case runs ROUNDS (5) rounds of SECONDS (0.4) of thread CPU time;
 * the table shows the median round. Times are CPU time of this thread
 * (CLOCK_THREAD_CPUTIME_ID), so "per second" means per second of one core.
 * Exits 1 if a verification fails or a cached one costs 1 µs or more. */
#include "jwt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW 1700000000 /* the fixtures' tokens are valid from then to 2100 */
#define ISSUER "https://auth.example.com"
#define MAX_ROUNDS 15
#define BATCH 256 /* verifications between two clock reads */

static const char *const algs[] = {"RS256", "ES256", "EdDSA", "HS256"};
#define ALG_COUNT (sizeof algs / sizeof algs[0])

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* A copy of the token named `name` in tokens.txt ("name token" lines). */
static char *find_token(const char *text, const char *name)
{
    size_t name_len = strlen(name);

    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t line_len = end ? (size_t)(end - line) : strlen(line);

        if (line_len > name_len + 1 && strncmp(line, name, name_len) == 0 &&
            line[name_len] == ' ')
            return strndup(line + name_len + 1, line_len - name_len - 1);
        line += line_len + (end != NULL);
    }
    return NULL;
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median over `rounds` of the CPU seconds one verification takes; 0 if a
 * verification fails. */
static double per_verification(const struct jwt_provider *p, struct jwt_cache *c,
                               const char *token, double seconds, int rounds, uint64_t *total)
{
    double each[MAX_ROUNDS];
    size_t len = strlen(token);
    struct jwt_claims claims;

    for (int r = 0; r < rounds; r++) {
        double start = cpu_now(), elapsed;
        uint64_t n = 0;

        do {
            for (int i = 0; i < BATCH; i++, n++) {
                if (jwt_verify(p, c, token, len, NOW, &claims, NULL) != JWT_OK) return 0;
            }
        } while ((elapsed = cpu_now() - start) < seconds);
        each[r] = elapsed / (double)n;
        *total += n;
    }
    qsort(each, (size_t)rounds, sizeof each[0], cmp_double);
    return each[rounds / 2];
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/unit/fixtures/jwt";
    double seconds = argc > 2 ? atof(argv[2]) : 0.4;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    char path[1024], err[512] = "", *tokens;
    int status = 0;

    if (seconds <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: %s DIR [SECONDS > 0] [ROUNDS 1..%d]\n", argv[0], MAX_ROUNDS);
        return 2;
    }
    snprintf(path, sizeof path, "%s/tokens.txt", dir);
    if (!(tokens = slurp(path))) {
        perror(path);
        return 2;
    }
    snprintf(path, sizeof path, "%s/jwks.json", dir);
    const char *const audiences[] = {"api"};
    struct jwt_provider_params pp = {
        .name = "bench",
        .issuer = ISSUER,
        .audiences = audiences,
        .audience_count = 1,
        .jwks_file = path,
    };
    struct jwt_provider *p = jwt_provider_new(&pp, err, sizeof err);
    if (!p) {
        fprintf(stderr, "provider: %s\n", err);
        return 2;
    }

    printf("jwt_verify() on one core: median of %d rounds of %.2f s CPU time each\n", rounds,
           seconds);
    printf("keys and tokens: %s (%zu signing keys; issuer and audience checked)\n\n", dir,
           jwt_provider_key_count(p));
    printf("%-6s %6s  %14s %12s  %14s %12s  %8s\n", "alg", "token", "uncached µs", "per second",
           "cached µs", "per second", "ratio");
    for (size_t i = 0; i < ALG_COUNT; i++) {
        char *token = find_token(tokens, algs[i]);
        struct jwt_cache *cold = jwt_cache_new(0, 0, 0);
        struct jwt_cache *warm = jwt_cache_new(1024, 8u << 20, 300);
        struct jwt_cache_stats cold_st, warm_st;
        uint64_t cold_n = 0, warm_n = 0;

        if (!token || !cold || !warm) {
            fprintf(stderr, "%s: no token in %s/tokens.txt, or out of memory\n", algs[i], dir);
            return 2;
        }
        struct jwt_claims claims;
        double uncached = per_verification(p, cold, token, seconds, rounds, &cold_n);
        /* the first verification fills the cache: not timed */
        if (jwt_verify(p, warm, token, strlen(token), NOW, &claims, NULL) != JWT_OK) uncached = 0;
        double cached = per_verification(p, warm, token, seconds, rounds, &warm_n);
        jwt_cache_stats(cold, &cold_st);
        jwt_cache_stats(warm, &warm_st);
        if (uncached <= 0 || cached <= 0) {
            fprintf(stderr, "%s: the token does not verify\n", algs[i]);
            return 1;
        }
        /* the uncached runs never hit; the cached ones all hit */
        if (cold_st.hits != 0 || cold_st.misses != cold_n || warm_st.misses != 1 ||
            warm_st.hits != warm_n) {
            fprintf(stderr, "%s: unexpected cache counts (uncached %llu hits; cached %llu misses)\n",
                    algs[i], (unsigned long long)cold_st.hits,
                    (unsigned long long)warm_st.misses);
            status = 1;
        }
        printf("%-6s %6zu  %14.3f %12.0f  %14.3f %12.0f  %7.0fx\n", algs[i], strlen(token),
               uncached * 1e6, 1 / uncached, cached * 1e6, 1 / cached, uncached / cached);
        if (cached >= 1e-6) {
            fprintf(stderr, "%s: a cached verification costs %.3f µs, not under 1 µs\n", algs[i],
                    cached * 1e6);
            status = 1;
        }
        jwt_cache_free(cold);
        jwt_cache_free(warm);
        free(token);
    }
    printf("\ntoken: bytes of the compact token (the cache hashes and compares all of them)\n");
    printf("ratio: uncached µs / cached µs\n");
    printf("cached path under 1 µs for every algorithm: %s\n", status ? "NO" : "yes");
    jwt_provider_free(p);
    free(tokens);
    return status;
}
