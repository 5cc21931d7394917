#!/usr/bin/env python3
"""A tierd exec plugin in Python (stdlib only): for each account, the length of its domain and its
top-level domain. It speaks the stdio protocol of docs/plugin-protocol.md: every message is a
4-byte big-endian length followed by that many bytes of UTF-8 JSON.

Configure it in tierd.toml:

    [plugins.domain-facts]
    mode = "exec"
    command = "plugins/examples/exec-python/plugin.py"
"""

import json
import struct
import sys

IN = sys.stdin.buffer
OUT = sys.stdout.buffer


def read_message():
    header = IN.read(4)
    if len(header) < 4:
        return None  # the host closed the pipe: exit quietly
    (length,) = struct.unpack(">I", header)
    return json.loads(IN.read(length))


def send(message):
    body = json.dumps(message).encode("utf-8")
    OUT.write(struct.pack(">I", len(body)) + body)
    OUT.flush()


def log(level, message):
    send({"kind": "log", "level": level, "message": message})


DESCRIPTION = {
    "name": "domain-facts",
    "version": "0.1.0",
    "facts": [
        {"name": "domain.length", "type": "number"},
        {"name": "domain.tld", "type": "string"},
    ],
    "batch_size": 100,
}


def enrich(request):
    results = []
    for account in request["accounts"]:
        domain = account.get("domain")
        if not domain:
            results.append({"key": account["key"], "no_match": True})
            continue
        facts = {"domain.length": len(domain), "domain.tld": domain.rsplit(".", 1)[-1]}
        results.append({"key": account["key"], "facts": facts})
    log("debug", "enriched %d accounts" % len(results))
    return {"results": results}


def main():
    while True:
        message = read_message()
        if message is None or message["kind"] == "shutdown":
            return
        try:
            if message["kind"] == "init":
                send({"kind": "ok", "body": {}})
            elif message["kind"] == "describe":
                send({"kind": "ok", "body": DESCRIPTION})
            elif message["kind"] == "enrich":
                send({"kind": "ok", "body": enrich(message["request"])})
            else:
                send({"kind": "error", "error": "unknown message kind %r" % message["kind"]})
        except Exception as e:  # one bad request must not end the plugin
            send({"kind": "error", "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
