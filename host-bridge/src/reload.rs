//! `pawl serve` on SIGHUP: re-read `pawl.toml` and apply, without touching the board link or
//! any listener, `[server] authorized_keys`, `allowed_ips` and `log_filter`. A file that does
//! not load (syntax, an unknown field, a bad key or address) changes nothing: the running
//! configuration stays and the error, which names the field, is logged. Everything else in the
//! file (addresses, the device, TLS, Azure, YubiHSM2) is read at start only.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::http::AppState;

/// Sets the running log filter; `main` installs it. `Err` names what is wrong.
pub type LogFilterSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_FILTER: OnceLock<LogFilterSetter> = OnceLock::new();

/// Install the function that changes the log filter (once, at start).
pub fn install_log_filter(set: LogFilterSetter) {
    let _ = LOG_FILTER.set(set);
}

/// The filter `pawl serve` runs with: `PAWL_LOG` when set, else `[server] log_filter`, else
/// `info`.
fn effective_filter(config: &Config) -> String {
    std::env::var("PAWL_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| config.log_filter.clone())
        .unwrap_or_else(|| "info".into())
}

/// Apply `config`'s log filter (at start, and on each reload).
pub fn apply_log_filter(config: &Config) {
    if let Some(set) = LOG_FILTER.get()
        && let Err(e) = set(&effective_filter(config))
    {
        tracing::error!("log filter not changed: {e}");
    }
}

/// Re-read `home/pawl.toml` and apply what can change while serving. `Err`: nothing changed.
pub fn reload(home: &std::path::Path, state: &AppState) -> Result<(), String> {
    let config = Config::load(home).map_err(|e| e.to_string())?;
    state.auth.replace(config.authorized_keys.clone());
    state
        .settings
        .allowed_ips
        .replace(config.allowed_ips.clone());
    // At warn, before the filter changes: an operator's act, shown under the old filter and
    // the new one unless either is quieter than warn.
    tracing::warn!(
        authorized_keys = config.authorized_keys.len(),
        allowed_ips = config.allowed_ips.len(),
        log_filter = %effective_filter(&config),
        "reloaded pawl.toml"
    );
    apply_log_filter(&config);
    Ok(())
}

/// Reload on every SIGHUP until the process ends.
pub async fn on_sighup(home: PathBuf, state: Arc<AppState>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: pawl.toml is read at start only");
        return;
    };
    while hup.recv().await.is_some() {
        if let Err(e) = reload(&home, &state) {
            tracing::error!("pawl.toml not reloaded, the running configuration stays: {e}");
        }
    }
}
