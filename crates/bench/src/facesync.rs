//! `facesync`: E employees synced to T SIMULATED face terminals on one Mosquitto, from an empty
//! start. Reports the wall time and each terminal's utilisation: the time the terminal spent
//! processing batches (its own clock, in the simulator) over the wall time. Above 0.8 means the
//! console kept every terminal busy; the rest is Ack round trips, photo downloads queueing and
//! the first (small, measuring) batch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use watchfloor_core::facesync::{self, SyncTarget, TerminalProgress};
use watchfloor_core::settings::{BrokerUrl, FaceSettings, MqttSettings};
use watchfloor_sim::terminal::{self, TerminalConfig, TerminalStore};

use crate::broker::Mosquitto;

pub fn facesync(employees: usize, terminals: usize, person_ms: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(employees, terminals, person_ms))
}

async fn run(employees: usize, terminals: usize, person_ms: u64) -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let dir = tempfile::tempdir()?;
    // A JPEG header the import's checks accept (SOI + SOF0, 240x320): the simulator downloads
    // it for every person, as a terminal downloads each picURI.
    let mut jpeg = vec![
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x40, 0x00, 0xF0,
    ];
    jpeg.extend([
        0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9,
    ]);
    std::fs::write(dir.path().join("face.jpg"), &jpeg)?;
    let mut csv = String::from("employee_id,name,photo\n");
    for i in 0..employees {
        csv += &format!("E{i:06},Person {i},face.jpg\n");
    }
    let csv_path = dir.path().join("staff.csv");
    std::fs::write(&csv_path, csv)?;
    let db = dir.path().join("history.sqlite");
    let t0 = Instant::now();
    let report = facesync::import_file(&db, &csv_path, chrono_tz::UTC, facesync::Removals::Any)?;
    let import_s = t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.errors.is_empty(),
        "import refused rows: {:?}",
        report.errors
    );

    let cancel = CancellationToken::new();
    let mut stores = Vec::new();
    let mut names = Vec::new();
    for i in 0..terminals {
        let id = format!("T{i:03}");
        let mut cfg = TerminalConfig::new(&id, "127.0.0.1", broker.port);
        cfg.per_person = Duration::from_millis(person_ms);
        let store = Arc::new(Mutex::new(TerminalStore::default()));
        tokio::spawn(terminal::run(cfg, Arc::clone(&store), cancel.child_token()));
        stores.push(store);
        names.push(id);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let face = FaceSettings {
        base_topic: "mqtt/face".into(),
        zone: chrono_tz::UTC,
        photo_listen: "127.0.0.1:0".parse()?,
        photo_url: None,
        sync_batch: 1000,
        terminal_zones: Default::default(),
        push_ack: true,
        sync: true,
        sync_retry_after: Duration::from_secs(60),
    };
    let started = Instant::now();
    let handle = facesync::start(SyncTarget {
        broker: BrokerUrl {
            host: "127.0.0.1".into(),
            port: broker.port,
            tls: false,
        },
        mqtt: MqttSettings {
            keep_alive: Duration::from_secs(30),
            ..MqttSettings::default()
        },
        client_id: "bench",
        db: &db,
        face: &face,
        terminals: &names,
    })?;
    let mut rx = handle.progress.clone();
    rx.wait_for(|p: &Vec<TerminalProgress>| {
        p.len() == terminals && p.iter().all(TerminalProgress::settled)
    })
    .await?;
    let wall = started.elapsed();
    let progress = handle.progress.borrow().clone();
    handle.stop().await;
    cancel.cancel();

    let mut util: Vec<f64> = stores
        .iter()
        .map(|s| s.lock().expect("store").busy.as_secs_f64() / wall.as_secs_f64())
        .collect();
    util.sort_by(f64::total_cmp);
    let stored: usize = stores
        .iter()
        .map(|s| s.lock().expect("store").persons.len())
        .sum();
    let violations: u64 = stores
        .iter()
        .map(|s| s.lock().expect("store").violations)
        .sum();
    let failed: u64 = progress.iter().map(|p| p.failed).sum();
    let ideal = employees as f64 * person_ms as f64 / 1000.0;
    println!("| employees | terminals | per person | import | wall | ideal (terminal-bound) | utilisation min / median / mean | persons stored | failed | second batches |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {employees} | {terminals} | {person_ms} ms | {import_s:.1} s | {:.1} s | {ideal:.1} s | {:.2} / {:.2} / {:.2} | {stored} | {failed} | {violations} |",
        wall.as_secs_f64(),
        util[0],
        util[util.len() / 2],
        util.iter().sum::<f64>() / util.len() as f64,
    );
    anyhow::ensure!(stored == employees * terminals, "not everyone landed");
    Ok(())
}
