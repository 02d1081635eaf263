//! The command line: `host serve`, `run`, `check`, `routes`, `reload`,
//! `cmd`, `schema`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};

use crate::{
    logging,
    mounts::{
        app,
        loader::{self, Loader, RunFlags},
    },
    run::{self, Options},
    services::{Mode, SiteServices},
    table,
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
        #[command(flatten)]
        serving: ServingArgs,
        /// Restart (keeping the socket) when the mount table or a mounted
        /// library changes; a change that does not pass `host check` is
        /// logged and the running version keeps serving.
        #[arg(long)]
        reload: bool,
        /// Refuse to start when any mount fails to load, instead of
        /// answering 503 on its prefix while the others serve.
        #[arg(long)]
        strict: bool,
    },
    /// Serve one app library alone, with no mount table (like running one
    /// Flask app by itself).
    Run {
        /// The app's .so file.
        library: PathBuf,
        /// The URL prefix to serve it under.
        #[arg(long, default_value = "/")]
        prefix: String,
        /// A folder of static files to serve at <prefix>/static/.
        #[arg(long, value_name = "DIR")]
        static_folder: Option<PathBuf>,
        /// The mount name (default: the app's own name).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        serving: ServingArgs,
    },
    /// Load and check every mount without serving (like `nginx -t`): one
    /// line per mount, then each database with the migrations that would
    /// run; exits with 1 on any problem. Only looks: no migration runs, and
    /// no database, secret key, folder or file is created or changed.
    Check {
        #[command(flatten)]
        table: TableArg,
    },
    /// Print every mount's routes with their full URL rule and endpoint
    /// (like `flask routes`). Only looks, like `check`.
    Routes {
        #[command(flatten)]
        table: TableArg,
    },
    /// Restart the running host with zero downtime (sends it SIGHUP): a new
    /// process loads the current mount table and libraries on the same
    /// socket, and the old one finishes its requests and exits.
    Reload {
        #[command(flatten)]
        table: TableArg,
    },
    /// Copy the site's data while it serves, into the new folder DEST, laid
    /// out as the data folder: each SQLite database at one moment, the
    /// stored uploads, the secret key. What lives elsewhere (PostgreSQL, an
    /// S3 bucket) is named with the way to back it up. To restore, start
    /// the host with DEST as its data_dir.
    Backup {
        #[command(flatten)]
        table: TableArg,
        /// A folder that does not exist yet (or is empty).
        destination: PathBuf,
    },
    /// Run a command an app offers, for one mount (like `flask
    /// create-user`): `host cmd admin create-user alice`. Without a
    /// command, list the mount's commands.
    Cmd {
        #[command(flatten)]
        table: TableArg,
        /// The mount's name in the mount table, e.g. `admin`.
        mount: String,
        /// The command and its arguments; everything after the command's
        /// name goes to it, options too (`import-post --draft a.md`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        arguments: Vec<String>,
    },
    /// Print the JSON Schema of the mount table, for editors.
    Schema,
}

#[derive(Debug, Args)]
struct TableArg {
    /// The mount table.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "plugins.json",
        env = "HOST_CONFIG"
    )]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct ServingArgs {
    /// Listen on this address instead of the table's (e.g. 0.0.0.0:8080;
    /// port 0 picks a free port), or on a Unix socket for a proxy on this
    /// machine (unix:/run/host/host.sock).
    #[arg(long, value_name = "ADDR", env = "HOST_LISTEN")]
    listen: Option<table::Listen>,
    /// Show an error page with the app-side backtrace when a handler fails
    /// or panics, to clients on this machine only. Never in production.
    #[arg(long)]
    debug: bool,
    /// Stay as a small supervisor whose process id never changes, serving
    /// from a child it passes signals to: a reload's new process then
    /// becomes its child, not its replacement (automatic as PID 1, in a
    /// container).
    #[arg(long)]
    supervise: bool,
    /// Also write access lines to the console: `-` (they always go to the
    /// log files).
    #[arg(long, value_name = "-", value_parser = console_only)]
    access_log: Option<String>,
}

/// `--access-log`'s one value: `-`, the console.
fn console_only(value: &str) -> Result<String, String> {
    if value == "-" {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?}: only \"-\" (the console) is a choice; access lines always go to the log files under log_dir"
        ))
    }
}

/// Runs the command; `Err` is an error to print, the exit code otherwise.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Serve { serving, .. } | Command::Run { serving, .. } = &cli.command
        && crate::run::supervise::wanted(serving.supervise)
    {
        return crate::run::supervise::supervise();
    }
    match cli.command {
        Command::Serve {
            table,
            serving,
            reload,
            strict,
        } => run::serve(
            table::load(&table.config)?,
            Options {
                listen: serving.listen,
                debug: serving.debug,
                reload: reload.then_some(table.config),
                strict,
                access_to_console: serving.access_log.is_some(),
            },
        ),
        Command::Run {
            library,
            prefix,
            static_folder,
            name,
            serving,
        } => run_one(&library, &prefix, static_folder.as_deref(), name, serving),
        Command::Check { table } => check(&table.config),
        Command::Routes { table } => routes(&table.config),
        Command::Reload { table } => {
            let loaded = table::load(&table.config)?;
            let pid = crate::run::handover::signal_reload(&loaded.data_dir, &table.config)
                .map_err(anyhow::Error::msg)?;
            println!("asked host {pid} to reload");
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { table, destination } => {
            let loaded = table::load(&table.config)?;
            for line in crate::backup::backup(&loaded, &destination)? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cmd {
            table,
            mount,
            arguments,
        } => command(&table.config, &mount, arguments),
        Command::Schema => {
            println!("{}", table::schema());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_one(
    library: &Path,
    prefix: &str,
    static_folder: Option<&Path>,
    name: Option<String>,
    serving: ServingArgs,
) -> anyhow::Result<ExitCode> {
    let name = match name {
        Some(name) => name,
        None => Loader::default().library(library)?.name().to_owned(),
    };
    let table = table::single(&name, prefix, library, static_folder).map_err(anyhow::Error::msg)?;
    run::serve(
        table,
        Options {
            listen: serving.listen,
            debug: serving.debug,
            reload: None,
            strict: true,
            access_to_console: serving.access_log.is_some(),
        },
    )
}

fn check(file: &Path) -> anyhow::Result<ExitCode> {
    logging::init_console();
    let table = table::load(file)?;
    let services = SiteServices::new(&table, Mode::Inspect).map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    println!("{}: {} mounts", file.display(), table.mounts.len());
    for warning in table.warnings() {
        println!("warn  {warning}");
    }
    for (mount, outcome) in app::load_mounts(&table, &services, RunFlags::default()) {
        match outcome {
            Ok(app) => {
                println!(
                    "ok    {:<12} {:<16} {} (app {:?}, contract {})",
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
    for report in services.inspected() {
        println!("database {} ({}):", report.name, report.location.shown());
        for namespace in &report.inspected {
            println!("  {}", describe_migrations(namespace));
        }
    }
    services.close();
    if failed == 0 {
        println!("all mounts ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} mounts failed", table.mounts.len());
        Ok(ExitCode::FAILURE)
    }
}

/// One line on a namespace's migrations as `host check` found them.
fn describe_migrations(found: &host_database::Inspected) -> String {
    let mut line = format!(
        "migrations {:?}: {} of {} steps applied",
        found.namespace, found.applied, found.known
    );
    if found.adopted > 0 {
        line.push_str(&format!(
            ", {} to adopt from PRAGMA user_version",
            found.adopted
        ));
    }
    match found.pending() {
        0 => line.push_str(", up to date"),
        pending => line.push_str(&format!(
            ", {pending} pending (they ran on a copy of the schema; the host applies them when it starts)"
        )),
    }
    line
}

fn command(file: &Path, name: &str, arguments: Vec<String>) -> anyhow::Result<ExitCode> {
    logging::init_console();
    let table = table::load(file)?;
    let Some(mount) = table.mounts.iter().find(|mount| mount.name == name) else {
        let names: Vec<&str> = table
            .mounts
            .iter()
            .map(|mount| mount.name.as_str())
            .collect();
        anyhow::bail!(
            "{}: no mount named {name:?}; the mounts are: {}",
            file.display(),
            names.join(", ")
        );
    };
    let library = Loader::default().library(&mount.library)?;
    let commands = loader::commands(library);
    if arguments.is_empty() {
        if commands.is_empty() {
            println!(
                "mount {name:?} ({}) offers no commands",
                mount.library.display()
            );
        } else {
            println!("commands of mount {name:?}:");
            for command in &commands {
                let usage = format!("{} {}", command.name, command.usage);
                println!("  {:<28} {}", usage.trim_end(), command.about);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let services = SiteServices::new(&table, Mode::Command).map_err(anyhow::Error::msg)?;
    let index = table
        .mounts
        .iter()
        .position(|candidate| candidate.name == mount.name)
        .unwrap_or_default();
    let logger = logging::AppLogger::new(&mount.logger);
    let outcome = loader::run_command(library, mount, index, logger, &services, arguments);
    services.close();
    match outcome {
        Ok(output) => {
            if !output.is_empty() {
                println!("{}", output.trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn routes(file: &Path) -> anyhow::Result<ExitCode> {
    logging::init_console();
    let table = table::load(file)?;
    let services = SiteServices::new(&table, Mode::Inspect).map_err(anyhow::Error::msg)?;
    let loaded = run::load_all(&table, &services, RunFlags::default())?;
    let mut rows = vec![(
        "Endpoint".to_owned(),
        "Methods".to_owned(),
        "Rule".to_owned(),
    )];
    for (mount, app) in &loaded {
        for route in app.instance.routes() {
            rows.push((
                format!("{}.{}", mount.name, route.endpoint),
                route.methods.to_string(),
                format!("{}{}", mount.prefix, route.rule),
            ));
        }
        if app.static_folder.is_some() {
            rows.push((
                format!("{}.static", mount.name),
                "GET,HEAD".to_owned(),
                format!("{}{}/<path:filename>", mount.prefix, mount.static_url_path),
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
