#!/usr/bin/env bash
# `tierd score` against the pandas peer on generated accounts, side by side in one run.
#
#   benches/pandas_peer/run.sh [ACCOUNTS] [RUNS]      (default 1000000 accounts, 3 runs each)
#
# Builds the release binary if missing, installs pandas and numpy into target/pandas-venv when
# missing, generates the accounts into a temporary directory (deleted on exit), runs tierd and
# the peer alternately with /usr/bin/time -v, checks both gave every account the same score and
# tier, and prints wall time, peak RSS and CPU time of each run, then the medians and their ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
ACCOUNTS=${1:-1000000}
RUNS=${2:-3}
AS_OF=2026-11-24
TIERD=${TIERD:-target/release/tierd}
VENV=target/pandas-venv
[ -x "$TIERD" ] || cargo build --release -p tierd
if ! "$VENV/bin/python" -c 'import pandas, numpy' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet pandas numpy
fi
PY="$VENV/bin/python"
"$PY" -c 'import pandas, numpy, platform; print(f"pandas {pandas.__version__}, numpy {numpy.__version__}, python {platform.python_version()}")'
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"$TIERD" gen --accounts "$ACCOUNTS" --seed 7 --as-of "$AS_OF" --output "$DIR/accounts.csv" >/dev/null
echo "$ACCOUNTS accounts, $(du -m "$DIR/accounts.csv" | cut -f1) MB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # name, command...: prints "name wall_s rss_mb cpu_s (user + sys)"
    local name=$1; shift
    /usr/bin/time -v "$@" 2>"$DIR/time.txt" >/dev/null
    awk -v n="$name" -F': ' '/Elapsed \(wall clock\)/ {split($2, t, ":"); w = (length(t) == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2]}
        /User time/ {c += $2} /System time/ {c += $2}
        /Maximum resident/ {r = $2 / 1024} END {printf "%s %.2f %.0f %.2f\n", n, w, r, c}' "$DIR/time.txt"
}
: > "$DIR/results"
for i in $(seq "$RUNS"); do
    measure tierd "$TIERD" score --input "$DIR/accounts.csv" --output "$DIR/tierd.csv" --as-of "$AS_OF" | tee -a "$DIR/results"
    measure pandas "$PY" benches/pandas_peer/peer.py "$DIR/accounts.csv" "$DIR/peer.csv" "$AS_OF" | tee -a "$DIR/results"
done
"$PY" benches/pandas_peer/check.py "$DIR/tierd.csv" "$DIR/peer.csv"
echo "tierd output $(du -m "$DIR/tierd.csv" | cut -f1) MB (with coverage and explanations), peer output $(du -m "$DIR/peer.csv" | cut -f1) MB"
"$PY" - "$DIR/results" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = ("tierd", "pandas")
med = {n: statistics.median(float(r[1]) for r in rows if r[0] == n) for n in names}
cpu = {n: statistics.median(float(r[3]) for r in rows if r[0] == n) for n in names}
rss = {n: max(float(r[2]) for r in rows if r[0] == n) for n in names}
for n in names:
    print(f"{n}: median wall {med[n]:.2f} s, median CPU (user + sys) {cpu[n]:.2f} s, peak RSS {rss[n]:.0f} MB")
print(f"tierd is {med['pandas'] / med['tierd']:.1f}x faster than the pandas peer in median wall time, "
      f"{cpu['pandas'] / cpu['tierd']:.1f}x in CPU time")
PYEOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
