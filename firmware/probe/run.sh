#!/usr/bin/env bash
# Build every probe variant, run each under QEMU (mps2-an386, Cortex-M4F, -icount shift=0),
# check every signature against expected.txt, and print markdown tables of flash, stack and
# instruction counts.
#
# usage: ./run.sh [--with-z]      --with-z: also build and run the opt-level "z" profile
#
# The per-curve variants select which curve is signed with; they do not change what is linked
# (pawl-core dispatches on the curve at run time, so every signing binary holds all four curves).
# The last table therefore attributes the `all` binary's flash to crates by DWARF source path.
#
# Size experiments not run here (they need a separate CARGO_TARGET_DIR, as they rebuild all deps):
#   CFLAGS_thumbv7em_none_eabihf=-Os             blst's C at -Os instead of its build.rs's -O2
#   RUSTFLAGS='-C link-arg=-Tlink.x --cfg sha2_backend_soft="compact"'   rolled SHA-256/512 loops
#
# Environment: PROBE_TIMEOUT (seconds per QEMU run, default 60).
# Exit status: non-zero if any build or run fails, a run times out, a result line is missing,
# or a signature differs from expected.txt.
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
TIMEOUT=${PROBE_TIMEOUT:-60}
PROFILES=(release)
for arg in "$@"; do
    case "$arg" in
        --with-z) PROFILES+=(release-z) ;;
        *) echo "usage: $0 [--with-z]" >&2; exit 2 ;;
    esac
done

for tool in cargo qemu-system-arm arm-none-eabi-size arm-none-eabi-nm timeout awk; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

QEMU=(qemu-system-arm -machine mps2-an386 -nographic -monitor none
      -semihosting-config enable=on,target=native -icount shift=0)
OUT=target/probe-out
mkdir -p "$OUT"

# name:features ("" = harness only, no pawl-core)
VARIANTS=("baseline:" "ed25519:ed25519" "secp256k1:secp256k1" "p256:p256" "bls:bls"
          "all:all" "all+board:all,board")

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# field KEY LINE -> value of KEY=value in LINE
field() { { grep -o "\b$1=[^ ]*" <<<"$2" || true; } | head -n1 | cut -d= -f2; }

expected_sig() { awk -v c="$1" '$1 == c { print $3 }' expected.txt; }
expected_pk() { awk -v c="$1" '$1 == c { print $2 }' expected.txt; }

milli() { awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'; }

TABLE1=()   # per-binary rows
TABLE2=()   # all-curves and board rows
declare -A SIZES

for profile in "${PROFILES[@]}"; do
    for v in "${VARIANTS[@]}"; do
        name=${v%%:*}
        features=${v#*:}
        echo "== build $name ($profile)" >&2
        args=(build --profile "$profile" --target "$TARGET" --no-default-features --quiet)
        [ -n "$features" ] && args+=(--features "$features")
        if ! cargo "${args[@]}"; then
            fail "build $name ($profile)"
            continue
        fi
        elf="$OUT/$profile-$name.elf"
        cp "target/$TARGET/$profile/probe" "$elf"
        read -r text data bss _ < <(arm-none-eabi-size "$elf" | tail -n1)
        SIZES["$profile-$name"]="$text $data $bss"

        echo "== run   $name ($profile)" >&2
        log="$OUT/$profile-$name.log"
        status=0
        timeout "$TIMEOUT" "${QEMU[@]}" -kernel "$elf" >"$log" 2>&1 || status=$?
        if [ "$status" -ne 0 ] || ! grep -q '^PROBE done' "$log"; then
            fail "run $name ($profile): exit status $status (124 = timeout), log $log"
            grep 'PROBE FAIL' "$log" >&2 || true
            continue
        fi

        calib=$(grep '^PROBE calib' "$log")
        factor=$(milli "$(field milli_instr_per_tick "$calib")")
        heap=$(grep '^PROBE heap' "$log")
        allocs=$(field allocs "$heap")

        # Every signature the run printed must be the host's.
        while read -r line; do
            c=$(field curve "$line")
            [ "$(field sig "$line")" = "$(expected_sig "$c")" ] ||
                fail "$name ($profile): $c signature differs from expected.txt"
            pk=$(field pk "$line")
            [ -z "$pk" ] || [ "$pk" = "$(expected_pk "$c")" ] ||
                fail "$name ($profile): $c public key differs from expected.txt"
        done < <(grep -E '^PROBE (sign|board) curve=' "$log")

        if [ "$name" = baseline ]; then
            TABLE1+=("| $name | $profile | $text | $data | $bss | – | – | – | – | $allocs | $factor |")
        elif [ "$name" = all ] || [ "$name" = all+board ]; then
            TABLE1+=("| $name | $profile | $text | $data | $bss | see below | see below | see below | see below | $allocs | $factor |")
            while read -r line; do
                c=$(field curve "$line")
                if [ "$name" = all ]; then
                    TABLE2+=("| $c | $profile | try_sign | $(field stack "$line") | $(field instr "$line") |")
                else
                    [ "$(grep -c "^PROBE sign curve=$c " "$log")" = 1 ] || fail "$name: no sign line for $c"
                fi
            done < <(grep '^PROBE sign curve=' "$log")
            if [ "$name" = all+board ]; then
                while read -r line; do
                    c=$(field curve "$line")
                    TABLE2+=("| $c | $profile | Board::handle_frame (Sign frame, signs) | $(field stack "$line") | $(field instr "$line") |")
                    TABLE2+=("| $c | $profile | Board::handle_frame (repeat, from watermark) | – | $(field repeat_instr "$line") |")
                done < <(grep '^PROBE board curve=' "$log")
                board_size=$(field bytes "$(grep '^PROBE board_size' "$log")")
            fi
        else
            line=$(grep "^PROBE sign curve=$name " "$log") || { fail "$name: no result line"; continue; }
            TABLE1+=("| $name | $profile | $text | $data | $bss | $(field stack "$line") | $(field instr "$line") | $(field keyload_stack "$line") | $(field keyload_instr "$line") | $allocs | $factor |")
        fi
    done
done

qemu_version=$(qemu-system-arm --version | head -n1)

echo
echo "## pawl-core signing on mps2-an386 (Cortex-M4F), $qemu_version, -icount shift=0"
echo
echo "Flash/RAM from arm-none-eabi-size (.text includes .vector_table and .rodata; .bss includes the"
echo "8 KiB heap arena). Stack = bytes used below the caller's stack pointer (painted stack, interrupts"
echo "masked). Instructions = SysTick ticks × measured instructions/tick, call overhead removed."
echo
echo "| variant | profile | .text | .data | .bss | sign stack (B) | sign instructions | key-load stack (B) | key-load instructions | heap allocations | icount calibration (instr/SysTick tick) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${TABLE1[@]}"
echo
echo "### All curves in one binary, and the whole board path (feature \`board\`)"
echo
[ -n "${board_size:-}" ] && echo "size_of::<Board<MemoryStore, _, NoButton>>() = $board_size bytes (held on main's stack)." && echo
echo "| curve | profile | call | stack (B) | instructions |"
echo "|---|---|---|---:|---:|"
printf '%s\n' "${TABLE2[@]}"

# Flash attribution of the all-curves binary: pawl-core has no per-curve cargo features, so every
# binary that signs links all four curves; attribute .text/.rodata symbols to crates by their DWARF
# source path instead.
for profile in "${PROFILES[@]}"; do
    elf="$OUT/$profile-all.elf"
    [ -f "$elf" ] || continue
    flash=$(arm-none-eabi-size -A "$elf" | awk '$1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { s += $2 } END { print s }')
    echo
    echo "### Flash attribution of the \`all\` binary ($profile), by symbol source (arm-none-eabi-nm -S -l)"
    echo
    echo "| component | bytes |"
    echo "|---|---:|"
    # POSIX awk (mawk is fine): no strtonum/asorti.
    arm-none-eabi-nm -S -l "$elf" | awk -v flash="$flash" '
        function hex(s,   i, n, c) {
            n = 0; s = tolower(s);
            for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)); n = n * 16 + c - 1 }
            return n
        }
        NF >= 4 && $3 ~ /^[tTrRwW]$/ && hex($1) < 536870912 {
            size = hex($2); sym = $4; path = (NF >= 5) ? $NF : "";
            crate = "";
            if (match(path, /registry\/src\/[^\/]+\/[^\/]+/)) {
                crate = substr(path, RSTART, RLENGTH); sub(/.*\//, "", crate); sub(/-[0-9]+\.[0-9]+\.[0-9]+.*$/, "", crate);
            } else if (path !~ /\/library\// && path ~ /\/core\/src\/(keys|board|store|policy|protocol|request|watermark|encoding|digest)/) crate = "pawl-core";
            else if (path ~ /\/firmware\/probe\//) crate = "probe";
            if (path == "" && $3 ~ /^[rR]$/) b = "anonymous .rodata without debug info (constants, strings, panic locations; any crate)";
            else if (crate ~ /^(curve25519-dalek|ed25519-dalek|ed25519)$/ || (crate == "sha2" && sym ~ /512/)) b = "Ed25519 (curve25519-dalek, ed25519-dalek, SHA-512)";
            else if (crate == "k256") b = "secp256k1 only (k256)";
            else if (crate ~ /^(p256|primeorder)$/) b = "P-256 only (p256, primeorder)";
            else if (crate ~ /^(ecdsa|elliptic-curve|crypto-bigint|rfc6979|hmac|primefield|sec1|der|const-oid|ctutils|sha2|digest|crypto-common|ff|group)$/) b = "ECDSA shared by tz2/tz3 (ecdsa, elliptic-curve, crypto-bigint, rfc6979, SHA-256, ...)";
            else if (crate == "blst") b = "BLS12-381 (blst, C, -O2)";
            else if (crate ~ /^(pawl-core|blake2|bs58|postcard|serde|serde_core|serde-big-array|heapless|cobs|crc|crc-catalog|subtle|zeroize|hash32)$/) b = "pawl-core and its encoders (blake2, postcard, cobs, crc, heapless, bs58, serde)";
            else b = "runtime and harness (core::fmt, compiler-builtins, cortex-m-rt, semihosting, allocator, probe)";
            sum[b] += size; total += size;
        }
        END {
            for (b in sum) printf "| %s | %d |\n", b, sum[b] | "sort";
            close("sort");
            printf "| (literal pools, padding, unsized symbols) | %d |\n", flash - total;
            printf "| **total .vector_table + .text + .rodata** | **%d** |\n", flash;
        }'
done

echo
if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); logs in $OUT" >&2
    exit 1
fi
echo "All runs passed; every signature matched expected.txt. Logs and ELFs in $OUT."
