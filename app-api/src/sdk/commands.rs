//! Commands an app offers on the command line (Flask's `@app.cli.command`):
//! `host cmd MOUNT COMMAND ARGS...` runs one against the mount's instance
//! settings and the host's services, e.g. `host cmd admin create-user alice`.
//!
//! ```
//! use app_api::prelude::*;
//! use app_api::sdk::Commands;
//!
//! fn commands() -> Commands {
//!     Commands::new().command("greet", "NAME", "Says hello", |_mount: &Mount, args: &[String]| {
//!         let name = args.first().ok_or_else(|| Error::bad_request("usage: greet NAME"))?;
//!         Ok(format!("hello {name}"))
//!     })
//! }
//! # fn build(_mount: &Mount) -> Result<Router, Error> { Ok(Router::new()) }
//! app_api::export_app!(name: "hello", init: build, commands: commands);
//! # fn main() {}
//! ```

use std::{fmt, sync::Arc};

use super::{Error, Mount};

/// What a command runs: the mount and the arguments after the command's
/// name; returns what to print.
pub type CommandFn = Arc<dyn Fn(&Mount, &[String]) -> Result<String, Error> + Send + Sync>;

/// One command.
#[derive(Clone)]
pub struct Command {
    /// The name typed on the command line, e.g. `create-user`.
    pub name: String,
    /// Its arguments as usage shows them, e.g. `NAME`.
    pub usage: String,
    /// One line saying what it does.
    pub about: String,
    pub(crate) run: CommandFn,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("name", &self.name)
            .field("usage", &self.usage)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// The commands of an app.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    commands: Vec<Command>,
}

impl Commands {
    /// No commands.
    pub fn new() -> Commands {
        Commands::default()
    }

    /// Adds a command.
    pub fn command<F>(mut self, name: &str, usage: &str, about: &str, run: F) -> Commands
    where
        F: Fn(&Mount, &[String]) -> Result<String, Error> + Send + Sync + 'static,
    {
        self.commands.push(Command {
            name: name.to_owned(),
            usage: usage.to_owned(),
            about: about.to_owned(),
            run: Arc::new(run),
        });
        self
    }

    /// The commands, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter()
    }

    /// Runs the command named `arguments[0]` with the rest of `arguments`.
    pub fn run(&self, mount: &Mount, arguments: &[String]) -> Result<String, Error> {
        let (name, rest) = arguments
            .split_first()
            .ok_or_else(|| Error::bad_request("no command given"))?;
        let command = self
            .commands
            .iter()
            .find(|command| &command.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.commands.iter().map(|c| c.name.as_str()).collect();
                Error::bad_request(format!(
                    "no command named {name:?}; this app has: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
        (command.run)(mount, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_named_command_with_the_rest_of_the_arguments() {
        let commands = Commands::new()
            .command("echo", "WORDS...", "Prints its arguments", |_, args| {
                Ok(args.join(" "))
            })
            .command("fail", "", "Fails", |_, _| Err(Error::bad_request("no")));
        let mount = Mount::new("test", "/");
        let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            commands.run(&mount, &args(&["echo", "a", "b"])).unwrap(),
            "a b"
        );
        assert_eq!(
            commands
                .run(&mount, &args(&["fail"]))
                .unwrap_err()
                .message(),
            "no"
        );
        let unknown = commands.run(&mount, &args(&["nope"])).unwrap_err();
        assert_eq!(
            unknown.message(),
            "no command named \"nope\"; this app has: echo, fail"
        );
        assert!(commands.run(&mount, &[]).is_err());
    }
}
