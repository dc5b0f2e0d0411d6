//! The board part of `pawl device selftest`: versions, mode and store health (Hello, Status),
//! what the board measures itself (`SelfTestRequest`: board key, sign times on its own clock,
//! scratch flash, entropy, button), and what this process measures about the link (Status
//! round trips, Echo throughput).
//!
//! Every section is one entry of the JSON object and one or more lines of text, with a
//! `status` of `ok`, `failed: …` or `skipped: …`. Failures are collected; the command then
//! exits non-zero. Nothing here changes the board: the board's rules for each request are in
//! `pawl_core::board`'s `selftest` module.

use std::time::Instant;

use pawl_core::board::TEST_MESSAGE;
use pawl_core::keys::{Curve, SigningVersion};
use pawl_core::protocol::selftest::{
    BoardKeyState, ButtonCheck, FlashTiming, SelfTestRequest, SelfTestResponse, Skip,
};
use pawl_core::protocol::{Mode, PROTOCOL_VERSION, Request, Response, StoreHealth};
use serde_json::{Value, json};

use super::SelftestArgs;
use crate::commands::device::mode_name;
use crate::commands::{Context, ask, print_json};
use crate::link::Link;

/// The report being written.
#[derive(Default)]
pub(super) struct Report {
    json: serde_json::Map<String, Value>,
    text: Vec<(String, String)>,
    failures: Vec<String>,
    warnings: Vec<String>,
}

impl Report {
    pub(super) fn put(&mut self, key: &str, value: Value) {
        self.json.insert(key.into(), value);
    }

    pub(super) fn line(&mut self, label: &str, text: String) {
        self.text.push((label.into(), text));
    }

    pub(super) fn fail(&mut self, what: String) {
        self.failures.push(what);
    }
}

/// Run the board self-test on the board `ctx` names and print the report.
pub fn run(ctx: &Context, args: &SelftestArgs) -> anyhow::Result<()> {
    let name = ctx.board()?.name.clone();
    let link = ctx.open_link()?;
    let mut report = Report::default();
    report.put("board", json!(name));
    report.put("via", json!(link.view().describe));
    identity(&link, &mut report)?;
    store(&link, &mut report)?;
    facts(&link, &mut report)?;
    sign_times(&link, &mut report)?;
    flash(&link, &mut report)?;
    super::link::link_speed(&link, args.round_trips, &mut report)?;
    button(&link, args.no_button, &mut report)?;
    entropy(&link, &mut report)?;

    let ok = report.failures.is_empty();
    report.put("ok", json!(ok));
    report.put("failures", json!(report.failures));
    report.put("warnings", json!(report.warnings));
    if ctx.json {
        print_json(&Value::Object(std::mem::take(&mut report.json)));
    } else {
        for (label, text) in &report.text {
            println!("{:<13}{text}", format!("{label}:"));
        }
        for w in &report.warnings {
            println!("warning:     {w}");
        }
        match report.failures.as_slice() {
            [] => println!("result:      every check passed"),
            f => println!("result:      FAILED: {}", f.join("; ")),
        }
    }
    if !ok {
        anyhow::bail!("{} self-test check(s) failed", report.failures.len());
    }
    Ok(())
}

pub(super) fn selftest(
    link: &Link,
    request: SelfTestRequest<'_>,
) -> anyhow::Result<SelfTestResponse> {
    match ask(link, &Request::SelfTest(request))? {
        Response::SelfTest(r) => Ok(r),
        other => anyhow::bail!("unexpected answer to a self-test request: {other:?}"),
    }
}

fn skip_text(skip: Skip) -> &'static str {
    match skip {
        Skip::OperationalMode => "skipped: operational mode",
        Skip::NoInstruments => "skipped: the board lends the self-test no instruments",
        Skip::NoScratch => "skipped: the board has no scratch flash sector",
        Skip::FlashTestsUsed => "skipped: this boot's flash tests are used up (power-cycle)",
        Skip::NoButton => "skipped: the board has no button it can test",
    }
}

pub(super) fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// Versions and mode (Hello): the board's protocol must be ours.
fn identity(link: &Link, report: &mut Report) -> anyhow::Result<Mode> {
    let Response::Info {
        protocol,
        firmware,
        board,
        mode,
    } = ask(
        link,
        &Request::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )?
    else {
        anyhow::bail!("unexpected answer to hello");
    };
    let bridge = env!("CARGO_PKG_VERSION");
    let matches = protocol == PROTOCOL_VERSION;
    report.put("board_model", json!(board.as_str()));
    report.put(
        "versions",
        json!({
            "firmware": firmware.as_str(),
            "protocol": protocol,
            "bridge": bridge,
            "bridge_protocol": PROTOCOL_VERSION,
            "status": if matches { "ok".to_string() } else { format!("failed: protocol {protocol}, bridge speaks {PROTOCOL_VERSION}") },
        }),
    );
    report.put("mode", json!(mode_name(mode)));
    report.line("board", board.to_string());
    report.line(
        "versions",
        format!("firmware {firmware}, protocol {protocol} (bridge {bridge}, protocol {PROTOCOL_VERSION})"),
    );
    report.line("mode", mode_name(mode).to_string());
    if !matches {
        report.fail(format!(
            "protocol: the board speaks {protocol}, the bridge {PROTOCOL_VERSION}"
        ));
    }
    if firmware.as_str() != bridge {
        report.warnings.push(format!(
            "firmware {firmware} is not the bridge's version {bridge}"
        ));
    }
    Ok(mode)
}

/// Store health and wear (Status).
fn store(link: &Link, report: &mut Report) -> anyhow::Result<()> {
    let Response::Status(status) = ask(link, &Request::Status)? else {
        anyhow::bail!("unexpected answer to status");
    };
    let health = match status.store {
        StoreHealth::Ok => "ok".to_string(),
        StoreHealth::Refusing(e) => format!("failed: refusing to sign: {e}"),
    };
    report.put(
        "store",
        json!({
            "status": health,
            "keys": status.keys,
            "marks": status.marks,
            "mark_capacity": status.mark_capacity,
            "signatures": status.signatures,
            "refusals": status.refusals,
            "wear": {
                "records": status.wear.records,
                "bytes_written": status.wear.bytes_written,
                "pages_erased": status.wear.pages_erased,
            },
        }),
    );
    report.line(
        "store",
        format!(
            "{health}; {} key(s), {} of {} marks; since boot {} record(s), {} B programmed, {} page(s) erased",
            status.keys,
            status.marks,
            status.mark_capacity,
            status.wear.records,
            status.wear.bytes_written,
            status.wear.pages_erased
        ),
    );
    if let StoreHealth::Refusing(e) = status.store {
        report.fail(format!("store: refusing to sign ({e})"));
    }
    Ok(())
}

fn board_key_name(state: BoardKeyState) -> &'static str {
    match state {
        BoardKeyState::OtpLocked => "otp-locked",
        BoardKeyState::OtpUnlocked => "otp-unlocked",
        BoardKeyState::Absent => "absent",
        BoardKeyState::SimulatedFile => "simulated-file",
        BoardKeyState::Unknown => "unknown",
    }
}

/// Board key state and the board's clock (Facts).
fn facts(link: &Link, report: &mut Report) -> anyhow::Result<()> {
    let SelfTestResponse::Facts(facts) = selftest(link, SelfTestRequest::Facts)? else {
        anyhow::bail!("unexpected answer to the self-test's facts");
    };
    let key = board_key_name(facts.board_key);
    report.put("board_key", json!(key));
    report.put(
        "clock",
        json!({ "instruments": facts.instruments, "source": facts.clock.as_str() }),
    );
    report.put(
        "scratch_flash",
        json!({ "present": facts.scratch_flash, "tests_left_this_boot": facts.flash_tests_left }),
    );
    let key_text = match facts.board_key {
        BoardKeyState::OtpLocked => "in OTP, locked",
        BoardKeyState::OtpUnlocked => "in OTP, NOT locked",
        BoardKeyState::Absent => "ABSENT: the board cannot open its store",
        BoardKeyState::SimulatedFile => "a file on the host (no hardware protection)",
        BoardKeyState::Unknown => "unknown (the board reports no instruments)",
    };
    report.line("board key", key_text.into());
    report.line(
        "clock",
        if facts.instruments {
            facts.clock.to_string()
        } else {
            "none: the board times nothing".into()
        },
    );
    match facts.board_key {
        BoardKeyState::Absent => report.fail("board key: absent".into()),
        BoardKeyState::OtpUnlocked => report
            .warnings
            .push("the board key's OTP pages are not locked".into()),
        _ => {}
    }
    Ok(())
}

fn tz(curve: Curve) -> &'static str {
    match curve {
        Curve::Ed25519 => "tz1",
        Curve::Secp256k1 => "tz2",
        Curve::P256 => "tz3",
        Curve::Bls12_381 => "tz4",
    }
}

/// Per-curve sign time on the board's clock, throw-away keys (provisioning mode).
fn sign_times(link: &Link, report: &mut Report) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for curve in Curve::ALL {
        let asked = Instant::now();
        let answer = selftest(link, SelfTestRequest::SignTime { curve })?;
        let request_us = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
        let row = match answer {
            SelfTestResponse::Signed {
                curve: signed,
                sign_us,
                verify_us,
                verified,
                public_key,
                signature,
            } => {
                // The board verified; check here too, so a signature corrupted on the way or
                // made for another message is seen.
                let here = public_key
                    .verify(TEST_MESSAGE, &signature, SigningVersion::LATEST)
                    .is_ok();
                let ok = verified && here && signed == curve && public_key.curve() == curve;
                if !ok {
                    report.fail(format!("sign {}: the signature does not verify", tz(curve)));
                }
                report.line(
                    &format!("sign {}", tz(curve)),
                    format!(
                        "{} (verify {}) on the board's clock; {}",
                        ms(u64::from(sign_us)),
                        ms(u64::from(verify_us)),
                        if ok { "verified" } else { "DOES NOT VERIFY" }
                    ),
                );
                json!({
                    "curve": tz(curve),
                    "status": if ok { "ok" } else { "failed: does not verify" },
                    "sign_us": sign_us,
                    "verify_us": verify_us,
                    "request_us": request_us,
                    "verified_by_board": verified,
                    "verified_by_bridge": here,
                    "public_key": public_key.to_b58().to_string(),
                    "signature": signature.to_b58().to_string(),
                })
            }
            SelfTestResponse::Skipped(skip) => {
                report.line(&format!("sign {}", tz(curve)), skip_text(skip).into());
                json!({ "curve": tz(curve), "status": skip_text(skip) })
            }
            other => anyhow::bail!("unexpected answer to a sign-time request: {other:?}"),
        };
        rows.push(row);
    }
    report.put("sign", json!(rows));
    report.put("test_message_hex", json!(hex::encode(TEST_MESSAGE)));
    Ok(())
}

/// Scratch flash erase and program time (provisioning mode).
fn flash(link: &Link, report: &mut Report) -> anyhow::Result<()> {
    let value = match selftest(link, SelfTestRequest::FlashTime)? {
        SelfTestResponse::Flash(FlashTiming::Done {
            erase_us,
            program_us,
            bytes,
            erased_ok,
            readback_ok,
        }) => {
            let ok = erased_ok && readback_ok;
            if !ok {
                report.fail(format!(
                    "flash: scratch sector erased {erased_ok}, read back {readback_ok}"
                ));
            }
            report.line(
                "flash",
                format!(
                    "erase one sector {}, program {bytes} B {}; {}",
                    ms(u64::from(erase_us)),
                    ms(u64::from(program_us)),
                    if ok {
                        "read back ok"
                    } else {
                        "READ BACK WRONG"
                    }
                ),
            );
            json!({
                "status": if ok { "ok" } else { "failed: read back wrong" },
                "erase_us": erase_us,
                "program_us": program_us,
                "program_bytes": bytes,
                "erased_ok": erased_ok,
                "readback_ok": readback_ok,
            })
        }
        SelfTestResponse::Flash(FlashTiming::Failed(e)) => {
            report.fail(format!("flash: {e:?}"));
            report.line("flash", format!("FAILED: {e:?}"));
            json!({ "status": format!("failed: {e:?}") })
        }
        SelfTestResponse::Skipped(skip) => {
            report.line("flash", skip_text(skip).into());
            json!({ "status": skip_text(skip) })
        }
        other => anyhow::bail!("unexpected answer to the flash test: {other:?}"),
    };
    report.put("flash", value);
    Ok(())
}

/// The button: the operator presses it within the board's window.
fn button(link: &Link, skip: bool, report: &mut Report) -> anyhow::Result<()> {
    if skip {
        report.put("button", json!({ "status": "skipped: --no-button" }));
        report.line("button", "skipped: --no-button".into());
        return Ok(());
    }
    eprintln!("press the board's button now (the board waits for its confirmation window)");
    let value = match selftest(link, SelfTestRequest::Button)? {
        SelfTestResponse::Button(ButtonCheck::Pressed { after_us }) => {
            report.line(
                "button",
                format!("pressed after {}", ms(u64::from(after_us))),
            );
            json!({ "status": "ok", "pressed_after_us": after_us })
        }
        SelfTestResponse::Button(ButtonCheck::NotPressed) => {
            report.fail("button: no press within the board's window".into());
            report.line("button", "NOT PRESSED within the board's window".into());
            json!({ "status": "failed: not pressed" })
        }
        SelfTestResponse::Skipped(s) => {
            report.line("button", skip_text(s).into());
            json!({ "status": skip_text(s) })
        }
        other => anyhow::bail!("unexpected answer to the button check: {other:?}"),
    };
    report.put("button", value);
    Ok(())
}

fn entropy_run(link: &Link) -> anyhow::Result<pawl_core::protocol::selftest::EntropyReport> {
    match selftest(link, SelfTestRequest::Entropy)? {
        SelfTestResponse::Entropy(e) => Ok(e),
        other => anyhow::bail!("unexpected answer to the entropy test: {other:?}"),
    }
}

/// Entropy health tests on the board (counts only). A working source fails the monobit
/// interval about once in 10,000 draws (it is 3.9 standard deviations wide), so one failed
/// draw is drawn again: the check fails only when both fail (a warning says the first did).
fn entropy(link: &Link, report: &mut Report) -> anyhow::Result<()> {
    let mut e = entropy_run(link)?;
    let mut runs = 1;
    if !e.pass {
        report.warnings.push(format!(
            "entropy: the first 4 KiB failed the health tests (longest run {}, adaptive proportion {}, {} ones, source {}); drew again",
            e.longest_run,
            e.apt_max,
            e.monobit_ones,
            if e.source_ok { "ok" } else { "failed" }
        ));
        e = entropy_run(link)?;
        runs = 2;
    }
    if !e.pass {
        report.fail("entropy: the health tests failed".into());
    }
    report.put(
        "entropy",
        json!({
            "status": if e.pass { "ok" } else { "failed: health tests" },
            "bytes": e.bytes,
            "source_ok": e.source_ok,
            "longest_run": e.longest_run,
            "run_cutoff": e.run_cutoff,
            "apt_max": e.apt_max,
            "apt_cutoff": e.apt_cutoff,
            "monobit_ones": e.monobit_ones,
            "monobit_bits": 20_000,
            "pass": e.pass,
            "runs": runs,
        }),
    );
    report.line(
        "entropy",
        format!(
            "{}: {} B drawn; longest run {} (fails at {}), adaptive proportion {} (fails at {}), {} ones in 20,000 bits (passes 9,726..10,274)",
            if e.pass { "ok" } else { "FAILED" },
            e.bytes,
            e.longest_run,
            e.run_cutoff,
            e.apt_max,
            e.apt_cutoff,
            e.monobit_ones
        ),
    );
    Ok(())
}
