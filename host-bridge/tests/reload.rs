//! `pawl serve` on SIGHUP re-reads pawl.toml: `[server] authorized_keys`, `allowed_ips` and
//! `log_filter` change without dropping the board (one connection from start to end); a file
//! that does not load keeps the running configuration and the log names the field.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

const CHAIN: [u8; 4] = [0xb3, 0xd7, 0x9f, 0x99];

struct Serve {
    child: Child,
    api: SocketAddr,
    metrics: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(home: &Path) -> Serve {
        let mut child = serve_on_loopback(home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = |prefix: &str, suffix: &str| -> SocketAddr {
            let line = lines.next().expect("a line").expect("utf8");
            line.strip_prefix(prefix)
                .and_then(|s| s.strip_suffix(suffix))
                .unwrap_or_else(|| panic!("{line}"))
                .parse()
                .expect("addr")
        };
        let api = next("listening on http://", "");
        let metrics = next("metrics on http://", "/metrics");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Serve {
            child,
            api,
            metrics,
            log,
        }
    }

    fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    /// Log lines up to and including the first that contains `text`.
    fn log_until(&self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no log line with `{text}`; saw:\n{}", seen.join("\n")),
            }
        }
    }

    fn sign(&self, pkh: &str, level: u32) -> (u16, String) {
        http(
            self.api,
            "POST",
            &format!("/keys/{pkh}"),
            Some(&format!("\"{}\"", to_hex(&attestation(CHAIN, level, 0, 1)))),
        )
    }
}

#[test]
fn sighup_reloads_authorized_keys_allowed_ips_and_the_log_filter_and_keeps_the_board() {
    let home = tempfile::tempdir().expect("tempdir");
    let toml = home.path().join("pawl.toml");
    std::fs::write(&toml, "[server]\nallowed_ips = []\n").expect("write");
    let serve = Serve::start(home.path());
    let mut import = pawl(home.path());
    import.args(["keys", "import", "--chain", "NetXo5iVw1vBoxM"]);
    let (ok, _, err) = run_with_stdin(import, &format!("{SIGNATORY_SK}\n"));
    assert!(ok, "{err}");
    let pkh = SIGNATORY_PKH;
    assert_eq!(serve.sign(pkh, 10).0, 200);

    // Authentication required from now on.
    std::fs::write(
        &toml,
        format!("[server]\nauthorized_keys = [\"{PYTEZOS_PK}\"]\n"),
    )
    .expect("write");
    serve.hup();
    let lines = serve.log_until("reloaded pawl.toml");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("authorized_keys=1")),
        "{lines:?}"
    );
    let (status, body) = serve.sign(pkh, 11);
    assert_eq!(status, 401, "{body}");
    let (_, body) = http(serve.api, "GET", "/authorized_keys", None);
    assert!(body.contains("tz1"), "{body}");

    // A file that does not load: nothing changes, the log names the field.
    std::fs::write(
        &toml,
        "[server]\nauthorized_keys = []\nallowed_ips = [\"not-an-ip\"]\n",
    )
    .expect("write");
    serve.hup();
    let lines = serve.log_until("pawl.toml not reloaded");
    let last = lines.last().expect("a line");
    assert!(last.contains("server.allowed_ips[0]"), "{last}");
    assert_eq!(serve.sign(pkh, 11).0, 401, "the old keys still apply");

    // Only 10.1.2.3 may connect: this client is refused, by HTTP's allow-list.
    std::fs::write(&toml, "[server]\nallowed_ips = [\"10.1.2.3\"]\n").expect("write");
    serve.hup();
    serve.log_until("reloaded pawl.toml");
    let (status, body) = serve.sign(pkh, 11);
    assert_eq!(status, 403, "{body}");
    assert!(octez_error(&body).contains("not allowed"), "{body}");

    // Open again, logging warnings only: a signature leaves no line, a refusal does.
    std::fs::write(&toml, "[server]\nlog_filter = \"warn\"\n").expect("write");
    serve.hup();
    serve.log_until("reloaded pawl.toml");
    assert_eq!(serve.sign(pkh, 12).0, 200);
    assert_eq!(serve.sign(pkh, 11).0, 409);
    let lines = serve.log_until("refused_watermark");
    assert!(
        !lines.iter().any(|l| l.contains("level=12")),
        "an info line after log_filter = \"warn\": {lines:?}"
    );
    // And back to info.
    std::fs::write(&toml, "[server]\n").expect("write");
    serve.hup();
    serve.log_until("reloaded pawl.toml");
    assert_eq!(serve.sign(pkh, 13).0, 200);
    serve.log_until("level=13");

    // The board stayed connected throughout: one connection.
    let (_, text) = http(serve.metrics, "GET", "/metrics", None);
    assert!(
        text.lines().any(|l| l == "pawl_board_connects_total 1"),
        "{text}"
    );
}
