//! `watchfloor-bench`: the measurements behind docs/BENCHMARKS.md. Each subcommand prints a
//! Markdown table row set with its method, so a rerun can be pasted beside the recorded one.
//!
//! - `ingest`: `watchfloor record` and `mosquitto_sub` subscribed to the same Mosquitto, one
//!   publisher sending N QoS 0 location messages as fast as it can; how long each takes to take
//!   in the whole stream (for `record`: until every row is committed to SQLite).
//! - `writer`: the history writer alone, positions (QoS 0 path) and acknowledged events (QoS 1
//!   path): rows/s, and for events the time from queueing to acknowledgement, p50/p99.
//! - `prune`: age pruning a chunk at a time, as the writer does between batches: time per
//!   chunk with no incident and with open incidents whose evidence it keeps.
//! - `memory`: resident memory of `watchfloor record` holding N live devices.
//! - `facesync`: E employees synced to T simulated face terminals: wall time and terminal
//!   utilisation.
//! - `panel`: the Employees panel's refresh with E employees on T terminals: the whole list
//!   against the unchanged-version check, and what the version's triggers cost the sync.
//! - `attendance`: the Attendance panel's daily report with E employees recognised R times a
//!   day for D days: the page it shows against the whole report, and the CSV export.
//! - `latency`: MQTT receipt to UI batch emitted, p50/p99, with D devices reporting at R Hz
//!   (read from the recorder's own 10 s summary, which measures it for the status bar).
//! - `fleet`: a paced fleet of D devices at R Hz, stamped with the wall clock, published to a
//!   broker on 127.0.0.1 until it is stopped (or for S seconds): the load for the screen
//!   benchmark (`scripts/bench-ui.mjs`), from a process of its own.
//! - `chaos`: the fault campaign of docs/RELIABILITY.md (broker restarts, a network cut, kill -9
//!   mid-ingest and mid-sync, a full disk, a reconnect storm): sent, stored, lost, memory.
//! - `gen-history` / `review`: a month of a fleet written to a history file, and what a
//!   reviewer waits for on it (open and first frame, scrubbing, a 24-hour track, reports).

mod attendance;
mod broker;
mod chaos;
mod facesync;
mod ingest;
mod panel;
mod review;
mod writer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "watchfloor-bench",
    about = "Watchfloor benchmarks (docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// record vs mosquitto_sub on one stream of QoS 0 locations.
    Ingest {
        /// The watchfloor binary to measure (build it with --release).
        #[arg(long, default_value = "target/release/watchfloor")]
        watchfloor: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
        #[arg(long, default_value_t = 1_000)]
        devices: u32,
    },
    /// The history writer alone.
    Writer {
        #[arg(long, default_value_t = 500_000)]
        rows: u64,
        #[arg(long, default_value_t = 20_000)]
        events: u64,
    },
    /// Age pruning, with and without open incidents keeping their evidence.
    Prune {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Devices with an open incident (of 1,000).
        #[arg(long, default_value_t = 1_000)]
        open: u64,
    },
    /// Resident memory of `watchfloor record` with N live devices.
    Memory {
        #[arg(long, default_value = "target/release/watchfloor")]
        watchfloor: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        devices: u32,
        /// Fixes per device, a second apart in device time (600 fills every trail).
        #[arg(long, default_value_t = 3)]
        fixes: u32,
    },
    /// Employees synced to simulated face terminals.
    Facesync {
        #[arg(long, default_value_t = 20_000)]
        employees: usize,
        #[arg(long, default_value_t = 50)]
        terminals: usize,
        /// The simulated terminals' processing time per person.
        #[arg(long, default_value_t = 10)]
        person_ms: u64,
    },
    /// The Employees panel's refresh: whole list vs unchanged check.
    Panel {
        #[arg(long, default_value_t = 20_000)]
        employees: usize,
        #[arg(long, default_value_t = 50)]
        terminals: usize,
        /// Whole-list reads to time (the unchanged check is timed at least 20 times).
        #[arg(long, default_value_t = 10)]
        reads: usize,
    },
    /// The Attendance panel's daily report: its page against the whole report.
    Attendance {
        #[arg(long, default_value_t = 20_000)]
        employees: usize,
        #[arg(long, default_value_t = 28)]
        days: u32,
        #[arg(long, default_value_t = 4)]
        per_day: u32,
        #[arg(long, default_value_t = 24)]
        terminals: usize,
        /// Reads of each page to time (the whole reports are timed at most 3 times).
        #[arg(long, default_value_t = 10)]
        reads: usize,
    },
    /// Receipt-to-batch latency at a steady load.
    Latency {
        #[arg(long, default_value = "target/release/watchfloor")]
        watchfloor: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        devices: u32,
        #[arg(long, default_value_t = 2)]
        hz: u32,
        #[arg(long, default_value_t = 35)]
        seconds: u64,
    },
    /// The fault campaign (docs/RELIABILITY.md): every scenario, or those named.
    Chaos {
        #[arg(long, default_value = "target/release/watchfloor")]
        watchfloor: PathBuf,
        /// restarts, cut, kill, disk, storm, sync (default: all).
        scenarios: Vec<String>,
    },
    /// Publishes a moving fleet at a steady rate (the screen benchmark's load).
    Fleet {
        /// The broker's port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 1_000)]
        devices: u32,
        #[arg(long, default_value_t = 2)]
        hz: u32,
        #[arg(long, default_value_t = 3_600)]
        seconds: u64,
    },
    /// Writes a generated history file (default: 250 devices x 30 days x 1/min = 10.8M fixes).
    GenHistory {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 250)]
        devices: u32,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 60)]
        interval_s: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One event in this many opens an incident (with its audit trail).
        #[arg(long, default_value_t = 10)]
        incident_every: u64,
    },
    /// Review timings on a history file.
    Review {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 200)]
        scrubs: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest {
            watchfloor,
            messages,
            devices,
        } => ingest::ingest(&watchfloor, messages, devices),
        Command::Writer { rows, events } => writer::writer(rows, events),
        Command::Prune { events, open } => writer::prune(events, open),
        Command::Memory {
            watchfloor,
            devices,
            fixes,
        } => ingest::memory(&watchfloor, devices, fixes),
        Command::Facesync {
            employees,
            terminals,
            person_ms,
        } => facesync::facesync(employees, terminals, person_ms),
        Command::Panel {
            employees,
            terminals,
            reads,
        } => panel::panel(employees, terminals, reads),
        Command::Attendance {
            employees,
            days,
            per_day,
            terminals,
            reads,
        } => attendance::attendance(employees, days, per_day, terminals, reads),
        Command::Latency {
            watchfloor,
            devices,
            hz,
            seconds,
        } => ingest::latency(&watchfloor, devices, hz, seconds),
        Command::Chaos {
            watchfloor,
            scenarios,
        } => chaos::run(&watchfloor, &scenarios),
        Command::Fleet {
            port,
            devices,
            hz,
            seconds,
        } => {
            let sent = ingest::runtime()?
                .block_on(broker::publish_live_fleet(port, devices, hz, seconds))?;
            println!("fleet: {sent} fixes sent ({devices} devices x {hz} Hz for {seconds} s)");
            Ok(())
        }
        Command::GenHistory {
            out,
            devices,
            days,
            interval_s,
            seed,
            incident_every,
        } => review::generate(&out, devices, days, interval_s, seed, incident_every),
        Command::Review { db, scrubs } => review::measure(&db, scrubs),
    }
}
