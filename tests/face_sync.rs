//! Employee sync against SIMULATED face terminals on a real Mosquitto: a full sync lands every
//! person exactly where assigned; removals (re-import, end of validity) happen on time; a
//! console restart, a terminal killed mid-batch and one that keeps dropping off the network
//! mid-batch all finish without gaps; a terminal that stops answering is marked so (its
//! heartbeats notwithstanding) until it answers again; capacity and photo failures are reported per person; and the simulator counts any second batch sent while one
//! runs (every test asserts there was none). `watchfloor employees import` and
//! `watchfloor sync --wait` are run as a user would.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use watchfloor_core::facesync::{self, directory, SyncHandle, SyncTarget, TerminalProgress};
use watchfloor_core::settings::{BrokerUrl, FaceSettings, MqttSettings};
use watchfloor_core::store;
use watchfloor_sim::terminal::{self, SharedStore, TerminalConfig, TerminalStore};

struct Site {
    broker: Mosquitto,
    dir: tempfile::TempDir,
    db: PathBuf,
    face: FaceSettings,
    terminals: HashMap<
        String,
        (
            TerminalConfig,
            SharedStore,
            CancellationToken,
            JoinHandle<()>,
        ),
    >,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("face.jpg"), face_jpeg()).unwrap();
        Self {
            broker: Mosquitto::start(),
            db: dir.path().join("history.sqlite"),
            dir,
            face: FaceSettings {
                base_topic: "mqtt/face".into(),
                zone: chrono_tz::UTC,
                photo_listen: "127.0.0.1:0".parse().unwrap(),
                photo_url: None,
                sync_batch: 1000,
                terminal_zones: Default::default(),
                push_ack: true,
                sync: true,
                sync_retry_after: Duration::from_millis(300),
            },
            terminals: HashMap::new(),
        }
    }

    fn start_terminal(&mut self, cfg: TerminalConfig, store: SharedStore) {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(terminal::run(
            cfg.clone(),
            Arc::clone(&store),
            cancel.clone(),
        ));
        self.terminals
            .insert(cfg.id.clone(), (cfg, store, cancel, task));
    }

    fn add_terminal(&mut self, id: &str, per_person_ms: u64, capacity: usize) {
        let mut cfg = TerminalConfig::new(id, "127.0.0.1", self.broker.port);
        cfg.per_person = Duration::from_millis(per_person_ms);
        cfg.capacity = capacity;
        cfg.heartbeat = Duration::from_secs(2);
        self.start_terminal(cfg, Arc::new(Mutex::new(TerminalStore::default())));
    }

    /// Kills a terminal (no clean disconnect: the broker publishes its Offline will).
    async fn kill_terminal(&mut self, id: &str) -> (TerminalConfig, SharedStore) {
        let (cfg, store, cancel, task) = self.terminals.remove(id).unwrap();
        cancel.cancel();
        task.await.unwrap();
        (cfg, store)
    }

    fn store(&self, id: &str) -> std::sync::MutexGuard<'_, TerminalStore> {
        self.terminals[id].1.lock().unwrap()
    }

    fn persons(&self, id: &str) -> BTreeSet<String> {
        self.store(id).persons.keys().cloned().collect()
    }

    fn write_csv(&self, name: &str, rows: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut text =
            "employee_id,name,photo,terminals,valid_from,valid_to,person_type\n".to_owned();
        for r in rows {
            text += r;
            text += "\n";
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn import(&self, csv: &Path) -> facesync::ImportReport {
        facesync::import_file(&self.db, csv, chrono_tz::UTC, facesync::Removals::Any).unwrap()
    }

    fn start_sync(&self, only: &[String]) -> SyncHandle {
        facesync::start(SyncTarget {
            broker: BrokerUrl {
                host: "127.0.0.1".into(),
                port: self.broker.port,
                tls: false,
            },
            mqtt: MqttSettings {
                keep_alive: Duration::from_secs(5),
                ..MqttSettings::default()
            },
            client_id: "console-under-test",
            db: &self.db,
            face: &self.face,
            terminals: only,
        })
        .unwrap()
    }

    fn assert_no_second_batch(&self) {
        for (id, (_, store, _, _)) in &self.terminals {
            let s = store.lock().unwrap();
            assert_eq!(
                s.violations, 0,
                "{id} was sent a batch while one was running"
            );
        }
    }
}

async fn wait_settled(h: &SyncHandle, n: usize, within: Duration) -> Vec<TerminalProgress> {
    let mut rx = h.progress.clone();
    let done = tokio::time::timeout(
        within,
        rx.wait_for(|p| p.len() == n && p.iter().all(TerminalProgress::settled)),
    )
    .await;
    let last = h.progress.borrow().clone();
    assert!(
        done.is_ok(),
        "sync did not settle within {within:?}: {last:#?}"
    );
    last
}

/// Runs `watchfloor ARGS` to completion off the async runtime (the simulated terminals keep
/// running meanwhile): (exit code, stdout, stderr).
async fn cli(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_with_output(&args)
    })
    .await
    .unwrap()
}

/// `watchfloor sync --wait --timeout 60` on the site's file and broker, for these terminals.
async fn sync_cli(site: &Site, terminals: &[&str]) -> (i32, String, String) {
    let db = site.db.display().to_string();
    let broker = site.broker.url();
    let mut args = vec!["sync", "--db", &db, "--broker", &broker];
    for t in terminals {
        args.extend(["--terminal", t]);
    }
    args.extend(["--wait", "--timeout", "60"]);
    cli(&args).await
}

fn ids(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("E{i:05}")).collect()
}

fn local_in(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_lands_everyone_where_assigned_and_removals_happen_on_time() {
    let mut site = Site::new();
    for t in ["T1", "T2", "T3"] {
        site.add_terminal(t, 1, 50_000);
    }
    {
        let mut conn = store::open(&site.db).unwrap();
        directory::set_group(&mut conn, "gate", &["T2".into(), "T3".into()]).unwrap();
    }
    // 3,000 employees: a third everywhere, a third on T1, a third on the "gate" group.
    let n = 3000;
    let row = |i: usize, name: &str, valid_to: &str| {
        let terminals = ["", "T1", "gate"][i % 3];
        format!("E{i:05},{name} {i},face.jpg,{terminals},,{valid_to},")
    };
    let rows: Vec<String> = (0..n).map(|i| row(i, "Person", "")).collect();
    let report = site.import(&site.write_csv("staff.csv", &rows));
    assert_eq!(report.counts.added, n);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    tokio::time::sleep(Duration::from_millis(500)).await; // terminals connect
    let names: Vec<String> = ["T1", "T2", "T3"].map(String::from).to_vec();
    let h = site.start_sync(&names);
    let progress = wait_settled(&h, 3, Duration::from_secs(90)).await;
    let expect = |t: &str| -> BTreeSet<String> {
        (0..n)
            .filter(|i| match i % 3 {
                0 => true,
                1 => t == "T1",
                _ => t != "T1",
            })
            .map(|i| format!("E{i:05}"))
            .collect()
    };
    for t in ["T1", "T2", "T3"] {
        assert_eq!(
            site.persons(t),
            expect(t),
            "{t} holds exactly its assignment"
        );
        let s = site.store(t);
        assert!(
            s.persons.values().all(|p| p.writes == 1),
            "{t}: nobody sent twice"
        );
        assert!(s.online_acks > 0, "{t} got its Online-Ack");
    }
    for p in &progress {
        assert_eq!(p.failed, 0);
        assert_eq!(p.done as usize, expect(&p.terminal_id).len());
        assert!(
            p.ms_per_person.is_some(),
            "pacing measured {}",
            p.terminal_id
        );
    }
    site.assert_no_second_batch();

    // Re-import: E00003 leaves, E00006 is renamed, E00009 and E00012 end in 4 s.
    let mut rows: Vec<String> = (0..n)
        .filter(|i| *i != 3)
        .map(|i| match i {
            6 => row(i, "Renamed", ""),
            9 | 12 => row(i, "Person", &local_in(4)),
            _ => row(i, "Person", ""),
        })
        .collect();
    rows.sort();
    let report = site.import(&site.write_csv("staff2.csv", &rows));
    assert_eq!(
        (report.counts.updated, report.counts.removed),
        (3, 1),
        "{:?}",
        report.counts
    );
    // Imported as `watchfloor employees import` does, from another connection (a process of
    // its own beside a running sync): the sync sees the directory change and plans again by
    // itself. The progress reads settled until it has (later on a loaded machine): wait for
    // the removal itself, then for the rest of the work.
    let left = eventually(Duration::from_secs(30), || {
        ["T1", "T2", "T3"]
            .iter()
            .all(|t| !site.store(t).persons.contains_key("E00003"))
    });
    assert!(left, "the leaver is gone from every terminal");
    wait_settled(&h, 3, Duration::from_secs(30)).await;
    for t in ["T1", "T2", "T3"] {
        let s = site.store(t);
        assert!(!s.persons.contains_key("E00003"), "{t}: the leaver is gone");
        assert_eq!(s.persons["E00006"].name, "Renamed 6");
        assert_eq!(
            s.persons["E00006"].writes, 2,
            "{t}: only the difference is sent"
        );
        assert_eq!(
            s.persons["E00000"].writes, 1,
            "{t}: unchanged persons are not re-sent"
        );
        assert!(s.persons.contains_key("E00009"), "{t}: still valid");
    }
    // The end of validity removes them without another import.
    let gone = eventually(Duration::from_secs(15), || {
        ["T1", "T2", "T3"].iter().all(|t| {
            let s = site.store(t);
            !s.persons.contains_key("E00009") && !s.persons.contains_key("E00012")
        })
    });
    assert!(gone, "persons were removed when their validity ended");
    site.assert_no_second_batch();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_restart_and_a_terminal_killed_mid_batch_both_resume_without_gaps() {
    let mut site = Site::new();
    site.add_terminal("T1", 2, 50_000);
    let n = 2500;
    let rows: Vec<String> = (0..n)
        .map(|i| format!("E{i:05},Person {i},face.jpg,,,,"))
        .collect();
    site.import(&site.write_csv("staff.csv", &rows));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let only = vec!["T1".to_owned()];

    // Console A stops while the terminal is in the middle of a batch.
    let a = site.start_sync(&only);
    assert!(
        eventually(Duration::from_secs(30), || site.store("T1").persons.len()
            >= 300),
        "the sync started"
    );
    a.stop().await;
    let at_stop = site.store("T1").persons.len();
    assert!(at_stop < n, "stopped mid-sync ({at_stop} of {n})");

    // Console B on the same history file picks up where A stopped.
    let b = site.start_sync(&only);
    assert!(
        eventually(Duration::from_secs(30), || site.store("T1").persons.len()
            >= at_stop + 500),
        "the restarted console went on"
    );
    // The terminal loses power mid-batch and comes back a second later.
    let (cfg, store) = site.kill_terminal("T1").await;
    let at_kill = store.lock().unwrap().persons.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    site.start_terminal(cfg, store);

    let progress = wait_settled(&b, 1, Duration::from_secs(90)).await;
    assert_eq!(site.persons("T1"), ids(0..n), "every person, no gap");
    let (resent, most_writes) = {
        let s = site.store("T1");
        let resent = s.persons.values().filter(|p| p.writes > 1).count();
        (
            resent,
            s.persons.values().map(|p| p.writes).max().unwrap_or(0),
        )
    };
    assert!(
        most_writes <= 2,
        "at most the interrupted batches were sent again"
    );
    assert!(
        at_kill < n,
        "the terminal was killed mid-sync ({at_kill} of {n})"
    );
    assert_eq!(progress[0].failed, 0);
    eprintln!("restart test: {at_stop} stored at console stop, {at_kill} at terminal kill, {resent} sent twice");
    site.assert_no_second_batch();
    let inflight = query_i64(&site.db, "SELECT count(*) FROM sync_inflight");
    assert_eq!(inflight, 0, "every request was answered and forgotten");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_keeps_dropping_off_the_network_mid_batch_still_gets_everyone() {
    let mut site = Site::new();
    let mut cfg = TerminalConfig::new("T1", "127.0.0.1", site.broker.port);
    cfg.per_person = Duration::from_millis(2);
    cfg.heartbeat = Duration::from_secs(2);
    cfg.offline_rate = 0.5;
    cfg.offline_for = Duration::from_millis(1500);
    cfg.seed = 7;
    site.start_terminal(cfg, Arc::new(Mutex::new(TerminalStore::default())));
    // Batches of 50: a dozen chances to drop (none at all: 1 in 4,096).
    site.face.sync_batch = 50;
    let n = 600;
    let rows: Vec<String> = (0..n)
        .map(|i| format!("E{i:05},Person {i},face.jpg,,,,"))
        .collect();
    site.import(&site.write_csv("staff.csv", &rows));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = site.start_sync(&["T1".to_owned()]);
    let progress = wait_settled(&h, 1, Duration::from_secs(120)).await;
    assert_eq!(site.persons("T1"), ids(0..n), "every person, no gap");
    let drops = site.store("T1").drops;
    assert!(
        drops >= 1,
        "the terminal dropped off mid-batch at least once"
    );
    assert_eq!(progress[0].failed, 0);
    site.assert_no_second_batch();
    // What the terminal stored before each drop is not sent again: its batch went unanswered,
    // and the query after it shows those persons there.
    let twice: Vec<String> = site
        .store("T1")
        .persons
        .iter()
        .filter(|(_, p)| p.writes > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    eprintln!("drop test: {drops} drops");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_and_photo_failures_are_reported_per_person() {
    let mut site = Site::new();
    site.add_terminal("T1", 1, 40);
    let rows: Vec<String> = (0..50)
        .map(|i| {
            let photo = match i {
                0 => "gone.jpg",
                1 => "garbage.jpg",
                _ => "face.jpg",
            };
            format!("E{i:05},Person {i},{photo},,,,")
        })
        .collect();
    std::fs::write(site.dir.path().join("gone.jpg"), face_jpeg()).unwrap();
    std::fs::write(site.dir.path().join("garbage.jpg"), face_jpeg()).unwrap();
    let report = site.import(&site.write_csv("staff.csv", &rows));
    assert_eq!(report.counts.added, 50);
    // After the import: one photo disappears, one is replaced by something that is not a JPEG.
    std::fs::remove_file(site.dir.path().join("gone.jpg")).unwrap();
    std::fs::write(site.dir.path().join("garbage.jpg"), b"GIF89a not a face").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = site.start_sync(&["T1".to_owned()]);
    let progress = wait_settled(&h, 1, Duration::from_secs(60)).await;
    let conn = store::open_read_only(&site.db).unwrap();
    let failures = directory::failures(&conn, Some("T1")).unwrap();
    let by_id: HashMap<&str, &directory::Failure> = failures
        .iter()
        .map(|f| (f.employee_id.as_str(), f))
        .collect();
    assert_eq!(by_id["E00000"].errcode, 465);
    assert_eq!(by_id["E00000"].reason, "photo download failed or timed out");
    assert_eq!(
        by_id["E00000"].attempts, 3,
        "a download failure is retried, then reported"
    );
    assert_eq!(by_id["E00001"].errcode, 466);
    assert_eq!(
        by_id["E00001"].attempts, 1,
        "an unreadable photo is not retried"
    );
    let full: Vec<_> = failures.iter().filter(|f| f.errcode == 474).collect();
    let stored = site.store("T1").persons.len();
    assert_eq!(stored, 40);
    assert_eq!(full.len(), 8, "48 good persons, 40 places: {failures:#?}");
    assert!(full.iter().all(|f| f.reason == "terminal storage full"));
    assert_eq!(progress[0].failed, 10);
    assert!(progress[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("storage full")));
    site.assert_no_second_batch();
    h.stop().await;

    // The command line says the same, and exits 1 because persons failed.
    let out = sync_cli(&site, &["T1"]).await;
    assert_eq!(out.0, 1, "stdout: {}\nstderr: {}", out.1, out.2);
    assert!(
        out.1
            .contains("failed: E00001 on T1: 466 photo empty or unreadable"),
        "{}",
        out.1
    );
    assert!(out.1.contains("T1"), "{}", out.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_imports_and_syncs_to_completion() {
    let mut site = Site::new();
    site.add_terminal("T1", 1, 50_000);
    site.add_terminal("T2", 1, 50_000);
    let mut rows: Vec<String> = (0..200)
        .map(|i| format!("E{i:05},Person {i},face.jpg,,,,"))
        .collect();
    rows.push("E/9,Bad Id,face.jpg,,,,".into());
    let csv = site.write_csv("staff.csv", &rows);
    let db = site.db.display().to_string();
    let (code, stdout, _) =
        run_with_output(&["employees", "import", csv.to_str().unwrap(), "--db", &db]);
    assert_eq!(code, 1, "a refused row makes the import exit 1: {stdout}");
    assert!(
        stdout.contains("200 added, 0 updated, 0 unchanged, 0 removed, 1 rows refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 202: ?: employee_id contains '/'"),
        "{stdout}"
    );
    // A file of a few new hires: it would remove the 200, so nothing is imported without
    // --allow-removals.
    let hires = site.write_csv("hires.csv", &["N1,New One,face.jpg,,,,".to_owned()]);
    let (code, _, stderr) =
        run_with_output(&["employees", "import", hires.to_str().unwrap(), "--db", &db]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("leaves out 200 of the 200 employees")
            && stderr.contains("Nothing was imported")
            && stderr.contains("--allow-removals"),
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = sync_cli(&site, &["T1", "T2"]).await;
    assert_eq!(out.0, 0, "stdout: {}\nstderr: {}", out.1, out.2);
    for t in ["T1", "T2"] {
        assert!(
            out.1
                .lines()
                .any(|l| l.starts_with(t) && l.contains(" done ") && l.contains(" 200 ")),
            "{}",
            out.1
        );
        assert_eq!(site.persons(t), ids(0..200));
    }
    site.assert_no_second_batch();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_stops_answering_is_shown_so_until_it_answers_again() {
    // Not a simulated terminal: only its heartbeats, so the sync's requests go unanswered.
    let site = Site::new();
    let h = site.start_sync(&["MUTE".to_owned()]);
    let beat = r#"{"operator":"HeartBeat","info":{"facesluiceId":"MUTE","PersonNum":"0"}}"#;
    let mut rx = h.progress.clone();
    let heard = |p: &Vec<TerminalProgress>| p.iter().any(|t| t.online == Some(true));
    // Beat until the sync (subscribing as it starts) has heard one.
    let mut tries = 0;
    while !heard(&rx.borrow()) {
        assert!(tries < 60, "the sync never heard the heartbeat");
        tries += 1;
        publish(site.broker.port, "mqtt/face/heartbeat", beat, 1, false);
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
    }
    // Its answer to the sync's first request never comes (the deadline is 15 s at least).
    let silent = tokio::time::timeout(
        Duration::from_secs(40),
        rx.wait_for(|p| p.iter().any(|t| t.no_answer && t.online.is_none())),
    )
    .await
    .is_ok();
    assert!(silent, "not marked: {:#?}", h.progress.borrow());
    // Still beating is alive, not answering: online, and still marked.
    publish(site.broker.port, "mqtt/face/heartbeat", beat, 1, false);
    let beating = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|p| p.iter().any(|t| t.no_answer && t.online == Some(true))),
    )
    .await
    .is_ok();
    assert!(
        beating,
        "a heartbeat is not an answer: {:#?}",
        h.progress.borrow()
    );
    // It says Online (as a terminal does after a restart): it speaks to us again.
    let online = r#"{"messageId":"on-1","operator":"Online","info":{"facesluiceId":"MUTE"}}"#;
    publish(site.broker.port, "mqtt/face/basic", online, 1, false);
    let back = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|p| p.iter().any(|t| !t.no_answer && t.online == Some(true))),
    )
    .await
    .is_ok();
    assert!(back, "its Online clears it: {:#?}", h.progress.borrow());
    h.stop().await;
}
