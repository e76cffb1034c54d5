"""WebSocket tunnels: a real client and a real server (python3-websockets)
through ringgate; handshake checks; tunnels surviving reloads; upgrade
smuggling."""

import asyncio
import os
import random
import signal
import socket
import time

import pytest
import websockets

from conftest import HERE, Gateway, Origin, request_bytes

CONFIG = """\
workers: 2
shutdown_timeout: 2s
access_log: "off"
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: ws
    endpoints: ["127.0.0.1:{ws}"]
    connect_timeout: 5s
    timeout: 5s
    circuit_breaker: {{max_connections: 30000, max_pending: 1000}}
  - name: http
    endpoints: ["127.0.0.1:{http}"]
    timeout: 5s
routes:
  - name: ws
    match: {{prefix: /ws/}}
    upstream: ws
    websocket: true
  - name: plain
    match: {{prefix: /plain/}}
    upstream: http
  - name: wshttp
    match: {{prefix: /wshttp/}}
    upstream: http
    websocket: true
  - name: raw
    match: {{prefix: /raw/}}
    upstream: http
    upgrade: [x-echo]
"""


@pytest.fixture(scope="module")
def ws_origin(work_dir):
    o = Origin(work_dir, "ws_origin", script=os.path.join(HERE, "ws_origin.py"))
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def wsgw(work_dir, ws_origin, origin):
    g = Gateway(work_dir, "ws", CONFIG, ws=ws_origin.port, http=origin.port)
    g.start()
    yield g
    g.stop()


def url(g, path):
    return "ws://127.0.0.1:%d%s" % (g.port, path)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_echo_text_and_binary_up_to_1mib(wsgw):
    rng = random.Random(7)
    sizes = [rng.choice([1, 10, 125, 126, 1000, 65535, 65536, 100000]) for _ in range(990)]
    sizes += [1 << 20] * 10

    async def go():
        async with websockets.connect(url(wsgw, "/ws/echo"), max_size=4 << 20,
                                      ping_interval=None) as ws:
            for i, n in enumerate(sizes):
                if i % 2:
                    msg = bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
                    msg = msg[:n]
                else:
                    msg = ("x%d-" % i) * (n // 6 + 1)
                    msg = msg[:n]
                await ws.send(msg)
                assert await ws.recv() == msg
    run(go(), 120)


def test_ping_pong_and_client_close(wsgw):
    async def go():
        ws = await websockets.connect(url(wsgw, "/ws/echo"), ping_interval=None)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        await ws.close(1000, "done")
        assert ws.close_code == 1000
    run(go())


def test_origin_close_reaches_client(wsgw):
    async def go():
        async with websockets.connect(url(wsgw, "/ws/close-4001"), ping_interval=None) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 4001
    run(go())


def test_origin_dies_mid_tunnel(work_dir, origin):
    ws_o = Origin(work_dir, "ws_origin_dying", script=os.path.join(HERE, "ws_origin.py"))
    ws_o.start()
    g = Gateway(work_dir, "ws_dying", CONFIG, ws=ws_o.port, http=origin.port)
    g.start()
    try:
        async def go():
            async with websockets.connect(url(g, "/ws/echo"), ping_interval=None) as ws:
                await ws.send("one")
                assert await ws.recv() == "one"
                os.kill(ws_o.pid, signal.SIGKILL)
                started = time.monotonic()
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert time.monotonic() - started < 5
        run(go())
    finally:
        g.stop()
        ws_o.stop()


def test_handshake_without_key_is_400(wsgw):
    resp = wsgw.request("GET", "/ws/echo", headers=[("Connection", "Upgrade"),
                                                     ("Upgrade", "websocket"),
                                                     ("Sec-WebSocket-Version", "13")])
    assert resp.status == 400


def test_handshake_wrong_version_is_426(wsgw):
    resp = wsgw.request("GET", "/ws/echo", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "8")])
    assert resp.status == 426
    assert resp.header("Sec-WebSocket-Version") == "13"


def test_upgrade_on_plain_route_is_served_as_http(wsgw, origin):
    resp = wsgw.request("GET", "/plain/echo", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")])
    assert resp.status == 200
    names = [h[0].lower() for h in resp.json()["headers"]]
    assert "upgrade" not in names and "connection" not in names


def test_non_101_answer_keeps_http_and_parses_smuggled_request(wsgw, origin):
    """The origin (plain HTTP) answers the handshake with 200: the bytes the
    client sent after it are an HTTP request, parsed and routed as such,
    never tunnelled."""
    origin.reset_log()
    handshake = request_bytes("GET", "/wshttp/echo?first", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")])
    smuggled = request_bytes("GET", "/plain/echo?smuggled")
    with wsgw.conn(timeout=5) as c:
        c.send(handshake + smuggled)
        first = c.read_response()
        second = c.read_response()
    assert first.status == 200 and second.status == 200
    assert second.json()["path"] == "/plain/echo"
    log = origin.log()
    assert any("smuggled" in line for line in log)


def test_tunnels_survive_reloads(wsgw):
    """200 tunnels keep exchanging messages while the configuration is
    reloaded 5 times, the last time without their route and upstream."""
    original = wsgw.config_text
    without_ws = original.replace("""  - name: ws
    match: {prefix: /ws/}
    upstream: ws
    websocket: true
""", "").replace("""  - name: ws
    endpoints: ["127.0.0.1:%d"]
    connect_timeout: 5s
    timeout: 5s
    circuit_breaker: {max_connections: 30000, max_pending: 1000}
""" % wsgw.values["ws"], "")
    assert without_ws != original and "/ws/" not in without_ws
    variants = [original.replace("timeout: 5s", "timeout: %ds" % (6 + i)) for i in range(4)]
    variants.append(without_ws)

    async def go():
        conns = [await websockets.connect(url(wsgw, "/ws/echo"), ping_interval=None)
                 for _ in range(200)]
        sent = 0

        async def round_trip(i, ws, tag):
            msg = "%s-%d" % (tag, i)
            await ws.send(msg)
            assert await asyncio.wait_for(ws.recv(), 10) == msg

        for n, text in enumerate(variants):
            with open(wsgw.config_path, "w") as f:
                f.write(text)
            os.kill(wsgw.pid, signal.SIGHUP)
            for k in range(5):
                await asyncio.gather(*(round_trip(i, ws, "r%d.%d" % (n, k))
                                       for i, ws in enumerate(conns)))
                sent += len(conns)
                await asyncio.sleep(0.1)
        for ws in conns:
            await ws.close()
        return sent

    try:
        assert run(go(), 120) == 200 * 5 * 5
        assert "reload rejected" not in wsgw.log_text()
    finally:
        with open(wsgw.config_path, "w") as f:
            f.write(original)
        os.kill(wsgw.pid, signal.SIGHUP)
        time.sleep(0.5)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.timeout(240)
def test_many_idle_tunnels_memory(wsgw, ws_origin):
    """Holds 10 000 idle tunnels open (RINGGATE_TUNNELS; fewer if the
    descriptor limit cannot fit them: each costs ringgate two) and reports ringgate's memory per
    tunnel; then checks that they all still carry a message."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(int(os.environ.get("RINGGATE_TUNNELS", "10000")), (hard - 1000) // 2)
    if n < 100:
        pytest.skip("descriptor limit %d too low for a meaningful count" % hard)
    before = rss_kib(wsgw.pid)

    async def go():
        conns = []
        for start in range(0, n, 250):
            batch = [websockets.connect(url(wsgw, "/ws/echo"), ping_interval=None,
                                        close_timeout=1) for _ in range(min(250, n - start))]
            conns += await asyncio.gather(*batch)
        await asyncio.sleep(0.5)
        during = rss_kib(wsgw.pid)
        for ws in conns[:: max(1, n // 200)]:
            await ws.send("still there")
            assert await asyncio.wait_for(ws.recv(), 10) == "still there"
        await asyncio.gather(*(ws.close() for ws in conns))
        return during

    during = run(go(), 200)
    per_tunnel = (during - before) * 1024 / n
    with open(os.path.join(os.path.dirname(wsgw.config_path), "tunnel-memory.txt"), "w") as f:
        f.write("%d tunnels: ringgate RSS %d KiB -> %d KiB, %.0f bytes per tunnel\n"
                % (n, before, during, per_tunnel))
    print("\n%d idle tunnels: %.0f bytes of ringgate memory each" % (n, per_tunnel))
    if not os.environ.get("RINGGATE_SANITIZED"):
        assert per_tunnel < 8192, "%.0f bytes per idle tunnel" % per_tunnel
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


CAPPED = """\
workers: 2
access_log: "off"
listeners:
  - name: capped
    listen: "127.0.0.1:{port}"
    max_tunnels: 2
upstreams:
  - name: ws
    endpoints: ["127.0.0.1:{ws}"]
routes:
  - match: {{prefix: /ws/}}
    upstream: ws
    websocket: true
"""


def test_max_tunnels_per_listener(gateway_factory, ws_origin):
    g = gateway_factory("capped", CAPPED, ws=ws_origin.port)

    async def go():
        a = await websockets.connect(url(g, "/ws/echo"), ping_interval=None)
        b = await websockets.connect(url(g, "/ws/echo"), ping_interval=None)
        with pytest.raises(websockets.InvalidStatusCode) as refused:
            await websockets.connect(url(g, "/ws/echo"), ping_interval=None)
        assert refused.value.status_code == 503
        await a.close()
        await asyncio.sleep(0.3)  # the slot comes back when the tunnel ends
        c = await websockets.connect(url(g, "/ws/echo"), ping_interval=None)
        await c.send("third")
        assert await c.recv() == "third"
        await b.close()
        await c.close()
    run(go())


def test_connect_method_refused(wsgw, origin):
    origin.reset_log()
    with wsgw.conn(timeout=5) as c:
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        resp = c.read_response(method="CONNECT")
    assert resp.status == 405
    assert not any("CONNECT" in line for line in origin.log())


SHORT_DRAIN = CONFIG.replace("shutdown_timeout: 2s", "shutdown_timeout: 1s")


def test_sigterm_ends_tunnels_with_close_frame(work_dir, ws_origin, origin):
    g = Gateway(work_dir, "ws_term", SHORT_DRAIN, ws=ws_origin.port, http=origin.port)
    g.start()

    async def go():
        async with websockets.connect(url(g, "/ws/echo"), ping_interval=None) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            started = time.monotonic()
            os.kill(g.pid, signal.SIGTERM)
            # The tunnel keeps flowing during the drain...
            await ws.send("during")
            assert await ws.recv() == "during"
            # ...and ends after shutdown_timeout with a close frame.
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001
            assert time.monotonic() - started >= 0.9
    try:
        run(go())
        g.proc.wait(10)
        assert g.proc.returncode == 0
    finally:
        g.stop()


def test_configured_upgrade_protocol_is_tunnelled(wsgw):
    """A route's `upgrade:` protocol (not WebSocket) is forwarded and, on
    the origin's 101, tunnelled as raw bytes both ways."""
    with wsgw.conn(timeout=5) as c:
        c.send(request_bytes("GET", "/raw/upgrade-echo", headers=[("Connection", "Upgrade"),
                                                                  ("Upgrade", "x-echo")]))
        head = c.read_head(time.monotonic() + 5)
        assert head.status == 101, head
        assert head.header("Upgrade") == "x-echo"
        for payload in (b"ping", b"\x00\xff" * 5000):
            c.send(payload)
            got, c.buf = c.buf, b""
            deadline = time.monotonic() + 5
            while len(got) < len(payload) and time.monotonic() < deadline:
                c.sock.settimeout(1)
                got += c.sock.recv(65536)
            assert got == payload
        # Half-close passes through: the origin sees the end of our stream,
        # finishes, and its close comes back.
        c.sock.shutdown(socket.SHUT_WR)
        c.sock.settimeout(5)
        assert c.sock.recv(10) == b""


def test_unconfigured_upgrade_is_plain_http(wsgw, origin):
    resp = wsgw.request("GET", "/raw/echo", headers=[("Connection", "Upgrade"),
                                                      ("Upgrade", "other-proto")])
    assert resp.status == 200
    names = [h[0].lower() for h in resp.json()["headers"]]
    assert "upgrade" not in names


FILTERED = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
jwt_providers: [{{name: main, secret: "{secret}"}}]
rate_limits: [{{name: handshakes, key: ip, rate: 1/h, burst: 2}}]
upstreams: [{{name: ws, endpoints: ["127.0.0.1:{ws}"]}}]
routes:
  - {{match: {{prefix: /ws/}}, upstream: ws, websocket: true, jwt: main, rate_limit: handshakes}}
"""


def test_jwt_and_rate_limit_apply_to_the_handshake(gateway_factory, ws_origin):
    import base64
    jwt = pytest.importorskip("jwt")
    secret = b"w" * 32
    g = gateway_factory("ws_filtered", FILTERED, ws=ws_origin.port,
                        secret=base64.urlsafe_b64encode(secret).rstrip(b"=").decode())
    tok = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, secret, algorithm="HS256")

    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as no_token:
            await websockets.connect(url(g, "/ws/echo"), ping_interval=None)
        assert no_token.value.status_code == 401
        auth = {"Authorization": "Bearer " + tok}
        async with websockets.connect(url(g, "/ws/echo"), ping_interval=None,
                                      extra_headers=auth) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        with pytest.raises(websockets.InvalidStatusCode) as limited:  # burst 2 spent
            await websockets.connect(url(g, "/ws/echo"), ping_interval=None,
                                     extra_headers=auth)
        assert limited.value.status_code == 429
    run(go())
