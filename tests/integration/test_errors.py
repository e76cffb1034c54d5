"""The answers the gateway gives itself: 404, 408, 413, 431, 502, 504, each
with the JSON error body of the contract."""

import time

import pytest

from conftest import assert_json_error, chunked_body, request_bytes

LIMITS_CONFIG = """\
workers: 1
shutdown_timeout: 2s
access_log: "off"
limits:
  max_header_bytes: 8KiB
  max_body_bytes: 1KiB
  header_timeout: 1s
  idle_timeout: 30s
listeners:
  - name: small
    listen: "127.0.0.1:{port}"
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
routes:
  - match: {{prefix: /o/}}
    upstream: origin
"""


@pytest.fixture(scope="module")
def small(gateway_factory, origin):
    """A gateway with small limits and a 1s header timeout."""
    return gateway_factory("limits", LIMITS_CONFIG, origin=origin.port)


@pytest.fixture
def lim(small):
    return small.ensure_running()


# ---------------------------------------------------------------------------
# 404


def test_404_when_no_route(gw, origin):
    origin.reset_log()
    r = gw.request("GET", "/no/route/here")
    assert_json_error(r, 404)
    assert origin.log() == []


def test_404_head_has_no_body(gw):
    with gw.conn() as c:
        c.send(request_bytes("HEAD", "/no/route/here"))
        r = c.read_response(method="HEAD")
        assert r.status == 404, r
        assert r.body == b""


def test_404_for_other_method_outside_every_prefix(gw):
    r = gw.request("DELETE", "/nothing")
    assert_json_error(r, 404)


# ---------------------------------------------------------------------------
# 502 and 504


def test_502_when_upstream_port_closed(gw):
    t0 = time.monotonic()
    r = gw.request("GET", "/dead/echo")
    assert_json_error(r, 502)
    assert time.monotonic() - t0 < 5


def test_502_keeps_client_connection_usable_or_closes_cleanly(gw):
    with gw.conn() as c:
        c.send(request_bytes("GET", "/dead/echo"))
        assert_json_error(c.read_response(), 502)
        if not c.closed_within(0.2):
            c.send(request_bytes("GET", "/o/echo?after502"))
            r = c.read_response()
            assert r.status == 200 and r.json()["query"] == "after502", r


def test_502_on_invalid_upstream_response(gw):
    r = gw.request("GET", "/flaky/garbage")
    assert_json_error(r, 502)


def test_502_when_origin_closes_without_answer(gw):
    r = gw.request("GET", "/flaky/hangup")
    assert_json_error(r, 502)


def test_504_when_origin_slower_than_timeout(gw):
    t0 = time.monotonic()
    r = gw.request("GET", "/slow/sleep?ms=4000", timeout=8)
    took = time.monotonic() - t0
    assert_json_error(r, 504)
    assert 0.8 <= took <= 3.5, "504 after %.2fs with a 1s upstream timeout" % took


def test_fast_answer_within_timeout_is_not_504(gw):
    r = gw.request("GET", "/slow/sleep?ms=100")
    assert r.status == 200, r


# ---------------------------------------------------------------------------
# 431


def test_431_huge_header(gw, origin):
    origin.reset_log()
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo?big", headers=[("X-Big", "a" * 40000)]))
        r = c.read_response()
    assert_json_error(r, 431)
    assert [line for line in origin.log() if "big" in line] == []


def test_431_many_medium_headers(gw):
    headers = [("X-Pad-%02d" % i, "b" * 1000) for i in range(40)]
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", headers=headers))
        r = c.read_response()
    assert_json_error(r, 431)


def test_431_too_many_header_fields(gw):
    headers = [("X-N-%d" % i, "v") for i in range(300)]
    with gw.conn() as c:
        c.send(request_bytes("GET", "/o/echo", headers=headers))
        r = c.read_response()
    assert_json_error(r, 431)


def test_431_huge_head_without_end(gw):
    # The head never ends: the limit decides, not the timeout.
    with gw.conn() as c:
        try:
            c.send(b"GET /o/echo HTTP/1.1\r\nHost: t\r\nX-Endless: " + b"c" * 100000)
        except OSError:
            pass
        r = c.read_response(deadline_s=5)
    assert_json_error(r, 431)


def test_431_with_configured_limit(lim):
    r = lim.request("GET", "/o/echo", headers=[("X-Big", "a" * 9000)])
    assert_json_error(r, 431)
    r = lim.request("GET", "/o/echo", headers=[("X-Big", "a" * 6000)])
    assert r.status == 200, r


# ---------------------------------------------------------------------------
# 413


def test_413_content_length_over_limit(lim):
    with lim.conn() as c:
        c.send(request_bytes("POST", "/o/echo", body=b"x" * 5000))
        r = c.read_response()
    assert_json_error(r, 413)


def test_413_announced_length_rejected_before_body(lim):
    # Only the head is sent: the gateway need not wait for the body.
    with lim.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Content-Length", "100000000")]))
        r = c.read_response(deadline_s=5)
    assert_json_error(r, 413)


def test_413_chunked_over_limit(lim):
    pieces = [b"y" * 700, b"y" * 700, b"y" * 700]
    with lim.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[("Transfer-Encoding", "chunked")])
               + chunked_body(pieces))
        r = c.read_response(deadline_s=5)
    assert_json_error(r, 413)


def test_413_with_expect_continue(lim):
    with lim.conn() as c:
        c.send(request_bytes("POST", "/o/echo", headers=[
            ("Expect", "100-continue"), ("Content-Length", "5000")]))
        r = c.read_response(deadline_s=5)
    assert_json_error(r, 413)


def test_body_at_limit_accepted(lim):
    body = b"k" * 1024
    r = lim.request("POST", "/o/echo", body=body)
    assert r.status == 200, r
    assert r.json()["body_length"] == 1024


# ---------------------------------------------------------------------------
# 408


def test_408_partial_head(lim):
    with lim.conn() as c:
        t0 = time.monotonic()
        c.send(b"GET /o/echo HTTP/1.1\r\nHost: test.local\r\n")
        r = c.read_response(deadline_s=6)
        took = time.monotonic() - t0
        assert_json_error(r, 408)
        assert 0.8 <= took <= 4, "408 after %.2fs with header_timeout 1s" % took
        assert c.closed_within(3), "connection left open after 408"


def test_408_slowloris_drip(lim):
    """A byte every 200ms keeps the connection busy but the head never
    completes in time: the timeout covers the whole head."""
    head = b"GET /o/echo HTTP/1.1\r\nHost: test.local\r\nX-Slow: " + b"s" * 100
    with lim.conn() as c:
        t0 = time.monotonic()
        for b in head:
            try:
                c.send(bytes([b]))
            except OSError:
                break
            if c.closed_within(0.2) or c.buf:
                break
            if time.monotonic() - t0 > 6:
                break
        r = c.read_response(deadline_s=4)
        took = time.monotonic() - t0
        assert_json_error(r, 408)
        assert took <= 5, "408 only after %.2fs" % took
        assert c.closed_within(3)


def test_complete_head_in_time_is_served(lim):
    with lim.conn() as c:
        c.send(b"GET /o/echo HTTP/1.1\r\n")
        time.sleep(0.3)
        c.send(b"Host: test.local\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
