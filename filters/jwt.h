/* JWT verification (RFC 7519, JWS compact serialization RFC 7515): the pure
 * core the jwt filter calls. No sockets; files are read only when a provider
 * is created.
 *
 * Threads: a provider is immutable once created and is shared read-only by
 * all workers. A cache (verified tokens, plus the scratch space one
 * verification needs) belongs to one thread.
 *
 * The algorithm always comes from the key, never from the token: a token's
 * "alg" only selects among what the provider's keys allow, so "none" and
 * HS256-signed-with-the-RSA-public-key (algorithm confusion) are refused. */
#ifndef RINGGATE_JWT_H
#define RINGGATE_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192 /* longer tokens are "malformed" */
#define JWT_MAX_CLAIMS 64  /* top-level members of the header or the claims set */

/* jwt_verify() results. The names (jwt_reason_name) are metric labels of
 * ringgate_jwt_rejected_total{reason}: stable, never rename. */
enum jwt_result {
    JWT_OK = 0,
    JWT_MISSING,         /* no token */
    JWT_MALFORMED,       /* not a JWS compact token with JSON object header and claims */
    JWT_BAD_SIGNATURE,   /* no key of the provider verifies it */
    JWT_ALG_NOT_ALLOWED, /* "none", unknown, or not what the (kid-selected) keys allow */
    JWT_UNKNOWN_KID,     /* "kid" names no key of the provider */
    JWT_EXPIRED,         /* now >= exp + clock_skew */
    JWT_NOT_YET_VALID,   /* now + clock_skew < nbf */
    JWT_WRONG_ISSUER,    /* iss missing or not the configured issuer */
    JWT_WRONG_AUDIENCE,  /* aud missing or contains none of the configured audiences */
    JWT_MISSING_CLAIM,   /* a required claim is absent or has another value */
    JWT_RESULT_COUNT
};

/* "ok", "missing", "malformed", "bad_signature", "alg_not_allowed",
 * "unknown_kid", "expired", "not_yet_valid", "wrong_issuer",
 * "wrong_audience", "missing_claim"; NULL out of range. */
const char *jwt_reason_name(int result);

struct jwt_pair {
    const char *name;
    const char *value;
};

struct jwt_provider_params {
    const char *name;             /* metric label; required */
    const char *issuer;           /* NULL: iss not checked */
    const char *const *audiences; /* none: aud not checked */
    size_t audience_count;
    /* Exactly one key source: */
    const char *jwks_file; /* JWK Set (RFC 7517) file */
    const char *jwks;      /* or the JWK Set text itself */
    size_t jwks_len;
    const char *secret; /* or an HMAC secret, base64url, >= 32 bytes */
    int64_t clock_skew; /* seconds allowed on exp and nbf, >= 0 */
    /* name -> value the claim must have (a string equal to it, an array
     * holding that string, or a number/boolean spelled so); value NULL: the
     * claim must only be present. */
    const struct jwt_pair *required_claims;
    size_t required_count;
    /* claim name -> request header name (a token, not a framing or
     * hop-by-hop header). */
    const struct jwt_pair *forward_claims;
    size_t forward_count;
};

struct jwt_provider;

/* NULL on error, with a message in `err` naming the problem (the caller
 * adds where the configuration names the provider). Copies what it keeps. */
struct jwt_provider *jwt_provider_new(const struct jwt_provider_params *p, char *err,
                                      size_t err_size);
void jwt_provider_free(struct jwt_provider *p);
const char *jwt_provider_name(const struct jwt_provider *p);
/* The forward_claims pairs (claim -> header), in configuration order. */
const struct jwt_pair *jwt_provider_forwards(const struct jwt_provider *p, size_t *count);
/* Signing keys in use (the JWKS keys that are not skipped). */
size_t jwt_provider_key_count(const struct jwt_provider *p);

/* Per-worker cache of verified tokens. Bounded by `max_entries` and
 * `max_bytes` (tokens plus decoded claims), least recently used evicted
 * first; an entry is served only while the token is valid and for at most
 * `max_ttl` seconds. max_entries 0 disables caching (the scratch space of
 * a verification still lives here). NULL when out of memory. */
struct jwt_cache *jwt_cache_new(size_t max_entries, size_t max_bytes, int64_t max_ttl);
void jwt_cache_free(struct jwt_cache *c);
void jwt_cache_clear(struct jwt_cache *c);

struct jwt_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions; /* to make room */
    uint64_t expired;   /* dropped when found past their time */
    size_t entries;
    size_t bytes;
};
void jwt_cache_stats(const struct jwt_cache *c, struct jwt_cache_stats *out);

struct jwt_slot;

/* The claims of a verified token. Read them with jwt_claim() and
 * jwt_claim_header(). Lifetime: the values live in the cache (its entry or
 * its scratch space) and stay valid until the next jwt_verify() or
 * jwt_cache_clear() on the same cache, or jwt_cache_free(); copy what must
 * outlive that (forwarded header values, rate-limit keys). */
struct jwt_claims {
    const char *json;
    const struct jwt_slot *slots;
    unsigned count;
};

/* Verifies `token` (`len` bytes; `now` in seconds since the epoch) against
 * the provider's keys and claim rules, using `cache` (required; one of
 * max_entries 0 caches nothing). Returns JWT_OK with `out` set, or another
 * enum jwt_result with `out` emptied. `reason` (may be NULL) gets
 * jwt_reason_name() of the result. Allocates nothing itself but a new cache
 * entry (libcrypto allocates inside a signature check; a cache hit does not
 * reach it). */
int jwt_verify(const struct jwt_provider *p, struct jwt_cache *cache, const char *token, size_t len,
               int64_t now, struct jwt_claims *out, const char **reason);

/* Value of a top-level claim that is a string (unescaped, may hold any
 * byte but is valid UTF-8) or a number (its JSON text); NULL otherwise.
 * Not NUL-terminated. */
const char *jwt_claim(const struct jwt_claims *c, const char *name, size_t *len);

/* Like jwt_claim(), but NULL also when the value cannot be a header field
 * value as it is: empty, a control character, or leading/trailing
 * whitespace. */
const char *jwt_claim_header(const struct jwt_claims *c, const char *name, size_t *len);

/* Token of an Authorization header value "Bearer <token68>" (scheme in any
 * case, one space, nothing after the token). JWT_OK with `token` pointing
 * into `value`; JWT_MISSING when there is no value or another scheme;
 * JWT_MALFORMED when it is Bearer but not followed by exactly that. */
int jwt_extract_bearer(const char *value, size_t len, const char **token, size_t *token_len);

#endif
