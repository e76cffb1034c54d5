/* Client and upstream connections, and the exchange of one request between
 * them. Shared by conn.c (client side, own answers, static files), proxy.c
 * (forwarding a request and relaying the answer) and upstream.c
 * (connections to origins and their pools). Not a public interface. */
#ifndef RINGGATE_CONN_H
#define RINGGATE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "buf.h"
#include "cache_policy.h"
#include "config.h"
#include "http1.h"
#include "jwt.h"
#include "ratelimit.h"
struct tls_conn;
#include "timer.h"
#include "worker.h"

/* A gather list being sent, possibly over several partial sends. */
struct outmsg {
    struct msghdr msg;
    struct iovec iov[6];
    size_t left; /* bytes not yet sent */
};

void outmsg_reset(struct outmsg *m);
void outmsg_add(struct outmsg *m, const void *p, size_t n);
/* Accounts for n bytes sent; true when everything has gone. */
bool outmsg_advance(struct outmsg *m, size_t n);
/* Prepares the send of what is left of m on fd: one piece as a plain send
 * (the kernel has no msghdr and iovec to copy in), several as sendmsg. */
void outmsg_prep_send(struct io_uring_sqe *sqe, int fd, struct outmsg *m);

/* How a body travels from one side to the other. */
struct body_relay {
    enum http_body in;     /* framing on the receiving side */
    uint64_t remaining;    /* LENGTH: bytes still to come */
    uint64_t total;        /* decoded bytes so far */
    uint64_t wire;         /* bytes consumed, framing included */
    struct chunked_decoder dec;
    bool out_chunked;      /* re-frame as chunks on the sending side */
    bool done;
    char size_line[20];
};

enum conn_state {
    CS_HEAD,    /* reading a request head, or idle between requests */
    CS_PROXY,   /* exchanging with an upstream */
    CS_RESPOND, /* sending an answer of our own or a file */
    CS_LINGER,  /* answer sent, Connection: close: draining input before close */
    CS_TUNNEL,  /* after a 101: bytes relayed both ways (tunnel.c) */
    CS_BODY,    /* collecting a whole request body for a filter (body.c) */
    CS_LIMITS,  /* waiting for the shared (Redis) rate limiter's verdict */
    CS_CACHE,   /* answering from the cache, or waiting on another request's fill */
};

/* Where a request stands with its Redis rate-limit policies. */
enum limits_state {
    LIMITS_UNDECIDED,  /* not asked yet */
    LIMITS_ASKED,      /* the call is out (CS_LIMITS) */
    LIMITS_ANSWERED,   /* Redis's verdict is merged into conn.rl */
    LIMITS_UNANSWERED, /* Redis failed or was late: on_redis_error decides */
};

struct redis_call;

struct upconn;

/* A client connection. Kept small: an idle keep-alive connection is this
 * and nothing else (no buffer, no exchange); what a request needs lives in
 * `struct exchange`, attached when bytes arrive and given back to the
 * worker when the connection goes idle again. */
struct conn {
    struct worker *w;
    struct exchange *x; /* NULL while idle (plain listeners) */
    const struct listener_conf *listener; /* NULL once a tunnel: reloads let go */
    struct conn *prev, *next; /* worker->conns */
    struct timer timer;
    struct buf in;          /* bytes from the client */
    struct tls_conn *tls;   /* NULL on a plain listener */
    size_t head_scanned;    /* bytes of an incomplete head already parsed */
    int fd;
    unsigned listener_id;   /* metrics id, kept for the whole connection */
    int pending;            /* operations in the ring */
    unsigned requests;
    uint8_t peer_addr[16];  /* v4-mapped for IPv4 */
    enum conn_state state;
    bool ip_counted;  /* holds a max_connections_per_ip slot */
    bool closing;
    bool recv_armed;
    bool send_armed;
    bool tls_ready;   /* handshake done */
    bool got_bytes;   /* some of the current request has arrived */
    bool in_exchange; /* a request is being answered: count it when done */
    bool handling;    /* in conn_on_cqe: that operation still counts in pending */
} __attribute__((aligned(16)));

/* Everything a connection needs while it has a request (or a TLS
 * session, or a tunnel): from the worker's free list. */
struct exchange {
    struct exchange *next_free;
    char peer_ip[46];
    struct buf out; /* own answers and response heads */
    struct outmsg om;
    size_t consume_after_send; /* bytes of the relay source to drop once sent */
    struct outmsg om_tls;      /* ciphertext being sent */
    bool tls_plain_sending;    /* c->x->om is going through the engine */
    bool close_when_sent;      /* a TLS alert is on its way: close after it */
    bool write_shut;           /* lingering: SHUT_WR is in the ring */

    /* The current exchange. */
    const struct config *cfg;
    const struct route_conf *route;
    enum http_method method;
    int minor_version;
    bool keep_alive;
    bool client_closes; /* the request itself asked to close (or was HTTP/1.0) */
    bool https;       /* came over TLS: X-Forwarded-Proto */
    bool expect_continue;
    bool upgrade;     /* an Upgrade forwarded: a 101 makes a tunnel */
    const char *upgrade_proto; /* "websocket", or a route's upgrade: entry */
    bool tunnel_ws;            /* the tunnel carries WebSocket frames */
    struct jwt_claims claims;  /* of the verified token, until the next one */
    struct ratelimit_verdict rl; /* RateLimit-* headers for the answer */
    struct redis_call *limits_call; /* LIMITS_ASKED: the call out to Redis */
    uint8_t limits_policies;        /* the Redis policies asked: a bit per route policy */
    uint8_t limits;                 /* enum limits_state */
    uint32_t head_len; /* the request head, parsed again when the verdict arrives */
    size_t head_off;   /* where it starts in `in` (still there: no receive is armed) */
    const char *up_headers;    /* extra header lines for upstream: only while the */
    size_t up_headers_len;     /* head is being routed (they live on its stack) */
    bool tunnel_slot; /* holds one of the listener's max_tunnels */
    char request_id[40];
    uint64_t started;    /* ms, for timeouts */
    uint64_t started_us; /* for metrics and the access log */
    uint64_t up_started_us;
    uint64_t upstream_us;
    uint64_t bytes_in, bytes_out;
    const char *log_upstream; /* endpoint, NULL when none */
    char log_method[16];
    char log_target[256]; /* truncated */
    int status;

    struct body_relay req_body;
    struct upconn *up;
    unsigned attempts;
    struct buf held_head; /* the upstream request head, waiting for the body */
    size_t body_len;      /* decoded bytes of a body being collected */
    uint64_t key_hash;    /* the request's key for balance: hash */
    bool req_sent;     /* the whole request has gone upstream */
    bool resp_head;    /* the response head has been parsed */
    bool resp_started; /* some of the response has gone to the client */
    bool up_reusable;  /* the origin keeps the connection after this response */
    struct body_relay resp_body;

    /* A tunnel (CS_TUNNEL): half-closes, and where the WebSocket frames
     * end in each direction, so a close frame can be slipped in between. */
    bool tun_client_eof, tun_up_eof, tun_up_sending, tun_goodbye;
    /* A provided receive buffer relayed as it is, returned to the ring once
     * sent (plain tunnels: no copy). */
    bool held;
    uint16_t held_bid;
    uint32_t held_len;
    struct ws_tracker {
        uint64_t remaining; /* payload bytes left in the current frame */
        uint8_t hdr[14];
        uint8_t have, need;
    } ws_up, ws_down;

    int file_fd;
    uint64_t file_off, file_end;
    /* A static file being opened: what the answer needs from the request. */
    int64_t file_ims; /* If-Modified-Since, -1 when absent */
    const char *file_type;
    bool file_head_only; /* HEAD: the head, no body */
    char file_range[64]; /* the Range value; a longer one is ignored */

    /* The shared cache (proxy_cache.c). */
    struct cache_exchange *cx;      /* a lookup's state kept past routing, or NULL */
    struct cache_object *cache_obj; /* the object being sent: held until sent */
    uint64_t cache_off, cache_end;  /* its body bytes still to send */
    struct cache_status cache_st;   /* the Cache-Status header (when cache_st_set) */
    bool cache_st_set;
    bool cache_counted; /* in ringgate_cache_requests_total */
} __attribute__((aligned(16)));

struct upstream_state;

struct upconn {
    struct worker *w;
    int fd;
    struct upstream_state *us;
    unsigned ep; /* index into the upstream's endpoints */
    struct conn *client; /* NULL while pooled */
    struct upconn *next; /* pool list */
    int pending;
    bool closing;
    bool connected;
    bool reused;
    bool recv_armed;
    bool recv_direct; /* the armed receive writes into `in` itself */
    bool eof;
    bool connecting; /* counted in the upstream's pending connects */
    bool held;       /* a provided buffer relayed as it is (tunnels) */
    uint16_t held_bid;
    uint32_t held_len;
    bool send_armed;
    bool handling; /* in upstream_on_cqe: that operation still counts in pending */
    struct tls_conn *tls;  /* an upstream over TLS */
    struct outmsg om_tls;  /* ciphertext being sent */
    bool tls_plain_sending; /* up->om is going through the engine */
    uint64_t tls_bytes;    /* plaintext accepted by the engine */
    bool reported;   /* this request's outcome went to the breaker */
    struct buf in;
    struct buf out;
    struct outmsg om;
    struct __kernel_timespec connect_timeout;
} __attribute__((aligned(16)));

/* conn.c */
void conn_accept(struct worker *w, struct listen_socket *ls, int fd);
/* An exchange for c (kept if it has one); false when out of memory. */
bool conn_attach_exchange(struct conn *c);
/* Gives c's exchange back to the worker (idle, or closed). */
void conn_detach_exchange(struct conn *c);
void conn_on_cqe(struct conn *c, enum op op, struct io_uring_cqe *cqe);
void conn_on_timer(struct timer *t);
void conn_close(struct conn *c);
void conn_arm_recv(struct conn *c);
void conn_send(struct conn *c);
void conn_respond_error(struct conn *c, int status, const char *message);
/* Same, with extra header lines (each ending CRLF). */
void conn_respond_error_with(struct conn *c, int status, const char *message,
                             const char *extra_headers);
/* Same, with the error code (NULL: the status's) and extra JSON members. */
void conn_respond_error_json(struct conn *c, int status, const char *code, const char *message,
                             const char *extra_members, const char *extra_headers);
void conn_exchange_done(struct conn *c);
/* The interim 100 Continue, when the client waits for it before its body. */
void conn_send_continue(struct conn *c);
/* Header lines every answer of this exchange carries (RateLimit-*). */
size_t conn_extra_headers(const struct conn *c, char *out, size_t cap);
/* Counts the exchange in the metrics and the access log (once). */
void conn_exchange_account(struct conn *c);
/* Graceful drain: close the connection if it sits idle between requests. */
void conn_close_if_idle(struct conn *c);
/* A detached exchange: a connection with no client (no socket), for a
 * request the gateway makes itself (a background cache refresh) through
 * the proxy path. Its answer is sent nowhere: each send completes on the
 * next loop turn. It is counted and logged like any exchange, under
 * parent's listener and route, and closes itself when done. NULL when out
 * of memory. */
struct conn *conn_new_detached(struct conn *parent, const struct http_request *req);

/* proxy.c */
void proxy_start(struct conn *c, const struct http_request *req);
/* The upstream head for req into out; without framing headers and the
 * final CRLF when hold_framing (the body's length is not known yet). */
bool proxy_build_head(struct conn *c, const struct http_request *req, struct buf *out,
                      bool hold_framing);
/* Forwards a request whose head was built into c->x->held_head and whose
 * body (c->x->req_body) is in c->in. */
void proxy_start_held(struct conn *c);
/* The request's key hashed for balance: hash (0 for other balancers). */
uint64_t proxy_key_hash(const struct conn *c, const struct http_request *req);
void proxy_on_client_data(struct conn *c);
void proxy_on_client_sent(struct conn *c);
void proxy_on_upstream_connected(struct conn *c, int res);
void proxy_on_upstream_sent(struct conn *c, int res);
void proxy_on_upstream_data(struct conn *c, int res);
void proxy_on_timeout(struct conn *c);
void proxy_abort(struct conn *c);
/* Decodes the body bytes at the head of src and queues them (re-framed)
 * on m; the caller drops `consume` bytes of src once they are sent. `eof`:
 * the sender has closed (ends a read-to-close body). *error is set on a
 * malformed chunked body. */
void body_relay_take(struct body_relay *r, struct buf *src, bool eof, struct outmsg *m,
                     size_t *consume, int *error);

/* body.c: whole bodies for the schema filter */
/* A body to validate: true when this request is taken over (collected,
 * validated, then forwarded or answered). */
bool body_collect_start(struct conn *c, const struct http_request *req);
void body_on_client_data(struct conn *c);

/* tls_io.c: TLS on a client connection */
enum tls_io_result { TLS_IO_OK, TLS_IO_CLOSED, TLS_IO_ERROR, TLS_IO_PLAINTEXT };
bool tls_io_start(struct conn *c);
void tls_io_free(struct conn *c);
/* Ciphertext received: handshake, then plaintext appended to c->in. */
enum tls_io_result tls_io_input(struct conn *c, const char *data, size_t len);
/* conn_send for TLS connections: c->x->om through the engine. */
void tls_io_send(struct conn *c);
/* A ciphertext send completed (res > 0); true when c->x->om is all sent. */
bool tls_io_on_sent(struct conn *c, int res);
void tls_io_flush(struct conn *c);
/* The end of the stream: a close_notify into the engine and its send into
 * the ring (c->send_armed), unless the session cannot end cleanly. */
void tls_io_close_notify(struct conn *c);
/* Shared with upstream connections: the engine's pending ciphertext into
 * cipher (false when there is none), and as much of om into the engine as
 * it takes (-1 on error; *accepted counts the bytes). */
bool tls_io_prepare(struct tls_conn *tls, struct outmsg *cipher);
int tls_io_write_msg(struct tls_conn *tls, struct outmsg *om, uint64_t *accepted);
/* Bytes outside any message (an interim 100 Continue). */
void tls_io_write_raw(struct conn *c, const char *p, size_t n);

/* tunnel.c */
/* Reserves a tunnel slot on the listener (false when at max_tunnels); the
 * slot is given back when the tunnel ends, or by tunnel_unreserve. */
bool tunnel_reserve(struct conn *c);
void tunnel_unreserve(struct conn *c);
void tunnel_start(struct conn *c);
void tunnel_on_client_data(struct conn *c, int res);
void tunnel_on_client_sent(struct conn *c);
void tunnel_on_upstream_data(struct conn *c, int res);
void tunnel_on_upstream_sent(struct conn *c, int res);
/* Shutdown: a 1001 close frame to both sides, where both directions are
 * between frames; false when that is not possible now. */
bool tunnel_goodbye(struct conn *c);

/* upstream.c */
void upstreams_init(struct worker *w);
void upstreams_destroy(struct worker *w);
/* A reload: carry over the states of unchanged upstreams, retire the rest. */
int upstreams_switch(struct worker *w, const struct config *next);
enum acquire_error {
    ACQUIRE_FAILED,      /* no socket or memory: 502 */
    ACQUIRE_NO_ENDPOINT, /* every endpoint down or its circuit open: 503 */
    ACQUIRE_LIMIT,       /* max_connections or max_pending reached: 503 */
};

/* A connection for a request to u: a pooled one, or a new one being
 * connected. avoid: an endpoint not to use (the one that just failed), or
 * -1. first_attempt: a new request, which adds to the retry budget. NULL
 * with *why when none can be had. */
struct upconn *upstream_acquire(struct worker *w, const struct upstream_conf *u, int avoid,
                                bool first_attempt, uint64_t key_hash, enum acquire_error *why);
/* The request's outcome, for the endpoint's circuit breaker (once). */
void upstream_report(struct upconn *up, bool success);
/* Takes a token from the upstream's retry budget; false when it is spent. */
bool upstream_retry_allowed(struct upconn *up);
void upstream_release(struct upconn *up, bool reusable);
void upstream_send(struct upconn *up);
void upstream_arm_recv(struct upconn *up);
void upstream_on_cqe(struct upconn *up, enum op op, struct io_uring_cqe *cqe);
const char *upstream_endpoint_name(const struct upconn *up);

#endif
