/* The access log: one JSON line per request. Each worker appends to its own
 * buffer and hands full batches to the ring as asynchronous writes (two
 * buffers: one filling while the other is written), so logging never
 * blocks a worker. When both buffers are busy, lines are dropped and
 * counted rather than stalling traffic. */
#ifndef RINGGATE_ACCESSLOG_H
#define RINGGATE_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCESS_LOG_BUF (64 * 1024)

struct access_log {
    char *buf[2];
    size_t len[2];
    size_t written; /* of the buffer in flight */
    int active;     /* index of the buffer being filled */
    bool in_flight;
    uint64_t dropped;
};

struct conn;
struct worker;

/* Opens the file named by the configuration ("-" is stdout, NULL is off);
 * the descriptor is shared by all workers. Called again on reload: a
 * changed path is opened onto the same descriptor. 0, or -1 with errno
 * (the old file stays in use). */
int access_log_open(const char *path);
/* SIGUSR1: reopens the same path onto the same descriptor (logrotate). */
int access_log_reopen(void);
bool access_log_enabled(void);

void access_log_init(struct access_log *log);
void access_log_destroy(struct access_log *log);
void access_log_request(struct worker *w, const struct conn *c);
/* Once per loop turn: starts writing what has accumulated. */
void access_log_flush(struct worker *w);
void access_log_on_write(struct worker *w, int res);

#endif
