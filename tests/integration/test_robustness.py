"""Robustness against misbehaving peers (issue #10), each bounded in time:
clients that never read, that reset mid-body, that half-close; upstreams
that send endless or dripping headers, garbage, or more than was asked;
100 000 tiny pipelined requests on one connection.

Already covered elsewhere, so not repeated here: short text garbage and a
hang-up from the origin (test_errors), slowloris heads and bodies
(test_errors), connection storms (test_overload), smuggling shapes from
clients (test_smuggling)."""

import json
import os
import re
import socket
import struct
import threading
import time

import pytest

from conftest import (HERE, Conn, Origin, ProtocolError, assert_json_error, free_port,
                      request_bytes, wait_until)

EVIL_PY = os.path.join(HERE, "evil_origin.py")
IDLE_TIMEOUT = 2.0  # limits.idle_timeout below: what cuts off a client that does not read
EVIL_TIMEOUT = 3.0  # upstreams[evil].timeout: to the first response byte
N_FILES = 97  # static files of distinct content: a reordering shows

CONFIG = """\
workers: 2
shutdown_timeout: 2s
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
limits:
  header_timeout: 5s
  idle_timeout: 2s
listeners:
  - {{name: public, listen: "127.0.0.1:{port}"}}
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
  - name: evil
    endpoints: ["127.0.0.1:{evil}"]
    timeout: 3s
    circuit_breaker: {{failures: 0}}
routes:
  - {{match: {{prefix: /evil/}}, upstream: evil}}
  - {{match: {{prefix: /o/}}, upstream: origin}}
  - {{match: {{prefix: /}}, static: {{root: "{root}"}}}}
"""


def file_body(i):
    return b"file %d %s\n" % (i, b"x" * (i % 13))


@pytest.fixture(scope="module")
def evil(work_dir):
    o = Origin(work_dir, "evil_origin", script=EVIL_PY)
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def rg(gateway_factory, origin, evil, tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_www")
    for i in range(N_FILES):
        (root / ("f%d" % i)).write_bytes(file_body(i))
    admin = free_port()
    g = gateway_factory("robust", CONFIG, origin=origin.port, evil=evil.port, admin=admin,
                        root=str(root))
    g.admin = admin
    return g


@pytest.fixture
def gw_r(rg, evil):
    if not evil.alive():
        pytest.fail("the evil origin died:\n" + evil.log_text(), pytrace=False)
    return rg.ensure_running()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def sanitized():
    return bool(os.environ.get("RINGGATE_SANITIZED"))


def active_connections(g):
    with Conn(g.admin, timeout=5) as c:
        c.send(request_bytes("GET", "/metrics", host="admin"))
        text = c.read_response().body.decode()
    m = re.search(r'^ringgate_connections_active\{listener="public"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def evil_stats(evil_origin, name):
    with Conn(evil_origin.port, timeout=5) as c:
        c.send(request_bytes("GET", "/stats", host="evil"))
        return json.loads(c.read_response().body).get(name, {"started": 0, "cut": 0,
                                                               "bytes": 0})


def still_serves(g):
    r = g.request("GET", "/o/echo?still", timeout=5)
    assert r.status == 200 and r.json()["query"] == "still", r
    r = g.request("GET", "/evil/ok", timeout=5)
    assert r.status == 200 and r.body == b"ok", r


def reset(sock):
    """Close with RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------------------------
# Clients


@pytest.mark.timeout(60)
def test_client_that_never_reads(gw_r):
    """A response much larger than the socket buffers to a client that reads
    nothing: the worker goes on serving others, holds a bounded amount of
    memory for it, and cuts it off after limits.idle_timeout (the send
    stalls; that timer is re-armed only by progress)."""
    assert wait_until(lambda: active_connections(gw_r) == 0, 5)
    rss_before = rss_kib(gw_r.pid)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", gw_r.port))
    stalled.sendall(request_bytes("GET", "/o/bytes?n=%d" % (64 << 20)))
    t0 = time.monotonic()
    # Meanwhile (both workers, whichever holds the stalled one) others are served.
    while time.monotonic() - t0 < IDLE_TIMEOUT * 0.8:
        t1 = time.monotonic()
        r = gw_r.request("GET", "/f5", timeout=5)
        assert r.status == 200 and r.body == file_body(5)
        assert time.monotonic() - t1 < 1.0
        time.sleep(0.05)
    rss_stalled = rss_kib(gw_r.pid)
    # Cut off: the gateway holds no client connection any more.
    assert wait_until(lambda: active_connections(gw_r) == 0, IDLE_TIMEOUT + 5), \
        "the client that reads nothing still holds a connection"
    took = time.monotonic() - t0
    assert took >= IDLE_TIMEOUT * 0.9, "cut off after %.2fs, before idle_timeout" % took
    got = 0
    stalled.settimeout(10)
    try:
        while True:
            data = stalled.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    stalled.close()
    assert got < (64 << 20), "the whole response arrived: nothing was cut off"
    print("\nnever-reading client: cut after %.1fs, %d bytes had been sent; RSS %d -> %d KiB"
          % (took, got, rss_before, rss_stalled))
    if not sanitized():
        assert rss_stalled - rss_before < 32 * 1024
    still_serves(gw_r)


@pytest.mark.timeout(60)
def test_client_resets_mid_body(gw_r, origin):
    """Clients that send part of a large body and then reset (SO_LINGER 0):
    nothing incomplete is passed off as a whole request, no connection is
    left behind, and the gateway goes on."""
    origin.reset_log()
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", gw_r.port), timeout=5)
        s.sendall(request_bytes("POST", "/o/echo?rst=%d" % i, headers=[
            ("Content-Length", str(8 << 20))]))
        s.sendall(b"z" * ((1 << 20) + i * 1000))
        if i % 2:
            time.sleep(0.02)  # sometimes after the gateway has started forwarding
        reset(s)
    # ... and resets while a response is coming back.
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", gw_r.port), timeout=5)
        s.sendall(request_bytes("GET", "/o/bytes?n=%d" % (8 << 20)))
        s.recv(65536)
        reset(s)
    assert wait_until(lambda: active_connections(gw_r) == 0, 5), "connections left behind"
    done = [line for line in origin.done_log() if "rst=" in line]
    assert done == [], "incomplete requests reached the origin whole: %r" % done
    still_serves(gw_r)


@pytest.mark.parametrize("what", ["proxied", "static", "pipelined", "post"])
def test_half_closed_client_gets_its_answer(gw_r, what):
    """The client shuts down its sending side right after the request (as
    `nc -N` does): the answer must still arrive whole, then the gateway
    closes."""
    c = gw_r.conn(timeout=10)
    try:
        if what == "proxied":
            c.send(request_bytes("GET", "/o/echo?half"))
        elif what == "static":
            c.send(request_bytes("GET", "/f7"))
        elif what == "pipelined":
            c.send(request_bytes("GET", "/o/echo?one") + request_bytes("GET", "/f3") +
                   request_bytes("GET", "/o/echo?three"))
        else:
            c.send(request_bytes("POST", "/o/echo?post", body=b"p" * 200000))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        assert r.status == 200, r
        if what == "proxied":
            assert r.json()["query"] == "half"
        elif what == "static":
            assert r.body == file_body(7)
        elif what == "pipelined":
            assert r.json()["query"] == "one"
            r = c.read_response()
            assert r.status == 200 and r.body == file_body(3), r
            r = c.read_response()
            assert r.status == 200 and r.json()["query"] == "three", r
        else:
            assert r.json()["body_length"] == 200000
        assert c.closed_within(IDLE_TIMEOUT + 3), "not closed after the last answer"
        assert c.buf == b"", "bytes after the last answer: %r" % c.buf[:200]
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_100k_pipelined_tiny_requests(gw_r):
    """100 000 requests written back to back on one connection, read while
    they are still being written: every one answered, in order, with the
    gateway's memory bounded (it must stop reading while answers wait)."""
    n = 100000
    rss_before = rss_kib(gw_r.pid)
    sock = socket.create_connection(("127.0.0.1", gw_r.port), timeout=60)
    reqs = [b"GET /f%d HTTP/1.1\r\nHost: t\r\n\r\n" % (i % N_FILES) for i in range(n)]
    send_error = []

    def writer():
        try:
            for k in range(0, n, 500):
                sock.sendall(b"".join(reqs[k:k + 500]))
        except OSError as e:
            send_error.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t0 = time.monotonic()
    t.start()
    buf = bytearray()
    pos = 0
    answered = 0
    peak = rss_before
    deadline = t0 + 180
    while answered < n:
        if time.monotonic() > deadline:
            pytest.fail("only %d of %d answers within 180 s" % (answered, n))
        data = sock.recv(1 << 20)
        if not data:
            pytest.fail("connection closed after %d of %d answers" % (answered, n))
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            head = bytes(buf[pos:end])
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            assert head.startswith(b"HTTP/1.1 200 ") and m, head
            body_end = end + 4 + int(m.group(1))
            if len(buf) < body_end:
                break
            want = file_body(answered % N_FILES)
            assert buf[end + 4:body_end] == want, "answer %d out of order: %r" % (
                answered, bytes(buf[end + 4:body_end]))
            answered += 1
            pos = body_end
        if pos > (1 << 20):
            del buf[:pos]
            pos = 0
        if answered % 5000 < 50:
            peak = max(peak, rss_kib(gw_r.pid))
    took = time.monotonic() - t0
    t.join(10)
    sock.close()
    assert not send_error, send_error
    print("\n%d pipelined requests answered in order in %.1fs; RSS %d KiB, peak %d KiB"
          % (n, took, rss_before, peak))
    if not sanitized():
        assert peak - rss_before < 32 * 1024


# ---------------------------------------------------------------------------
# Upstreams


@pytest.mark.timeout(60)
def test_upstream_endless_headers(gw_r, evil):
    """A response head that never ends, as fast as it can: 502 once the
    gateway's response-head limit (64 KiB) is reached, long before the
    upstream timeout, the upstream connection closed, memory bounded."""
    before = evil_stats(evil, "endless-headers")
    rss_before = rss_kib(gw_r.pid)
    for _ in range(3):
        t0 = time.monotonic()
        r = gw_r.request("GET", "/evil/endless-headers", timeout=10)
        took = time.monotonic() - t0
        assert_json_error(r, 502)
        assert took < EVIL_TIMEOUT * 0.8, "502 after %.2fs" % took
    assert wait_until(lambda: evil_stats(evil, "endless-headers")["cut"] == before["cut"] + 3, 5)
    if not sanitized():
        assert rss_kib(gw_r.pid) - rss_before < 16 * 1024
    still_serves(gw_r)


@pytest.mark.timeout(60)
def test_upstream_dripping_headers(gw_r, evil):
    """A head that grows by one line every 100 ms never reaches the size
    limit: the upstream timeout (to the first byte... of a complete head)
    answers 504, and the upstream connection is closed."""
    before = evil_stats(evil, "drip-headers")
    t0 = time.monotonic()
    r = gw_r.request("GET", "/evil/drip-headers", timeout=EVIL_TIMEOUT + 10)
    took = time.monotonic() - t0
    assert_json_error(r, 504)
    assert EVIL_TIMEOUT * 0.8 <= took <= EVIL_TIMEOUT + 3, "504 after %.2fs" % took
    assert wait_until(lambda: evil_stats(evil, "drip-headers")["cut"] == before["cut"] + 1, 5)
    still_serves(gw_r)


@pytest.mark.parametrize("name", ["binary-garbage", "nul-in-header", "length-and-chunked"])
def test_upstream_garbage(gw_r, name):
    """Bytes that are not a valid response: 502 as soon as they arrive (the
    garbage sender keeps its connection open: no waiting for the timeout)."""
    t0 = time.monotonic()
    r = gw_r.request("GET", "/evil/" + name, timeout=10)
    assert_json_error(r, 502)
    assert time.monotonic() - t0 < EVIL_TIMEOUT * 0.8
    still_serves(gw_r)


def test_upstream_extra_bytes_not_given_to_the_next_request(gw_r):
    """A second, unasked response behind the first in the same write
    (response splitting): the client gets the first, and what follows must
    never be taken as the answer to a later request on a pooled connection."""
    for _ in range(3):
        with gw_r.conn() as c:
            c.send(request_bytes("GET", "/evil/split"))
            r = c.read_response()
            assert r.status == 200 and r.body == b"ok", r
            for i in range(5):
                if c.closed_within(0.05):
                    break
                c.send(request_bytes("GET", "/evil/ok?same=%d" % i))
                r = c.read_response()
                assert r.header("X-Smuggled") is None and r.body == b"ok", r
        for i in range(10):
            r = gw_r.request("GET", "/evil/ok?next=%d" % i, timeout=5)
            assert r.status == 200 and r.header("X-Smuggled") is None and r.body == b"ok", r


def test_upstream_bad_chunk(gw_r):
    """The body is bad in the first bytes the gateway gets: an answer of
    its own (502), or, had it relayed the head already, a cut connection;
    never a body ended as if it were whole."""
    with gw_r.conn(timeout=10) as c:
        c.send(request_bytes("GET", "/evil/bad-chunk"))
        try:
            r = c.read_response()
        except ProtocolError:
            pass
        else:
            assert_json_error(r, 502)
    still_serves(gw_r)


def test_upstream_bad_chunk_mid_response(gw_r):
    """The body goes bad after the head has been relayed: the only honest
    thing left is to close the client connection."""
    with gw_r.conn(timeout=10) as c:
        c.send(request_bytes("GET", "/evil/bad-chunk-later"))
        with pytest.raises(ProtocolError):
            r = c.read_response()
            pytest.fail("a complete response from a broken body: %r" % r)
    still_serves(gw_r)
