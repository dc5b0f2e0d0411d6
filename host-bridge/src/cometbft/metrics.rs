//! Prometheus metrics of the CometBFT clients, per chain (signatures, refusals by reason, the
//! last position signed) and per node connection (up or down, connections made, failures).
//! Rendered into `/metrics` by [`crate::metrics::Metrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Default)]
struct Chain {
    signatures: BTreeMap<&'static str, u64>,
    refusals: BTreeMap<&'static str, u64>,
    /// Height, round, step (propose 1, prevote 2, precommit 3) of the last signature.
    last: Option<(i64, i32, u8)>,
}

#[derive(Default)]
struct Node {
    connected: bool,
    connects: u64,
    failures: u64,
}

/// The CometBFT clients' counters.
#[derive(Default)]
pub struct CometMetrics {
    chains: Mutex<BTreeMap<String, Chain>>,
    nodes: Mutex<BTreeMap<(String, String), Node>>,
}

impl CometMetrics {
    fn chain(&self, chain: &str, f: impl FnOnce(&mut Chain)) {
        if let Ok(mut m) = self.chains.lock() {
            f(m.entry(chain.to_string()).or_default());
        }
    }

    fn node(&self, chain: &str, node: &str, f: impl FnOnce(&mut Node)) {
        if let Ok(mut m) = self.nodes.lock() {
            f(m.entry((chain.to_string(), node.to_string())).or_default());
        }
    }

    /// A `kind` (`prevote`, `precommit`, `proposal`) signature was sent at (height, round,
    /// step).
    pub fn signed(&self, chain: &str, kind: &'static str, height: i64, round: i32, step: u8) {
        self.chain(chain, |c| {
            *c.signatures.entry(kind).or_default() += 1;
            c.last = Some((height, round, step));
        });
    }

    /// A request was refused for `reason`.
    pub fn refused(&self, chain: &str, reason: &'static str) {
        self.chain(chain, |c| *c.refusals.entry(reason).or_default() += 1);
    }

    /// The client of `chain` is configured for `node` (so its gauges exist from the start).
    pub fn configured(&self, chain: &str, node: &str) {
        self.chain(chain, |_| {});
        self.node(chain, node, |_| {});
    }

    /// The connection to `node` came up.
    pub fn connected(&self, chain: &str, node: &str) {
        self.node(chain, node, |n| {
            n.connected = true;
            n.connects += 1;
        });
    }

    /// The connection to `node` went down, or dialling it failed (`failed`).
    pub fn disconnected(&self, chain: &str, node: &str, failed: bool) {
        self.node(chain, node, |n| {
            n.connected = false;
            n.failures += u64::from(failed);
        });
    }

    /// Append the exposition text.
    pub fn render(&self, out: &mut String) {
        let Ok(chains) = self.chains.lock() else {
            return;
        };
        if chains.is_empty() {
            return;
        }
        out.push_str("# HELP pawl_cometbft_signatures_total CometBFT signatures sent, by chain and kind.\n# TYPE pawl_cometbft_signatures_total counter\n");
        for (chain, c) in chains.iter() {
            for (kind, n) in &c.signatures {
                let _ = writeln!(
                    out,
                    "pawl_cometbft_signatures_total{{chain=\"{}\",kind=\"{kind}\"}} {n}",
                    label(chain)
                );
            }
        }
        out.push_str("# HELP pawl_cometbft_refusals_total CometBFT requests refused, by chain and reason.\n# TYPE pawl_cometbft_refusals_total counter\n");
        for (chain, c) in chains.iter() {
            // The double-sign guard's reasons exist from the start, at 0, for alerts.
            let mut reasons: BTreeMap<&str, u64> = ["double_sign", "regression"]
                .iter()
                .map(|r| (*r, 0))
                .collect();
            reasons.extend(c.refusals.iter().map(|(r, n)| (*r, *n)));
            for (reason, n) in reasons {
                let _ = writeln!(
                    out,
                    "pawl_cometbft_refusals_total{{chain=\"{}\",reason=\"{reason}\"}} {n}",
                    label(chain)
                );
            }
        }
        for (name, help, pick) in [
            ("height", "Height", 0),
            ("round", "Round", 1),
            ("step", "Step (propose 1, prevote 2, precommit 3)", 2),
        ] {
            let _ = write!(
                out,
                "# HELP pawl_cometbft_last_signed_{name} {help} of the last CometBFT signature sent, by chain.\n# TYPE pawl_cometbft_last_signed_{name} gauge\n"
            );
            for (chain, c) in chains.iter() {
                if let Some((h, r, s)) = c.last {
                    let v = [h, i64::from(r), i64::from(s)][pick];
                    let _ = writeln!(
                        out,
                        "pawl_cometbft_last_signed_{name}{{chain=\"{}\"}} {v}",
                        label(chain)
                    );
                }
            }
        }
        drop(chains);
        let Ok(nodes) = self.nodes.lock() else {
            return;
        };
        out.push_str("# HELP pawl_cometbft_connected Whether the connection to the node is up.\n# TYPE pawl_cometbft_connected gauge\n");
        for ((chain, node), n) in nodes.iter() {
            let _ = writeln!(
                out,
                "pawl_cometbft_connected{{chain=\"{}\",node=\"{}\"}} {}",
                label(chain),
                label(node),
                u8::from(n.connected)
            );
        }
        out.push_str("# HELP pawl_cometbft_connects_total Connections made to the node (reconnects included).\n# TYPE pawl_cometbft_connects_total counter\n");
        for ((chain, node), n) in nodes.iter() {
            let _ = writeln!(
                out,
                "pawl_cometbft_connects_total{{chain=\"{}\",node=\"{}\"}} {}",
                label(chain),
                label(node),
                n.connects
            );
        }
        out.push_str("# HELP pawl_cometbft_connection_failures_total Dials that failed and connections that broke.\n# TYPE pawl_cometbft_connection_failures_total counter\n");
        for ((chain, node), n) in nodes.iter() {
            let _ = writeln!(
                out,
                "pawl_cometbft_connection_failures_total{{chain=\"{}\",node=\"{}\"}} {}",
                label(chain),
                label(node),
                n.failures
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_chain_and_per_node_lines() {
        let m = CometMetrics::default();
        m.configured("test-1", "unix:///run/a\"b.sock");
        m.connected("test-1", "unix:///run/a\"b.sock");
        m.signed("test-1", "prevote", 7, 0, 2);
        m.signed("test-1", "precommit", 7, 1, 3);
        m.refused("test-1", "double_sign");
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "pawl_cometbft_signatures_total{chain=\"test-1\",kind=\"prevote\"} 1",
            "pawl_cometbft_refusals_total{chain=\"test-1\",reason=\"double_sign\"} 1",
            "pawl_cometbft_refusals_total{chain=\"test-1\",reason=\"regression\"} 0",
            "pawl_cometbft_last_signed_height{chain=\"test-1\"} 7",
            "pawl_cometbft_last_signed_round{chain=\"test-1\"} 1",
            "pawl_cometbft_last_signed_step{chain=\"test-1\"} 3",
            "pawl_cometbft_connected{chain=\"test-1\",node=\"unix:///run/a\\\"b.sock\"} 1",
            "pawl_cometbft_connects_total{chain=\"test-1\",node=\"unix:///run/a\\\"b.sock\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
    }
}
