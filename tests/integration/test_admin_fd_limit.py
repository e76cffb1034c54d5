"""The admin endpoints keep answering when a connection flood has used up
every file descriptor the process may open (issue #10): the admin thread
holds a reserve descriptor and gives it up for its own connection."""

import os
import socket
import time

import pytest

from conftest import Conn, fd_limited_gateway, free_port, request_bytes

LIMIT = 64  # RLIMIT_NOFILE
FLOOD = 80  # connections: more than the process can hold


def admin_get(port, path):
    with Conn(port, timeout=5) as c:
        c.send(request_bytes("GET", path, host="admin"))
        return c.read_response()


def wait_until_full(g, seconds=10):
    """Waits until the gateway holds every descriptor its limit allows."""
    deadline = time.monotonic() + seconds
    while len(os.listdir("/proc/%d/fd" % g.pid)) < LIMIT:
        if time.monotonic() > deadline:
            pytest.fail("the flood never took every descriptor; stderr:\n%s" % g.log_text(),
                        pytrace=False)
        time.sleep(0.01)


def still_waiting(sock, seconds=1.5):
    """True when a request sent on sock gets no answer: it is in the backlog."""
    sock.sendall(request_bytes("GET", "/echo"))
    sock.settimeout(seconds)
    try:
        sock.recv(1)
    except socket.timeout:
        return True
    return False


def test_admin_answers_at_the_descriptor_limit(work_dir, origin):
    admin = free_port()
    g = fd_limited_gateway(work_dir, "admin_fd_limited", origin.port, admin, LIMIT)
    g.start()
    held = []
    try:
        for _ in range(FLOOD):
            held.append(socket.create_connection(("127.0.0.1", g.port), timeout=5))
        for _ in range(5):
            wait_until_full(g)
            resp = admin_get(admin, "/healthz")
            assert resp.status == 200, resp
            assert resp.body == b"ok\n"
            wait_until_full(g)
            resp = admin_get(admin, "/metrics")
            assert resp.status == 200, resp
            assert b"ringgate_" in resp.body

        # The flood held every descriptor all along: the last connection
        # still waits in the backlog.
        assert still_waiting(held[-1])
        assert g.alive()

        # Released, the public listener serves again.
        for s in held:
            s.close()
        held.clear()
        resp = g.request("GET", "/echo")
        assert resp.status == 200, resp
        assert admin_get(admin, "/healthz").status == 200
    finally:
        for s in held:
            s.close()
        g.stop()
