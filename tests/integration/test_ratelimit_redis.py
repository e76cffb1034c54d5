"""Rate limits shared through a real redis-server (started here on a free
port, no persistence, stopped by PID): two gateways hold one global limit;
Redis killed, frozen or emptied mid-test; on_redis_error local, allow and
deny; back to the global limit when Redis returns."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import RUNNING, Gateway, Proc, free_port, require_binary

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
redis: {{address: "127.0.0.1:{redis}", timeout: 50ms}}
rate_limits:
  - {{name: fleet, key: route, rate: 1/h, burst: 20, backend: redis}}
  - {{name: per_key, key: "header:X-Api-Key", rate: 1/h, burst: 3, backend: redis}}
  - {{name: per_ip, key: ip, rate: 1/h, burst: 4, backend: redis}}
  - {{name: fast, key: route, rate: 2/s, burst: 1, backend: redis}}
  - {{name: fb_local, key: route, rate: 1/h, burst: 3, backend: redis, on_redis_error: local}}
  - {{name: fb_allow, key: route, rate: 1/h, burst: 1, backend: redis, on_redis_error: allow}}
  - {{name: fb_deny, key: route, rate: 1/h, burst: 1000, backend: redis, on_redis_error: deny}}
  - {{name: local_ip, key: ip, rate: 1/h, burst: 1000}}
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - {{match: {{prefix: /fleet/}}, upstream: origin, rate_limit: fleet}}
  - {{match: {{prefix: /two/}}, upstream: origin, rate_limit: [local_ip, per_key, per_ip]}}
  - {{match: {{prefix: /fast/}}, upstream: origin, rate_limit: fast}}
  - {{match: {{prefix: /local/}}, upstream: origin, rate_limit: fb_local}}
  - {{match: {{prefix: /allow/}}, upstream: origin, rate_limit: fb_allow}}
  - {{match: {{prefix: /deny/}}, upstream: origin, rate_limit: fb_deny}}
"""


class Redis(Proc):
    def __init__(self, work_dir, port):
        self.port = port
        super().__init__("redis", [REDIS, "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", work_dir],
                         os.path.join(work_dir, "redis.log"))

    def start(self):
        super().start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == "PONG":
                    RUNNING.append(self)
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start:\n" + self.log_text())

    def stop(self, term_wait=5.0):
        if self in RUNNING:
            RUNNING.remove(self)
        return super().stop(term_wait)

    def command(self, *args):
        """One command over RESP; returns the reply (simple types only)."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(out)
            f = s.makefile("rb")
            return read_reply(f)


def read_reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    raise RuntimeError("bad reply %r" % line)


@pytest.fixture(scope="module")
def redis(work_dir):
    r = Redis(work_dir, free_port())
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def pair(work_dir, origin, redis):
    """Two gateways of one fleet: same policies, same Redis."""
    gws = [Gateway(work_dir, "redis_rl_%d" % i, CONFIG, origin=origin.port, admin=free_port(),
                   redis=redis.port) for i in range(2)]
    for g in gws:
        g.start()
    wait_connected(gws)
    yield gws
    for g in gws:
        g.stop()


def metric(g, name, policy):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.values["admin"]) as r:
        m = re.search(r'^%s\{policy="%s"\} (\S+)$' % (name, policy), r.read().decode(), re.M)
    return float(m.group(1))


def wait_connected(gws, times=1, deadline_s=10):
    """Until both workers of every gateway have logged `times` connections."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if all(g.log_text(since=0).count(": connected\n") >= 2 * times for g in gws):
            return
        time.sleep(0.05)
    raise AssertionError("gateways did not connect to Redis")


def test_two_gateways_hold_one_global_limit(pair, redis, origin):
    a, b = pair
    statuses = []
    for i in range(30):
        resp = (a if i % 2 else b).request("GET", "/fleet/echo")
        statuses.append(resp.status)
        assert resp.header("RateLimit-Limit") == "20"
        if resp.status == 429:
            assert int(resp.header("Retry-After")) >= 1
            assert resp.json()["error"] == "rate_limited"
    assert statuses.count(200) == 20 and statuses.count(429) == 10
    assert statuses[:20] == [200] * 20
    assert metric(a, "ringgate_ratelimit_rejected_total", "fleet") + \
        metric(b, "ringgate_ratelimit_rejected_total", "fleet") == 10
    # The bucket is in Redis under its documented name, with a TTL.
    assert redis.command("EXISTS", "ringgate:rl:fleet:route0") == 1
    assert redis.command("PTTL", "ringgate:rl:fleet:route0") > 0
    assert metric(a, "ringgate_ratelimit_backend_errors_total", "fleet") == 0


def test_remaining_counts_down_across_the_fleet(pair):
    a, b = pair
    seen = []
    for i in range(4):
        resp = (a, b)[i % 2].request("GET", "/two/echo", headers=[("X-Api-Key", "carol")])
        seen.append((resp.status, resp.header("RateLimit-Remaining")))
    # per_key (burst 3) is the tightest: 2, 1, 0, then refused.
    assert seen == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]


def test_refusal_takes_no_token_from_the_other_policies(pair, redis):
    a, _ = pair
    # per_ip (burst 4) has given 3 tokens to carol and none for the refusal;
    # one more client key passes, then per_ip refuses.
    assert a.request("GET", "/two/echo", headers=[("X-Api-Key", "dave")]).status == 200
    resp = a.request("GET", "/two/echo", headers=[("X-Api-Key", "erin")])
    assert resp.status == 429 and "per_ip" in resp.json()["message"]
    assert redis.command("HGET", "ringgate:rl:per_key:erin", "d") == "0"


def test_redis_bucket_refills(pair):
    a, b = pair
    assert a.request("GET", "/fast/echo").status == 200
    resp = b.request("GET", "/fast/echo")
    assert resp.status == 429 and resp.header("Retry-After") == "1"
    time.sleep(0.6)  # two tokens a second
    assert b.request("GET", "/fast/echo").status == 200


def test_script_flushed_is_loaded_again(pair, redis):
    a, _ = pair
    redis.command("SCRIPT", "FLUSH")
    redis.command("DEL", "ringgate:rl:fleet:route0")
    assert a.request("GET", "/fleet/echo").status == 200
    assert redis.command("EXISTS", "ringgate:rl:fleet:route0") == 1
    assert metric(a, "ringgate_ratelimit_backend_errors_total", "fleet") == 0


def timed(g, path):
    t = time.monotonic()
    resp = g.request("GET", path, timeout=5)
    return resp, time.monotonic() - t


def test_frozen_redis_answers_within_the_timeout(pair, redis):
    a, _ = pair
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        for _ in range(3):
            resp, took = timed(a, "/allow/echo")
            assert resp.status == 200 and took < 1.0
            resp, took = timed(a, "/deny/echo")
            assert resp.status == 429 and took < 1.0
        assert metric(a, "ringgate_ratelimit_backend_errors_total", "fb_allow") == 3
        assert metric(a, "ringgate_ratelimit_backend_errors_total", "fb_deny") == 3
    finally:
        os.kill(redis.pid, signal.SIGCONT)


def test_redis_killed_then_restarted(pair, redis, origin):
    a, b = pair
    redis.stop()
    # local: the local bucket (burst 3) of each gateway takes over.
    local = [a.request("GET", "/local/echo").status for _ in range(5)]
    assert local == [200, 200, 200, 429, 429]
    # allow: everything passes; deny: nothing does. Fast, never a 5xx.
    for _ in range(3):
        resp, took = timed(b, "/allow/echo")
        assert resp.status == 200 and took < 1.0
        resp, took = timed(b, "/deny/echo")
        assert resp.status == 429 and took < 1.0
    assert metric(b, "ringgate_ratelimit_backend_errors_total", "fb_deny") >= 3
    # Back: the gateways reconnect (back-off at most 2 s) and share one
    # bucket again (Redis restarted empty).
    redis.start()
    wait_connected(pair, times=2)
    assert [g.request("GET", "/fleet/echo").header("RateLimit-Remaining")
            for g in (a, b, a, b)] == ["19", "18", "17", "16"]


def test_redis_backend_needs_a_redis_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('listeners: [{name: p, listen: "127.0.0.1:1"}]\n'
                    "rate_limits:\n"
                    "  - {name: x, key: ip, rate: 1/s, backend: redis}\n")
    out = subprocess.run([require_binary(), "-t", "-c", str(path)], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 1
    assert "bad.yaml:3:44: backend 'redis' needs a 'redis:' section" in out.stderr


def test_reload_moves_to_another_redis_and_back_to_local(work_dir, origin, redis):
    other = Redis(work_dir, free_port())
    other.start()
    g = Gateway(work_dir, "redis_rl_reload", CONFIG, origin=origin.port, admin=free_port(),
                redis=redis.port)
    g.start()
    try:
        wait_connected([g])
        assert g.request("GET", "/fleet/echo").status in (200, 429)
        # Point the fleet at the other server: its buckets start full.
        with open(g.config_path, "w") as f:
            f.write(CONFIG.format(**dict(g.values, redis=other.port)))
        os.kill(g.pid, signal.SIGHUP)
        wait_connected([g], times=2)
        resp = g.request("GET", "/fleet/echo")
        assert resp.status == 200 and resp.header("RateLimit-Remaining") == "19"
        assert other.command("EXISTS", "ringgate:rl:fleet:route0") == 1
        # No Redis policy left: the links close, the local limit applies.
        with open(g.config_path, "w") as f:
            f.write(CONFIG.format(**g.values).replace("backend: redis", "backend: local"))
        clients = other.command("INFO", "clients")
        os.kill(g.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while other.command("INFO", "clients") == clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.command("INFO", "clients") != clients
        resp = g.request("GET", "/fleet/echo")
        assert resp.status == 200 and resp.header("RateLimit-Remaining") == "19"
    finally:
        g.stop()
        other.stop()
