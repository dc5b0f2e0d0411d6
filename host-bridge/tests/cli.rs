//! The `pawl` binary as a user runs it: `serve` on the virtual board, then `keys import`
//! and the other commands through its control socket; config errors name the field.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use support::*;

#[test]
fn quick_start_serve_then_import_then_sign() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = serve_on_loopback(home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let stderr = child.stderr.take();
    let _serve = KillOnDrop(child);
    let first = lines.next().expect("a line").expect("utf8");
    let url = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first}"));
    let addr: std::net::SocketAddr = url.parse().expect("addr");
    assert_ne!(addr.port(), 0);
    let second = lines.next().expect("a line").expect("utf8");
    let metrics: std::net::SocketAddr = second
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("second line: {second}"))
        .parse()
        .expect("metrics addr");
    let mut err_lines = BufReader::new(stderr.expect("stderr")).lines();
    let warning = err_lines.next().expect("a log line").expect("utf8");
    assert!(warning.contains("NOT hardware-protected"), "{warning}");

    // Through the control socket of the running serve.
    // C3's chain: without --chain the key would be pinned to mainnet only.
    let mut import = pawl(home.path());
    import.args(["keys", "import", "--chain", "NetXo5iVw1vBoxM"]);
    let (ok, out, err) = run_with_stdin(import, &format!("{SIGNATORY_SK}\n"));
    assert!(ok, "{err}");
    assert_eq!(out.split_whitespace().next(), Some(SIGNATORY_PKH), "{out}");
    assert!(out.contains("on NetXo5iVw1vBoxM"), "{out}");
    assert!(!out.contains(SIGNATORY_SK) && !err.contains(SIGNATORY_SK));

    let (ok, out, err) = run_with_stdin(
        {
            let mut c = pawl(home.path());
            c.args([
                "keys",
                "generate",
                "--curve",
                "secp256k1",
                "--allow",
                "generic",
                "--allow-ops",
                "transaction",
                "--json",
            ]);
            c
        },
        "",
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let tz2 = v["pkh"].as_str().expect("pkh").to_string();
    assert!(tz2.starts_with("tz2"), "{out}");
    assert_eq!(v["policy"]["kinds"], serde_json::json!(["generic"]));
    assert_eq!(v["policy"]["ops"], serde_json::json!(["transaction"]));

    let (status, body) = http(addr, "GET", &format!("/keys/{SIGNATORY_PKH}"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(field(&body, "public_key"), SIGNATORY_PK);
    let (status, body) = http(
        addr,
        "POST",
        &format!("/keys/{SIGNATORY_PKH}"),
        Some(&format!("\"{C3}\"")),
    );
    assert_eq!(status, 200, "{body}");
    assert!(openssl_ed25519_verifies(
        SIGNATORY_PK,
        &hex_bytes(C3),
        &field(&body, "signature")
    ));
    // The generated tz2 key signs a transfer its policy allows.
    let (_, body) = http(addr, "GET", &format!("/keys/{tz2}"), None);
    let sppk = field(&body, "public_key");
    let (status, body) = http(
        addr,
        "POST",
        &format!("/keys/{tz2}"),
        Some(&format!("\"{TRANSFER}\"")),
    );
    assert_eq!(status, 200, "{body}");
    assert!(secp256k1_verifies(
        &sppk,
        &hex_bytes(TRANSFER),
        &field(&body, "signature")
    ));

    let out = pawl(home.path())
        .args(["keys", "list", "--json"])
        .output()
        .expect("list");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(2));
    let out = pawl(home.path())
        .args(["watermark", "show", "--json"])
        .output()
        .expect("show");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["watermarks"][0]["level"], 34);
    assert_eq!(v["watermarks"][0]["kind"], "attestation");
    let out = pawl(home.path())
        .args(["device", "info", "--json"])
        .output()
        .expect("info");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["mode"], "provisioning");
    assert_eq!(v["keys"], 2);

    let (status, text) = http(metrics, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        text.contains("pawl_sign_requests_total{outcome=\"signed\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("pawl_device_hop_duration_seconds_count 2"),
        "{text}"
    );

    // One log line per sign request, without payload bytes.
    drop(_serve);
    let log: Vec<String> = err_lines.map_while(Result::ok).collect();
    let signs: Vec<&String> = log.iter().filter(|l| l.contains(" sign ")).collect();
    assert_eq!(signs.len(), 2, "{log:#?}");
    assert!(
        signs[0].contains("level=34") && signs[0].contains("attestation"),
        "{}",
        signs[0]
    );
    assert!(log.iter().all(|l| !l.contains(&C3[10..40])));
}

#[test]
fn a_second_serve_on_the_same_home_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = pawl(home.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let _serve = KillOnDrop(child);
    lines.next().expect("line").expect("utf8");
    let out = pawl(home.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("second serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
}

#[test]
fn config_errors_name_the_field() {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("pawl.toml");
    for (text, expected) in [
        ("[server]\nlisen = \"127.0.0.1:1\"\n", "lisen"),
        (
            "[server]\nauthorized_keys = [\"edpkNOPE\"]\n",
            "server.authorized_keys[0]",
        ),
        ("[device]\npipeline = 0\n", "device.pipeline"),
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
    ] {
        std::fs::write(&cfg, text).expect("write config");
        let out = pawl(home.path())
            .args(["keys", "list"])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn bad_policy_flags_are_refused_before_touching_the_board() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = pawl(home.path())
        .args([
            "keys", "generate", "--curve", "ed25519", "--allow", "blocks",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown request kind `blocks`"));
}

#[test]
fn yubihsm_setup_and_import_on_the_virtual_board() {
    let home = tempfile::tempdir().expect("tempdir");
    // Flags of another backend are refused, not ignored.
    for (args, expected) in [
        (
            vec!["keys", "import", "--key-id", "16"],
            "--key-id goes with --backend yubihsm or --backend aws",
        ),
        (
            vec![
                "keys",
                "import",
                "--backend",
                "aws",
                "--public-key",
                "edpkNOPE",
            ],
            "--public-key goes with --backend yubihsm",
        ),
        (
            vec![
                "keys",
                "import",
                "--backend",
                "yubihsm",
                "--key-id",
                "arn:aws:kms:x",
            ],
            "--key-id `arn:aws:kms:x` is not a YubiHSM2 object id",
        ),
        (
            vec!["keys", "import", "--backend", "yubihsm", "--key", "baker"],
            "go with --backend azure",
        ),
        (
            vec![
                "keys",
                "import",
                "--backend",
                "yubihsm",
                "--public-key",
                "edpkNOPE",
            ],
            "--key-id N",
        ),
    ] {
        let (ok, _, err) = run_with_stdin(
            {
                let mut c = pawl(home.path());
                c.args(&args);
                c
            },
            "",
        );
        assert!(!ok && err.contains(expected), "{args:?}: {err}");
    }
    // The board keeps the authentication key in RAM until keys are registered: setup and
    // import go to one running board, here through `pawl serve`'s control socket.
    let log = home.path().join("serve.log");
    let mut child = pawl(home.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let serve = KillOnDrop(child);
    let first = lines.next().expect("a line").expect("utf8");
    assert!(first.starts_with("listening on "), "{first}");
    let mut setup = pawl(home.path());
    setup.args(["device", "yubihsm-setup", "--auth-key-id", "2"]);
    let (ok, _, err) = run_with_stdin(setup, "\n");
    assert!(!ok && err.contains("no password"), "{err}");
    let password = "cli test hsm password";
    let mut setup = pawl(home.path());
    setup.args(["device", "yubihsm-setup", "--auth-key-id", "2"]);
    let (ok, out, err) = run_with_stdin(setup, &format!("{password}\n"));
    assert!(ok, "{err}");
    assert!(out.contains("authentication key 2"), "{out}");
    assert!(!out.contains(password) && !err.contains(password));
    // The board reads the public key from the HSM itself: without a way to reach the HSM the
    // import fails clearly and registers nothing (the whole path runs end to end in
    // tests/e2e/test_yubihsm.py against `pawl-sim yubihsm`).
    let pk = "edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav";
    let import_args = [
        "keys",
        "import",
        "--backend",
        "yubihsm",
        "--key-id",
        "16",
        "--public-key",
        pk,
    ];
    let mut import = pawl(home.path());
    import.args(import_args);
    let (ok, _, err) = run_with_stdin(import, "");
    assert!(!ok && err.contains("needs a [yubihsm] section"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    std::fs::write(
        home.path().join("pawl.toml"),
        format!("[yubihsm]\nconnector = \"http://127.0.0.1:{port}\"\n"),
    )
    .expect("pawl.toml");
    let mut import = pawl(home.path());
    import.args(import_args);
    let (ok, _, err) = run_with_stdin(import, "");
    assert!(!ok && err.contains("unreachable"), "{err}");
    let mut list = pawl(home.path());
    list.args(["keys", "list"]);
    let (ok, out, err) = run_with_stdin(list, "");
    assert!(ok && out.contains("no keys"), "{out}{err}");
    drop(serve);
    let logged = std::fs::read_to_string(&log).expect("serve log");
    assert!(logged.contains("serving"), "{logged}");
    assert!(!logged.contains(password));
}

/// `--allow-pop` (issue 13, finding 5): a tz4 key proves possession in operational mode only if
/// it was allowed to at provisioning; an `override_pk` that is not a BLS12-381 public key is a
/// 400 from the board's refusal; the flag is refused for keys that cannot prove possession.
#[test]
fn allow_pop_lets_a_tz4_key_prove_possession_in_operational_mode() {
    use pawl_bridge::link::{Link, LinkSettings, VirtualConnector};
    use pawl_core::protocol::Mode;

    let home = tempfile::tempdir().expect("tempdir");
    let tz4_secret = "BLsk1hKAHyGqY9qRbgoSVnjiSmDWpKGjFF3WNQ7BaiaMUA6RMA6Pfq";
    for (args, stdin, expected) in [
        (
            vec!["keys", "generate", "--curve", "ed25519", "--allow-pop"],
            "",
            "--allow-pop goes with tz4 keys",
        ),
        (
            vec!["keys", "import", "--allow-pop"],
            "edsk4FTF78Qf1m2rykGpHqostAiq5gYW4YZEoGUSWBTJr2njsDHSnd\n",
            "--allow-pop goes with tz4 keys",
        ),
        (
            vec!["keys", "import", "--backend", "azure", "--allow-pop"],
            "",
            "--allow-pop goes with tz4 keys on the board",
        ),
    ] {
        let mut cmd = pawl(home.path());
        cmd.args(&args);
        let (ok, _, err) = run_with_stdin(cmd, stdin);
        assert!(!ok && err.contains(expected), "{args:?}: {err}");
    }
    let mut cmd = pawl(home.path());
    cmd.args(["keys", "import", "--allow-pop"]);
    let (ok, out, err) = run_with_stdin(cmd, &format!("{tz4_secret}\n"));
    assert!(ok, "{err}");
    let allowed = out.split_whitespace().next().expect("pkh").to_string();
    let out = pawl(home.path())
        .args(["keys", "generate", "--curve", "bls"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let not_allowed = stdout.split_whitespace().next().expect("pkh").to_string();
    assert!(allowed.starts_with("tz4") && not_allowed.starts_with("tz4"));

    // The same board, powered up in operational mode.
    let dir = pawl_bridge::device::virtual_dir(home.path());
    let board = VirtualConnector::open(&dir, Mode::Operational).expect("open virtual board");
    let link = Link::start(Box::new(board), LinkSettings::default());
    let mut s = settings();
    s.allow_to_prove_possession = true;
    let server = Server::start(link, &[], s);
    let (status, body) = server.get(&format!("/bls_prove_possession/{allowed}"));
    assert_eq!(status, 200, "{body}");
    assert!(
        field(&body, "bls_prove_possession").starts_with("BLsig"),
        "{body}"
    );
    let (status, body) = server.get(&format!("/bls_prove_possession/{not_allowed}"));
    assert_eq!(status, 403, "{body}");
    assert!(octez_error(&body).contains("provisioning mode"), "{body}");
    // 48 bytes that are not a point: the board refuses, the bridge answers 400.
    let junk = pawl_core::keys::PublicKey::Bls([0x42; 48]).to_b58();
    let (status, body) = server.get(&format!(
        "/bls_prove_possession/{allowed}?override_pk={}",
        junk.as_str()
    ));
    assert_eq!(status, 400, "{body}");
    assert!(octez_error(&body).contains("override_pk"), "{body}");
}

/// `pawl watermark lower` and `forget` as an operator runs them, through a running `serve`'s
/// control socket (the only path to them: no HTTP route lowers or forgets a mark). The
/// refusals the HTTP table maps to 404 `no_such_mark` and 409 `refused_watermark` reach the
/// operator as a failed command naming the problem, and change nothing: the mark, and the
/// signature recorded at it, stay. (The virtual board has no button, so a lowering that
/// passes those checks is refused `not confirmed`, also without a change.)
#[test]
fn watermark_lower_and_forget_refusals_name_the_problem_and_change_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = pawl(home.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let _serve = KillOnDrop(child);
    let first = lines.next().expect("a line").expect("utf8");
    let addr: std::net::SocketAddr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .parse()
        .expect("addr");
    let mut import = pawl(home.path());
    import.args(["keys", "import", "--chain", "NetXo5iVw1vBoxM"]);
    let (ok, _, err) = run_with_stdin(import, &format!("{SIGNATORY_SK}\n"));
    assert!(ok, "{err}");
    let sign = || {
        http(
            addr,
            "POST",
            &format!("/keys/{SIGNATORY_PKH}"),
            Some(&format!("\"{C3}\"")),
        )
    };
    let (status, body) = sign();
    assert_eq!(status, 200, "{body}");
    let signature = field(&body, "signature");
    let show = || {
        let out = pawl(home.path())
            .args(["watermark", "show", "--json"])
            .output()
            .expect("show");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let before = show();
    assert!(before.contains("\"level\":34"), "{before}");

    let run = |args: &[&str]| {
        let out = pawl(home.path()).args(args).output().expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let lower = |chain: &str, kind: &str, level: &str, round: &str| {
        run(&[
            "watermark",
            "lower",
            "--chain",
            chain,
            "--pkh",
            SIGNATORY_PKH,
            "--kind",
            kind,
            "--level",
            level,
            "--round",
            round,
        ])
    };
    for (args, expected) in [
        // 404 no_such_mark over HTTP: no mark on that chain, or of that kind.
        (
            ("NetXdQprcVkpaWU", "attestation", "1", "0"),
            "the board refused: no attestation watermark for this key on chain NetXdQprcVkpaWU",
        ),
        (
            ("NetXo5iVw1vBoxM", "block", "1", "0"),
            "the board refused: no block watermark for this key on chain NetXo5iVw1vBoxM",
        ),
        // 409 refused_watermark over HTTP: at or above the mark is not a lowering.
        (
            ("NetXo5iVw1vBoxM", "attestation", "34", "4"),
            "the board refused: lowering must go below the attestation watermark (34,4)",
        ),
        (
            ("NetXo5iVw1vBoxM", "attestation", "35", "0"),
            "the board refused: lowering must go below the attestation watermark (34,4)",
        ),
        // Past those checks, the button: the virtual board has none.
        (
            ("NetXo5iVw1vBoxM", "attestation", "30", "0"),
            "the board refused: not confirmed on the device",
        ),
    ] {
        let (ok, err) = lower(args.0, args.1, args.2, args.3);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // Forget: an unknown key (404 unknown_key over HTTP) is refused; a key whose marks are
    // all on chains it allows has nothing to forget.
    let (ok, err) = run(&[
        "watermark",
        "forget",
        "tz1Ke2h7sDdakHJQh8WX4Z372du1KChsksyU",
    ]);
    assert!(!ok);
    assert!(
        err.contains("the board refused: unknown key tz1Ke2h7sDdakHJQh8WX4Z372du1KChsksyU"),
        "{err}"
    );
    let (ok, err) = run(&["watermark", "forget", SIGNATORY_PKH]);
    assert!(ok, "{err}");

    assert_eq!(show(), before, "no refusal moved the mark");
    let (status, body) = sign();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        field(&body, "signature"),
        signature,
        "the recorded signature"
    );
}
