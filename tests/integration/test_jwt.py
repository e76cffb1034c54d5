"""JWT authentication with real tokens (PyJWT) and real keys: accepted
tokens reach the origin with forwarded claims; every refused shape is 401
with WWW-Authenticate, counted, and never reaches the origin."""

import base64
import json
import re
import time
import urllib.request

import pytest

from conftest import Gateway, free_port

jwt = pytest.importorskip("jwt")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm  # noqa: E402

ISSUER = "https://auth.example.com"
SECRET = b"s" * 48

CONFIG = """\
workers: 2
access_log: "off"
admin: {{listen: "127.0.0.1:{admin}"}}
listeners: [{{name: public, listen: "127.0.0.1:{port}"}}]
jwt_providers:
  - name: main
    issuer: {issuer}
    audiences: [api]
    jwks_file: "{jwks}"
    clock_skew: 30s
    forward_claims: {{sub: X-User-Id, tenant: X-Tenant}}
  - name: shared
    secret: "{secret}"
    token_query: access_token
    token_cookie: session
upstreams:
  - name: origin
    endpoints: ["127.0.0.1:{origin}"]
routes:
  - match: {{prefix: /secure/}}
    upstream: origin
    jwt: main
  - match: {{prefix: /hs/}}
    upstream: origin
    jwt: shared
  - match: {{prefix: /open/}}
    upstream: origin
"""


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ec_coordinates(public_key):
    """x and y at the curve's full size: Debian's PyJWT drops leading zero
    bytes (1 P-256 key in 128), which RFC 7518 6.2.1.2 forbids and the
    JWKS loader rightly refuses."""
    numbers = public_key.public_numbers()
    size = (numbers.curve.key_size + 7) // 8
    return {"x": b64(numbers.x.to_bytes(size, "big")), "y": b64(numbers.y.to_bytes(size, "big"))}


@pytest.fixture(scope="module")
def keys():
    k = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    jwks = []
    for kid, alg, algo in (("rsa1", "RS256", RSAAlgorithm), ("ec1", "ES256", ECAlgorithm),
                           ("ed1", "EdDSA", OKPAlgorithm)):
        name = {"rsa1": "rsa", "ec1": "ec", "ed1": "ed"}[kid]
        j = json.loads(algo.to_jwk(k[name].public_key()))
        if j["kty"] == "EC":
            j.update(ec_coordinates(k[name].public_key()))
        j.update(kid=kid, use="sig")
        jwks.append(j)
    k["jwks"] = {"keys": jwks}
    return k


@pytest.fixture(scope="module")
def jgw(work_dir, origin, keys, tmp_path_factory):
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(keys["jwks"]))
    g = Gateway(work_dir, "jwt", CONFIG, origin=origin.port, admin=free_port(), issuer=ISSUER,
                jwks=str(path), secret=b64(SECRET))
    g.start()
    yield g
    g.stop()


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": "api", "sub": "user-42", "tenant": "t7", "iat": now,
         "exp": now + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token(keys, alg="RS256", kid="rsa1", **over):
    key = {"RS256": keys["rsa"], "RS384": keys["rsa"], "PS256": keys["rsa"],
           "ES256": keys["ec"], "EdDSA": keys["ed"]}[alg]
    return jwt.encode(claims(**over), key, algorithm=alg, headers={"kid": kid})


def get(g, path, tok=None, headers=()):
    h = list(headers)
    if tok is not None:
        h.append(("Authorization", "Bearer " + tok))
    return g.request("GET", path, headers=h)


def rejected(g):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.values["admin"]) as r:
        text = r.read().decode()
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in re.finditer(
        r'^ringgate_jwt_rejected_total\{provider="([^"]+)",reason="([^"]+)"\} (\S+)$', text,
        re.M)}


@pytest.mark.parametrize("alg,kid", [("RS256", "rsa1"), ("PS256", "rsa1"), ("ES256", "ec1"),
                                     ("EdDSA", "ed1")])
def test_valid_tokens_pass_with_forwarded_claims(jgw, keys, alg, kid):
    resp = get(jgw, "/secure/echo", token(keys, alg, kid),
               headers=[("X-User-Id", "forged-admin")])
    assert resp.status == 200
    headers = resp.json()["headers"]
    assert [v for k, v in headers if k.lower() == "x-user-id"] == ["user-42"]
    assert [v for k, v in headers if k.lower() == "x-tenant"] == ["t7"]


def test_hs256_secret_from_header_query_and_cookie(jgw):
    tok = jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert get(jgw, "/hs/echo", tok).status == 200
    assert jgw.request("GET", "/hs/echo?access_token=" + tok).status == 200
    assert jgw.request("GET", "/hs/echo", headers=[("Cookie", "a=b; session=" + tok)]).status \
        == 200


def forged_alg_none(keys):
    header = b64(json.dumps({"alg": "none", "kid": "rsa1"}).encode())
    body = b64(json.dumps(claims()).encode())
    return header + "." + body + "."


def hs_confusion(keys):
    pem = keys["rsa"].public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    import hmac
    import hashlib
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa1"}).encode())
    body = b64(json.dumps(claims()).encode())
    sig = hmac.new(pem, (header + "." + body).encode(), hashlib.sha256).digest()
    return header + "." + body + "." + b64(sig)


CASES = {
    "missing": (lambda k: None, "missing"),
    "garbage": (lambda k: "not-a-token", "malformed"),
    "alg_none": (forged_alg_none, "alg_not_allowed"),
    "hs_rs_confusion": (hs_confusion, "alg_not_allowed"),
    "bad_signature": (lambda k: token(k)[:-4] + ("AAAA" if not token(k).endswith("AAAA")
                                                  else "BBBB"), "bad_signature"),
    "unknown_kid": (lambda k: token(k, kid="nope"), "unknown_kid"),
    "expired": (lambda k: token(k, exp=int(time.time()) - 120), "expired"),
    "not_yet_valid": (lambda k: token(k, nbf=int(time.time()) + 600), "not_yet_valid"),
    "wrong_issuer": (lambda k: token(k, iss="https://evil.example.com"), "wrong_issuer"),
    "wrong_audience": (lambda k: token(k, aud=["other", "more"]), "wrong_audience"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_tokens(jgw, keys, origin, case):
    make, reason = CASES[case]
    origin.reset_log()
    before = rejected(jgw).get(("main", reason), 0)
    resp = get(jgw, "/secure/echo?case=" + case, make(keys))
    assert resp.status == 401
    assert resp.header("WWW-Authenticate") == \
        'Bearer error="invalid_token", error_description="%s"' % reason
    assert resp.json()["error"] == "unauthorized"
    assert not any(case in line for line in origin.log()), "reached the origin"
    assert rejected(jgw).get(("main", reason), 0) == before + 1


def test_clock_skew_accepts_recently_expired(jgw, keys):
    assert get(jgw, "/secure/echo", token(keys, exp=int(time.time()) - 10)).status == 200


def test_open_route_needs_no_token(jgw):
    assert get(jgw, "/open/echo").status == 200


def test_repeat_tokens_are_cached(jgw, keys):
    tok = token(keys, "ES256", "ec1")
    started = time.monotonic()
    for _ in range(200):
        assert get(jgw, "/secure/echo", tok).status == 200
    assert time.monotonic() - started < 30


def test_jwks_reloaded_on_sighup(work_dir, origin, keys, tmp_path):
    """A key added to the JWKS file is used after SIGHUP, and a removed one
    no longer is."""
    import os
    import signal
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [k for k in keys["jwks"]["keys"] if k["kid"] == "rsa1"]}))
    g = Gateway(work_dir, "jwt_reload", CONFIG, origin=origin.port, admin=free_port(),
                issuer=ISSUER, jwks=str(path), secret=b64(SECRET))
    g.start()
    try:
        assert get(g, "/secure/echo", token(keys, "ES256", "ec1")).status == 401
        assert get(g, "/secure/echo", token(keys, "RS256", "rsa1")).status == 200
        path.write_text(json.dumps({"keys": [k for k in keys["jwks"]["keys"]
                                             if k["kid"] == "ec1"]}))
        mark = g.log_size()
        os.kill(g.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "configuration reloaded" not in g.log_text(mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # workers switch at their next loop turn
        assert get(g, "/secure/echo", token(keys, "ES256", "ec1")).status == 200
        assert get(g, "/secure/echo", token(keys, "RS256", "rsa1")).status == 401
    finally:
        g.stop()
