//! The employee-sync commands: `employees import`, `terminals list|group`, `sync`, and the
//! simulated terminals of `sim --terminals`. Each is a thin caller of
//! `watchfloor_core::facesync`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use watchfloor_core::facesync::{self, directory, SyncTarget, TerminalProgress};
use watchfloor_core::settings::FaceSettings;
use watchfloor_core::store::{self, meta};
use watchfloor_core::Settings;
use watchfloor_sim::terminal::{self as simterm, TerminalConfig, TerminalStore};

use crate::cli::{EmployeesCommand, SimArgs, SyncArgs, TerminalsCommand};

fn face(settings: &Settings) -> Result<&FaceSettings, ExitCode> {
    settings.face.as_ref().ok_or_else(|| {
        eprintln!("watchfloor: face terminals are turned off ([face] enabled = false)");
        ExitCode::from(2)
    })
}

/// `watchfloor employees import FILE`.
pub fn employees(settings: &Settings, command: &EmployeesCommand) -> ExitCode {
    let face = match face(settings) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let EmployeesCommand::Import {
        file,
        allow_removals,
    } = command;
    let removals = if *allow_removals {
        facesync::Removals::Any
    } else {
        facesync::Removals::Few
    };
    match facesync::import_file(&settings.db_path, file, face.zone, removals) {
        Ok(facesync::ImportReport {
            unconfirmed: Some(u),
            errors,
            ..
        }) => {
            let report_errors = errors.len();
            eprintln!(
                "watchfloor: {} leaves out {} of the {} employees in the directory: importing it \
                 would remove them from every terminal. Nothing was imported; if that is meant, \
                 run it again with --allow-removals{}",
                file.display(),
                u.removing,
                u.current,
                match report_errors {
                    0 => String::new(),
                    n =>
                        format!(" ({n} rows of it cannot be imported either; they are listed then)"),
                }
            );
            ExitCode::from(1)
        }
        Ok(report) => {
            let printed = (|| -> std::io::Result<()> {
                let mut out = std::io::stdout().lock();
                let c = &report.counts;
                writeln!(
                    out,
                    "{} added, {} updated, {} unchanged, {} removed, {} rows refused",
                    c.added,
                    c.updated,
                    c.unchanged,
                    c.removed,
                    report.errors.len()
                )?;
                for e in &report.errors {
                    let who = e.employee_id.as_deref().unwrap_or("?");
                    writeln!(out, "line {}: {who}: {}", e.line, e.reason)?;
                }
                if report.removals_held {
                    writeln!(out, "removals were not applied: some rows could not be read at all; fix them and import again")?;
                }
                Ok(())
            })();
            if let Err(e) = printed.map_err(anyhow::Error::from) {
                if !is_broken_pipe(&e) {
                    eprintln!("watchfloor: {e}");
                }
            }
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("watchfloor: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The reader of our output went away (`| head` has what it wanted): not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `watchfloor terminals list|group`.
pub fn terminals(settings: &Settings, command: &TerminalsCommand) -> ExitCode {
    let result = (|| -> anyhow::Result<()> {
        // Listing a file that is not there is a typo, not a new history file to create.
        if matches!(command, TerminalsCommand::List) && !settings.db_path.is_file() {
            anyhow::bail!("history file {} does not exist", settings.db_path.display());
        }
        // A listing only reads: it neither upgrades the file's schema (an older console's
        // copy would then be refused by it) nor needs write access.
        let mut conn = match command {
            TerminalsCommand::List => {
                let conn = store::open_read_only(&settings.db_path)?;
                let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                if found < store::migration::TERMINALS_FROM {
                    anyhow::bail!(
                        "history file {} is from a Watchfloor before face terminals (schema \
                         {found}): it holds none",
                        settings.db_path.display()
                    );
                }
                conn
            }
            TerminalsCommand::Group { .. } => store::open(&settings.db_path)?,
        };
        let mut out = std::io::stdout().lock();
        match command {
            TerminalsCommand::List => {
                let groups = directory::groups(&conn)?;
                // The file's view: what the last sync to run heard, and when.
                let now = watchfloor_core::clock::now_ms();
                writeln!(
                    out,
                    "{:<24} {:<20} {:>8} {:<16} {:<10} last error",
                    "terminal", "last heard", "persons", "ip", "job"
                )?;
                for t in directory::terminals(&conn)? {
                    let job = directory::job(&conn, &t.terminal_id)?;
                    let job = job.map_or("-".to_owned(), |j| {
                        format!("{} {}/{}", j.state, j.done, j.total)
                    });
                    let heard = t.last_seen_ms.map_or("never".to_owned(), |at| {
                        let state = if t.online { "online" } else { "offline" };
                        format!("{state}, {} min ago", (now - at).max(0) / 60_000)
                    });
                    writeln!(
                        out,
                        "{:<24} {:<20} {:>8} {:<16} {:<10} {}",
                        t.terminal_id,
                        heard,
                        t.person_count.map_or("-".into(), |n| n.to_string()),
                        t.ip.as_deref().unwrap_or("-"),
                        job,
                        t.last_error.as_deref().unwrap_or("")
                    )?;
                }
                let mut names: Vec<_> = groups.into_iter().collect();
                names.sort();
                for (g, members) in names {
                    writeln!(out, "group {g}: {}", members.join(", "))?;
                }
            }
            TerminalsCommand::Group { name, terminals } => {
                if let Some(problem) = directory::group_name_problem(name) {
                    anyhow::bail!(problem);
                }
                directory::set_group(&mut conn, name, terminals)?;
                writeln!(out, "group {name}: {} terminals", terminals.len())?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchfloor: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `watchfloor sync`: exit 0 when every terminal is in sync with no person failed, 1 otherwise.
pub async fn sync(settings: Settings, args: SyncArgs) -> ExitCode {
    let face = match face(&settings) {
        Ok(f) => f.clone(),
        Err(code) => return code,
    };
    // SIGTERM and SIGHUP (systemd, a logout) stop it as Ctrl-C does: cleanly, with the summary.
    let mut stop = match crate::headless::StopSignal::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("watchfloor: {e:#}");
            return ExitCode::from(1);
        }
    };
    let client_id = match store::open(&settings.db_path).and_then(|c| {
        Ok(match settings.client_id.clone() {
            Some(id) => id,
            None => meta::client_id(&c)?,
        })
    }) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("watchfloor: {e}");
            return ExitCode::from(1);
        }
    };
    let handle = match facesync::start(SyncTarget {
        broker: settings.broker_url(),
        mqtt: settings.mqtt.clone(),
        client_id: &client_id,
        db: &settings.db_path,
        face: &face,
        terminals: &args.terminals,
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("watchfloor: {e:#}");
            return ExitCode::from(1);
        }
    };
    let mut progress = handle.progress.clone();
    let settled =
        |p: &Vec<TerminalProgress>| !p.is_empty() && p.iter().all(TerminalProgress::settled);
    if args.wait {
        tokio::select! {
            waited = tokio::time::timeout(
                Duration::from_secs(args.timeout),
                progress.wait_for(settled),
            ) => {
                if waited.is_err() {
                    eprintln!("watchfloor: sync did not finish within {} s", args.timeout);
                }
            }
            _ = stop.wait() => eprintln!("watchfloor: stopped before the sync finished"),
        }
    } else {
        tracing::info!("syncing until SIGINT/SIGTERM/SIGHUP");
        let _ = stop.wait().await;
    }
    stop.exit_on_second();
    let last = progress.borrow().clone();
    handle.stop().await;
    print_summary(&settings, &last)
}

/// Prints the per-terminal summary (to stdout, whole: a reader that stops early, `| head`,
/// does not cut the exit status short); exit 0 when every terminal is in sync.
fn print_summary(settings: &Settings, progress: &[TerminalProgress]) -> ExitCode {
    use std::fmt::Write as _;
    if progress.is_empty() {
        eprintln!("no face terminals known: they appear once they come online (or name them with --terminal)");
        return ExitCode::from(1);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<7} {:<10} {:>7} {:>7} {:>7} {:>9} {:>6}  last error",
        "terminal", "online", "state", "done", "failed", "pending", "persons/s", "util"
    );
    let mut clean = true;
    for p in progress {
        clean &= p.settled() && p.failed == 0;
        let _ = writeln!(
            out,
            "{:<24} {:<7} {:<10} {:>7} {:>7} {:>7} {:>9.1} {:>6.2}  {}",
            p.terminal_id,
            match (p.online, p.no_answer) {
                (_, true) => "silent",
                (Some(true), false) => "yes",
                (Some(false), false) => "no",
                (None, false) => "?",
            },
            p.state,
            p.done,
            p.failed,
            p.pending
                .map_or("?".into(), |n| (n + p.in_flight).to_string()),
            p.throughput,
            p.utilisation,
            p.last_error.as_deref().unwrap_or("")
        );
    }
    if let Ok(conn) = store::open_read_only(&settings.db_path) {
        if let Ok(failures) = directory::failures(&conn, None) {
            let blocking: Vec<_> = failures
                .iter()
                .filter(|f| progress.iter().any(|p| p.terminal_id == f.terminal_id))
                .collect();
            clean &= blocking.is_empty();
            for f in blocking {
                let _ = writeln!(
                    out,
                    "failed: {} on {}: {} {} ({} attempts)",
                    f.employee_id, f.terminal_id, f.errcode, f.reason, f.attempts
                );
            }
        }
    }
    // A reader gone (a broken pipe) takes only the output with it.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The SIMULATED terminals of `sim --terminals M`, stopped with `cancel`.
pub fn spawn_terminals(
    settings: &Settings,
    args: &SimArgs,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let url = settings.broker_url();
    let base = settings
        .face
        .as_ref()
        .map_or("mqtt/face".to_owned(), |f| f.base_topic.clone());
    (1..=args.terminals)
        .map(|i| {
            let mut cfg = TerminalConfig::new(&format!("sim-terminal-{i}"), &url.host, url.port);
            cfg.base_topic = base.clone();
            cfg.transport = watchfloor_core::link::client_transport(&url, &settings.mqtt);
            cfg.credentials = settings.mqtt.credentials.clone();
            cfg.per_person = Duration::from_millis(args.terminal_person_ms);
            cfg.capacity = args.terminal_capacity;
            cfg.reject_rate = args.terminal_reject_rate.clamp(0.0, 1.0);
            cfg.offline_rate = args.terminal_offline_rate.clamp(0.0, 1.0);
            cfg.records = (args.terminal_records > 0.0)
                .then(|| Duration::from_secs_f64(args.terminal_records.min(86_400.0)));
            cfg.seed = args.seed.wrapping_add(u64::from(i));
            let store = Arc::new(Mutex::new(TerminalStore::default()));
            tokio::spawn(simterm::run(cfg, store, cancel.child_token()))
        })
        .collect()
}
