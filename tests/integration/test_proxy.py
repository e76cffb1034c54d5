"""Proxying through the real gateway to the real origin: methods, bodies,
framing, keep-alive, pipelining, forwarding headers, routing."""

import hashlib
import re
import time

import pytest
import requests

from conftest import (Conn, chunked_body, echo_header, header_pairs, pattern_bytes,
                      request_bytes, sha256, wait_until)

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


# ---------------------------------------------------------------------------
# Methods and bodies


@pytest.mark.parametrize("method", METHODS)
def test_method_forwarded_with_body(gw, method):
    # HEAD carries no body (content in HEAD has no defined meaning).
    body = None if method == "HEAD" else ("body of %s" % method).encode() * 10
    r = requests.request(method, gw.url("/o/echo?m=" + method), data=body, timeout=10,
                         headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.headers["X-Echo-Method"] == method
    want = body or b""
    assert r.headers["X-Echo-Body-Length"] == str(len(want))
    assert r.headers["X-Echo-Body-Sha256"] == sha256(want)
    if method == "HEAD":
        assert r.content == b""
    else:
        echo = r.json()
        assert echo["method"] == method
        assert echo["path"] == "/o/echo"
        assert echo["query"] == "m=" + method
        assert echo["body_length"] == len(want)
        assert echo_header(echo, "Content-Type") == "text/plain"


def test_query_and_path_passed_verbatim(gw):
    target = "/o/echo/a%20b/c%2Fd?x=1&y=%41&z=&x=2"
    with gw.conn() as c:
        c.send(request_bytes("GET", target))
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["target"] == target


def test_empty_post_without_body(gw):
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Content-Length", "0")]))
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_length"] == 0


# ---------------------------------------------------------------------------
# Keep-alive and pipelining


def test_client_keepalive_several_requests_one_socket(gw):
    with gw.conn() as c:
        for i in range(5):
            body = b"x" * (i * 100)
            c.send(request_bytes("POST", "/o/echo?i=%d" % i, body=body))
            r = c.read_response()
            assert r.status == 200, r
            echo = r.json()
            assert echo["query"] == "i=%d" % i
            assert echo["body_length"] == len(body)
            assert r.header("Connection", "").lower() != "close"
        assert not c.closed_within(0.2), "gateway closed a keep-alive connection"


def test_upstream_keepalive_reuses_origin_connection(gw):
    ports = []
    counts = []
    with gw.conn() as c:
        for _ in range(4):
            c.send(request_bytes("GET", "/o/count"))
            r = c.read_response()
            assert r.status == 200, r
            doc = r.json()
            ports.append(doc["client_port"])
            counts.append(doc["conn_requests"])
            time.sleep(0.05)
    assert len(set(ports)) == 1, "origin saw these gateway ports: %r" % ports
    assert counts == sorted(counts) and counts[-1] - counts[0] == 3, counts


def test_pipelined_requests_answered_in_order(gw):
    reqs = (request_bytes("GET", "/o/echo?n=1")
            + request_bytes("POST", "/o/echo?n=2", body=b"second body")
            + request_bytes("GET", "/o/sleep?ms=50")
            + request_bytes("GET", "/o/echo?n=4"))
    with gw.conn() as c:
        c.send(reqs)
        r1, r2, r3, r4 = (c.read_response() for _ in range(4))
    assert [r.status for r in (r1, r2, r3, r4)] == [200] * 4
    assert r1.json()["query"] == "n=1"
    assert r2.json()["query"] == "n=2"
    assert r2.json()["body_length"] == len(b"second body")
    assert r3.json() == {"slept_ms": 50}
    assert r4.json()["query"] == "n=4"


def test_pipelined_in_one_send_three(gw):
    with gw.conn() as c:
        c.send(b"".join(request_bytes("GET", "/o/echo?p=%d" % i) for i in range(3)))
        got = [c.read_response().json()["query"] for _ in range(3)]
    assert got == ["p=0", "p=1", "p=2"]


# ---------------------------------------------------------------------------
# Framing


def test_chunked_request_body_forwarded(gw):
    pieces = [b"a" * 1, b"b" * 10, b"c" * 5000, b"d" * 70000, b"e" * 3]
    whole = b"".join(pieces)
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Transfer-Encoding", "chunked")])
               + chunked_body(pieces))
        r = c.read_response()
    assert r.status == 200, r
    echo = r.json()
    assert echo["body_length"] == len(whole)
    assert echo["body_sha256"] == sha256(whole)


def test_chunked_request_body_sent_in_pieces(gw):
    pieces = [b"hello ", b"world", b"!" * 300]
    whole = b"".join(pieces)
    data = request_bytes("PUT", "/o/echo", headers=[("Transfer-Encoding", "chunked")]) \
        + chunked_body(pieces)
    with gw.conn() as c:
        for i in range(0, len(data), 7):  # dribbled in small sends
            c.send(data[i:i + 7])
            if i % 140 == 0:
                time.sleep(0.005)
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(whole)


def test_chunked_request_framing_in_separate_segments(gw):
    """Each size line, data, CRLF and the last chunk sent on its own."""
    pieces = [b"a", b"bbbbbbb", b"c" * 100]
    whole = b"".join(pieces)
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Transfer-Encoding", "chunked")]))
        for p in pieces:
            for part in (b"%x\r\n" % len(p), p, b"\r\n"):
                time.sleep(0.015)
                c.send(part)
        for part in (b"0\r\n", b"\r\n"):
            time.sleep(0.015)
            c.send(part)
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_sha256"] == sha256(whole)
        c.send(request_bytes("GET", "/o/echo?after"))
        assert c.read_response().json()["query"] == "after"


def test_chunked_request_with_extension_and_trailer(gw):
    body = (b"5;name=value\r\nhello\r\n"
            b"6\r\n world\r\n"
            b"0\r\nX-Trailer: t\r\n\r\n")
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Transfer-Encoding", "chunked")])
               + body)
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(b"hello world")


@pytest.mark.parametrize("n", [0, 1, 100000, 1 << 20])
def test_chunked_response_passed_back(gw, n):
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/chunked?n=%d" % n))
        r = c.read_response()
        assert r.status == 200, r
        assert len(r.body) == n
        assert sha256(r.body) == r.header("X-Sha256") == sha256(pattern_bytes(n))
        # The connection is still usable after a chunked answer.
        c.send(request_bytes("GET", "/o/echo?after"))
        assert c.read_response().json()["query"] == "after"


def test_chunked_response_framing_in_separate_segments(gw):
    """Size lines, data, CRLFs and the last chunk each arrive on their own."""
    n = 300
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/chunked?n=%d&pause_ms=15" % n))
        r = c.read_response()
        assert r.status == 200, r
        assert sha256(r.body) == sha256(pattern_bytes(n))
        c.send(request_bytes("GET", "/o/echo?after"))
        assert c.read_response().json()["query"] == "after"


def test_upload_10mib(gw):
    body = pattern_bytes(10 << 20)
    with gw.conn(timeout=30) as c:
        c.send(request_bytes("POST", "/o/echo", body=body))
        r = c.read_response()
    assert r.status == 200, r
    echo = r.json()
    assert echo["body_length"] == len(body)
    assert echo["body_sha256"] == sha256(body)


def test_upload_10mib_chunked(gw):
    body = pattern_bytes(10 << 20)
    pieces = [body[i:i + 300000] for i in range(0, len(body), 300000)]
    with gw.conn(timeout=30) as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Transfer-Encoding", "chunked")])
               + chunked_body(pieces))
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(body)


def test_download_10mib(gw):
    n = 10 << 20
    with gw.conn(timeout=30) as c:
        c.send(request_bytes("GET", "/o/bytes?n=%d" % n))
        r = c.read_response()
    assert r.status == 200, r
    assert len(r.body) == n
    assert sha256(r.body) == r.header("X-Sha256") == sha256(pattern_bytes(n))


def test_download_10mib_with_requests_streaming(gw):
    n = 10 << 20
    r = requests.get(gw.url("/o/bytes?n=%d" % n), stream=True, timeout=30)
    h = hashlib.sha256()
    got = 0
    for piece in r.iter_content(1 << 16):
        h.update(piece)
        got += len(piece)
    assert got == n
    assert h.hexdigest() == r.headers["X-Sha256"]


def test_response_read_to_close_delivered_whole(gw):
    n = 300000
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/close?n=%d" % n))
        r = c.read_response()
    assert r.status == 200, r
    assert len(r.body) == n
    assert sha256(r.body) == sha256(pattern_bytes(n))


SMALL_BUFFER = """\
workers: 1
access_log: "off"
limits: {{response_buffer: 16KiB}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams: [{{name: origin, endpoints: ["127.0.0.1:{origin}"]}}]
routes: [{{match: {{prefix: /o/}}, upstream: origin}}]
"""


@pytest.fixture(scope="module")
def small_buffer_gw(gateway_factory, origin):
    return gateway_factory("small_buffer", SMALL_BUFFER, origin=origin.port)


@pytest.mark.parametrize("path", ["/o/bytes?n=%d" % (3 << 20), "/o/chunked?n=%d" % (1 << 20),
                                  "/o/close?n=300000"])
def test_long_bodies_with_the_smallest_response_buffer(small_buffer_gw, path):
    """limits.response_buffer at its minimum: a long body in 16 KiB pieces,
    whatever its framing, arrives whole."""
    n = int(path.rsplit("=", 1)[1])
    with small_buffer_gw.conn(timeout=30) as c:
        c.send(request_bytes("GET", path))
        r = c.read_response()
    assert r.status == 200, r
    assert len(r.body) == n
    assert sha256(r.body) == sha256(pattern_bytes(n))


def test_head_has_no_body(gw):
    with gw.conn() as c:
        c.send(request_bytes("HEAD", "/o/bytes?n=5000"))
        r = c.read_response(method="HEAD")
        assert r.status == 200, r
        assert r.body == b""
        cl = r.header("Content-Length")
        assert cl in (None, "5000"), r
        # No stray body bytes: the next answer on the socket parses cleanly.
        c.send(request_bytes("GET", "/o/echo?next"))
        r2 = c.read_response()
        assert r2.status == 200, r2
        assert r2.json()["query"] == "next"
        assert c.buf == b""


def test_head_of_chunked_resource_has_no_body(gw):
    with gw.conn() as c:
        c.send(request_bytes("HEAD", "/o/chunked?n=5000")
               + request_bytes("GET", "/o/echo?next"))
        r = c.read_response(method="HEAD")
        assert r.status == 200, r
        r2 = c.read_response()
        assert r2.status == 200, r2
        assert r2.json()["query"] == "next"


@pytest.mark.parametrize("code", [204, 304])
def test_bodiless_statuses(gw, code):
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/status?code=%d" % code)
               + request_bytes("GET", "/o/echo?next"))
        r = c.read_response()
        assert r.status == code, r
        assert r.body == b""
        assert c.read_response().json()["query"] == "next"


@pytest.mark.parametrize("code", [201, 404, 500, 503])
def test_origin_status_passed_through(gw, code):
    r = gw.request("GET", "/o/status?code=%d" % code)
    assert r.status == code, r
    assert r.json() == {"status": code}


# ---------------------------------------------------------------------------
# HTTP/1.0 and Expect


def test_http10_client(gw):
    with gw.conn() as c:
        c.send(b"GET /o/echo?v=10 HTTP/1.0\r\nHost: test.local\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.version in ("HTTP/1.0", "HTTP/1.1")
        assert r.json()["query"] == "v=10"
        assert not r.chunked, "chunked coding sent to an HTTP/1.0 client"
        assert c.closed_within(3), "HTTP/1.0 connection without keep-alive left open"


def test_http10_client_without_host(gw):
    with gw.conn() as c:
        c.send(b"GET /o/echo HTTP/1.0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    echo = r.json()
    # Sent upstream as HTTP/1.1, the request needs a Host (RFC 9112 3.2).
    if echo["version"] == "HTTP/1.1":
        assert echo_header(echo, "Host"), "HTTP/1.1 request without Host sent upstream: %r" \
            % echo["headers"]


@pytest.mark.parametrize("n,pause", [(50000, 0), (300, 15)], ids=["whole", "split"])
def test_http10_client_gets_chunked_origin_answer_unchunked(gw, n, pause):
    """The chunked answer is passed to the 1.0 client without the chunked
    coding, and the connection closed right after it, also when the last
    chunk arrives from the origin on its own."""
    t0 = time.monotonic()
    with gw.conn(timeout=5) as c:
        c.send(b"GET /o/chunked?n=%d&pause_ms=%d HTTP/1.0\r\nHost: test.local\r\n\r\n"
               % (n, pause))
        r = c.read_response()
    assert r.status == 200, r
    assert not r.chunked, "chunked coding sent to an HTTP/1.0 client"
    assert sha256(r.body) == sha256(pattern_bytes(n))
    took = time.monotonic() - t0
    assert took < 2, "answer to the 1.0 client only ended after %.1fs" % took


def test_http10_post_with_body(gw):
    body = b"one-oh body"
    with gw.conn() as c:
        c.send(b"POST /o/echo HTTP/1.0\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(body)


def test_expect_100_continue(gw):
    body = b"z" * 20000
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[
            ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        interim = c.read_head(time.monotonic() + 5)
        assert interim.status == 100, interim
        c.send(body)
        r = c.read_response()
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(body)


def test_expect_100_continue_body_sent_anyway(gw):
    # A client may send the body without waiting for 100 Continue.
    body = b"q" * 1000
    with gw.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Expect", "100-continue")],
                             body=body))
        r = c.read_response()  # 1xx skipped
    assert r.status == 200, r
    assert r.json()["body_sha256"] == sha256(body)


# ---------------------------------------------------------------------------
# Headers sent upstream


def test_forwarding_headers_added(gw):
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", host="front.example:8080"))
        echo = c.read_response().json()
    xff = echo_header(echo, "X-Forwarded-For")
    assert xff is not None and xff.split(",")[-1].strip() == "127.0.0.1", echo["headers"]
    assert echo_header(echo, "X-Forwarded-Proto") == "http"
    assert echo_header(echo, "X-Forwarded-Host") in ("front.example:8080", "front.example")
    rid = echo_header(echo, "X-Request-Id")
    assert rid and re.fullmatch(r"[\x21-\x7e]{8,200}", rid), rid
    # Host itself is passed on (nginx's proxy_set_header Host $host habit).
    assert echo_header(echo, "Host") in ("front.example:8080", "front.example")


def test_request_ids_differ(gw):
    ids = set()
    for _ in range(5):
        ids.add(echo_header(gw.request("GET", "/o/echo").json(), "X-Request-Id"))
    assert len(ids) == 5 and None not in ids, ids


def test_x_forwarded_for_appended(gw):
    echo = gw.request("GET", "/o/echo", headers=[("X-Forwarded-For", "10.1.2.3")]).json()
    xff = [v for k, v in header_pairs(echo) if k == "x-forwarded-for"]
    parts = [p.strip() for v in xff for p in v.split(",")]
    assert parts == ["10.1.2.3", "127.0.0.1"], xff


def test_valid_request_id_kept(gw):
    rid = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    echo = gw.request("GET", "/o/echo", headers=[("X-Request-Id", rid)]).json()
    assert [v for k, v in header_pairs(echo) if k == "x-request-id"] == [rid]


def test_invalid_request_id_replaced(gw):
    bad = "<script>alert(1)</script> " + "x" * 300
    echo = gw.request("GET", "/o/echo", headers=[("X-Request-Id", bad)]).json()
    got = [v for k, v in header_pairs(echo) if k == "x-request-id"]
    assert len(got) == 1 and got[0] and got[0] != bad, got


def test_traceparent_passed_through(gw):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    echo = gw.request("GET", "/o/echo", headers=[("traceparent", tp)]).json()
    assert echo_header(echo, "traceparent") == tp


def test_hop_by_hop_headers_not_forwarded(gw):
    headers = [
        ("Connection", "keep-alive, X-Hop-Named, Upgrade"),
        ("Keep-Alive", "timeout=5, max=100"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Hop-Named", "should not pass"),
        ("X-End-To-End", "passes"),
    ]
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", headers=headers))
        r = c.read_response()
        assert r.status == 200, r
        names = [k for k, _ in header_pairs(r.json())]
        for hop in ("keep-alive", "te", "upgrade", "proxy-connection", "x-hop-named"):
            assert hop not in names, "%s forwarded: %r" % (hop, r.json()["headers"])
        for k, v in header_pairs(r.json()):
            if k == "connection":
                toks = {t.strip().lower() for t in v.split(",")}
                assert not toks & {"x-hop-named", "upgrade"}, v
        assert echo_header(r.json(), "X-End-To-End") == "passes"
        # Still a plain HTTP connection: no 101, keep-alive honoured.
        c.send(request_bytes("GET", "/o/echo?again"))
        assert c.read_response().json()["query"] == "again"


def test_client_connection_close_honoured(gw):
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", headers=[("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200, r
        assert c.closed_within(3)


def gateway_holds_socket(gw_port, client_port):
    """Whether the gateway's end of this connection is still one of its
    sockets: /proc/net/tcp shows inode 0 once it is closed (orphaned)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(local.split(":")[1], 16) == gw_port and \
                    int(remote.split(":")[1], 16) == client_port:
                return inode != 0
    return False


def test_connection_close_closes_without_waiting_for_the_client(gw):
    # The client asked to close and sent nothing more: as nginx, no lingering
    # (the client's own close would otherwise wake the gateway for nothing).
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", headers=[("Connection", "close")]))
        assert c.read_response().status == 200
        assert c.closed_within(3)
        client_port = c.sock.getsockname()[1]
        assert wait_until(lambda: not gateway_holds_socket(gw.port, client_port), 1.0)


def test_closing_a_client_that_did_not_ask_lingers(gw):
    # A 400 closes a connection the client meant to keep: it may still be
    # sending, so the gateway reads and drops its input for a while before
    # closing (its socket stays open while the client's does).
    with gw.conn() as c:
        c.send(b"GET /o/echo HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
        assert c.read_response().status == 400
        assert c.closed_within(3)
        client_port = c.sock.getsockname()[1]
        time.sleep(0.3)
        assert gateway_holds_socket(gw.port, client_port)
        c.send(b"more of a request the client had already started to send")
        time.sleep(0.1)
        assert gateway_holds_socket(gw.port, client_port)


# ---------------------------------------------------------------------------
# Routing


def origin_of(resp):
    return int(resp.header("X-Origin-Port"))


def test_route_by_prefix_to_origin(gw, origin):
    r = gw.request("GET", "/o/echo")
    assert r.status == 200 and origin_of(r) == origin.port, r


@pytest.mark.parametrize("host", ["exact.test", "EXACT.Test", "exact.test:8080"])
def test_route_by_exact_host(gw, origin_b, host):
    r = gw.request("GET", "/anything/echo", host=host)
    assert r.status == 200, r
    assert origin_of(r) == origin_b.port


def test_exact_host_does_not_match_subdomain(gw, origin):
    r = gw.request("GET", "/o/echo", host="sub.exact.test")
    assert r.status == 200 and origin_of(r) == origin.port, r


@pytest.mark.parametrize("host", ["a.wild.test", "deep.a.wild.test", "A.WILD.TEST:81"])
def test_route_by_wildcard_host(gw, origin_b, host):
    r = gw.request("GET", "/anything/echo", host=host)
    assert r.status == 200, r
    assert origin_of(r) == origin_b.port


def test_wildcard_does_not_match_bare_suffix(gw, origin):
    r = gw.request("GET", "/o/echo", host="wild.test")
    assert r.status == 200 and origin_of(r) == origin.port, r
    r = gw.request("GET", "/o/echo", host="notwild.test")
    assert r.status == 200 and origin_of(r) == origin.port, r


def test_route_by_method(gw, origin, origin_b):
    r = gw.request("POST", "/only-post/echo", body=b"p")
    assert r.status == 200 and origin_of(r) == origin_b.port, r
    r = gw.request("GET", "/only-post/echo")
    assert r.status == 200 and origin_of(r) == origin.port, r
    r = gw.request("PUT", "/only-post/echo", body=b"p")
    assert r.status == 200 and origin_of(r) == origin.port, r


def test_prefix_is_not_a_substring_match(gw):
    # "/o/" must not match "/oops"; no other route does: 404.
    r = gw.request("GET", "/oops")
    assert r.status == 404, r


def test_many_connections_in_parallel(gw):
    conns = [Conn(gw.port) for _ in range(50)]
    try:
        for i, c in enumerate(conns):
            c.send(request_bytes("GET", "/o/echo?c=%d" % i))
        for i, c in enumerate(conns):
            assert c.read_response().json()["query"] == "c=%d" % i
    finally:
        for c in conns:
            c.close()
