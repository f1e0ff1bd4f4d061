//! `natsbridge`: the command line of the Rust natsbridge peer.
//!
//! Built on the `natsbridge` facade only. See `docs/cli.md` for the contract.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use natsbridge::Payload;

/// `eprintln!` that cannot panic: a line for the user on stderr, dropped
/// if stderr is closed (the terminal or the pipe reading it went away).
/// `eprintln!` panics then, and a panic in the task watching for stop
/// signals would leave the process deaf to SIGTERM.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod arrival;
mod completions;
mod connect;
mod demo;
mod dev;
mod exit;
mod fileserver;
mod hint;
mod inspect;
mod listen;
mod local;
mod man;
mod payload_arg;
mod progress;
mod receive;
mod repeat;
mod reply;
mod report;
mod request;
mod send;
mod show;
mod stop;
mod subject;
mod summary;
mod unpack;

/// The Rust peer of the natsbridge / msghandler message bridge over NATS.
#[derive(Debug, Parser)]
#[command(name = "natsbridge", version, about, long_about = None)]
#[command(override_usage = "natsbridge [OPTIONS] <COMMAND>")]
struct Cli {
    /// Log what happens on stderr: -v natsbridge's steps, -vv more detail
    /// (debug), -vvv everything (trace). Off by default. RUST_LOG, if set,
    /// replaces the filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How log lines are written: `text` for a person, `json` (one object
    /// per line: timestamp, level, target, message and fields) for a log
    /// collector. Logs go to stderr, and only with -v.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// The connection options given before the subcommand
    /// (`natsbridge -s URL send ...`): taken by the commands that connect,
    /// refused for the others.
    #[command(flatten)]
    nats: connect::NatsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an envelope from payloads and publish it (or only print it).
    // The usage lines are written out: clap's would list the options an
    // exported variable sets (`--server <URL>`) as if they were required.
    #[command(override_usage = "natsbridge send [OPTIONS] <SUBJECT> <PAYLOAD>...")]
    Send(Box<send::SendArgs>),
    /// Subscribe and show each envelope received (`--json`: one JSON line
    /// each).
    #[command(override_usage = "natsbridge listen [OPTIONS] <SUBJECT>")]
    Listen(listen::ListenArgs),
    /// Send a request envelope (its inbox named as NATS reply subject and in
    /// reply_to) and show the answer.
    #[command(override_usage = "natsbridge request [OPTIONS] <SUBJECT> <PAYLOAD>...")]
    Request(Box<request::RequestArgs>),
    /// Answer requests on a subject: with fixed payloads, their own
    /// payloads (--echo) or a command's output (--command); replicas share
    /// requests through a queue group. Registered as a NATS service
    /// ($SRV.PING/INFO/STATS); SIGTERM or Ctrl-C drains (answers what it
    /// was sent, exit 0), a second one stops at once.
    #[command(override_usage = "natsbridge reply [OPTIONS] <SUBJECT> <PAYLOAD>...\n       \
                                natsbridge reply [OPTIONS] <SUBJECT> --echo\n       \
                                natsbridge reply [OPTIONS] <SUBJECT> --command <CMD>")]
    Reply(reply::ReplyArgs),
    /// Run the seeds' walkthroughs end to end on a local nats-server and
    /// file server, and report what went which way.
    Demo(JsonArg),
    /// Read an envelope from a file (or `-` for stdin), fetch its link
    /// payloads, and show it (`--json`: its one-line report).
    #[command(override_usage = "natsbridge unpack [OPTIONS] <FILE>")]
    Unpack(unpack::UnpackArgs),
    /// Serve a web page on loopback showing the envelopes on SUBJECTs
    /// (default every subject) as they arrive, decoded, with their
    /// conversations; it can send too. Links are fetched only when asked.
    #[command(override_usage = "natsbridge inspect [OPTIONS] [SUBJECT]...")]
    Inspect(Box<inspect::InspectArgs>),
    /// Serve the Plik-compatible file store (the local claim-check default).
    Fileserver(fileserver::FileserverArgs),
    /// Start a nats-server (JetStream and WebSocket on) and the file server
    /// on free loopback ports, and the inspector page watching every
    /// subject; print their URLs, stop all on Ctrl-C.
    Dev(dev::DevArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff) generated from these definitions.
    Man(man::ManArgs),
}

impl Command {
    /// How the command was set up, for the hint after its error.
    fn situation(&self) -> hint::Situation {
        let link_store = match self {
            Command::Send(args) => args.link_store(),
            Command::Request(args) => args.link_store(),
            _ => true,
        };
        let jetstream = match self {
            Command::Send(args) => args.uses_jetstream(),
            Command::Listen(args) => args.uses_jetstream(),
            _ => false,
        };
        hint::Situation { link_store, jetstream }
    }

    /// Whether `--json` was given: the command's own error is then a JSON
    /// line too.
    fn json(&self) -> bool {
        match self {
            Command::Send(args) => args.output.json,
            Command::Listen(args) => args.json,
            Command::Request(args) => args.json,
            Command::Reply(args) => args.json,
            Command::Demo(args) => args.json,
            Command::Unpack(args) => args.json,
            Command::Inspect(args) => args.json,
            Command::Fileserver(args) => args.json,
            Command::Dev(args) => args.json,
            Command::Completions(_) | Command::Man(_) => false,
        }
    }
}

#[derive(Debug, Args)]
struct JsonArg {
    /// Print one JSON object on stdout instead of the human-readable text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = parse();
    // Generated from the definitions above; no runtime, no connection.
    match &cli.command {
        Command::Completions(args) => return completions::run(args, Cli::command()),
        Command::Man(args) => return man::run(args, Cli::command()),
        _ => {}
    }
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            say!("natsbridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (situation, json) = (cli.command.situation(), cli.command.json());
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        // Whoever read stdout stopped (`listen ... | head -1`): nothing
        // went wrong that is worth a message, as for `write_stdout`.
        Err(e) if e.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            let hint = hint::for_error(&e, situation);
            if json {
                say!("{}", report::command_error_line(&e, hint));
            } else {
                say!("natsbridge: {}", one_line(&e));
                if let Some(hint) = hint {
                    say!("hint: {hint}");
                }
            }
            exit::code(&e)
        }
    }
}

/// Sends `tracing` logs to stderr at the level `-v` asks for. Other crates
/// (the NATS client, hyper) stay at `warn`: their debug logs may show
/// server addresses with credentials.
/// The form of log lines (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(verbose: u8, format: LogFormat) {
    let filter = match verbose {
        0 => return,
        1 => "warn,natsbridge=info",
        2 => "warn,natsbridge=debug",
        _ => "warn,natsbridge=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// `url` without what must not be printed or sent on: the transport's one
/// redaction (user info gone, queries `?<redacted>`, each of a list).
pub(crate) use natsbridge::transport::redact_url;

/// An error and its causes on one line.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    report::chain(e.as_ref())
}

/// The command line, parsed: the connection options given before the
/// subcommand are laid under its own (and refused for a command that does
/// not connect, rather than silently ignored).
fn parse() -> Cli {
    let mut command = Cli::command();
    let matches = command.get_matches_mut();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    let leading = std::mem::take(&mut cli.nats);
    let Some((name, own)) = matches.subcommand() else { return cli };
    if let Command::Reply(args) = &cli.command
        && !args.has_answer()
    {
        command
            .find_subcommand_mut("reply")
            .expect("reply is a subcommand")
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "reply needs its answer: PAYLOAD..., --echo or --command <CMD>",
            )
            .exit();
    }
    let own_nats = match &mut cli.command {
        Command::Send(args) => Some(&mut args.nats),
        Command::Listen(args) => Some(&mut args.nats),
        Command::Request(args) => Some(&mut args.nats),
        Command::Reply(args) => Some(&mut args.nats),
        Command::Inspect(args) => Some(&mut args.nats),
        _ => None,
    };
    match own_nats {
        Some(nats) => *nats = std::mem::take(nats).with_leading(leading, &matches, own),
        None => {
            let given = connect::NATS_ARG_IDS.iter().find(|id| {
                matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            });
            if let Some(id) = given {
                command
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!("--{id} is a connection option and `natsbridge {name}` does not connect to NATS"),
                    )
                    .exit();
            }
        }
    }
    cli
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(mut args) => {
            let nats = std::mem::take(&mut args.nats);
            send::run(*args, &nats).await
        }
        Command::Unpack(args) => unpack::run(args).await,
        Command::Fileserver(args) => fileserver::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Inspect(mut args) => {
            let nats = std::mem::take(&mut args.nats);
            inspect::run(*args, &nats).await
        }
        Command::Listen(mut args) => {
            let nats = std::mem::take(&mut args.nats);
            listen::run(args, &nats).await
        }
        Command::Request(mut args) => {
            let nats = std::mem::take(&mut args.nats);
            request::run(*args, &nats).await
        }
        Command::Reply(mut args) => {
            let nats = std::mem::take(&mut args.nats);
            reply::run(args, &nats).await
        }
        Command::Demo(args) => demo::run(args.json).await,
        Command::Completions(_) | Command::Man(_) => unreachable!("handled before the runtime"),
    }
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from now on and returns the wait
/// for either: a service manager's stop is as graceful as a Ctrl-C.
/// Listening before the ready line is printed means a signal sent right
/// after it is not missed (its default action would end the process without
/// stopping the servers it started).
pub(crate) fn ctrl_c() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("interrupted (SIGINT)"),
                _ = terminate.recv() => tracing::info!("terminated (SIGTERM)"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// SIGINT and SIGTERM, one at a time, for a command that drains on the
/// first and stops on the second. Listening starts when this is made, so
/// that a signal from then on is never the default (immediate) exit.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(crate) fn new() -> anyhow::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for the next signal; returns the exit code that stopping at
    /// once on it gives ([`exit::INTERRUPTED`] or [`exit::TERMINATED`]).
    pub(crate) async fn next(&mut self) -> u8 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {
                    tracing::info!("interrupted (SIGINT)");
                    exit::INTERRUPTED
                }
                _ = self.terminate.recv() => {
                    tracing::info!("terminated (SIGTERM)");
                    exit::TERMINATED
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            exit::INTERRUPTED
        }
    }
}

pub(crate) fn print_json(json: &[u8]) -> anyhow::Result<()> {
    to_stdout(|out| {
        out.write_all(json)?;
        out.write_all(b"\n")
    })
}

/// Whoever read stdout has gone (a closed pipe): the command stops, and
/// exits 0 without a message.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes to stdout with `write` and flushes; a closed pipe is
/// [`StdoutClosed`] (only stdout's own errors are: a broken pipe to a
/// server or a child process stays an error).
pub(crate) fn to_stdout(
    write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match write(&mut stdout).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Writes a line to stdout ([`to_stdout`]).
pub(crate) fn print_line(line: impl std::fmt::Display) -> anyhow::Result<()> {
    to_stdout(|out| writeln!(out, "{line}"))
}

/// Writes generated text (a completion script, the manual page) to stdout;
/// a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn write_stdout(text: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say!("natsbridge: writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn parse_payloads(args: &[String]) -> anyhow::Result<Vec<Payload>> {
    payload_arg::parse_all(args).context(exit::BadInput)
}
