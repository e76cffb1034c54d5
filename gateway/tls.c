/* TLS over memory for BoringSSL and OpenSSL 3: one code path, the few
 * differences behind OPENSSL_IS_BORINGSSL.
 *
 * Each connection's SSL reads and writes through one BIO of our own: reads
 * come from the ciphertext tls_feed copied in, writes append to a chain of
 * blocks that never move, so the caller can hand them to the ring as they
 * are. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#ifdef OPENSSL_IS_BORINGSSL
#include <openssl/hmac.h>
#else
#include <openssl/core_names.h>
#endif

#define OUTPUT_BLOCK (16 * 1024 + 512) /* a whole TLS record fits */
#define INPUT_MIN (16 * 1024 + 512)
#define FILE_MAX (1024 * 1024)
#define TICKET_NAME 16

/* TLS 1.2: forward secrecy and AEAD only (TLS 1.3 suites are all fine). */
static const char cipher_list[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
static const char groups[] = "X25519:P-256:P-384";

struct ticket_key {
    uint8_t name[TICKET_NAME];
    uint8_t aes[32];
    uint8_t hmac[32];
    time_t created;
};

struct ticket_keys {
    pthread_mutex_t lock;
    struct ticket_key current;
    struct ticket_key previous;
    bool has_previous;
    time_t rotation;
};

struct server_name {
    char *name; /* lowercase; a wildcard keeps ".example.com" */
    int cert;
    bool wildcard;
};

struct tls_context {
    atomic_int refs;
    bool server;
    SSL_CTX **ssl_ctx; /* one per certificate; [0] answers unknown names */
    size_t ssl_ctx_count;
    struct server_name *names;
    size_t name_count;
    uint8_t *alpn; /* wire format */
    size_t alpn_len;
    struct ticket_keys tickets;
};

struct output_block {
    struct output_block *next;
    size_t start;
    size_t end;
    char data[OUTPUT_BLOCK];
};

struct tls_conn {
    SSL *ssl;
    struct tls_context *ctx;
    char *in;
    size_t in_start;
    size_t in_end;
    size_t in_cap;
    struct output_block *out_head;
    struct output_block *out_tail;
    size_t out_len;
    SSL_SESSION *session; /* client: latest resumable one */
    const char *error;
    int cert;
    bool sniffed; /* server: the first bytes were checked for plain HTTP */
};

/* Errors while building a context. */

static bool fail(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return false;
}

static time_t now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* The BIO between an SSL and its connection's buffers. */

static size_t input_len(const struct tls_conn *c)
{
    return c->in_end - c->in_start;
}

static bool output_append(struct tls_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        struct output_block *b = c->out_tail;
        if (!b || b->end == sizeof b->data) {
            b = malloc(sizeof *b);
            if (!b) return false;
            b->next = NULL;
            b->start = b->end = 0;
            if (c->out_tail)
                c->out_tail->next = b;
            else
                c->out_head = b;
            c->out_tail = b;
        }
        size_t k = sizeof b->data - b->end;
        if (k > n) k = n;
        memcpy(b->data + b->end, p, k);
        b->end += k;
        c->out_len += k;
        p += k;
        n -= k;
    }
    return true;
}

static int bio_write(BIO *bio, const char *data, int len)
{
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    return output_append(BIO_get_data(bio), data, (size_t)len) ? len : -1;
}

static int bio_read(BIO *bio, char *buf, int len)
{
    struct tls_conn *c = BIO_get_data(bio);
    size_t n = input_len(c);

    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    if (n == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    if (n > (size_t)len) n = (size_t)len;
    memcpy(buf, c->in + c->in_start, n);
    c->in_start += n;
    return (int)n;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    struct tls_conn *c = BIO_get_data(bio);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)input_len(c);
    case BIO_CTRL_WPENDING:
        return (long)c->out_len;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringgate");

    if (!m) return;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

/* Session ticket keys. */

static bool ticket_key_new(struct ticket_key *k, time_t now)
{
    k->created = now;
    return RAND_bytes(k->name, sizeof k->name) == 1 && RAND_bytes(k->aes, sizeof k->aes) == 1 &&
           RAND_bytes(k->hmac, sizeof k->hmac) == 1;
}

static void ticket_keys_rotate(struct ticket_keys *t, time_t now)
{
    struct ticket_key next;

    if (!ticket_key_new(&next, now)) return; /* keep the current one */
    t->previous = t->current;
    t->has_previous = true;
    t->current = next;
    OPENSSL_cleanse(&next, sizeof next);
}

/* The key to encrypt a new ticket with. */
static void ticket_key_current(struct ticket_keys *t, struct ticket_key *out)
{
    time_t now = now_seconds();

    pthread_mutex_lock(&t->lock);
    if (now - t->current.created >= t->rotation) ticket_keys_rotate(t, now);
    *out = t->current;
    pthread_mutex_unlock(&t->lock);
}

/* The key a ticket names: 1 the current one, 2 the previous one (so the
 * ticket is renewed under the current), 0 none (a full handshake). A key
 * stops decrypting two rotations after it was made: its last tickets are
 * one rotation old then, the session lifetime. */
static int ticket_key_find(struct ticket_keys *t, const uint8_t *name, struct ticket_key *out)
{
    time_t now = now_seconds();
    int found = 0;

    pthread_mutex_lock(&t->lock);
    if (memcmp(name, t->current.name, TICKET_NAME) == 0 &&
        now - t->current.created < 2 * t->rotation) {
        *out = t->current;
        found = now - t->current.created < t->rotation ? 1 : 2;
    } else if (t->has_previous && memcmp(name, t->previous.name, TICKET_NAME) == 0 &&
               now - t->previous.created < 2 * t->rotation) {
        *out = t->previous;
        found = 2;
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

#ifdef OPENSSL_IS_BORINGSSL
typedef HMAC_CTX ticket_mac;
#define set_ticket_key_cb SSL_CTX_set_tlsext_ticket_key_cb

static bool ticket_mac_init(ticket_mac *mac, const uint8_t *key)
{
    return HMAC_Init_ex(mac, key, 32, EVP_sha256(), NULL) == 1;
}
#else
typedef EVP_MAC_CTX ticket_mac;
#define set_ticket_key_cb SSL_CTX_set_tlsext_ticket_key_evp_cb

static bool ticket_mac_init(ticket_mac *mac, const uint8_t *key)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}
#endif

/* Called by the library to encrypt a new ticket (encrypt = 1) or to find
 * the key of one a client offers; see the return values above. */
static int on_ticket_key(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cipher,
                         ticket_mac *mac, int encrypt)
{
    struct tls_context *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct ticket_key key;
    int r;

    if (encrypt) {
        ticket_key_current(&ctx->tickets, &key);
        if (RAND_bytes(iv, 16) != 1) {
            OPENSSL_cleanse(&key, sizeof key);
            return -1;
        }
        memcpy(name, key.name, TICKET_NAME);
        r = EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) == 1 ? 1 : -1;
    } else {
        r = ticket_key_find(&ctx->tickets, name, &key);
        if (r == 0) return 0;
        /* TLS 1.3 clients should use a ticket once (RFC 8446 C.4): without
         * a renewal, OpenSSL would send them none after a resumption. */
        if (SSL_version(ssl) == TLS1_3_VERSION) r = 2;
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1) r = -1;
    }
    if (r > 0 && !ticket_mac_init(mac, key.hmac)) r = -1;
    OPENSSL_cleanse(&key, sizeof key);
    return r;
}

/* SNI: picking the certificate from the ClientHello, before the library
 * looks up a session (whose context must be the certificate's). */

/* The first host_name of a server_name extension, lowercased into name. */
static bool parse_server_name(const uint8_t *p, size_t len, char *name, size_t size)
{
    if (len < 2 || (size_t)(p[0] << 8 | p[1]) != len - 2) return false;
    p += 2;
    len -= 2;
    while (len >= 3) {
        uint8_t type = p[0];
        size_t n = (size_t)(p[1] << 8 | p[2]);
        p += 3;
        len -= 3;
        if (n > len) return false;
        if (type == TLSEXT_NAMETYPE_host_name) {
            if (n == 0 || n >= size) return false;
            for (size_t i = 0; i < n; i++) {
                if (p[i] <= ' ' || p[i] > '~') return false;
                name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            }
            name[n] = '\0';
            return true;
        }
        p += n;
        len -= n;
    }
    return false;
}

/* Exact names first, then "*.example.com" covering one label; else 0. */
static int select_certificate(const struct tls_context *ctx, const char *name)
{
    const char *dot = strchr(name, '.');

    for (size_t i = 0; i < ctx->name_count; i++)
        if (!ctx->names[i].wildcard && strcmp(ctx->names[i].name, name) == 0)
            return ctx->names[i].cert;
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < ctx->name_count; i++)
        if (ctx->names[i].wildcard && strcmp(ctx->names[i].name, dot) == 0)
            return ctx->names[i].cert;
    return 0;
}

static bool use_certificate_for(SSL *ssl, const uint8_t *ext, size_t len)
{
    struct tls_context *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct tls_conn *c = SSL_get_app_data(ssl);
    char name[256];

    c->cert =
        ext && parse_server_name(ext, len, name, sizeof name) ? select_certificate(ctx, name) : 0;
    return SSL_set_SSL_CTX(ssl, ctx->ssl_ctx[c->cert]) != NULL;
}

#ifdef OPENSSL_IS_BORINGSSL
static enum ssl_select_cert_result_t on_client_hello(const SSL_CLIENT_HELLO *hello)
{
    const uint8_t *ext = NULL;
    size_t len = 0;

    if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_server_name, &ext, &len))
        ext = NULL;
    return use_certificate_for(hello->ssl, ext, len) ? ssl_select_cert_success
                                                     : ssl_select_cert_error;
}
#else
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *ext = NULL;
    size_t len = 0;

    (void)arg;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len)) ext = NULL;
    if (use_certificate_for(ssl, ext, len)) return SSL_CLIENT_HELLO_SUCCESS;
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}
#endif

/* The certificate is chosen by then: this acknowledges the name, which
 * OpenSSL otherwise leaves out of TLS 1.2 sessions (and their resumptions). */
static int on_server_name(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the first of our protocols (in our order) that the client offers. */
static int on_alpn(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                   unsigned in_len, void *arg)
{
    const struct tls_context *ctx = arg;

    (void)ssl;
    for (size_t i = 0; i < ctx->alpn_len; i += 1 + ctx->alpn[i]) {
        const uint8_t *ours = ctx->alpn + i;
        for (unsigned j = 0; j < in_len && j + 1 + in[j] <= in_len; j += 1 + in[j]) {
            if (in[j] == ours[0] && memcmp(in + j + 1, ours + 1, ours[0]) == 0) {
                *out = in + j + 1;
                *out_len = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
}

/* Client sessions: the library hands each new one here (TLS 1.3 tickets
 * come after the handshake, so SSL_get1_session would be too early). */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    struct tls_conn *c = SSL_get_app_data(ssl);

    if (c->session) SSL_SESSION_free(c->session);
    c->session = session;
    return 1; /* we keep the reference */
}

/* Loading certificates and keys. */

/* The whole file, NUL-terminated, in a memory BIO over *data. */
static BIO *read_file(const char *path, const char *what, char **data, char *err, size_t size)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    BIO *bio = NULL;
    size_t len;

    if (!f) {
        fail(err, size, "cannot open %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    if (!(buf = malloc(FILE_MAX + 1))) {
        fail(err, size, "out of memory");
        goto out;
    }
    len = fread(buf, 1, FILE_MAX + 1, f);
    if (ferror(f)) {
        fail(err, size, "cannot read %s %s: %s", what, path, strerror(errno));
        goto out;
    }
    if (len > FILE_MAX) {
        fail(err, size, "%s %s is larger than 1 MiB", what, path);
        goto out;
    }
    buf[len] = '\0';
    if (!(bio = BIO_new_mem_buf(buf, (int)len))) fail(err, size, "out of memory");
out:
    fclose(f);
    if (bio)
        *data = buf;
    else
        free(buf);
    return bio;
}

static void format_time(const ASN1_TIME *t, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;

    snprintf(out, size, "?");
    if (!bio) return;
    if (ASN1_TIME_print(bio, t) == 1 && (n = BIO_get_mem_data(bio, &p)) > 0)
        snprintf(out, size, "%.*s", (int)n, p);
    BIO_free(bio);
}

/* Only the leaf's: a chain may carry an expired cross-signature that
 * clients ignore. */
static bool check_dates(X509 *x, const char *path, char *err, size_t size)
{
    char when[64];

    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        format_time(X509_get0_notAfter(x), when, sizeof when);
        return fail(err, size, "certificate %s expired on %s", path, when);
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        format_time(X509_get0_notBefore(x), when, sizeof when);
        return fail(err, size, "certificate %s is not valid before %s", path, when);
    }
    return true;
}

static bool add_name(struct tls_context *ctx, const unsigned char *p, int len, int cert)
{
    bool wildcard = len > 2 && p[0] == '*' && p[1] == '.';
    struct server_name *names;
    char *name;

    if (wildcard) {
        p++;
        len--;
    }
    if (len <= 0 || len > 253) return true; /* not a host name: skip */
    for (int i = 0; i < len; i++)
        if (p[i] <= ' ' || p[i] > '~' || p[i] == '*') return true;
    names = realloc(ctx->names, (ctx->name_count + 1) * sizeof *names);
    if (!names) return false;
    ctx->names = names;
    if (!(name = malloc((size_t)len + 1))) return false;
    for (int i = 0; i < len; i++)
        name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    name[len] = '\0';
    names[ctx->name_count++] = (struct server_name){name, cert, wildcard};
    return true;
}

/* DNS names from subjectAltName; the subject's CN only when there is none. */
static bool add_names(struct tls_context *ctx, X509 *x, int cert)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool ok = true;

    if (sans) {
        for (size_t i = 0; ok && i < (size_t)sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS)
                ok = add_name(ctx, ASN1_STRING_get0_data(g->d.dNSName),
                              ASN1_STRING_length(g->d.dNSName), cert);
        }
        GENERAL_NAMES_free(sans);
        return ok;
    }
    X509_NAME *subject = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i < 0) return true;
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    return add_name(ctx, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn), cert);
}

/* PEM keys are never prompted for: an encrypted one simply fails. */
static int no_password(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return 0;
}

static bool load_chain(SSL_CTX *s, BIO *bio, const char *path, char *err, size_t size)
{
    X509 *x;
    int n = 0;

    while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        n++;
        if (!SSL_CTX_add0_chain_cert(s, x)) {
            X509_free(x);
            return fail(err, size, "cannot use chain certificate #%d of %s", n, path);
        }
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error(); /* the end of the file */
        return true;
    }
    return fail(err, size, "malformed chain certificate #%d in %s", n + 1, path);
}

static EVP_PKEY *load_key(const char *path, char *err, size_t size)
{
    char *text = NULL;
    BIO *bio = read_file(path, "private key", &text, err, size);
    EVP_PKEY *key;

    if (!bio) return NULL;
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!key && strstr(text, "ENCRYPTED"))
        fail(err, size, "private key %s is encrypted: give it without a passphrase", path);
    else if (!key)
        fail(err, size, "no PEM private key in %s", path);
    BIO_free(bio);
    free(text);
    return key;
}

static bool load_certificate(struct tls_context *ctx, SSL_CTX *s, int index,
                             const struct tls_certificate_files *f, char *err, size_t size)
{
    char *text = NULL;
    BIO *bio = read_file(f->cert_file, "certificate", &text, err, size);
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    bool ok = false;

    if (!bio) return false;
    if (!(leaf = PEM_read_bio_X509(bio, NULL, no_password, NULL))) {
        fail(err, size, "no PEM certificate in %s", f->cert_file);
        goto out;
    }
    if (!check_dates(leaf, f->cert_file, err, size)) goto out;
    /* The leaf first: the chain attaches to the last certificate set. */
    if (SSL_CTX_use_certificate(s, leaf) != 1) {
        fail(err, size, "cannot use certificate %s", f->cert_file);
        goto out;
    }
    if (!load_chain(s, bio, f->cert_file, err, size) || !(key = load_key(f->key_file, err, size)))
        goto out;
    if (X509_check_private_key(leaf, key) != 1 || SSL_CTX_use_PrivateKey(s, key) != 1) {
        fail(err, size, "private key %s does not match certificate %s", f->key_file, f->cert_file);
        goto out;
    }
    /* Sessions resume only under the certificate they were made with. */
    if (X509_digest(leaf, EVP_sha256(), digest, &digest_len) != 1 ||
        SSL_CTX_set_session_id_context(s, digest, digest_len) != 1) {
        fail(err, size, "cannot use certificate %s", f->cert_file);
        goto out;
    }
    if (!add_names(ctx, leaf, index)) {
        fail(err, size, "out of memory");
        goto out;
    }
    ok = true;
out:
    EVP_PKEY_free(key);
    X509_free(leaf);
    BIO_free(bio);
    free(text);
    return ok;
}

/* Contexts. */

static bool alpn_encode(struct tls_context *ctx, const char *const *list, size_t count, char *err,
                        size_t size)
{
    size_t len = 0;

    for (size_t i = 0; i < count; i++) {
        size_t n = list[i] ? strlen(list[i]) : 0;
        if (n == 0 || n > 255) return fail(err, size, "ALPN protocol names are 1 to 255 bytes");
        len += 1 + n;
    }
    if (len == 0) return true;
    if (!(ctx->alpn = malloc(len))) return fail(err, size, "out of memory");
    for (size_t i = 0, at = 0; i < count; i++) {
        size_t n = strlen(list[i]);
        ctx->alpn[at] = (uint8_t)n;
        memcpy(ctx->alpn + at + 1, list[i], n);
        at += 1 + n;
    }
    ctx->alpn_len = len;
    return true;
}

static bool check_version(uint16_t v, const char *what, char *err, size_t size)
{
    if (v == 0 || v == TLS_VERSION_1_2 || v == TLS_VERSION_1_3) return true;
    return fail(err, size, "%s must be TLS 1.2 or 1.3", what);
}

static SSL_CTX *ssl_ctx_new(const SSL_METHOD *method, uint16_t min, uint16_t max)
{
    SSL_CTX *s = SSL_CTX_new(method);

    if (!s) return NULL;
    if (SSL_CTX_set_min_proto_version(s, min ? min : TLS_VERSION_1_2) != 1 ||
        SSL_CTX_set_max_proto_version(s, max ? max : TLS_VERSION_1_3) != 1 ||
        SSL_CTX_set_cipher_list(s, cipher_list) != 1 || SSL_CTX_set1_curves_list(s, groups) != 1) {
        SSL_CTX_free(s);
        return NULL;
    }
    /* Our cipher order applies (AES-128-GCM first: as strong in practice,
     * and its SHA-256 key schedule is cheaper than SHA-384's). */
    SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    return s;
}

static struct tls_context *context_alloc(bool server)
{
    struct tls_context *ctx = calloc(1, sizeof *ctx);

    if (!ctx) return NULL;
    atomic_init(&ctx->refs, 1);
    ctx->server = server;
    pthread_mutex_init(&ctx->tickets.lock, NULL);
    ctx->tickets.rotation = TLS_TICKET_ROTATION_DEFAULT;
    return ctx;
}

static void context_release(struct tls_context *ctx)
{
    if (!ctx || atomic_fetch_sub(&ctx->refs, 1) != 1) return;
    for (size_t i = 0; i < ctx->ssl_ctx_count; i++)
        SSL_CTX_free(ctx->ssl_ctx[i]);
    free(ctx->ssl_ctx);
    for (size_t i = 0; i < ctx->name_count; i++)
        free(ctx->names[i].name);
    free(ctx->names);
    free(ctx->alpn);
    OPENSSL_cleanse(&ctx->tickets.current, sizeof ctx->tickets.current);
    OPENSSL_cleanse(&ctx->tickets.previous, sizeof ctx->tickets.previous);
    pthread_mutex_destroy(&ctx->tickets.lock);
    free(ctx);
}

/* Every certificate's SSL_CTX is set up alike: after a switch by SNI, some
 * settings are read from the new one and some from the first. */
static SSL_CTX *server_ctx_new(struct tls_context *ctx, const struct tls_context_params *p,
                               int index, char *err, size_t size)
{
    SSL_CTX *s = ssl_ctx_new(TLS_server_method(), p->min_version, TLS_VERSION_1_3);

    if (!s) {
        fail(err, size, "cannot set up TLS");
        return NULL;
    }
    SSL_CTX_set_app_data(s, ctx);
    if (!load_certificate(ctx, s, index, &p->certificates[index], err, size)) {
        SSL_CTX_free(s);
        return NULL;
    }
#ifdef OPENSSL_IS_BORINGSSL
    SSL_CTX_set_select_certificate_cb(s, on_client_hello);
#else
    SSL_CTX_set_client_hello_cb(s, on_client_hello, NULL);
#endif
    SSL_CTX_set_tlsext_servername_callback(s, on_server_name);
    if (ctx->alpn) SSL_CTX_set_alpn_select_cb(s, on_alpn, ctx);
    SSL_CTX_set_timeout(s, (long)ctx->tickets.rotation);
    if (p->disable_session_cache) {
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(
            s, (long)(p->session_cache_size ? p->session_cache_size : TLS_SESSION_CACHE_DEFAULT));
    }
    if (p->disable_tickets)
        SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
    else
        set_ticket_key_cb(s, on_ticket_key);
    return s;
}

struct tls_context *tls_context_new(const struct tls_context_params *p, char *err, size_t err_size)
{
    struct tls_context *ctx;

    if (err_size) err[0] = '\0';
    if (p->certificate_count == 0 || p->certificate_count > INT_MAX) {
        fail(err, err_size, "give one certificate or more");
        return NULL;
    }
    if (!check_version(p->min_version, "min_version", err, err_size)) return NULL;
    if (!(ctx = context_alloc(true))) {
        fail(err, err_size, "out of memory");
        return NULL;
    }
    if (p->ticket_rotation) ctx->tickets.rotation = (time_t)p->ticket_rotation;
    if (!ticket_key_new(&ctx->tickets.current, now_seconds()) ||
        !alpn_encode(ctx, p->alpn, p->alpn_count, err, err_size))
        goto fail;
    if (!(ctx->ssl_ctx = calloc(p->certificate_count, sizeof *ctx->ssl_ctx))) {
        fail(err, err_size, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->certificate_count; i++) {
        if (!(ctx->ssl_ctx[i] = server_ctx_new(ctx, p, (int)i, err, err_size))) goto fail;
        ctx->ssl_ctx_count++;
    }
    return ctx;
fail:
    if (err_size && err[0] == '\0') fail(err, err_size, "cannot set up TLS");
    context_release(ctx);
    return NULL;
}

static bool load_trust(SSL_CTX *s, const char *ca_file, char *err, size_t size)
{
    if (!ca_file) {
        if (SSL_CTX_set_default_verify_paths(s) != 1)
            return fail(err, size, "cannot load the system's trusted certificates");
        return true;
    }
    FILE *f = fopen(ca_file, "r");
    if (!f) return fail(err, size, "cannot open CA file %s: %s", ca_file, strerror(errno));
    fclose(f);
    if (SSL_CTX_load_verify_locations(s, ca_file, NULL) != 1)
        return fail(err, size, "no PEM certificate in CA file %s", ca_file);
    return true;
}

struct tls_context *tls_client_context_new(const struct tls_client_params *p, char *err,
                                           size_t err_size)
{
    struct tls_context *ctx;
    SSL_CTX *s;

    if (err_size) err[0] = '\0';
    if (!check_version(p->min_version, "min_version", err, err_size) ||
        !check_version(p->max_version, "max_version", err, err_size))
        return NULL;
    if (p->min_version && p->max_version && p->min_version > p->max_version) {
        fail(err, err_size, "min_version is above max_version");
        return NULL;
    }
    if (!(ctx = context_alloc(false))) {
        fail(err, err_size, "out of memory");
        return NULL;
    }
    if (!alpn_encode(ctx, p->alpn, p->alpn_count, err, err_size)) goto fail;
    if (!(ctx->ssl_ctx = calloc(1, sizeof *ctx->ssl_ctx)) ||
        !(s = ssl_ctx_new(TLS_client_method(), p->min_version, p->max_version))) {
        fail(err, err_size, "cannot set up TLS");
        goto fail;
    }
    ctx->ssl_ctx[ctx->ssl_ctx_count++] = s;
    SSL_CTX_set_app_data(s, ctx);
    if ((p->verify || p->ca_file) && !load_trust(s, p->ca_file, err, err_size)) goto fail;
    SSL_CTX_set_verify(s, p->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (ctx->alpn && SSL_CTX_set_alpn_protos(s, ctx->alpn, (unsigned)ctx->alpn_len) != 0) {
        fail(err, err_size, "cannot set ALPN");
        goto fail;
    }
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(s, on_new_session);
    return ctx;
fail:
    context_release(ctx);
    return NULL;
}

void tls_context_free(struct tls_context *ctx)
{
    context_release(ctx);
}

void tls_context_rotate_ticket_keys(struct tls_context *ctx)
{
    pthread_mutex_lock(&ctx->tickets.lock);
    ticket_keys_rotate(&ctx->tickets, now_seconds());
    pthread_mutex_unlock(&ctx->tickets.lock);
}

void tls_context_copy_ticket_keys(struct tls_context *to, struct tls_context *from)
{
    struct ticket_key current, previous;
    bool has_previous;

    if (to == from) return;
    pthread_mutex_lock(&from->tickets.lock);
    current = from->tickets.current;
    previous = from->tickets.previous;
    has_previous = from->tickets.has_previous;
    pthread_mutex_unlock(&from->tickets.lock);
    pthread_mutex_lock(&to->tickets.lock);
    to->tickets.current = current;
    to->tickets.previous = previous;
    to->tickets.has_previous = has_previous;
    pthread_mutex_unlock(&to->tickets.lock);
    OPENSSL_cleanse(&current, sizeof current);
    OPENSSL_cleanse(&previous, sizeof previous);
}

/* Connections. */

static struct tls_conn *conn_new(struct tls_context *ctx)
{
    struct tls_conn *c;
    BIO *bio;

    pthread_once(&bio_method_once, bio_method_init);
    if (!bio_method || !(c = calloc(1, sizeof *c))) return NULL;
    if (!(c->ssl = SSL_new(ctx->ssl_ctx[0])) || !(bio = BIO_new(bio_method))) {
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    BIO_set_data(bio, c);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio); /* one reference, for both directions */
    SSL_set_app_data(c->ssl, c);
    atomic_fetch_add(&ctx->refs, 1);
    c->ctx = ctx;
    return c;
}

struct tls_conn *tls_conn_new(struct tls_context *ctx)
{
    struct tls_conn *c = ctx->server ? conn_new(ctx) : NULL;

    if (c) SSL_set_accept_state(c->ssl);
    return c;
}

static bool is_ip_address(const char *s)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

struct tls_conn *tls_conn_new_client(struct tls_context *ctx, const char *sni)
{
    struct tls_conn *c = ctx->server ? NULL : conn_new(ctx);
    X509_VERIFY_PARAM *param;
    bool ok = true;

    if (!c) return NULL;
    SSL_set_connect_state(c->ssl);
    if (sni && *sni) {
        param = SSL_get0_param(c->ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip_address(sni)) /* RFC 6066: SNI carries no addresses */
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, sni) == 1;
        else
            ok = SSL_set_tlsext_host_name(c->ssl, sni) == 1 &&
                 X509_VERIFY_PARAM_set1_host(param, sni, strlen(sni)) == 1;
    }
    if (!ok) {
        tls_conn_free(c);
        return NULL;
    }
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c) return;
    /* OpenSSL takes a connection freed without close_notify for a broken
     * one and stops resuming its session; most clients just close. */
    if (!c->error) SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c->ssl);
    if (c->session) SSL_SESSION_free(c->session);
    free(c->in);
    tls_consume_output(c, c->out_len);
    context_release(c->ctx);
    free(c);
}

int tls_feed(struct tls_conn *c, const void *data, size_t len)
{
    size_t used = input_len(c);

    if (len == 0) return 0;
    if (c->in_cap - c->in_end < len) {
        if (c->in_start > 0) memmove(c->in, c->in + c->in_start, used);
        c->in_start = 0;
        c->in_end = used;
        if (c->in_cap - used < len) {
            size_t cap = c->in_cap ? c->in_cap : INPUT_MIN;
            while (cap - used < len) {
                if (cap > SIZE_MAX / 2) return -1;
                cap *= 2;
            }
            char *p = realloc(c->in, cap);
            if (!p) return -1;
            c->in = p;
            c->in_cap = cap;
        }
    }
    memcpy(c->in + c->in_end, data, len);
    c->in_end += len;
    return 0;
}

size_t tls_input_len(const struct tls_conn *c)
{
    return input_len(c);
}

/* An idle connection keeps no input buffer. */
static void release_input(struct tls_conn *c)
{
    if (input_len(c) > 0) return;
    free(c->in);
    c->in = NULL;
    c->in_start = c->in_end = c->in_cap = 0;
}

/* Why the last call failed, from the library's error queue (and, for a
 * client, the certificate check). The strings are the library's own. */
static int set_error(struct tls_conn *c)
{
    long verify = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    if (!SSL_is_server(c->ssl) && verify != X509_V_OK)
        reason = X509_verify_cert_error_string(verify);
    c->error = reason ? reason : "TLS protocol error";
    ERR_clear_error();
    return TLS_ERROR;
}

/* The status a failed SSL_* call (result r) maps to. */
static int call_status(struct tls_conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_INPUT;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    default:
        return set_error(c);
    }
}

/* 1: the start of an HTTP request line ("GET ", "OPTIONS "...), 0: not,
 * -1: too short to tell. A TLS record starts with a byte below 0x20. */
static int looks_like_http(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len && i < 16; i++) {
        if (p[i] == ' ') return i >= 3;
        if ((p[i] < 'A' || p[i] > 'Z') && p[i] != '-' && p[i] != '_') return 0;
    }
    return i < 16 ? -1 : 0;
}

enum tls_status tls_handshake(struct tls_conn *c)
{
    int r;

    if (c->error) return TLS_ERROR;
    if (SSL_is_init_finished(c->ssl)) return TLS_DONE;
    if (SSL_is_server(c->ssl) && !c->sniffed) {
        r = input_len(c) ? looks_like_http(c->in + c->in_start, input_len(c)) : -1;
        if (r == 1) {
            c->error = "plain HTTP request on a TLS port";
            return TLS_PLAINTEXT_HTTP;
        }
        if (r == -1) return TLS_WANT_INPUT;
        c->sniffed = true;
    }
    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        release_input(c);
        return TLS_DONE;
    }
    r = call_status(c, r);
    if (r == TLS_CLOSED) { /* close_notify during the handshake */
        c->error = "connection closed during the handshake";
        return TLS_ERROR;
    }
    return (enum tls_status)r;
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t cap)
{
    int r;

    if (c->error) return TLS_ERROR;
    if (cap == 0) return 0;
    ERR_clear_error();
    r = SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (r > 0) return r;
    r = call_status(c, r);
    if (r != TLS_WANT_INPUT) return r;
    release_input(c);
    return 0;
}

ssize_t tls_write(struct tls_conn *c, const void *data, size_t len)
{
    size_t room;
    int r;

    if (c->error) return TLS_ERROR;
    if (len == 0 || c->out_len >= TLS_OUTPUT_HIGH_WATER) return 0;
    room = TLS_OUTPUT_HIGH_WATER - c->out_len;
    ERR_clear_error();
    r = SSL_write(c->ssl, data, (int)(len < room ? len : room));
    if (r > 0) return r;
    r = call_status(c, r);
    return r == TLS_WANT_INPUT ? 0 : r;
}

int tls_shutdown(struct tls_conn *c)
{
    if (c->error || !SSL_is_init_finished(c->ssl)) return -1;
    ERR_clear_error();
    if (SSL_shutdown(c->ssl) < 0) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

size_t tls_pending_output(const struct tls_conn *c, const void **data, size_t *len)
{
    const struct output_block *b = c->out_head;

    *data = b ? b->data + b->start : NULL;
    *len = b ? b->end - b->start : 0;
    return c->out_len;
}

int tls_output_iov(const struct tls_conn *c, struct iovec *iov, int max)
{
    int n = 0;

    for (const struct output_block *b = c->out_head; b && n < max; b = b->next, n++) {
        iov[n].iov_base = (void *)(b->data + b->start);
        iov[n].iov_len = b->end - b->start;
    }
    return n;
}

void tls_consume_output(struct tls_conn *c, size_t n)
{
    while (n > 0 && c->out_head) {
        struct output_block *b = c->out_head;
        size_t k = b->end - b->start;
        if (k > n) k = n;
        b->start += k;
        c->out_len -= k;
        n -= k;
        if (b->start == b->end) {
            c->out_head = b->next;
            if (!c->out_head) c->out_tail = NULL;
            free(b);
        }
    }
}

bool tls_conn_is_server(const struct tls_conn *c)
{
    return SSL_is_server(c->ssl);
}

uint16_t tls_conn_version(const struct tls_conn *c)
{
    return (uint16_t)SSL_version(c->ssl);
}

const char *tls_conn_version_name(const struct tls_conn *c)
{
    return SSL_get_version(c->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(c->ssl);

    return cipher ? SSL_CIPHER_get_name(cipher) : NULL;
}

const char *tls_conn_alpn(const struct tls_conn *c, size_t *len)
{
    const uint8_t *p = NULL;
    unsigned n = 0;

    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (len) *len = n;
    return n ? (const char *)p : NULL;
}

const char *tls_conn_server_name(const struct tls_conn *c)
{
    return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

int tls_conn_certificate(const struct tls_conn *c)
{
    return c->cert;
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c->error;
}

/* struct tls_session is never defined: it is an SSL_SESSION by another name. */
struct tls_session *tls_conn_session(struct tls_conn *c)
{
    SSL_SESSION *s = c->session;

    /* Up to TLS 1.2 the handshake settles the session, renewed ticket
     * included (which OpenSSL does not pass to on_new_session). */
    if (SSL_is_init_finished(c->ssl) && SSL_version(c->ssl) < TLS1_3_VERSION)
        s = SSL_get_session(c->ssl);
    if (!s || !SSL_SESSION_is_resumable(s)) return NULL;
    SSL_SESSION_up_ref(s);
    return (struct tls_session *)s;
}

bool tls_conn_set_session(struct tls_conn *c, struct tls_session *session)
{
    return SSL_set_session(c->ssl, (SSL_SESSION *)session) == 1;
}

void tls_session_free(struct tls_session *session)
{
    SSL_SESSION_free((SSL_SESSION *)session);
}
