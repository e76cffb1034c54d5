"""Fixtures for ringgate's integration tests: the real binary in front of a
real origin (origin.py), raw-socket HTTP helpers with deadlines.

The binary is $RINGGATE_BIN (default build/ringgate, relative to the
repository). Processes are started and stopped by PID only. A gateway's
stderr goes to a file; when a test fails, what the gateway (and the origin)
wrote during that test is added to the report.
"""

import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ORIGIN_PY = os.path.join(HERE, "origin.py")
DEFAULT_TIMEOUT = 30  # seconds per test, unless a test says otherwise

import importlib.util

HAVE_TIMEOUT_PLUGIN = importlib.util.find_spec("pytest_timeout") is not None


def ringgate_bin():
    path = os.environ.get("RINGGATE_BIN", "build/ringgate")
    if not os.path.isabs(path):
        path = os.path.join(REPO, path)
    return path


def require_binary():
    path = ringgate_bin()
    if not os.access(path, os.X_OK):
        pytest.fail("ringgate binary not found at %s (build it, or set RINGGATE_BIN)" % path,
                    pytrace=False)
    return path


def wait_until(predicate, seconds=5.0, step=0.05):
    """True once predicate() holds, checked every `step` seconds and once more
    at the deadline; False when it never did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port():
    """A TCP port nobody listens on right now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pattern_bytes(n):
    """The bytes origin.py serves for ?n=N."""
    period = bytes(range(251))
    return (period * (n // 251 + 1))[:n]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Processes


# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer reports found
# in the output of stopped processes, and processes found killed by a crash
# signal when a fixture came to stop them: any one fails the session.
PROCESS_REPORTS = []
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


def sanitizer_report(text):
    for marker in SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            return text[max(0, at - 200):at + 3000]
    return None


class Proc:
    """A child process started and stopped by PID, output into a log file."""

    def __init__(self, name, argv, log_path, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.stdout_pipe = stdout_pipe
        self.proc = None
        self.expect_running = False
        self.crash_reported = False
        self.returncode = None

    def start(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.stdout_pipe else log,
                stderr=log,
                cwd=REPO,
                start_new_session=True,  # a ^C to pytest is not sent to it
            )
        finally:
            log.close()
        self.expect_running = True
        self.crash_reported = False
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, term_wait=5.0):
        """SIGTERM, then SIGKILL after term_wait seconds. Returns the exit code."""
        if self.proc is None:
            self.expect_running = False
            return None
        crashed = self.expect_running and self.proc.poll() is not None \
            and -self.proc.returncode in CRASH_SIGNALS
        self.expect_running = False
        if crashed:
            PROCESS_REPORTS.append("%s (pid %d) was killed by signal %d before it was stopped;"
                                   " its output (%s):\n%s" % (self.name, self.proc.pid,
                                                              -self.proc.returncode, self.log_path,
                                                              self.log_text(limit=3000)))
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=term_wait)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.returncode = self.proc.returncode
        report = sanitizer_report(self.log_text(limit=200000))
        if report:
            PROCESS_REPORTS.append("%s (%s):\n%s" % (self.name, self.log_path, report))
        return self.returncode

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0, limit=20000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read()
        except OSError:
            return ""
        if len(data) > limit:
            data = b"...(cut)...\n" + data[-limit:]
        return data.decode("utf-8", "replace")


RUNNING = []  # every Proc the fixtures started and have not stopped


class Origin(Proc):
    def __init__(self, log_dir, name="origin", script=None):
        self.port = free_port()
        super().__init__(name, [PYTHON, script or ORIGIN_PY, str(self.port)],
                         os.path.join(log_dir, name + ".log"), stdout_pipe=True)

    def start(self, deadline_s=10.0):
        super().start()
        deadline = time.monotonic() + deadline_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("origin did not get ready:\n" + self.log_text())
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    continue
                line += ch
        if not line.startswith(b"READY"):
            raise RuntimeError("origin said %r" % line)
        RUNNING.append(self)

    def stop(self, term_wait=5.0):
        if self in RUNNING:
            RUNNING.remove(self)
        return super().stop(term_wait)

    def get_json(self, path, timeout=5.0):
        """GET straight to the origin (not through the gateway)."""
        c = Conn(self.port, timeout=timeout)
        try:
            c.send(request_bytes("GET", path, host="origin"))
            return c.read_response().json()
        finally:
            c.close()

    def log(self):
        return self.get_json("/log")

    def done_log(self):
        """Request lines of the requests that arrived whole."""
        return self.get_json("/done-log")

    def reset_log(self):
        self.get_json("/reset-log")


class Gateway(Proc):
    """The real ringgate binary with a configuration written from a template.

    The template is str.format()ed with port (the listener), plus the extra
    values given (origin ports and so on)."""

    def __init__(self, work_dir, name, template, **values):
        self.port = free_port()
        self.work_dir = work_dir
        self.values = dict(values, port=self.port)
        self.config_text = template.format(**self.values)
        if os.geteuid() == 0 and not self.config_text.startswith("user:") \
                and "\nuser:" not in self.config_text:
            # Root is refused without `user`; tests run as root on purpose.
            self.config_text = "user: root\n" + self.config_text
        self.config_path = os.path.join(work_dir, name + ".yaml")
        with open(self.config_path, "w") as f:
            f.write(self.config_text)
        super().__init__(name, [require_binary(), "-c", self.config_path],
                         os.path.join(work_dir, name + ".stderr"))

    def start(self, deadline_s=10.0):
        super().start()
        deadline = time.monotonic() + deadline_s
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.expect_running = False
                raise RuntimeError("ringgate exited with %s during start-up; config:\n%s\n"
                                   "stderr:\n%s" % (code, self.config_text, self.log_text()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ringgate did not accept connections on %d within %.0fs;"
                                   " stderr:\n%s" % (self.port, deadline_s, self.log_text()))
            time.sleep(0.05)
        RUNNING.append(self)

    def ensure_running(self):
        if not self.alive():
            if self in RUNNING:
                RUNNING.remove(self)
            self.start()
        return self

    def stop(self, term_wait=5.0):
        if self in RUNNING:
            RUNNING.remove(self)
        return super().stop(term_wait)

    def conn(self, timeout=10.0):
        return Conn(self.port, timeout=timeout)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, **kw):
        """One request on a fresh connection; returns the Response."""
        timeout = kw.pop("timeout", 10.0)
        c = Conn(self.port, timeout=timeout)
        try:
            c.send(request_bytes(method, path, **kw))
            return c.read_response(method=method)
        finally:
            c.close()


FD_LIMITED = """\
workers: 1
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
upstreams: [{{name: origin, endpoints: ["127.0.0.1:{origin}"]}}]
routes: [{{match: {{prefix: /}}, upstream: origin}}]
"""


def fd_limited_gateway(work_dir, name, origin_port, admin_port, nofile):
    """A gateway (not started) whose RLIMIT_NOFILE is nofile, soft and
    hard, set by prlimit: for tests of what happens at the limit."""
    g = Gateway(work_dir, name, FD_LIMITED, origin=origin_port, admin=admin_port)
    g.argv = ["prlimit", "--nofile=%d:%d" % (nofile, nofile)] + g.argv
    return g


# ---------------------------------------------------------------------------
# Raw HTTP over sockets


def request_bytes(method, path, host="test.local", headers=(), body=None, version="1.1",
                  content_length=True):
    """A request head (+ body). headers: list of (name, value); a Host
    header is added unless host is None or headers already have one."""
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    names = {k.lower() for k, _ in headers}
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body is not None and content_length and "content-length" not in names \
            and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def chunked_body(pieces, trailers=()):
    out = b""
    for p in pieces:
        if p:
            out += b"%x\r\n%s\r\n" % (len(p), p)
    out += b"0\r\n"
    for k, v in trailers:
        out += ("%s: %s\r\n" % (k, v)).encode()
    return out + b"\r\n"


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), as received
        self.body = body
        self.raw_head = raw_head
        self.chunked = False
        self.to_eof = False
        self.trailers = []

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %s, %d body bytes, head %r>" % (
            self.status, self.reason, len(self.body), self.raw_head[:600])


class ProtocolError(Exception):
    pass


class Conn:
    """A client connection that reads whole responses with a deadline."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.interim = []  # 1xx responses seen

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, deadline):
        """Reads more bytes into buf; False at EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete response before the deadline; got %r" %
                               self.buf[:2000])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            raise TimeoutError("no complete response before the deadline; got %r" %
                               self.buf[:2000]) from None
        except ConnectionResetError:
            raise ConnectionResetError("connection reset by the gateway; got so far %r" %
                                       self.buf[:2000]) from None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_line(self, deadline):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise ProtocolError("line too long")
            if not self._fill(deadline):
                raise ProtocolError("EOF inside a line; got %r" % self.buf[:2000])
        i = self.buf.index(b"\r\n")
        line = self._take(i + 2)[:-2]
        return line

    def read_head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ProtocolError("connection closed before a complete response head; "
                                    "got %r" % self.buf[:2000])
        i = self.buf.index(b"\r\n\r\n")
        raw = self._take(i + 4)
        lines = raw[:-4].split(b"\r\n")
        status_line = lines[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % status_line)
        headers = []
        for ln in lines[1:]:
            if b":" not in ln:
                raise ProtocolError("bad header line %r" % ln)
            k, v = ln.split(b":", 1)
            if k != k.strip() or not k:
                raise ProtocolError("bad header name %r" % k)
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        return Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "",
                        headers, b"", raw)

    def read_response(self, method="GET", deadline_s=None, skip_interim=True):
        """The next final response (1xx are kept in self.interim), with its
        body read according to its framing."""
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.timeout)
        while True:
            resp = self.read_head(deadline)
            if 100 <= resp.status < 200 and resp.status != 101:
                self.interim.append(resp)
                if skip_interim:
                    continue
                return resp
            break
        te = resp.header_all("Transfer-Encoding")
        cl = resp.header_all("Content-Length")
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            return resp
        if te:
            if te[-1].split(",")[-1].strip().lower() != "chunked":
                raise ProtocolError("Transfer-Encoding without chunked: %r" % te)
            if cl:
                raise ProtocolError("response has both Content-Length and Transfer-Encoding")
            resp.chunked = True
            resp.body = self._read_chunked(resp, deadline)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ProtocolError("bad Content-Length %r" % cl)
            n = int(cl[0])
            while len(self.buf) < n:
                if not self._fill(deadline):
                    raise ProtocolError("EOF after %d of %d body bytes" % (len(self.buf), n))
            resp.body = self._take(n)
        else:
            resp.to_eof = True
            while self._fill(deadline):
                pass
            resp.body = self._take(len(self.buf))
        return resp

    def _read_chunked(self, resp, deadline):
        body = bytearray()
        while True:
            line = self._read_line(deadline)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("bad chunk size line %r" % line) from None
            if size == 0:
                while True:
                    t = self._read_line(deadline)
                    if not t:
                        return bytes(body)
                    k, _, v = t.partition(b":")
                    resp.trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
            while len(self.buf) < size + 2:
                if not self._fill(deadline):
                    raise ProtocolError("EOF inside a chunk")
            body += self._take(size)
            if self._take(2) != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")

    def closed_within(self, seconds):
        """True when the peer closes (EOF or reset) within `seconds`; bytes
        that arrive meanwhile are kept in buf."""
        deadline = time.monotonic() + seconds
        while True:
            if self.eof:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                self.eof = True
                return True
            if not data:
                self.eof = True
                return True
            self.buf += data


def assert_json_error(resp, status):
    """The gateway's own error shape: status, application/json,
    {"error": "...", "message": "..."}."""
    assert resp.status == status, resp
    ctype = resp.header("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", resp
    try:
        doc = resp.json()
    except ValueError:
        raise AssertionError("error body is not JSON: %r" % resp.body[:500]) from None
    assert isinstance(doc, dict), doc
    assert isinstance(doc.get("error"), str) and doc["error"], doc
    assert isinstance(doc.get("message"), str) and doc["message"], doc
    return doc


def header_pairs(echo):
    """Echo JSON headers as a list of (lower-case name, value)."""
    return [(k.lower(), v) for k, v in echo["headers"]]


def echo_header(echo, name):
    vals = [v for k, v in echo["headers"] if k.lower() == name.lower()]
    return vals[0] if vals else None


# ---------------------------------------------------------------------------
# Configurations

MAIN_CONFIG = """\
workers: 2
shutdown_timeout: 2s
access_log: "off"
limits:
  max_header_bytes: 32KiB
  max_body_bytes: 32MiB
  header_timeout: 10s
  idle_timeout: 60s
listeners:
  - name: public
    listen: "127.0.0.1:{port}"
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 10s
    keepalive: 8
  - name: origin_b
    endpoints: ["127.0.0.1:{origin_b}"]
    timeout: 10s
  - name: flaky
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 5s
  - name: slow
    endpoints: ["127.0.0.1:{origin}"]
    timeout: 1s
  - name: dead
    endpoints: ["127.0.0.1:{dead}"]
    connect_timeout: 1s
    timeout: 5s
routes:
  - match: {{host: exact.test}}
    upstream: origin_b
  - match: {{host: "*.wild.test"}}
    upstream: origin_b
  - match: {{prefix: /only-post/, methods: [POST]}}
    upstream: origin_b
  - match: {{prefix: /only-post/}}
    upstream: origin
  - match: {{prefix: /dead/}}
    upstream: dead
  - match: {{prefix: /slow/}}
    upstream: slow
  - match: {{prefix: /flaky/}}
    upstream: flaky
  - match: {{prefix: /o/}}
    upstream: origin
"""


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ringgate"))


@pytest.fixture(scope="session")
def origin(work_dir):
    o = Origin(work_dir, "origin")
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="session")
def origin_b(work_dir):
    o = Origin(work_dir, "origin_b")
    o.start()
    yield o
    o.stop()


@pytest.fixture(scope="session")
def main_gateway(work_dir, origin, origin_b):
    g = Gateway(work_dir, "main", MAIN_CONFIG, origin=origin.port, origin_b=origin_b.port,
                dead=free_port())
    g.start()
    yield g
    g.stop()


@pytest.fixture
def gw(main_gateway, origin):
    """The main gateway, restarted first if an earlier test crashed it."""
    if not origin.alive():
        pytest.fail("the origin died:\n" + origin.log_text(), pytrace=False)
    return main_gateway.ensure_running()


@pytest.fixture(scope="module")
def gateway_factory(work_dir, request):
    """Starts gateways with other configurations; stopped at module end."""
    made = []

    def make(name, template, **values):
        g = Gateway(work_dir, "%s_%s" % (request.module.__name__.split(".")[-1], name),
                    template, **values)
        g.start()
        made.append(g)
        return g

    yield make
    for g in made:
        g.stop()


@pytest.fixture(autouse=True)
def _watch_processes(request):
    """Notes where each process log stands before the test; afterwards fails
    the test if a gateway died under it (a crash is a release blocker)."""
    request.node._log_marks = {id(p): p.log_size() for p in RUNNING}
    yield
    dead = [p for p in list(RUNNING) if p.expect_running and not p.alive()
            and not p.crash_reported]
    for p in dead:
        p.crash_reported = True
    if dead:
        msgs = []
        for p in dead:
            msgs.append("%s (pid %s) exited with code %s during this test; its output:\n%s"
                        % (p.name, p.pid, p.proc.returncode,
                           p.log_text(request.node._log_marks.get(id(p), 0))))
        pytest.fail("\n".join(msgs), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        marks = getattr(item, "_log_marks", {})
        for p in list(RUNNING):
            text = p.log_text(marks.get(id(p), 0))
            state = "running" if p.alive() else "exited with %s" % p.proc.returncode
            rep.sections.append(("%s (pid %s, %s) output (%s)" % (p.name, p.pid, state, p.log_path),
                                 text))


def pytest_configure(config):
    if not HAVE_TIMEOUT_PLUGIN:
        config.addinivalue_line("markers", "timeout(seconds): per-test time limit "
                                "(enforced by pytest-timeout when installed)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


def pytest_sessionfinish(session, exitstatus):
    """Leak reports appear when a process exits, after its tests have passed."""
    for p in list(RUNNING):
        p.stop()
    if PROCESS_REPORTS:
        sys.stderr.write("\ncrashes and sanitizer reports from the processes tests started:\n%s\n"
                         % "\n\n".join(PROCESS_REPORTS))
        session.exitstatus = 1
