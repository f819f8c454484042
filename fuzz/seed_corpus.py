#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's own inputs (standard library only).

    fuzz/seed_corpus.py [REALDATA_DIR]

- decoder: every event of tests/conformance/*.json as its own document (an object with
  `"authorization": {"claims": {...}}` becomes `"Bearer <HS256 JWT>"`, as the
  conformance tests do), every case's events as one NDJSON stream (state across events),
  and every file of REALDATA_DIR (default tests/realdata, its subfolders included) whole
  and line by line;
- token: the bearer tokens of those events (with and without `Bearer `), each once for
  the reader without a key set and once for the one with the fuzz target's key set, plus
  tokens signed with that key set's HMAC key;
- scrub: every decoder seed of at most 8 KiB, behind a byte that places the planted token;
- policy_loader: policies/*.toml, examples/policies/*.toml,
  tests/conformance/policies/*.toml, each also as JSON, and a minimal `extends` of every
  shipped policy.

Files are named by the SHA-1 of their content (as libFuzzer names them), so running this
again adds nothing twice.
"""

import base64
import glob
import hashlib
import hmac
import json
import os
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
# tests/common/mod.rs TEST_KEY, and the fuzz token target's JWKS HMAC key (kid k1).
TEST_KEY = b"conformance-test-key"
JWKS_KEY = b"k1-secret"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, key=TEST_KEY, kid=None) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def document(event):
    """tests/common/mod.rs `document`: a string is taken raw; claims become a JWT."""
    if isinstance(event, str):
        return event
    ev = dict(event)
    auth = ev.get("authorization")
    if isinstance(auth, dict) and "claims" in auth:
        ev["authorization"] = "Bearer " + jwt(auth["claims"])
    return json.dumps(ev, separators=(",", ":"))


counts = {}


def put(target: str, data):
    if isinstance(data, str):
        data = data.encode()
    if not data:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1
    if target == "decoder" and len(data) <= 8192:
        # The scrubber reads the same texts (its first byte places a planted token).
        put("scrub", bytes([len(data) % 256]) + data)


def seed_decoder_and_tokens(realdata: str):
    for case in sorted(glob.glob(os.path.join(ROOT, "tests", "conformance", "*.json"))):
        with open(case, encoding="utf-8") as f:
            events = json.load(f).get("events", [])
        docs = [document(e) for e in events]
        for d in docs:
            put("decoder", d)
        put("decoder", "\n".join(docs) + "\n")
        for e in events:
            if not isinstance(e, dict):
                continue
            auth = e.get("authorization")
            if isinstance(auth, dict) and "claims" in auth:
                claims = auth["claims"]
                for token in (jwt(claims), "Bearer " + jwt(claims)):
                    put("token", b"\x00" + token.encode())
                    put("token", b"\x01" + token.encode())
                put("token", b"\x01" + jwt(claims, JWKS_KEY, "k1").encode())
                put("token", b"\x01" + jwt(claims, b"forged", "k1").encode())
            elif isinstance(auth, str):
                put("token", b"\x00" + auth.encode())
                put("token", b"\x01" + auth.encode())
    if os.path.isdir(realdata):
        for path in sorted(glob.glob(os.path.join(realdata, "**", "*"), recursive=True)):
            if not path.endswith((".json", ".ndjson", ".log")):
                continue
            with open(path, "rb") as f:
                data = f.read()
            put("decoder", data)
            if path.endswith((".ndjson", ".log")):
                for line in data.splitlines():
                    if line.strip():
                        put("decoder", line)
    else:
        print(f"seed: {realdata} not found, real sign-in records not seeded", file=sys.stderr)


def seed_policies():
    pattern = [
        ("policies", "*.toml"),
        ("examples/policies", "*.toml"),
        ("tests/conformance/policies", "*.toml"),
    ]
    shipped = []
    for folder, glob_ in pattern:
        for path in sorted(glob.glob(os.path.join(ROOT, folder, glob_))):
            with open(path, "rb") as f:
                data = f.read()
            put("policy_loader", data)
            try:
                put("policy_loader", json.dumps(tomllib.loads(data.decode()), indent=1, default=str))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                pass
            if folder == "policies":
                shipped.append(os.path.basename(path)[: -len(".toml")])
    for name in shipped:
        put("policy_loader", f'extends = "{name}"\nversion = "fuzz-{name}"\n')
        put(
            "policy_loader",
            f'extends = "{name}"\nversion = "fuzz-{name}-2"\ntitle = "t"\n\n'
            '[lists]\nextra_apps = ["00000000-0000-0000-0000-000000000000"]\n',
        )
        # The window and history forms (docs/rules.md 2.6, 2.7).
        put(
            "policy_loader",
            f'extends = "{name}"\nversion = "fuzz-{name}-w"\n\n'
            '[windows.w]\nwhen = { attr = "event.kind", eq = "sign_in" }\n'
            'by = ["sign_in.user_id"]\nwithin = "10m"\ndistinct = "sign_in.app_id"\n\n'
            '[histories.h]\nwhen = { attr = "sign_in.success", eq = true }\n'
            'by = ["sign_in.user_id"]\nvalues = ["sign_in.app_id"]\nwithin = "14d"\n\n'
            '[conditions]\nnew_app = { all = [{ window = "w", ge = 2 }, { seen = "h", eq = false }, '
            '{ history_age = "h", ge = "1d" }] }\n',
        )


def main():
    realdata = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "realdata")
    seed_decoder_and_tokens(realdata)
    seed_policies()
    for t in ("decoder", "token", "policy_loader", "scrub"):
        d = os.path.join(CORPUS, t)
        n = len(os.listdir(d)) if os.path.isdir(d) else 0
        print(f"seed: {t}: {counts.get(t, 0)} new, {n} in corpus")


if __name__ == "__main__":
    main()
