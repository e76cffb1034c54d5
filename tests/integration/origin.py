#!/usr/bin/python3
"""A real HTTP/1.1 origin server for ringgate's integration tests.

    /usr/bin/python3 origin.py PORT [HOST]

Prints "READY <port>" on stdout once it listens. Keep-alive is on (HTTP/1.1
with Content-Length or chunked framing). The endpoint is chosen by the LAST
segment of the path, so a route prefix can be put in front of it
("/slow/sleep" is the sleep endpoint); an unknown name is an echo.

    echo            JSON of the request: method, path, query, version,
                    headers (list of [name, value] pairs, in order), body
                    sha256 and length, whether it came chunked, the client
                    port and how many requests this connection carried
    bytes?n=N       N bytes of a fixed pattern, Content-Length, X-Sha256
    chunked?n=N     the same bytes with Transfer-Encoding: chunked, in
                    several chunks of varied sizes; &pause_ms=M writes every
                    piece of the framing separately, M ms apart
    close?n=N       the same bytes, no Content-Length, Connection: close:
                    read-to-EOF framing
    sleep?ms=N      answers after N ms
    status?code=N   answers with that status
    count           {"total": requests seen by the origin, "client_port",
                    "conn_requests": requests on this connection so far}
    log             JSON list of every request line received since start
                    (or the last reset-log); log/done-log/reset-log/count
                    themselves are not recorded
    done-log        the same, only requests that arrived complete (whole
                    body read)
    reset-log       empties both logs
    cached?...      a response for the cache tests, counted per path (hits and
                    the validators received, see cache-hits). Query: cc=
                    Cache-Control, etag=, lm= Last-Modified (seconds ago),
                    vary=, cookie=1 (Set-Cookie), n=N pattern bytes as the
                    body (else a JSON body), chunked=1, code=status,
                    sleep_ms=. An If-None-Match holding the ETag gets 304
                    (with the same Cache-Control and ETag). X-Origin-Hit
                    says how many requests the path has seen.
    cache-hits?path=P  {"hits", "inm": If-None-Match values, "ims":
                    If-Modified-Since values, "methods"} seen for path P
    cache-set?path=P&fail=N&sleep_ms=M  from now on `cached` requests for P
                    answer status N (0: normally) after M ms
    garbage         answers bytes that are not HTTP, then closes
    hangup          closes the connection without an answer

Every response carries X-Origin-Port. Request bodies (Content-Length or
chunked, decoded here by hand) are read for every endpoint.
"""

import hashlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(251)) * 64  # a prime-length period, so offsets show
PATTERN_LEN = 251

LOCK = threading.Lock()
LOG = []  # request lines, as received
DONE = []  # request lines whose whole body arrived (the request was complete)
TOTAL = 0  # requests seen (every parsed request line, logged or not)
UNLOGGED = ("log", "done-log", "reset-log", "count", "cache-hits", "cache-set")
CACHE_SEEN = {}  # path -> {"hits", "inm", "ims", "methods"}
CACHE_OVERRIDE = {}  # path -> {"fail": status, "sleep_ms": ms}


def pattern_bytes(offset, n):
    """n bytes of the pattern starting at absolute offset."""
    start = offset % PATTERN_LEN
    out = bytearray()
    while len(out) < n:
        take = min(len(PATTERN) - start, n - len(out))
        out += PATTERN[start : start + take]
        start = 0
    return bytes(out)


def pattern_sha256(n):
    h = hashlib.sha256()
    off = 0
    while off < n:
        k = min(1 << 16, n - off)
        h.update(pattern_bytes(off, k))
        off += k
    return h.hexdigest()


_SHA_CACHE = {}


def cached_sha(n):
    with LOCK:
        if n in _SHA_CACHE:
            return _SHA_CACHE[n]
    s = pattern_sha256(n)
    with LOCK:
        _SHA_CACHE[n] = s
    return s


class BadBody(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ringgate-test-origin"
    timeout = 60  # an idle keep-alive connection is closed after this

    def setup(self):
        super().setup()
        self.conn_requests = 0

    def log_message(self, fmt, *args):  # keep stderr for real problems
        pass

    # Every request line that arrives is logged before any parsing can fail.
    def parse_request(self):
        global TOTAL
        line = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        parts = line.split(" ")
        target = parts[1] if len(parts) > 1 else ""
        name = endpoint_name(urlsplit(target).path) if target else ""
        with LOCK:
            TOTAL += 1
            if name not in UNLOGGED:
                LOG.append(line)
        self.conn_requests += 1
        return super().parse_request()

    # --- body reading -------------------------------------------------
    def read_body(self):
        """Reads the request body; returns (sha256 hex, length, chunked)."""
        h = hashlib.sha256()
        n = 0
        te = self.headers.get_all("Transfer-Encoding") or []
        cl = self.headers.get_all("Content-Length") or []
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
            if codings[-1:] != ["chunked"]:
                raise BadBody("transfer-encoding without final chunked: %r" % te)
            if cl:
                raise BadBody("both Content-Length and Transfer-Encoding")
            for piece in self.read_chunked():
                h.update(piece)
                n += len(piece)
            return h.hexdigest(), n, True
        if cl:
            if len(set(v.strip() for v in cl)) != 1 or not cl[0].strip().isdigit():
                raise BadBody("bad Content-Length %r" % cl)
            left = int(cl[0].strip())
            while left > 0:
                piece = self.rfile.read(min(left, 1 << 16))
                if not piece:
                    raise BadBody("body ended early")
                h.update(piece)
                n += len(piece)
                left -= len(piece)
        return h.hexdigest(), n, False

    def read_line(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\r\n"):
            raise BadBody("chunked line not ended by CRLF: %r" % line[:80])
        return line[:-2]

    def read_chunked(self):
        while True:
            size_text = self.read_line().split(b";", 1)[0].strip()
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise BadBody("bad chunk size %r" % size_text)
            size = int(size_text, 16)
            if size == 0:
                while self.read_line() != b"":  # trailer fields
                    pass
                return
            left = size
            while left > 0:
                piece = self.rfile.read(min(left, 1 << 16))
                if not piece:
                    raise BadBody("chunk ended early")
                left -= len(piece)
                yield piece
            if self.rfile.read(2) != b"\r\n":
                raise BadBody("chunk data not followed by CRLF")

    # --- answering ----------------------------------------------------
    def start(self, status, headers=()):
        self.send_response(status)
        self.send_header("X-Origin-Port", str(self.server.server_address[1]))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        self.start(status, hdrs + list(headers))
        if self.command != "HEAD":
            self.wfile.write(body)

    def write_pattern(self, n, chunked, pause_ms=0):
        """The pattern, whole or chunked. With pause_ms, every piece of the
        chunked framing (size line, data, CRLF, last chunk) is its own
        write with a pause after it, so it arrives in its own segment."""
        off = 0
        sizes = [1, 7, 100, 4096, 65536]  # varied chunk sizes, repeating
        i = 0
        pause = pause_ms / 1000.0

        def put(data):
            self.wfile.write(data)
            if pause:
                time.sleep(pause)

        while off < n:
            k = min(sizes[i % len(sizes)] if chunked else 1 << 16, n - off)
            i += 1
            data = pattern_bytes(off, k)
            if chunked and pause:
                put(b"%x\r\n" % len(data))
                put(data)
                put(b"\r\n")
            elif chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            off += k
        if chunked and pause:
            put(b"0\r\n")
            put(b"\r\n")
        elif chunked:
            self.wfile.write(b"0\r\n\r\n")

    def handle_any(self):
        url = urlsplit(self.path)
        name = endpoint_name(url.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            sha, length, chunked = self.read_body()
        except BadBody as e:
            self.close_connection = True
            self.send_json(400, {"error": "origin_bad_body", "message": str(e)},
                           [("Connection", "close")])
            return
        client_port = self.client_address[1]
        if name not in UNLOGGED:
            with LOCK:
                DONE.append(self.requestline)

        if name == "bytes":
            n = int(q.get("n", "1000"))
            self.start(200, [("Content-Type", "application/octet-stream"),
                             ("Content-Length", str(n)), ("X-Sha256", cached_sha(n))])
            if self.command != "HEAD":
                self.write_pattern(n, False)
        elif name == "chunked":
            n = int(q.get("n", "1000"))
            self.start(200, [("Content-Type", "application/octet-stream"),
                             ("Transfer-Encoding", "chunked"), ("X-Sha256", cached_sha(n))])
            if self.command != "HEAD":
                self.write_pattern(n, True, int(q.get("pause_ms", "0")))
        elif name == "close":
            n = int(q.get("n", "100000"))
            self.close_connection = True
            self.start(200, [("Content-Type", "application/octet-stream"),
                             ("Connection", "close"), ("X-Sha256", cached_sha(n))])
            if self.command != "HEAD":
                self.write_pattern(n, False)
        elif name == "sleep":
            ms = int(q.get("ms", "100"))
            time.sleep(ms / 1000.0)
            self.send_json(200, {"slept_ms": ms})
        elif name == "status":
            code = int(q.get("code", "200"))
            time.sleep(int(q.get("sleep_ms", "0")) / 1000.0)
            if code in (204, 304):
                self.start(code)
            else:
                self.send_json(code, {"status": code})
        elif name == "count":
            with LOCK:
                total = TOTAL
            self.send_json(200, {"total": total, "client_port": client_port,
                                 "conn_requests": self.conn_requests})
        elif name == "log":
            with LOCK:
                lines = list(LOG)
            self.send_json(200, lines)
        elif name == "done-log":
            with LOCK:
                lines = list(DONE)
            self.send_json(200, lines)
        elif name == "reset-log":
            with LOCK:
                LOG.clear()
                DONE.clear()
            self.send_json(200, {"ok": True})
        elif name == "cached":
            self.answer_cached(url.path, q)
        elif name == "cache-hits":
            with LOCK:
                seen = dict(CACHE_SEEN.get(q.get("path", ""),
                                           {"hits": 0, "inm": [], "ims": [], "methods": []}))
            self.send_json(200, seen)
        elif name == "cache-set":
            with LOCK:
                CACHE_OVERRIDE[q.get("path", "")] = {"fail": int(q.get("fail", "0")),
                                                     "sleep_ms": int(q.get("sleep_ms", "0"))}
            self.send_json(200, {"ok": True})
        elif name == "garbage":
            self.close_connection = True
            self.wfile.write(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
        elif name == "hangup":
            self.close_connection = True
        elif name == "upgrade-echo":  # 101 to any Upgrade, then raw bytes echoed
            proto = self.headers.get("Upgrade", "x-echo")
            self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: %s\r\n\r\n" % proto).encode())
            self.wfile.flush()
            self.close_connection = True
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
        else:
            echo = {
                "method": self.command,
                "target": self.path,
                "path": url.path,
                "query": url.query,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_sha256": sha,
                "body_length": length,
                "chunked": chunked,
                "client_port": client_port,
                "conn_requests": self.conn_requests,
                "origin_port": self.server.server_address[1],
            }
            self.send_json(200, echo, [("X-Echo-Method", self.command),
                                       ("X-Echo-Body-Length", str(length)),
                                       ("X-Echo-Body-Sha256", sha)])

    def answer_cached(self, path, q):
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        with LOCK:
            seen = CACHE_SEEN.setdefault(path, {"hits": 0, "inm": [], "ims": [], "methods": [],
                                                "proto": []})
            seen["hits"] += 1
            hit = seen["hits"]
            seen["methods"].append(self.command)
            seen["proto"].append(self.headers.get("X-Forwarded-Proto"))
            if inm is not None:
                seen["inm"].append(inm)
            if ims is not None:
                seen["ims"].append(ims)
            override = dict(CACHE_OVERRIDE.get(path, {}))
        sleep_ms = override.get("sleep_ms") or int(q.get("sleep_ms", "0"))
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
        if override.get("fail"):
            self.send_json(override["fail"], {"failing": True})
            return
        headers = [("X-Origin-Hit", str(hit))]
        if "cc" in q:
            headers.append(("Cache-Control", q["cc"]))
        etag = q.get("etag")
        if etag:
            headers.append(("ETag", etag))
        if "lm" in q:
            headers.append(("Last-Modified", self.date_time_string(time.time() - int(q["lm"]))))
        if "vary" in q:
            headers.append(("Vary", q["vary"]))
        if "loc" in q:
            headers.append(("Location", q["loc"]))
        if "cloc" in q:
            headers.append(("Content-Location", q["cloc"]))
        if q.get("cookie"):
            headers.append(("Set-Cookie", "session=secret%d" % hit))
        if etag and inm and etag in [t.strip() for t in inm.split(",")]:
            self.start(304, headers)
            return
        code = int(q.get("code", "200"))
        if "n" in q:
            n = int(q["n"])
            body = None
        else:
            vary_value = self.headers.get(q["vary"], "") if "vary" in q else ""
            body = json.dumps({"path": path, "hit": hit, "vary_value": vary_value}).encode()
            n = len(body)
        chunked = q.get("chunked") == "1"
        headers.append(("Content-Type", "application/octet-stream" if body is None
                         else "application/json"))
        headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(n)))
        self.start(code, headers)
        if self.command == "HEAD":
            return
        if body is None:
            self.write_pattern(n, chunked)
        elif chunked:
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any
    do_TRACE = do_PROPFIND = handle_any


def endpoint_name(path):
    segs = [s for s in path.split("/") if s]
    return segs[-1] if segs else ""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A client (the gateway) that goes away mid-answer is normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def main():
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:  # --tls CERT KEY: the origin speaks HTTPS
        i = args.index("--tls")
        tls = args[i + 1:i + 3]
        del args[i:i + 3]
    if not args:
        print("usage: origin.py PORT [HOST] [--tls CERT KEY]", file=sys.stderr)
        return 2
    port = int(args[0])
    host = args[1] if len(args) > 1 else "127.0.0.1"
    srv = Server((host, port), Handler)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
