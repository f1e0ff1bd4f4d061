//! `natsbridge completions SHELL`: the shell completion script, generated
//! from the command line's clap definitions.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the script for `command` (the whole `natsbridge` definition).
pub(crate) fn run(args: &CompletionsArgs, mut command: clap::Command) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "natsbridge", &mut script);
    crate::write_stdout(&script)
}
