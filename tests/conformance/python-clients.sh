#!/usr/bin/env bash
# Drives the CRM emulators with the vendors' widely used Python clients (simple-salesforce,
# HubSpot's official hubspot-api-client), so the emulators answer what real clients send, not
# only what tierd's own connectors send. Runs the emulators through the built `tierd emulate`.
#
# Needs python3 (3.9+) and network access to PyPI the first time: the clients are installed,
# at pinned versions, into a virtualenv under the target dir when missing. Non-interactive;
# exits non-zero on any failure. Usage: tests/conformance/python-clients.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/conformance/venv"
PINS=(simple-salesforce==1.12.10 hubspot-api-client==12.0.0)

if ! "$VENV/bin/python" -c 'import simple_salesforce, hubspot' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi

if [[ -z "${TIERD_BIN:-}" ]]; then
  (cd "$ROOT" && cargo build --quiet --locked -p tierd --bin tierd)
  TIERD_BIN="$TARGET/debug/tierd"
fi
exec "$VENV/bin/python" "$ROOT/tests/conformance/python_clients.py" "$TIERD_BIN"
