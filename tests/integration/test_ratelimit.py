"""Token-bucket rate limiting, local backend: 429 with Retry-After and the
RateLimit-* headers, keys by IP, header and JWT claim, exact across
workers, refill over time."""

import base64
import re
import time
import urllib.request

import pytest

from conftest import Gateway, free_port

jwt = pytest.importorskip("jwt")
SECRET = b"k" * 32

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
jwt_providers:
  - name: main
    secret: "{secret}"
rate_limits:
  - {{name: per_ip, key: ip, rate: 1/h, burst: 5}}
  - {{name: per_key, key: "header:X-Api-Key", rate: 1/h, burst: 3}}
  - {{name: per_user, key: jwt.sub, rate: 1/h, burst: 2}}
  - {{name: exact, key: route, rate: 1/h, burst: 20}}
  - {{name: refill, key: route, rate: 1/s, burst: 1}}
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - {{match: {{prefix: /ip/}}, upstream: origin, rate_limit: per_ip}}
  - {{match: {{prefix: /key/}}, upstream: origin, rate_limit: per_key}}
  - {{match: {{prefix: /user/}}, upstream: origin, jwt: main, rate_limit: [per_key, per_user]}}
  - {{match: {{prefix: /exact/}}, upstream: origin, rate_limit: exact}}
  - {{match: {{prefix: /refill/}}, upstream: origin, rate_limit: refill}}
"""


@pytest.fixture(scope="module")
def rl(work_dir, origin):
    g = Gateway(work_dir, "ratelimit", CONFIG, origin=origin.port, admin=free_port(),
                secret=base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode())
    g.start()
    yield g
    g.stop()


def rejected(g, policy):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.values["admin"]) as r:
        m = re.search(r'^ringgate_ratelimit_rejected_total\{policy="%s"\} (\S+)$' % policy,
                      r.read().decode(), re.M)
    return float(m.group(1))


def test_per_ip_limit_headers_and_429(rl, origin):
    for i in range(5):
        resp = rl.request("GET", "/ip/echo")
        assert resp.status == 200
        assert resp.header("RateLimit-Limit") == "5"
        assert resp.header("RateLimit-Remaining") == str(4 - i)
        assert int(resp.header("RateLimit-Reset")) > 0
    origin.reset_log()
    resp = rl.request("GET", "/ip/echo?over")
    assert resp.status == 429
    assert int(resp.header("Retry-After")) >= 1
    assert resp.header("RateLimit-Remaining") == "0"
    assert resp.json()["error"] == "rate_limited"
    assert not any("over" in line for line in origin.log())
    assert rejected(rl, "per_ip") == 1


def test_header_key_separates_clients(rl):
    for _ in range(3):
        assert rl.request("GET", "/key/echo", headers=[("X-Api-Key", "alice")]).status == 200
    assert rl.request("GET", "/key/echo", headers=[("X-Api-Key", "alice")]).status == 429
    assert rl.request("GET", "/key/echo", headers=[("X-Api-Key", "bob")]).status == 200


def test_jwt_claim_key_after_auth(rl):
    def tok(sub):
        return jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    ann, ben = tok("ann"), tok("ben")
    h = lambda t, k: [("Authorization", "Bearer " + t), ("X-Api-Key", k)]  # noqa: E731
    assert rl.request("GET", "/user/echo", headers=h(ann, "k1")).status == 200
    assert rl.request("GET", "/user/echo", headers=h(ann, "k2")).status == 200
    resp = rl.request("GET", "/user/echo", headers=h(ann, "k3"))
    assert resp.status == 429 and "per_user" in resp.json()["message"]
    assert rl.request("GET", "/user/echo", headers=h(ben, "k4")).status == 200
    # Without a token: 401 before any per-user bucket is touched.
    assert rl.request("GET", "/user/echo", headers=[("X-Api-Key", "k5")]).status == 401


def test_limit_is_exact_across_workers(rl):
    statuses = [rl.request("GET", "/exact/echo").status for _ in range(60)]
    assert statuses.count(200) == 20 and statuses.count(429) == 40


def test_bucket_refills(rl):
    assert rl.request("GET", "/refill/echo").status == 200
    assert rl.request("GET", "/refill/echo").status == 429
    time.sleep(1.1)  # one token a second
    assert rl.request("GET", "/refill/echo").status == 200
