#!/usr/bin/env bash
# A full run of the daemon's pipeline at scale (issue 16 #3): `tierd sync --once --job full` over
# N generated accounts, timed with /usr/bin/time, printing the run's report (its `time:` line says
# where the time went) and the wall time and peak RSS.
#
#   benches/daemon_scale/run.sh N SOURCE STORE
#
#   N       accounts (e.g. 1000000)
#   SOURCE  file     the file connector over a generated CSV (tiers written to a file)
#           hubspot  the HubSpot emulator (`tierd emulate hubspot`), limits off unless
#                    LIMITS=documented is set (HubSpot's documented private-app limits)
#   STORE   sqlite | postgres (a fresh database `tierd_scale` on 127.0.0.1:5432, dropped after)
#
# No plugins: a run with the three built-in plugins against their emulators is the first run of
# `tierd demo --accounts N`, whose summary prints the same `time:` line.
#
# Needs a release build: `cargo build --release -p tierd`. Uses `TIERD_BIN` when set.
# A second run over the same store (nothing to push) is printed as well when SECOND=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
n=${1:?accounts}
source=${2:?file or hubspot}
store=${3:?sqlite or postgres}
tierd=${TIERD_BIN:-$repo/target/release/tierd}
[ -x "$tierd" ] || { echo "build first: cargo build --release -p tierd" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$store" = postgres ]; then
        psql -q -h 127.0.0.1 -U postgres -d test -c 'DROP DATABASE IF EXISTS tierd_scale' >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

case $store in
    sqlite) store_url="sqlite://$work/tierd.db" ;;
    postgres)
        psql -q -h 127.0.0.1 -U postgres -d test -c 'DROP DATABASE IF EXISTS tierd_scale' >/dev/null
        psql -q -h 127.0.0.1 -U postgres -d test -c 'CREATE DATABASE tierd_scale' >/dev/null
        store_url="postgres://postgres@127.0.0.1:5432/tierd_scale" ;;
    *) echo "STORE: sqlite or postgres" >&2; exit 2 ;;
esac

case $source in
    file)
        "$tierd" gen --accounts "$n" --seed 7 --as-of 2026-11-24 --output "$work/accounts.csv" >/dev/null
        connector=$(printf '[connector]\ntype = "file"\npath = "%s"\noutput = "%s"\n' \
            "$work/accounts.csv" "$work/tiers.csv")
        ;;
    hubspot)
        limits=(--no-limits)
        [ "${LIMITS:-off}" = documented ] && limits=()
        "$tierd" emulate hubspot "${limits[@]}" --accounts "$n" --seed 7 >"$work/emulator.out" 2>&1 &
        pids+=($!)
        for _ in $(seq 600); do
            grep -q 'private-app token' "$work/emulator.out" && break
            sleep 0.1
        done
        url=$(sed -n 's/^HubSpot emulator: .* at \(.*\)$/\1/p' "$work/emulator.out")
        export SCALE_HUBSPOT_TOKEN
        SCALE_HUBSPOT_TOKEN=$(sed -n 's/^private-app token ([^)]*): //p' "$work/emulator.out")
        [ -n "$url" ] && [ -n "$SCALE_HUBSPOT_TOKEN" ] || { cat "$work/emulator.out"; exit 1; }
        # With limits on, the connector keeps to HubSpot's documented ones (its defaults).
        pace=""
        [ "${LIMITS:-off}" = documented ] || pace=$'rate_limit = 0\nsearch_rate_per_sec = 0'
        connector=$(printf '[connector]\ntype = "hubspot"\nbase_url = "%s"\ntoken_env = "SCALE_HUBSPOT_TOKEN"\n%s\n' \
            "$url" "$pace")
        ;;
    *) echo "SOURCE: file or hubspot" >&2; exit 2 ;;
esac

cat >"$work/tierd.toml" <<TOML
[model]
path = "$repo/config/model.toml"

[store]
url = "$store_url"

$connector

[pipeline]
as_of = "2026-11-24"

[log]
filter = "warn"
TOML

echo "uptime: $(uptime)"
for pass in first second; do
    [ "$pass" = second ] && [ "${SECOND:-0}" != 1 ] && break
    echo "--- $pass full run: $n accounts, $source, $store"
    /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KB" \
        "$tierd" sync --once --job full --config "$work/tierd.toml" 2>&1 | grep -v '^\s*$'
done
# The emulator shares the machine's cores with tierd: say how much of them it took.
if [ "$source" = hubspot ] && [ -r "/proc/${pids[0]}/stat" ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ printf "emulator CPU: user %.1f s, sys %.1f s\n", $14 / hz, $15 / hz }' \
        "/proc/${pids[0]}/stat"
fi
