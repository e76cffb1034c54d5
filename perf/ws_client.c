/* WebSocket load client for perf/ws_bench.sh: one thread, epoll.
 *
 * Opens N tunnels (RFC 6455 handshake, Sec-WebSocket-Accept checked), at
 * most C handshakes in flight at once. Once every tunnel is open, each one
 * sends a masked text frame of S bytes, waits for its echo (checked byte
 * for byte: the payload names the tunnel and the message number), sends
 * the next, and so on: N messages in flight at all times. After W seconds
 * of warm-up it measures for D seconds: messages echoed, their round-trip
 * times (send to complete echo), and the CPU time (utime+stime from
 * /proc/PID/stat) of the processes given with -P and -O over exactly that
 * window, and its own (getrusage). Then every tunnel is closed with a
 * close frame (1000), whose echo and the end of the stream are awaited.
 *
 *   ws_client -p PORT [-a ADDR (127.0.0.1)] [-u PATH (/ws/echo)]
 *             [-n TUNNELS (1000)] [-s BYTES (32)] [-d SECONDS (10)]
 *             [-w SECONDS (2)] [-c HANDSHAKES IN FLIGHT (100)]
 *             [-P PROXY_PID] [-O ORIGIN_PID]
 *
 * Prints one line of key=value pairs on stdout; problems go to stderr.
 * Exits 1 if not every tunnel opened, or if any failed during the run.
 *
 *   cc -O2 -Wall -o ws_client perf/ws_client.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ws_handshake.h"

#define IN_SIZE 4096
#define MAX_PAYLOAD 1024

/* SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only. */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

enum state { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE, ST_FAILED };

struct conn {
    int fd;
    enum state st;
    unsigned id;
    uint32_t seq;         /* number of the message in flight */
    int waiting;          /* a message is in flight */
    int got_close;        /* the close frame came back */
    uint64_t sent_at;
    uint64_t window_msgs; /* echoes completed in the measured window */
    char accept[32];      /* expected Sec-WebSocket-Accept */
    size_t in_len, out_len, out_off;
    unsigned char in[IN_SIZE];
    unsigned char out[MAX_PAYLOAD + 512];
};

static struct conn *conns;
static int ep, tunnels = 1000, size = 32, inflight_max = 100;
static double duration = 10, warmup = 2;
static const char *addr = "127.0.0.1", *path = "/ws/echo";
static int port;
static struct sockaddr_in sa;

static int running;   /* sending new messages */
static int measuring; /* echoes count */
static uint64_t window_msgs, all_msgs;
static uint64_t *samples;
static size_t nsamples, capsamples;
static unsigned n_open, n_failed, n_handshaking, n_closed_clean, n_eof;
static unsigned err_connect, err_handshake, err_mismatch, err_closed, err_proto;

static void fail(struct conn *c, unsigned *counter, const char *why)
{
    static unsigned reported;
    if (reported++ < 5)
        fprintf(stderr, "ws_client: tunnel %u: %s\n", c->id, why);
    (*counter)++;
    if (c->st == ST_HANDSHAKE || c->st == ST_CONNECTING)
        n_handshaking--;
    if (c->st == ST_OPEN || c->st == ST_CLOSING)
        n_open--;
    c->st = ST_FAILED;
    n_failed++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void payload_of(unsigned id, uint32_t seq, unsigned char *p)
{
    char head[32];
    int hl = snprintf(head, sizeof head, "%u:%u:", id, seq);
    for (int i = 0; i < size; i++)
        p[i] = 'a' + (id + seq + i) % 26;
    memcpy(p, head, hl < size ? hl : size);
}

static void set_events(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                set_events(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            return -1;
        }
        c->out_off += n;
    }
    return 0;
}

/* Queues one masked frame and writes it. */
static int send_frame(struct conn *c, int b0, const unsigned char *payload, size_t n)
{
    unsigned char *o;
    uint32_t m = rnd();
    unsigned char mask[4] = {m, m >> 8, m >> 16, m >> 24};

    if (c->out_off == c->out_len)
        c->out_len = c->out_off = 0;
    o = c->out + c->out_len;
    *o++ = b0;
    if (n < 126)
        *o++ = 0x80 | n;
    else {
        *o++ = 0x80 | 126;
        *o++ = n >> 8;
        *o++ = n;
    }
    memcpy(o, mask, 4);
    o += 4;
    for (size_t i = 0; i < n; i++)
        o[i] = payload[i] ^ mask[i & 3];
    o += n;
    c->out_len = o - c->out;
    return flush_out(c);
}

static void send_message(struct conn *c)
{
    unsigned char p[MAX_PAYLOAD];

    payload_of(c->id, c->seq, p);
    c->sent_at = now_ns();
    c->waiting = 1;
    if (send_frame(c, 0x81, p, size) < 0)
        fail(c, &err_closed, "send failed");
}

static void send_close(struct conn *c)
{
    static const unsigned char code[2] = {0x03, 0xe8}; /* 1000 */
    c->st = ST_CLOSING;
    if (send_frame(c, 0x88, code, 2) < 0)
        fail(c, &err_closed, "send of close failed");
}

static void start_connect(struct conn *c)
{
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("ws_client: socket");
        exit(1);
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->st = ST_CONNECTING;
    n_handshaking++;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        fail(c, &err_connect, strerror(errno));
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t l = sizeof err;
    unsigned char raw[16], digest[20];
    char key[32], buf[512];

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
        fail(c, &err_connect, strerror(err));
        return;
    }
    for (int i = 0; i < 16; i++)
        raw[i] = rnd();
    base64(raw, 16, key);
    int kl = snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    sha1((unsigned char *)buf, kl, digest);
    base64(digest, 20, c->accept);
    int n = snprintf((char *)c->out, sizeof c->out,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, addr, port, key);
    c->out_len = n;
    c->out_off = 0;
    c->st = ST_HANDSHAKE;
    set_events(c, EPOLLIN);
    if (flush_out(c) < 0)
        fail(c, &err_connect, "handshake send failed");
}

static void on_handshake_data(struct conn *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *h;
    size_t head;

    if (!end) {
        if (c->in_len == IN_SIZE)
            fail(c, &err_handshake, "handshake answer too long");
        return;
    }
    head = (unsigned char *)end + 4 - c->in;
    *end = 0;
    if (strncmp((char *)c->in, "HTTP/1.1 101", 12) != 0) {
        char why[128];
        snprintf(why, sizeof why, "handshake answered: %.*s", (int)strcspn((char *)c->in, "\r\n"),
                 (char *)c->in);
        fail(c, &err_handshake, why);
        return;
    }
    for (h = strstr((char *)c->in, "\r\n"); h; h = strstr(h, "\r\n")) {
        h += 2;
        if (strncasecmp(h, "Sec-WebSocket-Accept:", 21) == 0)
            break;
    }
    if (!h) {
        fail(c, &err_handshake, "no Sec-WebSocket-Accept");
        return;
    }
    h += 21;
    while (*h == ' ')
        h++;
    if (strncmp(h, c->accept, strlen(c->accept)) != 0) {
        fail(c, &err_handshake, "wrong Sec-WebSocket-Accept");
        return;
    }
    memmove(c->in, c->in + head, c->in_len - head);
    c->in_len -= head;
    if (c->in_len) {
        fail(c, &err_proto, "bytes after the 101 before any message");
        return;
    }
    c->st = ST_OPEN;
    n_handshaking--;
    n_open++;
}

static void record(uint64_t rtt)
{
    if (nsamples == capsamples) {
        capsamples = capsamples ? capsamples * 2 : 1 << 20;
        samples = realloc(samples, capsamples * sizeof *samples);
        if (!samples) {
            perror("ws_client: realloc");
            exit(1);
        }
    }
    samples[nsamples++] = rtt;
}

/* Server frames: unmasked. Returns -1 when c failed. */
static int on_frames(struct conn *c, uint64_t t)
{
    size_t off = 0;
    unsigned char expect[MAX_PAYLOAD];

    while (c->in_len - off >= 2) {
        unsigned char *f = c->in + off;
        size_t n = f[1] & 0x7f, hl = 2;
        if (f[1] & 0x80) {
            fail(c, &err_proto, "masked frame from the server");
            return -1;
        }
        if (n == 126) {
            if (c->in_len - off < 4)
                break;
            n = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (n == 127) {
            fail(c, &err_proto, "unexpected 64-bit frame length");
            return -1;
        }
        if (c->in_len - off < hl + n)
            break;
        int op = f[0] & 0x0f;
        if (op == 0x8) {
            if (c->st != ST_CLOSING) {
                fail(c, &err_closed, "close frame from the server during the run");
                return -1;
            }
            c->got_close = 1;
        } else if (op == 0x1 && (f[0] & 0x80) && c->waiting && n == (size_t)size) {
            payload_of(c->id, c->seq, expect);
            if (memcmp(expect, f + hl, n) != 0) {
                fail(c, &err_mismatch, "echo differs from the message sent");
                return -1;
            }
            c->waiting = 0;
            c->seq++;
            all_msgs++;
            if (measuring) {
                window_msgs++;
                c->window_msgs++;
                record(t - c->sent_at);
            }
        } else {
            char why[96];
            snprintf(why, sizeof why, "unexpected frame (opcode %d, %zu bytes, %s)", op, n,
                     c->waiting ? "message in flight" : "no message in flight");
            fail(c, &err_proto, why);
            return -1;
        }
        off += hl + n;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

static void on_event(struct conn *c, uint32_t events, uint64_t t)
{
    if (c->st == ST_CONNECTING) {
        on_connected(c);
        return;
    }
    if (events & EPOLLOUT) {
        if (flush_out(c) < 0) {
            fail(c, &err_closed, "send failed");
            return;
        }
        if (c->out_off == c->out_len)
            set_events(c, EPOLLIN);
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            fail(c, &err_closed, strerror(errno));
            return;
        }
        if (n == 0) {
            if (c->st == ST_CLOSING && c->got_close) {
                n_eof++;
                n_closed_clean++;
                n_open--;
                c->st = ST_DONE;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            } else
                fail(c, &err_closed, c->st == ST_HANDSHAKE ? "closed during the handshake"
                                                           : "connection closed during the run");
            return;
        }
        c->in_len += n;
        if (c->st == ST_HANDSHAKE) {
            on_handshake_data(c);
            return;
        }
        if (on_frames(c, t) < 0)
            return;
        if (c->st == ST_OPEN && running && !c->waiting)
            send_message(c);
        if (c->in_len == IN_SIZE) {
            fail(c, &err_proto, "input buffer full");
            return;
        }
        if ((size_t)n < IN_SIZE / 2)
            return;
    }
}

static long proc_rss_kb(int pid)
{
    char p[64], line[256];
    FILE *f;
    long kb = -1;

    if (pid <= 0)
        return 0;
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    if (!(f = fopen(p, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long long proc_ticks(int pid)
{
    char p[64], buf[1024];
    FILE *f;
    long long ut = -1, st = -1;

    if (pid <= 0)
        return 0;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    if (!(f = fopen(p, "r")))
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')'); /* the name may hold spaces */
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!nsamples)
        return 0;
    size_t i = (size_t)(p / 100.0 * (nsamples - 1) + 0.5);
    return samples[i] / 1000.0;
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events, t);
}

int main(int argc, char **argv)
{
    int opt, proxy_pid = 0, origin_pid = 0;

    while ((opt = getopt(argc, argv, "a:p:u:n:s:d:w:c:P:O:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'n': tunnels = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'c': inflight_max = atoi(optarg); break;
        case 'P': proxy_pid = atoi(optarg); break;
        case 'O': origin_pid = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: ws_client -p PORT [-a ADDR] [-u PATH] [-n TUNNELS] [-s BYTES] "
                            "[-d SECONDS] [-w SECONDS] [-c HANDSHAKES] [-P PID] [-O PID]\n");
            return 2;
        }
    }
    if (port <= 0 || tunnels < 1 || size < 1 || size > MAX_PAYLOAD || inflight_max < 1 ||
        duration <= 0) {
        fprintf(stderr, "ws_client: bad arguments (-p PORT needed; 1 <= -s <= %d)\n", MAX_PAYLOAD);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rng_state ^= now_ns() ^ ((uint64_t)getpid() << 32);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "ws_client: %s is not an IPv4 address\n", addr);
        return 2;
    }
    conns = calloc(tunnels, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < tunnels; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
    }

    /* 1. Open every tunnel, at most inflight_max handshakes at once. */
    uint64_t t0 = now_ns(), deadline = t0 + 30000000000ull;
    int next = 0;
    while (n_open + n_failed < (unsigned)tunnels && now_ns() < deadline) {
        while (next < tunnels && n_handshaking < (unsigned)inflight_max)
            start_connect(&conns[next++]);
        poll_once(10);
    }
    double handshake_s = (now_ns() - t0) / 1e9;
    if (n_open < (unsigned)tunnels) {
        fprintf(stderr,
                "ws_client: %u of %d tunnels open after %.1f s (connect errors %u, "
                "handshake errors %u, other %u)\n",
                n_open, tunnels, handshake_s, err_connect, err_handshake,
                err_closed + err_proto + err_mismatch);
        return 1;
    }

    /* 2. Every tunnel sends; warm up, then measure. */
    running = 1;
    for (int i = 0; i < tunnels; i++)
        if (conns[i].st == ST_OPEN)
            send_message(&conns[i]);
    uint64_t start = now_ns(), w_end = start + (uint64_t)(warmup * 1e9),
             m_end = w_end + (uint64_t)(duration * 1e9), t;
    while ((t = now_ns()) < w_end)
        poll_once((int)((w_end - t) / 1000000) + 1);
    long long p0 = proc_ticks(proxy_pid), o0 = proc_ticks(origin_pid);
    double c0 = self_cpu();
    uint64_t ms0 = now_ns();
    measuring = 1;
    while ((t = now_ns()) < m_end)
        poll_once((int)((m_end - t) / 1000000) + 1);
    measuring = 0;
    uint64_t ms1 = now_ns();
    long long p1 = proc_ticks(proxy_pid), o1 = proc_ticks(origin_pid);
    double c1 = self_cpu();
    long proxy_rss = proc_rss_kb(proxy_pid);
    running = 0;
    unsigned failed_in_run = n_failed;

    /* 3. Wait for the messages in flight, then close every tunnel. */
    uint64_t end_by = now_ns() + 5000000000ull;
    for (;;) {
        unsigned busy = 0;
        for (int i = 0; i < tunnels; i++)
            busy += conns[i].st == ST_OPEN && conns[i].waiting;
        if (!busy || now_ns() > end_by)
            break;
        poll_once(10);
    }
    for (int i = 0; i < tunnels; i++)
        if (conns[i].st == ST_OPEN && !conns[i].waiting)
            send_close(&conns[i]);
    end_by = now_ns() + 5000000000ull;
    while (n_open && now_ns() < end_by)
        poll_once(10);
    unsigned not_closed = n_open;
    unsigned closes_sent = 0;
    for (int i = 0; i < tunnels; i++)
        closes_sent += conns[i].st == ST_DONE || conns[i].st == ST_CLOSING;

    double secs = (ms1 - ms0) / 1e9;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t tmin = UINT64_MAX, tmax = 0;
    for (int i = 0; i < tunnels; i++) {
        if (conns[i].window_msgs < tmin)
            tmin = conns[i].window_msgs;
        if (conns[i].window_msgs > tmax)
            tmax = conns[i].window_msgs;
    }
    qsort(samples, nsamples, sizeof *samples, cmp_u64);
    double msgs = window_msgs ? (double)window_msgs : 1;
    printf("tunnels=%d size=%d msgs=%llu secs=%.3f rate=%.0f p50_us=%.1f p90_us=%.1f "
           "p99_us=%.1f p999_us=%.1f max_us=%.1f proxy_ticks=%lld origin_ticks=%lld hz=%ld "
           "proxy_cpu_us=%.2f origin_cpu_us=%.2f client_cpu_us=%.2f proxy_pct=%.0f "
           "origin_pct=%.0f client_pct=%.0f per_tunnel_min=%llu per_tunnel_max=%llu "
           "handshake_s=%.2f errors=%u mismatches=%u closed_clean=%u not_closed=%u "
           "all_msgs=%llu closes_sent=%u proxy_rss_kb=%ld\n",
           tunnels, size, (unsigned long long)window_msgs, secs, window_msgs / secs, pct(50),
           pct(90), pct(99), pct(99.9), nsamples ? samples[nsamples - 1] / 1000.0 : 0, p1 - p0,
           o1 - o0, hz, (double)(p1 - p0) / hz * 1e6 / msgs, (double)(o1 - o0) / hz * 1e6 / msgs,
           (c1 - c0) * 1e6 / msgs, (double)(p1 - p0) / hz / secs * 100,
           (double)(o1 - o0) / hz / secs * 100, (c1 - c0) / secs * 100,
           (unsigned long long)tmin, (unsigned long long)tmax, handshake_s, failed_in_run,
           err_mismatch, n_closed_clean, not_closed, (unsigned long long)all_msgs, closes_sent,
           proxy_rss);
    if (failed_in_run || err_mismatch) {
        fprintf(stderr, "ws_client: %u tunnels failed during the run (%u mismatched echoes)\n",
                failed_in_run, err_mismatch);
        return 1;
    }
    if (not_closed || n_closed_clean != (unsigned)tunnels)
        fprintf(stderr, "ws_client: %u of %d tunnels closed cleanly (close echoed, then EOF)\n",
                n_closed_clean, tunnels);
    return 0;
}
