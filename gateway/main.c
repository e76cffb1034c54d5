/* ringgate: command line, start-up, signals. The main thread loads the
 * configuration, starts the workers and then only waits for signals. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "accesslog.h"
#include "admin.h"
#include "config.h"
#include "file_check.h"
#include "health.h"
#include "privileges.h"
#include "log.h"
#include "metrics.h"
#include "proxy_cache.h"
#include "ratelimit.h"
#include "reload.h"
#include "version.h"
#include "worker.h"

#define DEFAULT_CONFIG "/etc/ringgate/ringgate.yaml"
#define RATELIMIT_MEMORY (64u << 20) /* the local bucket table, all policies */

static void usage(FILE *to)
{
    fprintf(to, "usage: ringgate [-c FILE] [-t] [-V]\n"
                "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
                "  -t       check the configuration and exit (0 valid, 1 not)\n"
                "  -V       print the version and TLS library, and exit\n");
}

static void print_errors(const struct config_errors *errors)
{
    size_t shown = errors->count < CONFIG_MAX_ERRORS ? errors->count : CONFIG_MAX_ERRORS;

    for (size_t i = 0; i < shown; i++)
        fprintf(stderr, "%s\n", errors->lines[i]);
    if (errors->count > shown)
        fprintf(stderr, "(%zu more errors not shown)\n", errors->count - shown);
}

/* `-t`: the lines as they are, on stderr. */
static void print_problem(const struct file_problem *problem, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "%s\n", problem->line);
}

/* Every client and upstream connection is a descriptor: take what the
 * hard limit allows (nginx's worker_rlimit_nofile, done for you). */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int run(const char *path, struct config *cfg)
{
    struct worker *workers = calloc(cfg->workers, sizeof(*workers));
    unsigned started = 0, inited = 0;
    char err[256];
    sigset_t signals;
    struct timespec tick = {.tv_sec = 1};
    unsigned ticks = 0;
    int sig, status = 0;

    raise_fd_limit();
    file_check_config(cfg, file_problem_log, NULL);
    if (!workers || worker_probe_kernel(err, sizeof(err)) < 0) {
        log_error("cannot start: %s", workers ? err : "out of memory");
        free(workers);
        config_free(cfg);
        return 1;
    }
    if (ratelimit_init(RATELIMIT_MEMORY) < 0) {
        log_error("cannot start: out of memory for the rate-limit table");
        free(workers);
        config_free(cfg);
        return 1;
    }
    /* The cache's size is the first configuration's: a reload keeps it. */
    if (proxy_cache_start(cfg) < 0) {
        log_error("cannot start: out of memory for the cache (cache.memory)");
        ratelimit_shutdown();
        free(workers);
        config_free(cfg);
        return 1;
    }
    if (access_log_open(cfg->access_log) < 0) {
        log_error("cannot start: access log %s: %s", cfg->access_log, strerror(errno));
        proxy_cache_stop();
        ratelimit_shutdown();
        free(workers);
        config_free(cfg);
        return 1;
    }
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &signals, NULL); /* inherited by the workers */

    atomic_store(&config_published, cfg);
    /* Every socket is bound first (privileged ports need root), the admin
     * listener before the public ones, then the privileges go, then the
     * threads that serve traffic start. */
    if (cfg->has_admin && admin_listen(&cfg->admin, err, sizeof(err)) < 0) {
        log_error("cannot start: %s", err);
        status = 1;
    }
    for (; status == 0 && inited < cfg->workers; inited++) {
        if (worker_init(&workers[inited], inited, cfg, err, sizeof(err)) < 0) {
            log_error("cannot start: %s", err);
            worker_destroy(&workers[inited]);
            status = 1;
            break;
        }
    }
    if (status == 0 && cfg->has_admin &&
        admin_start(workers, inited, err, sizeof(err)) < 0) {
        log_error("cannot start: %s", err);
        status = 1;
    }
    if (status == 0 && privileges_drop(cfg->user, err, sizeof(err)) < 0) {
        log_error("cannot start: %s", err);
        status = 1;
    }
    for (; status == 0 && started < inited; started++) {
        if (worker_start(&workers[started]) < 0) {
            status = 1;
            break;
        }
    }
    if (status == 0 && (health_configure(cfg) < 0 || health_start() < 0)) {
        log_error("cannot start: the health check thread");
        status = 1;
    }
    if (status == 0)
        log_info("ringgate %s started: %u workers, %zu listeners", ringgate_version(),
                 cfg->workers, cfg->n_listeners);
    while (status == 0) {
        sig = sigtimedwait(&signals, NULL, &tick);
        reload_collect(workers, started);
        if (++ticks % 10 == 0)
            malloc_trim(0); /* memory freed after a burst goes back to the system */
        if (sig < 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("signal %d: draining (up to %llu ms)", sig,
                     (unsigned long long)cfg->shutdown_timeout);
            break;
        }
        if (sig == SIGHUP)
            reload_config(path, &cfg, workers, started);
        if (sig == SIGUSR1 && access_log_reopen() < 0)
            log_error("SIGUSR1: cannot reopen the access log: %s", strerror(errno));
    }
    atomic_store(&workers_stop, true);
    for (unsigned i = 0; i < started; i++)
        worker_join(&workers[i]);
    admin_stop();
    health_stop();
    ratelimit_shutdown();
    proxy_cache_stop(); /* after the workers and the admin thread */
    reload_free_all(workers, started);
    for (unsigned i = 0; i < inited; i++)
        worker_destroy(&workers[i]);
    free(workers);
    config_free(cfg);
    if (status == 0)
        log_info("stopped");
    return status;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    bool check_only = false;
    struct config_errors errors;
    struct config *cfg;
    int opt;

    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'V':
            printf("ringgate %s (TLS: %s)\n", ringgate_version(), ringgate_tls_library());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    memset(&errors, 0, sizeof(errors));
    cfg = config_load(path, &errors);
    if (!cfg) {
        print_errors(&errors);
        return 1;
    }
    metrics_register(cfg);
    if (check_only) {
        file_check_config(cfg, print_problem, NULL);
        fprintf(stderr, "%s: configuration is valid\n", path);
        config_free(cfg);
        return 0;
    }
    return run(path, cfg);
}
