//! `cargo xtask bench`'s command line.

/// Settings from the command line.
pub struct Options {
    /// Seconds per wrk run.
    pub seconds: u32,
    /// A B rounds per scenario.
    pub rounds: u32,
    /// Only the blog on PostgreSQL and the cluster behind nginx.
    pub postgres_only: bool,
    /// Only the static files against nginx.
    pub static_only: bool,
}

impl Options {
    /// Reads `--seconds N`, `--rounds N`, `--quick`, `--postgres` and
    /// `--static`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: 5,
            rounds: 3,
            postgres_only: false,
            static_only: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<u32, String> {
                args.next()
                    .and_then(|value| value.parse().ok())
                    .filter(|value| *value > 0)
                    .ok_or_else(|| format!("{name} needs a positive number"))
            };
            match arg.as_str() {
                "--seconds" => options.seconds = number("--seconds")?,
                "--rounds" => options.rounds = number("--rounds")?,
                "--postgres" => options.postgres_only = true,
                "--static" => options.static_only = true,
                "--quick" => {
                    options.seconds = 2;
                    options.rounds = 1;
                }
                other => {
                    return Err(format!(
                        "unknown option {other:?} (use --seconds N, --rounds N, --quick, --postgres, --static)"
                    ));
                }
            }
        }
        Ok(options)
    }
}
