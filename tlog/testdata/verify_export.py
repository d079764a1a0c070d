#!/usr/bin/env python3
"""Checks a Hindsight export with no Hindsight code: Python's hashlib and the
`cryptography` package only, from the formats as documented (package tlog).

    verify_export.py EXPORT.jsonl VERIFIER_KEY [PROOF.json]

1. Rebuilds every event's leaf (the canonical encoding hindsight-event-v1)
   from the export's lines, and the RFC 6962 Merkle tree hash of all of them
   (RFC 6962 section 2.1, by its recursive definition).
2. Compares it with the trailer, and checks the trailer's signed checkpoint
   (C2SP tlog-checkpoint in a C2SP signed note, Ed25519) with the key.
3. With PROOF.json (the data of a GraphQL inclusionProof query with
   position, treeSize, hashes), checks that inclusion proof of that event
   against the checkpoint's root (RFC 9162 section 2.1.3.2).

Exit code 0 when everything holds; it prints what it checked.
"""
import base64
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def field(b):
    return struct.pack(">I", len(b)) + b


def leaf_data(e):
    parts = [b"hindsight-event-v1", str(e["position"]).encode(), e["streamId"].encode(),
             str(e["version"]).encode(), e["id"].encode(), e["type"].encode(),
             e["data"], e["metadata"], e["recordedAt"].encode(), e["hash"].encode()]
    return b"".join(field(p) for p in parts)


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def mth(leaves):
    """RFC 6962 section 2.1: the Merkle Tree Hash of a list of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def raw_json(line, key):
    """The exact bytes of a JSON value in the line (the export keeps data and
    metadata byte for byte as stored, which is what the hashes cover)."""
    dec = json.JSONDecoder()
    start = line.find('"%s":' % key)
    if start < 0:
        return b""
    start += len(key) + 3
    _, end = dec.raw_decode(line, start)
    return line[start:end].encode()


def open_note(note, vkey):
    name, key_hash, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 1 and len(key) == 33, "not an Ed25519 verifier key"
    text, sigs = note.rsplit("\n\n", 1)
    text += "\n"
    for line in sigs.splitlines():
        if line.startswith("\u2014 " + name + " "):
            sig = base64.b64decode(line.split(" ", 2)[2])
            assert sig[:4].hex() == key_hash, "signature by another key"
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(sig[4:], text.encode())
            return text.splitlines()
    raise SystemExit("no signature by " + name)


def root_from_inclusion(index, size, leaf, path):
    """RFC 9162 section 2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise SystemExit("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise SystemExit("proof too short")
    return r


def main():
    export, vkey = sys.argv[1], sys.argv[2]
    if "+" not in vkey:  # a file holding the key
        vkey = open(vkey).read().strip()
    leaves, datas, trailer = [], [], None
    with open(export, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            obj = json.loads(line)
            if "trailer" in obj:
                trailer = obj["trailer"]
                continue
            obj["data"] = raw_json(line, "data")
            obj["metadata"] = raw_json(line, "metadata")
            assert obj["position"] == len(leaves) + 1, "positions are not consecutive"
            d = leaf_data(obj)
            datas.append(d)
            leaves.append(leaf_hash(d))
    root = mth(leaves)
    print("events:", len(leaves), "root:", root.hex())
    assert trailer, "no trailer"
    assert trailer["events"] == len(leaves) and trailer["rootHash"] == root.hex(), "the trailer does not match"
    print("trailer: matches (events, root)")
    lines = open_note(trailer["checkpoint"], vkey)
    assert int(lines[1]) == len(leaves) and base64.b64decode(lines[2]) == root, "the checkpoint does not match"
    print("checkpoint: signature verifies with", vkey.split("+")[0] + ";", "origin", lines[0] + ",", "size", lines[1] + ",", "root matches")
    if len(sys.argv) > 3:
        p = json.load(open(sys.argv[3]))
        pos, size = int(p["position"]), int(p["treeSize"])
        got = root_from_inclusion(pos - 1, size, leaves[pos - 1], [bytes.fromhex(h) for h in p["hashes"]])
        assert got == mth(leaves[:size]), "the inclusion proof does not lead to the root"
        print("inclusion proof: position", pos, "is in the tree of", size, "events")
    print("OK")


if __name__ == "__main__":
    main()
