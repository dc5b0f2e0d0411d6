#!/usr/bin/env bash
# CometBFT: pawl and tmkms side by side, on the same request stream in the same run.
#
#   tests/bench/cometbft.sh [N]      (default 3000 requests)
#
# The stream (tests/bench/cometbft_stream.py, fixed seed): heights climbing from 1, each a
# proposal, a prevote and a precommit (every other one with a vote extension), with identical
# re-requests, timestamp-only retries, conflicting block ids, nil-after-block votes, new rounds,
# height and round regressions and a wrong chain id mixed in. The test node
# (tests/cometbft-node, tendermint-rs) plays the validator node over tcp:// SecretConnection and
# sends the stream once to tmkms (softsign) and once to pawl (`pawl serve` with its in-process
# virtual board), both holding the same Ed25519 key. Then every answer is compared (refusals
# must agree, or pawl's be the stricter) and the latency of signed answers (p50/p99, the node's
# send-to-answer time) is printed with the ratio pawl/tmkms. Figures: docs/benchmarks.md.
#
# tmkms is installed once, pinned, under ~/.cache/pawl-bench/tmkms (cargo install, ~5 min).
# Never run in CI (tests/run does not call it).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-3000}
chain=pawl-bench-1
tmkms_version=0.15.0
tmkms_root=${PAWL_BENCH_CACHE:-$HOME/.cache/pawl-bench}/tmkms
tmkms=$tmkms_root/bin/tmkms
if [ -n "${CI:-}" ]; then echo "cometbft.sh is a bench, not a CI step" >&2; exit 2; fi
if [ "$("$tmkms" version 2>/dev/null)" != "$tmkms_version" ]; then
  echo "installing tmkms $tmkms_version (softsign) into $tmkms_root"
  cargo install tmkms --version "$tmkms_version" --features softsign --locked --root "$tmkms_root"
fi
cargo build --release -q --locked --manifest-path tests/cometbft-node/Cargo.toml
cargo build --release -q --locked -p pawl-bridge --bin pawl
node=$PWD/tests/cometbft-node/target/release/pawl-cometbft-node
pawl=$PWD/target/release/pawl
stream=$PWD/tests/bench/cometbft_stream.py

root=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$root"' EXIT

python3 "$stream" stream "$n" "$chain" > "$root/stream.json"

# The validator key both signers hold: a fixed test seed (public, never a real key), as tmkms's
# softsign file (base64 of the 32-byte seed) and as a Tezos edsk for `pawl keys import`.
seed_hex=$(printf 'pawl bench cometbft key %08d' 0 | sha256sum | cut -c1-64)
python3 - "$seed_hex" "$root" <<'EOF'
import base64, hashlib, sys
seed = bytes.fromhex(sys.argv[1]); root = sys.argv[2]
alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58check(payload):
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out
open(f"{root}/consensus.key", "w").write(base64.b64encode(seed).decode())
open(f"{root}/identity.key", "w").write(base64.b64encode(hashlib.sha256(seed).digest()).decode())
open(f"{root}/edsk", "w").write(b58check(bytes([13, 15, 58, 7]) + seed) + "\n")
EOF
chmod 600 "$root"/*.key "$root/edsk"

# start_node NAME: the test node on 127.0.0.1:0 running the stream; sets $addr.
start_node() {
  "$node" --listen tcp://127.0.0.1:0 --chain-id "$chain" --script "$root/stream.json" \
    --accept-timeout-ms 60000 > "$root/$1.out" 2> "$root/$1.err" &
  node_pid=$!
  pids+=("$node_pid")
  for _ in $(seq 100); do grep -q '^listening on' "$root/$1.out" && break; sleep 0.05; done
  addr=$(sed -n 's/^listening on //p' "$root/$1.out")
}

# --- tmkms -------------------------------------------------------------------------------------
start_node tmkms
cat > "$root/tmkms.toml" <<EOF
[[chain]]
id = "$chain"
key_format = { type = "hex" }
sign_extensions = true
state_file = "$root/tmkms-state.json"

[[validator]]
addr = "$addr"
chain_id = "$chain"
reconnect = true
secret_key = "$root/identity.key"
protocol_version = "v0.38"

[[providers.softsign]]
chain_ids = ["$chain"]
key_type = "consensus"
path = "$root/consensus.key"
EOF
"$tmkms" start -c "$root/tmkms.toml" > "$root/tmkms.log" 2>&1 &
tmkms_pid=$!
pids+=("$tmkms_pid")
start=$SECONDS
wait "$node_pid"
echo "tmkms: $n requests in $((SECONDS - start)) s"
kill "$tmkms_pid" 2>/dev/null || true

# --- pawl --------------------------------------------------------------------------------------
start_node pawl
home=$root/pawl
mkdir -p "$home"
printf '[server]\nlisten = "127.0.0.1:0"\n' > "$home/pawl.toml"
pkh=$("$pawl" keys import --home "$home" --role cosmos --chain-id "$chain" < "$root/edsk" \
  2> "$root/import.err" | cut -d' ' -f1)
printf '\n[[cometbft]]\nchain_id = "%s"\naddress = "%s"\nkey = "%s"\n' "$chain" "$addr" "$pkh" \
  >> "$home/pawl.toml"
PAWL_LOG=warn "$pawl" serve --home "$home" > "$root/pawl.log" 2>&1 &
pids+=($!)
start=$SECONDS
wait "$node_pid"
echo "pawl:  $n requests in $((SECONDS - start)) s (key $pkh)"

echo
echo "command: tests/bench/cometbft.sh $n   (tmkms $tmkms_version softsign; pawl $(git rev-parse --short HEAD), in-process virtual board)"
python3 "$stream" compare "$root/pawl.out" "$root/tmkms.out"
