#!/usr/bin/env python3
"""No USB path to the bootloader: check that nothing the host sends can reboot the board into
BOOTSEL (USB mass storage / PICOBOOT) or reflash it. Run by build.sh on every build; exits 1
with one line per finding.

What it checks, and where:

* **Boot ROM calls (the ELF).** The firmware reaches boot ROM functions only by looking them up
  by a two-letter code (`rom_table_lookup(*b"RB", ...)`, embassy-rp `rom_data`): the code is
  a `movw r0` immediate shortly before an indirect call (`blx <register>`: the lookup
  function's address is read from the ROM). Every such lookup must be one of the flash
  helpers the store's flash driver needs (connect, exit/enter XIP, range erase/program,
  flush cache, ...). Anything else fails: in particular `RB` reboot (BOOTSEL and every other
  reboot type), `CI` chain_image, `EB` explicit_buy, the partition functions, and the boot
  ROM state functions. `OA` otp_access (OTP writes) only when the source writes OTP nowhere
  but the rollback epoch's own rows (`src/epoch.rs`, feature `otp-epoch`).
* **Symbols (the ELF).** No function whose name speaks of rebooting, USB boot, PICOBOOT, DFU,
  the watchdog or OTP writes.
* **Watchdog reboot magic (the ELF).** The boot ROM reboots into BOOTSEL after a watchdog
  reset whose scratch registers hold `0xb007c0d3`; that word must not occur in the image.
* **USB (the source).** One USB device (`Builder::new`, in `src/link.rs`) with one class,
  CDC-ACM: no other `embassy_usb::class`, no extra function, interface or alternate setting,
  no control-request handler (where vendor requests would be answered), no Microsoft OS /
  WebUSB descriptors. The lock file holds no DFU, PICOBOOT or bootloader crate.
* **Flash writes (the source).** The flash is opened once (`Flash::new` in `src/main.rs`) and
  only ever used through bounds-checked partitions (`Region::new`, in `src/storage.rs`) over
  the store (`STORE_OFFSET`, `STORE_SIZE`) and the guard (`GUARD_OFFSET`, `GUARD_SIZE`), and
  by the self-test on its one scratch sector (`src/selftest.rs`, on `SCRATCH_OFFSET` and
  `SCRATCH_SIZE` only); no `rom_data` and no other raw erase/program in the source. The partitions refuse an
  access outside them (embassy-embedded-hal `Partition`: `OutOfBounds`), and `build.rs` keeps
  the image below the guard (the linker refuses more).

usage: no_usb_bootloader.py ELF SRC_DIR CARGO_LOCK
"""

import os
import re
import subprocess
import sys

# ROM table codes of the flash helpers embassy-rp's flash driver uses (rom_data/rp235x.rs).
ALLOWED_ROM = {
    "IF": "connect_internal_flash",
    "EX": "flash_exit_xip",
    "RE": "flash_range_erase",
    "RP": "flash_range_program",
    "FC": "flash_flush_cache",
    "CX": "flash_enter_cmd_xip",
    "XM": "flash_select_xip_read_mode",
    "RA": "flash_reset_address_trans",
}
# Names for the message (RP2350 boot ROM; UB is the RP2040's reset_usb_boot).
KNOWN_ROM = {
    "RB": "reboot (BOOTSEL, and every other reboot type)",
    "UB": "reset_usb_boot (RP2040)",
    "CI": "chain_image",
    "EB": "explicit_buy",
    "OA": "otp_access",
    "LP": "load_partition_table",
    "GP": "get_partition_table_info",
    "GU": "get_uf2_target_partition",
    "GB": "get_b_partition",
    "AB": "pick_ab_partition",
    "SR": "bootrom_state_reset",
    "RC": "set_rom_callback",
    "SS": "set_bootrom_stack",
    "FO": "flash_op",
    "FA": "flash_runtime_to_storage_addr",
    "SP": "set_ns_api_permission",
    "VB": "validate_ns_buffer",
    "GS": "get_sys_info",
}
FORBIDDEN_SYMBOL = re.compile(
    r"(?<![a-z])(reboot|reset_to_usb_boot|usb_boot|picoboot|dfu|chain_image|explicit_buy"
    r"|otp_access|watchdog|write_otp)(?![a-z])",
    re.IGNORECASE,
)
WATCHDOG_REBOOT_MAGIC = (0xB007C0D3).to_bytes(4, "little")
FORBIDDEN_CRATES = re.compile(r"dfu|picoboot|embassy-boot|bootloader", re.IGNORECASE)

MOVW = re.compile(r"^\s*([0-9a-f]+):\s+movw\s+r0,\s+#\d+\s+@ 0x([0-9a-f]{4})\s*$")
CALL = re.compile(r"\sblx\s+(r\d+|ip|lr|sl|fp|sb)\s*$")


def rom_lookups(disassembly: str) -> dict:
    """Two-letter boot ROM codes loaded just before a call: {code: [addresses]}."""
    lines = disassembly.splitlines()
    found = {}
    for i, line in enumerate(lines):
        m = MOVW.match(line)
        if not m:
            continue
        value = int(m.group(2), 16)
        lo, hi = value & 0xFF, value >> 8
        if not (0x41 <= lo <= 0x5A and 0x41 <= hi <= 0x5A):
            continue
        if any(CALL.search(w) for w in lines[i + 1:i + 6]):
            found.setdefault(chr(lo) + chr(hi), []).append(m.group(1))
    return found


def check_rom(disassembly: str, otp_epoch: bool = False) -> list:
    """`otp_epoch`: the source confines OTP writes to the rollback epoch's rows
    ([`otp_writes_confined`]), so `OA` (otp_access, which embassy-rp's OTP writes call) is
    allowed."""
    problems = []
    for code, where in sorted(rom_lookups(disassembly).items()):
        if code == "OA" and otp_epoch:
            continue
        if code not in ALLOWED_ROM:
            name = KNOWN_ROM.get(code, "unknown ROM function")
            problems.append(f"boot ROM function {code} ({name}) looked up at 0x{where[0]}")
    return problems


def check_symbols(symbols: str) -> list:
    return [f"symbol `{s.strip()}`" for s in symbols.splitlines()
            if FORBIDDEN_SYMBOL.search(s)]


def check_image_bytes(data: bytes) -> list:
    if WATCHDOG_REBOOT_MAGIC in data:
        return ["the watchdog reboot magic 0xb007c0d3 is in the image"]
    return []


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


SOURCE_RULES = (
    (r"\.function\s*\(", "an extra USB function"),
    (r"\.interface\s*\(", "an extra USB interface"),
    (r"\.alt_setting\s*\(", "an extra USB alternate setting"),
    (r"\.handler\s*\(", "a USB control-request handler"),
    (r"msos|web_usb|WebUsb", "Microsoft OS / WebUSB descriptors"),
    (r"rom_data", "a direct boot ROM call"),
    (r"reset_to_usb_boot|reboot|picoboot|[Ww]atchdog", "a reboot path"),
    (r"blocking_erase|blocking_write|flash_range_(erase|program)", "a raw flash write"),
)

# The self-test's scratch sector (`build.rs`: between the image and the guard) is the one place
# besides the store and the guard that is written: with the raw blocking routines, each call
# on the scratch's own bounds (erase: the whole sector; program: an address from the bounds
# check `end <= SCRATCH_SIZE`).
SCRATCH_FILE = "selftest.rs"
SCRATCH_WRITES = (
    r"blocking_erase\(SCRATCH_OFFSET, SCRATCH_OFFSET \+ SCRATCH_SIZE\)",
    r"blocking_write\(at, ",
)


def check_sources(sources: dict) -> list:
    """`sources`: {file name: text} of the firmware's src directory."""
    problems = []
    code = {name: strip_comments(text) for name, text in sources.items()}
    for name, text in sorted(code.items()):
        for m in re.finditer(r"embassy_usb::class::(\w+)", text):
            if m.group(1) != "cdc_acm":
                problems.append(f"{name}: USB class `{m.group(1)}` (only CDC-ACM is allowed)")
        checked = text
        if name == SCRATCH_FILE:
            if not re.search(r"end <= SCRATCH_SIZE", text):
                problems.append(f"{name}: scratch writes without the `end <= SCRATCH_SIZE` check")
            for allowed in SCRATCH_WRITES:
                checked = re.sub(allowed, "", checked)
        for pattern, what in SOURCE_RULES:
            hit = re.search(pattern, checked)
            if hit:
                problems.append(f"{name}: {what} (`{hit.group(0)}`)")
        if re.search(r"\bBuilder::new\s*\(", text) and name != "link.rs":
            problems.append(f"{name}: a USB Builder outside link.rs")
        classes = re.findall(r"\b(\w+Class)::new\s*\(", text)
        if name == "link.rs" and classes != ["CdcAcmClass"]:
            problems.append(f"link.rs: USB classes {classes} (exactly one CdcAcmClass expected)")
        if re.search(r"\bFlash::new\s*\(", text) and name != "main.rs":
            problems.append(f"{name}: the flash opened outside main.rs")
        for m in re.finditer(r"\bRegion::new\s*\(([^)]*)\)", text):
            args = [a.strip() for a in m.group(1).split(",")]
            if name != "storage.rs" or args[1:] not in (["STORE_OFFSET", "STORE_SIZE"],
                                                       ["GUARD_OFFSET", "GUARD_SIZE"]):
                problems.append(f"{name}: a flash partition other than the store or the "
                                f"guard (`{m.group(0)}`)")
    opens = sum(len(re.findall(r"\bFlash::new\s*\(", t)) for t in code.values())
    if opens != 1:
        problems.append(f"the flash is opened {opens} times (once, in main.rs, expected)")
    if not re.search(r"\bBuilder::new\s*\(", code.get("link.rs", "")):
        problems.append("link.rs: no USB Builder found (the check no longer sees the USB set-up)")
    # In main.rs the shared flash goes to storage::open and nowhere else.
    uses = re.findall(r"^.*\bflash\b.*$", code.get("main.rs", ""), flags=re.MULTILINE)
    for line in uses:
        if not re.search(r"let flash = FLASH\.init\(|storage::open\(flash,|use embassy_rp::\{"
                         r"|selftest::PicoBench::new\(flash,", line):
            problems.append(f"main.rs: the flash used outside storage::open: `{line.strip()}`")
    return problems


# OTP writes: only the rollback anchor (`src/epoch.rs`, feature `otp-epoch`) burns OTP, and only
# rows of its own counter (`EPOCH_FIRST_ROW + i`, `i` bounded by `EPOCH_ROWS`).
OTP_WRITE = re.compile(r"write_raw_word|write_ecc_word|otp_access")
EPOCH_FILE = "epoch.rs"


def otp_writes_confined(sources: dict) -> tuple:
    """(whether OTP is written at all, problems): every OTP write in `epoch.rs`, on a row
    computed from `EPOCH_FIRST_ROW` with the index bounded by `EPOCH_ROWS`."""
    code = {name: strip_comments(text) for name, text in sources.items()}
    writes = False
    problems = []
    for name, text in sorted(code.items()):
        if not OTP_WRITE.search(text):
            continue
        writes = True
        if name != EPOCH_FILE:
            problems.append(f"{name}: an OTP write outside {EPOCH_FILE}")
            continue
        rows = re.findall(r"let row = ([^;(]+);", text)
        calls = re.findall(r"write_(?:raw|ecc)_word\(\s*(\w+)\s*,", text)
        if not calls or any(c != "row" for c in calls) or not rows or any(
                not r.startswith("EPOCH_FIRST_ROW + ") for r in rows) or "EPOCH_ROWS" not in text:
            problems.append(f"{name}: an OTP write not on `EPOCH_FIRST_ROW + i` bounded by "
                            f"`EPOCH_ROWS`")
    return writes, problems


def check_lock(lock: str) -> list:
    names = re.findall(r'^name = "([^"]+)"', lock, flags=re.MULTILINE)
    return [f"Cargo.lock: crate `{n}`" for n in names if FORBIDDEN_CRATES.search(n)]


def run(elf: str, src: str, lock: str) -> list:
    disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf],
                                 check=True, capture_output=True, text=True).stdout
    symbols = subprocess.run(["arm-none-eabi-nm", "-C", elf], check=True,
                             capture_output=True, text=True).stdout
    with open(elf, "rb") as f:
        image = f.read()
    sources = {}
    for name in sorted(os.listdir(src)):
        if name.endswith(".rs"):
            with open(os.path.join(src, name), encoding="utf-8") as f:
                sources[name] = f.read()
    with open(lock, encoding="utf-8") as f:
        lock_text = f.read()
    lookups = rom_lookups(disassembly)
    otp_writes, otp_problems = otp_writes_confined(sources)
    problems = (check_rom(disassembly, otp_epoch=otp_writes and not otp_problems)
                + check_symbols(symbols) + check_image_bytes(image)
                + check_sources(sources) + otp_problems + check_lock(lock_text))
    if not lookups.get("RE") or not lookups.get("RP"):
        problems.append("no flash erase/program ROM lookup found: the disassembly check no "
                        "longer recognises ROM calls")
    return problems


def main() -> int:
    if len(sys.argv) != 4:
        print("usage: no_usb_bootloader.py ELF SRC_DIR CARGO_LOCK", file=sys.stderr)
        return 2
    problems = run(*sys.argv[1:])
    for p in problems:
        print(f"no-usb-bootloader: {p}", file=sys.stderr)
    if problems:
        return 1
    print("no USB path to the bootloader: ROM lookups only flash helpers, CDC-ACM only, "
          "flash writes only through the store and guard partitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
