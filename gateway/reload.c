/* Configuration reloads. */
#include "reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "file_check.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

#define MAX_RETIRED 64

static struct config *retired[MAX_RETIRED];
static size_t n_retired;

static bool listener_kept(const struct config *cur, const struct listener_conf *lc)
{
    for (size_t i = 0; i < cur->n_listeners; i++)
        if (sockaddr_equal(&cur->listeners[i].addr, &lc->addr))
            return true;
    return false;
}

static void close_new_sockets(struct worker *workers, unsigned n)
{
    for (unsigned w = 0; w < n; w++) {
        if (!workers[w].new_listen_fds)
            continue;
        for (size_t i = 0; workers[w].new_listen_fds[i] != -2; i++)
            if (workers[w].new_listen_fds[i] >= 0)
                close(workers[w].new_listen_fds[i]);
        free(workers[w].new_listen_fds);
        workers[w].new_listen_fds = NULL;
    }
}

/* One socket per worker for every listener at a new address. The arrays
 * end with -2. */
static int open_new_sockets(const struct config *cur, const struct config *next,
                            struct worker *workers, unsigned n)
{
    char err[256];

    close_new_sockets(workers, n); /* the last reload's: every worker is past it */
    for (unsigned w = 0; w < n; w++) {
        workers[w].new_listen_fds = malloc((next->n_listeners + 1) * sizeof(int));
        if (!workers[w].new_listen_fds) {
            close_new_sockets(workers, w);
            return -1;
        }
        for (size_t i = 0; i <= next->n_listeners; i++)
            workers[w].new_listen_fds[i] = i == next->n_listeners ? -2 : -1;
    }
    for (size_t i = 0; i < next->n_listeners; i++) {
        if (listener_kept(cur, &next->listeners[i]))
            continue;
        for (unsigned w = 0; w < n; w++) {
            int fd = listen_open(&next->listeners[i], err, sizeof(err));
            if (fd < 0) {
                log_error("reload rejected: %s", err);
                close_new_sockets(workers, n);
                return -1;
            }
            workers[w].new_listen_fds[i] = fd;
        }
    }
    return 0;
}

/* Waits (briefly) until every worker runs `cfg`. */
static bool workers_on(const struct config *cfg, struct worker *workers, unsigned n)
{
    for (int tries = 0; tries < 100; tries++) {
        bool all = true;
        for (unsigned w = 0; w < n; w++)
            all &= atomic_load_explicit(&workers[w].acked, memory_order_acquire) == cfg;
        if (all)
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    }
    return false;
}

/* Sessions resumed before a reload keep resuming after it. */
static void carry_ticket_keys(const struct config *cur, struct config *next)
{
    for (size_t i = 0; i < next->n_listeners; i++) {
        if (!next->listeners[i].tls)
            continue;
        for (size_t j = 0; j < cur->n_listeners; j++)
            if (cur->listeners[j].tls &&
                sockaddr_equal(&cur->listeners[j].addr, &next->listeners[i].addr))
                tls_context_copy_ticket_keys(next->listeners[i].tls, cur->listeners[j].tls);
    }
}

static void warn_restart_only(const struct config *cur, const struct config *next)
{
    if (next->workers != cur->workers)
        log_warn("reload: 'workers' changes at the next restart (running %u)", cur->workers);
    if (next->has_admin != cur->has_admin ||
        (next->has_admin && !sockaddr_equal(&next->admin, &cur->admin)))
        log_warn("reload: 'admin.listen' changes at the next restart");
}

static void reject(const char *why)
{
    log_error("reload rejected: %s; the running configuration stays", why);
    counter_add(&metrics_reloads_failed, 1);
}

void reload_config(const char *path, struct config **current, struct worker *workers,
                   unsigned n_workers)
{
    struct config_errors errors;
    struct config *next;

    if (!workers_on(*current, workers, n_workers) || n_retired == MAX_RETIRED) {
        reject("workers are still finishing requests under earlier configurations");
        return;
    }
    memset(&errors, 0, sizeof(errors));
    next = config_load(path, &errors);
    if (!next) {
        for (size_t i = 0; i < errors.count && i < CONFIG_MAX_ERRORS; i++)
            log_error("%s", errors.lines[i]);
        reject("configuration errors above");
        return;
    }
    if (open_new_sockets(*current, next, workers, n_workers) < 0) {
        config_free(next);
        reject("a new listener could not be opened");
        return;
    }
    if (access_log_open(next->access_log) < 0)
        log_error("reload: access log %s: %s (kept the previous one)", next->access_log,
                  strerror(errno));
    warn_restart_only(*current, next);
    file_check_config(next, file_problem_log, NULL);
    carry_ticket_keys(*current, next);
    metrics_register(next);
    if (health_configure(next) < 0)
        log_error("reload: out of memory for health checks (kept the previous targets)");
    atomic_store(&(*current)->retire_holds, (int)n_workers);
    retired[n_retired++] = *current;
    *current = next;
    atomic_store_explicit(&config_published, next, memory_order_release);
    counter_add(&metrics_reloads_ok, 1);
    log_info("configuration reloaded from %s", path);
}

void reload_collect(struct worker *workers, unsigned n_workers)
{
    const struct config *cur = atomic_load(&config_published);
    bool all_switched = true;

    for (unsigned w = 0; w < n_workers; w++)
        all_switched &= atomic_load(&workers[w].acked) == cur;
    if (all_switched)
        close_new_sockets(workers, n_workers); /* what a worker did not take */
    for (size_t i = 0; i < n_retired;) {
        if (atomic_load_explicit(&retired[i]->retire_holds, memory_order_acquire) > 0) {
            i++;
            continue;
        }
        config_free(retired[i]);
        retired[i] = retired[--n_retired];
    }
}

void reload_free_all(struct worker *workers, unsigned n_workers)
{
    close_new_sockets(workers, n_workers);
    for (size_t i = 0; i < n_retired; i++)
        config_free(retired[i]);
    n_retired = 0;
}
