//! The link part of `pawl device selftest`, measured by this process: round trips (Status
//! requests) and host-to-board throughput (Echo frames of the largest payload, their length
//! and CRC checked against what the board reports).

use std::time::{Duration, Instant};

use pawl_core::protocol::selftest::{SelfTestRequest, SelfTestResponse};
use pawl_core::protocol::{MAX_SIGN_PAYLOAD, Request};
use serde_json::json;

use super::board::{Report, ms, selftest};
use crate::commands::ask;
use crate::link::Link;

/// How long the throughput test sends Echo frames (at least one frame).
const THROUGHPUT_TIME: Duration = Duration::from_millis(1000);
/// Most Echo frames sent.
const THROUGHPUT_FRAMES: u32 = 64;

/// The `q` quantile (0..=1) of sorted `v`, nearest rank.
fn quantile(v: &[u64], q: f64) -> u64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Round trips (Status) and throughput (Echo), measured here.
pub(super) fn link_speed(link: &Link, trips: u32, report: &mut Report) -> anyhow::Result<()> {
    let mut rtt = Vec::new();
    for _ in 0..trips {
        let t = Instant::now();
        ask(link, &Request::Status)?;
        rtt.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    rtt.sort_unstable();
    let payload: Vec<u8> = (0..MAX_SIGN_PAYLOAD)
        .map(|i| u8::try_from(i % 251).unwrap_or(0).wrapping_add(1))
        .collect();
    let expect_crc = crc32(&payload);
    let started = Instant::now();
    let mut frames = 0u32;
    let mut crc_ok = true;
    while frames == 0 || (frames < THROUGHPUT_FRAMES && started.elapsed() < THROUGHPUT_TIME) {
        match selftest(link, SelfTestRequest::Echo { payload: &payload })? {
            SelfTestResponse::Echoed { len, crc } => {
                crc_ok &= len as usize == payload.len() && crc == expect_crc;
            }
            other => anyhow::bail!("unexpected answer to echo: {other:?}"),
        }
        frames += 1;
    }
    let took = started.elapsed();
    let bytes = u64::from(frames) * payload.len() as u64;
    let mb_s = bytes as f64 / took.as_secs_f64().max(1e-9) / 1e6;
    let (p50, p90, p99) = (
        quantile(&rtt, 0.5),
        quantile(&rtt, 0.9),
        quantile(&rtt, 0.99),
    );
    let min = rtt.first().copied().unwrap_or(0);
    let max = rtt.last().copied().unwrap_or(0);
    if !crc_ok {
        report.fail("link: an echoed payload came back with the wrong length or CRC".into());
    }
    report.put(
        "link",
        json!({
            "status": if crc_ok { "ok" } else { "failed: echo CRC mismatch" },
            "round_trips": trips,
            "rtt_us": { "min": min, "p50": p50, "p90": p90, "p99": p99, "max": max },
            "echo_frames": frames,
            "echo_payload_bytes": payload.len(),
            "echo_seconds": took.as_secs_f64(),
            "throughput_mb_s": mb_s,
            "echo_crc_ok": crc_ok,
        }),
    );
    report.line(
        "link",
        format!(
            "round trip min {} p50 {} p99 {} max {} ({trips} Status requests)",
            ms(min),
            ms(p50),
            ms(p99),
            ms(max)
        ),
    );
    report.line(
        "throughput",
        format!(
            "{mb_s:.3} MB/s host to board ({frames} echo frames of {} B); {}",
            payload.len(),
            if crc_ok { "CRC ok" } else { "CRC WRONG" }
        ),
    );
    Ok(())
}

/// CRC-32/ISO-HDLC (the board's echo checksum), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_check_value() {
        // The CRC catalogue's check value for CRC-32/ISO-HDLC over "123456789".
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(super::quantile(&v, 0.5), 50);
        assert_eq!(super::quantile(&v, 0.99), 99);
        assert_eq!(super::quantile(&[7], 0.99), 7);
    }
}
