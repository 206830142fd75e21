"""CurveZMQ keys derived from the cluster secret (docs/protocol.md §10)."""
from __future__ import annotations

import hashlib
import os
import unicodedata
from typing import Tuple

import zmq
from zmq.utils import z85

DERIVATION_TAG = "zerocos/curve/v2\0"
DEFAULT_CLUSTER = "zerocos"


def derive_keys(secret: str, cluster: str = DEFAULT_CLUSTER) -> Tuple[bytes, bytes]:
    """`(public, secret)` Z85 keys: scrypt(NFC secret, tag + cluster, N=2^14, r=8, p=1) as an X25519 scalar."""
    if not secret:
        raise ValueError("a secret must be a non-empty string")
    seed = hashlib.scrypt(
        unicodedata.normalize("NFC", secret).encode(),
        salt=(DERIVATION_TAG + cluster).encode(),
        n=2**14, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32,
    )
    secret_key = z85.encode(seed)
    return zmq.curve_public(secret_key), secret_key


def default_secret(path: str = os.path.join(os.path.expanduser("~"), ".zerocos", "secret")) -> str:
    """The first line of the per-user secret file (§10.1); refused when others may read it."""
    if os.stat(path).st_mode & 0o077:
        raise PermissionError(f"the secret file {path} can be read by other users: chmod 600 {path}")
    with open(path, encoding="utf-8") as file:
        secret = file.readline().strip()
    if not secret:
        raise ValueError(f"the secret file {path} is empty")
    return secret
