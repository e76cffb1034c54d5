/* The access log. */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

/* Read by the workers, changed by the main thread (start, reload). */
static _Atomic int log_fd = -1;
static char *log_path; /* the file behind log_fd; NULL for stdout or off */

static bool same_path(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int access_log_open(const char *path)
{
    int fd;

    if (same_path(path, log_path) && (path || log_fd < 0))
        return 0;
    if (!path) {
        /* The old descriptor stays open: a write may still be in a ring. */
        atomic_store(&log_fd, -1);
    } else if (strcmp(path, "-") == 0) {
        atomic_store(&log_fd, STDOUT_FILENO);
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
        if (log_fd > STDOUT_FILENO) { /* the same number, another file */
            dup3(fd, log_fd, O_CLOEXEC);
            close(fd);
        } else {
            atomic_store(&log_fd, fd);
        }
    }
    free(log_path);
    log_path = path && strcmp(path, "-") != 0 ? strdup(path) : NULL;
    return 0;
}

int access_log_reopen(void)
{
    int fd;

    if (!log_path)
        return 0;
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    /* Same descriptor number: workers never see a closed or reused fd. */
    if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

bool access_log_enabled(void)
{
    return log_fd >= 0;
}

void access_log_init(struct access_log *log)
{
    memset(log, 0, sizeof(*log));
    log->buf[0] = malloc(ACCESS_LOG_BUF);
    log->buf[1] = malloc(ACCESS_LOG_BUF);
}

void access_log_destroy(struct access_log *log)
{
    free(log->buf[0]);
    free(log->buf[1]);
    memset(log, 0, sizeof(*log));
}

/* Appends s as the inside of a JSON string. */
static size_t json_string(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < len && n + 6 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[ch >> 4];
            out[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            out[n++] = (char)ch;
        }
    }
    return n;
}

void access_log_request(struct worker *w, const struct conn *c)
{
    struct access_log *log = &w->access_log;
    char line[2048], when[40], method[64], path[1400];
    struct timespec ts;
    struct tm tm;
    size_t room;
    int n;

    if (!log->buf[0] || !access_log_enabled())
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    method[json_string(method, sizeof(method) - 1, c->x->log_method, strlen(c->x->log_method))] = '\0';
    path[json_string(path, sizeof(path) - 1, c->x->log_target, strlen(c->x->log_target))] = '\0';
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s.%03ldZ\",\"request_id\":\"%s\",\"client\":\"%s\","
                 "\"listener\":\"%s\",\"route\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                 "\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"upstream\":%s%s%s,"
                 "\"upstream_time\":%.6f,\"total_time\":%.6f}\n",
                 when, ts.tv_nsec / 1000000, c->x->request_id, c->x->peer_ip, c->listener->name,
                 c->x->route ? c->x->route->name : "none", method, path, c->x->status,
                 (unsigned long long)(c->x->bytes_in + c->x->req_body.total), (unsigned long long)c->x->bytes_out,
                 c->x->log_upstream ? "\"" : "", c->x->log_upstream ? c->x->log_upstream : "null",
                 c->x->log_upstream ? "\"" : "", (double)c->x->upstream_us / 1e6,
                 (double)(c->w->now_us - c->x->started_us) / 1e6);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    room = ACCESS_LOG_BUF - log->len[log->active];
    if ((size_t)n > room) {
        log->dropped++;
        return;
    }
    memcpy(log->buf[log->active] + log->len[log->active], line, (size_t)n);
    log->len[log->active] += (size_t)n;
}

static void submit_write(struct worker *w)
{
    struct access_log *log = &w->access_log;
    int busy = !log->active;
    struct io_uring_sqe *sqe = worker_sqe(w);

    io_uring_prep_write(sqe, log_fd, log->buf[busy] + log->written,
                        (unsigned)(log->len[busy] - log->written), (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, op_data(w, OP_LOG_WRITE));
    log->in_flight = true;
}

void access_log_flush(struct worker *w)
{
    struct access_log *log = &w->access_log;

    if (log->in_flight || !log->buf[0] || log->len[log->active] == 0 || !access_log_enabled())
        return;
    log->active = !log->active; /* the filled buffer goes to the ring */
    log->len[log->active] = 0;
    log->written = 0;
    submit_write(w);
}

void access_log_on_write(struct worker *w, int res)
{
    struct access_log *log = &w->access_log;
    int busy = !log->active;

    log->in_flight = false;
    if (res < 0) {
        if (res != -EINTR && res != -EAGAIN) {
            log_warn("access log: write: %s (lines dropped)", strerror(-res));
            return;
        }
        res = 0;
    }
    log->written += (size_t)res;
    if (log->written < log->len[busy])
        submit_write(w);
}
