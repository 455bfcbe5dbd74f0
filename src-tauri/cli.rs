//! The command line (clap): flags common to every command, the subcommands, and how a usage
//! error is reported (one line, exit status 2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use watchfloor_core::settings::{ConfigFile, Overrides, SettingsError};
use watchfloor_core::store::export::{ExportQuery, Format, Table};
use watchfloor_core::Settings;
use watchfloor_protocol::DeviceId;

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
    /// The operator's name in the incident audit trail. Default: the login name.
    #[arg(long, global = true, env = "WATCHFLOOR_OPERATOR", value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline without a window until SIGINT/SIGTERM/SIGHUP, then flush the history and
    /// exit 0.
    Record(RecordArgs),
    /// Run simulated devices against a broker until SIGINT/SIGTERM/SIGHUP.
    Sim(SimArgs),
    /// Write history rows to stdout as CSV, NDJSON or GeoJSON, or tracks as GeoJSON or KML
    /// (streamed; the file is opened read-only and may be in use by a running console).
    Export(ExportArgs),
    /// Reports over a time range (incidents and response times, device availability,
    /// attendance) as CSV or a printable HTML page, to stdout; the file is only read.
    Report(ReportArgs),
    /// Review a history file offline in the review window (no broker; the file is never
    /// written); with --at, print where every device was and how every incident stood at that
    /// instant as JSON instead.
    Review(ReviewArgs),
    /// The employee directory synced to face terminals.
    Employees {
        #[command(subcommand)]
        command: EmployeesCommand,
    },
    /// Face terminals: list them, define groups.
    Terminals {
        #[command(subcommand)]
        command: TerminalsCommand,
    },
    /// Sync employees to face terminals: send what is pending and print a per-terminal summary.
    Sync(SyncArgs),
    /// The broker's secrets in the OS keyring (the password of mqtt.username, the client key),
    /// for the broker given by --broker or the config file.
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Store the password of USERNAME (default: mqtt.username) at the broker. It is asked for
    /// without echo on a terminal, or read as one line from standard input.
    SetPassword {
        #[arg(long)]
        username: Option<String>,
    },
    /// Store a client certificate's PEM private key for the broker; afterwards mqtt.client_key
    /// can go (and the file with it).
    ImportKey {
        /// The PEM private key file.
        file: PathBuf,
    },
    /// Remove the broker's stored password (of USERNAME, default mqtt.username) and client key.
    Delete {
        #[arg(long)]
        username: Option<String>,
    },
    /// Say which secrets the keyring holds for the broker (never their values).
    Status {
        #[arg(long)]
        username: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EmployeesCommand {
    /// Import a CSV (employee_id,name,photo[,terminals,valid_from,valid_to,person_type]),
    /// applying the difference to the directory: adds, updates, removals.
    Import {
        /// The CSV file; photo paths are relative to its folder.
        file: PathBuf,
        /// Remove every employee the file leaves out, however many. Without it an import that
        /// would remove more than a twentieth of the directory (at least 10) imports nothing
        /// and says how many would go.
        #[arg(long)]
        allow_removals: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TerminalsCommand {
    /// List known terminals with their sync state.
    List,
    /// Set the members of a terminal group (no ids: delete the group).
    Group {
        /// The group's name, as the CSV's `terminals` column names it.
        name: String,
        /// Terminal ids (T-07, or face:T-07 as the console shows them).
        #[arg(value_parser = terminal_id)]
        terminals: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only these terminals (repeatable; T-07, or face:T-07 as the console shows them).
    /// Default: every known terminal.
    #[arg(long = "terminal", value_name = "ID", value_parser = terminal_id)]
    pub terminals: Vec<String>,
    /// Run until every terminal is in sync (or the timeout), then print the summary. Without
    /// it, sync keeps running (and keeps terminals in sync) until SIGINT/SIGTERM/SIGHUP.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 1 when work is left).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Serve metrics in Prometheus text format at http://ADDR/metrics (for example
    /// 127.0.0.1:9464). Off by default.
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which table.
    #[arg(long, value_enum)]
    pub what: ExportWhat,
    /// Output format (geojson: positions and events only).
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Only this device (its rows in device-time order).
    #[arg(long, value_name = "ID", value_parser = parse_device_id)]
    pub device: Option<DeviceId>,
    /// From this time, inclusive: RFC 3339 (2026-11-23T08:00:00Z), a date (2026-11-23: its
    /// midnight in the terminals' zone, [face] time_zone, else this workstation's) or epoch ms.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<TimeArg>,
    /// Up to this time, exclusive; same forms as --since.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<TimeArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportWhat {
    Positions,
    Events,
    Statuses,
    Quarantine,
    /// Positions as one line per device (geojson or kml).
    Tracks,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Geojson,
    Kml,
}

impl ExportArgs {
    /// The query, with dates read in `zone`.
    pub fn query(&self, zone: chrono_tz::Tz) -> ExportQuery {
        ExportQuery {
            table: match self.what {
                ExportWhat::Positions => Table::Positions,
                ExportWhat::Events => Table::Events,
                ExportWhat::Statuses => Table::Statuses,
                ExportWhat::Quarantine => Table::Quarantine,
                ExportWhat::Tracks => Table::Tracks,
            },
            format: match self.format {
                ExportFormat::Csv => Format::Csv,
                ExportFormat::Ndjson => Format::Ndjson,
                ExportFormat::Geojson => Format::Geojson,
                ExportFormat::Kml => Format::Kml,
            },
            device: self.device.clone(),
            since_ms: self.since.map(|t| t.ms_in(zone)),
            until_ms: self.until.map(|t| t.ms_in(zone)),
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(long, value_enum)]
    pub what: ReportWhat,
    #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
    pub format: ReportFormat,
    /// From this time, inclusive (same forms as export); default: the file's first record.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<TimeArg>,
    /// Up to this time, exclusive; default: just after the file's last record.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<TimeArg>,
    /// Availability: silences between fixes longer than this count as gaps (seconds).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub max_gap: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportWhat {
    /// Incidents by type and severity with response times (one line per incident in CSV).
    Incidents,
    /// Online time, fixes and silences per device.
    Availability,
    /// First in and last out per employee and day (the terminals' calendar days).
    Attendance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Html,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The history file (a copy from another workstation is fine, with or without its -wal).
    pub file: std::path::PathBuf,
    /// Print the picture at this instant instead of opening the window: RFC 3339, a date (its
    /// midnight in the terminals' zone, else this workstation's) or epoch ms.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<TimeArg>,
}

fn parse_device_id(raw: &str) -> Result<DeviceId, String> {
    DeviceId::parse_qualified(raw).map_err(|e| e.to_string())
}

/// A time given on the command line: an instant, or a calendar date whose midnight depends on
/// the zone it is read in (the terminals', else the workstation's: see
/// `Settings::terminal_day_zone`), so "2026-11-23" is that day where the site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    Instant(i64),
    Date(chrono::NaiveDate),
}

impl TimeArg {
    /// Epoch ms: the instant, or the date's first moment in `zone` (a zone that skips
    /// midnight on that day starts it at the first minute that exists).
    pub fn ms_in(self, zone: chrono_tz::Tz) -> i64 {
        use chrono::TimeZone;
        match self {
            TimeArg::Instant(ms) => ms,
            TimeArg::Date(d) => (0..=180)
                .find_map(|m| {
                    let t = d.and_time(chrono::NaiveTime::MIN) + chrono::Duration::minutes(m);
                    zone.from_local_datetime(&t).earliest()
                })
                .map_or_else(
                    || {
                        d.and_time(chrono::NaiveTime::MIN)
                            .and_utc()
                            .timestamp_millis()
                    },
                    |t| t.timestamp_millis(),
                ),
        }
    }
}

/// The least epoch milliseconds taken as such (1973-03-03): below it, a number is read as the
/// seconds or the date someone meant.
const MIN_EPOCH_MS: i64 = 100_000_000_000;

/// RFC 3339, a date, or epoch milliseconds.
fn parse_time(raw: &str) -> Result<TimeArg, String> {
    if let Ok(ms) = raw.parse::<i64>() {
        // Epoch seconds (1763856000) or a date without dashes (20261123) read as milliseconds
        // are moments in 1970, and a range from them took everything without a word. 0 is
        // "from the start".
        if ms != 0 && !(MIN_EPOCH_MS..).contains(&ms) {
            let read_as = chrono::DateTime::from_timestamp_millis(ms)
                .map_or_else(String::new, |t| {
                    t.format(" (%Y-%m-%d %H:%M:%S UTC)").to_string()
                });
            return Err(format!(
                "{raw} as epoch milliseconds is before 1973{read_as}: epoch seconds need three \
                 more digits, a date its dashes (2026-11-23)"
            ));
        }
        return Ok(TimeArg::Instant(ms));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(TimeArg::Instant(t.timestamp_millis()));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(TimeArg::Date(d));
    }
    Err("expected an RFC 3339 time (2026-11-23T08:00:00Z), a date (2026-11-23) or epoch ms".into())
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many devices (six vehicles, two body cameras, two sensors in every ten), at most
    /// 100,000 as for --simulate.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub devices: u32,
    /// Seed for routes and events; the same seed gives the same fleet.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Also simulate M face terminals (ids sim-terminal-1..M) speaking the mqtt/face protocol.
    #[arg(long, value_name = "M", default_value_t = 0)]
    pub terminals: u32,
    /// Simulated terminals: processing time per person in a batch.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub terminal_person_ms: u64,
    /// Simulated terminals: most persons each stores (474 beyond).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub terminal_capacity: usize,
    /// Simulated terminals: share of photos rejected with 468 "no face" (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub terminal_reject_rate: f64,
    /// Simulated terminals: seconds between access records (a stored person recognised, now
    /// and then refused, or a stranger captured); 0: none. Records are re-pushed until PushAck.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub terminal_records: f64,
    /// Simulated terminals: share of batches during which the terminal drops off the network
    /// for 3 s (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub terminal_offline_rate: f64,
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
                operator: c.operator.clone(),
            },
        )
    }
}

/// Prints help/version as clap does (a command named without the subcommand it needs: its
/// help, with exit status 2); any other parse error as one line, exit status 2.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    eprintln!(
        "watchfloor: {} (try --help)",
        one_line(&e.render().to_string())
    );
    ExitCode::from(2)
}

/// Clap's error message on one line: the error and what it says under it (the arguments
/// missing, the values possible, a similar argument), without the usage and the help hint.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part.trim_start_matches("error: "));
    }
    if line.is_empty() {
        line.push_str("invalid arguments");
    }
    line
}

/// A terminal id as written on the command line: its own (T-07) or the console's (face:T-07).
fn terminal_id(written: &str) -> Result<String, String> {
    Ok(watchfloor_protocol::face::terminal_id(written).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn a_date_is_its_midnight_where_the_site_is_and_an_instant_stays_one() {
        let date = parse_time("2026-11-23").unwrap();
        assert_eq!(date.ms_in(chrono_tz::UTC), utc("2026-11-23T00:00:00Z"));
        assert_eq!(
            date.ms_in(chrono_tz::Asia::Dubai),
            utc("2026-11-22T20:00:00Z")
        );
        let instant = parse_time("2026-11-23T08:00:00Z").unwrap();
        assert_eq!(
            instant.ms_in(chrono_tz::Asia::Dubai),
            utc("2026-11-23T08:00:00Z")
        );
        assert_eq!(
            parse_time("1700000000000").unwrap(),
            TimeArg::Instant(1_700_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        // Epoch seconds, or a date without its dashes, are not read as moments in 1970.
        for meant in ["1763856000", "20261123"] {
            let err = parse_time(meant).unwrap_err();
            assert!(
                err.contains("epoch seconds need three more digits"),
                "{err}"
            );
        }
        assert_eq!(
            parse_time("0").unwrap(),
            TimeArg::Instant(0),
            "from the start"
        );
        // Chile's clocks skip from 00:00 to 01:00 on the first Sunday of September: that
        // day starts at 01:00 there.
        assert_eq!(
            parse_time("2026-09-06")
                .unwrap()
                .ms_in(chrono_tz::America::Santiago),
            utc("2026-09-06T01:00:00-03:00")
        );
    }
}
