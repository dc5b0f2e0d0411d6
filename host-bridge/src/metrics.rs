//! Prometheus metrics, in the text exposition format, without a registry crate: a few
//! counters and fixed-bucket histograms.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use pawl_core::keys::PublicKeyHash;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1,
    0.5, 1.0,
];

/// Refusal reasons exported at 0 before the first one (the alert rules in
/// `packaging/prometheus-alerts.yml` watch them).
const ALERTED_REASONS: [&str; 5] = [
    "refused_watermark",
    "refused_policy",
    "write_budget",
    "board_unavailable",
    "not_confirmed",
];

/// A latency histogram.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Everything the bridge counts.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, u16), u64>>,
    http_latency: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    signs: Mutex<BTreeMap<&'static str, u64>>,
    /// Device hop latency (frame written → answer read).
    pub device_hop: Histogram,
    /// Sign requests end to end inside the bridge (body read → answer ready).
    pub sign_latency: Histogram,
    /// YubiHSM2 connector round trip (one relayed message, sent → answer read).
    pub hsm_hop: Histogram,
    /// Host-held key services: calls by (backend, outcome), latency by backend, signatures
    /// the board refused by backend ([`crate::keyring`]).
    keyring: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    keyring_latency: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
    keyring_bad: Mutex<BTreeMap<&'static str, u64>>,
    /// When each key last had a signature released, by its base58 hash.
    last_signed: Mutex<BTreeMap<String, Instant>>,
    /// When counting started (the first signature or scrape).
    started: OnceLock<Instant>,
    /// Each board's status and marks by board name, refreshed by [`crate::health::watch`].
    pub boards: RwLock<BTreeMap<String, crate::health::BoardSnapshot>>,
    /// Board log events lost before they were read, by board ([`crate::boards::logs`]).
    pub board_events_dropped: crate::boards::logs::Dropped,
    /// Woken when a sign was not released, so the board logs are read at once
    /// ([`crate::boards::logs`]).
    pub board_log_wake: tokio::sync::Notify,
    /// The CometBFT clients' counters ([`crate::cometbft`]).
    pub cometbft: std::sync::Arc<crate::cometbft::metrics::CometMetrics>,
}

impl Metrics {
    /// Count an HTTP request on `route` (the route pattern, never the pkh) with its status.
    pub fn http_request(&self, route: &str, status: u16, latency: Duration) {
        if let Ok(mut m) = self.http.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
        let histogram = self
            .http_latency
            .lock()
            .ok()
            .map(|mut m| std::sync::Arc::clone(m.entry(route.to_string()).or_default()));
        if let Some(h) = histogram {
            h.observe(latency);
        }
    }

    /// Count a sign request's outcome (`signed`, `refused_policy`, `refused_watermark`, …).
    pub fn sign_outcome(&self, outcome: &'static str) {
        if let Ok(mut m) = self.signs.lock() {
            *m.entry(outcome).or_default() += 1;
        }
        if outcome != "signed" {
            self.board_log_wake.notify_waiters();
        }
    }

    /// One call to a host-held key service (`backend`, e.g. `pkcs11`): its outcome (`signed`
    /// or the backend's error label) and how long it took, retries included.
    pub fn keyring_call(&self, backend: &'static str, outcome: &'static str, latency: Duration) {
        if let Ok(mut m) = self.keyring.lock() {
            *m.entry((backend, outcome)).or_default() += 1;
        }
        let histogram = self
            .keyring_latency
            .lock()
            .ok()
            .map(|mut m| std::sync::Arc::clone(m.entry(backend).or_default()));
        if let Some(h) = histogram {
            h.observe(latency);
        }
    }

    /// The board refused a signature `backend` returned (it does not verify).
    pub fn keyring_bad_signature(&self, backend: &'static str) {
        if let Ok(mut m) = self.keyring_bad.lock() {
            *m.entry(backend).or_default() += 1;
        }
    }

    /// A signature by `key` was released. Only a valid key hash is kept (it becomes a label).
    pub fn signed_by(&self, key: &str) {
        let Ok(pkh) = PublicKeyHash::from_b58(key) else {
            return;
        };
        self.started.get_or_init(Instant::now);
        if let Ok(mut m) = self.last_signed.lock() {
            m.insert(pkh.to_b58().to_string(), Instant::now());
        }
    }

    /// When counting started (the first call of this, [`Metrics::signed_by`] or a scrape).
    pub fn started(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    /// Time since each key last signed: every key in `active` (since counting started if it
    /// has not signed yet) and every key that signed.
    pub fn signature_ages(&self, active: &[String]) -> BTreeMap<String, Duration> {
        let started = self.started();
        let mut ages: BTreeMap<String, Duration> = active
            .iter()
            .map(|k| (k.clone(), started.elapsed()))
            .collect();
        if let Ok(m) = self.last_signed.lock() {
            for (k, at) in m.iter() {
                ages.insert(k.clone(), at.elapsed());
            }
        }
        ages
    }

    /// The exposition text; `links` has each board's label set (`board="NAME"`, or empty with
    /// one board), whether its link is up and how many connections it made.
    pub fn render(&self, links: &[(String, bool, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP pawl_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE pawl_http_requests_total counter\n");
        if let Ok(m) = self.http.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pawl_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP pawl_sign_requests_total Sign requests by outcome.\n");
        out.push_str("# TYPE pawl_sign_requests_total counter\n");
        if let Ok(m) = self.signs.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(out, "pawl_sign_requests_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP pawl_sign_refusals_total Sign requests refused, by reason (the outcome label of every answer but `signed`).\n",
        );
        out.push_str("# TYPE pawl_sign_refusals_total counter\n");
        if let Ok(m) = self.signs.lock() {
            // The reasons alerts watch exist from the start, at 0, so `increase()` sees the
            // first one.
            let mut reasons: BTreeMap<&str, u64> =
                ALERTED_REASONS.iter().map(|r| (*r, 0)).collect();
            for (reason, n) in m.iter().filter(|(o, _)| **o != "signed") {
                reasons.insert(reason, *n);
            }
            for (reason, n) in reasons {
                let _ = writeln!(out, "pawl_sign_refusals_total{{reason=\"{reason}\"}} {n}");
            }
        }
        out.push_str("# HELP pawl_http_request_duration_seconds HTTP latency by route.\n");
        out.push_str("# TYPE pawl_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.http_latency.lock() {
            for (route, h) in m.iter() {
                h.render(
                    &mut out,
                    "pawl_http_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
        }
        out.push_str("# HELP pawl_sign_duration_seconds Sign requests inside the bridge.\n");
        out.push_str("# TYPE pawl_sign_duration_seconds histogram\n");
        self.sign_latency
            .render(&mut out, "pawl_sign_duration_seconds", "");
        out.push_str(
            "# HELP pawl_device_hop_duration_seconds Board round trip (frame out, answer in).\n",
        );
        out.push_str("# TYPE pawl_device_hop_duration_seconds histogram\n");
        self.device_hop
            .render(&mut out, "pawl_device_hop_duration_seconds", "");
        out.push_str(
            "# HELP pawl_hsm_hop_duration_seconds YubiHSM2 connector round trip (one relayed message).\n",
        );
        out.push_str("# TYPE pawl_hsm_hop_duration_seconds histogram\n");
        self.hsm_hop
            .render(&mut out, "pawl_hsm_hop_duration_seconds", "");
        self.render_keyring(&mut out);
        self.cometbft.render(&mut out);
        out.push_str("# HELP pawl_board_connected Whether the board link is up.\n");
        out.push_str("# TYPE pawl_board_connected gauge\n");
        for (labels, connected, _) in links {
            let _ = writeln!(
                out,
                "pawl_board_connected{} {}",
                braces(labels),
                u8::from(*connected)
            );
        }
        out.push_str(
            "# HELP pawl_board_connects_total Board connections made (reconnects included).\n",
        );
        out.push_str("# TYPE pawl_board_connects_total counter\n");
        for (labels, _, connects) in links {
            let _ = writeln!(
                out,
                "pawl_board_connects_total{} {connects}",
                braces(labels)
            );
        }
        out
    }
}

impl Metrics {
    fn render_keyring(&self, out: &mut String) {
        out.push_str(
            "# HELP pawl_keyring_requests_total Calls to host-held key services, by backend and outcome.\n",
        );
        out.push_str("# TYPE pawl_keyring_requests_total counter\n");
        if let Ok(m) = self.keyring.lock() {
            for ((backend, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pawl_keyring_requests_total{{backend=\"{backend}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP pawl_keyring_bad_signatures_total Signatures from a key service that the board refused (they do not verify), by backend.\n",
        );
        out.push_str("# TYPE pawl_keyring_bad_signatures_total counter\n");
        if let Ok(m) = self.keyring_bad.lock() {
            for (backend, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pawl_keyring_bad_signatures_total{{backend=\"{backend}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP pawl_keyring_duration_seconds One signature from a host-held key service, retries included, by backend.\n",
        );
        out.push_str("# TYPE pawl_keyring_duration_seconds histogram\n");
        if let Ok(m) = self.keyring_latency.lock() {
            for (backend, h) in m.iter() {
                h.render(
                    out,
                    "pawl_keyring_duration_seconds",
                    &format!("backend=\"{backend}\""),
                );
            }
        }
    }
}

/// `{labels}`, or nothing for an empty label set.
pub fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}
