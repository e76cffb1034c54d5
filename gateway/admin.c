/* The admin listener's thread: one connection at a time, each bounded by
 * socket timeouts, answered and closed. Scrapes are rare; simplicity wins.
 * It answers even when a connection flood has used up the descriptors: a
 * reserve descriptor is given up for the connection, then taken back. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cache_store.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "proxy_cache.h"
#include "reply.h"
#include "timer.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_BACKOFF_MS 100 /* between accepts when no descriptor is left */

static struct {
    int fd;
    int reserve; /* a spare descriptor: see reserve_take() */
    int wake[2];
    pthread_t thread;
    struct worker *workers;
    size_t n_workers;
    uint64_t log_next; /* ms: when "out of descriptors" may be logged again */
} admin = {.fd = -1, .reserve = -1, .wake = {-1, -1}};

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t sent = send(fd, p, n, MSG_NOSIGNAL);
        if (sent <= 0)
            return;
        p += sent;
        n -= (size_t)sent;
    }
}

static void answer(int fd, int status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, http_reason(status), type, len);

    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void answer_error(int fd, int status, const char *message)
{
    char out[1024];
    size_t n = reply_error(out, sizeof(out), status, message, false, NULL);

    send_all(fd, out, n);
}

static void answer_metrics(int fd)
{
    struct worker_metrics *list[256];
    size_t n = admin.n_workers < 256 ? admin.n_workers : 256, len;
    char *text;

    for (size_t i = 0; i < n; i++)
        list[i] = admin.workers[i].metrics;
    text = metrics_render(list, n, &len);
    if (!text) {
        answer_error(fd, 500, "out of memory rendering metrics");
        return;
    }
    answer(fd, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static bool path_is(const struct http_request *req, const char *path)
{
    return req->path.len == strlen(path) && memcmp(req->path.p, path, req->path.len) == 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes v into out (cap bytes; '+' stays, as in paths); -1 on
 * a bad escape, a NUL or no room. */
static ssize_t url_decode(struct http_str v, char *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < v.len; i++) {
        int ch = (unsigned char)v.p[i];

        if (ch == '%') {
            int hi = i + 2 < v.len ? hex_digit(v.p[i + 1]) : -1;
            int lo = i + 2 < v.len ? hex_digit(v.p[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || n == cap)
            return -1;
        out[n++] = (char)ch;
    }
    return (ssize_t)n;
}

/* PURGE (or DELETE) /cache?url=host/path, or ?prefix=host/path-prefix:
 * drops the stored responses, answers how many URLs were dropped. */
static void answer_purge(int fd, const struct http_request *req)
{
    struct cache_store *store = proxy_cache_store();
    struct http_str q = req->query;
    bool prefix = q.len > 7 && memcmp(q.p, "prefix=", 7) == 0;
    bool url = q.len > 4 && memcmp(q.p, "url=", 4) == 0;
    char key[4096], body[64];
    ssize_t len = -1;
    size_t purged;
    int n;

    if (prefix || url) {
        size_t skip = prefix ? 7 : 4;
        len = url_decode((struct http_str){q.p + skip, q.len - skip}, key, sizeof(key));
    }
    if (len <= 0 || memchr(key, '&', (size_t)len) || !store) {
        answer_error(fd, 400, store ? "expected /cache?url=<host/path> or "
                                      "/cache?prefix=<host/path-prefix>"
                                    : "the cache is not running");
        return;
    }
    proxy_cache_key_normalize(key, (size_t)len);
    purged = prefix ? cache_purge_prefix(store, key, (size_t)len)
                    : cache_purge(store, key, (size_t)len);
    n = snprintf(body, sizeof(body), "{\"purged\":%zu}\n", purged);
    answer(fd, 200, "application/json", body, (size_t)n);
}

static bool method_is(const struct http_request *req, const char *name)
{
    return http1_str_is(req->method, name);
}

static void route(int fd, const struct http_request *req)
{
    bool ready = !atomic_load(&workers_stop);

    if (path_is(req, "/cache") && (method_is(req, "PURGE") || method_is(req, "DELETE")))
        answer_purge(fd, req);
    else if (path_is(req, "/cache"))
        answer_error(fd, 405, "/cache answers PURGE and DELETE");
    else if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD)
        answer_error(fd, 405, "the admin endpoints answer GET only");
    else if (path_is(req, "/healthz"))
        answer(fd, 200, "text/plain", "ok\n", 3);
    else if (path_is(req, "/readyz"))
        answer(fd, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "draining\n",
               ready ? 6 : 9);
    else if (path_is(req, "/metrics"))
        answer_metrics(fd);
    else
        answer_error(fd, 404, "admin endpoints: /healthz, /readyz, /metrics, /cache");
}

static void serve(int fd)
{
    struct timeval tv = {.tv_sec = 2};
    char head[ADMIN_HEAD_MAX];
    size_t len = 0;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (len < sizeof(head)) {
        struct http_request req;
        struct http_error err;
        ssize_t got = recv(fd, head + len, sizeof(head) - len, 0);
        int n;

        if (got <= 0)
            return;
        len += (size_t)got;
        n = http1_parse_request(head, len, &req, &err);
        if (n == HTTP_INCOMPLETE)
            continue;
        if (n == HTTP_ERROR)
            answer_error(fd, err.status, err.message);
        else
            route(fd, &req);
        return;
    }
    answer_error(fd, 431, "request head too large");
}

/* The reserve: a descriptor slot held for the admin connection, given up
 * when accept() finds none left. */
static void reserve_take(void)
{
    if (admin.reserve < 0)
        admin.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void reserve_give_up(void)
{
    close(admin.reserve);
    admin.reserve = -1;
}

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE;
}

/* accept4(), and at the descriptor limit once more with the reserve given
 * up: the connection takes its slot. */
static int accept_even_at_limit(void)
{
    int fd = accept4(admin.fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd >= 0 || !out_of_descriptors(errno) || admin.reserve < 0)
        return fd;
    reserve_give_up();
    return accept4(admin.fd, NULL, NULL, SOCK_CLOEXEC);
}

/* Closes the connection; when it holds the reserve's slot, the slot becomes
 * the reserve again. dup2() closes and refills it in one step: a worker's
 * accept cannot take it in between, as it could after close(). */
static void close_connection(int fd)
{
    shutdown(fd, SHUT_WR);
    if (admin.reserve < 0 && dup2(admin.wake[0], fd) == fd)
        admin.reserve = fd;
    else
        close(fd);
}

/* No descriptor even for the admin connection (it waits in the backlog):
 * logs once a second at most, and sleeps a little unless told to stop.
 * Returns true when told to stop. */
static bool back_off(int err)
{
    struct pollfd wake = {.fd = admin.wake[0], .events = POLLIN};
    uint64_t now = clock_ms();

    if (now >= admin.log_next) {
        admin.log_next = now + 1000;
        log_warn("admin listener: accept: %s", strerror(err));
    }
    return poll(&wake, 1, ADMIN_BACKOFF_MS) > 0;
}

static void *admin_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd fds[2] = {{.fd = admin.fd, .events = POLLIN},
                                {.fd = admin.wake[0], .events = POLLIN}};
        int fd;

        reserve_take();
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        fd = accept_even_at_limit();
        if (fd < 0) {
            if (out_of_descriptors(errno) && back_off(errno))
                break;
            continue;
        }
        serve(fd);
        close_connection(fd);
    }
    return NULL;
}

int admin_listen(const struct sockaddr_any *addr, char *err, size_t err_size)
{
    int one = 1;

    admin.fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (admin.fd < 0 || setsockopt(admin.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(admin.fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
        listen(admin.fd, 64) < 0 || pipe2(admin.wake, O_CLOEXEC) < 0) {
        snprintf(err, err_size, "admin listener: %s", strerror(errno));
        admin_stop();
        return -1;
    }
    return 0;
}

int admin_start(struct worker *workers, size_t n_workers, char *err, size_t err_size)
{
    admin.workers = workers;
    admin.n_workers = n_workers;
    if (pthread_create(&admin.thread, NULL, admin_main, NULL) != 0) {
        snprintf(err, err_size, "admin listener: cannot start its thread");
        admin_stop();
        return -1;
    }
    return 0;
}

void admin_stop(void)
{
    if (admin.thread) {
        if (write(admin.wake[1], "x", 1) < 0) {
            /* the thread will not wake; joining would hang */
        } else {
            pthread_join(admin.thread, NULL);
        }
        admin.thread = 0;
    }
    for (int i = 0; i < 2; i++)
        if (admin.wake[i] >= 0)
            close(admin.wake[i]);
    if (admin.fd >= 0)
        close(admin.fd);
    if (admin.reserve >= 0)
        close(admin.reserve);
    admin.fd = admin.reserve = admin.wake[0] = admin.wake[1] = -1;
}
