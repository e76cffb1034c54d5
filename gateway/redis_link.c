/* A worker's Redis connection (see redis_link.h). hiredis does the
 * protocol; its event hooks only record what it wants (read, write), and
 * the loop turns that into io_uring polls. Writes are flushed once per loop
 * turn, so every command a turn produced goes out in one write. */
#include "redis_link.h"

#include <errno.h>
#include <hiredis/async.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timer.h"
#include "worker.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define MAX_CALLS 65536 /* per worker: beyond, calls fail at once */

struct redis_call {
    struct redis_link *link;
    redis_reply_fn *fn; /* NULL: forgotten */
    void *arg;
    char *cmd;
    size_t len;
    uint64_t sent_ms;
    bool retried;                   /* re-sent once after NOSCRIPT */
    struct redis_call *prev, *next; /* outstanding, oldest first; or the free list */
};

/* One connection attempt: hiredis's context and the polls on its socket.
 * Outlives the context until its polls have completed. */
struct redis_sock {
    struct redis_link *link; /* dangling once ac is NULL: the link may be gone */
    struct worker *w;
    redisAsyncContext *ac; /* NULL once hiredis has freed it */
    bool want_read, want_write;
    bool in_armed, out_armed;
    bool connected;
    uint64_t started_ms;
} __attribute__((aligned(16)));

struct redis_link {
    struct worker *w;
    char *address; /* as configured: for the log */
    char *host, *unix_path;
    int port;
    uint64_t connect_timeout;
    uint64_t silence_limit; /* ms without a reply to the oldest call: the server is gone */
    const char *script;
    struct redis_sock *sock; /* NULL while down */
    uint64_t retry_at;
    uint64_t backoff;
    bool was_up; /* for logging changes only */
    struct redis_call *oldest, *newest;
    struct redis_call *free_calls;
    size_t n_calls; /* allocated */
};

/* ---- calls ---- */

static struct redis_call *call_new(struct redis_link *l)
{
    struct redis_call *call = l->free_calls;

    if (call) {
        l->free_calls = call->next;
    } else {
        if (l->n_calls == MAX_CALLS || !(call = malloc(sizeof *call))) return NULL;
        l->n_calls++;
    }
    memset(call, 0, sizeof *call);
    call->link = l;
    return call;
}

static void call_link_newest(struct redis_link *l, struct redis_call *call)
{
    call->prev = l->newest;
    call->next = NULL;
    if (l->newest)
        l->newest->next = call;
    else
        l->oldest = call;
    l->newest = call;
}

static void call_finish(struct redis_call *call, const redisReply *reply)
{
    struct redis_link *l = call->link;

    if (call->prev)
        call->prev->next = call->next;
    else
        l->oldest = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        l->newest = call->prev;
    if (call->fn) call->fn(call->arg, reply);
    redisFreeCommand(call->cmd);
    call->next = l->free_calls;
    l->free_calls = call;
}

static bool is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && !memcmp(r->str, "NOSCRIPT", 8);
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
    const redisReply *r = reply;

    (void)ac;
    (void)privdata;
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("redis: SCRIPT LOAD failed: %.200s", r->str);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct redis_call *call = privdata;

    /* The script cache was flushed (SCRIPT FLUSH, a restart behind a
     * proxy): load it again and re-send, in order, on this connection. */
    if (is_noscript(reply) && !call->retried && call->fn) {
        call->retried = true;
        if (redisAsyncCommand(ac, on_script_loaded, NULL, "SCRIPT LOAD %s", call->link->script) ==
                REDIS_OK &&
            redisAsyncFormattedCommand(ac, on_reply, call, call->cmd, call->len) == REDIS_OK)
            return;
        reply = NULL;
    }
    call_finish(call, reply);
}

struct redis_call *redis_link_send(struct redis_link *l, char *cmd, size_t len, redis_reply_fn *fn,
                                   void *arg)
{
    struct redis_sock *s = l->sock;
    struct redis_call *call;

    if (!s || !s->ac || !s->connected || !(call = call_new(l))) {
        redisFreeCommand(cmd);
        return NULL;
    }
    call->fn = fn;
    call->arg = arg;
    call->cmd = cmd;
    call->len = len;
    call->sent_ms = l->w->now;
    if (redisAsyncFormattedCommand(s->ac, on_reply, call, cmd, len) != REDIS_OK) {
        call->fn = NULL;
        call->next = l->free_calls;
        l->free_calls = call;
        redisFreeCommand(cmd);
        return NULL;
    }
    call_link_newest(l, call);
    return call;
}

void redis_link_forget(struct redis_call *call)
{
    call->fn = NULL;
}

bool redis_link_waiting(const struct redis_link *l)
{
    return l->oldest != NULL;
}

/* ---- hiredis's event hooks ---- */

static void ev_add_read(void *data)
{
    ((struct redis_sock *)data)->want_read = true;
}

static void ev_del_read(void *data)
{
    ((struct redis_sock *)data)->want_read = false;
}

static void ev_add_write(void *data)
{
    ((struct redis_sock *)data)->want_write = true;
}

static void ev_del_write(void *data)
{
    ((struct redis_sock *)data)->want_write = false;
}

static void cancel_poll(struct redis_sock *s, enum op op)
{
    struct io_uring_sqe *sqe = worker_sqe(s->w);

    io_uring_prep_cancel64(sqe, op_data(s, op), 0);
    io_uring_sqe_set_data64(sqe, 0);
}

static void schedule_retry(struct redis_link *l)
{
    l->retry_at = l->w->now + l->backoff;
    l->backoff = l->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff * 2;
}

/* hiredis is freeing the context (error, disconnect or ours): pending
 * calls have had their NULL replies; the socket closes right after. */
static void ev_cleanup(void *data)
{
    struct redis_sock *s = data;
    struct redis_link *l = s->link;

    s->ac = NULL;
    s->want_read = s->want_write = false;
    if (s->in_armed) cancel_poll(s, OP_REDIS_READABLE);
    if (s->out_armed) cancel_poll(s, OP_REDIS_WRITABLE);
    if (l->sock == s) {
        l->sock = NULL;
        schedule_retry(l);
    }
}

/* Frees a socket record once hiredis and the ring are both done with it. */
static void sock_reap(struct redis_sock *s)
{
    if (!s->ac && !s->in_armed && !s->out_armed) {
        s->w->redis_socks--;
        free(s);
    }
}

/* Logged when the server was up before, or on the first attempt: not on
 * every retry while it stays away. */
static void log_unreachable(struct redis_link *l, const char *why)
{
    if (l->was_up || !l->retry_at)
        log_warn("worker %u: redis %s: cannot connect: %s", l->w->id, l->address, why);
    l->was_up = false;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_sock *s = ac->ev.data;
    struct redis_link *l = s->link;

    if (status != REDIS_OK) {
        log_unreachable(l, ac->errstr);
        return; /* hiredis frees the context: ev_cleanup */
    }
    s->connected = true;
    l->backoff = BACKOFF_MIN_MS;
    if (!l->was_up) log_info("worker %u: redis %s: connected", l->w->id, l->address);
    l->was_up = true;
    redisAsyncCommand(s->ac, on_script_loaded, NULL, "SCRIPT LOAD %s", l->script);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_sock *s = ac->ev.data;

    if (status == REDIS_OK || !s->link->was_up) return; /* ours, or logged already */
    log_warn("worker %u: redis %s: connection lost: %s", s->link->w->id, s->link->address,
             ac->errstr);
    s->link->was_up = false;
}

static void connect_now(struct redis_link *l)
{
    struct redis_sock *s = calloc(1, sizeof *s);
    redisAsyncContext *ac;

    if (!s) {
        schedule_retry(l);
        return;
    }
    ac = l->unix_path ? redisAsyncConnectUnix(l->unix_path) : redisAsyncConnect(l->host, l->port);
    if (!ac || ac->err) {
        log_unreachable(l, ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        free(s);
        schedule_retry(l);
        return;
    }
    s->link = l;
    s->w = l->w;
    l->w->redis_socks++;
    s->ac = ac;
    s->started_ms = l->w->now;
    s->want_write = true; /* the connect completes when the socket is writable */
    ac->ev.data = s;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->sock = s;
}

/* ---- the ring ---- */

static void arm_poll(struct redis_link *l, struct redis_sock *s, bool writable)
{
    struct io_uring_sqe *sqe = worker_sqe(l->w);

    io_uring_prep_poll_add(sqe, s->ac->c.fd, writable ? POLLOUT : POLLIN);
    io_uring_sqe_set_data64(sqe, op_data(s, writable ? OP_REDIS_WRITABLE : OP_REDIS_READABLE));
    if (writable)
        s->out_armed = true;
    else
        s->in_armed = true;
}

void redis_link_on_poll(void *owner, bool writable, int res)
{
    struct redis_sock *s = owner;

    if (writable)
        s->out_armed = false;
    else
        s->in_armed = false;
    if (s->ac && res >= 0) {
        if (writable)
            redisAsyncHandleWrite(s->ac);
        else
            redisAsyncHandleRead(s->ac);
    } else if (s->ac && res != -ECANCELED) {
        redisAsyncFree(s->ac);
    }
    sock_reap(s);
}

void redis_link_tick(struct redis_link *l, uint64_t now_ms)
{
    struct redis_sock *s = l->sock;

    if (!s) {
        if (now_ms >= l->retry_at) connect_now(l);
        return;
    }
    if (!s->connected && now_ms - s->started_ms >= l->connect_timeout) {
        redisAsyncFree(s->ac); /* ev_cleanup schedules the retry */
    } else if (l->oldest && now_ms - l->oldest->sent_ms >= l->silence_limit) {
        log_warn("worker %u: redis %s: no reply for %llu ms: reconnecting", l->w->id, l->address,
                 (unsigned long long)(now_ms - l->oldest->sent_ms));
        l->was_up = false;
        redisAsyncFree(s->ac);
    } else if (s->connected && s->want_write && !s->out_armed) {
        redisAsyncHandleWrite(s->ac); /* the turn's commands, in one write */
    }
    if (s->ac && s->want_read && !s->in_armed) arm_poll(l, s, false);
    if (s->ac && s->want_write && !s->out_armed) arm_poll(l, s, true);
    sock_reap(s);
}

/* ---- life ---- */

struct redis_link *redis_link_new(struct worker *w, const struct redis_conf *conf,
                                  const char *script)
{
    struct redis_link *l = calloc(1, sizeof *l);

    if (!l) return NULL;
    l->w = w;
    l->address = strdup(conf->address);
    l->host = conf->host ? strdup(conf->host) : NULL;
    l->unix_path = conf->unix_path ? strdup(conf->unix_path) : NULL;
    if (!l->address || (!l->host && !l->unix_path)) {
        free(l->address);
        free(l->host);
        free(l->unix_path);
        free(l);
        return NULL;
    }
    l->port = conf->port;
    l->connect_timeout = conf->connect_timeout;
    l->silence_limit = conf->timeout * 10 > 1000 ? conf->timeout * 10 : 1000;
    l->script = script;
    l->backoff = BACKOFF_MIN_MS;
    connect_now(l);
    return l;
}

bool redis_link_same_server(const struct redis_link *l, const struct redis_conf *conf)
{
    if (l->unix_path || conf->unix_path)
        return l->unix_path && conf->unix_path && !strcmp(l->unix_path, conf->unix_path);
    return l->port == conf->port && !strcmp(l->host, conf->host);
}

void redis_link_free(struct redis_link *l)
{
    if (!l) return;
    if (l->sock) {
        struct redis_sock *s = l->sock;
        redisAsyncFree(s->ac); /* outstanding calls get their NULL replies */
        sock_reap(s);          /* or when its cancelled polls come back */
    }
    while (l->free_calls) {
        struct redis_call *next = l->free_calls->next;
        free(l->free_calls);
        l->free_calls = next;
    }
    free(l->address);
    free(l->host);
    free(l->unix_path);
    free(l);
}
