#!/usr/bin/env bash
# Build the Raspberry Pi Pico 2 (RP2350) image: ELF and UF2 into firmware/rp2350/out/, test the
# UF2 converter, print the image sizes.
#
#   firmware/rp2350/build.sh          build + UF2 + sizes
#   firmware/rp2350/build.sh --lint   also cargo fmt --check and clippy -D warnings
#
# Needs: rustup target thumbv8m.main-none-eabihf, python3, arm-none-eabi-size
# (binutils-arm-none-eabi). No hardware: this proves the image builds and is well-formed,
# not that it runs (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

if [[ "${1:-}" == "--lint" ]]; then
    cargo fmt --check
    cargo clippy --release --locked -- -D warnings
    # The image without the OTP rollback anchor (src/epoch.rs), which never writes OTP.
    cargo clippy --release --locked --no-default-features -- -D warnings
fi

cargo build --release --locked
mkdir -p out
cp ../target/thumbv8m.main-none-eabihf/release/pawl-rp2350 out/pawl-rp2350.elf
python3 tools/uf2.py out/pawl-rp2350.elf out/pawl-rp2350.uf2
python3 -m unittest discover -s tools -q 2>&1 | tail -n 1
# No USB path to the bootloader (README.md): the image reaches no boot ROM function but the
# flash helpers, speaks CDC-ACM only, and writes flash only in the store, guard and scratch.
python3 tools/no_usb_bootloader.py out/pawl-rp2350.elf src ../Cargo.lock

# text = what is stored in flash and executed or read there; data = initialised RAM (its
# initial image also occupies flash; here mostly the RAM-resident flash/BOOTSEL routines);
# bss = zeroed RAM. The stack is the rest of the 512 KiB.
arm-none-eabi-size -A out/pawl-rp2350.elf | awk '
    $1 == ".vector_table" || $1 == ".start_block" || $1 == ".text" || $1 == ".rodata" || $1 == ".bi_entries" || $1 == ".end_block" { text += $2 }
    $1 == ".data" { data += $2 }
    $1 == ".bss" || $1 == ".uninit" { bss += $2 }
    END { printf "pawl-rp2350: text %d  data %d  bss %d  (flash %d of 3,895,296 image bytes)\n", text, data, bss, text + data }'
printf 'uf2: %s bytes\n' "$(stat -c %s out/pawl-rp2350.uf2)"
