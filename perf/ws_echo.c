/* A small WebSocket echo origin for perf/ws_bench.sh: one thread, epoll,
 * non-blocking sockets, no allocation per message. It answers the RFC 6455
 * handshake (any path) with 101, then sends every data frame back
 * unmasked with the same opcode and payload, answers a ping with a pong
 * and a close with a close (then closes). Frames the client did not mask
 * are refused (1002, then close), as a server must.
 *
 *   ws_echo PORT [THREADS (1)]
 *
 * Listens on 127.0.0.1:PORT (SO_REUSEPORT: THREADS threads with a listener
 * each). Prints "READY PORT" once listening.
 *
 *   cc -O2 -Wall -o ws_echo perf/ws_echo.c -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_handshake.h"

#define BUF_SIZE (16 * 1024)
#define MAX_FRAME (BUF_SIZE - 16)

/* SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only. */

struct conn {
    int fd;
    int open;        /* handshake done */
    int closing;     /* close the socket once out is written */
    size_t in_len, out_len, out_off;
    unsigned char in[BUF_SIZE];
    unsigned char out[BUF_SIZE + 256];
};

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        perror("ws_echo: bind/listen");
        exit(1);
    }
    return fd;
}

static void conn_free(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Writes what is queued; returns -1 if the connection is to be freed. */
static int flush_out(int ep, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += n;
    }
    if (c->out_len) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        c->out_len = c->out_off = 0;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return c->closing ? -1 : 0;
}

static int queue(struct conn *c, const void *p, size_t n)
{
    if (c->out_len + n > sizeof c->out)
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static int queue_frame(struct conn *c, int b0, const unsigned char *payload, size_t n)
{
    unsigned char h[10];
    size_t hl;

    h[0] = b0;
    if (n < 126) {
        h[1] = n;
        hl = 2;
    } else if (n < 65536) {
        h[1] = 126, h[2] = n >> 8, h[3] = n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint64_t)n >> (56 - 8 * i);
        hl = 10;
    }
    if (queue(c, h, hl) < 0 || queue(c, payload, n) < 0)
        return -1;
    return 0;
}

static int handshake(struct conn *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *key = NULL, accept_b64[32];
    char keybuf[128], resp[256];
    unsigned char digest[20];
    size_t head;

    if (!end)
        return c->in_len >= sizeof c->in - 1 ? -1 : 0;
    head = (unsigned char *)end + 4 - c->in;
    *end = 0;
    for (char *line = strstr((char *)c->in, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 18;
            while (*key == ' ')
                key++;
            break;
        }
    }
    if (!key) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        queue(c, bad, sizeof bad - 1);
        c->closing = 1;
        return 0;
    }
    size_t kl = strcspn(key, "\r\n ");
    if (kl > 64)
        return -1;
    memcpy(keybuf, key, kl);
    memcpy(keybuf + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    sha1((unsigned char *)keybuf, kl + 36, digest);
    base64(digest, 20, accept_b64);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept_b64);
    queue(c, resp, n);
    memmove(c->in, c->in + head, c->in_len - head);
    c->in_len -= head;
    c->open = 1;
    return 1;
}

/* Echoes every complete frame in c->in; returns -1 on a protocol error. */
static int echo_frames(struct conn *c)
{
    size_t off = 0;

    while (!c->closing && c->in_len - off >= 2) {
        unsigned char *f = c->in + off;
        int op = f[0] & 0x0f, masked = f[1] & 0x80;
        uint64_t n = f[1] & 0x7f;
        size_t hl = 2;

        if (n == 126) {
            if (c->in_len - off < 4)
                break;
            n = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (n == 127) {
            if (c->in_len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | f[2 + i];
            hl = 10;
        }
        if (!masked) {
            static const unsigned char proto_err[] = {0x88, 2, 0x03, 0xea};
            queue(c, proto_err, sizeof proto_err);
            c->closing = 1;
            break;
        }
        if (n > MAX_FRAME)
            return -1;
        if (c->in_len - off < hl + 4 + n)
            break;
        unsigned char *mask = f + hl, *p = f + hl + 4;
        for (uint64_t i = 0; i < n; i++)
            p[i] ^= mask[i & 3];
        if (op == 0x9) /* ping -> pong */
            op = 0xA;
        else if (op == 0xA) { /* unsolicited pong: ignored */
            off += hl + 4 + n;
            continue;
        } else if (op == 0x8)
            c->closing = 1;
        if (queue_frame(c, (f[0] & 0x80) | op, p, n) < 0)
            return -1;
        off += hl + 4 + n;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

static void on_readable(int ep, struct conn *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in) {
            conn_free(ep, c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            conn_free(ep, c);
            return;
        }
        c->in_len += n;
        if (!c->open) {
            int r = handshake(c);
            if (r < 0) {
                conn_free(ep, c);
                return;
            }
            if (r == 0 && !c->closing)
                continue;
        }
        if (c->open && echo_frames(c) < 0) {
            conn_free(ep, c);
            return;
        }
        if ((size_t)n < BUF_SIZE / 2) /* drained the socket: skip the EAGAIN recv */
            break;
    }
    if (flush_out(ep, c) < 0)
        conn_free(ep, c);
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg, ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];

    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd, one = 1;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    nc->open = nc->closing = 0;
                    nc->in_len = nc->out_len = nc->out_off = 0;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(ep, c) < 0) {
                    conn_free(ep, c);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(ep, c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port, threads = argc > 2 ? atoi(argv[2]) : 1;

    if (argc < 2 || (port = atoi(argv[1])) <= 0 || threads < 1) {
        fprintf(stderr, "usage: ws_echo PORT [THREADS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Every listener is bound before READY. */
    int lfd[64];
    pthread_t t;
    if (threads > 64)
        threads = 64;
    for (int i = 0; i < threads; i++)
        lfd[i] = listen_on(port);
    for (int i = 1; i < threads; i++)
        pthread_create(&t, NULL, serve, (void *)(intptr_t)lfd[i]);
    printf("READY %d\n", port);
    fflush(stdout);
    serve((void *)(intptr_t)lfd[0]);
    return 0;
}
