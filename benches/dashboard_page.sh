#!/usr/bin/env bash
# A dashboard page at N accounts, on SQLite and PostgreSQL: a release `tierd run` (no schedule,
# file connector) over a store seeded with N accounts, signed in once, each page fetched 20 times
# with curl; prints the median and the slowest time of each page. Everything lives in a temp dir
# and a throwaway PostgreSQL schema, removed at the end.
#
#   cargo build --release -p tierd && benches/dashboard_page.sh 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
BIN=${TIERD_BIN:-target/release/tierd}
TOKEN=bench-token-0123456789abcdef
DIR=$(mktemp -d)
SCHEMA=bench_page_$$
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql -h 127.0.0.1 -d test -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

EXPLANATION='{"reasons": "uses Snowflake (+0.8); industry: Software (+0.5); no demo request in 90 days (-0.4)", "as_of": "2026-11-24", "detail": {"model": "bench@1", "score": 3.5, "coverage": 0.8, "components": [], "criteria": [], "positive": [], "negative": []}}'
SEED="WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $N)
    INSERT INTO accounts (id, name, domain, facts_hash, score, coverage, tier, model_version, scored_at)
    SELECT 'hubspot:' || CAST(1000000000 + i AS TEXT), 'Company ' || CAST(i AS TEXT), 'c' || CAST(i AS TEXT) || '.example',
        'h', (i % 500) / 100.0, 0.8,
        CASE WHEN i % 50 = 0 THEN 'tier_1' WHEN i % 50 < 5 THEN 'tier_2' WHEN i % 50 < 15 THEN 'tier_3' ELSE 'untiered' END,
        'bench@1', 0
    FROM n"
SEED_TEXTS="INSERT INTO account_texts (id, facts, explanation) SELECT id, '{}', '$EXPLANATION' FROM accounts"

run() {  # $1: backend name, $2: store url, $3: seed command
  local port=$(( 20000 + RANDOM % 20000 ))
  printf 'id,name\n' > "$DIR/accounts.csv"
  cat > "$DIR/tierd.toml" <<TOML
[model]
path = "$PWD/config/model.toml"
[store]
url = "$2"
[connector]
type = "file"
path = "$DIR/accounts.csv"
output = "$DIR/tiers.csv"
[schedule]
full = "off"
incremental = "off"
[api]
listen = "127.0.0.1:$port"
TOML
  TIERD_API_TOKEN=$TOKEN "$BIN" run --config "$DIR/tierd.toml" >"$DIR/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  local t0=$(date +%s.%N)
  eval "$3"
  echo "$1: seeded $N accounts in $(echo "$(date +%s.%N) - $t0" | bc) s"
  curl -s -c "$DIR/$1.jar" -o /dev/null -X POST -d "token=$TOKEN&next=/" "http://127.0.0.1:$port/login"
  # Signed in, or the figures would be the sign-in page's.
  curl -s -b "$DIR/$1.jar" -o "$DIR/page.html" "http://127.0.0.1:$port/accounts"
  grep -q "Sign out" "$DIR/page.html" \
    || { echo "$1: sign-in failed; the daemon's log:" >&2; tail -20 "$DIR/$1.log" >&2; exit 1; }
  for page in "/" "/accounts" "/accounts?tier=tier_2" "/accounts?q=Company%2077" "/accounts/hubspot:1000000042" "/runs"; do
    local times=()
    for _ in $(seq 20); do
      times+=("$(curl -s -b "$DIR/$1.jar" -o "$DIR/page.html" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port$page")")
    done
    grep -q "Sign out" "$DIR/page.html" || { echo "$1 $page: not a signed-in page" >&2; exit 1; }
    printf '%s\n' "${times[@]}" | awk -v b="$1" -v p="$page" '
      { if ($1 != 200) bad++; t[NR] = $2 * 1000 }
      END { n = asort(t); printf "%-10s %-32s median %7.1f ms  max %7.1f ms%s\n", b, p, t[int((n + 1) / 2)], t[n], bad ? "  (" bad " not 200)" : "" }'
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

[ "${ONLY:-}" = postgres ] || run sqlite "sqlite://$DIR/tierd.db" 'python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.execute(sys.argv[3]); c.commit()" "$DIR/tierd.db" "$SEED" "$SEED_TEXTS"'
psql -h 127.0.0.1 -d test -qc "CREATE SCHEMA $SCHEMA" >/dev/null
run postgres "postgres://127.0.0.1/test?options=-csearch_path%3D$SCHEMA" 'psql -h 127.0.0.1 -d test -qc "SET search_path TO $SCHEMA; $SEED; $SEED_TEXTS; ANALYZE accounts; ANALYZE account_texts" >/dev/null'
