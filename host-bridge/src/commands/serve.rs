//! `pawl serve`: the HTTP signer, the metrics listener and the control socket.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use super::Context;
use crate::auth::Authorizer;
use crate::boards::{Board, Boards};
use crate::http::{AppState, HttpSettings, app, metrics_app};
use crate::link::Link;
use crate::metrics::Metrics;
use crate::{control, device};

/// `pawl serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTP listen address (overrides [server] listen; default 127.0.0.1:6732; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (overrides [metrics] listen).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// HTTPS listen address (overrides [server] tls_listen; needs tls_cert and tls_key).
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// Octez socket signer: tcp://HOST:PORT or unix:///PATH; repeatable (replaces
    /// [server] socket).
    #[arg(long = "socket", value_name = "URI")]
    pub sockets: Vec<crate::socket::SocketAddress>,
}

/// Run `pawl serve` until Ctrl-C or SIGTERM.
pub fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(ctx, args))
}

async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    // Signal handlers before anything is bound or printed: a SIGTERM that arrives while serve
    // starts must still remove the socket files (the default action would kill it as it is).
    let signals = Signals::install()?;
    let config = &ctx.config;
    // The TLS files first: a bad one stops serve before anything is bound or opened.
    let tls = match (&config.tls, args.tls_listen) {
        (Some((listen, files)), _) => Some((*listen, crate::tls::server_config(files)?)),
        (None, Some(_)) => anyhow::bail!(
            "--tls-listen needs server.tls_cert and server.tls_key in {}",
            ctx.home.join(crate::config::FILE_NAME).display()
        ),
        (None, None) => None,
    };
    let socket = control::socket_path(&ctx.home);
    // First, so that a second `pawl serve` on the same home stops here.
    let control_listener = control::bind(&socket)?;
    let mut opened = Vec::new();
    for board in &ctx.boards {
        let chosen = match device::for_serve(&ctx.home, board) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&socket);
                return Err(anyhow::Error::from(e).context(format!("board `{}'", board.name)));
            }
        };
        if chosen.is_virtual {
            tracing::warn!(board = %board.name, "{}", device::VIRTUAL_WARNING);
            eprintln!("{}", device::VIRTUAL_WARNING);
        }
        opened.push((board, chosen));
    }
    let keyrings = Arc::new(crate::keyring::Keyrings::open(config, &ctx.home)?);
    let yubihsm = match &config.yubihsm {
        Some(settings) => Some(Arc::new(
            crate::yubihsm::HsmRelay::new(settings.clone()).context("[yubihsm] in pawl.toml")?,
        )),
        None => None,
    };
    let boards = Boards::new(
        opened
            .into_iter()
            .map(|(board, chosen)| Board {
                name: board.name.clone(),
                link: Link::start(chosen.connector, board.link.clone()),
            })
            .collect(),
    );
    let state = Arc::new(AppState {
        keyrings,
        yubihsm,
        boards: boards.clone(),
        auth: Authorizer::new(config.authorized_keys.clone()),
        settings: HttpSettings {
            body_limit: config.body_limit,
            allowed_ips: config.allowed_ips.clone().into(),
            allow_list_known_keys: config.allow_list_known_keys,
            allow_to_prove_possession: config.allow_to_prove_possession,
        },
        metrics: Arc::new(Metrics::default()),
    });
    crate::reload::apply_log_filter(config);
    tokio::spawn(crate::reload::on_sighup(
        ctx.home.clone(),
        Arc::clone(&state),
    ));
    let listen = args.listen.unwrap_or(config.listen);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let https = match (tls, args.tls_listen) {
        (Some((listen, tls)), flag) => {
            let addr = flag.unwrap_or(listen);
            let tcp = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for HTTPS"))?;
            Some(crate::tls::TlsListener::new(tcp, tls)?)
        }
        (None, _) => None,
    };
    let sockets = crate::socket::bind(if args.sockets.is_empty() {
        &config.sockets
    } else {
        &args.sockets
    })
    .await?;
    let metrics_addr = args.metrics.or(config.metrics);
    let metrics_listener = match metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
        None => None,
    };

    // Connect now so the log says at once whether the board is there; serving starts anyway
    // and answers 503 until it is.
    // Each board is then asked again every second while its link is down, so a board that
    // comes back lists its keys again without waiting for a request.
    tokio::spawn(crate::boards::keep_connected(
        boards.clone(),
        crate::boards::RECONNECT,
    ));

    // Board logs: each board's events, asked for every second and logged with its name.
    tokio::spawn(crate::boards::logs::follow(
        boards.clone(),
        Arc::clone(&state.metrics),
        crate::boards::logs::POLL,
    ));

    let local = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{local}")?;
    if let Some(m) = &metrics_listener {
        writeln!(stdout, "metrics on http://{}/metrics", m.local_addr()?)?;
    }
    if let Some(h) = &https {
        writeln!(
            stdout,
            "listening on https://{}",
            axum::serve::Listener::local_addr(h)?
        )?;
    }
    for address in sockets.addresses() {
        writeln!(stdout, "socket on {address}")?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%local, control = %socket.display(), "serving the octez-signer API");

    tokio::spawn(control::serve(
        control_listener,
        boards.clone(),
        state.yubihsm.clone(),
    ));
    if let Some(m) = metrics_listener {
        // The board's status and marks for /metrics and /readyz, read apart from signing.
        tokio::spawn(crate::health::watch(
            boards.clone(),
            Arc::clone(&state.metrics),
            crate::health::REFRESH,
        ));
        let router = metrics_app(boards.clone(), Arc::clone(&state.metrics));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(m, router).await {
                tracing::error!("metrics listener stopped: {e}");
            }
        });
    }
    let _sockets = sockets.serve(Arc::clone(&state));
    // CometBFT nodes ([[cometbft]]): one client each, dialling the node's privval listener.
    // A bad identity key file stops serve here, and the control socket file goes with it.
    let _cometbft = match crate::cometbft::start(
        &config.cometbft,
        &ctx.home,
        Arc::new(crate::cometbft::board::BoardSigner {
            boards: boards.clone(),
            yubihsm: state.yubihsm.clone(),
        }),
        Arc::clone(&state.metrics.cometbft),
    ) {
        Ok(clients) => clients,
        Err(e) => {
            drop(_sockets);
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
    };
    if let Some(h) = https {
        use axum::serve::ListenerExt as _;
        let router = app(Arc::clone(&state));
        // tap_io: axum gives a tapped listener's peer address to ConnectInfo (allowed_ips).
        let h = h.tap_io(|_| {});
        tokio::spawn(async move {
            let served = axum::serve(
                h,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            );
            if let Err(e) = served.await {
                tracing::error!("HTTPS listener stopped: {e}");
            }
        });
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .into_future(),
    );
    let ended_early = tokio::select! {
        r = &mut server => Some(r),
        () = signals.wait() => None,
    };
    // Socket files go first: a supervisor restarting pawl must find their paths free even if
    // open connections keep this process a moment longer.
    drop(_sockets);
    let _ = std::fs::remove_file(&socket);
    let served = match ended_early {
        Some(r) => r,
        None => {
            let _ = stop.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(
                        "connections still open {} s after the signal: stopping anyway",
                        SHUTDOWN_GRACE.as_secs()
                    );
                    Ok(Ok(()))
                }
            }
        }
    };
    served
        .context("HTTP server task")?
        .context("HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// How long open HTTP connections may finish after Ctrl-C or SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        tracing::info!("shutting down");
    }
}
