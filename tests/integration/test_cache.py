"""The shared HTTP cache (issue #8) against the real origin: what is stored
and what is not, freshness, revalidation, conditionals, HEAD and Range from
stored objects, Vary, request coalescing, stale-while-revalidate,
stale-if-error, purges through the admin listener, the memory bound, the
metrics, and answers over TLS.

Every test uses its own URL path; the origin counts requests per path
(origin.py `cached`, `cache-hits`, `cache-set`)."""

import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import REPO, Gateway, Origin, free_port, pattern_bytes, request_bytes

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
cache: {{memory: 32MiB, max_object: 1MiB}}
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
routes:
  - match: {{prefix: /c/}}
    upstream: origin
    cache: true
  - match: {{prefix: /swr/}}
    upstream: origin
    cache: {{stale_while_revalidate: 30s, stale_if_error: 5m}}
  - match: {{prefix: /sie/}}
    upstream: origin
    cache: {{stale_if_error: 5m}}
  - match: {{prefix: /plain/}}
    upstream: origin
"""


@pytest.fixture(scope="module")
def cgw(work_dir, origin):
    g = Gateway(work_dir, "cache", CONFIG, origin=origin.port, admin=free_port())
    g.start()
    yield g
    g.stop()


def unique(prefix="c"):
    return "/%s/%s/cached" % (prefix, uuid.uuid4().hex[:12])


def url(path, **q):
    return path + ("?" + urllib.parse.urlencode(q) if q else "")


def hits(origin, path):
    return origin.get_json("/cache-hits?path=" + urllib.parse.quote(path))


def origin_set(origin, path, fail=0, sleep_ms=0):
    origin.get_json("/cache-set?path=%s&fail=%d&sleep_ms=%d" %
                    (urllib.parse.quote(path), fail, sleep_ms))


def get(g, target, headers=(), method="GET"):
    return g.request(method, target, headers=list(headers))


def status_of(resp):
    return resp.header("Cache-Status", "")


def scrape(g):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.values["admin"],
                                timeout=5) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def admin(g, method, target):
    c_port = g.values["admin"]
    import socket
    with socket.create_connection(("127.0.0.1", c_port), timeout=5) as s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: admin\r\n\r\n" % (method, target)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# ---------------------------------------------------------------------------
# Storing


def test_hit_after_miss_origin_asked_once(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60")
    first = get(cgw, target)
    assert first.status == 200
    assert status_of(first) == "ringgate; fwd=miss; stored"
    for _ in range(3):
        again = get(cgw, target)
        assert again.status == 200 and again.body == first.body
        assert re.fullmatch(r"ringgate; hit; ttl=\d+", status_of(again)), again
        assert again.header("Age") is not None and int(again.header("Age")) >= 0
        assert again.header("Content-Length") == str(len(first.body))
    assert hits(origin, path)["hits"] == 1


def test_large_object_and_chunked_origin_are_stored_whole(cgw, origin):
    for chunked in ("0", "1"):
        path = unique()
        target = url(path, cc="max-age=60", n="300000", chunked=chunked)
        first = get(cgw, target)
        assert first.status == 200 and first.body == pattern_bytes(300000)
        again = get(cgw, target)
        assert again.body == pattern_bytes(300000)
        assert again.header("Content-Length") == "300000" and not again.chunked
        assert "hit" in status_of(again)
        assert hits(origin, path)["hits"] == 1


@pytest.mark.parametrize("q,detail", [
    ({"cc": "no-store, max-age=60"}, "no-store"),
    ({"cc": "private, max-age=60"}, "private"),
    ({"cc": "public, max-age=60", "cookie": "1"}, "set-cookie"),
    ({}, "not-useful"),  # heuristically cacheable, but no Last-Modified to base it on
    ({"code": "403"}, "no-freshness"),
])
def test_not_stored(cgw, origin, q, detail):
    path = unique()
    target = url(path, **q)
    for i in range(2):
        resp = get(cgw, target)
        assert resp.status == int(q.get("code", 200))
        assert "detail=%s" % detail in status_of(resp), resp
    assert hits(origin, path)["hits"] == 2


def test_authorization_rule(cgw, origin):
    auth = [("Authorization", "Bearer abc")]
    private = unique()
    for _ in range(2):
        assert get(cgw, url(private, cc="max-age=60"), auth).status == 200
    assert hits(origin, private)["hits"] == 2  # not stored without public / s-maxage
    shared = unique()
    for _ in range(2):
        resp = get(cgw, url(shared, cc="public, max-age=60"), auth)
    assert "hit" in status_of(resp)
    assert hits(origin, shared)["hits"] == 1


def test_larger_than_max_object_passes_through(cgw, origin):
    for chunked in ("0", "1"):
        path = unique()
        n = (1 << 20) + 4096
        target = url(path, cc="max-age=60", n=str(n), chunked=chunked)
        for _ in range(2):
            resp = get(cgw, target)
            assert resp.status == 200 and resp.body == pattern_bytes(n)
            assert "hit" not in status_of(resp)
        assert hits(origin, path)["hits"] == 2


def test_other_methods_bypass_and_unsafe_ones_invalidate(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60")
    get(cgw, target)
    assert "hit" in status_of(get(cgw, target))
    opt = get(cgw, target, method="OPTIONS")
    assert status_of(opt) == "ringgate; fwd=method"
    assert "hit" in status_of(get(cgw, target))  # OPTIONS is safe: still stored
    post = cgw.request("POST", target, body=b"x")
    assert post.status == 200 and status_of(post) == "ringgate; fwd=method"
    after = get(cgw, target)
    assert status_of(after) == "ringgate; fwd=miss; stored"  # RFC 9111 4.4
    assert hits(origin, path)["methods"] == ["GET", "OPTIONS", "POST", "GET"]


@pytest.mark.parametrize("header", ["loc", "cloc"])
def test_unsafe_request_invalidates_what_location_names_on_its_host(cgw, origin, header):
    """RFC 9111 4.4: Location and Content-Location of a successful unsafe
    request are invalidated when on the request's host, not elsewhere."""
    paths = [unique() for _ in range(4)]
    for p in paths:
        get(cgw, url(p, cc="max-age=60"))
        assert "hit" in status_of(get(cgw, url(p, cc="max-age=60")))
    named = [url(paths[0], cc="max-age=60"),                        # absolute path
             "http://TEST.local" + url(paths[1], cc="max-age=60"),  # same host, any case
             "http://other.example" + url(paths[2], cc="max-age=60"),  # another host
             "//test.local" + url(paths[3], cc="max-age=60")]       # network-path: not taken
    for n in named:
        post = cgw.request("POST", url(unique(), **{header: n + "#frag"}), body=b"x")
        assert post.status == 200, post
    after = [status_of(get(cgw, url(p, cc="max-age=60"))) for p in paths]
    assert after[0] == after[1] == "ringgate; fwd=miss; stored", after
    assert "hit" in after[2] and "hit" in after[3], after


def test_routes_without_cache_are_untouched(cgw, origin):
    path = unique("plain")
    for _ in range(2):
        resp = get(cgw, url(path, cc="max-age=60"))
        assert resp.header("Cache-Status") is None and resp.header("Age") is None
    assert hits(origin, path)["hits"] == 2


# ---------------------------------------------------------------------------
# Answering from stored objects


def test_client_conditional_answered_304_from_cache(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60", etag='"e1"')
    get(cgw, target)
    resp = get(cgw, target, [("If-None-Match", '"e1"')])
    assert resp.status == 304 and resp.body == b""
    assert resp.header("ETag") == '"e1"' and "hit" in status_of(resp)
    resp = get(cgw, target, [("If-None-Match", '"other"')])
    assert resp.status == 200
    seen = hits(origin, path)
    assert seen["hits"] == 1 and seen["inm"] == []


def test_conditional_on_a_miss_is_not_forwarded_when_filling(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60", etag='"e2"')
    resp = get(cgw, target, [("If-None-Match", '"e2"')])
    assert resp.status == 200  # the fill needs the whole response
    assert hits(origin, path)["inm"] == []
    assert get(cgw, target, [("If-None-Match", '"e2"')]).status == 304


def test_head_answered_from_stored_get(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60", n="5000")
    get(cgw, target)
    c = cgw.conn()
    c.send(request_bytes("HEAD", target))
    resp = c.read_response(method="HEAD")
    assert resp.status == 200 and resp.header("Content-Length") == "5000"
    assert "hit" in status_of(resp)
    c.send(request_bytes("GET", target))  # the connection carries on: no body was sent
    assert c.read_response().body == pattern_bytes(5000)
    c.close()
    assert hits(origin, path)["methods"] == ["GET"]


def test_range_from_stored_object(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60", n="1000", etag='"r"')
    whole = pattern_bytes(1000)
    get(cgw, target)
    resp = get(cgw, target, [("Range", "bytes=100-199")])
    assert resp.status == 206 and resp.body == whole[100:200]
    assert resp.header("Content-Range") == "bytes 100-199/1000"
    resp = get(cgw, target, [("Range", "bytes=-10")])
    assert resp.status == 206 and resp.body == whole[-10:]
    resp = get(cgw, target, [("Range", "bytes=5000-")])
    assert resp.status == 416 and resp.header("Content-Range") == "bytes */1000"
    resp = get(cgw, target, [("Range", "bytes=0-9"), ("If-Range", '"not-it"')])
    assert resp.status == 200 and resp.body == whole
    assert hits(origin, path)["hits"] == 1


def test_vary_variants(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60", vary="Accept-Language")
    for _ in range(2):
        for lang in ("en", "de", "fr"):
            resp = get(cgw, target, [("Accept-Language", lang)])
            assert resp.json()["vary_value"] == lang
    assert hits(origin, path)["hits"] == 3


def test_only_if_cached(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=60")
    resp = get(cgw, target, [("Cache-Control", "only-if-cached")])
    assert resp.status == 504
    get(cgw, target)
    assert get(cgw, target, [("Cache-Control", "only-if-cached")]).status == 200
    assert hits(origin, path)["hits"] == 1


def test_pipelined_hits_answered_in_order(cgw, origin):
    paths = [unique() for _ in range(3)]
    for p in paths:
        get(cgw, url(p, cc="max-age=60"))
    c = cgw.conn()
    c.send(b"".join(request_bytes("GET", url(p, cc="max-age=60")) for p in paths))
    for p in paths:
        assert c.read_response().json()["path"] == p
    c.close()


# ---------------------------------------------------------------------------
# Freshness, revalidation, stale


def test_expiry_then_revalidation_with_304(cgw, origin):
    path = unique()
    target = url(path, cc="max-age=1", etag='"v1"')
    first = get(cgw, target)
    assert first.header("X-Origin-Hit") == "1"
    time.sleep(2.2)
    resp = get(cgw, target)
    assert resp.status == 200 and resp.body == first.body
    assert status_of(resp).startswith("ringgate; fwd=stale; fwd-status=304"), resp
    assert resp.header("X-Origin-Hit") == "2"  # the stored head refreshed from the 304
    seen = hits(origin, path)
    assert seen["hits"] == 2 and seen["inm"] == ['"v1"']
    again = get(cgw, target)
    assert "hit" in status_of(again) and again.header("X-Origin-Hit") == "2"
    assert hits(origin, path)["hits"] == 2


def test_revalidation_answered_200_replaces_the_object(cgw, origin):
    path = unique()
    get(cgw, url(path, cc="max-age=1", lm="100"))
    time.sleep(2.2)
    # Without an ETag the validator is If-Modified-Since; the origin ignores it.
    resp = get(cgw, url(path, cc="max-age=1", lm="100"))
    assert resp.json()["hit"] == 2
    assert "fwd=stale; fwd-status=200; stored" in status_of(resp)
    assert len(hits(origin, path)["ims"]) == 1


def test_stale_while_revalidate_is_immediate_with_one_background_request(cgw, origin):
    path = unique("swr")
    target = url(path, cc="max-age=1", etag='"s1"')
    get(cgw, target)
    time.sleep(2.2)
    origin_set(origin, path, sleep_ms=1500)
    try:
        t = time.monotonic()
        resp = get(cgw, target)
        elapsed = time.monotonic() - t
        assert resp.status == 200 and elapsed < 0.5, elapsed
        assert "detail=stale-while-revalidate" in status_of(resp)
        again = get(cgw, target)  # during the refresh: stale again, no second request
        assert "stale-while-revalidate" in status_of(again)
        time.sleep(2.5)
    finally:
        origin_set(origin, path)
    seen = hits(origin, path)
    assert seen["hits"] == 2 and seen["inm"] == ['"s1"']
    refreshed = get(cgw, target)  # the stored head, refreshed by the background 304
    assert refreshed.header("X-Origin-Hit") == "2", refreshed


def test_stale_if_error_on_origin_503(cgw, origin):
    path = unique("sie")
    target = url(path, cc="max-age=1", etag='"f1"')
    first = get(cgw, target)
    time.sleep(2.2)
    origin_set(origin, path, fail=503)
    try:
        resp = get(cgw, target)
    finally:
        origin_set(origin, path)
    assert resp.status == 200 and resp.body == first.body
    assert status_of(resp) == "ringgate; fwd=stale; fwd-status=503; ttl=%s; detail=stale-if-error" \
        % status_of(resp).split("ttl=")[1].split(";")[0]
    # Without stale-if-error the origin's error goes through.
    plain = unique()
    get(cgw, url(plain, cc="max-age=1", etag='"f2"'))
    time.sleep(2.2)
    origin_set(origin, plain, fail=503)
    try:
        assert get(cgw, url(plain, cc="max-age=1", etag='"f2"')).status == 503
    finally:
        origin_set(origin, plain)


DOWN_CONFIG = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    connect_timeout: 500ms
    timeout: 2s
routes:
  - match: {{prefix: /}}
    upstream: origin
    cache: true
"""


def test_stale_if_error_when_the_origin_is_down(work_dir, gateway_factory):
    o = Origin(work_dir, "cache_down_origin")
    o.start()
    g = gateway_factory("down", DOWN_CONFIG, origin=o.port)
    try:
        target = url(unique(), cc="max-age=1, stale-if-error=600", etag='"d"')
        first = get(g, target)
        assert first.status == 200
        time.sleep(2.2)
    finally:
        o.stop()  # by PID
    resp = get(g, target)
    assert resp.status == 200 and resp.body == first.body
    assert "fwd=stale; fwd-status=502" in status_of(resp) and "stale-if-error" in status_of(resp)
    other = get(g, url(unique(), cc="max-age=60"))
    assert other.status == 502  # nothing stored for it


# ---------------------------------------------------------------------------
# Coalescing


def concurrent_gets(g, target, n):
    results = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait()
        try:
            results[i] = get(g, target)
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("n_bytes", [None, 1000000])
def test_fifty_concurrent_cold_requests_one_origin_fetch(cgw, origin, n_bytes):
    path = unique()
    q = {"cc": "max-age=60", "sleep_ms": "400"}
    if n_bytes:
        q["n"] = str(n_bytes)
    results = concurrent_gets(cgw, url(path, **q), 50)
    for r in results:
        assert not isinstance(r, Exception), r
        assert r.status == 200
        if n_bytes:
            assert r.body == pattern_bytes(n_bytes)
    if not n_bytes:
        assert len({r.body for r in results}) == 1
    assert hits(origin, path)["hits"] == 1
    collapsed = [r for r in results if "collapsed" in status_of(r)]
    assert collapsed, [status_of(r) for r in results]


def test_waiters_go_to_the_origin_when_the_fill_is_not_storable(cgw, origin):
    path = unique()
    results = concurrent_gets(cgw, url(path, cc="no-store", sleep_ms="300"), 5)
    assert all(not isinstance(r, Exception) and r.status == 200 for r in results), results
    assert hits(origin, path)["hits"] == 5


# ---------------------------------------------------------------------------
# Administration, metrics, memory


def test_purge_by_url_and_prefix(cgw, origin):
    base = "/c/%s" % uuid.uuid4().hex[:12]
    a, b = base + "/a/cached", base + "/b/cached"
    for p in (a, b):
        get(cgw, url(p, cc="max-age=60"))
        assert "hit" in status_of(get(cgw, url(p, cc="max-age=60")))
    key = "test.local" + url(a, cc="max-age=60")
    status, body = admin(cgw, "PURGE", "/cache?url=" + urllib.parse.quote(key, safe=""))
    assert status == 200 and b'"purged":1' in body
    assert "fwd=miss" in status_of(get(cgw, url(a, cc="max-age=60")))
    assert "hit" in status_of(get(cgw, url(b, cc="max-age=60")))
    status, body = admin(cgw, "DELETE", "/cache?prefix=" + urllib.parse.quote("TEST.local" + base + "/"))
    assert status == 200 and b'"purged":2' in body
    assert "fwd=miss" in status_of(get(cgw, url(b, cc="max-age=60")))
    assert admin(cgw, "PURGE", "/cache")[0] == 400
    assert admin(cgw, "PURGE", "/cache?url=%zz")[0] == 400
    assert admin(cgw, "GET", "/cache?url=x")[0] == 405
    # Purges only through the admin listener: on the public one PURGE is a method like any
    # other, forwarded (the test origin does not know it).
    public = cgw.request("PURGE", "/plain/cache?url=x")
    assert public.header("Server", "").startswith("ringgate-test-origin"), public


def test_metrics(cgw, origin):
    path = unique()
    get(cgw, url(path, cc="max-age=60"))
    get(cgw, url(path, cc="max-age=60"))
    get(cgw, url(path, cc="max-age=60"), method="OPTIONS")
    text = scrape(cgw)
    for result in ("hit", "miss", "stale", "bypass", "revalidated"):
        assert metric(text, "ringgate_cache_requests_total", '{result="%s"}' % result) is not None
    assert metric(text, "ringgate_cache_requests_total", '{result="hit"}') >= 1
    assert metric(text, "ringgate_cache_requests_total", '{result="miss"}') >= 1
    assert metric(text, "ringgate_cache_requests_total", '{result="bypass"}') >= 1
    assert 0 < metric(text, "ringgate_cache_bytes") <= 32 << 20
    # The cache's answers are counted as requests like any other.
    assert re.search(r'^ringgate_requests_total\{listener="public",route="route0",code="200"\} \d+',
                     text, re.M)


MEMORY_CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
cache: {{memory: 2MiB, max_object: 256KiB}}
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - match: {{prefix: /}}
    upstream: origin
    cache: true
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.timeout(120)
def test_memory_bound_held_with_ten_times_the_budget(gateway_factory, origin):
    g = gateway_factory("memory", MEMORY_CONFIG, origin=origin.port, admin=free_port())
    budget = 2 << 20
    base = "/m/%s" % uuid.uuid4().hex[:8]
    hot = url(base + "/hot/cached", cc="max-age=600", n="1000")
    get(g, hot)
    rss_before = rss_kib(g.pid)
    peak = 0
    n_objects = 10 * budget // 65536  # ten times the budget of distinct objects
    for i in range(n_objects):
        resp = get(g, url("%s/%d/cached" % (base, i), cc="max-age=600", n="65536"))
        assert resp.status == 200 and len(resp.body) == 65536
        if i % 8 == 0:
            get(g, hot)  # a hot key survives the scan (SIEVE)
        if i % 32 == 0:
            peak = max(peak, metric(scrape(g), "ringgate_cache_bytes"))
    peak = max(peak, metric(scrape(g), "ringgate_cache_bytes"))
    assert 0 < peak <= budget
    assert "hit" in status_of(get(g, hot))
    if not os.environ.get("RINGGATE_SANITIZED"):
        assert rss_kib(g.pid) - rss_before < 64 * 1024  # KiB: bounded, not 20 MiB more per pass
    # Everything stored is still served whole.
    resp = get(g, url("%s/%d/cached" % (base, n_objects - 1), cc="max-age=600", n="65536"))
    assert resp.body == pattern_bytes(65536)


# ---------------------------------------------------------------------------
# TLS: the body goes out of the object's memory through the TLS engine

GEN = os.path.join(REPO, "tests", "unit", "fixtures", "tls", "gen-certs.sh")

TLS_CONFIG = """\
workers: 1
access_log: "off"
listeners:
  - name: secure
    listen: "127.0.0.1:{port}"
    tls:
      certificates: [{{cert: "{certs}/ecdsa.pem", key: "{certs}/ecdsa.key"}}]
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - match: {{prefix: /swr/}}
    upstream: origin
    cache: {{stale_while_revalidate: 30s}}
  - match: {{prefix: /}}
    upstream: origin
    cache: true
"""


def tls_gateway(gateway_factory, origin, tmp_path):
    certs = str(tmp_path)
    subprocess.run(["sh", GEN, certs], check=True, capture_output=True, timeout=60)
    return gateway_factory("tls", TLS_CONFIG, origin=origin.port, certs=certs), certs


def curl_tls(g, certs, target, body_path):
    """GET over TLS with curl; returns the response head as text."""
    proc = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "--cacert", os.path.join(certs, "ca.pem"),
         "--resolve", "a.example.com:%d:127.0.0.1" % g.port, "-D", "-", "-o",
         str(body_path), "https://a.example.com:%d%s" % (g.port, target)],
        capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                    reason="openssl and curl are needed")
def test_hits_over_tls(gateway_factory, origin, tmp_path):
    g, certs = tls_gateway(gateway_factory, origin, tmp_path)
    path = unique()
    target = url(path, cc="max-age=60", n="700000")
    outs = []
    for _ in range(3):
        outs.append(curl_tls(g, certs, target, tmp_path / "body"))
        assert (tmp_path / "body").read_bytes() == pattern_bytes(700000)
    assert "fwd=miss; stored" in outs[0]
    assert "cache-status: ringgate; hit" in outs[2].lower()
    assert hits(origin, path)["hits"] == 1


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                    reason="openssl and curl are needed")
def test_background_refresh_over_tls_says_https(gateway_factory, origin, tmp_path):
    """The refresh runs without a client connection, on behalf of one that
    came over TLS: the origin must see the scheme the client used."""
    g, certs = tls_gateway(gateway_factory, origin, tmp_path)
    path = unique("swr")
    target = url(path, cc="max-age=1", etag='"t1"')
    curl_tls(g, certs, target, tmp_path / "body")
    time.sleep(2.2)
    assert "stale-while-revalidate" in curl_tls(g, certs, target, tmp_path / "body").lower()
    deadline = time.monotonic() + 5
    while hits(origin, path)["hits"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hits(origin, path)["proto"] == ["https", "https"]
