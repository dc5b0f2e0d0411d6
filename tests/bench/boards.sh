#!/usr/bin/env bash
# Throughput and latency of one `pawl serve` over 1, 2 and 4 simulated boards (`pawl-sim board
# --pty`), with the same 16 ed25519 keys' worth of load spread evenly over the boards, driven by
# wrk (Debian's package; installed here if missing). Each of the 16 wrk connections is one
# baker: one key, one chain, attestations at rising levels, one request in flight.
#
#   tests/bench/boards.sh [SECONDS] [FRAME_US]   # default 10 s per run, after a 2 s warm-up
#
# FRAME_US (default 0): each simulated board takes at least this long over every frame
# (`pawl-sim board --frame-time-us`), as a real board's CPU does; at 0 a simulated board is far
# faster than hardware and the host's CPU is the limit from one board on.
#
# Prints one line per board count: signatures/s, p50/p99 latency (wrk's, end to end), the
# ratio to one board, and the CPU the whole machine spent during the run (100 % = every core
# busy) with the shares of the bridge, the boards, wrk and the rest (whatever else runs on the
# machine, and kernel work no process is charged for: figures taken on a busy machine say so
# there), and the CPU time one signature costs the bridge, the boards and wrk. docs/benchmarks.md
# has the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=${1:-10}
FRAME_US=${2:-0}
KEYS=16
START_LEVEL=1000

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $sudo apt-get install -y wrk >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y wrk >&2; }
fi
cargo build --release --locked -q -p pawl-bridge -p pawl-hsm-sim --bins
PAWL=$PWD/target/release/pawl
SIM=$PWD/target/release/pawl-sim
LUA=$PWD/host-bridge/benches/attest.lua  # shared with host-bridge/benches/sustained.sh

WORK=$(mktemp -d /tmp/pawl-bench-boards.XXXXXX)
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

# wait_line FILE PREFIX: print the rest of the first line of FILE starting with PREFIX.
wait_line() {
  for _ in $(seq 200); do
    if line=$(grep -m1 "^$2" "$1" 2>/dev/null); then
      echo "${line#"$2"}"
      return
    fi
    sleep 0.05
  done
  echo "no '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

# CPU ticks (user + system) of process $1 and its threads.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy and total ticks of the whole machine.
machine() { awk '/^cpu /{busy=$2+$3+$4+$7+$8; print busy, busy+$5+$6}' /proc/stat; }

run() {
  local boards=$1 dir=$WORK/$1 toml i
  mkdir -p "$dir/bridge"
  toml=$dir/bridge/pawl.toml
  : >"$toml"
  local sims=()
  for i in $(seq "$boards"); do
    "$SIM" board --pty --frame-time-us "$FRAME_US" --home "$dir/board$i" >"$dir/board$i.out" 2>"$dir/board$i.err" &
    PIDS+=($!)
    sims+=($!)
    printf '[[device]]\nname = "sim%s"\npath = "%s"\n\n' "$i" \
      "$(wait_line "$dir/board$i.out" 'pty: ')" >>"$toml"
  done
  "$PAWL" --home "$dir/bridge" serve --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
  local serve=$!
  PIDS+=("$serve")
  local url
  url=$(wait_line "$dir/serve.out" 'listening on ')
  local pkhs=()
  for i in $(seq 0 $((KEYS - 1))); do
    pkhs+=("$("$PAWL" --home "$dir/bridge" keys generate --curve ed25519 \
      --board "sim$((i % boards + 1))" | cut -d' ' -f1)")
  done
  # Warm-up (first marks, ceiling reservations), then the measured run at higher levels.
  wrk -t "$KEYS" -c "$KEYS" -d 2s -s "$LUA" "$url" -- "$START_LEVEL" "${pkhs[@]}" >/dev/null
  local before_bridge before_boards=0 m0 m1 pid
  before_bridge=$(ticks "$serve")
  for pid in "${sims[@]}"; do before_boards=$((before_boards + $(ticks "$pid"))); done
  m0=$(machine)
  local result wrk_secs
  # bash's `time` gives wrk's own user + system seconds.
  TIMEFORMAT='%U %S'
  { time wrk -t "$KEYS" -c "$KEYS" -d "${SECONDS_PER_RUN}s" -s "$LUA" "$url" \
    -- $((START_LEVEL + 100000)) "${pkhs[@]}" >"$dir/wrk.out"; } 2>"$dir/wrk.time"
  result=$(grep '^RESULT' "$dir/wrk.out")
  wrk_secs=$(awk '{print $1 + $2}' "$dir/wrk.time")
  m1=$(machine)
  local after_bridge after_boards=0
  after_bridge=$(ticks "$serve")
  for pid in "${sims[@]}"; do after_boards=$((after_boards + $(ticks "$pid"))); done
  local busy total
  read -r busy total <<<"$(awk -v a="$m0" -v b="$m1" 'BEGIN{split(a,x," "); split(b,y," "); print y[1]-x[1], y[2]-x[2]}')"
  echo "$boards $result cpu=$((100 * busy / total)) bridge_ticks=$((after_bridge - before_bridge)) boards_ticks=$((after_boards - before_boards)) wrk_ticks=$(awk -v s="$wrk_secs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%d", s * hz}') total_ticks=$total hz=$(getconf CLK_TCK)"
  stop_all
}

echo "# $(nproc) cores, $KEYS keys, $KEYS connections, ${SECONDS_PER_RUN} s per run, board frame time ${FRAME_US} µs; $(git rev-parse --short HEAD)"
results=()
for n in 1 2 4; do
  results+=("$(run "$n")")
done
base=$(echo "${results[0]}" | sed -E 's/.*sigps=([0-9]+).*/\1/')
printf '%-7s %9s %6s %8s %8s %6s %12s %11s %11s %8s %6s %18s\n' boards "sig/s" ratio p50_ms p99_ms failed "machine-cpu" "bridge-cpu" "boards-cpu" "wrk-cpu" rest "us-cpu/sig(b,B,w)"
for r in "${results[@]}"; do
  awk -v base="$base" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    # Ticks of one process over the run, as a share of the whole machine (all cores).
    t = v["total_ticks"]
    bridge = 100 * v["bridge_ticks"] / t; boards = 100 * v["boards_ticks"] / t
    wrk = 100 * v["wrk_ticks"] / t
    # CPU time per signature of the bridge, the boards and wrk, in microseconds.
    per = 1e6 / v["hz"] / v["requests"]
    printf "%-7s %9d %6.2f %8.2f %8.2f %6d %11d%% %10d%% %10d%% %7d%% %5d%% %7.0f,%4.0f,%4.0f\n", $1,
      v["sigps"], v["sigps"] / base, v["p50_us"] / 1000, v["p99_us"] / 1000, v["non2xx"],
      v["cpu"], bridge, boards, wrk, v["cpu"] - bridge - boards - wrk,
      v["bridge_ticks"] * per, v["boards_ticks"] * per, v["wrk_ticks"] * per
  }' <<<"$r"
done
