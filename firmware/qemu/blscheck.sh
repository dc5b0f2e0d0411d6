#!/usr/bin/env bash
# BLS on the board equals BLS on the host: the host checker (firmware/blscheck, crates.io blst
# with its x86-64 assembly) writes COUNT random test keys and messages (a few fixed edge cases
# first), the `blscheck` board binary signs each under QEMU mps2-an505 (Cortex-M33, pawl-core's
# key code over the vendored blst with the Thumb-2 field arithmetic, firmware/vendor/blst), and
# the checker compares every public key and signature byte for byte. Run by tests/run.
#
# usage: ./blscheck.sh [COUNT]     COUNT defaults to 2000 (about 1 in 8 are proofs of possession)
# Environment: BLSCHECK_TIMEOUT (seconds for the QEMU run, default 900).
# Exit status: non-zero if a build or the run fails, or any byte differs.
set -euo pipefail
cd "$(dirname "$0")"
for tool in cargo rustc qemu-system-arm arm-none-eabi-nm arm-none-eabi-objdump timeout; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
count=${1:-2000}
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --quiet --locked --bin blscheck
# The firmware's .cargo/config.toml makes thumbv8m the default target: name the host's.
(cd ../blscheck && cargo build --release --quiet --locked --target "$host")
checker=../blscheck/target/$host/release/pawl-blscheck
board=../target/thumbv8m.main-none-eabihf/release/blscheck

# Constant-time shape of the Thumb-2 routines as linked into the board binary: the only
# conditional branches are the row loop (bne, a count of words) and the reduce-or-not entry
# flag (beq, a public choice made by the caller); no IT block, no table branch, no indirect
# jump but the return; every load and store addresses base + constant (no register offset, so
# no secret-dependent address). The code itself is in firmware/vendor/blst/thumb2/.
syms=$(arm-none-eabi-nm -S "$board")
first=$(awk '$4 == "blst_t2_mul_mont_384" { print "0x" $1 }' <<<"$syms")
read -r sub_at sub_size < <(awk '$4 == "blst_t2_sub_mod_384" { print "0x" $1, "0x" $2 }' <<<"$syms")
last=$(printf '0x%x' $((sub_at + sub_size)))
[ -n "$first" ] && [ -n "$last" ] || { echo "blscheck: the Thumb-2 routines are not in $board" >&2; exit 1; }
asm=$(arm-none-eabi-objdump -d --no-show-raw-insn --start-address="$first" --stop-address="$last" "$board" \
    | awk -F'\t' 'NF >= 3 { print $2 "\t" $3 }')
branches=$(awk -F'\t' '$1 ~ /^(b[a-z][a-z](\.[nw])?|cbn?z|it[te]*|tb[bh]|blx)$/ { sub(/\.[nw]$/, "", $1); print $1 }' <<<"$asm" | sort | tr '\n' ' ')
[ "$branches" = "beq bne " ] || { echo "blscheck: unexpected branches in the Thumb-2 routines: $branches" >&2; exit 1; }
! grep -E '\[(r[0-9]+|sl|fp|ip|sp|lr), ?(r[0-9]+|sl|fp|ip|lr)' <<<"$asm" \
    || { echo "blscheck: register-offset addressing in the Thumb-2 routines" >&2; exit 1; }
! grep -E '^bx\s' <<<"$asm" | grep -v 'lr$' || { echo "blscheck: indirect jump in the Thumb-2 routines" >&2; exit 1; }
echo "constant-time shape: $(wc -l <<<"$asm") instructions, conditional branches: $branches(loop, public flag)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$checker" gen "$count" "$work/blscheck.in"
start=$SECONDS
(cd "$work" && timeout "${BLSCHECK_TIMEOUT:-900}" qemu-system-arm -machine mps2-an505 \
    -nographic -monitor none -serial null \
    -semihosting-config enable=on,target=native,arg=blscheck \
    -kernel "$OLDPWD/$board") >"$work/qemu.log" 2>&1 \
    || { cat "$work/qemu.log" >&2; echo "blscheck: the board run failed" >&2; exit 1; }
grep -q '^BLSCHECK signed' "$work/qemu.log" || { cat "$work/qemu.log" >&2; exit 1; }
echo "board: $(grep '^BLSCHECK signed' "$work/qemu.log") in $((SECONDS - start)) s"
"$checker" check "$work/blscheck.in" "$work/blscheck.out"
