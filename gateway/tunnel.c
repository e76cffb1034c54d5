/* Tunnels: after an origin's 101 (WebSocket), the connection carries bytes
 * both ways until either side closes. Each direction is its own relay:
 * receive into one side's buffer, send it on, receive again once sent, so
 * a slow reader paces the writer. Half-closes pass through.
 *
 * A tunnel holds nothing of the configuration: route and snapshot are let
 * go when it starts, so reloads never touch it. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"

/* Tunnels open per listener (by metrics id), across workers. Taken once
 * per handshake, not per request. */
static atomic_uint open_tunnels[METRICS_MAX_LISTENERS];

bool tunnel_reserve(struct conn *c)
{
    unsigned cap = c->listener->max_tunnels;
    atomic_uint *count = &open_tunnels[c->listener_id];

    if (atomic_fetch_add(count, 1) >= cap && cap) {
        atomic_fetch_sub(count, 1);
        return false;
    }
    c->tunnel_slot = true;
    return true;
}

void tunnel_unreserve(struct conn *c)
{
    if (c->tunnel_slot)
        atomic_fetch_sub(&open_tunnels[c->listener_id], 1);
    c->tunnel_slot = false;
}

static void arm_idle(struct conn *c)
{
    timer_arm(&c->w->timers, &c->timer, c->w->now + c->w->cfg->limits.tunnel_idle_timeout);
}

static void finish_if_both_closed(struct conn *c)
{
    if (c->tun_client_eof && c->tun_up_eof && !c->send_armed && !c->tun_up_sending)
        conn_close(c);
}

/* client -> origin */
static void pump_up(struct conn *c)
{
    struct upconn *up = c->up;

    if (c->tun_up_sending)
        return;
    if (buf_len(&c->in)) {
        outmsg_reset(&up->om);
        outmsg_add(&up->om, buf_head(&c->in), buf_len(&c->in));
        c->tun_up_sending = true;
        upstream_send(up);
    } else if (c->tun_client_eof) {
        shutdown(up->fd, SHUT_WR);
        finish_if_both_closed(c);
    } else {
        conn_arm_recv(c);
    }
}

/* origin -> client */
static void pump_down(struct conn *c)
{
    struct upconn *up = c->up;

    if (c->send_armed)
        return;
    if (buf_len(&up->in)) {
        outmsg_reset(&c->om);
        outmsg_add(&c->om, buf_head(&up->in), buf_len(&up->in));
        c->consume_after_send = buf_len(&up->in);
        conn_send(c);
    } else if (c->tun_up_eof) {
        shutdown(c->fd, SHUT_WR);
        finish_if_both_closed(c);
    } else {
        upstream_arm_recv(up);
    }
}

void tunnel_start(struct conn *c)
{
    struct worker *w = c->w;

    c->state = CS_TUNNEL;
    metrics_tunnel_opened(w->metrics, c->listener_id);
    conn_exchange_account(c);
    /* Let go of the snapshot: from here on only the two sockets matter. */
    c->cfg = NULL;
    c->route = NULL;
    c->listener = NULL;
    c->keep_alive = false;
    arm_idle(c);
    buf_free(&c->up->out, &w->pool); /* the request head, kept for retries */
    /* The 101 head goes first, with whatever the origin sent after it. */
    outmsg_reset(&c->om);
    outmsg_add(&c->om, buf_head(&c->out), buf_len(&c->out));
    outmsg_add(&c->om, buf_head(&c->up->in), buf_len(&c->up->in));
    c->consume_after_send = buf_len(&c->up->in);
    conn_send(c);
    pump_up(c); /* bytes the client sent after its handshake, if any */
}

void tunnel_on_client_data(struct conn *c, int res)
{
    if (res < 0) {
        conn_close(c);
        return;
    }
    if (res == 0)
        c->tun_client_eof = true;
    arm_idle(c);
    pump_up(c);
}

void tunnel_on_upstream_sent(struct conn *c, int res)
{
    c->tun_up_sending = false;
    if (res < 0) {
        conn_close(c);
        return;
    }
    counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_UP], buf_len(&c->in));
    buf_consume(&c->in, buf_len(&c->in));
    buf_release(&c->in, &c->w->pool); /* an idle tunnel holds no buffer */
    pump_up(c);
}

void tunnel_on_upstream_data(struct conn *c, int res)
{
    if (res < 0 && res != -ECONNRESET) {
        conn_close(c);
        return;
    }
    if (res <= 0)
        c->tun_up_eof = true;
    arm_idle(c);
    pump_down(c);
}

void tunnel_on_client_sent(struct conn *c)
{
    buf_free(&c->out, &c->w->pool);
    counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_DOWN], c->consume_after_send);
    buf_consume(&c->up->in, c->consume_after_send);
    buf_release(&c->up->in, &c->w->pool);
    c->consume_after_send = 0;
    pump_down(c);
}
