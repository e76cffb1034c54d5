"""TLS termination with real clients (curl, openssl s_client): versions,
SNI, ALPN, resumption, plain HTTP on the TLS port, large bodies, bad
certificates at load, certificates swapped by a reload."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO, Gateway, free_port

GEN = os.path.join(REPO, "tests", "unit", "fixtures", "tls", "gen-certs.sh")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("curl") is None,
                                reason="openssl and curl are needed")

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
limits: {{max_body_bytes: 32MiB}}
listeners:
  - name: secure
    listen: "127.0.0.1:{port}"
    tls:
      certificates:
        - {{cert: "{certs}/rsa.pem", key: "{certs}/rsa.key"}}
        - {{cert: "{certs}/ecdsa.pem", key: "{certs}/ecdsa.key"}}
      min_version: "{min_version}"
      alpn: [http/1.1]
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - match: {{prefix: /}}
    upstream: origin
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("certs"))
    subprocess.run(["sh", GEN, out], check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def tls_gw(work_dir, origin, certs):
    g = Gateway(work_dir, "tls", CONFIG, origin=origin.port, certs=certs, admin=free_port(),
                min_version="1.2")
    g.start()
    yield g
    g.stop()


def curl(g, certs, path, name="a.example.com", extra=()):
    argv = ["curl", "-sS", "--max-time", "30", "--cacert", os.path.join(certs, "ca.pem"),
            "--resolve", "%s:%d:127.0.0.1" % (name, g.port), "-o", "-",
            "-w", "\n%{http_code} %{ssl_verify_result}"] + list(extra) + \
        ["https://%s:%d%s" % (name, g.port, path)]
    proc = subprocess.run(argv, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    body, _, tail = proc.stdout.rpartition(b"\n")
    status, verify = tail.decode().split()
    return int(status), int(verify), body


def s_client(g, certs, *args, data=b""):
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % g.port, "-CAfile",
            os.path.join(certs, "ca.pem")] + list(args)
    proc = subprocess.run(argv, input=data, capture_output=True, timeout=30)
    return proc.stdout.decode("latin1") + proc.stderr.decode("latin1")


def test_https_request_verified_with_sni(tls_gw, certs):
    status, verify, body = curl(tls_gw, certs, "/echo", name="a.example.com")
    assert (status, verify) == (200, 0)
    headers = dict((k.lower(), v) for k, v in __import__("json").loads(body)["headers"])
    assert headers["x-forwarded-proto"] == "https"


@pytest.mark.parametrize("name,subject", [("a.example.com", "CN = example.com"),
                                          ("www.rsa.test", "CN = rsa.test"),
                                          ("unknown.test", "CN = rsa.test")])
def test_certificate_chosen_by_sni(tls_gw, certs, name, subject):
    out = s_client(tls_gw, certs, "-servername", name)
    assert "subject=%s" % subject in out, out


@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_versions_and_alpn(tls_gw, certs, flag, version):
    out = s_client(tls_gw, certs, flag, "-servername", "a.example.com", "-alpn", "http/1.1")
    assert re.search(r"New, %s," % re.escape(version), out), out
    assert "ALPN protocol: http/1.1" in out
    assert "Verify return code: 0 (ok)" in out


def test_tls11_refused(tls_gw, certs):
    out = s_client(tls_gw, certs, "-tls1_1", "-servername", "a.example.com")
    assert "New, TLSv1.1" not in out
    assert "Cipher is (NONE)" in out or "alert" in out, out


def test_min_version_13_refuses_tls12(work_dir, origin, certs):
    g = Gateway(work_dir, "tls13", CONFIG, origin=origin.port, certs=certs, admin=free_port(),
                min_version="1.3")
    g.start()
    try:
        refused = s_client(g, certs, "-tls1_2", "-servername", "a.example.com")
        assert "alert protocol version" in refused or "no protocols available" in refused, \
            refused
        ok = s_client(g, certs, "-tls1_3", "-servername", "a.example.com")
        assert "TLSv1.3" in ok
    finally:
        g.stop()


@pytest.mark.parametrize("flag", ["-tls1_2", "-tls1_3"])
def test_session_resumption(tls_gw, certs, tmp_path, flag):
    sess = str(tmp_path / "session.pem")
    # HTTP bytes make the server send its TLS 1.3 tickets and the client wait for them.
    req = b"GET /echo HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n"
    first = s_client(tls_gw, certs, flag, "-servername", "a.example.com", "-sess_out", sess,
                     "-ign_eof", data=req)
    assert "New, TLSv1." in first
    second = s_client(tls_gw, certs, flag, "-servername", "a.example.com", "-sess_in", sess,
                      "-ign_eof", data=req)
    assert "Reused, TLSv1." in second, second


def test_connection_close_ends_with_close_notify(tls_gw, certs):
    # The end of the stream is a TLS close_notify, not a bare TCP FIN, so a
    # client can tell a whole answer from a truncated one.
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)  # set by default
    with socket.create_connection(("127.0.0.1", tls_gw.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.example.com",
                             suppress_ragged_eofs=False) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.example.com\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)  # an SSLError when closed without close_notify
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]


def test_plain_http_on_tls_port_is_answered_and_counted(tls_gw):
    with tls_gw.conn(timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 400
    assert "TLS" in resp.json()["message"]
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % tls_gw.values["admin"]) as r:
        text = r.read().decode()
    assert re.search(r'ringgate_tls_plaintext_requests_total\{listener="secure"\} [1-9]', text)


def test_garbage_handshake_is_counted_not_fatal(tls_gw, certs):
    with tls_gw.conn(timeout=5) as c:
        c.send(b"\x16\x03\x01\x00\x05hello-garbage-garbage" * 10)
        assert c.closed_within(5)
    status, _, _ = curl(tls_gw, certs, "/echo")
    assert status == 200


def test_ten_mib_both_ways_over_tls(tls_gw, certs, tmp_path):
    data = os.urandom(10 * 1024 * 1024)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    status, _, body = curl(tls_gw, certs, "/echo", extra=["--data-binary", "@" + str(path)])
    assert status == 200
    assert __import__("json").loads(body)["body_sha256"] == hashlib.sha256(data).hexdigest()
    status, _, body = curl(tls_gw, certs, "/bytes?n=10485760")
    assert status == 200 and len(body) == 10485760


BAD = """\
listeners:
  - listen: "127.0.0.1:1"
    tls:
      certificates:
        - {{cert: "{cert}", key: "{key}"}}
"""


@pytest.mark.parametrize("cert,key,why", [
    ("rsa.pem", "other.key", "match"),
    ("expired.pem", "expired.key", "expired"),
    ("missing.pem", "rsa.key", "missing.pem"),
])
def test_bad_certificates_are_config_errors(tmp_path, certs, cert, key, why):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD.format(cert=os.path.join(certs, cert), key=os.path.join(certs, key)))
    proc = subprocess.run([os.environ.get("RINGGATE_BIN", os.path.join(REPO, "build/ringgate")),
                           "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[0]
    assert re.match(r"^%s:5:9: .*%s" % (re.escape(str(path)), why), line, re.I), proc.stderr


def test_reload_swaps_certificates_without_dropping(work_dir, origin, certs):
    g = Gateway(work_dir, "tls_reload", CONFIG, origin=origin.port, certs=certs,
                admin=free_port(), min_version="1.2")
    g.start()
    try:
        assert "subject=CN = rsa.test" in s_client(g, certs, "-servername", "none.test")
        # An open connection, used across the reload.
        argv = ["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:%d" % g.port,
                "-servername", "a.example.com", "-CAfile", os.path.join(certs, "ca.pem")]
        held = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        held.stdin.write(b"GET /echo?before HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
        held.stdin.flush()
        time.sleep(0.5)
        swapped = g.config_text.replace(
            '        - {cert: "%s/rsa.pem", key: "%s/rsa.key"}\n' % (certs, certs), "")
        assert swapped != g.config_text
        with open(g.config_path, "w") as f:
            f.write(swapped)
        os.kill(g.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "subject=CN = example.com" in s_client(g, certs, "-servername", "none.test"):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the reload did not change the default certificate")
        held.stdin.write(b"GET /echo?after HTTP/1.1\r\nHost: a.example.com\r\n"
                         b"Connection: close\r\n\r\n")
        held.stdin.flush()
        out, _ = held.communicate(timeout=10)
        assert out.count(b"HTTP/1.1 200") == 2, out[:500]
    finally:
        g.stop()


UPSTREAM_TLS = """\
workers: 1
access_log: "off"
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams:
  - name: verified
    endpoints: ["127.0.0.1:{tls_origin}"]
    tls: true
    sni: a.example.com
    ca: "{certs}/ca.pem"
  - name: wrong_name
    endpoints: ["127.0.0.1:{tls_origin}"]
    tls: true
    sni: other.test
    ca: "{certs}/ca.pem"
    retries: {{attempts: 0}}
  - name: unverified
    endpoints: ["127.0.0.1:{tls_origin}"]
    tls: true
    sni: other.test
    verify: false
routes:
  - {{match: {{prefix: /v/}}, upstream: verified}}
  - {{match: {{prefix: /w/}}, upstream: wrong_name}}
  - {{match: {{prefix: /u/}}, upstream: unverified}}
"""


@pytest.fixture(scope="module")
def tls_origin(work_dir, certs):
    from conftest import Origin
    o = Origin(work_dir, "tls_origin")
    o.argv += ["--tls", os.path.join(certs, "ecdsa.pem"), os.path.join(certs, "ecdsa.key")]
    o.start()
    yield o
    o.stop()


def test_upstream_over_tls(work_dir, certs, tls_origin):
    g = Gateway(work_dir, "tls_upstream", UPSTREAM_TLS, certs=certs, tls_origin=tls_origin.port)
    g.start()
    try:
        for _ in range(3):  # the second and third reuse the pooled TLS connection
            resp = g.request("GET", "/v/echo")
            assert resp.status == 200
        big = os.urandom(3 * 1024 * 1024)
        resp = g.request("POST", "/v/echo", body=big)
        assert resp.status == 200
        assert resp.json()["body_sha256"] == hashlib.sha256(big).hexdigest()
        resp = g.request("GET", "/v/bytes?n=3000000")
        assert resp.status == 200 and len(resp.body) == 3000000
        # The certificate does not name other.test: verification refuses it.
        assert g.request("GET", "/w/echo").status == 502
        assert "TLS handshake failed" in g.log_text()
        assert g.request("GET", "/u/echo").status == 200
    finally:
        g.stop()
