//! `pawl device selftest --yubihsm`: the board checks its YubiHSM2, through its own SCP03
//! session, with this process only relaying sealed messages (as `pawl serve` does;
//! `pawl_core::protocol::hsm_check`):
//!
//! 1. **session** — the board opens a session with its authentication key and runs Echo;
//! 2. **keys** — for each YubiHSM2 key on the board, the board reads the key's public key from
//!    the HSM and compares it with its own record (`mismatch`: the HSM holds another key under
//!    that object id — the board would refuse every signature it returns);
//! 3. **throw-away** (provisioning mode only) — per curve (tz1, tz2, tz3), the HSM generates a
//!    sign-only key, signs a fixed test digest, the board verifies the signature and deletes
//!    the key again (whether or not the signature verified); the key is never a board key.
//!    In operational mode this part is skipped.
//!
//! Each check is timed here (wall clock, relay included). The text report has one line per
//! check; `--json` prints one object. Exits non-zero when any check failed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use pawl_core::keys::Curve;
use pawl_core::protocol::hsm_check::{HsmCheckRequest, HsmCheckResponse, THROW_AWAY_LABEL};
use pawl_core::protocol::{Backend, Mode, PROTOCOL_VERSION, Request, Response};
use serde_json::{Value, json};

use crate::commands::{Context, ask, board_keys, print_json};
use crate::hsm_exchange::carry;
use crate::link::Link;
use crate::yubihsm::HsmRelay;

/// The curves a throw-away key is made of.
const CURVES: [Curve; 3] = [Curve::Ed25519, Curve::Secp256k1, Curve::P256];

/// Options of `pawl device selftest --yubihsm`.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Domains mask of the throw-away keys (must share one with the authentication key).
    pub domains: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options { domains: 0x0001 }
    }
}

/// One check's outcome.
struct Outcome {
    name: String,
    ok: bool,
    detail: Value,
    text: String,
    took: Duration,
}

/// The board, the HSM relay and a runtime to carry exchanges on.
struct Bench {
    link: Link,
    relay: HsmRelay,
    runtime: tokio::runtime::Runtime,
}

impl Bench {
    /// Ask `request` and carry its HSM exchange to the board's final answer.
    fn check(&self, request: HsmCheckRequest) -> (anyhow::Result<HsmCheckResponse>, Duration) {
        let started = Instant::now();
        let answer = self.run(request);
        (answer, started.elapsed())
    }

    fn run(&self, request: HsmCheckRequest) -> anyhow::Result<HsmCheckResponse> {
        let first = ask(&self.link, &Request::HsmCheck(request))?;
        let last = match first {
            Response::RelayToHsm { sealed } => self
                .runtime
                .block_on(carry(&self.link, &self.relay, sealed.to_vec(), |_| {}))
                .with_context(|| {
                    format!(
                        "talking to the YubiHSM2 through {}",
                        self.link.view().describe
                    )
                })?,
            other => other,
        };
        match last {
            Response::HsmCheck(r) => Ok(r),
            Response::Refused(r) => Err(anyhow::anyhow!("the board refused: {r}")),
            other => anyhow::bail!("unexpected answer from the board: {other:?}"),
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn curve_name(curve: Curve) -> &'static str {
    match curve {
        Curve::Ed25519 => "tz1",
        Curve::Secp256k1 => "tz2",
        Curve::P256 => "tz3",
        Curve::Bls12_381 => "tz4",
    }
}

/// Run `pawl device selftest --yubihsm` on the board `ctx` names.
pub fn run(ctx: &Context, options: Options) -> anyhow::Result<()> {
    let settings = ctx
        .config
        .yubihsm
        .clone()
        .context("--yubihsm needs a [yubihsm] section in pawl.toml (how to reach the HSM)")?;
    let bench = Bench {
        relay: HsmRelay::new(settings).context("[yubihsm] in pawl.toml")?,
        link: ctx.open_link()?,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let mode = match ask(
        &bench.link,
        &Request::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )? {
        Response::Info { mode, .. } => mode,
        other => anyhow::bail!("unexpected answer to hello: {other:?}"),
    };
    let mut outcomes = vec![session(&bench)];
    for key in board_keys(&bench.link)?
        .into_iter()
        .filter(|k| k.backend == Backend::YubiHsm)
    {
        outcomes.push(key_check(&bench, key.pkh));
    }
    let throw_away = mode == Mode::Provisioning;
    if throw_away {
        for curve in CURVES {
            outcomes.push(throw_away_check(&bench, curve, options.domains));
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    if ctx.json {
        print_json(&json!({
            "board": ctx.board()?.name,
            "mode": super::super::device::mode_name(mode),
            "ok": failed == 0,
            "throw_away": if throw_away { "run" } else { "skipped: operational mode" },
            "checks": outcomes.iter().map(|o| {
                let mut v = o.detail.clone();
                v["check"] = json!(o.name);
                v["ok"] = json!(o.ok);
                v["ms"] = json!(millis(o.took));
                v
            }).collect::<Vec<_>>(),
        }));
    } else {
        for o in &outcomes {
            let verdict = if o.ok { "ok    " } else { "FAILED" };
            println!(
                "{verdict} {:<24} {:>9.1} ms  {}",
                o.name,
                millis(o.took),
                o.text
            );
        }
        if !throw_away {
            println!("skipped throw-away keys: the board is in operational mode");
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} YubiHSM2 check(s) failed");
    }
    Ok(())
}

fn session(bench: &Bench) -> Outcome {
    let (answer, took) = bench.check(HsmCheckRequest::Session);
    let (ok, detail, text) = match answer {
        Ok(HsmCheckResponse::Session { auth_key_id }) => (
            true,
            json!({ "auth_key_id": auth_key_id }),
            format!("session opened with authentication key {auth_key_id}; echo came back"),
        ),
        Ok(other) => unexpected(&other),
        Err(e) => failed(&e),
    };
    Outcome {
        name: "session".into(),
        ok,
        detail,
        text,
        took,
    }
}

fn key_check(bench: &Bench, pkh: pawl_core::keys::PublicKeyHash) -> Outcome {
    let (answer, took) = bench.check(HsmCheckRequest::Key { pkh });
    let pkh_text = pkh.to_b58().to_string();
    let (ok, mut detail, text) = match answer {
        Ok(HsmCheckResponse::Key {
            key_id, matches, ..
        }) => (
            matches,
            json!({ "key_id": key_id, "matches": matches }),
            if matches {
                format!("object {key_id}: the HSM's public key is the board's record")
            } else {
                format!(
                    "object {key_id}: MISMATCH — the HSM holds another public key than the board's record; the board refuses its signatures"
                )
            },
        ),
        Ok(other) => unexpected(&other),
        Err(e) => failed(&e),
    };
    detail["pkh"] = json!(pkh_text);
    Outcome {
        name: format!("key {pkh_text}"),
        ok,
        detail,
        text,
        took,
    }
}

fn throw_away_check(bench: &Bench, curve: Curve, domains: u16) -> Outcome {
    let (answer, took) = bench.check(HsmCheckRequest::ThrowAway { curve, domains });
    let (ok, mut detail, text) = match answer {
        Ok(HsmCheckResponse::ThrowAway {
            key_id,
            verified,
            deleted,
            ..
        }) => (
            verified && deleted,
            json!({ "key_id": key_id, "verified": verified, "deleted": deleted }),
            format!(
                "object {key_id}: signature {}; {}",
                if verified {
                    "verified on the board"
                } else {
                    "NOT verified"
                },
                if deleted {
                    "deleted".to_string()
                } else {
                    format!(
                        "NOT deleted — remove object {key_id} (label \"{THROW_AWAY_LABEL}\") from the HSM"
                    )
                }
            ),
        ),
        Ok(other) => unexpected(&other),
        Err(e) => {
            // The board deletes its key whenever the HSM still answers it; a broken channel
            // can leave one behind.
            let (ok, detail, text) = failed(&e);
            (
                ok,
                detail,
                format!(
                    "{text} (if the HSM made the key, it may still be there: label \"{THROW_AWAY_LABEL}\")"
                ),
            )
        }
    };
    detail["curve"] = json!(curve_name(curve));
    Outcome {
        name: format!("throw-away {}", curve_name(curve)),
        ok,
        detail,
        text,
        took,
    }
}

fn unexpected(r: &HsmCheckResponse) -> (bool, Value, String) {
    let text = format!("unexpected answer: {r:?}");
    (false, json!({ "error": text }), text)
}

fn failed(e: &anyhow::Error) -> (bool, Value, String) {
    let text = format!("{e:#}");
    (false, json!({ "error": text }), text)
}
