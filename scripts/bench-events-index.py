#!/usr/bin/env python3
# Migrations 7 (the events (device_id, ts_ms) index) and 8 (events (device_id, type, ts_ms),
# what pruning asks to keep an open incident's evidence) on a synthetic events table: how long
# each takes once on an existing file, and what 7 saves the device panel. Usage:
#   python3 scripts/bench-events-index.py EVENTS DEVICES   (see docs/BENCHMARKS.md)
import os, sqlite3, sys, tempfile, time

n = int(sys.argv[1]); devices = int(sys.argv[2])
folder = tempfile.mkdtemp(prefix="watchfloor-bench-index-")
path = os.path.join(folder, "events.sqlite")
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode=WAL")
c.execute("""CREATE TABLE events (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, event_id TEXT NOT NULL,
 ts_ms INTEGER NOT NULL, type TEXT NOT NULL, severity TEXT NOT NULL, message TEXT, lat REAL, lon REAL,
 received_ms INTEGER NOT NULL, UNIQUE (device_id, event_id)) STRICT""")
c.execute("CREATE INDEX events_by_time ON events (ts_ms)")
t0 = 1796000000000
rows = ((f"dev-{i % devices:05d}", f"e{i}", t0 + i * 10, "door_open", "info", "the door was opened", 51.9, 4.4, t0 + i * 10 + 50) for i in range(n))
c.executemany("INSERT INTO events (device_id, event_id, ts_ms, type, severity, message, lat, lon, received_ms) VALUES (?,?,?,?,?,?,?,?,?)", rows)
c.commit(); c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
def build(ddl):
    """Runs one CREATE INDEX as a migration would: seconds taken, file size before and after (MB)."""
    before = os.path.getsize(path)
    start = time.perf_counter()
    c.execute(ddl); c.commit()
    took = time.perf_counter() - start
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return took, before / 1e6, os.path.getsize(path) / 1e6

took, before, after = build("CREATE INDEX events_by_device_time ON events (device_id, ts_ms)")
print(f"{n} events, {devices} devices, file {before:.0f} MB -> {after:.0f} MB; index built in {took:.2f} s; sqlite {sqlite3.sqlite_version}")
took, before, after = build("CREATE INDEX events_by_cause ON events (device_id, type, ts_ms)")
print(f"schema 8's events_by_cause: file {before:.0f} MB -> {after:.0f} MB; built in {took:.2f} s")
c.execute("DROP INDEX events_by_cause")
# The panel's query before/after, for one device.
q = "SELECT event_id, ts_ms FROM events WHERE device_id = ? ORDER BY ts_ms DESC LIMIT 20"
s = time.perf_counter()
for k in range(200): c.execute(q, (f"dev-{k % devices:05d}",)).fetchall()
print(f"newest 20 events of a device: {(time.perf_counter()-s)/200*1000:.3f} ms each (with the index)")
c.execute("DROP INDEX events_by_device_time")
s = time.perf_counter()
for k in range(200): c.execute(q, (f"dev-{k % devices:05d}",)).fetchall()
print(f"newest 20 events of a device: {(time.perf_counter()-s)/200*1000:.3f} ms each (without)")
c.close()
for name in os.listdir(folder):
    os.remove(os.path.join(folder, name))
os.rmdir(folder)
