#!/usr/bin/env bash
# The longest a request waits behind the store's own work on the QEMU board (mps2-an505,
# Cortex-M33), and the same on an RP2350 derived from the flash datasheet: the `maintenance`
# binary drives the board image's NorStore (256 KiB, N = 16) over three wraps of its region,
# every request making a ceiling durable on its path, without idle time ("saturated") and with
# the board's idle-time work between requests ("idle"). Prints a markdown table
# (docs/benchmarks.md, "Store maintenance on the board").
#
# RP2350 time = instructions at 150 MHz and 1–1.5 cycles each, plus flash time from the
# Winbond W25Q32JV AC characteristics (the Pico 2 carries a 4 MiB Winbond QSPI part): page
# program tPP 0.4 ms typical / 3 ms max, 4 KiB sector erase tSE 45 ms typical / 400 ms max.
# While it programs or erases, the RP2350 cannot run code from that flash: the board waits.
#
# usage: ./maintenance.sh        Environment: MAINT_TIMEOUT (seconds, default 300)
set -euo pipefail
cd "$(dirname "$0")"
OUT=../target/thumbv8m.main-none-eabihf/release
cargo build --release --quiet --bin maintenance
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
(cd "$state" && timeout "${MAINT_TIMEOUT:-300}" qemu-system-arm -machine mps2-an505 -nographic \
    -monitor none -serial null -icount shift=0 \
    -semihosting-config enable=on,target=native,arg=maintenance,arg=mode=provisioning \
    -kernel "$OLDPWD/$OUT/maintenance") > "$state/log" 2>&1 || { cat "$state/log" >&2; exit 1; }
grep -q '^MAINT done' "$state/log" || { cat "$state/log" >&2; exit 1; }
field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n1 | cut -d= -f2; }
# rp2350 INSTR PROGRAMS ERASES -> "typical – worst" in ms
rp2350() {
  awk -v i="$1" -v p="$2" -v e="$3" 'BEGIN {
    lo = i / 150e6 * 1000 + p * 0.4 + e * 45; hi = i * 1.5 / 150e6 * 1000 + p * 3 + e * 400;
    printf "%.1f ms typical, %.0f ms worst", lo, hi }'
}
echo "| mode | requests | pages erased | worst request: instructions, programs, erases | RP2350 | worst idle step: instructions, programs, erases | RP2350 |"
echo "|---|---:|---:|---|---|---|---|"
while read -r line; do
  ri=$(field request_instr "$line"); rp=$(field request_programs "$line"); re=$(field request_erases "$line")
  ii=$(field idle_instr "$line"); ip=$(field idle_programs "$line"); ie=$(field idle_erases "$line")
  idle="–"; idle_t="–"
  if [ "$ii" != 0 ]; then idle="$ii, $ip, $ie"; idle_t=$(rp2350 "$ii" "$ip" "$ie"); fi
  echo "| $(field mode "$line") | $(field requests "$line") | $(field erased "$line") | $ri, $rp, $re | $(rp2350 "$ri" "$rp" "$re") | $idle | $idle_t |"
done < <(grep '^MAINT mode=' "$state/log")
