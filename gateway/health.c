/* Active health checks. */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "log.h"
#include "timer.h"

struct target {
    char upstream[64];
    char endpoint[128];
    char path[256];
    struct sockaddr_any addr;
    unsigned endpoint_id;
    uint64_t interval, timeout;
    unsigned healthy, unhealthy; /* thresholds */
    unsigned streak;             /* consecutive results contrary to the state */
    bool up;
    uint64_t next_check; /* ms */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stop;
    struct target *targets;
    size_t n_targets;
} health = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static size_t count_targets(const struct config *cfg)
{
    size_t n = 0;

    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (cfg->upstreams[i].health.enabled)
            n += cfg->upstreams[i].n_endpoints;
    return n;
}

/* A target kept across reloads keeps its state (same endpoint id). */
static const struct target *old_target(unsigned endpoint_id)
{
    for (size_t i = 0; i < health.n_targets; i++)
        if (health.targets[i].endpoint_id == endpoint_id)
            return &health.targets[i];
    return NULL;
}

int health_configure(const struct config *cfg)
{
    size_t n = count_targets(cfg), k = 0;
    struct target *list = calloc(n + 1, sizeof(*list));
    uint64_t now = clock_ms();

    if (!list)
        return -1;
    pthread_mutex_lock(&health.lock);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct upstream_conf *u = &cfg->upstreams[i];
        for (size_t e = 0; u->health.enabled && e < u->n_endpoints; e++, k++) {
            struct target *t = &list[k];
            const struct target *old = old_target(u->endpoints[e].metrics_id);

            snprintf(t->upstream, sizeof(t->upstream), "%s", u->name);
            snprintf(t->endpoint, sizeof(t->endpoint), "%s", u->endpoints[e].text);
            snprintf(t->path, sizeof(t->path), "%s", u->health.path);
            t->addr = u->endpoints[e].addr;
            t->endpoint_id = u->endpoints[e].metrics_id;
            t->interval = u->health.interval;
            t->timeout = u->health.timeout;
            t->healthy = u->health.healthy;
            t->unhealthy = u->health.unhealthy;
            t->up = old ? old->up : true;
            t->streak = old ? old->streak : 0;
            t->next_check = old ? old->next_check : now;
        }
    }
    /* Endpoints no longer checked count as healthy again. */
    for (size_t i = 0; i < health.n_targets; i++) {
        bool kept = false;
        for (size_t j = 0; j < n; j++)
            kept |= list[j].endpoint_id == health.targets[i].endpoint_id;
        if (!kept)
            endpoint_set_healthy(health.targets[i].endpoint_id, true);
    }
    free(health.targets);
    health.targets = list;
    health.n_targets = n;
    pthread_cond_signal(&health.wake);
    pthread_mutex_unlock(&health.lock);
    return 0;
}

static bool wait_for(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = clock_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int rc;

        if (now >= deadline)
            return false;
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return !(p.revents & (POLLERR | POLLNVAL)) || (p.revents & POLLIN);
        if (rc == 0 || errno != EINTR)
            return false;
    }
}

/* One check: connect, GET, a 2xx or 3xx status line within the timeout. */
static bool check(const struct target *t)
{
    uint64_t deadline = clock_ms() + t->timeout;
    char req[512], resp[64];
    size_t got = 0;
    int fd, err = 0, n, status;
    socklen_t len = sizeof(err);

    fd = socket(t->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    if (connect(fd, (const struct sockaddr *)&t->addr.ss, t->addr.len) < 0 &&
        errno != EINPROGRESS)
        goto fail;
    if (!wait_for(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
        goto fail;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringgate-health-check\r\n"
                 "Connection: close\r\n\r\n",
                 t->path, t->endpoint);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        goto fail;
    while (got < 12) {
        ssize_t r;
        if (!wait_for(fd, POLLIN, deadline))
            goto fail;
        r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r <= 0)
            goto fail;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.", 7) != 0 || resp[8] != ' ')
        return false;
    status = atoi(resp + 9);
    return status >= 200 && status < 400;
fail:
    close(fd);
    return false;
}

static void record(struct target *t, bool ok)
{
    if (ok == t->up) {
        t->streak = 0;
        return;
    }
    if (++t->streak < (ok ? t->healthy : t->unhealthy))
        return;
    t->up = ok;
    t->streak = 0;
    endpoint_set_healthy(t->endpoint_id, ok);
    if (ok)
        log_info("upstream %s: endpoint %s is healthy again", t->upstream, t->endpoint);
    else
        log_warn("upstream %s: endpoint %s failed %u health checks: taken out", t->upstream,
                 t->endpoint, t->unhealthy);
}

/* Checks run without the lock (they block); a reload in between replaces
 * the list, and the result is then applied by endpoint id. */
static void *health_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&health.lock);
    while (!health.stop) {
        uint64_t now = clock_ms();
        struct target due;
        bool found = false;

        for (size_t i = 0; i < health.n_targets && !found; i++) {
            if (health.targets[i].next_check <= now) {
                health.targets[i].next_check = now + health.targets[i].interval;
                due = health.targets[i];
                found = true;
            }
        }
        if (!found) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&health.wake, &health.lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&health.lock);
        bool ok = check(&due);
        pthread_mutex_lock(&health.lock);
        for (size_t i = 0; i < health.n_targets; i++)
            if (health.targets[i].endpoint_id == due.endpoint_id)
                record(&health.targets[i], ok);
    }
    pthread_mutex_unlock(&health.lock);
    return NULL;
}

int health_start(void)
{
    if (pthread_create(&health.thread, NULL, health_main, NULL) != 0)
        return -1;
    health.running = true;
    return 0;
}

void health_stop(void)
{
    if (!health.running)
        return;
    pthread_mutex_lock(&health.lock);
    health.stop = true;
    pthread_cond_signal(&health.wake);
    pthread_mutex_unlock(&health.lock);
    pthread_join(health.thread, NULL);
    health.running = false;
    free(health.targets);
    health.targets = NULL;
    health.n_targets = 0;
}
