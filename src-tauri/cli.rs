//! The command line (clap): flags common to every command, the subcommands, and how a usage
//! error is reported (one line, exit status 2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use watchfloor_core::settings::{ConfigFile, Overrides, SettingsError};
use watchfloor_core::Settings;

/// Watchfloor: an operator console for fleets of MQTT field devices.
///
/// With no subcommand, opens the desktop console. With no --broker (and none in the config
/// file), starts an embedded MQTT broker on 127.0.0.1:1883 and connects to it.
#[derive(Debug, Parser)]
#[command(name = "watchfloor", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// External broker, mqtt://host:port or mqtts://host:port. Default: the embedded broker.
    #[arg(long, global = true, env = "WATCHFLOOR_BROKER", value_name = "URL")]
    pub broker: Option<String>,
    /// History database file. Default: the platform data dir (~/.local/share/watchfloor/history.sqlite).
    #[arg(long, global = true, env = "WATCHFLOOR_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// TOML config file; flags override its values.
    #[arg(long, global = true, env = "WATCHFLOOR_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address the embedded broker listens on (only without --broker). Default 127.0.0.1:1883.
    #[arg(long, global = true, env = "WATCHFLOOR_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Native topic prefix. Default: devices.
    #[arg(
        long,
        global = true,
        env = "WATCHFLOOR_TOPIC_PREFIX",
        value_name = "PREFIX"
    )]
    pub topic_prefix: Option<String>,
    /// MQTT client id. Default: a stable id kept in the history file.
    #[arg(long, global = true, env = "WATCHFLOOR_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// Also run N simulated devices in this process (labelled as simulated).
    #[arg(long, global = true, env = "WATCHFLOOR_SIMULATE", value_name = "N")]
    pub simulate: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline without a window until SIGINT/SIGTERM, then flush the history and exit 0.
    Record,
    /// Run simulated devices against a broker until SIGINT/SIGTERM.
    Sim(SimArgs),
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many devices (six vehicles, two body cameras, two sensors in every ten).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub devices: u32,
    /// Seed for routes and events; the same seed gives the same fleet.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

impl Cli {
    /// Config file, then flags, into validated settings.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let file = match &self.common.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let c = &self.common;
        Settings::resolve(
            file,
            Overrides {
                broker: c.broker.clone(),
                db: c.db.clone(),
                topic_prefix: c.topic_prefix.clone(),
                client_id: c.client_id.clone(),
                listen: c.listen.clone(),
                simulate: c.simulate,
            },
        )
    }
}

/// Prints help/version as clap does; any other parse error as one line, exit status 2.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim_start_matches("error: ");
    eprintln!("watchfloor: {first} (try --help)");
    ExitCode::from(2)
}
