#!/usr/bin/env bash
# Flash/RAM/stack/instruction budget of the QEMU board firmware (mps2-an505, Cortex-M33):
# text/data/bss of the board image `pawl-qemu` (all four curves in one image), then the `budget`
# binary (the same Board, NorStore over the semihosting flash file, entropy and button) signs a
# Sign frame per curve through Board::handle_frame under QEMU -icount shift=0, with the stack
# painted. Prints a markdown table (docs/benchmarks.md, "QEMU board firmware").
#
# usage: ./budget.sh          Environment: BUDGET_TIMEOUT (seconds for the QEMU run, default 120)
# Exit status: non-zero if a build or the run fails, or a budget is exceeded
# (image > 512 KiB — the flash budget of a board image with every feature — or BLS sign
# > 18 M instructions; 36.1 M before the Thumb-2 field arithmetic of firmware/vendor/blst).
set -euo pipefail
cd "$(dirname "$0")"
for tool in cargo qemu-system-arm arm-none-eabi-size timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
TARGET=thumbv8m.main-none-eabihf
OUT=../target/$TARGET/release   # the firmware workspace's target directory
cargo build --release --quiet --bin pawl-qemu --bin budget

read -r text data bss _ < <(arm-none-eabi-size "$OUT/pawl-qemu" | tail -n1)
flash=$((text + data))

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
log="$state/budget.log"
(cd "$state" && timeout "${BUDGET_TIMEOUT:-120}" qemu-system-arm -machine mps2-an505 -nographic \
    -monitor none -serial null -icount shift=0 \
    -semihosting-config enable=on,target=native,arg=budget,arg=mode=provisioning \
    -kernel "$OLDPWD/$OUT/budget") >"$log" 2>&1 || { cat "$log" >&2; echo "budget run failed" >&2; exit 1; }
grep -q '^BUDGET done' "$log" || { cat "$log" >&2; exit 1; }

field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n1 | cut -d= -f2; }
mega() { awk -v n="$1" 'BEGIN { printf "%.2f M", n / 1e6 }'; }

echo "## QEMU board firmware (mps2-an505, Cortex-M33), $(qemu-system-arm --version | head -n1)"
echo
echo "Board image \`pawl-qemu\` (release: opt-level s, LTO, all four curves): .text $text B,"
echo ".data $data B, .bss $bss B (8 KiB heap arena included); flash = .text + .data = $flash B"
echo "($(awk -v f="$flash" 'BEGIN { printf "%.1f", f / 1024 }') KiB of the 512 KiB budget)."
echo "$(grep '^BUDGET board_size' "$log" | sed 's/BUDGET board_size bytes=/size_of::<Board>() = /') bytes, on main's stack."
echo
echo "One Sign frame (attestation) through \`Board::handle_frame\`: COBS/CRC/postcard decode, parse,"
echo "policy, watermark, store, sign, encode. Stack: bytes below the caller's stack pointer (painted,"
echo "interrupts masked; first signature of the mark, which writes its ceiling). Instructions: QEMU"
echo "\`-icount shift=0\` + SysTick; semihosting flash I/O counts one \`bkpt\` per call."
echo "Row \`cometbft-prevote-tz1\`: a CometBFT SignVote frame (prevote, tz1 key pinned to a chain):"
echo "sign-bytes reader, height/round/step mark, plain Ed25519 over the sign bytes."
echo
echo "| curve | stack (B) | sign, mark under its ceiling | sign + ceiling write | identical retry (recorded) |"
echo "|---|---:|---:|---:|---:|"
bls=0
while read -r line; do
    c=$(field curve "$line")
    i=$(field instr "$line")
    [ "$c" = bls ] && bls=$i
    echo "| $c | $(field stack "$line") | $(mega "$i") | $(mega "$(field instr_ceiling_write "$line")") | $(field instr_repeat "$line") |"
done < <(grep '^BUDGET sign ' "$log")
echo
status=0
[ "$flash" -le 524288 ] || { echo "OVER BUDGET: image $flash B > 512 KiB" >&2; status=1; }
[ "$bls" -gt 0 ] && [ "$bls" -le 18000000 ] || { echo "OVER BUDGET: BLS sign $bls > 18 M instructions" >&2; status=1; }
exit $status
