/* Tunnels: after an origin's 101 (WebSocket), the connection carries bytes
 * both ways until either side closes. Each direction is its own relay:
 * receive into one side's buffer, send it on, receive again once sent, so
 * a slow reader paces the writer. Half-closes pass through.
 *
 * A tunnel holds nothing of the configuration: route and snapshot are let
 * go when it starts, so reloads never touch it. */
#include <errno.h>
#include <string.h>
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
    c->x->tunnel_slot = true;
    return true;
}

void tunnel_unreserve(struct conn *c)
{
    if (c->x->tunnel_slot)
        atomic_fetch_sub(&open_tunnels[c->listener_id], 1);
    c->x->tunnel_slot = false;
}

/* Follows RFC 6455 framing in a byte stream: header (2 to 14 bytes, the
 * length encoded in 7, 16 or 64 bits, a mask key when masked), then the
 * payload. Only boundaries matter here; frames are never altered. */
static void ws_track(struct ws_tracker *t, const uint8_t *p, size_t n)
{
    while (n) {
        if (t->remaining) {
            size_t k = n < t->remaining ? n : (size_t)t->remaining;
            t->remaining -= k;
            p += k;
            n -= k;
            continue;
        }
        t->hdr[t->have++] = *p++;
        n--;
        if (t->have == 2) {
            uint8_t len7 = t->hdr[1] & 0x7f;
            t->need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) +
                                (t->hdr[1] & 0x80 ? 4 : 0));
        }
        if (t->have >= 2 && t->have == t->need) {
            uint8_t len7 = t->hdr[1] & 0x7f;
            uint64_t len = len7;
            if (len7 >= 126) {
                int bytes = len7 == 126 ? 2 : 8;
                len = 0;
                for (int i = 0; i < bytes; i++)
                    len = len << 8 | t->hdr[2 + i];
            }
            t->remaining = len;
            t->have = t->need = 0;
        }
    }
}

static bool ws_between_frames(const struct ws_tracker *t)
{
    return t->remaining == 0 && t->have == 0;
}

static void drop_held(struct worker *w, bool *held, uint16_t bid)
{
    if (*held)
        worker_recycle_buffer(w, bid);
    *held = false;
}

static void arm_idle(struct conn *c)
{
    timer_arm(&c->w->timers, &c->timer, c->w->now + c->w->cfg->limits.tunnel_idle_timeout);
}

static void finish_if_both_closed(struct conn *c)
{
    if (c->x->tun_client_eof && c->x->tun_up_eof && !c->send_armed && !c->x->tun_up_sending)
        conn_close(c);
}

/* client -> origin */
static void pump_up(struct conn *c)
{
    struct upconn *up = c->x->up;

    if (c->x->tun_up_sending)
        return;
    if (c->x->tun_goodbye) { /* closing: nothing more is relayed */
        buf_consume(&c->in, buf_len(&c->in));
        drop_held(c->w, &c->x->held, c->x->held_bid);
        return;
    }
    if (c->x->held) { /* straight from the receive buffer */
        const char *data = worker_buffer(c->w, c->x->held_bid);
        outmsg_reset(&up->om);
        outmsg_add(&up->om, data, c->x->held_len);
        ws_track(&c->x->ws_up, (const uint8_t *)data, c->x->held_len);
        c->x->tun_up_sending = true;
        upstream_send(up);
    } else if (buf_len(&c->in)) {
        outmsg_reset(&up->om);
        outmsg_add(&up->om, buf_head(&c->in), buf_len(&c->in));
        ws_track(&c->x->ws_up, (const uint8_t *)buf_head(&c->in), buf_len(&c->in));
        c->x->tun_up_sending = true;
        upstream_send(up);
    } else if (c->x->tun_client_eof) {
        shutdown(up->fd, SHUT_WR);
        finish_if_both_closed(c);
    } else {
        conn_arm_recv(c);
    }
}

/* origin -> client */
static void pump_down(struct conn *c)
{
    struct upconn *up = c->x->up;

    if (c->send_armed)
        return;
    if (c->x->tun_goodbye) {
        buf_consume(&up->in, buf_len(&up->in));
        drop_held(c->w, &up->held, up->held_bid);
        return;
    }
    if (up->held) { /* straight from the receive buffer */
        const char *data = worker_buffer(c->w, up->held_bid);
        outmsg_reset(&c->x->om);
        outmsg_add(&c->x->om, data, up->held_len);
        ws_track(&c->x->ws_down, (const uint8_t *)data, up->held_len);
        c->x->consume_after_send = 0;
        conn_send(c);
    } else if (buf_len(&up->in)) {
        outmsg_reset(&c->x->om);
        outmsg_add(&c->x->om, buf_head(&up->in), buf_len(&up->in));
        ws_track(&c->x->ws_down, (const uint8_t *)buf_head(&up->in), buf_len(&up->in));
        c->x->consume_after_send = buf_len(&up->in);
        conn_send(c);
    } else if (c->x->tun_up_eof) {
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
    /* Let go of the snapshot: from here on only the two sockets matter
     * (upgrade_proto points into it too). */
    c->x->tunnel_ws = strcmp(c->x->upgrade_proto, "websocket") == 0;
    c->x->upgrade_proto = NULL;
    c->x->cfg = NULL;
    c->x->route = NULL;
    c->listener = NULL;
    c->x->keep_alive = false;
    arm_idle(c);
    buf_free(&c->x->up->out, &w->pool); /* the request head, kept for retries */
    /* The 101 head goes first, with whatever the origin sent after it. */
    outmsg_reset(&c->x->om);
    outmsg_add(&c->x->om, buf_head(&c->x->out), buf_len(&c->x->out));
    outmsg_add(&c->x->om, buf_head(&c->x->up->in), buf_len(&c->x->up->in));
    ws_track(&c->x->ws_down, (const uint8_t *)buf_head(&c->x->up->in), buf_len(&c->x->up->in));
    c->x->consume_after_send = buf_len(&c->x->up->in);
    conn_send(c);
    pump_up(c); /* bytes the client sent after its handshake, if any */
}

bool tunnel_goodbye(struct conn *c)
{
    /* 1001 "going away": to the client as a server sends it, to the origin
     * masked, as a client must (RFC 6455 5.3; the mask is not secret). */
    static const uint8_t to_client[] = {0x88, 0x02, 0x03, 0xe9};
    static const uint8_t to_origin[] = {0x88, 0x82, 0x12, 0x34, 0x56, 0x78, 0x03 ^ 0x12, 0xe9 ^ 0x34};

    if (!c->x->tunnel_ws)
        return false; /* no close frame in another protocol: just closed */
    if (c->x->tun_goodbye || c->send_armed || c->x->tun_up_sending || !c->x->up ||
        !ws_between_frames(&c->x->ws_up) || !ws_between_frames(&c->x->ws_down))
        return false;
    c->x->tun_goodbye = true;
    outmsg_reset(&c->x->om);
    outmsg_add(&c->x->om, to_client, sizeof(to_client));
    c->x->consume_after_send = 0;
    conn_send(c);
    if (!c->x->tun_up_eof) {
        outmsg_reset(&c->x->up->om);
        outmsg_add(&c->x->up->om, to_origin, sizeof(to_origin));
        c->x->tun_up_sending = true;
        buf_consume(&c->in, buf_len(&c->in)); /* nothing more goes after the close */
        upstream_send(c->x->up);
    }
    return true;
}

void tunnel_on_client_data(struct conn *c, int res)
{
    if (res < 0) {
        conn_close(c);
        return;
    }
    if (res == 0)
        c->x->tun_client_eof = true;
    arm_idle(c);
    pump_up(c);
}

void tunnel_on_upstream_sent(struct conn *c, int res)
{
    c->x->tun_up_sending = false;
    if (res < 0) {
        conn_close(c);
        return;
    }
    if (c->x->held) {
        counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_UP], c->x->held_len);
        drop_held(c->w, &c->x->held, c->x->held_bid);
    } else {
        counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_UP], buf_len(&c->in));
        buf_consume(&c->in, buf_len(&c->in));
        buf_release(&c->in, &c->w->pool); /* an idle tunnel holds no buffer */
    }
    pump_up(c);
}

void tunnel_on_upstream_data(struct conn *c, int res)
{
    if (res < 0 && res != -ECONNRESET) {
        conn_close(c);
        return;
    }
    if (res <= 0)
        c->x->tun_up_eof = true;
    arm_idle(c);
    pump_down(c);
}

void tunnel_on_client_sent(struct conn *c)
{
    buf_free(&c->x->out, &c->w->pool);
    if (c->x->up->held && !c->x->consume_after_send && !c->x->tun_goodbye) {
        counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_DOWN], c->x->up->held_len);
        drop_held(c->w, &c->x->up->held, c->x->up->held_bid);
    }
    counter_add(&c->w->metrics->tunnel_bytes[TUNNEL_DOWN], c->x->consume_after_send);
    buf_consume(&c->x->up->in, c->x->consume_after_send);
    buf_release(&c->x->up->in, &c->w->pool);
    c->x->consume_after_send = 0;
    pump_down(c);
}
