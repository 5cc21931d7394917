#!/usr/bin/env bash
# The dashboard in a real browser: a daemon (`tierd run`) on the HubSpot emulator, driven by
# headless Chromium through WebDriver (Python selenium in a venv under target/). Installs Debian's
# chromium and chromium-driver when missing (as root, non-interactive), so a fresh machine and CI
# pass. Writes screenshots of the main pages to docs/dashboard/. Non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "chromium and chromium-driver are missing: run as root (or apt-get install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

venv=target/dashboard-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'selenium>=4.20,<5'
fi

CARGO_INCREMENTAL=0 cargo build -q -p tierd
tierd=$repo/target/debug/tierd

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The emulator on a free port; its first lines say where and which token it accepts.
"$tierd" emulate hubspot --no-limits --accounts 300 --seed 7 >"$work/emulator.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    grep -q 'private-app token' "$work/emulator.out" && break
    sleep 0.1
done
hubspot_url=$(sed -n 's/^HubSpot emulator: .* at \(.*\)$/\1/p' "$work/emulator.out")
hubspot_token=$(sed -n 's/^private-app token ([^)]*): //p' "$work/emulator.out")
[ -n "$hubspot_url" ] && [ -n "$hubspot_token" ] || { cat "$work/emulator.out"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/tierd.toml" <<TOML
[model]
path = "$repo/config/model.toml"

[store]
url = "sqlite://$work/tierd.db"

[connector]
type = "hubspot"
base_url = "$hubspot_url"
token_env = "DASH_HUBSPOT_TOKEN"
rate_limit = 0
search_rate_per_sec = 0

[pipeline]
as_of = "2026-11-24"

[schedule]
incremental = "off"

[api]
listen = "127.0.0.1:$port"
token_env = "DASH_API_TOKEN"

[log]
filter = "warn"
TOML
export DASH_HUBSPOT_TOKEN=$hubspot_token
export DASH_API_TOKEN=dashboard-browser-test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
"$tierd" run --config "$work/tierd.toml" >"$work/daemon.log" 2>&1 &
pids+=($!)

SE_AVOID_STATS=true "$venv/bin/python" tests/dashboard/drive.py \
    --base "http://127.0.0.1:$port" --db "$work/tierd.db" --profile "$work/chrome" \
    --screenshots docs/dashboard || { echo "--- daemon log"; tail -n 50 "$work/daemon.log"; exit 1; }
