"""Tests for uf2.py: synthetic ELFs built here, and (when built) the firmware ELF itself,
read back block by block and compared with the ELF's load image.

Run: python3 -m unittest discover -s firmware/rp2350/tools
"""

import os
import struct
import unittest

import uf2

ELF_PATH = os.path.join(
    os.path.dirname(__file__),
    "..",
    "target",
    "thumbv8m.main-none-eabihf",
    "release",
    "pawl-rp2350",
)


def make_elf(segments):
    """A minimal ELF32 LE with one PT_LOAD per (paddr, vaddr, data)."""
    phoff = 52
    data_at = phoff + 32 * len(segments)
    header = bytearray(52)
    header[:7] = b"\x7fELF\x01\x01\x01"
    struct.pack_into("<HHI", header, 16, 2, 40, 1)  # ET_EXEC, EM_ARM, version
    struct.pack_into("<I", header, 0x1C, phoff)
    struct.pack_into("<HH", header, 0x2A, 32, len(segments))
    phdrs = bytearray()
    body = bytearray()
    for paddr, vaddr, data in segments:
        offset = data_at + len(body)
        phdrs += struct.pack("<8I", 1, offset, vaddr, paddr, len(data), len(data), 5, 4)
        body += data
    return bytes(header + phdrs + body)


def image_of(blocks):
    """{address: byte} from parsed UF2 blocks."""
    mem = {}
    for _flags, addr, size, _n, _c, _fam, payload in blocks:
        for i in range(size):
            mem[addr + i] = payload[i]
    return mem


class Uf2Test(unittest.TestCase):
    def test_blocks_round_trip(self):
        code = bytes(range(256)) * 3 + b"\x01\x02\x03"  # 771 bytes: 4 pages
        data = b"DATA" * 10  # LMA in flash, VMA in RAM
        elf = make_elf([(0x10000000, 0x10000000, code), (0x10000400, 0x20000000, data)])
        blocks = uf2.read_blocks(uf2.to_uf2(elf))
        self.assertEqual(len(blocks), 5)
        for n, (flags, addr, size, number, count, family, _p) in enumerate(blocks):
            self.assertEqual(flags, uf2.FLAG_FAMILY_ID)
            self.assertEqual(size, 256)
            self.assertEqual(number, n)
            self.assertEqual(count, 5)
            self.assertEqual(family, 0xE48BFF59)
            self.assertEqual(addr % 256, 0)
        mem = image_of(blocks)
        self.assertEqual(bytes(mem[0x10000000 + i] for i in range(len(code))), code)
        # .data is placed at its load address, not its RAM address.
        self.assertEqual(bytes(mem[0x10000400 + i] for i in range(len(data))), data)
        # Padding inside a page is zero.
        self.assertEqual(mem[0x10000000 + len(code)], 0)

    def test_sparse_pages_only(self):
        elf = make_elf([(0x10000000, 0x10000000, b"\xaa"), (0x10100010, 0x10100010, b"\xbb")])
        blocks = uf2.read_blocks(uf2.to_uf2(elf))
        self.assertEqual([b[1] for b in blocks], [0x10000000, 0x10100000])
        self.assertEqual(blocks[1][6][0x10], 0xBB)

    def test_refuses_outside_flash(self):
        elf = make_elf([(0x20000000, 0x20000000, b"ram")])
        with self.assertRaises(uf2.Uf2Error):
            uf2.to_uf2(elf)
        elf = make_elf([(0x103FFFFE, 0x103FFFFE, b"over")])
        with self.assertRaises(uf2.Uf2Error):
            uf2.to_uf2(elf)

    def test_refuses_overlap(self):
        elf = make_elf([(0x10000000, 0x10000000, b"ab"), (0x10000001, 0x10000001, b"c")])
        with self.assertRaises(uf2.Uf2Error):
            uf2.to_uf2(elf)

    def test_refuses_garbage(self):
        with self.assertRaises(uf2.Uf2Error):
            uf2.to_uf2(b"not an elf at all")
        with self.assertRaises(uf2.Uf2Error):
            uf2.to_uf2(b"\x7fELF\x01\x01\x01")  # truncated header

    @unittest.skipUnless(os.path.exists(ELF_PATH), "firmware not built")
    def test_firmware_image(self):
        with open(ELF_PATH, "rb") as f:
            elf = f.read()
        blocks = uf2.read_blocks(uf2.to_uf2(elf))
        mem = image_of(blocks)
        for addr, data in uf2.load_segments(elf):
            self.assertEqual(bytes(mem[addr + i] for i in range(len(data))), data)
        # The vector table starts the image; the IMAGE_DEF block (0xffffded3 ... 0xab123579)
        # sits in the first 4 KiB, where the boot ROM searches.
        self.assertEqual(blocks[0][1], 0x10000000)
        first = bytes(mem.get(0x10000000 + i, 0) for i in range(4096))
        start = first.find(struct.pack("<I", 0xFFFFDED3))
        self.assertGreaterEqual(start, 0, "no IMAGE_DEF block start marker in the first 4 KiB")
        self.assertNotEqual(first.find(struct.pack("<I", 0xAB123579), start), -1)
        # Nothing lands in the self-test's scratch sector, the guard or the store (the last
        # 292 KiB of flash: 4 + 32 + 256).
        self.assertLess(max(mem), 0x10000000 + 4 * 1024 * 1024 - 292 * 1024)


if __name__ == "__main__":
    unittest.main()
