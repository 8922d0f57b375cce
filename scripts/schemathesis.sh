#!/usr/bin/env bash
# Property-based tests of the JSON API: start `dma serve --demo` on a free port with its own
# SQLite data folder, make an API token for the demo administrator, and let schemathesis
# generate requests for every operation in /api/openapi.json. It fails on any 5xx response
# and on any response that does not match the document. Called by .ci/run after the cargo
# tests (which build target/debug/dma); runnable alone the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

# Both pinned: an unpinned hypothesis is whatever PyPI has that day, and a CI run must not
# change because a tool released.
SCHEMATHESIS_VERSION=4.32.5
HYPOTHESIS_VERSION=6.170.17
venv=target/schemathesis-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" \
  || ! "$venv/bin/pip" show hypothesis 2>/dev/null | grep -q "^Version: $HYPOTHESIS_VERSION$"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
fi

bin=target/debug/dma
[ -x "$bin" ] || cargo build --locked --bin dma

data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
unset DATABASE_URL
export DMA_DATA_DIR="$data" DMA_BIND="127.0.0.1:$port" RUST_LOG="${RUST_LOG:-warn}"
"$bin" serve --demo >"$data/server.log" 2>&1 &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 1
done

token=$("$bin" admin token --email admin@dma.example --name schemathesis \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# Run from the data folder, so schemathesis's own cache goes with it. One worker: with two,
# schemathesis runs hypothesis on two threads, and hypothesis's cache of lambda sources is not
# safe across threads; a CI run once failed with hypothesis's own FlakyFailure from that race
# while every request the server answered had passed.
st="$PWD/$venv/bin/st"
status=0
(cd "$data" && timeout 900 "$st" run "http://127.0.0.1:$port/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --workers 1 \
  --seed "${SCHEMATHESIS_SEED:-20260401}" \
  --generation-database none \
  --no-color) || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed ($status); the server's log follows" >&2
  tail -n 100 "$data/server.log" >&2
fi
exit "$status"
