//! `watchfloor`: the operator console, and its headless subcommands.
//!
//! This file is glue: it parses the command line ([`cli`]), builds one validated `Settings`, and
//! hands it to the desktop shell ([`desktop`], the only module that imports Tauri) or to a
//! headless command ([`headless`]; [`sync`] for employees and face terminals; [`review`] for
//! offline review and reports; [`credentials`] for the broker secrets in the OS keyring). Exit codes: 0 success, 1 runtime failure, 2 bad usage or
//! configuration.

mod cli;
mod credentials;
#[cfg(feature = "desktop")]
mod desktop;
mod headless;
mod review;
mod sync;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("watchfloor: {e}");
            return ExitCode::from(2);
        }
    };
    headless::init_logging();
    // Commands that connect to the broker take its secrets from the OS keyring; the others
    // (export, report, review, employees, terminals, credentials) never touch it.
    let connects = matches!(
        cli.command,
        None | Some(cli::Command::Record(_) | cli::Command::Sim(_) | cli::Command::Sync(_))
    );
    let settings = if connects {
        match settings.with_secrets(&watchfloor_core::credentials::OsKeyring) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("watchfloor: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        settings
    };
    match &cli.command {
        Some(cli::Command::Credentials { command }) => {
            return credentials::run(&settings, command, &watchfloor_core::credentials::OsKeyring)
        }
        Some(cli::Command::Export(args)) => {
            return headless::export(&settings.db_path, &args.query(settings.terminal_day_zone()))
        }
        Some(cli::Command::Report(args)) => {
            return review::report(&settings.db_path, args, settings.terminal_day_zone())
        }
        Some(cli::Command::Review(args)) if args.at.is_some() => {
            return review::review(args, &settings);
        }
        Some(cli::Command::Employees { command }) => return sync::employees(&settings, command),
        Some(cli::Command::Terminals { command }) => return sync::terminals(&settings, command),
        _ => {}
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("watchfloor: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Some(cli::Command::Record(args)) => runtime.block_on(headless::record(settings, args)),
        Some(cli::Command::Sim(args)) => runtime.block_on(headless::sim(settings, args)),
        Some(cli::Command::Sync(args)) => {
            return runtime.block_on(sync::sync(settings, args));
        }
        Some(
            cli::Command::Export(_)
            | cli::Command::Credentials { .. }
            | cli::Command::Report(_)
            | cli::Command::Employees { .. }
            | cli::Command::Terminals { .. },
        ) => unreachable!("handled above, without a runtime"),
        Some(cli::Command::Review(args)) => open_review(runtime, &settings, &args.file),
        None => open_console(runtime, settings, cli.common.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchfloor: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "desktop")]
fn open_console(
    runtime: tokio::runtime::Runtime,
    settings: watchfloor_core::Settings,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    desktop::run(runtime, settings, config_path)
}

#[cfg(feature = "desktop")]
fn open_review(
    runtime: tokio::runtime::Runtime,
    settings: &watchfloor_core::Settings,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    desktop::review::run(runtime, settings, file)
}

#[cfg(not(feature = "desktop"))]
fn open_review(
    _runtime: tokio::runtime::Runtime,
    _settings: &watchfloor_core::Settings,
    _file: &std::path::Path,
) -> anyhow::Result<()> {
    anyhow::bail!("this build has no window (built without the desktop feature): give --at TIME")
}

#[cfg(not(feature = "desktop"))]
fn open_console(
    _runtime: tokio::runtime::Runtime,
    _settings: watchfloor_core::Settings,
    _config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    anyhow::bail!("this build has no desktop console (built without the `desktop` feature); use `record` or `sim`")
}
