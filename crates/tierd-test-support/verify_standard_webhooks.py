"""Verifies Standard Webhooks 1.0 signatures with Python's standard library only.

An implementation independent of tierd's, for tierd's tests. Reads JSON on stdin:
{"secret": "whsec_...", "messages": [{"id", "timestamp", "signature", "body"}, ...]}
and prints a JSON list with one boolean per message: whether one of its `v1,` signatures is the
base64 HMAC-SHA256 of "id.timestamp.body" under the secret's base64-decoded bytes.
"""

import base64
import hashlib
import hmac
import json
import sys


def verify(key: bytes, message: dict) -> bool:
    signed = f"{message['id']}.{message['timestamp']}.{message['body']}".encode("utf-8")
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    for entry in message["signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def main() -> None:
    request = json.load(sys.stdin)
    secret = request["secret"]
    if not secret.startswith("whsec_"):
        raise SystemExit("the secret must start with whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    print(json.dumps([verify(key, m) for m in request["messages"]]))


if __name__ == "__main__":
    main()
