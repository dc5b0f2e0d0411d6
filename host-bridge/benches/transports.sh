#!/usr/bin/env bash
# Sign latency over plain HTTP, HTTPS, the TCP socket and the Unix socket, against ONE
# `pawl serve` (release build, in-process virtual board) in one run: the example
# `transport_bench` sends request i to each transport in turn, each at a new level, first with
# a new connection per request (as octez-client's socket backend and Taquito connect), then
# with one kept connection per transport. Certificates are made here with openssl (P-256).
#
#   host-bridge/benches/transports.sh [N]      # N signs per transport and mode (default 2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000}
cargo build --release -q -p pawl-bridge --bin pawl --example transport_bench
pawl=target/release/pawl
bench=target/release/examples/transport_bench
dir=$(mktemp -d)
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 1 -subj "/CN=pawl bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
  -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 1 -extfile server.ext 2>/dev/null
mkdir home
cat > home/pawl.toml <<TOML
[server]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
tls_cert = "$dir/server.pem"
tls_key = "$dir/server.key"
socket = ["tcp://127.0.0.1:0", "unix://$dir/signer.sock"]
TOML
cd - >/dev/null
PAWL_LOG=warn "$pawl" serve --home "$dir/home" > "$dir/out" 2> "$dir/err" &
serve_pid=$!
for _ in $(seq 100); do [ "$(wc -l < "$dir/out")" -ge 4 ] && break; sleep 0.1; done
http=$(sed -n 's#^listening on http://##p' "$dir/out")
https=$(sed -n 's#^listening on https://##p' "$dir/out")
tcp=$(sed -n 's#^socket on tcp://##p' "$dir/out")
unix=$(sed -n 's#^socket on unix://##p' "$dir/out")
pkh=$("$pawl" keys generate --home "$dir/home" --curve ed25519 --any-chain | cut -d' ' -f1)
echo "pawl serve: http $http, https $https, tcp $tcp, unix $unix; key $pkh; $(nproc) cores"
"$bench" --pkh "$pkh" --http "$http" --https "$https" --ca "$dir/ca.pem" --tcp "$tcp" \
  --unix "$unix" --n "$n" --level 1000 | tee "$dir/first"
next=$(sed -n 's/.*next level \([0-9]*\).*/\1/p' "$dir/first")
echo
"$bench" --pkh "$pkh" --http "$http" --https "$https" --ca "$dir/ca.pem" --tcp "$tcp" \
  --unix "$unix" --n "$n" --level "$next" --reuse
