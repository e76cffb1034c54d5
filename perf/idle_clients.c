/* Idle keep-alive clients, for the memory a proxy spends per idle connection.
 *
 *   idle_clients -p PORT [-n CONNECTIONS (10000)] [-c IN_FLIGHT (100)]
 *                [-u PATH (/small)] [-a SOURCE_ADDRESSES (1)] [-H HOLD_SECONDS (3)]
 *                [-m MIDWAY -P PAUSE_SECONDS (2)] [-t TIMEOUT_SECONDS (120)]
 *
 * Opens CONNECTIONS TCP connections to 127.0.0.1:PORT, at most IN_FLIGHT
 * being opened at once; each sends one "GET PATH HTTP/1.1" (keep-alive),
 * reads the whole answer (Content-Length framing) and then stays open, idle.
 * When all are open it prints "ready N SECONDS" on stdout (flushed) and holds
 * them HOLD_SECONDS, watching for any the server closes; then it prints
 *   "done open=N alive=A closed=C failed=F non200=X secs=S"
 * and exits 0 (1 if a connection failed, was refused an answer, or was closed
 * by the server; 2 on the timeout, before all were open).
 *
 * With -m, it stops once MIDWAY connections are open and idle, prints
 * "mid MIDWAY SECONDS" (flushed) and waits PAUSE_SECONDS before opening the
 * rest: the caller can read the server's memory at both points, and the
 * difference over the second part is the cost of one more idle connection,
 * free of what the first requests set up once.
 *
 * One source address has about 28 000 ephemeral ports (Linux's default
 * ip_local_port_range): -a K spreads the connections over 127.0.0.1 ..
 * 127.0.0.K (IP_BIND_ADDRESS_NO_PORT), so that 100 000 fit without touching
 * the sysctl. The descriptor limit is raised to the hard limit; the caller
 * must make that at least CONNECTIONS + 64 (ulimit -n).
 *
 * Build: cc -O2 -Wall -o idle_clients perf/idle_clients.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum state { CONNECTING, READING, IDLE, DEAD };

struct client {
    int fd;
    enum state st;
    unsigned got;      /* bytes of the answer read so far */
    int head_end;      /* offset just past the blank line, or -1 */
    long body_len;     /* Content-Length, or -1 */
    char head[1024];   /* the answer's head (the body is read and dropped) */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: idle_clients -p PORT [-n N] [-c IN_FLIGHT] [-u PATH] [-a SOURCES]"
                    " [-H HOLD_SECONDS] [-t TIMEOUT_SECONDS]\n");
    exit(2);
}

static int port, sources = 1, in_flight = 100;
static long n_conns = 10000;
static const char *path = "/small";
static char request[512];
static size_t request_len;
static struct client *clients;
static int ep;
static long opened, pending, done, failed, non200, closed;

static void fail(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->st != IDLE)
        pending--;
    c->st = DEAD;
    failed++;
}

static int open_one(long i)
{
    struct client *c = &clients[i];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;

    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->head_end = -1;
    c->body_len = -1;
    c->got = 0;
    if (c->fd < 0) {
        fprintf(stderr, "idle_clients: socket: %s (raise ulimit -n)\n", strerror(errno));
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sources > 1) {
        struct sockaddr_in from = {.sin_family = AF_INET};
        from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % sources));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
            fprintf(stderr, "idle_clients: bind: %s\n", strerror(errno));
            close(c->fd);
            return -1;
        }
    }
    c->st = CONNECTING;
    pending++;
    opened++;
    if (connect(c->fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "idle_clients: connect: %s\n", strerror(errno));
        fail(c);
        return 0;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fprintf(stderr, "idle_clients: epoll_ctl: %s\n", strerror(errno));
        fail(c);
    }
    return 0;
}

/* Reads what is there; true when the whole answer has come. */
static void on_readable(struct client *c)
{
    char buf[65536];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            if (c->st == IDLE) {
                closed++;
                close(c->fd);
                c->fd = -1;
                c->st = DEAD;
            } else {
                fail(c);
            }
            return;
        }
        if (r < 0)
            return;
        if (c->st != READING) /* bytes on an idle connection: not expected */
            continue;
        if (c->head_end < 0) {
            size_t room = sizeof(c->head) - 1 - c->got;
            size_t take = (size_t)r < room ? (size_t)r : room;
            memcpy(c->head + c->got, buf, take);
            c->head[c->got + take] = 0;
            char *e = strstr(c->head, "\r\n\r\n");
            if (!e && take < (size_t)r) {
                fprintf(stderr, "idle_clients: answer head over %zu bytes\n", sizeof(c->head));
                fail(c);
                return;
            }
            if (e) {
                c->head_end = (int)(e + 4 - c->head);
                if (strncmp(c->head, "HTTP/1.1 200", 12) != 0)
                    non200++;
                char *cl = strcasestr(c->head, "\r\ncontent-length:");
                if (!cl) {
                    fprintf(stderr, "idle_clients: an answer without Content-Length\n");
                    fail(c);
                    return;
                }
                c->body_len = strtol(cl + 17, NULL, 10);
            }
        }
        c->got += (unsigned)r;
        if (c->head_end >= 0 && (long)c->got >= c->head_end + c->body_len) {
            c->st = IDLE;
            pending--;
            done++;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)(c - clients)};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
    }
}

static void on_event(struct client *c, uint32_t events)
{
    if (c->st == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fprintf(stderr, "idle_clients: connect: %s\n", strerror(err));
            fail(c);
            return;
        }
        if (!(events & EPOLLOUT) && !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return;
        if (send(c->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
            fail(c);
            return;
        }
        c->st = READING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)(c - clients)};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

static void pump(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++)
        on_event(&clients[evs[i].data.u64], evs[i].events);
}

int main(int argc, char **argv)
{
    double hold = 3, timeout = 120, pause = 2;
    long midway = 0;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:c:u:a:H:t:m:P:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': n_conns = atol(optarg); break;
        case 'c': in_flight = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'a': sources = atoi(optarg); break;
        case 'H': hold = atof(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 'm': midway = atol(optarg); break;
        case 'P': pause = atof(optarg); break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || n_conns <= 0 || in_flight <= 0 || sources < 1 || sources > 250)
        usage();
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < n_conns + 16) {
            fprintf(stderr, "idle_clients: %ld connections need ulimit -n >= %ld (hard limit %ld)\n",
                    n_conns, n_conns + 16, (long)rl.rlim_cur);
            return 2;
        }
    }
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: idle_clients\r\n\r\n",
                                   path, port);
    clients = calloc((size_t)n_conns, sizeof(*clients));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!clients || ep < 0) {
        perror("idle_clients");
        return 2;
    }

    double t0 = now(), deadline = t0 + timeout;
    long next = 0, limit = (midway > 0 && midway < n_conns) ? midway : n_conns;
    while (done + failed < n_conns) {
        if (limit < n_conns && done + failed >= limit) {
            double t_mid = now();
            printf("mid %ld %.2f\n", done - closed, t_mid - t0);
            fflush(stdout);
            while (now() < t_mid + pause)
                pump(50);
            deadline += pause;
            limit = n_conns;
        }
        while (next < limit && pending < in_flight) {
            if (open_one(next++) < 0) {
                printf("error open=%ld of %ld failed=%ld\n", done, n_conns, failed + 1);
                return 1;
            }
        }
        if (now() > deadline) {
            printf("timeout open=%ld of %ld pending=%ld failed=%ld\n", done, n_conns, pending, failed);
            return 2;
        }
        pump(100);
    }
    double t_ready = now();
    printf("ready %ld %.2f\n", done - closed, t_ready - t0);
    fflush(stdout);

    while (now() < t_ready + hold)
        pump(50);
    printf("done open=%ld alive=%ld closed=%ld failed=%ld non200=%ld secs=%.2f\n", done,
           done - closed, closed, failed, non200, t_ready - t0);
    return (failed || closed || non200) ? 1 : 0;
}
