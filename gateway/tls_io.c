/* TLS on a client connection, driven by the ring: ciphertext from a
 * receive is fed to the TLS engine and the plaintext lands in c->in, as
 * without TLS; plaintext to send goes into the engine and its ciphertext
 * leaves in sendmsg calls straight from the engine's output blocks.
 *
 * One send is in the ring at a time. A plaintext message (c->x->om) is done
 * when all of it has been accepted by the engine and all ciphertext sent;
 * handshake flights and the like are sent the same way with no message
 * waiting on them. */
#include <errno.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "tls.h"

#define TLS_IOV_MAX 8
#define LOG_INTERVAL_MS 1000

/* Handshake failures are logged at most once a second per worker: a scan
 * of the port must not flood the log. */
static void log_failure(struct conn *c, const char *what)
{
    if (c->w->now < c->w->tls_log_next)
        return;
    c->w->tls_log_next = c->w->now + LOG_INTERVAL_MS;
    log_warn("listener %s: %s from %s: %s", c->listener->name, what, c->x->peer_ip,
             c->tls ? tls_conn_error(c->tls) : "");
}

bool tls_io_start(struct conn *c)
{
    c->tls = tls_conn_new(c->listener->tls);
    c->w->n_tls_conns += c->tls != NULL;
    return c->tls != NULL;
}

void tls_io_free(struct conn *c)
{
    if (c->tls) {
        tls_conn_free(c->tls);
        c->w->n_tls_conns--;
    }
    c->tls = NULL;
}

bool tls_io_prepare(struct tls_conn *tls, struct outmsg *cipher)
{
    int n = tls_output_iov(tls, cipher->iov, TLS_IOV_MAX);

    if (n <= 0)
        return false;
    memset(&cipher->msg, 0, sizeof(cipher->msg));
    cipher->msg.msg_iov = cipher->iov;
    cipher->msg.msg_iovlen = (size_t)n;
    return true;
}

int tls_io_write_msg(struct tls_conn *tls, struct outmsg *om, uint64_t *accepted)
{
    while (om->left) {
        const struct iovec *v = om->msg.msg_iov;
        ssize_t n = tls_write(tls, v->iov_base, v->iov_len);

        if (n == 0)
            return 0; /* the engine's output is full: send first */
        if (n < 0)
            return -1;
        *accepted += (uint64_t)n;
        outmsg_advance(om, (size_t)n);
    }
    return 0;
}

/* Sends what the engine has ready, unless a send is in the ring already
 * (its completion sends the rest). */
void tls_io_flush(struct conn *c)
{
    struct io_uring_sqe *sqe;

    if (c->send_armed || c->closing || !tls_io_prepare(c->tls, &c->x->om_tls))
        return;
    sqe = worker_sqe(c->w);
    outmsg_prep_send(sqe, c->fd, &c->x->om_tls);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_CLIENT_SEND));
    c->send_armed = true;
    c->pending++;
}

void tls_io_close_notify(struct conn *c)
{
    if (tls_shutdown(c->tls) == 0)
        tls_io_flush(c);
}

/* Moves as much of c->x->om into the engine as it takes. -1 on error. */
static int write_plaintext(struct conn *c)
{
    return tls_io_write_msg(c->tls, &c->x->om, &c->x->bytes_out);
}

void tls_io_send(struct conn *c)
{
    c->x->tls_plain_sending = true;
    if (write_plaintext(c) < 0) {
        log_failure(c, "TLS write failed");
        conn_close(c);
        return;
    }
    tls_io_flush(c);
}

bool tls_io_on_sent(struct conn *c, int res)
{
    tls_consume_output(c->tls, (size_t)res);
    if (c->x->tls_plain_sending && c->x->om.left && write_plaintext(c) < 0) {
        conn_close(c);
        return false;
    }
    tls_io_flush(c);
    if (c->send_armed || !c->x->tls_plain_sending || c->x->om.left)
        return false;
    c->x->tls_plain_sending = false;
    return true;
}

enum tls_io_result tls_io_input(struct conn *c, const char *data, size_t len)
{
    char plain[BUF_BLOCK];
    ssize_t n;

    if (tls_feed(c->tls, data, len) < 0)
        return TLS_IO_ERROR;
    if (!c->tls_ready) {
        enum tls_status st = tls_handshake(c->tls);

        if (st == TLS_PLAINTEXT_HTTP) {
            counter_add(&c->w->metrics->tls_plaintext[c->listener_id], 1);
            log_failure(c, "plain HTTP on a TLS port");
            return TLS_IO_PLAINTEXT;
        }
        if (st == TLS_ERROR || st == TLS_CLOSED) {
            counter_add(&c->w->metrics->tls_failures[c->listener_id], 1);
            log_failure(c, "TLS handshake failed");
            tls_io_flush(c); /* the alert, if any */
            return TLS_IO_ERROR;
        }
        tls_io_flush(c);
        if (st == TLS_WANT_INPUT)
            return TLS_IO_OK;
        c->tls_ready = true;
    }
    while ((n = tls_read(c->tls, plain, sizeof(plain))) > 0) {
        /* A receive is at most one block of ciphertext: the plaintext it
         * yields is bounded, so the limit only stops a runaway. */
        if (!buf_append(&c->in, &c->w->pool, plain, (size_t)n, 8 * BUF_BLOCK +
                                                                c->w->cfg->limits.max_header_bytes))
            return TLS_IO_ERROR;
    }
    tls_io_flush(c); /* tickets, key updates */
    if (n == TLS_CLOSED)
        return TLS_IO_CLOSED;
    return n < 0 ? TLS_IO_ERROR : TLS_IO_OK;
}

void tls_io_write_raw(struct conn *c, const char *p, size_t n)
{
    if (tls_write(c->tls, p, n) == (ssize_t)n)
        tls_io_flush(c);
}
