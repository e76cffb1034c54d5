/* TLS over memory: a client and a server tls_conn talk to each other through
 * buffers, with certificates made for the run by fixtures/tls/gen-certs.sh. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tls.h"

static char dir[PATH_MAX];

/* A file of the run's certificate directory (up to four at a time). */
static const char *path(const char *name)
{
    static char paths[4][PATH_MAX + 32];
    static int next;
    char *p = paths[next++ % 4];

    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static void remove_certificates(void)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Runs the generator beside this file (CMake gives __FILE__ absolute). */
static int make_certificates(void)
{
    char script[PATH_MAX], cmd[3 * PATH_MAX];
    const char *file = __FILE__, *slash = strrchr(file, '/');
    int len = slash ? (int)(slash - file) : 1;

    snprintf(script, sizeof script, "%.*s/fixtures/tls/gen-certs.sh", len, slash ? file : ".");
    snprintf(dir, sizeof dir, "/tmp/ringgate-test-tls-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", script, dir);
    if (system(cmd) == 0) return 0;
    fprintf(stderr, "%s failed (is the openssl command there?)\n", script);
    remove_certificates();
    return -1;
}

/* Contexts. */

static const char *const http11[] = {"http/1.1"};

struct server_options {
    const char *certs[4]; /* names: "rsa" -> rsa.pem + rsa.key */
    uint16_t min_version;
    const char *const *alpn;
    size_t alpn_count;
    bool disable_session_cache;
    bool disable_tickets;
};

static struct tls_context *server(struct server_options o)
{
    struct tls_certificate_files files[4];
    char names[4][2][PATH_MAX + 32];
    char err[512];
    size_t n = 0;

    for (; n < 4 && o.certs[n]; n++) {
        snprintf(names[n][0], sizeof names[n][0], "%s/%s.pem", dir, o.certs[n]);
        snprintf(names[n][1], sizeof names[n][1], "%s/%s.key", dir, o.certs[n]);
        files[n] = (struct tls_certificate_files){names[n][0], names[n][1]};
    }
    struct tls_context_params p = {
        .certificates = files,
        .certificate_count = n,
        .min_version = o.min_version,
        .alpn = o.alpn,
        .alpn_count = o.alpn_count,
        .disable_session_cache = o.disable_session_cache,
        .disable_tickets = o.disable_tickets,
    };
    struct tls_context *ctx = tls_context_new(&p, err, sizeof err);
    if (!ctx) fprintf(stderr, "server context: %s\n", err);
    return ctx;
}

static struct tls_context *default_server(void)
{
    return server(
        (struct server_options){.certs = {"rsa", "ecdsa", "cn"}, .alpn = http11, .alpn_count = 1});
}

static struct tls_context *client(bool verify, uint16_t min, uint16_t max, const char *const *alpn,
                                  size_t alpn_count)
{
    char err[512];
    struct tls_client_params p = {
        .ca_file = path("ca.pem"),
        .verify = verify,
        .min_version = min,
        .max_version = max,
        .alpn = alpn,
        .alpn_count = alpn_count,
    };
    struct tls_context *ctx = tls_client_context_new(&p, err, sizeof err);
    if (!ctx) fprintf(stderr, "client context: %s\n", err);
    return ctx;
}

/* Moving bytes. */

static void transfer(struct tls_conn *from, struct tls_conn *to)
{
    const void *p;
    size_t len;

    while (tls_pending_output(from, &p, &len) > 0) {
        CHECK_INT(tls_feed(to, p, len), 0);
        tls_consume_output(from, len);
    }
}

struct result {
    int client, server;
};

/* Both handshakes to the end (or a failure), then the client takes in what
 * the server sent after (TLS 1.3 tickets). */
static struct result handshake(struct tls_conn *c, struct tls_conn *s)
{
    struct result r = {TLS_WANT_INPUT, TLS_WANT_INPUT};
    char byte;

    for (int i = 0; i < 10; i++) {
        if (r.client == TLS_WANT_INPUT) r.client = tls_handshake(c);
        transfer(c, s);
        if (r.server == TLS_WANT_INPUT) r.server = tls_handshake(s);
        transfer(s, c);
        if (r.client < 0 || r.server < 0) {
            if (r.client == TLS_WANT_INPUT) r.client = tls_handshake(c);
            break;
        }
        if (r.client == TLS_DONE && r.server == TLS_DONE) {
            CHECK_INT(tls_read(c, &byte, 1), 0);
            transfer(c, s);
            break;
        }
    }
    return r;
}

/* A connection pair over the two contexts, handshake done (or checked). */
struct pair {
    struct tls_conn *c, *s;
    struct result r;
};

static struct pair connect_pair(struct tls_context *cctx, struct tls_context *sctx, const char *sni,
                                struct tls_session *session)
{
    struct pair p = {tls_conn_new_client(cctx, sni), tls_conn_new(sctx), {0, 0}};

    CHECK(p.c && p.s);
    if (!p.c || !p.s) return p;
    if (session) CHECK(tls_conn_set_session(p.c, session));
    p.r = handshake(p.c, p.s);
    return p;
}

static void free_pair(struct pair p)
{
    tls_conn_free(p.c);
    tls_conn_free(p.s);
}

/* from writes len bytes, to reads them back. */
static void check_roundtrip(struct tls_conn *from, struct tls_conn *to, const char *data,
                            size_t len)
{
    char *got = malloc(len + 1);
    size_t sent = 0, have = 0;

    while (sent < len || have < len) {
        ssize_t n = sent < len ? tls_write(from, data + sent, len - sent) : 0;
        CHECK(n >= 0);
        if (n < 0) break;
        sent += (size_t)n;
        transfer(from, to);
        while ((n = tls_read(to, got + have, len + 1 - have)) > 0)
            have += (size_t)n;
        CHECK_INT(n, 0);
        if (n < 0 || have > len) break;
    }
    CHECK_INT(have, len);
    CHECK(memcmp(got, data, len) == 0);
    free(got);
}

/* Tests. */

static void test_versions(void)
{
    static const char *const offer[] = {"h2", "http/1.1"};
    uint16_t versions[] = {TLS_VERSION_1_2, TLS_VERSION_1_3};
    struct tls_context *sctx = default_server();

    for (int i = 0; i < 2; i++) {
        struct tls_context *cctx = client(true, versions[i], versions[i], offer, 2);
        struct pair p = connect_pair(cctx, sctx, "www.rsa.test", NULL);
        size_t len;

        CHECK_INT(p.r.client, TLS_DONE);
        CHECK_INT(p.r.server, TLS_DONE);
        CHECK_INT(tls_conn_version(p.c), versions[i]);
        CHECK_INT(tls_conn_version(p.s), versions[i]);
        CHECK_STR(tls_conn_version_name(p.s), i ? "TLSv1.3" : "TLSv1.2");
        CHECK(tls_conn_cipher(p.s) != NULL);
        CHECK(strstr(tls_conn_cipher(p.s), i ? "_" : "ECDHE-RSA-") != NULL);
        CHECK(tls_conn_is_server(p.s) && !tls_conn_is_server(p.c));
        CHECK(tls_conn_alpn(p.s, &len) && len == 8 &&
              memcmp(tls_conn_alpn(p.s, NULL), "http/1.1", 8) == 0);
        CHECK(tls_conn_alpn(p.c, &len) && len == 8);
        CHECK_STR(tls_conn_server_name(p.s), "www.rsa.test");
        CHECK(!tls_conn_resumed(p.s));
        CHECK(tls_conn_error(p.s) == NULL);

        const char req[] = "GET / HTTP/1.1\r\nHost: www.rsa.test\r\n\r\n";
        check_roundtrip(p.c, p.s, req, sizeof req - 1);
        check_roundtrip(p.s, p.c, "HTTP/1.1 204 No Content\r\n\r\n", 27);

        /* close_notify both ways */
        CHECK_INT(tls_shutdown(p.c), 0);
        transfer(p.c, p.s);
        char b[16];
        CHECK_INT(tls_read(p.s, b, sizeof b), TLS_CLOSED);
        CHECK_INT(tls_read(p.s, b, sizeof b), TLS_CLOSED);
        CHECK_INT(tls_shutdown(p.s), 0);
        transfer(p.s, p.c);
        CHECK_INT(tls_read(p.c, b, sizeof b), TLS_CLOSED);
        free_pair(p);
        tls_context_free(cctx);
    }
    tls_context_free(sctx);
}

static void test_sni(void)
{
    struct {
        const char *sni;
        int cert;
    } cases[] = {
        {"rsa.test", 0},
        {"www.rsa.test", 0},
        {"WWW.Rsa.Test", 0},
        {"a.example.com", 1},
        {"B.EXAMPLE.COM", 1},
        {"example.com", 1},
        {"a.b.example.com", 0},
        {".example.com", 0},
        {"cn.test", 2},
        {"unknown.test", 0},
        {NULL, 0},
        {"127.0.0.1", 0},
    };
    struct tls_context *sctx = default_server();

    for (int v = 0; v < 2; v++) {
        uint16_t version = v ? TLS_VERSION_1_3 : TLS_VERSION_1_2;
        struct tls_context *cctx = client(false, version, version, NULL, 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct pair p = connect_pair(cctx, sctx, cases[i].sni, NULL);
            CHECK_INT(p.r.server, TLS_DONE);
            CHECK_INT(tls_conn_certificate(p.s), cases[i].cert);
            if (tls_conn_certificate(p.s) != cases[i].cert)
                fprintf(stderr, "  sni %s\n", cases[i].sni ? cases[i].sni : "(none)");
            if (!cases[i].sni || strcmp(cases[i].sni, "127.0.0.1") == 0)
                CHECK(tls_conn_server_name(p.s) == NULL); /* no SNI sent for an address */
            else if (cases[i].sni[0] != '.')
                CHECK(tls_conn_server_name(p.s) != NULL);
            free_pair(p);
        }
        tls_context_free(cctx);
    }
    tls_context_free(sctx);
}

static void test_verification(void)
{
    struct tls_context *sctx = default_server();
    struct tls_context *cctx = client(true, 0, 0, NULL, 0);
    const char *good[] = {"rsa.test", "a.example.com", "example.com", "cn.test"};

    /* rsa.pem's chain goes through the intermediate it carries */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct pair p = connect_pair(cctx, sctx, good[i], NULL);
        CHECK_INT(p.r.client, TLS_DONE);
        if (p.r.client != TLS_DONE) fprintf(stderr, "  %s: %s\n", good[i], tls_conn_error(p.c));
        free_pair(p);
    }
    /* names the served certificate does not carry */
    const char *bad[] = {"unknown.test", "a.b.example.com", "127.0.0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pair p = connect_pair(cctx, sctx, bad[i], NULL);
        CHECK_INT(p.r.client, TLS_ERROR);
        CHECK(tls_conn_error(p.c) != NULL);
        CHECK(p.r.server == TLS_ERROR || p.r.server == TLS_WANT_INPUT);
        free_pair(p);
    }
    tls_context_free(cctx);

    /* a trust store without our root */
    char err[512];
    struct tls_client_params other = {.ca_file = path("inter.pem"), .verify = true};
    cctx = tls_client_context_new(&other, err, sizeof err);
    CHECK(cctx != NULL);
    struct pair p = connect_pair(cctx, sctx, "a.example.com", NULL);
    CHECK_INT(p.r.client, TLS_ERROR);
    CHECK(tls_conn_error(p.c) != NULL);
    free_pair(p);
    tls_context_free(cctx);

    /* the same without verification */
    other.verify = false;
    cctx = tls_client_context_new(&other, err, sizeof err);
    p = connect_pair(cctx, sctx, "unknown.test", NULL);
    CHECK_INT(p.r.client, TLS_DONE);
    free_pair(p);
    tls_context_free(cctx);

    /* the system store loads; a missing CA file is named */
    struct tls_client_params system = {.verify = true};
    cctx = tls_client_context_new(&system, err, sizeof err);
    CHECK(cctx != NULL);
    tls_context_free(cctx);
    struct tls_client_params missing = {.ca_file = path("nope.pem"), .verify = true};
    CHECK(tls_client_context_new(&missing, err, sizeof err) == NULL);
    CHECK(strstr(err, "nope.pem") && strstr(err, "No such file"));
    tls_context_free(sctx);
}

static void test_alpn(void)
{
    static const char *const h2[] = {"h2"};
    static const char *const both[] = {"h2", "http/1.1"};
    struct tls_context *sctx = default_server();
    struct tls_context *plain = server((struct server_options){.certs = {"ecdsa"}});
    struct tls_context *none = client(false, 0, 0, NULL, 0);
    struct tls_context *only_h2 = client(false, 0, 0, h2, 1);
    struct tls_context *offers_both = client(false, 0, 0, both, 2);
    struct pair p;

    p = connect_pair(none, sctx, "rsa.test", NULL); /* no ALPN: fine */
    CHECK_INT(p.r.server, TLS_DONE);
    CHECK(tls_conn_alpn(p.s, NULL) == NULL);
    free_pair(p);

    p = connect_pair(only_h2, sctx, "rsa.test", NULL); /* nothing in common */
    CHECK_INT(p.r.server, TLS_ERROR);
    CHECK_INT(p.r.client, TLS_ERROR);
    free_pair(p);

    p = connect_pair(offers_both, sctx, "rsa.test", NULL);
    CHECK_INT(p.r.server, TLS_DONE);
    CHECK(tls_conn_alpn(p.s, NULL) && strncmp(tls_conn_alpn(p.s, NULL), "http/1.1", 8) == 0);
    free_pair(p);

    p = connect_pair(offers_both, plain, "a.example.com", NULL); /* server without ALPN */
    CHECK_INT(p.r.server, TLS_DONE);
    CHECK(tls_conn_alpn(p.c, NULL) == NULL);
    free_pair(p);

    tls_context_free(none);
    tls_context_free(only_h2);
    tls_context_free(offers_both);
    tls_context_free(plain);
    tls_context_free(sctx);
}

static void test_min_version(void)
{
    struct tls_context *sctx =
        server((struct server_options){.certs = {"ecdsa"}, .min_version = TLS_VERSION_1_3});
    struct tls_context *old = client(false, 0, TLS_VERSION_1_2, NULL, 0);
    struct tls_context *any = client(false, 0, 0, NULL, 0);
    struct pair p;

    p = connect_pair(old, sctx, "a.example.com", NULL);
    CHECK_INT(p.r.server, TLS_ERROR);
    CHECK_INT(p.r.client, TLS_ERROR);
    CHECK(tls_conn_error(p.s) != NULL);
    CHECK(tls_conn_error(p.c) != NULL);
    free_pair(p);

    p = connect_pair(any, sctx, "a.example.com", NULL);
    CHECK_INT(p.r.server, TLS_DONE);
    CHECK_INT(tls_conn_version(p.s), TLS_VERSION_1_3);
    free_pair(p);

    tls_context_free(old);
    tls_context_free(any);
    tls_context_free(sctx);
}

/* Connects once, returns the session the client got. */
static struct tls_session *first_session(struct tls_context *cctx, struct tls_context *sctx,
                                         const char *sni)
{
    struct pair p = connect_pair(cctx, sctx, sni, NULL);
    struct tls_session *session;

    CHECK_INT(p.r.server, TLS_DONE);
    CHECK(!tls_conn_resumed(p.s));
    check_roundtrip(p.s, p.c, "hello", 5); /* BoringSSL's TLS 1.3 tickets come with it */
    session = tls_conn_session(p.c);
    free_pair(p);
    return session;
}

/* Connects offering *session, which is then replaced by the newest one
 * (TLS 1.3 sessions are for one use), as an upstream pool would do. */
static bool resumes(struct tls_context *cctx, struct tls_context *sctx, const char *sni,
                    struct tls_session **session, int cert)
{
    struct pair p = connect_pair(cctx, sctx, sni, *session);
    bool resumed = tls_conn_resumed(p.s);

    CHECK_INT(p.r.client, TLS_DONE);
    CHECK_INT(p.r.server, TLS_DONE);
    CHECK_INT(tls_conn_resumed(p.c), resumed);
    CHECK_INT(tls_conn_certificate(p.s), cert);
    CHECK_STR(tls_conn_server_name(p.s), sni);
    check_roundtrip(p.s, p.c, "hello", 5);
    struct tls_session *next = tls_conn_session(p.c);
    if (next) {
        tls_session_free(*session);
        *session = next;
    }
    free_pair(p);
    return resumed;
}

static void test_resumption(void)
{
    for (int v = 0; v < 2; v++) {
        uint16_t version = v ? TLS_VERSION_1_3 : TLS_VERSION_1_2;
        struct tls_context *cctx = client(true, version, version, NULL, 0);
        struct tls_context *sctx = default_server();
        struct tls_session *s, *kept;

        /* tickets, under each certificate, again and again */
        s = first_session(cctx, sctx, "a.example.com");
        CHECK(s != NULL);
        CHECK(resumes(cctx, sctx, "a.example.com", &s, 1));
        CHECK(resumes(cctx, sctx, "a.example.com", &s, 1));
        tls_session_free(s);
        s = first_session(cctx, sctx, "rsa.test");
        CHECK(resumes(cctx, sctx, "rsa.test", &s, 0));

        /* one rotation later the previous key still decrypts (and the
         * ticket is renewed under the new one); two, not */
        tls_context_rotate_ticket_keys(sctx);
        CHECK(resumes(cctx, sctx, "rsa.test", &s, 0));
        tls_context_rotate_ticket_keys(sctx);
        CHECK(resumes(cctx, sctx, "rsa.test", &s, 0));
        tls_context_rotate_ticket_keys(sctx);
        tls_context_rotate_ticket_keys(sctx);
        CHECK(!resumes(cctx, sctx, "rsa.test", &s, 0));
        tls_session_free(s);

        /* a reloaded configuration resumes what the old one issued once it
         * takes the keys over */
        s = first_session(cctx, sctx, "a.example.com");
        kept = first_session(cctx, sctx, "a.example.com");
        struct tls_context *reloaded = default_server();
        CHECK(!resumes(cctx, reloaded, "a.example.com", &s, 1));
        tls_context_copy_ticket_keys(reloaded, sctx);
        CHECK(resumes(cctx, reloaded, "a.example.com", &kept, 1));
        tls_session_free(s);
        tls_session_free(kept);
        tls_context_free(reloaded);
        tls_context_free(sctx);

        /* without tickets: TLS 1.2 has the session cache; a BoringSSL
         * TLS 1.3 server then offers no resumption, OpenSSL's still can */
        sctx = server((struct server_options){.certs = {"rsa", "ecdsa"}, .disable_tickets = true});
        s = first_session(cctx, sctx, "a.example.com");
        if (v == 0) CHECK(s && resumes(cctx, sctx, "a.example.com", &s, 1));
        tls_session_free(s);
        tls_context_free(sctx);

        /* neither: never resumed */
        sctx = server((struct server_options){
            .certs = {"rsa", "ecdsa"}, .disable_tickets = true, .disable_session_cache = true});
        s = first_session(cctx, sctx, "a.example.com");
        if (s) CHECK(!resumes(cctx, sctx, "a.example.com", &s, 1));
        tls_session_free(s);
        tls_context_free(sctx);
        tls_context_free(cctx);
    }
}

/* A session made under one certificate is not resumed under another. */
static void test_resumption_other_name(void)
{
    for (int v = 0; v < 2; v++) {
        uint16_t version = v ? TLS_VERSION_1_3 : TLS_VERSION_1_2;
        struct tls_context *cctx = client(false, version, version, NULL, 0);
        struct tls_context *sctx = default_server();
        struct tls_session *s = first_session(cctx, sctx, "a.example.com");

        CHECK(!resumes(cctx, sctx, "rsa.test", &s, 0));
        tls_session_free(s);
        tls_context_free(sctx);
        tls_context_free(cctx);
    }
}

static void check_load_error(const char *cert, const char *key, const char *want1,
                             const char *want2)
{
    struct tls_certificate_files f = {cert, key};
    struct tls_context_params p = {.certificates = &f, .certificate_count = 1};
    char err[512] = "";
    struct tls_context *ctx = tls_context_new(&p, err, sizeof err);

    CHECK(ctx == NULL);
    CHECK(strstr(err, want1) != NULL);
    CHECK(!want2 || strstr(err, want2) != NULL);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
        fprintf(stderr, "  got \"%s\", wanted \"%s\"\n", err, want1);
    tls_context_free(ctx);
}

static void test_load_errors(void)
{
    char garbage[PATH_MAX + 32];
    FILE *f;

    check_load_error(path("missing.pem"), path("rsa.key"), "missing.pem", "No such file");
    check_load_error(dir, path("rsa.key"), "Is a directory", NULL);
    check_load_error(path("rsa.pem"), path("missing.key"), "missing.key", "No such file");
    check_load_error(path("ecdsa.pem"), path("other.key"), "does not match", "other.key");
    check_load_error(path("ecdsa.pem"), path("rsa.key"), "does not match", "ecdsa.pem");
    check_load_error(path("rsa.pem"), path("ecdsa.key"), "does not match", "ecdsa.key");
    check_load_error(path("expired.pem"), path("expired.key"), "expired on", "2020");
    check_load_error(path("future.pem"), path("future.key"), "not valid before", "2099");
    check_load_error(path("ecdsa.pem"), path("encrypted.key"), "encrypted", NULL);
    check_load_error(path("ecdsa.key"), path("ecdsa.key"), "no PEM certificate", NULL);
    check_load_error(path("ecdsa.pem"), path("ecdsa.pem"), "no PEM private key", NULL);

    snprintf(garbage, sizeof garbage, "%s/garbage.pem", dir);
    f = fopen(garbage, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    check_load_error(garbage, path("ecdsa.key"), "no PEM certificate", "garbage.pem");
    /* a good leaf followed by a broken chain */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' > '%s/broken.pem'", path("ecdsa.pem"), garbage, dir);
    CHECK_INT(system(cmd), 0);
    check_load_error(path("broken.pem"), path("ecdsa.key"), "chain certificate #1", NULL);

    /* parameters */
    struct tls_certificate_files ok = {path("ecdsa.pem"), path("ecdsa.key")};
    char err[512];
    struct tls_context_params p = {.certificates = &ok, .certificate_count = 0};
    CHECK(tls_context_new(&p, err, sizeof err) == NULL);
    p.certificate_count = 1;
    p.min_version = 0x0301;
    CHECK(tls_context_new(&p, err, sizeof err) == NULL);
    CHECK(strstr(err, "min_version") != NULL);
    static const char *const empty[] = {""};
    p.min_version = 0;
    p.alpn = empty;
    p.alpn_count = 1;
    CHECK(tls_context_new(&p, err, sizeof err) == NULL);
    CHECK(strstr(err, "ALPN") != NULL);
    p.alpn_count = 0;
    struct tls_context *ctx = tls_context_new(&p, err, sizeof err);
    CHECK(ctx != NULL);
    tls_context_free(ctx);
}

static enum tls_status feed_server(struct tls_context *sctx, const char *data)
{
    struct tls_conn *s = tls_conn_new(sctx);
    const void *p;
    size_t len;

    tls_feed(s, data, strlen(data));
    enum tls_status st = tls_handshake(s);
    if (st == TLS_PLAINTEXT_HTTP) CHECK_INT(tls_pending_output(s, &p, &len), 0);
    tls_conn_free(s);
    return st;
}

static void test_plaintext_http(void)
{
    struct tls_context *sctx = default_server();
    struct tls_conn *s;

    CHECK_INT(feed_server(sctx, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), TLS_PLAINTEXT_HTTP);
    CHECK_INT(feed_server(sctx, "OPTIONS * HTTP/1.1\r\n"), TLS_PLAINTEXT_HTTP);
    CHECK_INT(feed_server(sctx, "PRI * HTTP/2.0\r\n"), TLS_PLAINTEXT_HTTP);
    CHECK_INT(feed_server(sctx, "M-SEARCH * HTTP/1.1\r\n"), TLS_PLAINTEXT_HTTP);
    CHECK_INT(feed_server(sctx, "POST"), TLS_WANT_INPUT);
    CHECK_INT(feed_server(sctx, "get / HTTP/1.1\r\n"), TLS_ERROR);
    CHECK_INT(feed_server(sctx, "SSH-2.0-OpenSSH_9.2\r\n"), TLS_ERROR);
    CHECK_INT(feed_server(sctx, ""), TLS_WANT_INPUT);

    /* bit by bit */
    s = tls_conn_new(sctx);
    CHECK_INT(tls_handshake(s), TLS_WANT_INPUT);
    tls_feed(s, "HE", 2);
    CHECK_INT(tls_handshake(s), TLS_WANT_INPUT);
    tls_feed(s, "AD / HTTP/1.0\r\n", 15);
    CHECK_INT(tls_handshake(s), TLS_PLAINTEXT_HTTP);
    CHECK_INT(tls_handshake(s), TLS_ERROR);
    CHECK(tls_conn_error(s) && strstr(tls_conn_error(s), "HTTP"));
    tls_conn_free(s);
    tls_context_free(sctx);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void fill_random(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)next_random();
}

static void test_garbage(void)
{
    struct tls_context *sctx = default_server();
    struct tls_context *cctx = client(false, 0, 0, NULL, 0);
    char junk[40000], b[256];

    /* random bytes, and random bytes behind a plausible record header */
    for (int i = 0; i < 300; i++) {
        struct tls_conn *s = tls_conn_new(sctx);
        size_t n = 1 + next_random() % sizeof junk;
        fill_random(junk, n);
        if (i % 2) memcpy(junk, "\x16\x03\x01", n < 3 ? n : 3);
        tls_feed(s, junk, n);
        enum tls_status st = tls_handshake(s);
        CHECK(st == TLS_ERROR || st == TLS_WANT_INPUT || st == TLS_PLAINTEXT_HTTP);
        if (st == TLS_ERROR) CHECK(tls_conn_error(s) != NULL);
        tls_feed(s, junk, n); /* more after the failure is harmless */
        CHECK(tls_handshake(s) != TLS_DONE);
        CHECK(tls_read(s, b, sizeof b) <= 0);
        tls_conn_free(s);
    }

    /* a real ClientHello with one byte changed */
    for (int i = 0; i < 200; i++) {
        struct tls_conn *c = tls_conn_new_client(cctx, "rsa.test");
        struct tls_conn *s = tls_conn_new(sctx);
        const void *p;
        size_t len;
        tls_handshake(c);
        tls_pending_output(c, &p, &len);
        memcpy(junk, p, len < sizeof junk ? len : sizeof junk);
        junk[next_random() % len] ^= (char)(1 + next_random() % 255);
        tls_feed(s, junk, len);
        enum tls_status st = tls_handshake(s);
        CHECK(st == TLS_ERROR || st == TLS_WANT_INPUT || st == TLS_DONE);
        tls_conn_free(c);
        tls_conn_free(s);
    }

    /* garbage once the handshake is done, both directions */
    for (int i = 0; i < 50; i++) {
        struct pair p = connect_pair(cctx, sctx, "rsa.test", NULL);
        size_t n = 1 + next_random() % 2000;
        CHECK_INT(p.r.server, TLS_DONE);
        fill_random(junk, n);
        if (i % 2) memcpy(junk, "\x17\x03\x03", n < 3 ? n : 3);
        tls_feed(p.s, junk, n);
        tls_feed(p.c, junk, n);
        ssize_t r = tls_read(p.s, b, sizeof b);
        CHECK(r == TLS_ERROR || r == 0);
        r = tls_read(p.c, b, sizeof b);
        CHECK(r == TLS_ERROR || r == 0);
        free_pair(p);
    }
    tls_context_free(cctx);
    tls_context_free(sctx);
}

/* Output stays where it is until consumed; tls_write stops at the high
 * water mark; a large body goes through intact. */
static void test_output(void)
{
    struct tls_context *sctx = default_server();
    struct tls_context *cctx = client(false, 0, 0, NULL, 0);
    struct pair p = connect_pair(cctx, sctx, "rsa.test", NULL);
    size_t big = 1024 * 1024 + 123;
    char *body = malloc(big), *got = malloc(big), saved[64];
    const void *first;
    size_t first_len, have = 0, sent = 0;

    CHECK_INT(p.r.server, TLS_DONE);
    fill_random(body, big);
    CHECK(tls_write(p.s, body, 100) == 100);
    CHECK(tls_pending_output(p.s, &first, &first_len) > 0);
    memcpy(saved, first, sizeof saved);
    ssize_t n = tls_write(p.s, body, big);
    CHECK(n > 0 && (size_t)n < big);
    CHECK(tls_pending_output(p.s, &first, &first_len) >= TLS_OUTPUT_HIGH_WATER - 100);
    CHECK_INT(tls_write(p.s, body, big), 0);
    const void *again;
    size_t again_len;
    tls_pending_output(p.s, &again, &again_len);
    CHECK(again == first && memcmp(first, saved, sizeof saved) == 0);
    tls_consume_output(p.s, tls_pending_output(p.s, &first, &first_len)); /* dropped */
    free_pair(p);

    p = connect_pair(cctx, sctx, "rsa.test", NULL);
    while (have < big) {
        if (sent < big) {
            n = tls_write(p.s, body + sent, big - sent);
            CHECK(n >= 0);
            if (n < 0) break;
            sent += (size_t)n;
        }
        struct iovec iov[8];
        int count = tls_output_iov(p.s, iov, 8);
        size_t moved = 0;
        for (int i = 0; i < count; i++) {
            tls_feed(p.c, iov[i].iov_base, iov[i].iov_len);
            moved += iov[i].iov_len;
        }
        tls_consume_output(p.s, moved);
        while ((n = tls_read(p.c, got + have, big - have)) > 0)
            have += (size_t)n;
        if (n < 0 || (count == 0 && sent == big && have < big)) break;
    }
    CHECK_INT(have, big);
    CHECK(memcmp(got, body, big) == 0);
    free_pair(p);
    free(body);
    free(got);
    tls_context_free(cctx);
    tls_context_free(sctx);
}

/* A connection keeps its context: the configuration may go first. */
static void test_context_lifetime(void)
{
    struct tls_context *sctx = default_server();
    struct tls_context *cctx = client(false, 0, 0, NULL, 0);
    struct tls_conn *c = tls_conn_new_client(cctx, "a.example.com");
    struct tls_conn *s = tls_conn_new(sctx);

    tls_context_free(cctx);
    tls_context_free(sctx);
    struct result r = handshake(c, s);
    CHECK_INT(r.client, TLS_DONE);
    CHECK_INT(r.server, TLS_DONE);
    CHECK_INT(tls_conn_certificate(s), 1);
    check_roundtrip(c, s, "ping", 4);
    tls_conn_free(c);
    tls_conn_free(s);
}

/* Worker threads share the contexts (no CHECK in them: the counters are
 * not atomic). */
struct worker {
    struct tls_context *sctx, *cctx;
    int done;
};

static bool exchange(struct tls_conn *c, struct tls_conn *s)
{
    char got[8];
    const void *p;
    size_t len;

    if (tls_write(s, "hello", 5) != 5) return false;
    while (tls_pending_output(s, &p, &len) > 0) {
        if (tls_feed(c, p, len) != 0) return false;
        tls_consume_output(s, len);
    }
    return tls_read(c, got, sizeof got) == 5 && memcmp(got, "hello", 5) == 0;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const char *names[] = {"rsa.test", "a.example.com", "cn.test"};
    struct tls_session *session = NULL;

    for (int i = 0; i < 60; i++) {
        struct tls_conn *c = tls_conn_new_client(w->cctx, names[i % 3]);
        struct tls_conn *s = tls_conn_new(w->sctx);
        if (session && i % 3 == 0) tls_conn_set_session(c, session);
        struct result r = {TLS_WANT_INPUT, TLS_WANT_INPUT};
        for (int k = 0; k < 4; k++) {
            const void *p;
            size_t len;
            r.client = tls_handshake(c);
            while (tls_pending_output(c, &p, &len) > 0) {
                tls_feed(s, p, len);
                tls_consume_output(c, len);
            }
            r.server = tls_handshake(s);
            while (tls_pending_output(s, &p, &len) > 0) {
                tls_feed(c, p, len);
                tls_consume_output(s, len);
            }
        }
        if (r.client == TLS_DONE && r.server == TLS_DONE && exchange(c, s) &&
            tls_conn_certificate(s) == i % 3 && (i < 3 || i % 3 != 0 || tls_conn_resumed(s)))
            w->done++;
        if (i % 3 == 0) {
            tls_session_free(session);
            session = tls_conn_session(c);
        }
        tls_conn_free(c);
        tls_conn_free(s);
    }
    tls_session_free(session);
    return NULL;
}

static void test_threads(void)
{
    struct tls_context *sctx = default_server();
    struct tls_context *cctx = client(true, 0, 0, NULL, 0);
    struct worker w[4];
    pthread_t t[4];

    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){sctx, cctx, 0};
        CHECK_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(w[i].done, 60);
    }
    tls_context_free(cctx);
    tls_context_free(sctx);
}

int main(void)
{
    if (make_certificates() != 0) return 1;
    RUN(test_versions);
    RUN(test_sni);
    RUN(test_verification);
    RUN(test_alpn);
    RUN(test_min_version);
    RUN(test_resumption);
    RUN(test_resumption_other_name);
    RUN(test_load_errors);
    RUN(test_plaintext_http);
    RUN(test_garbage);
    RUN(test_output);
    RUN(test_context_lifetime);
    RUN(test_threads);
    remove_certificates();
    return TEST_REPORT();
}
