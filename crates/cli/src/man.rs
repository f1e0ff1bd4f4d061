//! `natsbridge man`: the manual page (roff), generated from the command
//! line's clap definitions, so it never disagrees with `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write natsbridge.1 and a natsbridge-SUBCOMMAND.1 page per subcommand
    /// into DIR (for `man -M` or a package's man1/) instead of printing
    /// natsbridge.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints `natsbridge(1)` for `command` (the whole `natsbridge`
/// definition): its options, and each subcommand with its summary; or, with
/// `--dir`, writes every page.
pub(crate) fn run(args: &ManArgs, command: clap::Command) -> ExitCode {
    let result = match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map(|()| ExitCode::SUCCESS),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).map(|()| crate::write_stdout(&page))
        }
    };
    result.unwrap_or_else(|e| {
        say!("natsbridge: writing the manual page: {e}");
        ExitCode::FAILURE
    })
}
