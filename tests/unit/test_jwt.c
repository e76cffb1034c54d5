/* filters/jwt.c against tokens PyJWT made with keys from `openssl genpkey`
 * (tests/unit/fixtures/jwt, written by tests/unit/jwt_fixtures.py; a fresh
 * set is also made at run time when /usr/bin/python3 has the jwt module),
 * plus tokens minted here for the edge cases of the JSON and claim rules.
 * Ends with a benchmark: verifications per second, cold and cached. */
#include "base64url.h"
#include "jwt.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NOW 1700000000
#define ISSUER "https://auth.example.com"

struct fixtures {
    char dir[512];
    size_t count;
    char *names[128];
    char *tokens[128];
    uint8_t secret[128];
    size_t secret_len;
    char secret_b64[200];
};

static struct fixtures fx;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        if (len) *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void free_fixtures(struct fixtures *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->names[i]);
    f->count = 0;
}

static bool load_fixtures(struct fixtures *f, const char *dir)
{
    char path[600], *text, *line, *save = NULL;

    free_fixtures(f);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/tokens.txt", dir);
    if (!(text = slurp(path, NULL))) return false;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *space = strchr(line, ' ');

        if (line[0] == '#' || !space || f->count == 128) continue;
        *space = 0;
        f->names[f->count] = strdup(line); /* the token follows its name in the same block */
        f->names[f->count] = realloc(f->names[f->count], strlen(line) + strlen(space + 1) + 2);
        strcpy(f->names[f->count] + strlen(line) + 1, space + 1);
        f->tokens[f->count] = f->names[f->count] + strlen(line) + 1;
        f->count++;
    }
    free(text);
    snprintf(path, sizeof path, "%s/secret.txt", dir);
    if (!(text = slurp(path, NULL))) return false;
    text[strcspn(text, "\n")] = 0;
    snprintf(f->secret_b64, sizeof f->secret_b64, "%s", text);
    bool ok = base64url_decode(text, strlen(text), f->secret, sizeof f->secret, &f->secret_len);
    free(text);
    return ok;
}

static const char *tok(const char *name)
{
    for (size_t i = 0; i < fx.count; i++)
        if (strcmp(fx.names[i], name) == 0) return fx.tokens[i];
    fprintf(stderr, "fixture token %s missing\n", name);
    CHECK(!"fixture token present");
    return "";
}

struct opts {
    const char *jwks_file; /* relative to the fixture directory */
    const char *jwks;
    bool secret;
    const char *issuer;
    const char *aud[3];
    int64_t skew;
    struct jwt_pair required[4];
    struct jwt_pair forwards[4];
};

static size_t count_pairs(const struct jwt_pair *p, size_t max)
{
    size_t n = 0;

    while (n < max && p[n].name)
        n++;
    return n;
}

static struct jwt_provider *provider(const struct opts *o, char *err, size_t err_size)
{
    char path[600];
    struct jwt_provider_params pp = {
        .name = "test",
        .issuer = o->issuer,
        .audiences = o->aud,
        .clock_skew = o->skew,
        .required_claims = o->required,
        .required_count = count_pairs(o->required, 4),
        .forward_claims = o->forwards,
        .forward_count = count_pairs(o->forwards, 4),
    };

    while (pp.audience_count < 3 && o->aud[pp.audience_count])
        pp.audience_count++;
    if (o->jwks_file) {
        snprintf(path, sizeof path, "%s/%s", fx.dir, o->jwks_file);
        pp.jwks_file = path;
    } else if (o->jwks) {
        pp.jwks = o->jwks;
        pp.jwks_len = strlen(o->jwks);
    } else if (o->secret) {
        pp.secret = fx.secret_b64;
    }
    return jwt_provider_new(&pp, err, err_size);
}

static struct jwt_provider *must_provider(const struct opts *o)
{
    char err[512] = "";
    struct jwt_provider *p = provider(o, err, sizeof err);

    if (!p) {
        fprintf(stderr, "provider: %s\n", err);
        CHECK(p != NULL);
        exit(1);
    }
    return p;
}

/* Result of a verification with a fresh cache (no earlier entry can help). */
static int verify_at(const struct jwt_provider *p, const char *token, int64_t now)
{
    struct jwt_cache *c = jwt_cache_new(4, 1 << 20, 300);
    struct jwt_claims claims;
    int rc = jwt_verify(p, c, token, strlen(token), now, &claims, NULL);

    jwt_cache_free(c);
    return rc;
}

static const char *reason_at(const struct jwt_provider *p, const char *token, int64_t now)
{
    return jwt_reason_name(verify_at(p, token, now));
}

/* An HS256 token over header and claims JSON as given, with the fixture
 * secret (or `bad_sig`). */
static char *mint(const char *header, const char *claims, bool bad_sig)
{
    size_t hl = strlen(header), cl = strlen(claims);
    char *out = malloc(base64url_encoded_len(hl) + base64url_encoded_len(cl) + 64);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    size_t n = 0;

    n += base64url_encode((const uint8_t *)header, hl, out + n);
    out[n++] = '.';
    n += base64url_encode((const uint8_t *)claims, cl, out + n);
    HMAC(EVP_sha256(), fx.secret, (int)fx.secret_len, (const uint8_t *)out, n, mac, &mac_len);
    if (bad_sig) mac[0] ^= 1;
    out[n++] = '.';
    n += base64url_encode(mac, mac_len, out + n);
    out[n] = 0;
    return out;
}

static int mint_verify(const struct jwt_provider *p, const char *header, const char *claims)
{
    char *t = mint(header, claims, false);
    int rc = verify_at(p, t, NOW);

    free(t);
    return rc;
}

#define HS "{\"alg\":\"HS256\"}"

static const char *const all_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                       "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

static void check_claim(const struct jwt_claims *c, const char *name, const char *want)
{
    size_t len = 0;
    const char *v = jwt_claim(c, name, &len);

    if (!want) {
        CHECK(v == NULL);
        return;
    }
    CHECK(v != NULL);
    if (!v) return;
    CHECK_INT(len, strlen(want));
    CHECK(len == strlen(want) && memcmp(v, want, len) == 0);
}

static void test_every_algorithm(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct jwt_provider *p = must_provider(&o);
    struct jwt_cache *c = jwt_cache_new(64, 1 << 20, 300);
    const char *nokid[] = {"HS256_nokid", "RS256_nokid", "PS384_nokid",
                           "ES256_nokid", "ES384_nokid", "EdDSA_nokid"};

    CHECK_INT(jwt_provider_key_count(p), 6); /* the "enc" and P-521 keys are skipped */
    for (size_t i = 0; i < sizeof all_algs / sizeof all_algs[0]; i++) {
        struct jwt_claims claims;
        const char *reason = NULL;
        const char *t = tok(all_algs[i]);
        int rc = jwt_verify(p, c, t, strlen(t), NOW, &claims, &reason);

        if (rc != JWT_OK) fprintf(stderr, "%s: %s\n", all_algs[i], reason);
        CHECK_INT(rc, JWT_OK);
        CHECK_STR(reason, "ok");
        check_claim(&claims, "sub", "user-42");
        check_claim(&claims, "tenant", "7");
        check_claim(&claims, "iss", ISSUER);
        check_claim(&claims, "name", "Zo\xc3\xab \xe2\x98\x83 \xf0\x9f\x98\x80");
        check_claim(&claims, "scope", NULL); /* an array */
        check_claim(&claims, "nope", NULL);
    }
    for (size_t i = 0; i < sizeof nokid / sizeof nokid[0]; i++)
        CHECK_STR(reason_at(p, tok(nokid[i]), NOW), "ok");
    CHECK_STR(reason_at(p, tok("PS256_rsa2"), NOW), "ok");
    jwt_cache_free(c);
    jwt_provider_free(p);

    /* The same HMAC key given as `secret`. */
    struct opts s = {.secret = true};
    p = must_provider(&s);
    CHECK_STR(reason_at(p, tok("HS256"), NOW), "ok");
    CHECK_STR(reason_at(p, tok("HS384"), NOW), "ok");
    CHECK_STR(reason_at(p, tok("HS512"), NOW), "ok");
    CHECK_STR(reason_at(p, tok("HS256_nokid"), NOW), "ok"); /* a kid-less key takes any kid */
    CHECK_STR(reason_at(p, tok("RS256"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(p, tok("ES256_nokid"), NOW), "alg_not_allowed");
    jwt_provider_free(p);
}

/* The published examples, byte for byte: RFC 7515 Appendix A.1 (HS256, with
 * the JWK "k" the RFC gives), A.2 (RS256) and A.3 (ES256), which all sign
 * the claims set {"iss":"joe",\r\n "exp":1300819380,\r\n
 * "http://example.com/is_root":true}, and RFC 8037 Appendix A.4 (Ed25519).
 * The JWKs keep the public members of the RFCs' keys. */
#define RFC7515_CLAIMS                                                                             \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"
#define RFC7515_EXP 1300819380
#define RFC8037_D "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define RFC8037_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define RFC8037_INPUT "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
#define RFC8037_SIG                                                                                \
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

static const struct {
    const char *name, *jwks, *token;
    int want; /* one second before RFC7515_EXP */
} rfc_examples[] = {
    {"RFC 7515 A.1 HS256",
     "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtM"
     "N3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}]}",
     "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC7515_CLAIMS
     ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
     JWT_OK},
    {"RFC 7515 A.2 RS256",
     "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQ"
     "oTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWv"
     "G6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2C"
     "apHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2eth"
     "FkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}]}",
     "eyJhbGciOiJSUzI1NiJ9." RFC7515_CLAIMS
     ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2F"
     "p5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBM"
     "Hlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2"
     "w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw",
     JWT_OK},
    {"RFC 7515 A.3 ES256",
     "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHv"
     "RVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
     "eyJhbGciOiJFUzI1NiJ9." RFC7515_CLAIMS
     ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
     JWT_OK},
    /* The payload is the text "Example of Ed25519 signing", not a claims
     * set: the signature is checked first and passes, then the payload is
     * refused (a bad signature would say bad_signature). The same key signs
     * the RFC 7515 claims below. */
    {"RFC 8037 A.4 EdDSA",
     "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\"}]}",
     RFC8037_INPUT "." RFC8037_SIG, JWT_MALFORMED},
};

/* `token` gives `want` one second before exp (then from the cache too, and
 * expired at exp, when `want` is JWT_OK), and bad_signature once any one
 * byte of its signature changes, even with the good token cached. */
static void check_rfc_token(const struct jwt_provider *p, const char *name, const char *token,
                            int want)
{
    struct jwt_cache *c = jwt_cache_new(8, 1 << 20, 300);
    struct jwt_claims cl;
    const char *reason = NULL;
    size_t len = strlen(token), sig = (size_t)(strrchr(token, '.') - token) + 1;
    size_t raw_len = 0, refused = 0;
    uint8_t raw[512];
    char *copy = strdup(token);
    int rc = jwt_verify(p, c, token, len, RFC7515_EXP - 1, &cl, &reason);

    if (rc != want) fprintf(stderr, "%s: %s, expected %s\n", name, reason, jwt_reason_name(want));
    CHECK_INT(rc, want);
    if (want == JWT_OK) {
        check_claim(&cl, "iss", "joe");
        check_claim(&cl, "exp", "1300819380");
        CHECK_INT(jwt_verify(p, c, token, len, RFC7515_EXP - 1, &cl, NULL), JWT_OK);
        struct jwt_cache_stats st;
        jwt_cache_stats(c, &st);
        CHECK_INT(st.hits, 1);
        CHECK_INT(verify_at(p, token, RFC7515_EXP), JWT_EXPIRED);
        CHECK_INT(verify_at(p, token, NOW), JWT_EXPIRED);
    }
    CHECK(base64url_decode(token + sig, len - sig, raw, sizeof raw, &raw_len));
    CHECK(raw_len > 0);
    for (size_t i = 0; i < raw_len; i++) {
        for (unsigned m = 0x01; m <= 0x80; m <<= 7) { /* the lowest and the highest bit */
            raw[i] ^= (uint8_t)m;
            base64url_encode(raw, raw_len, copy + sig);
            rc = jwt_verify(p, c, copy, len, RFC7515_EXP - 1, &cl, NULL);
            if (rc != JWT_BAD_SIGNATURE)
                fprintf(stderr, "%s: signature byte %zu ^ 0x%02x: %s\n", name, i, m,
                        jwt_reason_name(rc));
            CHECK_INT(rc, JWT_BAD_SIGNATURE);
            CHECK_INT(cl.count, 0);
            refused += rc == JWT_BAD_SIGNATURE;
            raw[i] ^= (uint8_t)m;
        }
    }
    base64url_encode(raw, raw_len, copy + sig);
    CHECK(strcmp(copy, token) == 0);
    fprintf(stderr, "%s: %s; %zu of %zu one-byte signature changes refused\n", name,
            jwt_reason_name(want), refused, 2 * raw_len);
    free(copy);
    jwt_cache_free(c);
}

static bool ed25519_sign(EVP_PKEY *key, const char *msg, uint8_t sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sig_len = 64;
    bool ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
              EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)msg, strlen(msg)) == 1 &&
              sig_len == 64;

    EVP_MD_CTX_free(md);
    return ok;
}

static void test_rfc_examples(void)
{
    struct jwt_provider *ed = NULL;

    for (size_t i = 0; i < sizeof rfc_examples / sizeof rfc_examples[0]; i++) {
        struct opts o = {.jwks = rfc_examples[i].jwks};
        struct jwt_provider *p = must_provider(&o);

        CHECK_INT(jwt_provider_key_count(p), 1);
        check_rfc_token(p, rfc_examples[i].name, rfc_examples[i].token, rfc_examples[i].want);
        if (i == sizeof rfc_examples / sizeof rfc_examples[0] - 1)
            ed = p;
        else
            jwt_provider_free(p);
    }

    /* RFC 8037 A.4 apart from jwt.c: "x" is the public key of "d", and "d"
     * (Ed25519 signatures are deterministic) signs the input to the RFC's
     * signature, which the crypto library verifies with "x". */
    uint8_t d[32], x[32], pub[32], want[64], sig[64];
    size_t d_len = 0, x_len = 0, want_len = 0, pub_len = sizeof pub;
    CHECK(base64url_decode(RFC8037_D, strlen(RFC8037_D), d, sizeof d, &d_len) && d_len == 32);
    CHECK(base64url_decode(RFC8037_X, strlen(RFC8037_X), x, sizeof x, &x_len) && x_len == 32);
    CHECK(base64url_decode(RFC8037_SIG, strlen(RFC8037_SIG), want, sizeof want, &want_len) &&
          want_len == 64);
    EVP_PKEY *priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, sizeof d);
    EVP_PKEY *public_key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof x);
    CHECK(priv != NULL && public_key != NULL);
    if (!priv || !public_key || !ed) {
        EVP_PKEY_free(priv);
        EVP_PKEY_free(public_key);
        jwt_provider_free(ed);
        return;
    }
    CHECK(EVP_PKEY_get_raw_public_key(priv, pub, &pub_len) == 1 && pub_len == 32 &&
          memcmp(pub, x, 32) == 0);
    CHECK(ed25519_sign(priv, RFC8037_INPUT, sig) && memcmp(sig, want, 64) == 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, public_key) == 1 &&
          EVP_DigestVerify(md, want, 64, (const uint8_t *)RFC8037_INPUT,
                           strlen(RFC8037_INPUT)) == 1);
    EVP_MD_CTX_free(md);

    /* The RFC 8037 key over the RFC 7515 claims: a JWT that verifies. */
    char token[256];
    size_t n = (size_t)snprintf(token, sizeof token, "eyJhbGciOiJFZERTQSJ9.%s", RFC7515_CLAIMS);
    CHECK(ed25519_sign(priv, token, sig));
    token[n++] = '.';
    n += base64url_encode(sig, 64, token + n);
    token[n] = 0;
    check_rfc_token(ed, "RFC 8037 key, RFC 7515 claims, EdDSA", token, JWT_OK);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(public_key);
    jwt_provider_free(ed);
}

static void test_alg_none_and_confusion(void)
{
    struct opts o = {.jwks_file = "jwks.json"}, r = {.jwks_file = "jwks_rsa.json"};
    struct jwt_provider *p = must_provider(&o), *rsa = must_provider(&r);
    const char *none[] = {"{\"alg\":\"none\"}",    "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
                          "{\"alg\":\"\"}",        "{\"alg\":\"HS1\"}",  "{\"alg\":\"ES512\"}",
                          "{\"alg\":\"RSA-OAEP\"}"};

    CHECK_STR(reason_at(p, tok("none"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(p, tok("none_kid"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("none"), NOW), "alg_not_allowed");
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        CHECK_STR(jwt_reason_name(mint_verify(p, none[i], "{}")), "alg_not_allowed");
        /* and with the signature part left empty, as "none" tokens have it */
        char *t = mint(none[i], "{}", false);
        *(strrchr(t, '.') + 1) = 0;
        CHECK_STR(reason_at(p, t, NOW), "alg_not_allowed");
        free(t);
    }
    /* HS256 signed with the RSA public key (PEM) as the HMAC secret. */
    CHECK_STR(reason_at(p, tok("HS256_confusion"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("HS256_confusion"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("HS256_confusion_nokid"), NOW), "alg_not_allowed");
    /* without a kid it meets the real HMAC key, which does not verify it */
    CHECK_STR(reason_at(p, tok("HS256_confusion_nokid"), NOW), "bad_signature");
    /* RSA and EC tokens against keys of another type */
    CHECK_STR(reason_at(rsa, tok("ES256_nokid"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("EdDSA_nokid"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("HS256_nokid"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(rsa, tok("PS256"), NOW), "ok");
    jwt_provider_free(p);
    jwt_provider_free(rsa);
}

static void test_kid(void)
{
    struct opts o = {.jwks_file = "jwks.json"};
    struct jwt_provider *p = must_provider(&o);

    CHECK_STR(reason_at(p, tok("RS256_unknown_kid"), NOW), "unknown_kid");
    CHECK_STR(reason_at(p, tok("RS256_wrong_kid"), NOW), "bad_signature");
    CHECK_STR(reason_at(p, tok("RS256_rsa2"), NOW), "alg_not_allowed"); /* key alg PS256 */
    CHECK_STR(reason_at(p, tok("ES256_kid_ec384"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(p, tok("RS256_enc"), NOW), "unknown_kid"); /* use: enc */
    CHECK_STR(reason_at(p, tok("ES512_p521"), NOW), "alg_not_allowed");
    jwt_provider_free(p);
}

static void test_time(void)
{
    struct opts o = {.jwks_file = "jwks.json"}, skewed = {.jwks_file = "jwks.json", .skew = 30};
    struct jwt_provider *p = must_provider(&o), *s = must_provider(&skewed);

    CHECK_STR(reason_at(p, tok("RS256_expired"), NOW), "expired");
    CHECK_STR(reason_at(s, tok("RS256_expired"), NOW), "expired");
    CHECK_STR(reason_at(p, tok("RS256_expired"), 1600000000 - 1), "ok");
    CHECK_STR(reason_at(p, tok("ES256_exp_now"), NOW - 1), "ok");
    CHECK_STR(reason_at(p, tok("ES256_exp_now"), NOW), "expired");
    CHECK_STR(reason_at(s, tok("ES256_exp_now"), NOW + 29), "ok");
    CHECK_STR(reason_at(s, tok("ES256_exp_now"), NOW + 30), "expired");
    CHECK_STR(reason_at(p, tok("ES256_exp_float"), NOW - 1), "ok");
    CHECK_STR(reason_at(p, tok("ES256_exp_float"), NOW), "expired");
    CHECK_STR(reason_at(p, tok("ES256_no_exp"), INT64_MAX), "ok");
    CHECK_STR(reason_at(p, tok("ES256_nbf_future"), NOW), "not_yet_valid");
    CHECK_STR(reason_at(p, tok("ES256_nbf_future"), NOW + 99), "not_yet_valid");
    CHECK_STR(reason_at(p, tok("ES256_nbf_future"), NOW + 100), "ok");
    CHECK_STR(reason_at(s, tok("ES256_nbf_future"), NOW + 69), "not_yet_valid");
    CHECK_STR(reason_at(s, tok("ES256_nbf_future"), NOW + 70), "ok");
    CHECK_STR(reason_at(p, tok("ES256"), 4102444800 - 1), "ok"); /* the year 2100 */
    CHECK_STR(reason_at(p, tok("ES256"), 4102444800), "expired");

    /* NumericDate spelled in every way JSON allows; non-numbers refused. */
    CHECK_INT(mint_verify(p, HS, "{\"exp\":4102444800.999}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":4.1e9}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":41E8}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":1e999}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":170000001012345678901234567890e-20}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":1.7e9}"), JWT_EXPIRED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":-1e999}"), JWT_EXPIRED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":0}"), JWT_EXPIRED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":-0.0}"), JWT_EXPIRED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":1e-999}"), JWT_EXPIRED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":\"4102444800\"}"), JWT_MALFORMED);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":null}"), JWT_MALFORMED);
    CHECK_INT(mint_verify(p, HS, "{\"nbf\":true}"), JWT_MALFORMED);
    CHECK_INT(mint_verify(p, HS, "{\"nbf\":1e999}"), JWT_NOT_YET_VALID);
    CHECK_INT(mint_verify(p, HS, "{\"nbf\":-1e999}"), JWT_OK);
    jwt_provider_free(p);
    jwt_provider_free(s);

    /* The largest skew cannot overflow with the largest dates. */
    struct opts big = {.secret = true, .skew = 366 * 86400};
    p = must_provider(&big);
    CHECK_INT(mint_verify(p, HS, "{\"exp\":1e999,\"nbf\":-1e999}"), JWT_OK);
    CHECK_INT(verify_at(p, tok("HS256"), INT64_MAX), JWT_EXPIRED);
    CHECK_INT(verify_at(p, tok("HS256"), INT64_MIN), JWT_OK);
    jwt_provider_free(p);
}

static void test_issuer_and_audience(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct opts two = {.jwks_file = "jwks.json", .aud = {"web", "api"}};
    struct opts none = {.jwks_file = "jwks.json"};
    struct jwt_provider *p = must_provider(&o), *t = must_provider(&two), *n = must_provider(&none);
    const char *names[] = {"HS256_iss_wrong",       "HS256_iss_missing", "HS256_aud_array",
                           "HS256_aud_array_wrong", "HS256_aud_wrong",   "HS256_aud_missing"};
    const char *want[] = {"wrong_issuer",   "wrong_issuer",   "ok",
                          "wrong_audience", "wrong_audience", "wrong_audience"};
    const char *want_two[] = {"ok", "ok", "ok", "wrong_audience", "ok", "wrong_audience"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK_STR(reason_at(p, tok(names[i]), NOW), want[i]);
        CHECK_STR(reason_at(t, tok(names[i]), NOW), want_two[i]);
        CHECK_STR(reason_at(n, tok(names[i]), NOW), "ok");
    }
    jwt_provider_free(p);
    jwt_provider_free(t);
    jwt_provider_free(n);

    struct opts m = {.secret = true, .issuer = "a\"b", .aud = {"x/y", "\xc3\xa9"}};
    p = must_provider(&m);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b\",\"aud\":\"x\\/y\"}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\u0022b\",\"aud\":[\"\\u00e9\"]}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b\",\"aud\":[\"x\\\\/y\"]}"), JWT_WRONG_AUDIENCE);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b\",\"aud\":[1,null,{},\"x/y\"]}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b\",\"aud\":[]}"), JWT_WRONG_AUDIENCE);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b\",\"aud\":{\"x/y\":1}}"), JWT_WRONG_AUDIENCE);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":[\"a\\\"b\"],\"aud\":\"x/y\"}"), JWT_WRONG_ISSUER);
    CHECK_INT(mint_verify(p, HS, "{\"iss\":\"a\\\"b \",\"aud\":\"x/y\"}"), JWT_WRONG_ISSUER);
    jwt_provider_free(p);
}

static void test_required_claims(void)
{
    struct opts o = {
        .jwks_file = "jwks.json",
        .required = {{"role", "admin"}, {"scope", "write"}, {"tenant", "7"}, {"sub", NULL}}};
    struct jwt_provider *p = must_provider(&o);

    CHECK_STR(reason_at(p, tok("HS256"), NOW), "ok");
    CHECK_STR(reason_at(p, tok("ES256"), NOW), "ok");
    CHECK_STR(reason_at(p, tok("HS256_role_user"), NOW), "missing_claim");
    jwt_provider_free(p);

    struct opts m = {.secret = true, .required = {{"email", NULL}, {"ok", "true"}}};
    p = must_provider(&m);
    CHECK_INT(mint_verify(p, HS, "{\"email\":null,\"ok\":true}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"ok\":true}"), JWT_MISSING_CLAIM);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":\"true\"}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":false}"), JWT_MISSING_CLAIM);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":[\"true\"]}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":[true]}"), JWT_MISSING_CLAIM);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":{\"true\":1}}"), JWT_MISSING_CLAIM);
    CHECK_INT(mint_verify(p, HS, "{\"email\":1,\"ok\":\"tru\\u0065\"}"), JWT_OK);
    jwt_provider_free(p);
}

/* Replaces the character at i by another of the alphabet that keeps the
 * low bits (so a last character stays canonical). */
static char flip(char c)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *at = strchr(a, c);

    return at ? a[(at - a) ^ 0x20] : 'A';
}

static void test_corrupted_tokens(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct jwt_provider *p = must_provider(&o);
    struct jwt_cache *c = jwt_cache_new(64, 1 << 20, 300);
    const char *names[] = {"RS256", "PS512", "ES256", "ES384", "EdDSA", "HS256"};
    struct jwt_claims claims;
    size_t bad_sig = 0, other = 0, total = 0;

    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        const char *t = tok(names[n]);
        size_t len = strlen(t), sig = (size_t)(strrchr(t, '.') - t) + 1;
        char *copy = strdup(t);

        /* Cached first: no corrupted variant may be served from the entry. */
        CHECK_INT(jwt_verify(p, c, t, len, NOW, &claims, NULL), JWT_OK);
        for (size_t i = 0; i < len; i++) {
            if (t[i] == '.') continue;
            copy[i] = flip(t[i]);
            int rc = jwt_verify(p, c, copy, len, NOW, &claims, NULL);
            if (i >= sig) {
                CHECK_INT(rc, JWT_BAD_SIGNATURE);
                bad_sig += rc == JWT_BAD_SIGNATURE;
            } else {
                CHECK(rc != JWT_OK);
                other += rc != JWT_OK;
            }
            CHECK_INT(claims.count, 0);
            copy[i] = t[i];
            total++;
        }
        /* Every bit of the decoded signature. */
        uint8_t raw[1024];
        size_t raw_len;
        CHECK(base64url_decode(t + sig, len - sig, raw, sizeof raw, &raw_len));
        for (size_t bit = 0; bit < raw_len * 8; bit++) {
            raw[bit / 8] ^= (uint8_t)(1 << bit % 8);
            base64url_encode(raw, raw_len, copy + sig);
            CHECK_INT(jwt_verify(p, c, copy, len, NOW, &claims, NULL), JWT_BAD_SIGNATURE);
            raw[bit / 8] ^= (uint8_t)(1 << bit % 8);
            total++;
        }
        /* A last character with unused bits set is not the canonical encoding. */
        memcpy(copy, t, len);
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        if ((len - sig) % 4) {
            copy[len - 1] = alphabet[(strchr(alphabet, t[len - 1]) - alphabet) | 1];
            CHECK_INT(jwt_verify(p, c, copy, len, NOW, &claims, NULL), JWT_MALFORMED);
        }
        free(copy);
    }
    fprintf(stderr, "corrupted tokens: %zu variants (%zu in signatures, %zu elsewhere) refused\n",
            total, bad_sig, other);
    jwt_cache_free(c);
    jwt_provider_free(p);
}

static void test_truncated_tokens(void)
{
    struct opts o = {.jwks_file = "jwks.json"};
    struct jwt_provider *p = must_provider(&o);
    struct jwt_cache *c = jwt_cache_new(64, 1 << 20, 300);
    const char *names[] = {"RS256", "ES256", "EdDSA", "HS512"};
    struct jwt_claims claims;
    size_t total = 0;

    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        const char *t = tok(names[n]);
        size_t len = strlen(t);

        CHECK_INT(jwt_verify(p, c, t, len, NOW, &claims, NULL), JWT_OK);
        CHECK_INT(jwt_verify(p, c, t, 0, NOW, &claims, NULL), JWT_MISSING);
        for (size_t k = 1; k < len; k++) {
            char *copy = malloc(k); /* exact size: an overread trips ASan */
            memcpy(copy, t, k);
            int rc = jwt_verify(p, c, copy, k, NOW, &claims, NULL);
            CHECK(rc == JWT_MALFORMED || rc == JWT_BAD_SIGNATURE);
            free(copy);
            total++;
        }
        /* and one byte too many */
        char *longer = malloc(len + 2);
        memcpy(longer, t, len);
        memcpy(longer + len, "A", 2);
        CHECK(jwt_verify(p, c, longer, len + 1, NOW, &claims, NULL) != JWT_OK);
        free(longer);
    }
    fprintf(stderr, "truncated tokens: %zu prefixes refused\n", total);
    jwt_cache_free(c);
    jwt_provider_free(p);
}

static void test_malformed(void)
{
    struct opts o = {.secret = true};
    struct jwt_provider *p = must_provider(&o);
    char *good = mint(HS, "{\"sub\":\"x\"}", false), buf[16384];
    const char *shapes[] = {"",         ".",         "..",      "...",     "a.b",
                            "a.b.c.d",  "a.b.c.d.e", " ",       "\x01",    "a..b",
                            "eyJ.eyJ.", "====",      "a b.c.d", "a.b.c\n", "a.b.c "};

    CHECK_INT(verify_at(p, good, NOW), JWT_OK);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int rc = verify_at(p, shapes[i], NOW);
        CHECK(rc == (shapes[i][0] ? JWT_MALFORMED : JWT_MISSING));
    }
    /* JWS JSON / padding / whitespace around a good token */
    snprintf(buf, sizeof buf, "%s=", good);
    CHECK_INT(verify_at(p, buf, NOW), JWT_MALFORMED);
    snprintf(buf, sizeof buf, " %s", good);
    CHECK_INT(verify_at(p, buf, NOW), JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s.", good);
    CHECK_INT(verify_at(p, buf, NOW), JWT_MALFORMED);
    free(good);

    /* Headers */
    const char *headers[] = {"",
                             "null",
                             "[]",
                             "\"HS256\"",
                             "{}",
                             "{\"alg\":256}",
                             "{\"alg\":\"HS256\",\"kid\":1}",
                             "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
                             "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
                             "{\"alg\":\"HS256\",\"\\u0061lg\":\"none\"}",
                             "{\"alg\":\"HS256\"",
                             "{\"alg\":\"HS256\"}x",
                             "{'alg':'HS256'}",
                             "{\"alg\":\"HS256\",}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        CHECK_INT(mint_verify(p, headers[i], "{}"), JWT_MALFORMED);
    CHECK_INT(mint_verify(p, " {\"alg\" : \"HS\\u0032\\u00356\" }\r\n", "{}"), JWT_OK);
    CHECK_INT(mint_verify(p, "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}", "{}"),
              JWT_OK); /* an embedded key is ignored, never trusted */

    /* Claims: JSON that a strict reader must refuse. */
    const char *claims[] = {"",
                            "[]",
                            "1",
                            "{\"a\":1,\"a\":2}",
                            "{\"sub\":\"a\",\"s\\u0075b\":\"b\"}",
                            "{\"a\":01}",
                            "{\"a\":1.}",
                            "{\"a\":.5}",
                            "{\"a\":1e}",
                            "{\"a\":+1}",
                            "{\"a\":-}",
                            "{\"a\":NaN}",
                            "{\"a\":tru}",
                            "{\"a\":\"\\x\"}",
                            "{\"a\":\"\\u12\"}",
                            "{\"a\":\"\\ud800\"}",
                            "{\"a\":\"\\udc00\\ud800\"}",
                            "{\"a\":\"\\ud800\\u0041\"}",
                            "{\"a\":\"\t\"}",
                            "{\"a\":\"\xc3\"}",
                            "{\"a\":\"\xc0\xaf\"}",
                            "{\"a\":\"\xed\xa0\x80\"}",
                            "{\"a\":\"\xf4\x90\x80\x80\"}",
                            "{\"a\":\"\xff\"}",
                            "{\"a\":[1,]}",
                            "{\"a\":[1 2]}",
                            "{\"a\":{\"b\"}}",
                            "{\"a\":1}}",
                            "{\"a\" 1}",
                            "{a:1}"};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        int rc = mint_verify(p, HS, claims[i]);
        if (rc != JWT_MALFORMED) fprintf(stderr, "claims %zu accepted: %s\n", i, claims[i]);
        CHECK_INT(rc, JWT_MALFORMED);
    }
    CHECK_INT(mint_verify(p, HS, "{\"a\":\"\xf0\x9f\x98\x80\xe2\x98\x83\\ud83d\\ude00\"}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, "{\"a\":[{},[],{\"b\":[null,true,false,-0.5e+3]}]}"), JWT_OK);
    CHECK_INT(mint_verify(p, HS, " \t\r\n{}\n"), JWT_OK);

    /* Nesting: 31 levels inside the claims object is the limit. */
    char deep[200];
    for (int levels = 30; levels <= 33; levels++) {
        int n = snprintf(deep, sizeof deep, "{\"a\":");
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        snprintf(deep + n, sizeof deep - (size_t)n, "}");
        CHECK_INT(mint_verify(p, HS, deep), levels <= 31 ? JWT_OK : JWT_MALFORMED);
    }

    /* Member count: 64 top-level claims at most. */
    for (int members = 64; members <= 65; members++) {
        int n = snprintf(buf, sizeof buf, "{");
        for (int i = 0; i < members; i++)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "%s\"c%d\":%d", i ? "," : "", i, i);
        snprintf(buf + n, sizeof buf - (size_t)n, "}");
        CHECK_INT(mint_verify(p, HS, buf), members <= 64 ? JWT_OK : JWT_MALFORMED);
    }

    /* Size: a token of JWT_MAX_TOKEN bytes is read, one more is not. */
    int sizes_tried = 0;
    for (size_t want = JWT_MAX_TOKEN - 3; want <= JWT_MAX_TOKEN + 4; want++) {
        for (size_t pad = 6000; pad < 7000; pad++) {
            int n = snprintf(buf, sizeof buf, "{\"p\":\"");
            memset(buf + n, 'x', pad);
            snprintf(buf + n + pad, sizeof buf - (size_t)n - pad, "\"}");
            char *t = mint(HS, buf, false);
            size_t len = strlen(t);
            if (len == want) {
                CHECK_INT(verify_at(p, t, NOW), want <= JWT_MAX_TOKEN ? JWT_OK : JWT_MALFORMED);
                sizes_tried |= want <= JWT_MAX_TOKEN ? 1 : 2;
                free(t);
                break;
            }
            free(t);
            if (len > want) break;
        }
    }
    CHECK_INT(sizes_tried, 3);
    jwt_provider_free(p);
}

static void test_claim_access(void)
{
    struct opts o = {.secret = true, .forwards = {{"sub", "X-User-Id"}, {"tenant", "X-Tenant"}}};
    struct jwt_provider *p = must_provider(&o);
    struct jwt_cache *c = jwt_cache_new(8, 1 << 20, 300);
    struct jwt_claims cl;
    size_t n, len;
    const struct jwt_pair *fw = jwt_provider_forwards(p, &n);
    char *t = mint(HS,
                   "{\"sub\":\"u\\u00e9\",\"tenant\":-1.5e3,\"crlf\":\"a\\r\\nX-Evil: 1\","
                   "\"sp\":\" a\",\"tab\":\"a\\tb\",\"nul\":\"a\\u0000\",\"empty\":\"\","
                   "\"del\":\"\\u007f\",\"t\":true,\"o\":{},\"\\u0073\\u0063\":\"esc\"}",
                   false);

    CHECK_INT(n, 2);
    CHECK_STR(fw[0].name, "sub");
    CHECK_STR(fw[0].value, "X-User-Id");
    CHECK_STR(fw[1].value, "X-Tenant");
    CHECK_STR(jwt_provider_name(p), "test");
    CHECK_INT(jwt_verify(p, c, t, strlen(t), NOW, &cl, NULL), JWT_OK);
    for (int round = 0; round < 2; round++) { /* from the scratch space, then from the entry */
        check_claim(&cl, "sub", "u\xc3\xa9");
        check_claim(&cl, "tenant", "-1.5e3");
        check_claim(&cl, "sc", "esc");
        const char *nul = jwt_claim(&cl, "nul", &len);
        CHECK(nul && len == 2 && memcmp(nul, "a", 2) == 0);
        check_claim(&cl, "t", NULL);
        check_claim(&cl, "o", NULL);
        CHECK(jwt_claim_header(&cl, "sub", &len) != NULL);
        CHECK(jwt_claim_header(&cl, "tenant", &len) != NULL);
        CHECK(jwt_claim_header(&cl, "tab", &len) != NULL);
        CHECK(jwt_claim_header(&cl, "crlf", &len) == NULL);
        CHECK(jwt_claim_header(&cl, "sp", &len) == NULL);
        CHECK(jwt_claim_header(&cl, "nul", &len) == NULL);
        CHECK(jwt_claim_header(&cl, "empty", &len) == NULL);
        CHECK(jwt_claim_header(&cl, "del", &len) == NULL);
        CHECK(jwt_claim_header(&cl, "missing", &len) == NULL);
        CHECK_INT(jwt_verify(p, c, t, strlen(t), NOW, &cl, NULL), JWT_OK);
    }
    struct jwt_cache_stats st;
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 2);
    /* A refused token leaves no claims behind. */
    CHECK_INT(jwt_verify(p, c, "x.y.z", 5, NOW, &cl, NULL), JWT_MALFORMED);
    CHECK_INT(cl.count, 0);
    CHECK(jwt_claim(&cl, "sub", &len) == NULL);
    free(t);
    jwt_cache_free(c);
    jwt_provider_free(p);
}

static void test_cache(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct opts web = {.jwks_file = "jwks.json", .aud = {"web"}};
    struct opts skewed = {.jwks_file = "jwks.json", .skew = 30};
    struct jwt_provider *p = must_provider(&o), *w = must_provider(&web),
                        *s = must_provider(&skewed);
    struct jwt_cache *c = jwt_cache_new(2, 1 << 20, 600);
    struct jwt_cache_stats st;
    struct jwt_claims a, b;
    const char *rs = tok("RS256"), *es = tok("ES256"), *ed = tok("EdDSA");
    const char *reason = NULL;

    /* a hit gives the same answer and the same claims */
    CHECK_INT(jwt_verify(p, c, rs, strlen(rs), NOW, &a, NULL), JWT_OK);
    size_t len_a, len_b;
    const char *sub_a = jwt_claim(&a, "sub", &len_a);
    CHECK_INT(jwt_verify(p, c, rs, strlen(rs), NOW, &b, &reason), JWT_OK);
    CHECK_STR(reason, "ok");
    const char *sub_b = jwt_claim(&b, "sub", &len_b);
    CHECK(sub_a && sub_b && len_a == len_b && memcmp(sub_a, sub_b, len_a) == 0);
    CHECK_INT(a.count, b.count);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.misses, 1);
    CHECK_INT(st.entries, 1);

    /* another provider never sees this provider's entry */
    CHECK_STR(jwt_reason_name(jwt_verify(w, c, rs, strlen(rs), NOW, &a, NULL)), "wrong_audience");
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 1);

    /* eviction of the least recently used: rs, es, rs (hit), ed evicts es */
    CHECK_INT(jwt_verify(p, c, es, strlen(es), NOW, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(p, c, rs, strlen(rs), NOW, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(p, c, ed, strlen(ed), NOW, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.entries, 2);
    CHECK_INT(st.evictions, 1);
    uint64_t hits = st.hits;
    CHECK_INT(jwt_verify(p, c, rs, strlen(rs), NOW, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, hits + 1);
    CHECK_INT(jwt_verify(p, c, es, strlen(es), NOW, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, hits + 1);

    /* an entry is not served at or past the token's exp */
    const char *edge = tok("ES256_exp_now");
    jwt_cache_clear(c);
    CHECK_INT(jwt_verify(s, c, edge, strlen(edge), NOW - 10, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(s, c, edge, strlen(edge), NOW - 1, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    hits = st.hits;
    CHECK_INT(jwt_verify(s, c, edge, strlen(edge), NOW, &a, NULL), JWT_OK); /* skew: full check */
    CHECK_INT(jwt_verify(s, c, edge, strlen(edge), NOW + 30, &a, NULL), JWT_EXPIRED);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, hits);
    CHECK_INT(st.expired, 1);
    CHECK_INT(st.entries, 0);

    /* nor before nbf - skew, should the clock go back */
    const char *nbf = tok("ES256_nbf_future");
    CHECK_INT(jwt_verify(s, c, nbf, strlen(nbf), NOW + 70, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(s, c, nbf, strlen(nbf), NOW + 71, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(s, c, nbf, strlen(nbf), NOW + 69, &a, NULL), JWT_NOT_YET_VALID);

    /* nor longer than max_ttl */
    jwt_cache_free(c);
    c = jwt_cache_new(8, 1 << 20, 60);
    const char *noexp = tok("ES256_no_exp");
    CHECK_INT(jwt_verify(s, c, noexp, strlen(noexp), NOW, &a, NULL), JWT_OK);
    CHECK_INT(jwt_verify(s, c, noexp, strlen(noexp), NOW + 59, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 1);
    CHECK_INT(jwt_verify(s, c, noexp, strlen(noexp), NOW + 60, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.expired, 1);

    /* bounded by bytes too */
    jwt_cache_free(c);
    c = jwt_cache_new(100, 3000, 600);
    for (size_t i = 0; i < sizeof all_algs / sizeof all_algs[0]; i++) {
        const char *t = tok(all_algs[i]);
        CHECK_INT(jwt_verify(p, c, t, strlen(t), NOW, &a, NULL), JWT_OK);
        jwt_cache_stats(c, &st);
        CHECK(st.bytes <= 3000);
    }
    CHECK(st.entries >= 1 && st.entries < 12);

    /* max_entries 0: nothing kept */
    jwt_cache_free(c);
    c = jwt_cache_new(0, 0, 600);
    for (int i = 0; i < 3; i++)
        CHECK_INT(jwt_verify(p, c, rs, strlen(rs), NOW, &a, NULL), JWT_OK);
    jwt_cache_stats(c, &st);
    CHECK_INT(st.hits, 0);
    CHECK_INT(st.entries, 0);
    check_claim(&a, "sub", "user-42");
    jwt_cache_free(c);
    jwt_provider_free(p);
    jwt_provider_free(w);
    jwt_provider_free(s);
}

static void test_bearer(void)
{
    static const struct {
        const char *value;
        int rc;
        const char *token;
    } cases[] = {
        {"Bearer abc.def.ghi", JWT_OK, "abc.def.ghi"},
        {"bearer x", JWT_OK, "x"},
        {"BEARER x", JWT_OK, "x"},
        {"bEaReR a-b_c.d~e+f/g==", JWT_OK, "a-b_c.d~e+f/g=="},
        {"Bearer ==", JWT_MALFORMED, NULL},
        {"Bearer a=b", JWT_MALFORMED, NULL},
        {"Bearer  x", JWT_MALFORMED, NULL},
        {"Bearer", JWT_MALFORMED, NULL},
        {"Bearer ", JWT_MALFORMED, NULL},
        {"Bearer x ", JWT_MALFORMED, NULL},
        {"Bearer x y", JWT_MALFORMED, NULL},
        {"Bearer\tx", JWT_MALFORMED, NULL},
        {"Bearer x,y", JWT_MALFORMED, NULL},
        {"Bearer \"x\"", JWT_MALFORMED, NULL},
        {"Bearer, x", JWT_MALFORMED, NULL},
        {"Basic dXNlcjpwdw==", JWT_MISSING, NULL},
        {"Bearerx abc", JWT_MISSING, NULL},
        {"Bear x", JWT_MISSING, NULL},
        {" Bearer x", JWT_MISSING, NULL},
        {"", JWT_MISSING, NULL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = NULL;
        size_t len = 0;
        int rc = jwt_extract_bearer(cases[i].value, strlen(cases[i].value), &t, &len);

        if (rc != cases[i].rc) fprintf(stderr, "bearer case \"%s\"\n", cases[i].value);
        CHECK_INT(rc, cases[i].rc);
        if (cases[i].token && rc == JWT_OK)
            CHECK(len == strlen(cases[i].token) && memcmp(t, cases[i].token, len) == 0);
    }
    const char *t;
    size_t len;
    CHECK_INT(jwt_extract_bearer(NULL, 0, &t, &len), JWT_MISSING);
    CHECK_INT(jwt_extract_bearer("Bearer x\0y", 10, &t, &len), JWT_MALFORMED);
    CHECK_INT(jwt_extract_bearer("Bearer xyz", 8, &t, &len), JWT_OK); /* length, not NUL */
    CHECK_INT(len, 1);
}

/* Provider errors name the problem. */
static void expect_error(const struct opts *o, const char *want)
{
    char err[512] = "";
    struct jwt_provider *p = provider(o, err, sizeof err);

    CHECK(p == NULL);
    if (!strstr(err, want)) fprintf(stderr, "error \"%s\", expected \"%s\"\n", err, want);
    CHECK(strstr(err, want) != NULL);
    jwt_provider_free(p);
}

static void test_provider_errors(void)
{
    static const struct {
        const char *jwks, *want;
    } cases[] = {
        {"not json", "jwks: not a JSON object (error at line 1, column 1)"},
        {"{\n  \"keys\": [,]}", "error at line 2, column 12"},
        {"{\"keys\": [{\"kty\": \"oct\", \"k\": \"\xff\"}]}", "error at line 1, column 32"},
        {"{}", "no \"keys\" array"},
        {"{\"keys\": {}}", "no \"keys\" array"},
        {"{\"keys\": []}", "no key usable to verify signatures (0 skipped)"},
        {"{\"keys\": [1]}", "keys[0] is not an object"},
        {"{\"keys\": [{}]}", "keys[0]: \"kty\" is missing"},
        {"{\"keys\": [{\"kty\": 1}]}", "keys[0]: \"kty\" is not a string"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"kid\":\"a\",\"e\":\"AQAB\"}]}",
         "keys[0] (kid \"a\"): \"n\" is missing"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"n\":\"a+b\",\"e\":\"AQAB\"}]}",
         "keys[0]: \"n\" is not base64url"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
         "RSA modulus of 17 bits (2048 to 8192 allowed)"},
        {"{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}",
         "\"x\" and \"y\" of a ES256 key must be 32 bytes"},
        {"{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\","
         "\"x\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\","
         "\"y\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\"}]}",
         "EC point is not on the curve"},
        {"{\"keys\": [{\"kty\":\"EC\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}", "\"crv\" is missing"},
        {"{\"keys\": [{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AQAB\"}]}",
         "\"x\" of an Ed25519 key must be 32 bytes"},
        {"{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAA\"}]}",
         "keys[0]: \"k\" is 16 bytes; HMAC keys need at least 32"},
        {"{\"keys\": [{\"kty\":\"oct\",\"alg\":\"HS512\","
         "\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
         "\"alg\" HS512 does not fit the key (too short)"},
        {"{\"keys\": [{\"kty\":\"oct\",\"alg\":\"RS256\","
         "\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
         "\"alg\" RS256 does not fit the key"},
        {"{\"keys\": [{\"kty\":\"oct\",\"alg\":\"none\",\"k\":\"AA\"}]}", "\"alg\" is \"none\""},
        {"{\"keys\": [{\"kty\":\"oct\",\"kid\":\"k\",\"kid\":\"k\"}]}",
         "member \"kid\" appears twice"},
        {"{\"keys\": [{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"AA\"},"
         "{\"kty\":\"oct\",\"key_ops\":[\"encrypt\"],\"k\":\"AA\"},"
         "{\"kty\":\"EC\",\"crv\":\"P-521\"},{\"kty\":\"OKP\",\"crv\":\"X25519\"},"
         "{\"kty\":\"oct\",\"alg\":\"A128KW\"},{\"kty\":\"AKP\"}]}",
         "no key usable to verify signatures (6 skipped)"},
        {"{\"keys\": [{\"kty\":\"oct\",\"key_ops\":\"verify\",\"k\":\"AA\"}]}",
         "\"key_ops\" is not an array"},
        {"{\"keys\": [{\"kty\":\"oct\",\"kid\":\"a\\u0000\",\"use\":1}]}",
         "keys[0]: \"use\" is not a string"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct opts o = {.jwks = cases[i].jwks};
        expect_error(&o, cases[i].want);
    }
    char many[4096];
    int w = snprintf(many, sizeof many, "{\"keys\":[{\"kty\":\"oct\"");
    for (int i = 0; i < 64; i++)
        w += snprintf(many + w, sizeof many - (size_t)w, ",\"m%d\":0", i);
    snprintf(many + w, sizeof many - (size_t)w, "}]}");
    struct opts m = {.jwks = many};
    expect_error(&m, "jwks: keys[0] has more than 64 members");
    memcpy(many + w, "}", 2);
    memmove(many, many + 9, strlen(many + 9) + 1); /* the key object alone, at the top */
    expect_error(&m, "jwks: more than 64 members (line 1, column ");

    /* RSA: exponent, size, and a modulus with a leading zero and padding. */
    size_t len;
    char *jwks, path[600];
    snprintf(path, sizeof path, "%s/jwks_rsa.json", fx.dir);
    jwks = slurp(path, &len);
    CHECK(jwks != NULL);
    if (jwks) {
        char *n = strstr(jwks, "\"n\": \""), *e = strstr(jwks, "\"AQAB\"");
        CHECK(n && e);
        n += 6;
        size_t n_len = strcspn(n, "\"");
        uint8_t raw[600];
        size_t raw_len;
        CHECK(base64url_decode(n, n_len, raw + 1, sizeof raw - 1, &raw_len));
        raw[0] = 0;
        char enc[1000], doc[2000];
        size_t enc_len = base64url_encode(raw, raw_len + 1, enc);
        while (enc_len % 4)
            enc[enc_len++] = '=';
        enc[enc_len] = 0;
        snprintf(doc, sizeof doc, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}]}",
                 enc);
        struct opts ok = {.jwks = doc};
        struct jwt_provider *p = must_provider(&ok);
        CHECK_STR(reason_at(p, tok("RS256_nokid"), NOW), "ok");
        CHECK_STR(reason_at(p, tok("RS256"), NOW), "ok"); /* a kid-less key takes any kid */
        jwt_provider_free(p);
        const char *bad_e[] = {"AQ", "Ag", "AA", "AQAAAAE", "AAEAAQ=="};
        for (size_t i = 0; i < sizeof bad_e / sizeof bad_e[0]; i++) {
            snprintf(doc, sizeof doc, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}]}",
                     enc, bad_e[i]);
            struct opts o = {.jwks = doc};
            if (i < 4)
                expect_error(&o, "RSA exponent \"e\" is not an odd number");
            else
                jwt_provider_free(must_provider(&o)); /* 65537 with a leading zero */
        }
        free(jwks);
    }

    struct opts missing = {.jwks_file = "does-not-exist.json"};
    expect_error(&missing, "does-not-exist.json: No such file or directory");
    struct opts nothing = {.issuer = "x"};
    expect_error(&nothing, "exactly one of jwks_file and secret");
    struct opts skew = {.secret = true, .skew = -1};
    expect_error(&skew, "clock_skew");
    struct opts empty_aud = {.secret = true, .aud = {""}};
    expect_error(&empty_aud, "audiences[0] is empty");
    struct opts fw1 = {.secret = true, .forwards = {{"sub", "X User"}}};
    expect_error(&fw1, "forward_claims: sub: \"X User\" is not a header name");
    struct opts fw2 = {.secret = true, .forwards = {{"sub", "content-LENGTH"}}};
    expect_error(&fw2, "header content-LENGTH cannot be set");
    struct opts fw3 = {.secret = true, .forwards = {{"sub", "X-A"}, {"tid", "x-a"}}};
    expect_error(&fw3, "header x-a used twice");
    struct opts fw4 = {.secret = true, .forwards = {{"sub", "X-A\r\n"}}};
    expect_error(&fw4, "is not a header name");
    struct opts req = {.secret = true, .required = {{"", "x"}}};
    expect_error(&req, "required claim 0 has no name");

    struct jwt_provider_params pp = {.name = "s", .secret = "not base64!"};
    char err[256];
    pp.jwks = "{}";
    CHECK(jwt_provider_new(&pp, err, sizeof err) == NULL);
    CHECK_STR(err, "exactly one of jwks_file and secret is needed");
    pp.jwks = NULL;
    CHECK(jwt_provider_new(&pp, err, sizeof err) == NULL);
    CHECK_STR(err, "secret is not base64url");
    pp.secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; /* 31 bytes */
    CHECK(jwt_provider_new(&pp, err, sizeof err) == NULL);
    CHECK_STR(err, "secret is 31 bytes; HMAC keys need at least 32");
    pp.secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; /* 32, padded */
    struct jwt_provider *p = jwt_provider_new(&pp, err, sizeof err);
    CHECK(p != NULL);
    jwt_provider_free(p);
    pp.name = NULL;
    CHECK(jwt_provider_new(&pp, err, sizeof err) == NULL);
    CHECK_STR(err, "provider needs a name");
}

struct thread_arg {
    const struct jwt_provider *p;
    size_t entries;
    int failures;
};

static void *hammer(void *arg)
{
    struct thread_arg *a = arg;
    struct jwt_cache *c = jwt_cache_new(a->entries, 1 << 20, 300);
    struct jwt_claims cl;
    size_t len;

    for (int i = 0; i < 300; i++) {
        const char *t = tok(all_algs[i % 12]);
        if (jwt_verify(a->p, c, t, strlen(t), NOW, &cl, NULL) != JWT_OK) a->failures++;
        const char *sub = jwt_claim(&cl, "sub", &len);
        if (!sub || len != 7 || memcmp(sub, "user-42", 7) != 0) a->failures++;
        if (jwt_verify(a->p, c, tok("RS256_wrong_kid"), strlen(tok("RS256_wrong_kid")), NOW, &cl,
                       NULL) != JWT_BAD_SIGNATURE)
            a->failures++;
    }
    jwt_cache_free(c);
    return NULL;
}

/* One provider shared read-only by workers, each with its own cache. */
static void test_threads(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct jwt_provider *p = must_provider(&o);
    pthread_t th[4];
    struct thread_arg args[4];

    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.p = p, .entries = i % 2 ? 8 : 0};
        CHECK_INT(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(args[i].failures, 0);
    }
    jwt_provider_free(p);
}

static bool have_pyjwt(void)
{
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import jwt, cryptography' 2>/dev/null") == 0 &&
           system("openssl version >/dev/null 2>&1") == 0;
}

/* New keys and tokens from the fixture script, so the committed ones are not
 * the only ones the code has ever seen. */
static char script[600];

static void test_fresh_keys(void)
{
    char dir[] = "/tmp/ringgate-jwt-XXXXXX", cmd[1200], saved[512];

    if (!have_pyjwt()) {
        fprintf(stderr, "test_fresh_keys: skipped: needs /usr/bin/python3 with the jwt module "
                        "(Debian python3-jwt) and openssl\n");
        return;
    }
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, dir);
    CHECK_INT(system(cmd), 0);
    snprintf(saved, sizeof saved, "%s", fx.dir);
    CHECK(load_fixtures(&fx, dir));
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct jwt_provider *p = must_provider(&o);
    for (size_t i = 0; i < sizeof all_algs / sizeof all_algs[0]; i++)
        CHECK_STR(reason_at(p, tok(all_algs[i]), NOW), "ok");
    CHECK_STR(reason_at(p, tok("HS256_confusion"), NOW), "alg_not_allowed");
    CHECK_STR(reason_at(p, tok("RS256_wrong_kid"), NOW), "bad_signature");
    CHECK_STR(reason_at(p, tok("RS256_expired"), NOW), "expired");
    jwt_provider_free(p);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    CHECK(load_fixtures(&fx, saved));
}

static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(const struct jwt_provider *p, struct jwt_cache *c, const char *t)
{
    struct jwt_claims cl;
    size_t len = strlen(t), n = 0;
    double start = seconds(), elapsed;

    do {
        for (int i = 0; i < 64; i++, n++)
            if (jwt_verify(p, c, t, len, NOW, &cl, NULL) != JWT_OK) return 0;
    } while ((elapsed = seconds() - start) < 0.25);
    return (double)n / elapsed;
}

static void test_benchmark(void)
{
    struct opts o = {.jwks_file = "jwks.json", .issuer = ISSUER, .aud = {"api"}};
    struct jwt_provider *p = must_provider(&o);
    struct jwt_cache *cold = jwt_cache_new(0, 0, 0), *warm = jwt_cache_new(1024, 8 << 20, 300);
    const char *names[] = {"RS256", "ES256", "EdDSA", "HS256"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        double uncached = rate(p, cold, tok(names[i])), cached = rate(p, warm, tok(names[i]));

        fprintf(stderr, "benchmark %s: %.0f verifications/s uncached, %.0f cached (x%.0f)\n",
                names[i], uncached, cached, uncached > 0 ? cached / uncached : 0);
        CHECK(uncached > 0 && cached > 0);
        if (i < 2) CHECK(cached > 2 * uncached);
    }
    jwt_cache_free(cold);
    jwt_cache_free(warm);
    jwt_provider_free(p);
}

int main(void)
{
    char dir[512];
    const char *slash = strrchr(__FILE__, '/');

    /* CMake compiles with the absolute path; by hand it is relative to the repository. */
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
    snprintf(script, sizeof script, "%s/jwt_fixtures.py", dir);
    strncat(dir, "/fixtures/jwt", sizeof dir - strlen(dir) - 1);
    if (!load_fixtures(&fx, dir) && !load_fixtures(&fx, "tests/unit/fixtures/jwt")) {
        fprintf(stderr, "cannot read the fixtures in %s (regenerate: %s)\n", dir, script);
        return 1;
    }
    RUN(test_every_algorithm);
    RUN(test_rfc_examples);
    RUN(test_alg_none_and_confusion);
    RUN(test_kid);
    RUN(test_time);
    RUN(test_issuer_and_audience);
    RUN(test_required_claims);
    RUN(test_corrupted_tokens);
    RUN(test_truncated_tokens);
    RUN(test_malformed);
    RUN(test_claim_access);
    RUN(test_cache);
    RUN(test_bearer);
    RUN(test_provider_errors);
    RUN(test_threads);
    RUN(test_fresh_keys);
    RUN(test_benchmark);
    free_fixtures(&fx);
    return TEST_REPORT();
}
