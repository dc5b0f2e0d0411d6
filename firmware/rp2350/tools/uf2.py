#!/usr/bin/env python3
"""ELF -> UF2 for the RP2350 (Arm, Secure image), stdlib only.

Usage: uf2.py IN.elf OUT.uf2 [--family 0xe48bff59]

What it writes (the UF2 spec, https://github.com/microsoft/uf2):
  * every PT_LOAD segment with file contents, at its *physical* (load) address, so `.data`
    goes where the ROM finds it in flash, not where it runs in RAM;
  * cut into 256-byte flash pages (gaps inside a page are zero-filled), one page per
    512-byte block: magic 0x0A324655 0x9E5D5157, flags 0x2000 (family ID present), target
    address, payload size 256, block number, block count, family ID, 476 data bytes (256
    used), magic end 0x0AB16F30.
Family 0xe48bff59 is RP2350 Arm Secure ("rp2350-arm-s"). Every segment must lie in the
board's flash window (0x1000_0000 .. +4 MiB); anything else is refused rather than silently
dropped. No RP2350-E10 "absolute block" is added: a board without a partition table (as
shipped) does not need it.
"""

import argparse
import struct
import sys

MAGIC0 = 0x0A324655
MAGIC1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000
PAGE = 256
RP2350_ARM_S = 0xE48BFF59
FLASH_START = 0x10000000
FLASH_END = FLASH_START + 4 * 1024 * 1024
PT_LOAD = 1


class Uf2Error(Exception):
    """The ELF cannot be turned into a UF2 for this board."""


def load_segments(elf):
    """(physical address, bytes) for each PT_LOAD segment that has file contents."""
    try:
        return _load_segments(elf)
    except struct.error as e:
        raise Uf2Error(f"truncated ELF ({e})") from e


def _load_segments(elf):
    if elf[:4] != b"\x7fELF":
        raise Uf2Error("not an ELF file")
    if elf[4] != 1 or elf[5] != 1:
        raise Uf2Error("not a 32-bit little-endian ELF")
    (phoff,) = struct.unpack_from("<I", elf, 0x1C)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x2A)
    segments = []
    for i in range(phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz, _memsz, _flags, _align = struct.unpack_from(
            "<8I", elf, phoff + i * phentsize
        )
        if p_type != PT_LOAD or p_filesz == 0:
            continue
        if p_offset + p_filesz > len(elf):
            raise Uf2Error(f"segment {i} runs past the end of the file")
        if not (FLASH_START <= p_paddr and p_paddr + p_filesz <= FLASH_END):
            raise Uf2Error(
                f"segment {i} at {p_paddr:#010x}+{p_filesz:#x} is outside flash "
                f"{FLASH_START:#010x}..{FLASH_END:#010x}"
            )
        segments.append((p_paddr, elf[p_offset : p_offset + p_filesz]))
    if not segments:
        raise Uf2Error("no loadable segments")
    return segments


def pages_of(segments):
    """{page address: 256 bytes}, refusing overlapping segments."""
    pages = {}
    written = {}
    for addr, data in sorted(segments):
        for offset, byte in enumerate(data):
            at = addr + offset
            if at in written:
                raise Uf2Error(f"segments overlap at {at:#010x}")
            written[at] = True
            page = at - at % PAGE
            pages.setdefault(page, bytearray(PAGE))[at - page] = byte
    return pages


def to_uf2(elf, family=RP2350_ARM_S):
    """The UF2 image of `elf` (bytes)."""
    pages = pages_of(load_segments(elf))
    count = len(pages)
    out = bytearray()
    for number, addr in enumerate(sorted(pages)):
        header = struct.pack(
            "<8I", MAGIC0, MAGIC1, FLAG_FAMILY_ID, addr, PAGE, number, count, family
        )
        data = bytes(pages[addr]) + bytes(476 - PAGE)
        out += header + data + struct.pack("<I", MAGIC_END)
    return bytes(out)


def read_blocks(uf2):
    """Parse a UF2 back: list of (flags, addr, size, number, count, family, payload)."""
    if len(uf2) % 512:
        raise Uf2Error("UF2 length is not a multiple of 512")
    blocks = []
    for at in range(0, len(uf2), 512):
        m0, m1, flags, addr, size, number, count, family = struct.unpack_from("<8I", uf2, at)
        (end,) = struct.unpack_from("<I", uf2, at + 508)
        if (m0, m1, end) != (MAGIC0, MAGIC1, MAGIC_END):
            raise Uf2Error(f"bad magic in block at byte {at}")
        blocks.append((flags, addr, size, number, count, family, uf2[at + 32 : at + 32 + size]))
    return blocks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf")
    parser.add_argument("uf2")
    parser.add_argument("--family", type=lambda s: int(s, 0), default=RP2350_ARM_S)
    args = parser.parse_args(argv)
    with open(args.elf, "rb") as f:
        elf = f.read()
    try:
        image = to_uf2(elf, args.family)
    except Uf2Error as e:
        print(f"uf2.py: {args.elf}: {e}", file=sys.stderr)
        return 1
    with open(args.uf2, "wb") as f:
        f.write(image)
    print(f"{args.uf2}: {len(image) // 512} blocks, {len(image)} bytes, family {args.family:#010x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
