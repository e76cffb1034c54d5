#!/usr/bin/python3
"""Writes the JWT fixtures test_jwt.c verifies: JWK Sets and tokens.

Keys come from `openssl genpkey`, tokens from PyJWT (Debian python3-jwt);
only public keys (and the HMAC test secret) are written. Times are fixed:
test_jwt.c verifies at NOW below, and valid tokens expire in 2100.

    /usr/bin/python3 tests/unit/jwt_fixtures.py [OUTDIR]

OUTDIR defaults to tests/unit/fixtures/jwt next to this script. Run it
again after changing the token list here and commit the result.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

import jwt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

NOW = 1700000000
FAR = 4102444800  # 2100-01-01

GENPKEY = {
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "p521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    "ed25519": ["-algorithm", "ED25519"],
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def genpkey(tmp, name, kind):
    path = os.path.join(tmp, name + ".pem")
    subprocess.run(["openssl", "genpkey", *GENPKEY[kind], "-out", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path, "rb") as f:
        return load_pem_private_key(f.read(), None)


def jwk(key, kind, kid, **extra):
    to_jwk = {"rsa": RSAAlgorithm, "ed25519": OKPAlgorithm}.get(kind, ECAlgorithm).to_jwk
    d = json.loads(to_jwk(key.public_key()))
    if d["kty"] == "EC":
        # Older PyJWT drops leading zero bytes of x and y; RFC 7518 6.2.1.2
        # wants the full coordinate size (a P-256 key: 1 in 128 has one).
        numbers = key.public_key().public_numbers()
        size = (numbers.curve.key_size + 7) // 8
        d["x"] = b64(numbers.x.to_bytes(size, "big"))
        d["y"] = b64(numbers.y.to_bytes(size, "big"))
    d["kid"] = kid
    d.update(extra)
    return d


def hs256_by_hand(header, claims, secret):
    """PyJWT refuses a PEM as HMAC secret; the attack does not."""
    seg = ".".join(b64(json.dumps(x, separators=(",", ":")).encode()) for x in (header, claims))
    return seg + "." + b64(hmac.new(secret, seg.encode(), hashlib.sha256).digest())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "jwt")
    os.makedirs(out, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        rsa1 = genpkey(tmp, "rsa1", "rsa")
        rsa2 = genpkey(tmp, "rsa2", "rsa")
        rsa3 = genpkey(tmp, "rsa3", "rsa")
        ec256 = genpkey(tmp, "ec256", "p256")
        ec384 = genpkey(tmp, "ec384", "p384")
        ec521 = genpkey(tmp, "ec521", "p521")
        ed = genpkey(tmp, "ed", "ed25519")
    secret = subprocess.run(["openssl", "rand", "64"], check=True, capture_output=True).stdout

    jwks = {"keys": [
        jwk(rsa1, "rsa", "rsa1", use="sig"),           # no alg: RS* and PS*
        jwk(rsa2, "rsa", "rsa2", alg="PS256"),         # PS256 only
        jwk(ec256, "p256", "ec256", alg="ES256", use="sig"),
        jwk(ec384, "p384", "ec384"),
        jwk(ed, "ed25519", "ed", alg="EdDSA"),
        {"kty": "oct", "kid": "hs", "k": b64(secret)},
        jwk(rsa3, "rsa", "enc", use="enc"),            # never used to verify
        jwk(ec521, "p521", "p521", alg="ES512"),       # not supported: skipped
    ]}
    jwks_rsa = {"keys": [jwk(rsa1, "rsa", "rsa1")]}

    claims = {
        "iss": "https://auth.example.com",
        "aud": "api",
        "sub": "user-42",
        "iat": NOW,
        "exp": FAR,
        "role": "admin",
        "tenant": 7,
        "scope": ["read", "write"],
        "name": "Zo\u00eb \u2603 \U0001F600",  # escaped by json.dumps: \u00eb, a surrogate pair
    }

    def sign(alg, key, kid=None, **changes):
        c = dict(claims)
        for k, v in changes.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return jwt.encode(c, key, algorithm=alg, headers={"kid": kid} if kid else None)

    rsa1_pem = rsa1.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    tokens = {}
    for alg in ("HS256", "HS384", "HS512"):
        tokens[alg] = sign(alg, secret, "hs")
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        tokens[alg] = sign(alg, rsa1, "rsa1")
    tokens["ES256"] = sign("ES256", ec256, "ec256")
    tokens["ES384"] = sign("ES384", ec384, "ec384")
    tokens["EdDSA"] = sign("EdDSA", ed, "ed")
    tokens["HS256_nokid"] = sign("HS256", secret)
    tokens["RS256_nokid"] = sign("RS256", rsa1)
    tokens["PS384_nokid"] = sign("PS384", rsa1)
    tokens["ES256_nokid"] = sign("ES256", ec256)
    tokens["ES384_nokid"] = sign("ES384", ec384)
    tokens["EdDSA_nokid"] = sign("EdDSA", ed)
    tokens["PS256_rsa2"] = sign("PS256", rsa2, "rsa2")
    tokens["RS256_rsa2"] = sign("RS256", rsa2, "rsa2")  # key says PS256 only
    tokens["RS256_unknown_kid"] = sign("RS256", rsa1, "nope")
    tokens["RS256_wrong_kid"] = sign("RS256", rsa2, "rsa1")  # rsa2's signature, rsa1's kid
    tokens["ES256_kid_ec384"] = sign("ES256", ec256, "ec384")
    tokens["RS256_enc"] = sign("RS256", rsa3, "enc")
    tokens["ES512_p521"] = sign("ES512", ec521, "p521")
    tokens["none"] = jwt.encode(claims, None, algorithm="none")
    tokens["none_kid"] = jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa1"})
    tokens["HS256_confusion"] = hs256_by_hand(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa1"}, claims, rsa1_pem)
    tokens["HS256_confusion_nokid"] = hs256_by_hand({"alg": "HS256", "typ": "JWT"}, claims,
                                                    rsa1_pem)
    tokens["RS256_expired"] = sign("RS256", rsa1, "rsa1", exp=1600000000)
    tokens["ES256_exp_now"] = sign("ES256", ec256, "ec256", exp=NOW)
    tokens["ES256_exp_float"] = sign("ES256", ec256, "ec256", exp=NOW + 0.5)
    tokens["ES256_no_exp"] = sign("ES256", ec256, "ec256", exp=None)
    tokens["ES256_nbf_future"] = sign("ES256", ec256, "ec256", nbf=NOW + 100)
    tokens["HS256_iss_wrong"] = sign("HS256", secret, "hs", iss="https://evil.example.com")
    tokens["HS256_iss_missing"] = sign("HS256", secret, "hs", iss=None)
    tokens["HS256_aud_array"] = sign("HS256", secret, "hs", aud=["other", "api"])
    tokens["HS256_aud_array_wrong"] = sign("HS256", secret, "hs", aud=["other", "more"])
    tokens["HS256_aud_wrong"] = sign("HS256", secret, "hs", aud="web")
    tokens["HS256_aud_missing"] = sign("HS256", secret, "hs", aud=None)
    tokens["HS256_role_user"] = sign("HS256", secret, "hs", role="user")

    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "jwks_rsa.json"), "w") as f:
        json.dump(jwks_rsa, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "secret.txt"), "w") as f:
        f.write(b64(secret) + "\n")
    with open(os.path.join(out, "tokens.txt"), "w") as f:
        f.write("# name token: written by tests/unit/jwt_fixtures.py (NOW = %d)\n" % NOW)
        for name, token in tokens.items():
            f.write("%s %s\n" % (name, token))


if __name__ == "__main__":
    main()
