"""Upstream resilience with real origins on loopback: retries past a dead
endpoint, circuit breakers, health checks, the retry budget."""

import os
import re
import signal
import socket
import time
import urllib.request

import pytest

from conftest import Gateway, Origin, free_port, wait_until


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def gauge(text, name, endpoint):
    m = re.search(r'^%s\{upstream="[^"]*",endpoint="%s"\} (\S+)$' % (name, re.escape(endpoint)),
                  text, re.M)
    return float(m.group(1)) if m else None


DEAD_AMONG_LIVE = """\
workers: 2
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: mixed
    endpoints: ["127.0.0.1:{live}", "127.0.0.1:{dead}", "127.0.0.1:{live_b}"]
    connect_timeout: 500ms
routes:
  - match: {{prefix: /}}
    upstream: mixed
"""


def test_dead_endpoint_among_live_ones_costs_no_failed_request(gateway_factory, origin,
                                                                origin_b):
    g = gateway_factory("dead_among_live", DEAD_AMONG_LIVE, live=origin.port,
                        live_b=origin_b.port, dead=free_port())
    statuses = [g.request("GET", "/echo?i=%d" % i).status for i in range(60)]
    assert statuses == [200] * 60


BREAKER = """\
workers: 1
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: flaky
    endpoints: ["127.0.0.1:{origin}"]
    circuit_breaker: {{failures: 3, open_for: 2s}}
    retries: {{attempts: 0}}
routes:
  - match: {{prefix: /}}
    upstream: flaky
"""


def test_breaker_opens_answers_503_fast_and_recovers(gateway_factory, origin):
    admin = free_port()
    g = gateway_factory("breaker", BREAKER, origin=origin.port, admin=admin)
    endpoint = "127.0.0.1:%d" % origin.port
    origin.reset_log()

    failing = []
    for _ in range(3):
        t = time.monotonic()
        assert g.request("GET", "/status?code=500&sleep_ms=200").status == 500
        failing.append(time.monotonic() - t)
    assert gauge(scrape(admin), "ringgate_circuit_breaker_state", endpoint) == 2
    reached = len(origin.log())

    open_times = []
    for _ in range(10):
        t = time.monotonic()
        resp = g.request("GET", "/status?code=500&sleep_ms=200")
        open_times.append(time.monotonic() - t)
        assert resp.status == 503
        assert int(resp.header("Retry-After")) >= 1
        assert resp.json()["error"] == "service_unavailable"
    assert len(origin.log()) == reached, "requests reached the origin while the circuit was open"
    ratio = (sum(failing) / len(failing)) / (sum(open_times) / len(open_times))
    print("\nfailing requests took %.1fx as long as answers from the open circuit" % ratio)
    assert ratio > 5

    time.sleep(2.2)  # open_for: the next request is a half-open probe
    assert g.request("GET", "/echo").status == 200
    assert gauge(scrape(admin), "ringgate_circuit_breaker_state", endpoint) == 0
    assert g.request("GET", "/echo").status == 200


HEALTH = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: checked
    endpoints: ["127.0.0.1:{a}", "127.0.0.1:{b}"]
    health_check: {{path: /status, interval: 200ms, timeout: 200ms, healthy: 2, unhealthy: 2}}
    retries: {{attempts: 0}}
    connect_timeout: 300ms
routes:
  - match: {{prefix: /}}
    upstream: checked
"""


def test_health_checks_take_endpoint_out_and_back(work_dir, gateway_factory, origin):
    b = Origin(work_dir, "health_b")
    b.start()
    admin = free_port()
    g = gateway_factory("health", HEALTH, a=origin.port, b=b.port, admin=admin)
    b_name = "127.0.0.1:%d" % b.port
    assert wait_until(lambda: gauge(scrape(admin), "ringgate_endpoint_healthy", b_name) == 1, 3)
    port_b = b.port
    b.stop()
    assert wait_until(lambda: gauge(scrape(admin), "ringgate_endpoint_healthy", b_name) == 0, 5)
    # With b out and no retries, every request still succeeds on a.
    assert [g.request("GET", "/echo").status for _ in range(20)] == [200] * 20
    # b comes back on the same port.
    b2 = Origin(work_dir, "health_b2")
    b2.port = port_b
    b2.argv[-1] = str(port_b)
    b2.start()
    try:
        assert wait_until(lambda: gauge(scrape(admin), "ringgate_endpoint_healthy", b_name) == 1,
                          5)
        ports = {g.request("GET", "/echo").json()["origin_port"] for _ in range(10)}
        assert port_b in ports
    finally:
        b2.stop()


BUDGET = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: overloaded
    endpoints: ["127.0.0.1:{origin}"]
    circuit_breaker: {{failures: 0}}
    retries: {{attempts: 3, on: [503]}}
routes:
  - match: {{prefix: /}}
    upstream: overloaded
"""


def test_retry_budget_caps_extra_load(gateway_factory, origin):
    g = gateway_factory("budget", BUDGET, origin=origin.port)
    origin.reset_log()
    n = 200
    for _ in range(n):
        assert g.request("GET", "/status?code=503").status == 503
    seen = len([line for line in origin.log() if "status?code=503" in line])
    # Without a budget, 3 retries each would make 4n attempts.
    print("\n%d requests caused %d origin attempts (%.0f%% extra)" % (n, seen,
                                                                      100.0 * (seen - n) / n))
    assert n < seen <= n * 1.2 + 10 + 1


BALANCED = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: weighted
    endpoints: [{{address: "127.0.0.1:{a}", weight: 3}}, "127.0.0.1:{b}"]
  - name: sticky
    endpoints: ["127.0.0.1:{a}", "127.0.0.1:{b}"]
    balance: hash
    hash_key: "header:X-User"
routes:
  - {{match: {{prefix: /w/}}, upstream: weighted}}
  - {{match: {{prefix: /s/}}, upstream: sticky}}
"""


def test_weights_and_consistent_hash(gateway_factory, origin, origin_b):
    g = gateway_factory("balanced", BALANCED, a=origin.port, b=origin_b.port)
    ports = [g.request("GET", "/w/echo").json()["origin_port"] for _ in range(40)]
    assert ports.count(origin.port) == 30 and ports.count(origin_b.port) == 10
    seen = {}
    for user in ["u%d" % i for i in range(40)]:
        first = g.request("GET", "/s/echo", headers=[("X-User", user)]).json()["origin_port"]
        for _ in range(3):
            again = g.request("GET", "/s/echo", headers=[("X-User", user)]).json()
            assert again["origin_port"] == first, "user %s moved" % user
        seen[user] = first
    assert set(seen.values()) == {origin.port, origin_b.port}


LIMITED = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: small
    endpoints: ["127.0.0.1:{origin}"]
    keepalive: 0
    circuit_breaker: {{max_connections: 2}}
routes:
  - {{match: {{prefix: /}}, upstream: small}}
"""


def test_max_connections_answers_503_at_once(gateway_factory, origin):
    import threading
    g = gateway_factory("limited", LIMITED, origin=origin.port)
    slow = [threading.Thread(target=lambda: g.request("GET", "/sleep?ms=1500")) for _ in range(2)]
    for t in slow:
        t.start()
    time.sleep(0.4)
    started = time.monotonic()
    resp = g.request("GET", "/echo")
    assert resp.status == 503 and resp.header("Retry-After") == "1"
    assert time.monotonic() - started < 0.5
    for t in slow:
        t.join(10)
    assert g.request("GET", "/echo").status == 200
