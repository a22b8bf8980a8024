#!/usr/bin/env python3
"""Independent verifier of an Auditrail trail: trusts neither the server nor its store.

Checks records exported as JSON lines (`GET /v1/exports/...` with format `jsonl`, the activity-log
view, or `GET /v1/events/{id}` bodies) against seal digests (`GET /v1/integrity/seals/{seq}`,
one JSON file each) and the sealing public key, which the auditor keeps from elsewhere (the
deployment's KMS key or `auditrail public-key`, compared once, out of band).

    verify_trail.py --public-key seal-key.pem --digests digests/ \
        [--anchor SEQ:HASH] [--from T --to T] export.jsonl

What it checks (the formats are in docs/integrity.md):
  1. every digest's statement is signed by the key (ECDSA P-256, SHA-256, over its RFC 8785 JCS);
  2. every digest's leaves give its stated RFC 9162 root, and its size;
  3. the digests form one chain: consecutive sequence numbers, each `prev` the SHA-256 of the
     previous statement's JCS, each `log_root` the RFC 9162 root of the log of seal bodies; and
     with `--anchor SEQ:HASH` (a seal kept from an earlier run) the chain still holds that seal,
     so a chain cut off at its end, digests included, fails;
  4. every record re-derives to the leaf its seal holds for its id: its fields in clear, its
     personal values through their salted commitments (erased ones through the commitment
     kept in the record);
  5. the export is complete: every sealed leaf that occurred inside the window the export covers
     (`--from`/`--to`, the export's own filter; by default from its earliest to its latest
     occurrence time) is in the export, or was removed by a retention purge whose note a seal
     signed; otherwise it was deleted;
  6. a record that no digest holds is pending (stored after the last seal) only if its batch is
     dated after the last seal's `sealed_at` less `--grace` (default 300 s: the sealer's settle
     time and slack), is not dated in the future, and is not a batch a sealed record carries;
     otherwise it was inserted.

Exit status 0 when everything verifies, 1 when anything does not (each problem is printed as
`FAIL record <id>: <kind>: …` or `FAIL seal <seq>: …`), 2 on bad usage. Needs Python >= 3.11
with the `cryptography` and `rfc8785` packages.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jcs(value) -> bytes:
    return rfc8785.dumps(value)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def micros(text: str) -> int:
    """An RFC 3339 time (any offset, any fraction digits) as integer microseconds since the epoch."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text}")
    base, frac, zone = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    whole = (dt - EPOCH) // timedelta(seconds=1)
    return whole * 1_000_000 + int((frac or "0")[:6].ljust(6, "0"))


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_micros(text: str) -> int | None:
    """A ULID's time (its first 10 characters, milliseconds) as microseconds; None if not a ULID."""
    if not isinstance(text, str) or len(text) != 26 or text[0] not in "01234567":
        return None
    text = text.upper()
    if any(ch not in CROCKFORD for ch in text):
        return None
    ms = 0
    for ch in text[:10]:
        ms = ms * 32 + CROCKFORD.index(ch)
    return ms * 1000


def pointer(path: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def personal_root(path: list[str]) -> bool:
    if path and path[0] in ("description", "data", "subject", "failure_reason_code"):
        return True
    if len(path) >= 2 and path[0] == "actor":
        return path[1] in ("user_id", "username", "full_name")
    if len(path) >= 3 and path[0] == "attachments":
        return path[2] == "name"
    return False


def record_leaf(rec: dict) -> tuple[bytes, list[str], list[str]]:
    """The record's leaf hash, the erasure jobs named in it, and problems found."""
    integrity = rec.get("integrity")
    if not integrity:
        return b"", [], ["the record carries no integrity data"]
    body = {k: v for k, v in rec.items() if k != "integrity"}
    body["occurred_at"] = micros(rec["occurred_at"])
    body["received_at"] = micros(rec["received_at"])
    key = base64.b64decode(integrity["key"]) if integrity.get("key") else None
    salts = integrity.get("salts", {})
    erased = integrity.get("erased", {})
    jobs, problems, seen = set(), [], set()

    def marker(ptr: str, value) -> str:
        if ptr in erased:
            seen.add(ptr)
            jobs.add(erased[ptr]["job"])
            return "c:" + erased[ptr]["commitment"]
        if ptr in salts:
            salt = base64.b64decode(salts[ptr])
        elif key is not None:
            salt = hmac.new(key, b"auditrail/v1/salt\x00" + ptr.encode(), hashlib.sha256).digest()[:16]
        else:
            problems.append(f"{ptr}: a personal value without a salt")
            return "c:?"
        return "c:" + b64(hashlib.sha256(b"auditrail/v1/commit\x00" + salt + jcs(value)).digest())

    def walk(node, path):
        if isinstance(node, dict):
            return {k: walk(v, path + [k]) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, path + [str(i)]) for i, v in enumerate(node)]
        return marker(pointer(path), node) if personal_root(path) else node

    body = walk(body, [])
    problems += [f"{p}: an erased value is no longer in the record" for p in erased if p not in seen]
    doc = {"v": 1, "batch": integrity["batch"], "record": body}
    return leaf_hash(jcs(doc)), sorted(jobs), problems


def log_leaf(statement: dict) -> bytes:
    body = {k: v for k, v in statement.items() if k not in ("prev", "log_size", "log_root", "key_id")}
    return leaf_hash(jcs(body))


def show(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def rfc3339(text: str) -> int:
    try:
        return micros(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def anchor(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or not digest:
        raise argparse.ArgumentTypeError("takes SEQ:HASH, the `last seal` line of an earlier run")
    return int(seq), digest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--public-key", required=True, type=Path, help="the sealing key (PEM) you keep")
    ap.add_argument("--digests", required=True, type=Path, action="append",
                    help="a seal digest file (GET /v1/integrity/seals/{seq}) or a folder of them; repeatable")
    ap.add_argument("--anchor", type=anchor, action="append", default=[], metavar="SEQ:HASH",
                    help="a seal you kept from an earlier run (or `auditrail verify`): the chain must still hold it")
    ap.add_argument("--from", dest="start", type=rfc3339, metavar="TIME",
                    help="the export's window starts here (RFC 3339, the export filter's `from`)")
    ap.add_argument("--to", dest="end", type=rfc3339, metavar="TIME",
                    help="... and ends before this time (the filter's `to`)")
    ap.add_argument("--grace", type=float, default=300.0, metavar="SECONDS",
                    help="how long before the last seal a record in no digest may still be pending (default 300)")
    ap.add_argument("records", type=Path, nargs="*", help="JSON-lines files of records (an export)")
    args = ap.parse_args()

    key = serialization.load_pem_public_key(args.public_key.read_bytes())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        print("the public key is not a P-256 key", file=sys.stderr)
        return 2
    files = [f for p in args.digests for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    digests = sorted((json.loads(f.read_text()) for f in files), key=lambda d: d["statement"]["seq"])
    problems: list[str] = []

    # 1-3: signatures, roots, the chain, the log of seals, the anchors.
    sealed: dict[str, tuple[bytes, int, dict]] = {}
    log: list[bytes] = []
    statement_hash: dict[int, str] = {}
    cutoffs: dict[str, int] = {}
    prev = None
    for d in digests:
        st, seq = d["statement"], d["statement"]["seq"]
        try:
            key.verify(base64.b64decode(d["signature"]), jcs(st), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            problems.append(f"seal {seq}: the signature does not verify with the public key")
        leaves = [base64.b64decode(l["leaf"]) for l in d["leaves"]]
        if len(leaves) != st["size"] or b64(mth(leaves)) != st["root"]:
            problems.append(f"seal {seq}: its leaves do not give the signed root")
        if prev is not None:
            if seq != prev["seq"] + 1:
                problems.append(f"seal {seq}: seals {prev['seq'] + 1} to {seq - 1} are missing")
            elif st["prev"] != b64(hashlib.sha256(jcs(prev)).digest()):
                problems.append(f"seal {seq}: does not link to seal {prev['seq']}")
        elif seq != 0:
            problems.append(f"seals 0 to {seq - 1} are missing (the chain must start at 0)")
        log.append(log_leaf(st))
        if len(log) == st["log_size"] and b64(mth(log)) != st["log_root"]:
            problems.append(f"seal {seq}: the log of seals does not give its log root")
        for l in d["leaves"]:
            sealed[l["id"]] = (base64.b64decode(l["leaf"]), seq, l)
        # A purge note explains a gone leaf once a seal has signed it (the latest cutoff counts).
        for n in st.get("purges", []):
            cutoffs[n["category"]] = max(cutoffs.get(n["category"], 0), micros(n["before"]))
        statement_hash[seq] = b64(hashlib.sha256(jcs(st)).digest())
        prev = st
    for seq, digest in args.anchor:
        if seq not in statement_hash:
            problems.append(f"seal {seq}: missing: the anchored seal is not among the digests (the chain was cut off)")
        elif statement_hash[seq] != digest:
            problems.append(f"seal {seq}: replaced: it differs from the anchored seal")

    # 4: every record against its sealed leaf; 6: the others are pending, or inserted.
    records: list[tuple[dict, str]] = []
    for path in args.records:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                records.append((json.loads(line), f"{path.name}:{n}"))
    sealed_batches = {
        r["integrity"]["batch"] for r, _ in records
        if (r.get("id") or r.get("ID")) in sealed and isinstance(r.get("integrity"), dict)
    }
    last_sealed = micros(prev["sealed_at"]) if prev else None
    grace = int(args.grace * 1_000_000)
    now = (datetime.now(timezone.utc) - EPOCH) // timedelta(microseconds=1)
    checked, erased, pending = 0, [], 0
    exported: set[str] = set()
    times: list[int] = []
    for rec, where in records:
        rid = rec.get("id") or rec.get("ID")
        exported.add(rid)
        if isinstance(rec.get("occurred_at"), str):
            times.append(micros(rec["occurred_at"]))
        leaf, jobs, bad = record_leaf(rec)
        problems += [f"record {rid} ({where}): bad integrity data: {b}" for b in bad]
        if rid not in sealed:
            batch = (rec.get("integrity") or {}).get("batch")
            at = ulid_micros(batch)
            if bad:
                continue  # named above
            if at is None:
                problems.append(f"record {rid} ({where}): inserted: its batch {batch!r} is not a batch id")
            elif batch in sealed_batches:
                problems.append(f"record {rid} ({where}): inserted: in no seal, yet its batch {batch} was sealed")
            elif last_sealed is not None and at < last_sealed - grace:
                problems.append(f"record {rid} ({where}): inserted: in no seal, yet its batch {batch} is dated "
                                f"{show(at)}, before the last seal ({prev['sealed_at']}, less {args.grace:g} s)")
            elif at > now + grace:
                problems.append(f"record {rid} ({where}): inserted: its batch {batch} is dated in the future")
            else:
                pending += 1
            continue
        checked += 1
        want, seq, _ = sealed[rid]
        if leaf != want:
            problems.append(f"record {rid} ({where}): changed: does not match its leaf in seal {seq}")
        elif jobs:
            erased.append(f"{rid} (anonymised by DPO erasure {', '.join(jobs)})")

    # 5: every sealed leaf inside the export's window is in the export, or purged by a signed note.
    start = args.start if args.start is not None else min(times, default=None)
    end = args.end if args.end is not None else (max(times) + 1 if times else None)
    purged: dict[str, int] = {}
    if start is not None and end is not None:
        for rid, (_, seq, l) in sealed.items():
            if rid in exported or not start <= l["occurred_at"] < end:
                continue
            if l["occurred_at"] < cutoffs.get(l["category"], 0):
                purged[l["category"]] = purged.get(l["category"], 0) + 1
            else:
                problems.append(f"record {rid}: deleted: sealed in seal {seq} ({l['category']}, occurred "
                                f"{show(l['occurred_at'])}), inside the export's window, not in the export, "
                                "and no signed retention purge covers it")

    print(f"{len(digests)} seal(s), {checked} record(s) checked against their seals, {pending} not sealed yet")
    if start is not None and end is not None:
        print(f"  window checked for completeness: {show(start)} to {show(end)} (exclusive)")
    for category, count in sorted(purged.items()):
        print(f"  purged: {count} {category} record(s) removed by a signed retention purge")
    for e in erased:
        print(f"  erased: {e}")
    if prev is not None:
        print(f"  last seal: {prev['seq']}:{statement_hash[prev['seq']]}  (keep it; pass it as --anchor next time)")
    for p in problems:
        print(f"  FAIL {p}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
