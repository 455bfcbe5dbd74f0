//! Employee device-sync for face-recognition terminals ("mqtt/face" family): the employee
//! directory, its CSV import, the photo endpoint terminals download from, and the engine that
//! keeps every terminal holding exactly the employees assigned to it.
//!
//! - [`directory`]: the tables (employees, terminals, groups, confirmed persons, failures,
//!   jobs, requests in flight) and their queries.
//! - [`import`]: reading and checking an employee CSV (photos included).
//! - [`photos`]: `GET /photo/{token}`, expiring unguessable URLs for persons in pending work.
//! - [`report`]: what the panels show (terminals with their job, employees, placements).
//! - [`engine`]: the per-terminal work loop (one request in flight, Acks by messageId,
//!   timeouts, retries, pacing by measured Ack time, pause while offline, scheduled removals).
//!
//! [`start`] runs the engine on its own MQTT connection (client id `{console}-sync`), so the
//! recording pipeline and the sync never wait on each other.

pub mod directory;
pub mod engine;
pub mod import;
pub mod photos;
pub mod report;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rumqttc::QoS;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use engine::{Control, SyncConfig, TerminalProgress};

use crate::link::{self, LinkConfig};
use crate::settings::{BrokerUrl, FaceSettings, MqttSettings};
use crate::store;
use crate::view::ConnectionView;

/// What [`import_file`] did.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ImportReport {
    pub counts: directory::ImportCounts,
    pub errors: Vec<import::RowError>,
    /// Removals not applied because some rows could not be read at all.
    pub removals_held: bool,
    /// Nothing was imported: the file leaves out more employees than an import removes
    /// unasked, and the operator must say so ([`Removals::Any`]).
    pub unconfirmed: Option<UnconfirmedRemovals>,
}

/// An import stopped before removing many employees.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct UnconfirmedRemovals {
    /// The file, to import again once confirmed.
    pub file: String,
    /// Employees on the directory now whom the file leaves out.
    #[ts(type = "number")]
    pub removing: u64,
    /// Employees on the directory now.
    #[ts(type = "number")]
    pub current: u64,
}

/// Whether an import may remove many employees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removals {
    /// As many as the file leaves out (`--allow-removals`).
    Any,
    /// Up to [`removals_without_asking`]; beyond, nothing is imported and the report says
    /// how many would go.
    Few,
    /// Up to this many (what the operator was told and confirmed); more (the file or the
    /// directory changed meanwhile) and nothing is imported, the report saying how many now.
    UpTo(u64),
}

/// How many employees an import removes without asking: a twentieth of the directory, and at
/// least 10. A file of the week's new hires imported as the
/// whole list would otherwise remove everyone else from every terminal at once (and bring
/// each of them back costs a photo download per terminal).
pub fn removals_without_asking(current: u64) -> u64 {
    (current / 20).max(10)
}

/// Imports an employee CSV into the history file at `db`, applying the difference.
pub fn import_file(
    db: &Path,
    csv: &Path,
    zone: chrono_tz::Tz,
    removals: Removals,
) -> anyhow::Result<ImportReport> {
    let parsed = import::read_csv(csv, zone)?;
    let mut conn = store::open(db)?;
    if parsed.employees.is_empty() && parsed.errors.is_empty() {
        // A header alone (an export that stopped, the wrong file) would remove everyone.
        let current: i64 = conn.query_row(
            "SELECT count(*) FROM employees WHERE removed_ms IS NULL",
            [],
            |r| r.get(0),
        )?;
        if current > 0 {
            anyhow::bail!(
                "{} lists no employees: importing it would remove all {current} from every \
                 terminal, so nothing was imported",
                csv.display()
            );
        }
    }
    if removals != Removals::Any && !parsed.unreadable_ids {
        let current = directory::employees(&conn)?;
        let listed: HashSet<&str> = parsed
            .employees
            .iter()
            .map(|e| e.employee_id.as_str())
            .collect();
        let keep = parsed.failed_ids();
        let removing = current
            .keys()
            .filter(|id| !listed.contains(id.as_str()) && !keep.contains(*id))
            .count() as u64;
        let current = current.len() as u64;
        let allowed = match removals {
            Removals::UpTo(n) => n,
            _ => removals_without_asking(current),
        };
        // Everyone, however few: a file of one new hire over a directory of ten.
        let everyone = removing > 0 && removing == current && removals == Removals::Few;
        if removing > allowed || everyone {
            return Ok(ImportReport {
                counts: directory::ImportCounts::default(),
                errors: parsed.errors,
                removals_held: false,
                unconfirmed: Some(UnconfirmedRemovals {
                    file: csv.display().to_string(),
                    removing,
                    current,
                }),
            });
        }
    }
    let counts = directory::apply_import(
        &mut conn,
        &parsed.employees,
        &parsed.failed_ids(),
        parsed.unreadable_ids,
        crate::clock::now_ms(),
    )?;
    Ok(ImportReport {
        counts,
        errors: parsed.errors,
        removals_held: parsed.unreadable_ids,
        unconfirmed: None,
    })
}

/// Where the sync connects and what it works on.
pub struct SyncTarget<'a> {
    pub broker: BrokerUrl,
    pub mqtt: MqttSettings,
    /// The console's client id; the sync connects as `{client_id}-sync`.
    pub client_id: &'a str,
    pub db: &'a Path,
    pub face: &'a FaceSettings,
    /// Terminals to work on (all known ones when empty); named ones are added if unknown.
    pub terminals: &'a [String],
}

/// A running sync: its progress, its controls and its connection.
pub struct SyncHandle {
    pub progress: watch::Receiver<Vec<TerminalProgress>>,
    pub control: mpsc::Sender<Control>,
    pub connection: watch::Receiver<ConnectionView>,
    pub photo_addr: std::net::SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// One sync per history file (two would drive the same terminals as one MQTT client).
    _lock: store::lock::HistoryLock,
}

impl SyncHandle {
    /// Stops the engine and disconnects.
    pub async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the sync beside a running console when `[face]` is on and `sync` is not turned off:
/// all terminals, the console's broker and history file.
pub fn start_for_console(
    settings: &crate::Settings,
    pipeline: &crate::Pipeline,
) -> anyhow::Result<Option<SyncHandle>> {
    let Some(face) = settings.face.as_ref().filter(|f| f.sync) else {
        return Ok(None);
    };
    start(SyncTarget {
        broker: pipeline.broker().clone(),
        mqtt: settings.mqtt.clone(),
        client_id: &pipeline.info().client_id,
        db: &settings.db_path,
        face,
        terminals: &[],
    })
    .map(Some)
}

/// Starts the photo endpoint, the engine and its MQTT link.
pub fn start(target: SyncTarget<'_>) -> anyhow::Result<SyncHandle> {
    link::check_client_transport(&target.broker, &target.mqtt)
        .map_err(|e| anyhow::anyhow!("the MQTT client certificate and key cannot be used: {e}"))?;
    let lock = store::lock::HistoryLock::acquire(target.db, store::lock::Role::Sync)?;
    let face = target.face;
    let photos = photos::PhotoServer::start(face.photo_listen, face.photo_url.clone())?;
    let photo_addr = photos.local_addr();
    let conn = store::open(target.db).context("opening the history file for the sync")?;
    let mut cfg = SyncConfig::new(&face.base_topic, face.zone);
    cfg.max_batch = face.sync_batch;
    cfg.retry_after = face.sync_retry_after;
    cfg.terminal_zones = face.terminal_zones.clone();
    if !target.terminals.is_empty() {
        cfg.only = Some(target.terminals.iter().cloned().collect::<HashSet<_>>());
    }
    let (out_tx, out_rx) = mpsc::channel(64);
    let engine = engine::Engine::new(cfg, conn, photos, out_tx, target.terminals)?;
    let base = &face.base_topic;
    let link_cfg = LinkConfig {
        broker: target.broker,
        client_id: format!("{}-sync", target.client_id),
        mqtt: target.mqtt,
        subscriptions: vec![
            (format!("{base}/+/Ack"), QoS::AtLeastOnce),
            (format!("{base}/basic"), QoS::AtLeastOnce),
            (format!("{base}/heartbeat"), QoS::AtMostOnce),
        ],
        clean_session: false,
        presence: false,
    };
    let cancel = CancellationToken::new();
    // Acks, statuses and heartbeats: small, but a misconfigured terminal may send anything.
    let (in_tx, in_rx) = link::inbound_queue(1024, 16 * 1024 * 1024);
    let (acker, ack_queue) = link::ack_channel();
    let (conn_tx, conn_rx) =
        watch::channel(ConnectionView::connecting(&link_cfg.broker.to_string()));
    let (ctl_tx, ctl_rx) = mpsc::channel(16);
    let (progress_tx, progress_rx) = watch::channel(Vec::new());
    let link_task = tokio::spawn(link::run(
        link_cfg,
        in_tx,
        ack_queue,
        conn_tx,
        out_rx,
        Arc::new(Notify::new()),
        cancel.child_token(),
    ));
    let io = engine::EngineIo {
        inbound: in_rx,
        acker,
        control: ctl_rx,
        progress: progress_tx,
    };
    let engine_task = spawn_engine(engine, io, cancel.child_token())?;
    Ok(SyncHandle {
        progress: progress_rx,
        control: ctl_tx,
        connection: conn_rx,
        photo_addr,
        cancel,
        tasks: vec![engine_task, link_task],
        _lock: lock,
    })
}

/// Runs the engine on a thread of its own with a single-threaded runtime: its directory reads and
/// writes are blocking SQLite calls, and a history file held locked by another process (or a slow
/// disk) must stall only the sync, never the console's pipeline on the shared runtime. The
/// returned task ends when the engine does.
fn spawn_engine(
    engine: engine::Engine,
    io: engine::EngineIo,
    cancel: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the sync engine's runtime")?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("watchfloor-sync".into())
        .spawn(move || {
            runtime.block_on(engine.run(io, cancel));
            let _ = done_tx.send(());
        })
        .context("starting the sync engine's thread")?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_listing_nobody_never_removes_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        std::fs::write(dir.path().join("a.jpg"), import::tests::jpeg(480, 640)).unwrap();
        let csv = dir.path().join("staff.csv");
        std::fs::write(&csv, "employee_id,name,photo\nE1,Ann,a.jpg\nE2,Bo,a.jpg\n").unwrap();
        let zone = chrono_tz::UTC;
        assert_eq!(
            import_file(&db, &csv, zone, Removals::Any)
                .unwrap()
                .counts
                .added,
            2
        );
        // The same header with no rows: refused, and both stay.
        std::fs::write(&csv, "employee_id,name,photo\n").unwrap();
        let err = import_file(&db, &csv, zone, Removals::Any)
            .unwrap_err()
            .to_string();
        assert!(err.contains("would remove all 2"), "{err}");
        let conn = store::open(&db).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM employees WHERE removed_ms IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 2);
        // One listed: the other is removed, as a re-import does.
        std::fs::write(&csv, "employee_id,name,photo\nE1,Ann,a.jpg\n").unwrap();
        assert_eq!(
            import_file(&db, &csv, zone, Removals::Few)
                .unwrap()
                .counts
                .removed,
            1
        );
    }

    #[test]
    fn a_file_leaving_out_many_employees_is_imported_only_when_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        std::fs::write(dir.path().join("a.jpg"), import::tests::jpeg(480, 640)).unwrap();
        let csv = dir.path().join("staff.csv");
        let staff = |ids: std::ops::Range<u32>| {
            let rows: String = ids.map(|i| format!("E{i},Person {i},a.jpg\n")).collect();
            std::fs::write(&csv, format!("employee_id,name,photo\n{rows}")).unwrap();
        };
        let zone = chrono_tz::UTC;
        let active = || -> i64 {
            store::open(&db)
                .unwrap()
                .query_row(
                    "SELECT count(*) FROM employees WHERE removed_ms IS NULL",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        staff(0..300);
        import_file(&db, &csv, zone, Removals::Few).unwrap();
        assert_eq!(active(), 300);
        // The week's 5 new hires, imported as if they were the whole list.
        staff(300..305);
        let stopped = import_file(&db, &csv, zone, Removals::Few).unwrap();
        assert_eq!(
            stopped.unconfirmed,
            Some(UnconfirmedRemovals {
                file: csv.display().to_string(),
                removing: 300,
                current: 300,
            })
        );
        assert_eq!(stopped.counts, directory::ImportCounts::default());
        assert_eq!(active(), 300, "nothing imported, nobody removed");
        // Fifteen leavers of 300 (a twentieth) go unasked; sixteen are asked about.
        staff(15..300);
        assert!(import_file(&db, &csv, zone, Removals::Few)
            .unwrap()
            .unconfirmed
            .is_none());
        assert_eq!(active(), 285);
        staff(31..300);
        assert!(import_file(&db, &csv, zone, Removals::Few)
            .unwrap()
            .unconfirmed
            .is_some());
        // Confirmed for fewer than it would remove now (the directory changed since the
        // question): asked again. Confirmed for as many: imported as it is.
        staff(300..305);
        let again = import_file(&db, &csv, zone, Removals::UpTo(284)).unwrap();
        assert_eq!(again.unconfirmed.map(|u| u.removing), Some(285));
        assert_eq!(active(), 285);
        let done = import_file(&db, &csv, zone, Removals::UpTo(285)).unwrap();
        assert_eq!((done.counts.added, done.counts.removed), (5, 285));
        assert_eq!(active(), 5);
        // A small directory is not wiped unasked either: one new hire over the five.
        staff(400..401);
        let stopped = import_file(&db, &csv, zone, Removals::Few).unwrap();
        assert_eq!(stopped.unconfirmed.map(|u| u.removing), Some(5));
    }
}
