"""Tests for no_usb_bootloader.py: each rule sees its offence in synthetic input (disassembly
lines as arm-none-eabi-objdump prints them, symbol lists, source files), and the firmware as
it is passes (when built).

Run: python3 -m unittest discover -s firmware/rp2350/tools
"""

import os
import unittest

import no_usb_bootloader as check

HERE = os.path.dirname(__file__)
ELF_PATH = os.path.join(HERE, "..", "out", "pawl-rp2350.elf")


def rom_call(code: str, address: str = "10001000") -> str:
    value = ord(code[0]) | ord(code[1]) << 8
    return (f"{address}:\tmovw\tr0, #{value}\t@ 0x{value:04x}\n"
            f"{int(address, 16) + 4:x}:\tmovs\tr1, #4\n"
            f"{int(address, 16) + 6:x}:\tblx\tr2\n")


def read_sources() -> dict:
    src = os.path.join(HERE, "..", "src")
    sources = {}
    for name in os.listdir(src):
        if name.endswith(".rs"):
            with open(os.path.join(src, name), encoding="utf-8") as f:
                sources[name] = f.read()
    return sources


class RomLookups(unittest.TestCase):
    def test_flash_helpers_pass(self):
        text = rom_call("RE") + rom_call("RP", "10002000") + rom_call("IF", "10003000")
        self.assertEqual(check.check_rom(text), [])
        self.assertEqual(set(check.rom_lookups(text)), {"RE", "RP", "IF"})

    def test_reboot_to_bootsel_is_caught(self):
        problems = check.check_rom(rom_call("RE") + rom_call("RB", "10004000"))
        self.assertEqual(len(problems), 1)
        self.assertIn("RB (reboot", problems[0])

    def test_every_other_rom_function_is_caught(self):
        for code in ("UB", "CI", "EB", "OA", "LP", "SR", "ZZ"):
            self.assertTrue(check.check_rom(rom_call(code)), code)

    def test_a_direct_call_after_a_letter_constant_is_not_a_lookup(self):
        text = ("10004f2e:\tmovw\tr0, #16719\t@ 0x414f\n"
                "10004f34:\tbl\t1003f942 <__aeabi_memclr4>\n")
        self.assertEqual(check.check_rom(text), [])


class Symbols(unittest.TestCase):
    def test_reboot_symbols_are_caught(self):
        for s in ("10001000 T embassy_rp::rom_data::reboot",
                  "10001000 t embassy_rp::rom_data::reset_to_usb_boot",
                  "10001000 t pawl::picoboot_handler",
                  "10001000 t embassy_usb_dfu::usb_dfu",
                  "10001000 t embassy_rp::watchdog::Watchdog::trigger_reset"):
            self.assertTrue(check.check_symbols(s), s)

    def test_words_that_merely_contain_the_letters_pass(self):
        self.assertEqual(check.check_symbols(
            "1000c82c t <embassy_sync::pipe::ReadFuture<M,_> as Future>::poll"), [])

    def test_the_watchdog_reboot_magic_is_caught(self):
        self.assertTrue(check.check_image_bytes(b"\x00" + (0xB007C0D3).to_bytes(4, "little")))
        self.assertEqual(check.check_image_bytes(b"\xd3\xc0\x07\xb1"), [])


class Sources(unittest.TestCase):
    def setUp(self):
        self.sources = read_sources()

    def test_the_firmware_sources_pass(self):
        self.assertEqual(check.check_sources(self.sources), [])

    def with_change(self, name: str, old: str, new: str) -> list:
        sources = dict(self.sources)
        self.assertIn(old, sources[name])
        sources[name] = sources[name].replace(old, new, 1)
        return check.check_sources(sources)

    def test_a_second_usb_class_is_caught(self):
        problems = self.with_change(
            "link.rs", "let (sender, receiver) = class.split();",
            "let _hid = HidWriter::new(&mut builder, s, c);\n"
            "    let _v = embassy_usb::class::web_usb::WebUsb::configure(&mut builder, s, c);\n"
            "    let (sender, receiver) = class.split();")
        self.assertTrue(any("web_usb" in p for p in problems), problems)

    def test_a_vendor_interface_or_handler_is_caught(self):
        for extra in ("let mut f = builder.function(0xff, 0, 0);",
                      "builder.handler(PICOBOOT.init(Reset));"):
            problems = self.with_change("link.rs", "let mut device = builder.build();",
                                        extra + "\n    let mut device = builder.build();")
            self.assertTrue(problems, extra)

    def test_a_reboot_call_is_caught(self):
        problems = self.with_change(
            "main.rs", "let mode = button.boot_mode();",
            "let mode = button.boot_mode();\n"
            "    embassy_rp::rom_data::reboot(0x0002, 10, 0, 0);")
        self.assertTrue(any("boot ROM" in p or "reboot" in p for p in problems), problems)

    def test_a_partition_beyond_the_store_and_guard_is_caught(self):
        problems = self.with_change(
            "storage.rs", "Region::new(flash, STORE_OFFSET, STORE_SIZE)",
            "Region::new(flash, 0, FLASH_SIZE)")
        self.assertTrue(any("partition" in p for p in problems), problems)

    def test_a_raw_flash_write_outside_the_scratch_is_caught(self):
        problems = self.with_change(
            "selftest.rs",
            "blocking_erase(SCRATCH_OFFSET, SCRATCH_OFFSET + SCRATCH_SIZE)",
            "blocking_erase(0, 4096)")
        self.assertTrue(any("raw flash write" in p for p in problems), problems)

    def test_the_flash_handed_elsewhere_in_main_is_caught(self):
        problems = self.with_change("main.rs", "let entropy =",
                                    "let _x = flash.try_lock();\n    let entropy =")
        self.assertTrue(any("outside storage::open" in p for p in problems), problems)


class OtpWrites(unittest.TestCase):
    EPOCH = """
pub const EPOCH_FIRST_ROW: usize = 0xc40;
pub const EPOCH_ROWS: usize = 256;
fn burn(full_rows: usize) {
    for i in 0..full_rows.min(EPOCH_ROWS) {
        let row = EPOCH_FIRST_ROW + i;
        otp::write_raw_word(row, ROW_MASK);
    }
}
"""

    def test_the_epoch_rows_only_allow_otp_access(self):
        writes, problems = check.otp_writes_confined({"epoch.rs": self.EPOCH, "main.rs": ""})
        self.assertTrue(writes)
        self.assertEqual(problems, [])
        self.assertEqual(check.check_rom(rom_call("OA"), otp_epoch=True), [])
        self.assertTrue(check.check_rom(rom_call("OA"), otp_epoch=False))

    def test_an_otp_write_elsewhere_is_caught(self):
        _, problems = check.otp_writes_confined(
            {"epoch.rs": self.EPOCH, "otp.rs": "otp::write_ecc_word(0xc00, 1);"})
        self.assertTrue(any("outside epoch.rs" in p for p in problems), problems)

    def test_an_otp_write_on_another_row_is_caught(self):
        _, problems = check.otp_writes_confined(
            {"epoch.rs": self.EPOCH.replace("let row = EPOCH_FIRST_ROW + i;",
                                            "let row = 0x040;")})
        self.assertTrue(problems)

    def test_the_firmware_sources_write_otp_only_in_the_epoch_rows(self):
        _, problems = check.otp_writes_confined(read_sources())
        self.assertEqual(problems, [])


class Lock(unittest.TestCase):
    def test_dfu_and_bootloader_crates_are_caught(self):
        lock = 'name = "embassy-usb"\n\nname = "embassy-usb-dfu"\n\nname = "embassy-boot-rp"\n'
        self.assertEqual(len(check.check_lock(lock)), 2)


@unittest.skipUnless(os.path.exists(ELF_PATH), "firmware not built (firmware/rp2350/build.sh)")
class BuiltFirmware(unittest.TestCase):
    def test_the_built_image_passes(self):
        lock = os.path.join(HERE, "..", "..", "Cargo.lock")
        src = os.path.join(HERE, "..", "src")
        self.assertEqual(check.run(ELF_PATH, src, lock), [])


if __name__ == "__main__":
    unittest.main()
