#!/usr/bin/python3
"""An origin that misbehaves on purpose, for ringgate's robustness tests.

    /usr/bin/python3 evil_origin.py PORT

Prints "READY <port>" once it listens. Raw sockets, one thread per
connection; the LAST path segment picks the answer (so a route prefix can go
in front):

    endless-headers   a status line, then header lines as fast as the socket
                      takes them, until the peer goes away
    drip-headers      a status line, then one header line every 100 ms (up to
                      60 s), until the peer goes away
    binary-garbage    64 KiB of random bytes (NULs included), then the
                      connection is held open for 30 s
    nul-in-header     a header value with a NUL byte
    length-and-chunked  Content-Length and Transfer-Encoding together
    split             a complete response followed by a second, unasked one
                      in the same write ("response splitting")
    bad-chunk         a chunked response whose second chunk size is not hex
    bad-chunk-later   the same, the bad size 300 ms after the first chunk
    stats             JSON: for each misbehaviour, how many started and how
                      many ended because the peer closed ("cut")
    anything else     200 "ok" (Content-Length, keep-alive), with X-Evil-Conn
                      (this connection's number) and X-Evil-Request (its
                      request count)
"""

import json
import os
import socket
import sys
import threading
import time

LOCK = threading.Lock()
STATS = {}
CONNS = [0]


def count(name, what):
    with LOCK:
        entry = STATS.setdefault(name, {"started": 0, "cut": 0, "bytes": 0})
        entry[what] += 1


def add_bytes(name, n):
    with LOCK:
        STATS.setdefault(name, {"started": 0, "cut": 0, "bytes": 0})["bytes"] += n


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def skip_body(sock, head, rest):
    """Reads a Content-Length body (the tests send no chunked ones here)."""
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return rest[n:]


def endless(sock, name, line, pause):
    count(name, "started")
    deadline = time.monotonic() + 60
    try:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        i = 0
        while time.monotonic() < deadline:
            data = b"X-Filler-%d: %s\r\n" % (i, line)
            sock.sendall(data)
            add_bytes(name, len(data))
            i += 1
            if pause:
                time.sleep(pause)
    except OSError:
        count(name, "cut")


def answer(sock, name, conn_no, n_req):
    if name == "endless-headers":
        endless(sock, name, b"a" * 1000, 0)
        return False
    if name == "drip-headers":
        endless(sock, name, b"drip", 0.1)
        return False
    if name == "binary-garbage":
        count(name, "started")
        sock.sendall(os.urandom(65536) + b"\0\0\0")
        time.sleep(30)
        return False
    if name == "nul-in-header":
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok")
        return True
    if name == "length-and-chunked":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        return True
    if name == "split":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Smuggled: yes\r\n\r\nhacked")
        return True
    if name in ("bad-chunk", "bad-chunk-later"):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        if name == "bad-chunk-later":
            time.sleep(0.3)
        sock.sendall(b"ZZZ\r\nmore\r\n0\r\n\r\n")
        time.sleep(1)
        return False
    if name == "stats":
        with LOCK:
            body = json.dumps(STATS).encode()
    else:
        body = b"ok"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Evil-Conn: %d\r\n"
                 b"X-Evil-Request: %d\r\n\r\n%s" % (len(body), conn_no, n_req, body))
    return True


def serve(sock):
    with LOCK:
        CONNS[0] += 1
        conn_no = CONNS[0]
    buf = b""
    n_req = 0
    try:
        while True:
            head, buf = read_head(sock, buf)
            if head is None:
                return
            buf = skip_body(sock, head, buf)
            n_req += 1
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            segs = [s for s in target.split("?", 1)[0].split("/") if s]
            if not answer(sock, segs[-1] if segs else "", conn_no, n_req):
                return
    except OSError:
        pass
    finally:
        sock.close()


def main():
    if len(sys.argv) < 2:
        print("usage: evil_origin.py PORT", file=sys.stderr)
        return 2
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen(256)
    print("READY %d" % srv.getsockname()[1], flush=True)
    while True:
        sock, _ = srv.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
