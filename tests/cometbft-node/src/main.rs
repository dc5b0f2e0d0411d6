//! pawl-cometbft-node: plays a CometBFT v0.38 validator node towards a remote signer (pawl or
//! tmkms), built on Informal's tendermint-rs (tendermint, tendermint-proto, tendermint-p2p),
//! an implementation independent of the cometbft-rs crates pawl's bridge uses.
//!
//! ```text
//! pawl-cometbft-node --listen tcp://127.0.0.1:0 --chain-id test-chain [--script FILE]
//!                    [--timeout-ms 10000] [--accept-timeout-ms 30000]
//! ```
//!
//! It listens (as a node does on priv_validator_laddr; the signer dials in) and prints
//! `listening on tcp://<node id>@127.0.0.1:PORT` (or `unix:///path`). Then it sends one request
//! per line read from stdin (or every request of the JSON array in FILE) and prints one JSON line
//! per answer: what came back, whether the signature verifies over tendermint's sign bytes with
//! the validator's key (learnt from the first public key answer), the returned timestamp, the
//! latency, and whether a signature conflicts with an earlier one (see `answer.rs`). Requests
//! are described in `request.rs`.

mod answer;
mod link;
mod request;

use std::io::{self, BufRead, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use answer::Checker;
use link::{Connection, Listener};
use request::{Op, Request};

struct Options {
    listen: String,
    chain_id: String,
    script: Option<String>,
    timeout: Duration,
    accept_timeout: Duration,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = None;
    let mut chain_id = None;
    let mut script = None;
    let mut timeout = Duration::from_secs(10);
    let mut accept_timeout = Duration::from_secs(30);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(value()?),
            "--chain-id" => chain_id = Some(value()?),
            "--script" => script = Some(value()?),
            "--timeout-ms" => timeout = millis(&value()?)?,
            "--accept-timeout-ms" => accept_timeout = millis(&value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen tcp://HOST:PORT or unix:///PATH is required")?,
        chain_id: chain_id.ok_or("--chain-id is required")?,
        script,
        timeout,
        accept_timeout,
    })
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("{text:?}: {e}"))
}

fn main() {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pawl-cometbft-node: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(options) {
        eprintln!("pawl-cometbft-node: {e}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> Result<(), String> {
    let node_key = ed25519_consensus::SigningKey::new(rand_core::OsRng);
    let listener = Listener::bind(&options.listen, node_key).map_err(|e| e.to_string())?;
    let address = listener.dial_address().map_err(|e| e.to_string())?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {address}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let incoming = listener.spawn_acceptor(options.timeout);

    let requests: Box<dyn Iterator<Item = Result<Request, String>>> = match &options.script {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let list: Vec<Request> =
                serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
            Box::new(list.into_iter().map(Ok))
        }
        None => Box::new(io::stdin().lock().lines().map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| format!("{line:?}: {e}"))
        })),
    };

    let mut node = Node {
        chain_id: options.chain_id,
        accept_timeout: options.accept_timeout,
        incoming,
        connection: None,
        checker: Checker::default(),
    };
    for (i, request) in requests.enumerate() {
        let mut line = match request {
            Ok(request) => {
                let mut line = node.ask(&request);
                line["op"] = json!(request.op.name());
                line["height"] = json!(request.height);
                line["round"] = json!(request.round);
                if let Some(tag) = &request.tag {
                    line["tag"] = json!(tag);
                }
                line
            }
            Err(e) => json!({"answer": "bad_request", "why": e}),
        };
        line["i"] = json!(i);
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    link::remove_socket(&address);
    Ok(())
}

struct Node {
    chain_id: String,
    accept_timeout: Duration,
    incoming: mpsc::Receiver<io::Result<Connection>>,
    connection: Option<Connection>,
    checker: Checker,
}

impl Node {
    fn ask(&mut self, request: &Request) -> Value {
        if request.op == Op::Disconnect {
            self.connection = None;
            return json!({"answer": "disconnected"});
        }
        let message = match request.message(&self.chain_id, &self.checker.validator_address()) {
            Ok(m) => m,
            Err(e) => return json!({"answer": "bad_request", "why": e}),
        };
        let mut dialed = None;
        if self.connection.is_none() {
            match self.next_connection() {
                Ok(c) => {
                    dialed = Some(c.peer_id.clone());
                    self.connection = Some(c);
                }
                Err(e) => return json!({"answer": "no_signer", "why": e}),
            }
        }
        let Some(connection) = self.connection.as_mut() else {
            return json!({"answer": "no_signer", "why": "no connection"});
        };
        let started = Instant::now();
        let exchanged = connection
            .send(&message)
            .and_then(|()| connection.receive());
        let micros = started.elapsed().as_micros() as u64;
        let mut line = match exchanged {
            Ok(response) => self.checker.answer(request, &self.chain_id, response),
            Err(e) => {
                // The signer hung up (tmkms does on a regression) or went silent: the next
                // request waits for it to dial in again.
                self.connection = None;
                json!({"answer": "closed", "why": e.to_string()})
            }
        };
        line["us"] = json!(micros);
        if let Some(peer) = dialed {
            line["connected"] = json!(peer);
        }
        line
    }

    /// The newest signer connection ready within the accept timeout (older ones waiting
    /// behind it are from a signer that has since dialed again).
    fn next_connection(&mut self) -> Result<Connection, String> {
        let deadline = Instant::now() + self.accept_timeout;
        let mut newest = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(Ok(c)) => break c,
                // A signer that failed its handshake: log it and wait for the next one.
                Ok(Err(e)) => eprintln!("pawl-cometbft-node: accepting a signer: {e}"),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no signer dialed in within {:?}",
                        self.accept_timeout
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => return Err("listener gone".into()),
            }
        };
        while let Ok(Ok(c)) = self.incoming.try_recv() {
            newest = c;
        }
        Ok(newest)
    }
}
