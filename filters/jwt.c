/* JWT verification: a JSON reader for headers, claims and JWK Sets, key
 * loading, signature checks through libcrypto, claim rules, and the
 * per-worker cache of verified tokens. See jwt.h for the contract. */
#include "jwt.h"
#include "base64url.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#ifdef OPENSSL_IS_BORINGSSL
#define RSA_PSS_SALTLEN_DIGEST (-1) /* documented in evp.h, not defined */
#endif

#define MAX_JSON (JWT_MAX_TOKEN / 4 * 3) /* a decoded header or claims set */
#define MAX_SIG 1024                     /* RSA-8192 */
#define MAX_DEPTH 32
#define JWKS_MAX_BYTES (1 << 20)
#define JWKS_MAX_KEYS 256
#define MIN_RSA_BITS 2048
#define MAX_RSA_BITS 8192
#define MIN_SECRET 32
#define MAX_SKEW (366 * 86400)
#define NUMBER_LIMIT ((int64_t)1 << 62) /* claims saturate here; sums cannot overflow */

static const char *const reason_names[JWT_RESULT_COUNT] = {
    "ok",      "missing",       "malformed",    "bad_signature",  "alg_not_allowed", "unknown_kid",
    "expired", "not_yet_valid", "wrong_issuer", "wrong_audience", "missing_claim",
};

const char *jwt_reason_name(int result)
{
    return result >= 0 && result < JWT_RESULT_COUNT ? reason_names[result] : NULL;
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t size, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (!err || !size) return;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}

/* ---- JSON (RFC 8259), strict: UTF-8 checked, no duplicates at the top ---- */

enum json_type {
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
    JSON_OBJECT,
    JSON_ARRAY
};

/* A member of an object, as offsets into its text. A string value excludes
 * its quotes; other values are their JSON text. */
struct jwt_slot {
    uint32_t name, name_len, value, value_len;
    uint8_t type;
    uint8_t escaped; /* 1: the name has escapes, 2: the value */
};

struct json {
    const char *end;
    const char *fail; /* where the first error was found */
    bool too_many;    /* members, not bad JSON */
};

static const char *json_fail(struct json *j, const char *p)
{
    if (!j->fail) j->fail = p;
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the UTF-8 sequence at p: shortest form, no surrogates, at most
 * U+10FFFF. 0 when invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);

    if (p[0] < 0x80) return 1;
    if (p[0] < 0xc2 || p[0] > 0xf4) return 0;
    if (p[0] < 0xe0) return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] < 0xf0) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)) return 0;
        return 3;
    }
    if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
        return 0;
    if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) return 0;
    return 4;
}

static int hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = is_digit(c)            ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

/* p at the opening quote; returns the position after the closing one. */
static const char *json_string(struct json *j, const char *p, bool *escaped)
{
    const char *end = j->end;

    for (p++; p < end;) {
        unsigned char c = (unsigned char)*p;
        size_t n;

        if (c == '"') return p + 1;
        if (c < 0x20) return json_fail(j, p);
        if (c != '\\') {
            if (!(n = utf8_len((const unsigned char *)p, (const unsigned char *)end)))
                return json_fail(j, p);
            p += n;
            continue;
        }
        *escaped = true;
        if (end - p < 2) return json_fail(j, p);
        if (p[1] != 'u') {
            if (!p[1] || !strchr("\"\\/bfnrt", p[1])) return json_fail(j, p);
            p += 2;
            continue;
        }
        int u = end - p >= 6 ? hex4(p + 2) : -1;
        if (u < 0 || (u >= 0xdc00 && u <= 0xdfff)) return json_fail(j, p);
        if (u >= 0xd800 && u <= 0xdbff) {
            int lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) return json_fail(j, p);
            p += 6;
        }
        p += 6;
    }
    return json_fail(j, p);
}

static const char *json_number(struct json *j, const char *p)
{
    const char *end = j->end, *digits;

    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
    } else {
        for (digits = p; p < end && is_digit(*p); p++)
            continue;
        if (p == digits) return json_fail(j, p);
    }
    if (p < end && *p == '.') {
        for (digits = ++p; p < end && is_digit(*p); p++)
            continue;
        if (p == digits) return json_fail(j, p);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-')) p++;
        for (digits = p; p < end && is_digit(*p); p++)
            continue;
        if (p == digits) return json_fail(j, p);
    }
    return p;
}

static const char *json_literal(struct json *j, const char *p, const char *word, size_t len)
{
    if ((size_t)(j->end - p) < len || memcmp(p, word, len) != 0) return json_fail(j, p);
    return p + len;
}

static const char *json_value(struct json *j, const char *p, int depth, uint8_t *type,
                              bool *escaped);

/* An object or array at p (depth levels down); validates and skips it. */
static const char *json_container(struct json *j, const char *p, int depth)
{
    char close = *p == '{' ? '}' : ']';
    uint8_t type;
    bool escaped;

    if (depth >= MAX_DEPTH) return json_fail(j, p);
    p = skip_ws(p + 1, j->end);
    if (p < j->end && *p == close) return p + 1;
    for (;;) {
        if (close == '}') {
            if (p == j->end || *p != '"') return json_fail(j, p);
            if (!(p = json_string(j, p, &escaped))) return NULL;
            p = skip_ws(p, j->end);
            if (p == j->end || *p != ':') return json_fail(j, p);
            p = skip_ws(p + 1, j->end);
        }
        if (!(p = json_value(j, p, depth + 1, &type, &escaped))) return NULL;
        p = skip_ws(p, j->end);
        if (p == j->end) return json_fail(j, p);
        if (*p == close) return p + 1;
        if (*p != ',') return json_fail(j, p);
        p = skip_ws(p + 1, j->end);
    }
}

static const char *json_value(struct json *j, const char *p, int depth, uint8_t *type,
                              bool *escaped)
{
    if (p == j->end) return json_fail(j, p);
    switch (*p) {
    case '"':
        *type = JSON_STRING;
        return json_string(j, p, escaped);
    case '{':
        *type = JSON_OBJECT;
        return json_container(j, p, depth);
    case '[':
        *type = JSON_ARRAY;
        return json_container(j, p, depth);
    case 't':
        *type = JSON_TRUE;
        return json_literal(j, p, "true", 4);
    case 'f':
        *type = JSON_FALSE;
        return json_literal(j, p, "false", 5);
    case 'n':
        *type = JSON_NULL;
        return json_literal(j, p, "null", 4);
    default:
        *type = JSON_NUMBER;
        if (*p != '-' && !is_digit(*p)) return json_fail(j, p);
        return json_number(j, p);
    }
}

/* The whole of text[0..len) must be one object: its members go to m (at
 * most max). Returns the member count, or -1 (j->fail says where). */
static int json_object(struct json *j, const char *text, size_t len, struct jwt_slot *m, size_t max)
{
    const char *p = skip_ws(text, text + len);
    size_t n = 0;

    j->end = text + len;
    j->fail = NULL;
    j->too_many = false;
    if (p == j->end || *p != '{') return json_fail(j, p), -1;
    p = skip_ws(p + 1, j->end);
    if (p < j->end && *p == '}') {
        p++;
    } else {
        for (;;) {
            const char *name = p, *value;
            bool name_esc = false, value_esc = false;
            uint8_t type;

            if (n == max) return j->too_many = true, json_fail(j, p), -1;
            if (p == j->end || *p != '"') return json_fail(j, p), -1;
            if (!(p = json_string(j, p, &name_esc))) return -1;
            m[n].name = (uint32_t)(name + 1 - text);
            m[n].name_len = (uint32_t)(p - name - 2);
            p = skip_ws(p, j->end);
            if (p == j->end || *p != ':') return json_fail(j, p), -1;
            value = p = skip_ws(p + 1, j->end);
            if (!(p = json_value(j, p, 1, &type, &value_esc))) return -1;
            bool quoted = type == JSON_STRING;
            m[n].value = (uint32_t)(value + quoted - text);
            m[n].value_len = (uint32_t)(p - value - 2 * quoted);
            m[n].type = type;
            m[n].escaped = (uint8_t)(name_esc | value_esc << 1);
            n++;
            p = skip_ws(p, j->end);
            if (p < j->end && *p == '}') {
                p++;
                break;
            }
            if (p == j->end || *p != ',') return json_fail(j, p), -1;
            p = skip_ws(p + 1, j->end);
        }
    }
    if ((p = skip_ws(p, j->end)) != j->end) return json_fail(j, p), -1;
    return (int)n;
}

static size_t utf8_put(char *out, unsigned u)
{
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xc0 | u >> 6);
        out[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xe0 | u >> 12);
        out[1] = (char)(0x80 | (u >> 6 & 0x3f));
        out[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | u >> 18);
    out[1] = (char)(0x80 | (u >> 12 & 0x3f));
    out[2] = (char)(0x80 | (u >> 6 & 0x3f));
    out[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

/* One character of validated string contents at p: its bytes go to out
 * (up to 4); returns how many input bytes it took. */
static size_t unescape_one(const char *p, char *out, size_t *n)
{
    static const char plain[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";

    if (p[0] != '\\') {
        out[0] = p[0];
        *n = 1;
        return 1;
    }
    if (p[1] != 'u') {
        out[0] = value[strchr(plain, p[1]) - plain];
        *n = 1;
        return 2;
    }
    unsigned u = (unsigned)hex4(p + 2);
    if (u >= 0xd800 && u <= 0xdbff) {
        u = 0x10000 + ((u - 0xd800) << 10) + ((unsigned)hex4(p + 8) - 0xdc00);
        *n = utf8_put(out, u);
        return 12;
    }
    *n = utf8_put(out, u);
    return 6;
}

/* Unescapes validated string contents in place (the result is never
 * longer); returns the new length. */
static uint32_t unescape_in_place(char *s, uint32_t len)
{
    uint32_t in = 0, out = 0;

    while (in < len) {
        char tmp[4];
        size_t n;

        in += (uint32_t)unescape_one(s + in, tmp, &n);
        memcpy(s + out, tmp, n);
        out += (uint32_t)n;
    }
    return out;
}

/* Top-level member names and string values are outside every nested value,
 * so unescaping them in place leaves the text of the others intact. */
static void unescape_members(char *text, struct jwt_slot *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].escaped & 1) m[i].name_len = unescape_in_place(text + m[i].name, m[i].name_len);
        if (m[i].escaped & 2 && m[i].type == JSON_STRING)
            m[i].value_len = unescape_in_place(text + m[i].value, m[i].value_len);
    }
}

/* RFC 7515 and 7519 allow rejecting duplicate names; parsers that keep the
 * first or the last one otherwise disagree about what was signed. */
static const struct jwt_slot *find_duplicate(const char *text, const struct jwt_slot *m, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = 0; k < i; k++)
            if (m[i].name_len == m[k].name_len &&
                memcmp(text + m[i].name, text + m[k].name, m[i].name_len) == 0)
                return &m[i];
    return NULL;
}

static const struct jwt_slot *find_member(const char *text, const struct jwt_slot *m, size_t n,
                                          const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].name_len == len && memcmp(text + m[i].name, name, len) == 0) return &m[i];
    return NULL;
}

/* Parses, unescapes and checks for duplicates: the member count or -1. */
static int json_members(struct json *j, char *text, size_t len, struct jwt_slot *m, size_t max)
{
    int n = json_object(j, text, len, m, max);

    if (n < 0) return -1;
    unescape_members(text, m, (size_t)n);
    return find_duplicate(text, m, (size_t)n) ? -1 : n;
}

/* Compares validated, still escaped string contents with want. */
static bool raw_string_eq(const char *raw, size_t len, const char *want, size_t want_len)
{
    size_t i = 0, w = 0;

    while (i < len) {
        char tmp[4];
        size_t n;

        i += unescape_one(raw + i, tmp, &n);
        if (w + n > want_len || memcmp(want + w, tmp, n) != 0) return false;
        w += n;
    }
    return w == want_len;
}

/* Elements of a validated array, one at a time. */
struct json_iter {
    struct json j;
    const char *p;
};

static void array_begin(struct json_iter *it, const char *text, size_t len)
{
    it->j.end = text + len;
    it->j.fail = NULL;
    it->j.too_many = false;
    it->p = text + 1;
}

static bool array_next(struct json_iter *it, const char **value, size_t *len, uint8_t *type)
{
    const char *p = skip_ws(it->p, it->j.end), *start;
    bool escaped = false;

    if (p < it->j.end && *p == ',') p = skip_ws(p + 1, it->j.end);
    if (p >= it->j.end || *p == ']') return false;
    start = p;
    if (!(p = json_value(&it->j, p, 1, type, &escaped))) return false;
    bool quoted = *type == JSON_STRING;
    *value = start + quoted;
    *len = (size_t)(p - start) - 2 * quoted;
    it->p = p;
    return true;
}

/* A validated JSON number as whole seconds, truncated, saturating at
 * +-2^62 (a NumericDate may have a fraction or an exponent). */
static int64_t number_i64(const char *p, size_t len)
{
    const char *end = p + len;
    uint64_t m = 0;
    int64_t e10 = 0;
    bool neg = *p == '-';

    p += neg;
    for (; p < end && is_digit(*p); p++) {
        if (m < 100000000000000000ull)
            m = m * 10 + (uint64_t)(*p - '0');
        else
            e10++;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++) {
            if (m < 100000000000000000ull) m = m * 10 + (uint64_t)(*p - '0'), e10--;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = *++p == '-';
        int64_t e = 0;

        p += *p == '-' || *p == '+';
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        e10 += eneg ? -e : e;
    }
    for (; e10 < 0 && m; e10++)
        m /= 10;
    for (; e10 > 0 && m && m <= (uint64_t)NUMBER_LIMIT / 10; e10--)
        m *= 10;
    if (m > (uint64_t)NUMBER_LIMIT || (e10 > 0 && m)) m = (uint64_t)NUMBER_LIMIT;
    return neg ? -(int64_t)m : (int64_t)m;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;

    if (!__builtin_add_overflow(a, b, &r)) return r;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

/* ---- algorithms and keys ---- */

enum kty { KTY_OCT, KTY_RSA, KTY_EC, KTY_OKP };

enum alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EDDSA,
    ALG_COUNT
};

static const struct {
    const char *name;
    uint8_t kty;
    uint16_t hash; /* SHA-2 bits; 0 for EdDSA */
} algs[ALG_COUNT] = {
    [HS256] = {"HS256", KTY_OCT, 256}, [HS384] = {"HS384", KTY_OCT, 384},
    [HS512] = {"HS512", KTY_OCT, 512}, [RS256] = {"RS256", KTY_RSA, 256},
    [RS384] = {"RS384", KTY_RSA, 384}, [RS512] = {"RS512", KTY_RSA, 512},
    [PS256] = {"PS256", KTY_RSA, 256}, [PS384] = {"PS384", KTY_RSA, 384},
    [PS512] = {"PS512", KTY_RSA, 512}, [ES256] = {"ES256", KTY_EC, 256},
    [ES384] = {"ES384", KTY_EC, 384},  [EDDSA] = {"EdDSA", KTY_OKP, 0},
};

#define BIT(a) (1u << (a))
#define RSA_ALGS (BIT(RS256) | BIT(RS384) | BIT(RS512) | BIT(PS256) | BIT(PS384) | BIT(PS512))

static int alg_by_name(const char *s, size_t len)
{
    for (int a = 0; a < ALG_COUNT; a++)
        if (strlen(algs[a].name) == len && memcmp(algs[a].name, s, len) == 0) return a;
    return -1;
}

static const EVP_MD *alg_md(int alg)
{
    switch (algs[alg].hash) {
    case 256:
        return EVP_sha256();
    case 384:
        return EVP_sha384();
    case 512:
        return EVP_sha512();
    }
    return NULL;
}

struct jwt_key {
    char *kid; /* NULL: the key has none */
    size_t kid_len;
    unsigned algs; /* BIT(enum alg) it verifies */
    EVP_PKEY *pkey;
    uint8_t *secret;
    size_t secret_len;
    size_t sig_len; /* RSA: the modulus size */
};

struct jwt_provider {
    char *name;
    char *issuer;
    char **audiences;
    size_t audience_count;
    int64_t skew;
    struct jwt_pair *required;
    size_t required_count;
    struct jwt_pair *forwards;
    size_t forward_count;
    struct jwt_key *keys;
    size_t key_count;
    uint64_t serial; /* tells cache entries of different providers apart */
};

/* HMAC keys as long as the hash, RFC 7518 section 3.2. */
static unsigned hmac_algs(size_t len)
{
    return (len >= 32 ? BIT(HS256) : 0) | (len >= 48 ? BIT(HS384) : 0) |
           (len >= 64 ? BIT(HS512) : 0);
}

/* -- DER, just enough to hand JWK members to d2i_PUBKEY -- */

static size_t der_header_len(size_t len)
{
    return len < 0x80 ? 2 : len < 0x100 ? 3 : 4;
}

static size_t der_header(uint8_t *out, uint8_t tag, size_t len)
{
    size_t n = 0;

    out[n++] = tag;
    if (len >= 0x100) {
        out[n++] = 0x82;
        out[n++] = (uint8_t)(len >> 8);
    } else if (len >= 0x80) {
        out[n++] = 0x81;
    }
    out[n++] = (uint8_t)len;
    return n;
}

/* An unsigned big-endian number as a DER INTEGER: leading zeros dropped,
 * one put back when the high bit is set. */
static size_t der_uint_len(const uint8_t *v, size_t len)
{
    while (len > 1 && v[0] == 0)
        v++, len--;
    return der_header_len(len + (v[0] >> 7)) + len + (v[0] >> 7);
}

static size_t der_uint(uint8_t *out, const uint8_t *v, size_t len)
{
    size_t n;

    while (len > 1 && v[0] == 0)
        v++, len--;
    n = der_header(out, 0x02, len + (v[0] >> 7));
    if (v[0] & 0x80) out[n++] = 0;
    memcpy(out + n, v, len);
    return n + len;
}

/* The signature JOSE writes as r || s, as the ECDSA-Sig-Value DER that
 * libcrypto verifies. */
static size_t ecdsa_der(const uint8_t *rs, size_t half, uint8_t *out)
{
    size_t body = der_uint_len(rs, half) + der_uint_len(rs + half, half);
    size_t n = der_header(out, 0x30, body);

    n += der_uint(out + n, rs, half);
    return n + der_uint(out + n, rs + half, half);
}

static EVP_PKEY *parse_spki(const uint8_t *der, size_t len, int type)
{
    const uint8_t *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);

    if (pkey && (p != der + len || EVP_PKEY_id(pkey) != type)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    return pkey;
}

static EVP_PKEY *rsa_key(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len)
{
    static const uint8_t algid[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                    0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    uint8_t der[MAX_RSA_BITS / 8 + 64];
    size_t ints = der_uint_len(n, n_len) + der_uint_len(e, e_len);
    size_t key = der_header_len(ints) + ints, bits = 1 + key;
    size_t pos = der_header(der, 0x30, sizeof algid + der_header_len(bits) + bits);

    memcpy(der + pos, algid, sizeof algid);
    pos += sizeof algid;
    pos += der_header(der + pos, 0x03, bits);
    der[pos++] = 0;
    pos += der_header(der + pos, 0x30, ints);
    pos += der_uint(der + pos, n, n_len);
    pos += der_uint(der + pos, e, e_len);
    return parse_spki(der, pos, EVP_PKEY_RSA);
}

static EVP_PKEY *ec_key(int alg, const uint8_t *x, const uint8_t *y, size_t coord)
{
    static const uint8_t p256[] = {0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                   0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const uint8_t p384[] = {0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                                   0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    const uint8_t *algid = alg == ES256 ? p256 : p384;
    size_t algid_len = alg == ES256 ? sizeof p256 : sizeof p384;
    size_t bits = 2 + 2 * coord; /* unused-bits byte, 04 (uncompressed), x, y */
    uint8_t der[160];
    size_t pos = der_header(der, 0x30, algid_len + der_header_len(bits) + bits);

    memcpy(der + pos, algid, algid_len);
    pos += algid_len;
    pos += der_header(der + pos, 0x03, bits);
    der[pos++] = 0;
    der[pos++] = 4;
    memcpy(der + pos, x, coord);
    memcpy(der + pos + coord, y, coord);
    return parse_spki(der, pos + 2 * coord, EVP_PKEY_EC);
}

/* -- JWK Set (RFC 7517) -- */

struct jwk {
    const char *text;
    const struct jwt_slot *m;
    size_t count;
    char what[96]; /* "keys[3] (kid \"abc\")" for messages */
};

/* 1 with the string member `name`, 0 when absent, -1 (err set) when it is
 * not a string. */
static int jwk_string(const struct jwk *k, const char *name, const char **v, size_t *len, char *err,
                      size_t err_size)
{
    const struct jwt_slot *s = find_member(k->text, k->m, k->count, name, strlen(name));

    if (!s) return 0;
    if (s->type != JSON_STRING) {
        set_err(err, err_size, "%s: \"%s\" is not a string", k->what, name);
        return -1;
    }
    *v = k->text + s->value;
    *len = s->value_len;
    return 1;
}

/* base64url with its padding removed (tolerated where keys are read). */
static size_t unpadded_len(const char *s, size_t len)
{
    if (len % 4 == 0 && len && s[len - 1] == '=') len -= 1 + (s[len - 2] == '=');
    return len;
}

static bool str_is(const char *s, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(s, want, len) == 0;
}

/* A base64url member (padding tolerated, as some issuers add it) into a
 * new buffer of *len bytes; NULL with err set when absent or invalid. */
static uint8_t *jwk_bytes(const struct jwk *k, const char *name, size_t *len, char *err,
                          size_t err_size)
{
    const char *s;
    size_t slen;
    uint8_t *out;
    int found = jwk_string(k, name, &s, &slen, err, err_size);

    if (found <= 0) {
        if (!found) set_err(err, err_size, "%s: \"%s\" is missing", k->what, name);
        return NULL;
    }
    slen = unpadded_len(s, slen);
    out = malloc(base64url_decoded_len(slen) + 1);
    if (!out) {
        set_err(err, err_size, "out of memory");
        return NULL;
    }
    if (slen == 0 || !base64url_decode(s, slen, out, base64url_decoded_len(slen), len)) {
        set_err(err, err_size, "%s: \"%s\" is not base64url", k->what, name);
        free(out);
        return NULL;
    }
    return out;
}

static size_t strip_zeros(const uint8_t **v, size_t len)
{
    while (len > 1 && (*v)[0] == 0)
        (*v)++, len--;
    return len;
}

static size_t bit_length(const uint8_t *v, size_t len)
{
    size_t bits = len * 8;

    for (uint8_t top = v[0]; bits && !(top & 0x80); top = (uint8_t)(top << 1))
        bits--;
    return bits;
}

static int load_rsa(const struct jwk *k, struct jwt_key *key, char *err, size_t err_size)
{
    size_t n_len = 0, e_len = 0;
    uint8_t *n = jwk_bytes(k, "n", &n_len, err, err_size);
    uint8_t *e = n ? jwk_bytes(k, "e", &e_len, err, err_size) : NULL;
    const uint8_t *nv = n, *ev = e;
    int rc = -1;

    if (!e) goto out;
    n_len = strip_zeros(&nv, n_len);
    e_len = strip_zeros(&ev, e_len);
    size_t bits = bit_length(nv, n_len);
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
        set_err(err, err_size, "%s: RSA modulus of %zu bits (%d to %d allowed)", k->what, bits,
                MIN_RSA_BITS, MAX_RSA_BITS);
        goto out;
    }
    /* e = 1 would make every message its own signature. */
    if (e_len > 4 || !(ev[e_len - 1] & 1) || (e_len == 1 && ev[0] < 3)) {
        set_err(err, err_size, "%s: RSA exponent \"e\" is not an odd number from 3 to 2^32",
                k->what);
        goto out;
    }
    if (!(key->pkey = rsa_key(nv, n_len, ev, e_len))) {
        set_err(err, err_size, "%s: RSA key rejected by the crypto library", k->what);
        goto out;
    }
    key->sig_len = (size_t)EVP_PKEY_size(key->pkey);
    key->algs = RSA_ALGS;
    rc = 0;
out:
    free(n);
    free(e);
    return rc;
}

/* 1 when the curve is not one we verify (the key is skipped). */
static int load_ec(const struct jwk *k, struct jwt_key *key, char *err, size_t err_size)
{
    const char *crv;
    size_t crv_len, x_len = 0, y_len = 0, coord;
    int alg, found = jwk_string(k, "crv", &crv, &crv_len, err, err_size), rc = -1;

    if (found <= 0) {
        if (!found) set_err(err, err_size, "%s: \"crv\" is missing", k->what);
        return -1;
    }
    if (str_is(crv, crv_len, "P-256"))
        alg = ES256, coord = 32;
    else if (str_is(crv, crv_len, "P-384"))
        alg = ES384, coord = 48;
    else
        return 1;
    uint8_t *x = jwk_bytes(k, "x", &x_len, err, err_size);
    uint8_t *y = x ? jwk_bytes(k, "y", &y_len, err, err_size) : NULL;
    if (!y) goto out;
    if (x_len != coord || y_len != coord) {
        set_err(err, err_size, "%s: \"x\" and \"y\" of a %s key must be %zu bytes", k->what,
                algs[alg].name, coord);
        goto out;
    }
    if (!(key->pkey = ec_key(alg, x, y, coord))) {
        set_err(err, err_size, "%s: EC point is not on the curve", k->what);
        goto out;
    }
    key->algs = BIT(alg);
    rc = 0;
out:
    free(x);
    free(y);
    return rc;
}

static int load_okp(const struct jwk *k, struct jwt_key *key, char *err, size_t err_size)
{
    const char *crv;
    size_t crv_len, x_len = 0;
    int found = jwk_string(k, "crv", &crv, &crv_len, err, err_size), rc = -1;

    if (found <= 0) {
        if (!found) set_err(err, err_size, "%s: \"crv\" is missing", k->what);
        return -1;
    }
    if (!str_is(crv, crv_len, "Ed25519")) return 1;
    uint8_t *x = jwk_bytes(k, "x", &x_len, err, err_size);
    if (!x) return -1;
    if (x_len != 32) {
        set_err(err, err_size, "%s: \"x\" of an Ed25519 key must be 32 bytes", k->what);
    } else if (!(key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32))) {
        set_err(err, err_size, "%s: Ed25519 key rejected by the crypto library", k->what);
    } else {
        key->algs = BIT(EDDSA);
        rc = 0;
    }
    ERR_clear_error();
    free(x);
    return rc;
}

static int load_secret(struct jwt_key *key, uint8_t *secret, size_t len, const char *what,
                       char *err, size_t err_size)
{
    if (len < MIN_SECRET) {
        set_err(err, err_size, "%s is %zu bytes; HMAC keys need at least %d", what, len,
                MIN_SECRET);
        free(secret);
        return -1;
    }
    key->secret = secret;
    key->secret_len = len;
    key->algs = hmac_algs(len);
    return 0;
}

/* 1 when "use" or "key_ops" exclude verifying signatures. */
static int not_for_signatures(const struct jwk *k, char *err, size_t err_size)
{
    const struct jwt_slot *ops = find_member(k->text, k->m, k->count, "key_ops", 7);
    const char *use, *v;
    size_t use_len, len;
    int found = jwk_string(k, "use", &use, &use_len, err, err_size);
    struct json_iter it;
    uint8_t type;

    if (found < 0) return -1;
    if (found && !str_is(use, use_len, "sig")) return 1;
    if (!ops) return 0;
    if (ops->type != JSON_ARRAY) {
        set_err(err, err_size, "%s: \"key_ops\" is not an array", k->what);
        return -1;
    }
    array_begin(&it, k->text + ops->value, ops->value_len);
    while (array_next(&it, &v, &len, &type))
        if (type == JSON_STRING && raw_string_eq(v, len, "verify", 6)) return 0;
    return 1;
}

static void describe_key(struct jwk *k, size_t index)
{
    const char *kid;
    size_t len;
    bool printable = jwk_string(k, "kid", &kid, &len, NULL, 0) > 0 && len <= 48;

    for (size_t i = 0; printable && i < len; i++)
        printable = kid[i] >= 0x20 && kid[i] < 0x7f && kid[i] != '"';
    if (printable)
        snprintf(k->what, sizeof k->what, "keys[%zu] (kid \"%.*s\")", index, (int)len, kid);
    else
        snprintf(k->what, sizeof k->what, "keys[%zu]", index);
}

/* 0 with `key` filled, 1 when the key is well-formed but not usable for
 * verifying (skipped), -1 on error. */
static int load_jwk(struct jwk *k, struct jwt_key *key, char *err, size_t err_size)
{
    const char *kty, *alg_name, *kid;
    size_t kty_len, alg_len, kid_len;
    int alg = -1, rc, found;

    if ((found = jwk_string(k, "kty", &kty, &kty_len, err, err_size)) <= 0) {
        if (!found) set_err(err, err_size, "%s: \"kty\" is missing", k->what);
        return -1;
    }
    if ((rc = not_for_signatures(k, err, err_size)) != 0) return rc;
    if ((found = jwk_string(k, "alg", &alg_name, &alg_len, err, err_size)) < 0) return -1;
    if (found && (alg = alg_by_name(alg_name, alg_len)) < 0) {
        if (str_is(alg_name, alg_len, "none")) {
            set_err(err, err_size, "%s: \"alg\" is \"none\"", k->what);
            return -1;
        }
        return 1; /* an encryption key, or a signature algorithm we do not do */
    }
    if (str_is(kty, kty_len, "RSA")) {
        rc = load_rsa(k, key, err, err_size);
    } else if (str_is(kty, kty_len, "EC")) {
        rc = load_ec(k, key, err, err_size);
    } else if (str_is(kty, kty_len, "OKP")) {
        rc = load_okp(k, key, err, err_size);
    } else if (str_is(kty, kty_len, "oct")) {
        size_t len = 0;
        uint8_t *secret = jwk_bytes(k, "k", &len, err, err_size);
        char what[112];

        snprintf(what, sizeof what, "%s: \"k\"", k->what);
        rc = secret ? load_secret(key, secret, len, what, err, err_size) : -1;
    } else {
        return 1;
    }
    if (rc) return rc;
    if (alg >= 0 && !(key->algs & BIT(alg))) {
        set_err(err, err_size, "%s: \"alg\" %s does not fit the key%s", k->what, algs[alg].name,
                algs[alg].kty == KTY_OCT && key->secret ? " (too short)" : "");
        return -1;
    }
    if (alg >= 0) key->algs = BIT(alg);
    if ((found = jwk_string(k, "kid", &kid, &kid_len, err, err_size)) < 0) return -1;
    if (found) {
        if (!(key->kid = malloc(kid_len + 1))) {
            set_err(err, err_size, "out of memory");
            return -1;
        }
        memcpy(key->kid, kid, kid_len);
        key->kid[kid_len] = 0;
        key->kid_len = kid_len;
    }
    return 0;
}

static void free_key(struct jwt_key *key)
{
    EVP_PKEY_free(key->pkey);
    if (key->secret) OPENSSL_cleanse(key->secret, key->secret_len);
    free(key->secret);
    free(key->kid);
    memset(key, 0, sizeof *key);
}

static void line_col(const char *text, const char *at, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}

/* text is the provider's own copy (member strings are unescaped in it). */
static int load_jwks(struct jwt_provider *p, char *text, size_t len, const char *source, char *err,
                     size_t err_size)
{
    struct jwt_slot top[JWT_MAX_CLAIMS], m[JWT_MAX_CLAIMS];
    struct json j;
    struct json_iter it;
    const char *elem;
    size_t elem_len, index = 0, skipped = 0, line, col;
    uint8_t type;
    int n = json_object(&j, text, len, top, JWT_MAX_CLAIMS);
    const struct jwt_slot *keys = n < 0 ? NULL : find_member(text, top, (size_t)n, "keys", 4);

    if (n < 0) {
        line_col(text, j.fail, &line, &col);
        if (j.too_many)
            set_err(err, err_size, "%s: more than %d members (line %zu, column %zu)", source,
                    JWT_MAX_CLAIMS, line, col);
        else
            set_err(err, err_size, "%s: not a JSON object (error at line %zu, column %zu)", source,
                    line, col);
        return -1;
    }
    if (!keys || keys->type != JSON_ARRAY) {
        set_err(err, err_size, "%s: no \"keys\" array (not a JWK Set)", source);
        return -1;
    }
    if (!(p->keys = calloc(JWKS_MAX_KEYS, sizeof *p->keys))) {
        set_err(err, err_size, "out of memory");
        return -1;
    }
    array_begin(&it, text + keys->value, keys->value_len);
    for (; array_next(&it, &elem, &elem_len, &type); index++) {
        struct jwk k = {.text = elem, .m = m};
        struct jwt_key *key = &p->keys[p->key_count];
        char msg[256];
        int rc;

        if (type != JSON_OBJECT) {
            set_err(err, err_size, "%s: keys[%zu] is not an object", source, index);
            return -1;
        }
        if (p->key_count == JWKS_MAX_KEYS) {
            set_err(err, err_size, "%s: more than %d keys", source, JWKS_MAX_KEYS);
            return -1;
        }
        /* elem lies inside text, which is ours to unescape in place. */
        if ((n = json_object(&j, (char *)elem, elem_len, m, JWT_MAX_CLAIMS)) < 0) {
            set_err(err, err_size, "%s: keys[%zu] has more than %d members", source, index,
                    JWT_MAX_CLAIMS);
            return -1;
        }
        unescape_members((char *)elem, m, (size_t)n);
        k.count = (size_t)n;
        describe_key(&k, index);
        const struct jwt_slot *dup = find_duplicate(elem, m, k.count);
        if (dup) {
            set_err(err, err_size, "%s: %s: member \"%.*s\" appears twice", source, k.what,
                    (int)dup->name_len, elem + dup->name);
            return -1;
        }
        rc = load_jwk(&k, key, msg, sizeof msg);
        if (rc < 0) {
            set_err(err, err_size, "%s: %s", source, msg);
            free_key(key);
            return -1;
        }
        if (rc > 0)
            skipped++, free_key(key);
        else
            p->key_count++;
    }
    if (!p->key_count) {
        set_err(err, err_size, "%s: no key usable to verify signatures (%zu skipped)", source,
                skipped);
        return -1;
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n;

    if (!f) {
        set_err(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!(text = malloc(JWKS_MAX_BYTES + 1))) {
        set_err(err, err_size, "out of memory");
    } else if ((n = fread(text, 1, JWKS_MAX_BYTES + 1, f)) > JWKS_MAX_BYTES) {
        set_err(err, err_size, "%s: larger than %d bytes", path, JWKS_MAX_BYTES);
    } else if (ferror(f)) {
        set_err(err, err_size, "%s: read error", path);
    } else {
        fclose(f);
        *len = n;
        return text;
    }
    fclose(f);
    free(text);
    return NULL;
}

/* -- provider -- */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c) ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y) return false;
    }
    return *a == *b;
}

/* Headers a claim must not be able to set: framing, routing, hop-by-hop. */
static bool reserved_header(const char *name)
{
    static const char *const reserved[] = {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "proxy-connection",
    };

    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (eq_nocase(name, reserved[i])) return true;
    return false;
}

static char *dup_str(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;

    if (s && !d) *oom = true;
    return d;
}

static struct jwt_pair *dup_pairs(const struct jwt_pair *src, size_t n, bool *oom)
{
    struct jwt_pair *d = n ? calloc(n, sizeof *d) : NULL;

    if (n && !d) *oom = true;
    for (size_t i = 0; d && i < n; i++) {
        d[i].name = dup_str(src[i].name, oom);
        d[i].value = dup_str(src[i].value, oom);
    }
    return d;
}

static int check_params(const struct jwt_provider_params *pp, char *err, size_t err_size)
{
    int sources = !!pp->jwks_file + !!pp->jwks + !!pp->secret;

    if (!pp->name || !*pp->name) return set_err(err, err_size, "provider needs a name"), -1;
    if (sources != 1)
        return set_err(err, err_size, "exactly one of jwks_file and secret is needed"), -1;
    if (pp->clock_skew < 0 || pp->clock_skew > MAX_SKEW)
        return set_err(err, err_size, "clock_skew must be from 0 to %d seconds", MAX_SKEW), -1;
    if (pp->issuer && !*pp->issuer) return set_err(err, err_size, "issuer is empty"), -1;
    for (size_t i = 0; i < pp->audience_count; i++)
        if (!pp->audiences[i] || !*pp->audiences[i])
            return set_err(err, err_size, "audiences[%zu] is empty", i), -1;
    for (size_t i = 0; i < pp->required_count; i++)
        if (!pp->required_claims[i].name || !*pp->required_claims[i].name)
            return set_err(err, err_size, "required claim %zu has no name", i), -1;
    for (size_t i = 0; i < pp->forward_count; i++) {
        const char *claim = pp->forward_claims[i].name, *header = pp->forward_claims[i].value;

        if (!claim || !*claim) return set_err(err, err_size, "forward_claims: empty claim"), -1;
        if (!header || !*header)
            return set_err(err, err_size, "forward_claims: %s: no header name", claim), -1;
        for (const char *c = header; *c; c++)
            if (!is_tchar((unsigned char)*c))
                return set_err(err, err_size, "forward_claims: %s: \"%s\" is not a header name",
                               claim, header),
                       -1;
        if (reserved_header(header))
            return set_err(err, err_size, "forward_claims: %s: header %s cannot be set", claim,
                           header),
                   -1;
        for (size_t k = 0; k < i; k++)
            if (eq_nocase(header, pp->forward_claims[k].value))
                return set_err(err, err_size, "forward_claims: header %s used twice", header), -1;
    }
    return 0;
}

static int load_keys(struct jwt_provider *p, const struct jwt_provider_params *pp, char *err,
                     size_t err_size)
{
    size_t len = 0;
    char *text;
    int rc;

    if (pp->secret) {
        size_t slen = unpadded_len(pp->secret, strlen(pp->secret));
        uint8_t *secret = malloc(base64url_decoded_len(slen) + 1);

        if (!secret || !(p->keys = calloc(1, sizeof *p->keys))) {
            free(secret);
            return set_err(err, err_size, "out of memory"), -1;
        }
        if (!slen || !base64url_decode(pp->secret, slen, secret, slen, &len)) {
            free(secret);
            return set_err(err, err_size, "secret is not base64url"), -1;
        }
        if (load_secret(p->keys, secret, len, "secret", err, err_size) < 0) return -1;
        p->key_count = 1;
        return 0;
    }
    if (pp->jwks_file) {
        text = read_file(pp->jwks_file, &len, err, err_size);
    } else if ((text = malloc(pp->jwks_len + 1))) {
        memcpy(text, pp->jwks, pp->jwks_len);
        len = pp->jwks_len;
    } else {
        set_err(err, err_size, "out of memory");
    }
    if (!text) return -1;
    rc = load_jwks(p, text, len, pp->jwks_file ? pp->jwks_file : "jwks", err, err_size);
    free(text);
    return rc;
}

struct jwt_provider *jwt_provider_new(const struct jwt_provider_params *pp, char *err,
                                      size_t err_size)
{
    static _Atomic uint64_t serials;
    struct jwt_provider *p;
    bool oom = false;

    if (check_params(pp, err, err_size) < 0) return NULL;
    if (!(p = calloc(1, sizeof *p))) return set_err(err, err_size, "out of memory"), NULL;
    p->serial = ++serials;
    p->skew = pp->clock_skew;
    p->name = dup_str(pp->name, &oom);
    p->issuer = dup_str(pp->issuer, &oom);
    if (pp->audience_count && !(p->audiences = calloc(pp->audience_count, sizeof(char *))))
        oom = true;
    for (size_t i = 0; p->audiences && i < pp->audience_count; i++, p->audience_count++)
        p->audiences[i] = dup_str(pp->audiences[i], &oom);
    p->required = dup_pairs(pp->required_claims, pp->required_count, &oom);
    p->required_count = p->required ? pp->required_count : 0;
    p->forwards = dup_pairs(pp->forward_claims, pp->forward_count, &oom);
    p->forward_count = p->forwards ? pp->forward_count : 0;
    if (oom) {
        set_err(err, err_size, "out of memory");
    } else if (load_keys(p, pp, err, err_size) == 0) {
        return p;
    }
    jwt_provider_free(p);
    return NULL;
}

static void free_pairs(struct jwt_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)pairs[i].name);
        free((char *)pairs[i].value);
    }
    free(pairs);
}

void jwt_provider_free(struct jwt_provider *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->key_count; i++)
        free_key(&p->keys[i]);
    free(p->keys);
    for (size_t i = 0; i < p->audience_count; i++)
        free(p->audiences[i]);
    free(p->audiences);
    free_pairs(p->required, p->required_count);
    free_pairs(p->forwards, p->forward_count);
    free(p->name);
    free(p->issuer);
    free(p);
}

const char *jwt_provider_name(const struct jwt_provider *p)
{
    return p->name;
}

const struct jwt_pair *jwt_provider_forwards(const struct jwt_provider *p, size_t *count)
{
    *count = p->forward_count;
    return p->forwards;
}

size_t jwt_provider_key_count(const struct jwt_provider *p)
{
    return p->key_count;
}

/* ---- the cache ---- */

struct jwt_entry {
    struct jwt_entry *chain;       /* same bucket */
    struct jwt_entry *prev, *next; /* recency: head is the most recent */
    uint64_t hash;
    uint64_t provider;
    int64_t expires;    /* served while now < expires */
    int64_t valid_from; /* and now >= valid_from */
    size_t size;
    uint32_t token_len, json_len, count;
    struct jwt_slot slots[]; /* then the token, then the claims JSON */
};

struct jwt_cache {
    uint64_t key[2]; /* SipHash key: bucket choice is not predictable */
    struct jwt_entry **buckets;
    size_t mask;
    struct jwt_entry *head, *tail;
    size_t max_entries, max_bytes;
    int64_t max_ttl;
    EVP_MD_CTX *md;
    struct jwt_cache_stats stats;
    /* The verification in progress. */
    struct jwt_slot header_slots[JWT_MAX_CLAIMS];
    struct jwt_slot slots[JWT_MAX_CLAIMS];
    uint8_t sig[MAX_SIG];
    uint8_t der[MAX_SIG + 16];
    char header[MAX_JSON];
    char json[MAX_JSON];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                                  \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                                  \
    } while (0)

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* SipHash-2-4 (Aumasson and Bernstein). */
static uint64_t siphash(const uint64_t key[2], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t v0 = key[0] ^ 0x736f6d6570736575ull, v1 = key[1] ^ 0x646f72616e646f6dull;
    uint64_t v2 = key[0] ^ 0x6c7967656e657261ull, v3 = key[1] ^ 0x7465646279746573ull;
    uint64_t m, last = (uint64_t)len << 56;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t k = 0; i + k < len; k++)
        last |= (uint64_t)p[i + k] << (8 * k);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct jwt_cache *jwt_cache_new(size_t max_entries, size_t max_bytes, int64_t max_ttl)
{
    struct jwt_cache *c = calloc(1, sizeof *c);
    size_t buckets = 16;

    if (!c) return NULL;
    while (buckets < max_entries && buckets < ((size_t)1 << 30))
        buckets <<= 1;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    c->max_ttl = max_ttl > 0 ? max_ttl : 0;
    c->md = EVP_MD_CTX_new();
    if (max_entries) c->buckets = calloc(buckets, sizeof *c->buckets);
    if (!c->md || (max_entries && !c->buckets) ||
        RAND_bytes((uint8_t *)c->key, sizeof c->key) != 1) {
        ERR_clear_error();
        jwt_cache_free(c);
        return NULL;
    }
    c->mask = buckets - 1;
    return c;
}

static void cache_remove(struct jwt_cache *c, struct jwt_entry *e)
{
    struct jwt_entry **link = &c->buckets[e->hash & c->mask];

    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->stats.entries--;
    c->stats.bytes -= e->size;
    free(e);
}

void jwt_cache_clear(struct jwt_cache *c)
{
    while (c->head)
        cache_remove(c, c->head);
}

void jwt_cache_free(struct jwt_cache *c)
{
    if (!c) return;
    if (c->buckets) jwt_cache_clear(c);
    free(c->buckets);
    EVP_MD_CTX_free(c->md);
    free(c);
}

void jwt_cache_stats(const struct jwt_cache *c, struct jwt_cache_stats *out)
{
    *out = c->stats;
}

static char *entry_token(struct jwt_entry *e)
{
    return (char *)(e->slots + e->count);
}

static void claims_from_entry(struct jwt_claims *out, struct jwt_entry *e)
{
    out->json = entry_token(e) + e->token_len;
    out->slots = e->slots;
    out->count = e->count;
}

static void lru_push_front(struct jwt_cache *c, struct jwt_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    else
        c->tail = e;
    c->head = e;
}

static struct jwt_entry *cache_find(struct jwt_cache *c, uint64_t hash, uint64_t provider,
                                    const char *token, size_t len, int64_t now)
{
    struct jwt_entry *e;

    if (!c->buckets) return NULL;
    for (e = c->buckets[hash & c->mask]; e; e = e->chain) {
        if (e->hash != hash || e->provider != provider || e->token_len != len ||
            memcmp(entry_token(e), token, len) != 0)
            continue;
        if (now >= e->expires || now < e->valid_from) {
            c->stats.expired++;
            cache_remove(c, e);
            return NULL;
        }
        if (e != c->head) {
            e->prev->next = e->next;
            if (e->next)
                e->next->prev = e->prev;
            else
                c->tail = e->prev;
            lru_push_front(c, e);
        }
        return e;
    }
    return NULL;
}

/* Keeps a verified token; `claims` then points into the new entry. */
static void cache_insert(struct jwt_cache *c, uint64_t hash, uint64_t provider, const char *token,
                         size_t len, struct jwt_claims *claims, size_t json_len, int64_t expires,
                         int64_t valid_from)
{
    size_t slots = claims->count * sizeof(struct jwt_slot);
    size_t size = sizeof(struct jwt_entry) + slots + len + json_len;
    struct jwt_entry *e;

    if (!c->max_entries || size > c->max_bytes) return;
    while (c->tail &&
           (c->stats.entries >= c->max_entries || c->stats.bytes + size > c->max_bytes)) {
        c->stats.evictions++;
        cache_remove(c, c->tail);
    }
    if (!(e = malloc(size))) return;
    e->hash = hash;
    e->provider = provider;
    e->expires = expires;
    e->valid_from = valid_from;
    e->size = size;
    e->token_len = (uint32_t)len;
    e->json_len = (uint32_t)json_len;
    e->count = claims->count;
    memcpy(e->slots, claims->slots, slots);
    memcpy(entry_token(e), token, len);
    memcpy(entry_token(e) + len, claims->json, json_len);
    e->chain = c->buckets[hash & c->mask];
    c->buckets[hash & c->mask] = e;
    lru_push_front(c, e);
    c->stats.entries++;
    c->stats.bytes += size;
    claims_from_entry(claims, e);
}

/* ---- verification ---- */

static bool key_has_kid(const struct jwt_key *k, const char *kid, size_t kid_len)
{
    return !kid || !k->kid || (k->kid_len == kid_len && memcmp(k->kid, kid, kid_len) == 0);
}

/* Whether some key could verify alg for this kid, and if not, why. */
static int select_keys(const struct jwt_provider *p, int alg, const char *kid, size_t kid_len)
{
    bool kid_known = false;

    for (size_t i = 0; i < p->key_count; i++) {
        if (!key_has_kid(&p->keys[i], kid, kid_len)) continue;
        kid_known = true;
        if (p->keys[i].algs & BIT(alg)) return JWT_OK;
    }
    return kid_known || !kid ? JWT_ALG_NOT_ALLOWED : JWT_UNKNOWN_KID;
}

static bool verify_hmac(const struct jwt_key *k, int alg, const uint8_t *msg, size_t len,
                        const uint8_t *sig, size_t sig_len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;

    if (!HMAC(alg_md(alg), k->secret, (int)k->secret_len, msg, len, mac, &mac_len)) return false;
    return mac_len == sig_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

static bool verify_pkey(struct jwt_cache *c, const struct jwt_key *k, int alg, const uint8_t *msg,
                        size_t len, const uint8_t *sig, size_t sig_len)
{
    const EVP_MD *md = alg_md(alg);
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = false;

    switch (algs[alg].kty) {
    case KTY_RSA:
        if (sig_len != k->sig_len) return false;
        break;
    case KTY_EC: {
        size_t half = alg == ES256 ? 32 : 48;

        if (sig_len != 2 * half) return false;
        sig_len = ecdsa_der(sig, half, c->der);
        sig = c->der;
        break;
    }
    default:
        if (sig_len != 64) return false;
    }
    if (EVP_DigestVerifyInit(c->md, &pctx, md, NULL, k->pkey) == 1 &&
        (alg < PS256 || alg > PS512 ||
         (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
          EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1 &&
          EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1)))
        ok = EVP_DigestVerify(c->md, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_reset(c->md);
    /* Leave nothing on this thread's error queue for the TLS code to trip on. */
    ERR_clear_error();
    return ok;
}

static bool check_signature(const struct jwt_provider *p, struct jwt_cache *c, int alg,
                            const char *kid, size_t kid_len, const char *msg, size_t msg_len,
                            const uint8_t *sig, size_t sig_len)
{
    for (size_t i = 0; i < p->key_count; i++) {
        const struct jwt_key *k = &p->keys[i];

        if (!key_has_kid(k, kid, kid_len) || !(k->algs & BIT(alg))) continue;
        if (algs[alg].kty == KTY_OCT
                ? verify_hmac(k, alg, (const uint8_t *)msg, msg_len, sig, sig_len)
                : verify_pkey(c, k, alg, (const uint8_t *)msg, msg_len, sig, sig_len))
            return true;
    }
    return false;
}

/* Splits header.payload.signature; every other byte must be base64url. */
static bool split(const char *token, size_t len, size_t *dot1, size_t *dot2)
{
    size_t dots = 0;

    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (++dots > 2) return false;
            *(dots == 1 ? dot1 : dot2) = i;
        } else if (!base64url_char((unsigned char)token[i])) {
            return false;
        }
    }
    return dots == 2;
}

static int read_header(struct jwt_cache *c, const char *seg, size_t len, int *alg, const char **kid,
                       size_t *kid_len)
{
    struct json j;
    size_t n;
    int count;

    if (!base64url_decode(seg, len, (uint8_t *)c->header, sizeof c->header, &n))
        return JWT_MALFORMED;
    if ((count = json_members(&j, c->header, n, c->header_slots, JWT_MAX_CLAIMS)) < 0)
        return JWT_MALFORMED;
    const struct jwt_slot *a = find_member(c->header, c->header_slots, (size_t)count, "alg", 3);
    const struct jwt_slot *k = find_member(c->header, c->header_slots, (size_t)count, "kid", 3);
    /* Extensions marked critical must be understood; we understand none. */
    if (!a || a->type != JSON_STRING || (k && k->type != JSON_STRING) ||
        find_member(c->header, c->header_slots, (size_t)count, "crit", 4))
        return JWT_MALFORMED;
    if ((*alg = alg_by_name(c->header + a->value, a->value_len)) < 0) return JWT_ALG_NOT_ALLOWED;
    *kid = k ? c->header + k->value : NULL;
    *kid_len = k ? k->value_len : 0;
    return JWT_OK;
}

static bool audience_matches(const struct jwt_provider *p, const char *v, size_t len)
{
    for (size_t i = 0; i < p->audience_count; i++)
        if (str_is(v, len, p->audiences[i])) return true;
    return false;
}

static bool check_audience(const struct jwt_provider *p, const char *json,
                           const struct jwt_slot *aud)
{
    struct json_iter it;
    const char *v;
    size_t len;
    uint8_t type;

    if (!aud) return false;
    if (aud->type == JSON_STRING) return audience_matches(p, json + aud->value, aud->value_len);
    if (aud->type != JSON_ARRAY) return false;
    array_begin(&it, json + aud->value, aud->value_len);
    while (array_next(&it, &v, &len, &type)) {
        for (size_t i = 0; type == JSON_STRING && i < p->audience_count; i++)
            if (raw_string_eq(v, len, p->audiences[i], strlen(p->audiences[i]))) return true;
    }
    return false;
}

static bool claim_has_value(const char *json, const struct jwt_slot *s, const char *want)
{
    struct json_iter it;
    const char *v;
    size_t len, want_len = strlen(want);
    uint8_t type;

    switch (s->type) {
    case JSON_STRING:
    case JSON_NUMBER:
    case JSON_TRUE:
    case JSON_FALSE:
        return str_is(json + s->value, s->value_len, want);
    case JSON_ARRAY:
        array_begin(&it, json + s->value, s->value_len);
        while (array_next(&it, &v, &len, &type))
            if (type == JSON_STRING && raw_string_eq(v, len, want, want_len)) return true;
        return false;
    }
    return false;
}

struct validity {
    int64_t expires;
    int64_t valid_from;
};

static int numeric_date(const char *json, const struct jwt_slot *s, int64_t *out)
{
    if (s->type != JSON_NUMBER) return -1;
    *out = number_i64(json + s->value, s->value_len);
    return 0;
}

static int check_claims(const struct jwt_provider *p, const struct jwt_claims *cl, int64_t now,
                        struct validity *v)
{
    const struct jwt_slot *exp = find_member(cl->json, cl->slots, cl->count, "exp", 3);
    const struct jwt_slot *nbf = find_member(cl->json, cl->slots, cl->count, "nbf", 3);
    int64_t t;

    v->expires = INT64_MAX;
    v->valid_from = INT64_MIN;
    if (exp) {
        if (numeric_date(cl->json, exp, &t) < 0) return JWT_MALFORMED;
        if (now >= add_sat(t, p->skew)) return JWT_EXPIRED;
        v->expires = t;
    }
    if (nbf) {
        if (numeric_date(cl->json, nbf, &t) < 0) return JWT_MALFORMED;
        if (add_sat(now, p->skew) < t) return JWT_NOT_YET_VALID;
        v->valid_from = t - p->skew;
    }
    if (p->issuer) {
        const struct jwt_slot *iss = find_member(cl->json, cl->slots, cl->count, "iss", 3);

        if (!iss || iss->type != JSON_STRING ||
            !str_is(cl->json + iss->value, iss->value_len, p->issuer))
            return JWT_WRONG_ISSUER;
    }
    if (p->audience_count &&
        !check_audience(p, cl->json, find_member(cl->json, cl->slots, cl->count, "aud", 3)))
        return JWT_WRONG_AUDIENCE;
    for (size_t i = 0; i < p->required_count; i++) {
        const char *name = p->required[i].name, *want = p->required[i].value;
        const struct jwt_slot *s = find_member(cl->json, cl->slots, cl->count, name, strlen(name));

        if (!s || (want && !claim_has_value(cl->json, s, want))) return JWT_MISSING_CLAIM;
    }
    return JWT_OK;
}

/* Shape, header, key choice and signature; on JWT_OK, [dot1, dot2) is the
 * payload segment. */
static int check_jws(const struct jwt_provider *p, struct jwt_cache *c, const char *token,
                     size_t len, size_t *dot1, size_t *dot2)
{
    const char *kid;
    size_t kid_len, sig_len, sig_chars;
    int alg, rc;

    if (!split(token, len, dot1, dot2)) return JWT_MALFORMED;
    if ((rc = read_header(c, token, *dot1, &alg, &kid, &kid_len)) != JWT_OK) return rc;
    if ((rc = select_keys(p, alg, kid, kid_len)) != JWT_OK) return rc;
    sig_chars = len - *dot2 - 1;
    if (sig_chars > base64url_encoded_len(MAX_SIG)) return JWT_BAD_SIGNATURE;
    if (!base64url_decode(token + *dot2 + 1, sig_chars, c->sig, sizeof c->sig, &sig_len))
        return JWT_MALFORMED;
    if (!check_signature(p, c, alg, kid, kid_len, token, *dot2, c->sig, sig_len))
        return JWT_BAD_SIGNATURE;
    return JWT_OK;
}

static int verify(const struct jwt_provider *p, struct jwt_cache *c, const char *token, size_t len,
                  int64_t now, struct jwt_claims *out)
{
    size_t dot1 = 0, dot2 = 0, json_len;
    struct validity v;
    struct json j;
    int rc, count;

    if (!token || !len) return JWT_MISSING;
    if (len > JWT_MAX_TOKEN) return JWT_MALFORMED;
    uint64_t hash = siphash(c->key, token, len) ^ p->serial * 0x9e3779b97f4a7c15ull;
    struct jwt_entry *e = cache_find(c, hash, p->serial, token, len, now);
    if (e) {
        c->stats.hits++;
        claims_from_entry(out, e);
        return JWT_OK;
    }
    c->stats.misses++;
    if ((rc = check_jws(p, c, token, len, &dot1, &dot2)) != JWT_OK) return rc;
    if (!base64url_decode(token + dot1 + 1, dot2 - dot1 - 1, (uint8_t *)c->json, sizeof c->json,
                          &json_len) ||
        (count = json_members(&j, c->json, json_len, c->slots, JWT_MAX_CLAIMS)) < 0)
        return JWT_MALFORMED;
    out->json = c->json;
    out->slots = c->slots;
    out->count = (unsigned)count;
    if ((rc = check_claims(p, out, now, &v)) != JWT_OK) return rc;
    int64_t ttl_end = add_sat(now, c->max_ttl), expires = v.expires < ttl_end ? v.expires : ttl_end;
    if (expires > now)
        cache_insert(c, hash, p->serial, token, len, out, json_len, expires, v.valid_from);
    return JWT_OK;
}

int jwt_verify(const struct jwt_provider *p, struct jwt_cache *cache, const char *token, size_t len,
               int64_t now, struct jwt_claims *out, const char **reason)
{
    int rc = verify(p, cache, token, len, now, out);

    if (rc != JWT_OK) memset(out, 0, sizeof *out);
    if (reason) *reason = reason_names[rc];
    return rc;
}

/* ---- reading claims ---- */

const char *jwt_claim(const struct jwt_claims *c, const char *name, size_t *len)
{
    const struct jwt_slot *s =
        c->count ? find_member(c->json, c->slots, c->count, name, strlen(name)) : NULL;

    if (!s || (s->type != JSON_STRING && s->type != JSON_NUMBER)) return NULL;
    *len = s->value_len;
    return c->json + s->value;
}

const char *jwt_claim_header(const struct jwt_claims *c, const char *name, size_t *len)
{
    const char *v = jwt_claim(c, name, len);

    if (!v || !*len || v[0] == ' ' || v[0] == '\t' || v[*len - 1] == ' ' || v[*len - 1] == '\t')
        return NULL;
    for (size_t i = 0; i < *len; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f) return NULL;
    return v;
}

/* ---- Authorization: Bearer (RFC 6750 section 2.1) ---- */

static bool is_token68_char(unsigned char c)
{
    return base64url_char(c) || c == '.' || c == '~' || c == '+' || c == '/';
}

int jwt_extract_bearer(const char *value, size_t len, const char **token, size_t *token_len)
{
    static const char scheme[] = "bearer";
    size_t i = 0, end;

    if (!value || !len) return JWT_MISSING;
    for (; i < 6; i++) {
        char ch = i < len ? value[i] : 0;

        if ((ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) != scheme[i]) return JWT_MISSING;
    }
    if (len > 6 && is_tchar((unsigned char)value[6])) return JWT_MISSING; /* "Bearerish" */
    if (len < 8 || value[6] != ' ') return JWT_MALFORMED;
    for (i = 7; i < len && is_token68_char((unsigned char)value[i]); i++)
        continue;
    for (end = i; end < len && value[end] == '='; end++)
        continue;
    if (i == 7 || end != len) return JWT_MALFORMED;
    *token = value + 7;
    *token_len = len - 7;
    return JWT_OK;
}
