/* A worker's connection to Redis: hiredis's asynchronous client driven by
 * the worker's ring (the socket is polled through io_uring, never waited
 * on), commands pipelined and written once per loop turn, replies in
 * order. A dead or silent server is dropped and reconnected with back-off;
 * meanwhile calls fail at once, so a caller never waits on a server that
 * is not there. Owned by one worker thread. */
#ifndef RINGGATE_REDIS_LINK_H
#define RINGGATE_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct worker;
struct redis_link;
struct redis_call;

/* A reply, or NULL when the call failed (connection lost, link freed).
 * Called from inside hiredis, never from inside redis_link_send(): it must
 * not send on or free the link. */
typedef void redis_reply_fn(void *arg, const redisReply *reply);

/* A link to conf's server that loads `script` (SCRIPT LOAD) on every new
 * connection and again after a NOSCRIPT error, then retries the call.
 * Connects at once; NULL when out of memory. */
struct redis_link *redis_link_new(struct worker *w, const struct redis_conf *conf,
                                  const char *script);
void redis_link_free(struct redis_link *l);

/* True when conf names the server l talks to (then a reload keeps l). */
bool redis_link_same_server(const struct redis_link *l, const struct redis_conf *conf);

/* Queues a formatted command (the link owns cmd from now on: freed with
 * redisFreeCommand()) and returns its call, or NULL when the link is not
 * connected or too many calls are out (cmd freed then too). */
struct redis_call *redis_link_send(struct redis_link *l, char *cmd, size_t len, redis_reply_fn *fn,
                                   void *arg);

/* The caller no longer wants the answer: fn will not be called. */
void redis_link_forget(struct redis_call *call);

/* A poll completion (OP_REDIS_READABLE / OP_REDIS_WRITABLE). */
void redis_link_on_poll(void *owner, bool writable, int res);

/* Once per loop turn: writes what was queued, drops a server that stopped
 * answering, reconnects when the back-off is over. */
void redis_link_tick(struct redis_link *l, uint64_t now_ms);

/* Calls are out: the loop should come back within a timer tick. */
bool redis_link_waiting(const struct redis_link *l);

#endif
