/* libFuzzer target for filters/jwt.c, against a provider with an HS256
 * secret and an ES256 key. The first byte picks what the input is:
 *   '{'  a JWK Set, loaded as a provider of its own;
 *   '#'  header JSON, a newline, claims JSON: encoded and HS256-signed here,
 *        so the JSON reader and the claim rules see inputs a forger could
 *        not get past the signature;
 *   else a token (also read as an Authorization value); "header.payload"
 *        with no signature is signed here too.
 * Invariants: a result is one of enum jwt_result with its name; a refusal
 * leaves no claims; the answer is the same from the cache, again, and
 * without a cache. Copies are exact-size heap buffers, so any overread trips
 * AddressSanitizer. */
#include "base64url.h"
#include "fuzz.h"
#include "jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000
/* 32 bytes: "ringgate fuzz secret, 32 bytes!!" */
#define SECRET_B64 "cmluZ2dhdGUgZnV6eiBzZWNyZXQsIDMyIGJ5dGVzISE"

static const char jwks[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"hs\",\"alg\":\"HS256\",\"k\":\"" SECRET_B64 "\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\","
    "\"x\":\"OBBL5i10kQ8IrPCHXqGZw7EF1K8-JbmaYnW8hA81VX8\","
    "\"y\":\"qfj2SwFySsqPMr4Pe8vrabUonNk2VZdqgD521IwlN68\"}]}";

static struct jwt_provider *provider;
static struct jwt_cache *cache, *no_cache;
static uint8_t secret[32];

static void init(void)
{
    static const char *const aud[] = {"api", "web"};
    static const struct jwt_pair required[] = {{"role", "admin"}};
    static const struct jwt_pair forwards[] = {{"sub", "X-User-Id"}};
    struct jwt_provider_params pp = {
        .name = "fuzz",
        .issuer = "https://auth.example.com",
        .audiences = aud,
        .audience_count = 2,
        .jwks = jwks,
        .jwks_len = sizeof jwks - 1,
        .clock_skew = 30,
        .required_claims = required,
        .required_count = 1,
        .forward_claims = forwards,
        .forward_count = 1,
    };
    char err[256];
    size_t n;

    provider = jwt_provider_new(&pp, err, sizeof err);
    if (!provider) fprintf(stderr, "fuzz_jwt: %s\n", err);
    REQUIRE(provider != NULL);
    cache = jwt_cache_new(4, 16384, 300);
    no_cache = jwt_cache_new(0, 0, 0);
    REQUIRE(cache && no_cache);
    REQUIRE(base64url_decode(SECRET_B64, strlen(SECRET_B64), secret, sizeof secret, &n));
}

static char *heap_copy(const void *data, size_t n)
{
    char *p = malloc(n ? n : 1);

    REQUIRE(p != NULL);
    if (n) memcpy(p, data, n);
    return p;
}

static void check_claims(const struct jwt_claims *c)
{
    static const char *const names[] = {"sub", "exp", "aud", "role", "a", ""};
    size_t len;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = jwt_claim(c, names[i], &len);
        const char *h = jwt_claim_header(c, names[i], &len);

        if (v && len) REQUIRE(v[0] != 0 || v[len - 1] != 1); /* touch both ends */
        REQUIRE(!h || v);
    }
}

static void verify(const char *token, size_t len)
{
    struct jwt_claims claims, again;
    const char *reason = NULL;
    int rc = jwt_verify(provider, cache, token, len, NOW, &claims, &reason);

    REQUIRE(rc >= JWT_OK && rc < JWT_RESULT_COUNT);
    REQUIRE(reason && strcmp(reason, jwt_reason_name(rc)) == 0);
    if (rc != JWT_OK)
        REQUIRE(claims.count == 0);
    else
        check_claims(&claims);
    REQUIRE(jwt_verify(provider, cache, token, len, NOW, &again, NULL) == rc);
    if (rc == JWT_OK) REQUIRE(again.count == claims.count);
    REQUIRE(jwt_verify(provider, no_cache, token, len, NOW, &again, NULL) == rc);
}

/* Appends ".<HS256 signature>" to header.payload and verifies that. */
static void verify_signed(const char *msg, size_t len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    char *token = malloc(len + 1 + base64url_encoded_len(sizeof mac));

    REQUIRE(token != NULL);
    memcpy(token, msg, len);
    HMAC(EVP_sha256(), secret, sizeof secret, (const uint8_t *)msg, len, mac, &mac_len);
    token[len] = '.';
    size_t n = len + 1 + base64url_encode(mac, mac_len, token + len + 1);
    char *exact = heap_copy(token, n);
    verify(exact, n);
    free(exact);
    free(token);
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size, cl = nl ? size - hl - 1 : 0;
    char *msg = malloc(base64url_encoded_len(hl) + 1 + base64url_encoded_len(cl) + 1);
    size_t n;

    REQUIRE(msg != NULL);
    n = base64url_encode(data, hl, msg);
    msg[n++] = '.';
    n += base64url_encode(nl ? nl + 1 : data, cl, msg + n);
    if (n <= JWT_MAX_TOKEN) verify_signed(msg, n);
    free(msg);
}

static void fuzz_jwks(const uint8_t *data, size_t size)
{
    char err[512];
    struct jwt_provider_params pp = {.name = "f", .jwks = (const char *)data, .jwks_len = size};
    struct jwt_provider *p = jwt_provider_new(&pp, err, sizeof err);

    if (!p) {
        REQUIRE(err[0] != 0 && memchr(err, 0, sizeof err));
        return;
    }
    REQUIRE(jwt_provider_key_count(p) > 0);
    /* Use it once: a key that loaded must be usable (and refuse garbage). */
    struct jwt_claims claims;
    int rc = jwt_verify(p, no_cache, "e30.e30.AAAA", 12, NOW, &claims, NULL);
    REQUIRE(rc != JWT_OK);
    jwt_provider_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!provider) init();
    if (size && data[0] == '{') {
        char *copy = heap_copy(data, size);
        fuzz_jwks((const uint8_t *)copy, size);
        free(copy);
        return 0;
    }
    if (size && data[0] == '#') {
        fuzz_json(data + 1, size - 1);
        return 0;
    }
    char *copy = heap_copy(data, size);
    const char *token;
    size_t len;

    verify(copy, size);
    if (jwt_extract_bearer(copy, size, &token, &len) == JWT_OK) {
        REQUIRE(token > copy && token + len == copy + size);
        verify(token, len);
    }
    const char *dot = memchr(copy, '.', size);
    if (dot && !memchr(dot + 1, '.', size - (size_t)(dot - copy) - 1)) verify_signed(copy, size);
    free(copy);
    return 0;
}
