//! The metrics listener: `/healthz`, `/readyz` and every board metric (marks per chain, key
//! and kind, store health, flash wear, refusals by reason, time since each key signed), over a
//! virtual board in process and through the `pawl serve` binary. Each metric is checked by
//! name and value, so removing one fails here.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pawl_bridge::auth::Authorizer;
use pawl_bridge::boards::Boards;
use pawl_bridge::health::{self, BoardSnapshot, readiness};
use pawl_bridge::http::{AppState, app, metrics_app};
use pawl_bridge::link::{BoardView, Identity, Link, LinkSettings};
use pawl_bridge::metrics::Metrics;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Mode, PROTOCOL_VERSION, Request, Response, StoreHealth};
use pawl_core::store::StoreError;
use support::*;

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];
const CHAIN_B58: &str = "NetXo5iVw1vBoxM";

/// The signer API and the metrics listener over one link, sharing their counters, with the
/// board watched every 100 ms.
struct Bridge {
    api: SocketAddr,
    metrics: SocketAddr,
    counters: Arc<Metrics>,
    _runtime: tokio::runtime::Runtime,
}

fn bridge(link: Link, watch: bool) -> Bridge {
    let counters = Arc::new(Metrics::default());
    let state = Arc::new(AppState {
        boards: Boards::single("board", link.clone()),
        auth: Authorizer::new(Vec::new()),
        settings: settings(),
        metrics: Arc::clone(&counters),
        keyrings: Default::default(),
        yubihsm: None,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let bind = || {
        runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind")
    };
    let (api_listener, metrics_listener) = (bind(), bind());
    let api = api_listener.local_addr().expect("addr");
    let metrics = metrics_listener.local_addr().expect("addr");
    runtime.spawn(async move {
        axum::serve(
            api_listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let router = metrics_app(Boards::single("board", link.clone()), Arc::clone(&counters));
    runtime.spawn(async move { axum::serve(metrics_listener, router).await });
    if watch {
        runtime.spawn(health::watch(
            Boards::single("board", link),
            Arc::clone(&counters),
            Duration::from_millis(100),
        ));
    }
    Bridge {
        api,
        metrics,
        counters,
        _runtime: runtime,
    }
}

impl Bridge {
    fn sign(&self, pkh: &str, payload: &[u8]) -> (u16, String) {
        http(
            self.api,
            "POST",
            &format!("/keys/{pkh}"),
            Some(&format!("\"{}\"", to_hex(payload))),
        )
    }

    fn scrape(&self) -> String {
        let (status, text) = http(self.metrics, "GET", "/metrics", None);
        assert_eq!(status, 200, "{text}");
        text
    }

    /// Scrape until every one of `lines` shows up (the watcher reads the board every 100 ms;
    /// one read asks Status, then the marks, so a sign in between shows in one of them first).
    fn scrape_until(&self, lines: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.scrape();
            if lines.iter().all(|line| text.lines().any(|l| l == *line))
                || Instant::now() > deadline
            {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The value of the one series `name{labels}` (exact label text, or none).
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
        .collect();
    assert_eq!(found.len(), 1, "`{series}` once in:\n{text}");
    found[0]
}

fn has_help_and_type(text: &str, name: &str, kind: &str) {
    assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
    assert!(
        text.contains(&format!("# TYPE {name} {kind}\n")),
        "{name}:\n{text}"
    );
}

#[test]
fn healthz_answers_without_a_board_and_readyz_names_what_is_missing() {
    let bridge = bridge(
        Link::start(Box::new(Nowhere), LinkSettings::default()),
        true,
    );
    let (status, body) = http(bridge.metrics, "GET", "/healthz", None);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = http(bridge.metrics, "GET", "/readyz", None);
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("board not connected"), "{body}");
    let text = bridge.scrape();
    assert_eq!(value(&text, "pawl_ready"), 0.0);
    assert_eq!(value(&text, "pawl_board_connected"), 0.0);
    // Nothing read from a board that is not there: no board figures at all.
    assert!(!text.contains("pawl_board_store_healthy "), "{text}");
}

#[test]
fn readyz_is_200_with_a_healthy_board_and_503_when_its_store_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    // Without the watcher: the snapshot is set by hand below.
    let bridge = bridge(link.clone(), false);
    let (status, body) = http(bridge.metrics, "GET", "/readyz", None);
    assert_eq!(status, 503, "{body}");
    let status = match link
        .ask_blocking(&Request::Status)
        .expect("status")
        .response
    {
        Response::Status(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(status.store, StoreHealth::Ok);
    let mut snapshot = BoardSnapshot {
        status: Some(status),
        marks: Vec::new(),
        read_at: Some(Instant::now()),
        error: None,
    };
    bridge
        .counters
        .boards
        .write()
        .expect("lock")
        .insert("board".into(), snapshot.clone());
    let (code, body) = http(bridge.metrics, "GET", "/readyz", None);
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    assert_eq!(value(&bridge.scrape(), "pawl_ready"), 1.0);
    assert_eq!(value(&bridge.scrape(), "pawl_board_store_healthy"), 1.0);

    if let Some(s) = snapshot.status.as_mut() {
        s.store = StoreHealth::Refusing(StoreError::RolledBack);
    }
    bridge
        .counters
        .boards
        .write()
        .expect("lock")
        .insert("board".into(), snapshot.clone());
    let (code, body) = http(bridge.metrics, "GET", "/readyz", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("board store refusing: "), "{body}");
    let text = bridge.scrape();
    assert_eq!(value(&text, "pawl_board_store_healthy"), 0.0);
    assert_eq!(value(&text, "pawl_ready"), 0.0);

    // A status read long ago does not count.
    snapshot.status.as_mut().expect("status").store = StoreHealth::Ok;
    snapshot.read_at = Instant::now().checked_sub(Duration::from_secs(60));
    bridge
        .counters
        .boards
        .write()
        .expect("lock")
        .insert("board".into(), snapshot);
    let (code, body) = http(bridge.metrics, "GET", "/readyz", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("board status is stale"), "{body}");
}

#[test]
fn readiness_refuses_another_protocol_version() {
    let view = BoardView {
        connected: true,
        identity: Some(Identity {
            protocol: PROTOCOL_VERSION + 1,
            firmware: "x".into(),
            board: "y".into(),
            mode: Mode::Operational,
        }),
        ..BoardView::default()
    };
    let snapshot = BoardSnapshot::default();
    let reason = readiness(&view, &snapshot).expect_err("not ready");
    assert!(reason.contains("protocol mismatch"), "{reason}");
}

#[test]
fn every_board_metric_is_exported_with_key_and_kind_labels_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = virtual_link(dir.path());
    let pkh = import(&link, SIGNATORY_SK, Policy::default());
    let bridge = bridge(link, true);
    let first = attestation(CHAIN, 34, 4, 1);
    let (status, body) = bridge.sign(&pkh, &first);
    assert_eq!(status, 200, "{body}");
    let signature = field(&body, "signature");
    // A double signature and a lower level: two watermark refusals.
    assert_eq!(bridge.sign(&pkh, &attestation(CHAIN, 34, 4, 2)).0, 409);
    assert_eq!(bridge.sign(&pkh, &attestation(CHAIN, 33, 0, 1)).0, 409);
    // A key the board does not hold.
    assert_eq!(bridge.sign(SIGNATORY_PKH_OTHER, &first).0, 404);

    let labels = format!("chain=\"{CHAIN_B58}\",pkh=\"{pkh}\",kind=\"attestation\"");
    let text = bridge.scrape_until(&[
        &format!("pawl_mark_level{{{labels}}} 34"),
        "pawl_board_marks 1",
        "pawl_board_signatures_total 1",
        "pawl_board_refusals_total 3",
    ]);
    for (name, kind) in [
        ("pawl_mark_level", "gauge"),
        ("pawl_mark_round", "gauge"),
        ("pawl_ready", "gauge"),
        ("pawl_board_store_healthy", "gauge"),
        ("pawl_board_operational", "gauge"),
        ("pawl_board_keys", "gauge"),
        ("pawl_board_marks", "gauge"),
        ("pawl_board_mark_capacity", "gauge"),
        ("pawl_board_status_age_seconds", "gauge"),
        ("pawl_board_signatures_total", "counter"),
        ("pawl_board_refusals_total", "counter"),
        ("pawl_board_mark_writes_total", "counter"),
        ("pawl_board_flash_records_total", "counter"),
        ("pawl_board_flash_bytes_written_total", "counter"),
        ("pawl_board_flash_pages_erased_total", "counter"),
        ("pawl_board_wear_life_years", "gauge"),
        ("pawl_board_flash_erase_budget_pages", "gauge"),
        ("pawl_sign_refusals_total", "counter"),
        ("pawl_key_seconds_since_signature", "gauge"),
        ("pawl_board_events_dropped_total", "counter"),
    ] {
        has_help_and_type(&text, name, kind);
    }
    assert_eq!(value(&text, &format!("pawl_mark_level{{{labels}}}")), 34.0);
    assert_eq!(value(&text, &format!("pawl_mark_round{{{labels}}}")), 4.0);
    assert_eq!(value(&text, "pawl_ready"), 1.0);
    assert_eq!(value(&text, "pawl_board_store_healthy"), 1.0);
    assert_eq!(value(&text, "pawl_board_operational"), 0.0);
    assert_eq!(value(&text, "pawl_board_keys"), 1.0);
    assert_eq!(value(&text, "pawl_board_marks"), 1.0);
    assert_eq!(value(&text, "pawl_board_mark_capacity"), 64.0);
    assert!(value(&text, "pawl_board_status_age_seconds") < 5.0);
    assert_eq!(value(&text, "pawl_board_signatures_total"), 1.0);
    // Two watermark refusals and the unknown key.
    assert_eq!(value(&text, "pawl_board_refusals_total"), 3.0);
    assert!(value(&text, "pawl_board_mark_writes_total") >= 1.0);
    // The key's sealed record and the ceiling of its mark reached flash.
    let records = value(&text, "pawl_board_flash_records_total");
    assert!(records >= 2.0, "{records}");
    assert!(value(&text, "pawl_board_flash_bytes_written_total") >= 32.0 * records);
    assert_eq!(value(&text, "pawl_board_flash_pages_erased_total"), 0.0);
    // One key on a 256 KiB region of 10k-cycle flash: docs/wear.md's model (4 keys: 29 years).
    let life = value(&text, "pawl_board_wear_life_years");
    assert!((100.0..130.0).contains(&life), "{life}");
    assert_eq!(
        value(&text, "pawl_board_flash_erase_budget_pages"),
        640_000.0
    );
    assert_eq!(
        value(
            &text,
            "pawl_sign_refusals_total{reason=\"refused_watermark\"}"
        ),
        2.0
    );
    assert_eq!(
        value(&text, "pawl_sign_refusals_total{reason=\"unknown_key\"}"),
        1.0
    );
    assert!(!text.contains("pawl_sign_refusals_total{reason=\"signed\"}"));
    assert_eq!(value(&text, "pawl_board_events_dropped_total"), 0.0);
    // The reasons the alert rules watch are there from the start.
    assert_eq!(
        value(&text, "pawl_sign_refusals_total{reason=\"write_budget\"}"),
        0.0
    );
    let age = value(
        &text,
        &format!("pawl_key_seconds_since_signature{{pkh=\"{pkh}\"}}"),
    );
    assert!((0.0..10.0).contains(&age), "{age}");
    // A key that was refused and is not on the board gets no series.
    assert!(!text.contains(SIGNATORY_PKH_OTHER), "{text}");

    // Labels carry chain, pkh, kind and reason only: no payload, no signature.
    assert!(!text.contains(&to_hex(&first)[10..40]), "{text}");
    assert!(!text.contains(&signature[..20]), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((_, labels)) = line.split_once('{') {
            for pair in labels
                .split("\",")
                .map(|p| p.split('=').next().unwrap_or(""))
            {
                assert!(
                    [
                        "chain", "pkh", "kind", "reason", "route", "status", "outcome", "le"
                    ]
                    .contains(&pair),
                    "label `{pair}` in {line}"
                );
            }
        }
    }

    // The age grows until the key signs again, then starts over.
    std::thread::sleep(Duration::from_millis(1100));
    let later = value(
        &bridge.scrape(),
        &format!("pawl_key_seconds_since_signature{{pkh=\"{pkh}\"}}"),
    );
    assert!(later > age + 1.0, "{later} after {age}");
    assert_eq!(bridge.sign(&pkh, &attestation(CHAIN, 35, 0, 1)).0, 200);
    let text = bridge.scrape_until(&[
        &format!("pawl_mark_level{{{labels}}} 35"),
        "pawl_board_signatures_total 2",
    ]);
    let fresh = value(
        &text,
        &format!("pawl_key_seconds_since_signature{{pkh=\"{pkh}\"}}"),
    );
    assert!(fresh < 1.0, "{fresh}");
    assert_eq!(value(&text, &format!("pawl_mark_round{{{labels}}}")), 0.0);
}

/// A tz1 the board does not hold.
const SIGNATORY_PKH_OTHER: &str = "tz1burnburnburnburnburnburnburjAYjjX";

#[test]
fn pawl_serve_answers_healthz_and_readyz_on_the_metrics_listener() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = serve_on_loopback(home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let _serve = KillOnDrop(child);
    let _api = lines.next().expect("a line").expect("utf8");
    let second = lines.next().expect("a line").expect("utf8");
    let metrics: SocketAddr = second
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("second line: {second}"))
        .parse()
        .expect("metrics addr");
    assert_eq!(http(metrics, "GET", "/healthz", None).0, 200);
    // The watcher reads the board at once; ready within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (0, String::new());
    while Instant::now() < deadline {
        last = http(metrics, "GET", "/readyz", None);
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!((last.0, last.1.as_str()), (200, "ready\n"));
    let (_, text) = http(metrics, "GET", "/metrics", None);
    assert_eq!(value(&text, "pawl_board_store_healthy"), 1.0);
    assert_eq!(value(&text, "pawl_board_keys"), 0.0);
}
