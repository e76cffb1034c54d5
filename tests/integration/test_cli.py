"""The command line: `-t` (check the configuration), `-V`, and SIGTERM."""

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import free_port, request_bytes, require_binary

ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$")

VALID = """\
workers: 1
shutdown_timeout: 2s
access_log: "off"
limits:
  max_header_bytes: 16KiB
  max_body_bytes: 1MiB
  header_timeout: 5s
  idle_timeout: 30s
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: api
    endpoints: ["127.0.0.1:{origin}"]
    connect_timeout: 1s
    timeout: 30s
    keepalive: 16
routes:
  - match: {{host: api.example.com, prefix: /v1/, methods: [GET, POST]}}
    upstream: api
  - match: {{host: "*.example.org"}}
    upstream: api
  - match: {{prefix: /o/}}
    upstream: api
  - match: {{prefix: /}}
    static: {{root: "{root}"}}
"""

# (name, text, the line of the (first) error or None, how many errors at least)
INVALID = [
    ("unknown_top_level_key",
     "workers: 1\nbogus_key: 3\nlisteners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n", 2, 1),
    ("unknown_key_in_listener",
     "listeners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n    colour: blue\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n", 4, 1),
    ("bad_duration",
     "shutdown_timeout: 10 parsecs\nlisteners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n", 1, 1),
    ("bad_size",
     "limits:\n  max_body_bytes: 12 potatoes\nlisteners:\n  - name: a\n"
     "    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n", 2, 1),
    ("unknown_upstream",
     "listeners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /}}\n    upstream: nowhere\n", 6, 1),
    ("static_root_missing",
     "listeners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: /nonexistent/ringgate/www}}\n",
     6, 1),
    ("bad_listen_address",
     "listeners:\n  - name: a\n    listen: \"not an address\"\n"
     "routes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n", 3, 1),
    ("bad_method",
     "listeners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "routes:\n  - match: {{prefix: /, methods: [GET, \"BAD METHOD\"]}}\n"
     "    static: {{root: \"{root}\"}}\n", 5, 1),
    ("yaml_syntax_error",
     "listeners:\n  - name: a\n    listen: [unclosed\nroutes: {{\n", None, 1),
    ("two_problems",
     "workers: 1\nfirst_bogus: 1\nlisteners:\n  - name: a\n    listen: \"127.0.0.1:{port}\"\n"
     "second_bogus: 2\nroutes:\n  - match: {{prefix: /}}\n    static: {{root: \"{root}\"}}\n",
     2, 2),
]


def run(args, timeout=10):
    return subprocess.run([require_binary()] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


@pytest.fixture
def cfg_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("hi\n")
    return tmp_path


def write(cfg_dir, name, template, origin_port=1):
    path = str(cfg_dir / (name + ".yaml"))
    with open(path, "w") as f:
        f.write(template.format(port=free_port(), origin=origin_port, root=cfg_dir / "www"))
    return path


def test_check_valid_config(cfg_dir):
    path = write(cfg_dir, "valid", VALID)
    p = run(["-t", "-c", path])
    assert p.returncode == 0, p.stderr.decode(errors="replace")


@pytest.mark.parametrize("name,text,line,count", INVALID, ids=[c[0] for c in INVALID])
def test_check_invalid_config(cfg_dir, name, text, line, count):
    path = write(cfg_dir, name, text)
    p = run(["-t", "-c", path])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, "exit %s; stderr:\n%s" % (p.returncode, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) >= count, err
    for ln in lines:
        m = ERROR_LINE.match(ln)
        assert m, "not FILE:LINE:COL: message: %r" % ln
        assert m.group("file") == path, ln
        assert int(m.group("line")) >= 1 and int(m.group("col")) >= 1, ln
    if line is not None:
        got = [int(ERROR_LINE.match(ln).group("line")) for ln in lines]
        assert line in got, "expected an error on line %d: %s" % (line, err)
    if name == "two_problems":
        got = {int(ERROR_LINE.match(ln).group("line")) for ln in lines}
        assert {2, 6} <= got, err


def test_check_missing_file(tmp_path):
    p = run(["-t", "-c", str(tmp_path / "does-not-exist.yaml")])
    assert p.returncode == 1, p
    assert p.stderr.strip(), "no message for a missing configuration file"


def test_version():
    p = run(["-V"])
    assert p.returncode == 0, p
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert re.search(r"boringssl|openssl", out, re.I), out
    assert re.search(r"\d+\.\d+\.\d+", out), out


# ---------------------------------------------------------------------------
# SIGTERM: stop accepting, finish in-flight requests, exit 0

TERM_CONFIG = """\
workers: 2
shutdown_timeout: 5s
access_log: "off"
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
routes:
  - match: {{prefix: /o/}}
    upstream: origin
"""


def test_sigterm_exits_zero(gateway_factory, origin):
    g = gateway_factory("term_idle", TERM_CONFIG, origin=origin.port)
    assert g.request("GET", "/o/echo").status == 200
    code = g.stop(term_wait=5)
    assert code == 0, "exit %s after SIGTERM; stderr:\n%s" % (code, g.log_text())


def test_sigterm_finishes_in_flight_request(gateway_factory, origin):
    g = gateway_factory("term_busy", TERM_CONFIG, origin=origin.port)
    with g.conn() as c:
        c.send(request_bytes("GET", "/o/sleep?ms=1200"))
        time.sleep(0.3)
        os.kill(g.pid, signal.SIGTERM)
        r = c.read_response(deadline_s=8)
        assert r.status == 200, r
        assert r.json() == {"slept_ms": 1200}
    try:
        code = g.proc.wait(timeout=6)
    except subprocess.TimeoutExpired:
        code = "still running"
    g.stop()
    assert code == 0, "exit %s after SIGTERM; stderr:\n%s" % (code, g.log_text())

