#!/usr/bin/env bash
# Conformance of the technographic plugin's fingerprint engine with the reference engine,
# wappalyzer-core: both run over the corpus in tests/conformance/wappalyzer/pages with the
# shipped rules (config/fingerprints) and with a community-format rule file written for this
# test (tests/conformance/wappalyzer/rules); names, versions and confidences must agree except
# where differences.json lists a deliberate difference with its reason.
#
# wappalyzer-core is installed from the npm registry, at a pinned version, into a directory
# under the target dir when missing (never globally). Needs node and npm. Non-interactive;
# exits non-zero on any unexplained difference. Usage: tests/conformance/wappalyzer.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
HERE="$ROOT/tests/conformance/wappalyzer"
CORE_VERSION=6.10.66
PREFIX="$TARGET/conformance/wappalyzer"
CORE="$PREFIX/node_modules/wappalyzer-core"

installed="$(node -p "try { require('$CORE/package.json').version } catch (e) { '' }")"
if [[ "$installed" != "$CORE_VERSION" ]]; then
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "wappalyzer-core@$CORE_VERSION"
fi

(cd "$ROOT" && cargo build --quiet --locked -p technographic --example conformance)
RUN="$TARGET/debug/examples/conformance"
PAGES=("$HERE"/pages/*.html)

status=0
check() { # label technologies categories
  "$RUN" "$2" "$3" "${PAGES[@]}" | node "$HERE/driver.js" "$CORE" "$2" "$3" "$HERE/differences.json" "$1" || status=1
}
check shipped "$ROOT/config/fingerprints/technologies.json" "$ROOT/config/fingerprints/categories.json"
check community-format "$HERE/rules/technologies.json" "$HERE/rules/categories.json"
exit $status
