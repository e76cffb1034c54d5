"""Operations: the admin listener (/healthz, /readyz, /metrics), the access
log, SIGHUP reloads, SIGUSR1 log reopening, the SIGTERM drain, and listener
socket options."""

import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request

import pytest

from conftest import Conn, Gateway, free_port, request_bytes, wait_until

CONFIG = """\
workers: 2
shutdown_timeout: 5s
access_log: "{log}"
admin:
  listen: "127.0.0.1:{admin}"
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
routes:
  - name: api
    match: {{prefix: /o/}}
    upstream: origin
"""

SECOND_LISTENER = """\
  - name: second
    listen: "127.0.0.1:{second}"
"""


def http_get(port, path, timeout=5):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, **labels):
    """The value of one series, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted(m.group(2).split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return None


@pytest.fixture
def ops(work_dir, origin, request):
    values = dict(origin=origin.port, admin=free_port(), second=free_port(),
                  log=os.path.join(work_dir, "ops-%s.log" % request.node.name))
    g = Gateway(work_dir, "ops_" + request.node.name, CONFIG, **values)
    g.start()
    yield g
    g.stop()


def rewrite(g, text):
    with open(g.config_path, "w") as f:
        f.write(text)


def settled_metrics(admin, name, labels, want, seconds=3.0):
    """/metrics once `name{labels}` reaches `want`: an exchange is counted
    when the worker sees its last send complete, which may be just after
    the client has read the answer."""
    deadline = time.monotonic() + seconds
    while True:
        text = http_get(admin, "/metrics")[1]
        if metric(text, name, **labels) == want or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.timeout(240)  # 80 starts and stops: ~30 s under the sanitizers
def test_admin_listens_once_the_public_port_does(work_dir, origin):
    """Start-up scripts wait for the public port, then ask the admin
    listener: it must be listening by then. (It was bound after the public
    listeners, and a connection right after the first accepted one was now
    and then refused.) 80 starts: the old order failed about one start in 30."""
    for i in range(80):
        values = dict(origin=origin.port, admin=free_port(), second=free_port(),
                      log=os.path.join(work_dir, "ops-early-admin.log"))
        g = Gateway(work_dir, "ops_early_admin", CONFIG, **values)
        g.start()
        try:
            assert http_get(values["admin"], "/healthz")[0] == 200, "start %d" % i
        finally:
            g.stop()


def test_healthz_readyz_metrics(ops):
    admin = ops.values["admin"]
    assert http_get(admin, "/healthz")[0] == 200
    assert http_get(admin, "/readyz")[0] == 200
    for _ in range(3):
        assert ops.request("GET", "/o/echo").status == 200
    assert ops.request("GET", "/nowhere").status == 404
    assert http_get(admin, "/metrics")[0] == 200
    text = settled_metrics(admin, "ringgate_request_duration_seconds_count", dict(route="none"), 1)
    assert metric(text, "ringgate_build_info", version="0.1.0",
                  tls=re.search(r'tls="([^"]+)"', text).group(1)) == 1
    assert metric(text, "ringgate_requests_total", listener="public", route="api",
                  code="200") == 3
    assert metric(text, "ringgate_requests_total", listener="public", route="none",
                  code="404") == 1
    assert metric(text, "ringgate_request_duration_seconds_count", route="api") == 3
    assert metric(text, "ringgate_request_duration_seconds_bucket", route="api",
                  le="+Inf") == 3
    assert metric(text, "ringgate_upstream_requests_total", upstream="origin",
                  endpoint="127.0.0.1:%d" % ops.values["origin"], outcome="success") == 3
    assert metric(text, "ringgate_upstream_duration_seconds_count", upstream="origin") == 3
    assert metric(text, "ringgate_config_reloads_total", result="success") == 0
    assert metric(text, "ringgate_connections_active", listener="public") is not None
    # Every histogram has the contract's buckets, 100us to 10s.
    assert 'le="0.0001"' in text and 'le="10"' in text


def test_metrics_not_on_public_listener(ops):
    resp = ops.request("GET", "/metrics")
    assert resp.status == 404
    assert b"ringgate_" not in resp.body


def test_access_log_lines(ops):
    ops.request("GET", "/o/echo?x=1", headers=[("X-Request-Id", "abc-123")])
    ops.request("GET", "/missing")
    path = ops.values["log"]
    assert wait_until(lambda: os.path.exists(path) and len(open(path).readlines()) >= 2)
    # Workers buffer their own lines: the file is not in request order.
    lines = sorted((json.loads(line) for line in open(path)), key=lambda l: l["path"] != "/o/echo?x=1")
    first = lines[0]
    for field in ("time", "request_id", "client", "method", "path", "status", "bytes_in",
                  "bytes_out", "upstream", "upstream_time", "total_time"):
        assert field in first, field
    assert first["request_id"] == "abc-123"
    assert first["method"] == "GET" and first["path"] == "/o/echo?x=1"
    assert first["status"] == 200 and first["upstream"].startswith("127.0.0.1:")
    assert first["client"] == "127.0.0.1" and first["bytes_out"] > 0
    assert lines[1]["status"] == 404 and lines[1]["upstream"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", lines[1]["request_id"])


def test_sigusr1_reopens_access_log(ops):
    path = ops.values["log"]
    ops.request("GET", "/o/echo")
    assert wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0)
    os.rename(path, path + ".1")
    os.kill(ops.pid, signal.SIGUSR1)
    assert wait_until(lambda: os.path.exists(path))
    ops.request("GET", "/o/echo?after")
    assert wait_until(lambda: "after" in open(path).read())
    assert "after" not in open(path + ".1").read()


def test_reload_adds_listener_and_keeps_serving(ops):
    admin, second = ops.values["admin"], ops.values["second"]
    # A steady stream of requests during the reload: none may be refused.
    failures, done = [], threading.Event()

    def load():
        while not done.is_set():
            try:
                if ops.request("GET", "/o/echo", timeout=5).status != 200:
                    failures.append("status")
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        rewrite(ops, ops.config_text.replace("upstreams:", SECOND_LISTENER.format(**ops.values)
                                             + "upstreams:"))
        os.kill(ops.pid, signal.SIGHUP)

        def second_up():
            try:
                with socket.create_connection(("127.0.0.1", second), timeout=0.5):
                    return True
            except OSError:
                return False
        assert wait_until(second_up), ops.log_text()
        time.sleep(0.3)
    finally:
        done.set()
        t.join(10)
    assert failures == []
    c = socket.create_connection(("127.0.0.1", second), timeout=5)
    c.sendall(request_bytes("GET", "/o/echo"))
    assert c.recv(100).startswith(b"HTTP/1.1 200")
    c.close()
    text = http_get(admin, "/metrics")[1]
    assert metric(text, "ringgate_config_reloads_total", result="success") == 1
    # Counters of unchanged names carry over the reload.
    assert metric(text, "ringgate_requests_total", listener="public", route="api",
                  code="200") >= 1


def test_reload_rejects_bad_file_and_keeps_old(ops):
    admin = ops.values["admin"]
    rewrite(ops, ops.config_text + "bogus_key: 1\n")
    mark = ops.log_size()
    os.kill(ops.pid, signal.SIGHUP)
    assert wait_until(lambda: "reload rejected" in ops.log_text(mark)), ops.log_text(mark)
    log = ops.log_text(mark)
    line_no = ops.config_text.count("\n") + 1
    assert re.search(r"%s:%d:1: .*bogus_key" % (re.escape(ops.config_path), line_no), log), log
    assert ops.request("GET", "/o/echo").status == 200
    text = http_get(admin, "/metrics")[1]
    assert metric(text, "ringgate_config_reloads_total", result="failure") == 1
    assert metric(text, "ringgate_config_reloads_total", result="success") == 0


def test_reload_removes_listener(ops):
    second = ops.values["second"]
    with_second = ops.config_text.replace("upstreams:", SECOND_LISTENER.format(**ops.values)
                                          + "upstreams:")
    rewrite(ops, with_second)
    os.kill(ops.pid, signal.SIGHUP)

    def accepts():
        try:
            with socket.create_connection(("127.0.0.1", second), timeout=0.5):
                return True
        except OSError:
            return False
    assert wait_until(accepts)
    rewrite(ops, ops.config_text)
    os.kill(ops.pid, signal.SIGHUP)
    assert wait_until(lambda: not accepts()), ops.log_text()
    assert ops.request("GET", "/o/echo").status == 200


def test_in_flight_request_finishes_across_reload(ops):
    result = {}

    def slow():
        result["resp"] = ops.request("GET", "/o/sleep?ms=1500", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    rewrite(ops, ops.config_text.replace("timeout: 10s", "timeout: 9s"))
    os.kill(ops.pid, signal.SIGHUP)
    t.join(10)
    assert result["resp"].status == 200


def test_sigterm_drains_in_flight_and_readyz_turns_503(ops):
    admin = ops.values["admin"]
    result = {}

    def slow():
        result["resp"] = ops.request("GET", "/o/sleep?ms=1500", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    os.kill(ops.pid, signal.SIGTERM)
    assert wait_until(lambda: http_get(admin, "/readyz")[0] == 503, 2)
    # No new connections once draining.
    time.sleep(0.3)
    with pytest.raises(OSError):
        c = socket.create_connection(("127.0.0.1", ops.port), timeout=1)
        c.sendall(request_bytes("GET", "/o/echo"))
        if not c.recv(10):
            raise ConnectionResetError("closed")
    t.join(10)
    assert result["resp"].status == 200
    ops.proc.wait(10)
    assert ops.proc.returncode == 0


def test_metrics_parse_with_prometheus_client(ops):
    parser = pytest.importorskip("prometheus_client.parser")
    for _ in range(4):
        assert ops.request("GET", "/o/echo").status == 200
    assert ops.request("POST", "/o/status?code=503", body=b"x").status == 503
    text = settled_metrics(ops.values["admin"], "ringgate_request_duration_seconds_count",
                           dict(route="api"), 5)
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    for name in ("ringgate_build_info", "ringgate_requests", "ringgate_request_duration_seconds",
                 "ringgate_connections_active", "ringgate_upstream_requests",
                 "ringgate_upstream_duration_seconds", "ringgate_config_reloads"):
        assert name in families, (name, sorted(families))

    def value(family, sample_name, **labels):
        for s in families[family].samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None
    assert value("ringgate_requests", "ringgate_requests_total", route="api", code="200") == 4
    assert value("ringgate_requests", "ringgate_requests_total", route="api", code="503") == 1
    assert value("ringgate_upstream_requests", "ringgate_upstream_requests_total",
                 outcome="success") == 4
    assert value("ringgate_upstream_requests", "ringgate_upstream_requests_total",
                 outcome="http_5xx") == 1
    assert value("ringgate_request_duration_seconds", "ringgate_request_duration_seconds_count",
                 route="api") == 5


MOVING = """\
workers: 2
shutdown_timeout: 5s
access_log: "off"
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: a
    endpoints: ["127.0.0.1:{a}"]
  - name: b
    endpoints: ["127.0.0.1:{b}"]
routes:
  - name: moving
    match: {{prefix: /o/}}
    upstream: {target}
"""


def test_reloads_moving_a_route_lose_no_request(work_dir, origin, origin_b):
    """A client loop runs while the route is moved between two origins by
    six reloads: no request fails or is reset, and each reload's routing
    takes effect."""
    values = dict(a=origin.port, b=origin_b.port, target="a")
    g = Gateway(work_dir, "moving", MOVING, **values)
    g.start()
    failures, served, done = [], [], threading.Event()

    def load():
        while not done.is_set():
            try:
                resp = g.request("GET", "/o/count", timeout=5)
                if resp.status != 200:
                    failures.append(resp.status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))
            served.append(1)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            target = "b" if i % 2 == 0 else "a"
            with open(g.config_path, "w") as f:
                f.write(MOVING.format(port=g.port, a=origin.port, b=origin_b.port,
                                      target=target))
            os.kill(g.pid, signal.SIGHUP)
            want = origin_b.port if target == "b" else origin.port

            def routed():
                echo = g.request("GET", "/o/echo", timeout=5).json()
                return echo.get("origin_port") == want
            assert wait_until(routed, 5), "reload %d did not move the route" % i
    finally:
        done.set()
        for t in threads:
            t.join(10)
        g.stop()
    assert failures == []
    assert len(served) >= 12  # traffic flowed through all six reloads


DEFERRED = """\
workers: 1
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners:
  - {{name: deferred, listen: "127.0.0.1:{port}", deferred_accept: 5s}}
  - {{name: at_once, listen: "127.0.0.1:{second}"}}
upstreams: [{{name: origin, endpoints: ["127.0.0.1:{origin}"]}}]
routes: [{{match: {{prefix: /o/}}, upstream: origin}}]
"""


def test_deferred_accept_waits_for_the_first_bytes(work_dir, origin):
    values = dict(origin=origin.port, admin=free_port(), second=free_port())
    g = Gateway(work_dir, "ops_deferred", DEFERRED, **values)
    g.start()

    def active(listener):
        text = http_get(values["admin"], "/metrics")[1]
        return metric(text, "ringgate_connections_active", listener=listener) or 0

    try:
        with Conn(g.port) as quiet, Conn(values["second"]):
            time.sleep(0.5)
            assert active("at_once") == 1  # accepted without a byte
            assert active("deferred") == 0  # still the kernel's
            quiet.send(request_bytes("GET", "/o/echo"))
            assert quiet.read_response().status == 200
            assert active("deferred") == 1
    finally:
        g.stop()
