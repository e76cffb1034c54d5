"""JSON Schema validation at its limits, through the real gateway: 10 MiB
bodies (limits.max_body_bytes 16MiB) are validated whole, a valid one reaches
the origin byte for byte and an invalid one never does; nesting far beyond
the JSON reader's depth limit is refused quickly, without harm to the
gateway.

Deep nesting is answered 400 invalid_json, not schema_violation: the JSON
reader (filters/json.c) refuses nesting deeper than its max_depth, which
the validator sets to SCHEMA_DEFAULT_DEPTH (128), before any schema keyword
is looked at, and its iterative parser spends one word per level, so 10 000
levels cost nothing. That holds whatever the schema says, even for {}, which
accepts every JSON value: 128 levels pass, 129 do not.
"""

import hashlib
import json
import time
import uuid

import pytest

from conftest import Gateway

MiB = 1024 * 1024
BIG = 10 * MiB
DEPTH_LIMIT = 128  # SCHEMA_DEFAULT_DEPTH in filters/schema.h

BULK = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["batch", "items"],
    "additionalProperties": False,
    "properties": {
        "batch": {"type": "string", "pattern": "^bulk-[0-9]+$"},
        "note": {"type": "string"},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "additionalProperties": False,
                "properties": {
                    "sku": {"type": "string", "pattern": "^SKU-[0-9]{6}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "label": {"type": "string", "maxLength": 100},
                },
            },
        },
    },
}

CONFIG = """\
workers: 2
access_log: "off"
limits: {{max_body_bytes: 16MiB}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
schemas:
  - {{name: bulk, file: "{bulk}"}}
  - {{name: any, file: "{any}"}}
upstreams: [{{name: origin, endpoints: ["127.0.0.1:{origin}"], timeout: 30s}}]
routes:
  - {{match: {{prefix: /bulk/}}, upstream: origin, schema: bulk}}
  - {{match: {{prefix: /any/}}, upstream: origin, schema: any}}
"""


@pytest.fixture(scope="module")
def lgw(work_dir, origin, tmp_path_factory):
    d = tmp_path_factory.mktemp("schema_limits")
    (d / "bulk.json").write_text(json.dumps(BULK, indent=2))
    (d / "any.json").write_text("{}\n")
    g = Gateway(work_dir, "schema_limits", CONFIG, origin=origin.port,
                bulk=str(d / "bulk.json"), any=str(d / "any.json"))
    g.start()
    yield g
    g.stop()


def items_body(size):
    """A valid bulk body of exactly size bytes (compact JSON, some UTF-8),
    and the offsets of every item's qty value."""
    head = b'{"batch":"bulk-7","items":['
    parts, qty_at, total = [], [], len(head)
    i = 0
    while True:
        item = ('{"sku":"SKU-%06d","qty":%d,"label":"Größe %d – café"}'
                % (i % 1000000, i % 9 + 1, i)).encode()
        if total + len(item) + 1 + 200 > size:  # room for "]", ',"note":"..."}'
            break
        qty_at.append(total + item.index(b'"qty":') + 6)
        parts.append(item)
        total += len(item) + 1
        i += 1
    body = head + b",".join(parts) + b'],"note":"'
    body += b"x" * (size - len(body) - 2) + b'"}'
    assert len(body) == size
    return body, qty_at


@pytest.fixture(scope="module")
def big_body():
    return items_body(BIG)


def post(g, path, body, timeout=20.0):
    return g.request("POST", path, headers=[("Content-Type", "application/json")],
                     body=body, timeout=timeout)


def marker():
    return uuid.uuid4().hex[:12]


@pytest.mark.timeout(20)
def test_valid_10mib_body_reaches_origin_intact(lgw, big_body):
    body, qty_at = big_body
    assert len(qty_at) > 100000
    resp = post(lgw, "/bulk/echo?m=" + marker(), body)
    assert resp.status == 200, resp
    echo = resp.json()
    assert echo["body_length"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echo["chunked"] is False


@pytest.mark.timeout(20)
def test_invalid_10mib_body_is_refused_with_its_path(lgw, origin, big_body):
    body, qty_at = big_body
    k = len(qty_at) - 10  # near the end: everything before it is valid
    bad = bytearray(body)
    bad[qty_at[k]] = ord("0")
    m = marker()
    resp = post(lgw, "/bulk/echo?m=" + m, bytes(bad))
    assert resp.status == 400, resp
    j = resp.json()
    assert j["error"] == "schema_violation", j
    assert j["instance_path"] == "/items/%d/qty" % k, j
    assert j["schema_path"].endswith("/properties/items/items/properties/qty/minimum"), j
    assert not any(m in line for line in origin.log())


def nested(depth, open_=b"[", close=b"]"):
    return open_ * depth + close * depth


@pytest.mark.timeout(20)
@pytest.mark.parametrize("route", ["/bulk/", "/any/"])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_10000_deep_nesting_is_invalid_json(lgw, origin, route, shape):
    if shape == "array":
        body = nested(10000)
        offset = DEPTH_LIMIT  # the 129th "["
    else:
        body = b'{"a":' * 10000 + b"1" + b"}" * 10000
        offset = DEPTH_LIMIT * 5  # the 129th "{"
    m = marker()
    t0 = time.monotonic()
    resp = post(lgw, route + "echo?m=" + m, body, timeout=5.0)
    elapsed = time.monotonic() - t0
    assert resp.status == 400, resp
    j = resp.json()
    # The reader's depth limit, not the schema: even {} refuses it.
    assert j["error"] == "invalid_json", j
    assert j["offset"] == offset, j
    assert "deep" in j["message"], j
    assert elapsed < 2.0, elapsed
    assert lgw.alive()
    assert not any(m in line for line in origin.log())
    # The gateway still answers, on the same route.
    ok = post(lgw, "/bulk/echo", b'{"batch":"bulk-1","items":[{"sku":"SKU-000001","qty":1}]}')
    assert ok.status == 200, ok


@pytest.mark.timeout(20)
def test_depth_limit_boundary(lgw):
    """128 levels are within the reader's limit and reach the origin."""
    body = nested(DEPTH_LIMIT)
    resp = post(lgw, "/any/echo", body)
    assert resp.status == 200, resp
    assert resp.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    resp = post(lgw, "/any/echo", nested(DEPTH_LIMIT + 1))
    assert resp.status == 400, resp
    assert resp.json()["error"] == "invalid_json"
    assert resp.json()["offset"] == DEPTH_LIMIT
