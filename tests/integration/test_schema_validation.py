"""JSON Schema validation of request bodies on routes that name a schema:
valid bodies are forwarded (chunked ones with a Content-Length), invalid
ones answered 400 with the failing places, and nothing of them reaches the
origin."""

import hashlib
import json
import os
import re
import subprocess
import urllib.request

import pytest

from conftest import REPO, Gateway, chunked_body, free_port, request_bytes

ORDER = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "string", "pattern": "^ord-[0-9]+$"},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {"sku": {"type": "string"},
                               "qty": {"type": "integer", "minimum": 1}},
                "additionalProperties": False,
            },
        },
    },
}

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
limits: {{max_body_bytes: 64KiB}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
schemas:
  - name: order
    file: "{schema}"
upstreams: [{{name: origin, endpoints: ["127.0.0.1:{origin}"]}}]
routes:
  - {{match: {{prefix: /orders/}}, upstream: origin, schema: order}}
"""

GOOD = {"id": "ord-1", "items": [{"sku": "a", "qty": 2}]}


@pytest.fixture(scope="module")
def sgw(work_dir, origin, tmp_path_factory):
    path = tmp_path_factory.mktemp("schemas") / "order.json"
    path.write_text(json.dumps(ORDER, indent=2))
    g = Gateway(work_dir, "schema", CONFIG, origin=origin.port, admin=free_port(),
                schema=str(path))
    g.start()
    yield g
    g.stop()


def post(g, body, content_type="application/json", path="/orders/echo"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return g.request("POST", path, headers=[("Content-Type", content_type)], body=data)


def test_valid_body_is_forwarded(sgw):
    resp = post(sgw, GOOD)
    assert resp.status == 200
    echo = resp.json()
    assert echo["body_sha256"] == hashlib.sha256(json.dumps(GOOD).encode()).hexdigest()


def test_chunked_valid_body_forwarded_with_length(sgw):
    body = json.dumps(GOOD).encode()
    with sgw.conn() as c:
        c.send(request_bytes("POST", "/orders/echo", headers=[
            ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
            body=None) + chunked_body([body[:7], body[7:20], body[20:]]))
        resp = c.read_response()
    assert resp.status == 200
    echo = resp.json()
    assert echo["chunked"] is False and echo["body_length"] == len(body)


@pytest.mark.parametrize("body,ipath,spath", [
    ({"id": "ord-1", "items": [{"sku": "a", "qty": 0}]}, "/items/0/qty",
     "/properties/items/items/properties/qty/minimum"),
    ({"id": "order-1", "items": [{"sku": "a", "qty": 1}]}, "/id", "/properties/id/pattern"),
    ({"id": "ord-1"}, "", "/required"),
    ({"id": "ord-1", "items": [{"sku": "a", "qty": 1, "x": 1}]}, "/items/0/x",
     "/properties/items/items/additionalProperties"),
])
def test_violations_answered_with_paths(sgw, origin, body, ipath, spath):
    origin.reset_log()
    resp = post(sgw, body, path="/orders/echo?v=1")
    assert resp.status == 400
    j = resp.json()
    assert j["error"] == "schema_violation"
    assert j["instance_path"] == ipath
    assert j["schema_path"].endswith(spath), j
    assert not any("v=1" in line for line in origin.log())


def test_invalid_json_has_offset(sgw, origin):
    origin.reset_log()
    resp = post(sgw, b'{"id": "ord-1", "items": [1,]}', path="/orders/echo?bad=1")
    assert resp.status == 400
    j = resp.json()
    assert j["error"] == "invalid_json" and j["offset"] == 28  # the "]" after the comma
    assert not any("bad=1" in line for line in origin.log())


def test_not_json_is_415(sgw):
    assert post(sgw, b"id=1", content_type="application/x-www-form-urlencoded").status == 415


def test_too_large_is_413(sgw):
    big = {"id": "ord-1", "items": [{"sku": "x" * 70000, "qty": 1}]}
    assert post(sgw, big).status == 413


def test_counted(sgw):
    post(sgw, {"id": 5})
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % sgw.values["admin"]) as r:
        text = r.read().decode()
    assert re.search(r'^ringgate_schema_rejected_total\{schema="order"\} [1-9]', text, re.M)


def test_invalid_schema_is_a_config_error(tmp_path):
    schema = tmp_path / "bad.json"
    schema.write_text('{\n  "type": "object",\n  "frobnicate": true\n}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listeners: [{listen: \"127.0.0.1:1\"}]\nschemas:\n"
                   "  - {name: s, file: bad.json}\n")
    proc = subprocess.run([os.environ.get("RINGGATE_BIN", os.path.join(REPO, "build/ringgate")),
                           "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert re.match(r"^%s:3:\d+: schema 's': %s:3:3: .*frobnicate" %
                    (re.escape(str(cfg)), re.escape(str(schema))), proc.stderr), proc.stderr
