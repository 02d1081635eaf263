//! The command line: `host serve`, `host check`, `host routes`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{
    config::{self, MountTable},
    logging, server,
    site::{self, LoadedMount, Site},
};

/// Serves web apps compiled as dynamic libraries side by side on one domain,
/// each under its own URL prefix, as listed in a mount table.
#[derive(Debug, Parser)]
#[command(name = "host", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load every mount of the mount table and serve them.
    Serve {
        #[command(flatten)]
        table: TableArg,
        /// Listen on this address instead of the table's `listen`
        /// (e.g. 0.0.0.0:8080; port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Load and check every mount without serving (like `nginx -t`): one
    /// line per mount; exits with 1 on any problem.
    Check {
        #[command(flatten)]
        table: TableArg,
    },
    /// Print every mount's routes with their full URL rule and endpoint
    /// (like `flask routes`).
    Routes {
        #[command(flatten)]
        table: TableArg,
    },
}

#[derive(Debug, Args)]
struct TableArg {
    /// The mount table.
    #[arg(long, value_name = "FILE", default_value = "plugins.json")]
    config: PathBuf,
}

/// Runs the command; `Err` is an error to print, the exit code otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { table, listen } => serve(&table.config, listen),
        Command::Check { table } => check(&table.config),
        Command::Routes { table } => routes(&table.config),
    }
}

/// Loads every mount, failing with every mount's error when any fails.
fn load_all(table: &MountTable) -> anyhow::Result<Vec<LoadedMount>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (mount, outcome) in site::load_mounts(table) {
        match outcome {
            Ok(app) => loaded.push(app),
            Err(error) => {
                if let crate::loader::LoadError::Incompatible { full, .. } = &error {
                    tracing::debug!(mount = %mount.name, "abi_stable's full report:\n{full}");
                }
                errors.push(format!("mount {:?}: {error}", mount.name));
            }
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        for app in &loaded {
            app.instance.shutdown();
        }
        anyhow::bail!("{}", errors.join("\n"))
    }
}

fn serve(file: &std::path::Path, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let table = config::load(file)?;
    let loggers: Vec<&str> = table
        .mounts
        .iter()
        .map(|mount| mount.logger.as_str())
        .collect();
    let _log_guards = logging::init_serving(&table.log_dir, &loggers)?;
    let address = listen.unwrap_or(table.listen);
    let loaded = load_all(&table)?;
    for app in &loaded {
        tracing::info!(
            mount = %app.mount.name,
            prefix = %app.mount.display_prefix(),
            library = %app.mount.library.display(),
            "mounted"
        );
    }
    // One async worker per core; handlers may run inline on all but one of
    // them (see handler_pool), so a worker is always free to accept. (One
    // worker more than cores measured slower: more wake-ups between them.)
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let site = Arc::new(Site::start(loaded, workers));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        tracing::info!("listening on http://{bound}");
        server::serve(listener, Arc::clone(&site), stop_signal()).await;
        anyhow::Ok(())
    })?;
    site.shut_down();
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

fn check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    logging::init_console();
    let table = config::load(file)?;
    let mut failed = 0;
    println!("{}: {} mounts", file.display(), table.mounts.len());
    for (mount, outcome) in site::load_mounts(&table) {
        match outcome {
            Ok(app) => {
                println!(
                    "ok    {:<12} {:<16} {} (app {:?}, app-api {})",
                    mount.name,
                    mount.display_prefix(),
                    mount.library.display(),
                    app.library.name(),
                    app.library.api_version()
                );
                app.instance.shutdown();
            }
            Err(error) => {
                failed += 1;
                println!(
                    "FAIL  {:<12} {:<16} {error}",
                    mount.name,
                    mount.display_prefix()
                );
            }
        }
    }
    if failed == 0 {
        println!("all mounts ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} mounts failed", table.mounts.len());
        Ok(ExitCode::FAILURE)
    }
}

fn routes(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    logging::init_console();
    let table = config::load(file)?;
    let loaded = load_all(&table)?;
    let mut rows = vec![(
        "Endpoint".to_owned(),
        "Methods".to_owned(),
        "Rule".to_owned(),
    )];
    for app in &loaded {
        for route in app.instance.routes() {
            rows.push((
                format!("{}.{}", app.mount.name, route.endpoint),
                route.methods.to_string(),
                format!("{}{}", app.mount.prefix, route.rule),
            ));
        }
        app.instance.shutdown();
    }
    let width = |column: fn(&(String, String, String)) -> &String| {
        rows.iter().map(|row| column(row).len()).max().unwrap_or(0)
    };
    let (endpoint_width, methods_width) = (width(|row| &row.0), width(|row| &row.1));
    for (endpoint, methods, rule) in &rows {
        println!("{endpoint:<endpoint_width$}  {methods:<methods_width$}  {rule}");
    }
    Ok(ExitCode::SUCCESS)
}
