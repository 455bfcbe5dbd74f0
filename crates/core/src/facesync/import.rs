//! Reading an employee CSV: columns `employee_id,name,photo` and optional `terminals`
//! (`;`-separated terminal ids or group names; empty: all), `valid_from`, `valid_to` (ISO dates,
//! or local date-times `YYYY-MM-DDTHH:MM[:SS]` in the terminals' zone) and `person_type`
//! (`allow` | `block`). Each row is checked on its own, photo included (a JPEG, at most 1 MB,
//! face-sized: 100 px to 1080p), and a bad row is reported with its line and reason while the
//! others are imported.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use watchfloor_protocol::native::is_control_or_format;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use watchfloor_protocol::face_sync::{MAX_CUSTOM_ID_CHARS, MAX_PERSON_NAME_CHARS};

use super::directory::{Employee, PersonType};

/// The terminals' limit on a photo's size: "<= 1 MB", and error 467 for "> 1 MB" (the protocol
/// notes). Read as decimal megabytes, the stricter reading: a photo between 1,000,000 and
/// 1,048,576 bytes passing here could be refused by a terminal for good.
pub const MAX_PHOTO_BYTES: u64 = 1_000_000;
/// Smallest side that still shows a face a terminal can enrol.
pub const MIN_PHOTO_SIDE: usize = 100;

/// Every column a file may have (the first three required).
pub const COLUMNS: [&str; 7] = [
    "employee_id",
    "name",
    "photo",
    "terminals",
    "valid_from",
    "valid_to",
    "person_type",
];

#[derive(Debug, Deserialize)]
struct Row {
    employee_id: String,
    name: String,
    photo: String,
    #[serde(default)]
    terminals: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
    #[serde(default)]
    person_type: String,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RowError {
    /// 1-based line in the file.
    #[ts(type = "number")]
    pub line: u64,
    pub employee_id: Option<String>,
    pub reason: String,
}

/// A file read row by row.
#[derive(Debug, Default)]
pub struct Parsed {
    pub employees: Vec<Employee>,
    pub errors: Vec<RowError>,
    /// A row's id could not be read at all: removals must wait for a clean file.
    pub unreadable_ids: bool,
}

impl Parsed {
    /// Ids of rows that failed their checks (kept as they were, not removed).
    pub fn failed_ids(&self) -> HashSet<String> {
        self.errors
            .iter()
            .filter_map(|e| e.employee_id.clone())
            .collect()
    }
}

/// Reads `path`; photo paths are relative to the file's folder. Fails only when the file
/// cannot be read or has no header with the required columns.
pub fn read_csv(path: &Path, zone: Tz) -> anyhow::Result<Parsed> {
    let base = path.parent().unwrap_or(Path::new("."));
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    read_csv_from(file, base, &path.display().to_string(), zone)
}

/// Reads a CSV from `input` (`name` says which in messages); photo paths are relative to
/// `base`. Every row is checked on its own: a bad one becomes a [`RowError`], never a failure
/// of the whole file (the fuzz target `csv_import` feeds it arbitrary bytes).
pub fn read_csv_from(
    input: impl std::io::Read,
    base: &Path,
    name: &str,
    zone: Tz,
) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| anyhow::anyhow!("cannot read the header of {name}: {e}"))?
        .clone();
    for col in ["employee_id", "name", "photo"] {
        if !headers.iter().any(|h| h == col) {
            anyhow::bail!(
                "{name}: the header lacks the column {col:?} (required: employee_id,name,photo)"
            );
        }
    }
    // A misspelt optional column would otherwise be ignored, and its meaning lost without a
    // word: every person on every terminal, block-list rows enrolled as allowed, no end dates.
    let unknown: Vec<&str> = headers.iter().filter(|h| !COLUMNS.contains(h)).collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "{name}: unknown column(s) {unknown:?}; the columns are {} (nothing was imported)",
            COLUMNS.join(",")
        );
    }
    let mut out = Parsed::default();
    let mut seen: HashMap<String, bool> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.unreadable_ids = true;
                out.errors.push(RowError {
                    line: e.position().map_or(0, |p| p.line()),
                    employee_id: None,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let row: Row = match record.deserialize(Some(&headers)) {
            Ok(r) => r,
            Err(e) => {
                out.unreadable_ids = true;
                out.errors.push(RowError {
                    line,
                    employee_id: None,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let id = row.employee_id.clone();
        if let Some(&first_kept) = seen.get(&id) {
            let first = if first_kept {
                "the first row was kept"
            } else {
                "only the first row is read, and it has an error of its own: correct that one"
            };
            out.errors.push(RowError {
                line,
                employee_id: None,
                reason: format!("employee_id {id:?} appears twice; {first}"),
            });
            continue;
        }
        let checked = check_row(row, base, zone);
        seen.insert(id.clone(), checked.is_ok());
        match checked {
            Ok(e) => out.employees.push(e),
            Err(reason) => out.errors.push(RowError {
                line,
                employee_id: valid_id(&id).is_ok().then_some(id),
                reason,
            }),
        }
    }
    Ok(out)
}

fn valid_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("employee_id is empty".into());
    }
    if id.chars().count() > MAX_CUSTOM_ID_CHARS {
        return Err(format!(
            "employee_id is longer than the terminals' {MAX_CUSTOM_ID_CHARS} characters"
        ));
    }
    // Terminals list ids comma-separated, and ids travel inside topics' neighbours: keep them plain.
    if let Some(c) = id
        .chars()
        .find(|&c| is_control_or_format(c) || matches!(c, ',' | '/' | '+' | '#' | '"' | '\\'))
    {
        return Err(format!(
            "employee_id contains {c:?}, which terminals cannot store"
        ));
    }
    Ok(())
}

fn check_row(row: Row, base: &Path, zone: Tz) -> Result<Employee, String> {
    valid_id(&row.employee_id)?;
    if row.name.is_empty() {
        return Err("name is empty".into());
    }
    if row.name.chars().count() > MAX_PERSON_NAME_CHARS {
        return Err(format!(
            "name is longer than the terminals' {MAX_PERSON_NAME_CHARS} characters"
        ));
    }
    // What a terminal echoes back in its records must pass the console's own check there.
    if let Some(c) = row.name.chars().find(|&c| is_control_or_format(c)) {
        return Err(format!(
            "name contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    let person_type = match row.person_type.to_ascii_lowercase().as_str() {
        "" | "allow" => PersonType::Allow,
        "block" => PersonType::Block,
        other => return Err(format!("person_type {other:?} is not allow or block")),
    };
    let valid_from_ms =
        parse_when(&row.valid_from, zone, false).map_err(|e| format!("valid_from: {e}"))?;
    let valid_to_ms =
        parse_when(&row.valid_to, zone, true).map_err(|e| format!("valid_to: {e}"))?;
    if let (Some(f), Some(t)) = (valid_from_ms, valid_to_ms) {
        if t <= f {
            return Err("valid_to is not after valid_from".into());
        }
    }
    let photo = if Path::new(&row.photo).is_absolute() {
        PathBuf::from(&row.photo)
    } else {
        base.join(&row.photo)
    };
    let photo_sha256 = check_photo(&photo)?;
    let terminals = row
        .terminals
        .split(';')
        // The console shows a terminal as face:T-07; its name here is T-07.
        .map(watchfloor_protocol::face::terminal_id)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Employee {
        employee_id: row.employee_id,
        name: row.name,
        photo: photo.display().to_string(),
        photo_sha256,
        terminals,
        valid_from_ms,
        valid_to_ms,
        person_type,
    })
}

/// An ISO date (a `valid_to` date means "through that day") or a local date-time.
fn parse_when(s: &str, zone: Tz, end_of_day: bool) -> Result<Option<i64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let naive = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(Some(start_of_day(d, zone)));
    } else {
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .ok_or_else(|| {
                format!("{s:?} is not a date (YYYY-MM-DD) or local time (YYYY-MM-DDTHH:MM)")
            })?
    };
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| Some(t.timestamp_millis()))
        .ok_or_else(|| format!("{s:?} does not exist in {zone} (a clock change)"))
}

/// The first instant of day `d` in `zone` (epoch ms): its midnight, or where the clocks jump
/// over midnight (Santiago, Havana, Asunción, Beirut: a day that starts at 01:00), the first
/// minute that exists. A date is a whole day, and was refused there as "does not exist".
fn start_of_day(d: NaiveDate, zone: Tz) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight is a time");
    (0..=24 * 60)
        .find_map(|minute| {
            zone.from_local_datetime(&(midnight + chrono::Duration::minutes(minute)))
                .earliest()
        })
        // A day skipped whole (Samoa's 30 December 2011) starts where the next one does;
        // nothing is skipped for longer than a day.
        .map_or_else(
            || midnight.and_utc().timestamp_millis(),
            |t| t.timestamp_millis(),
        )
}

/// Checks a photo the way terminals will; returns its SHA-256 (hex) when it passes.
pub fn check_photo(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("photo {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("photo {shown} is not a file"));
    }
    if meta.len() > MAX_PHOTO_BYTES {
        return Err(format!(
            "photo {shown} is {} bytes, over the terminals' 1 MB (1,000,000 bytes) limit",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("photo {shown}: {e}"))?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(format!("photo {shown} is not a JPEG"));
    }
    let size = imagesize::blob_size(&bytes)
        .map_err(|e| format!("photo {shown}: unreadable JPEG ({e})"))?;
    let (long, short) = (size.width.max(size.height), size.width.min(size.height));
    if short < MIN_PHOTO_SIDE {
        return Err(format!(
            "photo {shown} is {}x{} px, too small for a face (at least {MIN_PHOTO_SIDE} px a side)",
            size.width, size.height
        ));
    }
    if long > 1920 || short > 1080 {
        return Err(format!(
            "photo {shown} is {}x{} px, over the terminals' 1080p limit",
            size.width, size.height
        ));
    }
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal JPEG header (SOI + SOF0 with the given size), enough for size checks.
    pub(crate) fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
        b.extend(height.to_be_bytes());
        b.extend(width.to_be_bytes());
        b.extend([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
        b.extend([0xFF, 0xD9]);
        b
    }

    #[test]
    fn a_date_is_a_whole_day_where_the_clocks_skip_its_midnight() {
        let santiago = chrono_tz::America::Santiago;
        // 2026-09-06: Chile's clocks go from 00:00 to 01:00 (UTC-4 to UTC-3).
        let day_starts = 1_788_667_200_000; // 2026-09-06T04:00Z, 01:00 there
        assert_eq!(
            parse_when("2026-09-06", santiago, false),
            Ok(Some(day_starts))
        );
        assert_eq!(
            parse_when("2026-09-05", santiago, true),
            Ok(Some(day_starts))
        );
        // A time the clocks skip is still refused, with why.
        let err = parse_when("2026-09-06T00:30", santiago, false).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        // Elsewhere a date is its midnight.
        assert_eq!(
            parse_when("2026-09-06", chrono_tz::UTC, false),
            Ok(Some(1_788_652_800_000))
        );
    }

    #[test]
    fn hostile_csv_rows_are_refused_one_by_one_and_never_abort_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.jpg"), jpeg(480, 640)).unwrap();
        let mut csv = b"employee_id,name,photo\n".to_vec();
        csv.extend_from_slice(b"E1,Ann,ok.jpg\n");
        csv.extend_from_slice(b"\"E2\",\"Multi\nline\",ok.jpg\n"); // a quoted newline in a name
        csv.extend_from_slice(b"E3,\"Bad\xff\xfeUTF8\",ok.jpg\n"); // not UTF-8
        csv.extend_from_slice(b"E4,Ragged\n"); // too few fields
        csv.extend_from_slice(format!("E5,{},ok.jpg\n", "n".repeat(100_000)).as_bytes());
        csv.extend_from_slice(b"E6,Esc\x1b[2J,ok.jpg\n");
        csv.extend_from_slice(b"E7+#,Wild,ok.jpg\n");
        csv.extend_from_slice(b"E8,Root,/etc/passwd\n"); // a file that is not a JPEG
        csv.extend_from_slice(b"E9,Up,../../../../etc/shadow\n");
        csv.extend_from_slice(b"E10,=HYPERLINK(\"x\"),ok.jpg\n"); // odd but a name
                                                                  // A right-to-left override (refused: the terminals' records would echo it), and a
                                                                  // Hebrew name with a right-to-left mark (a name).
        csv.extend_from_slice(
            "E11,Van\u{202E}7,ok.jpg\nE12,\u{05D3}\u{05E0}\u{200F},ok.jpg\n".as_bytes(),
        );
        let parsed = read_csv_from(&csv[..], dir.path(), "hostile.csv", chrono_tz::UTC).unwrap();
        let ids: Vec<&str> = parsed
            .employees
            .iter()
            .map(|e| e.employee_id.as_str())
            .collect();
        assert_eq!(ids, ["E1", "E10", "E12"], "{:#?}", parsed.errors);
        assert_eq!(
            parsed.errors.len(),
            9,
            "every other row, with its reason: {:#?}",
            parsed.errors
        );
        assert!(parsed.unreadable_ids, "unreadable rows hold removals back");
        let reason = |line: u64| {
            parsed
                .errors
                .iter()
                .find(|e| e.line == line)
                .map(|e| e.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason(3).contains("control"), "{}", reason(3));
        assert!(reason(9).contains("'+'"), "{}", reason(9));
        assert!(reason(13).contains("U+202E"), "{}", reason(13));
        // A header that is not ours, or no text at all: refused as a whole, with the reason.
        let e = read_csv_from(&b"\xff\xfe\x00"[..], dir.path(), "junk.csv", chrono_tz::UTC)
            .unwrap_err();
        assert!(e.to_string().contains("junk.csv"), "{e}");
    }

    #[test]
    fn rows_are_checked_one_by_one_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.jpg"), jpeg(480, 640)).unwrap();
        std::fs::write(dir.path().join("tiny.jpg"), jpeg(40, 40)).unwrap();
        std::fs::write(dir.path().join("big.jpg"), jpeg(4000, 3000)).unwrap();
        std::fs::write(dir.path().join("png.jpg"), b"\x89PNG\r\n").unwrap();
        let csv = "employee_id,name,photo,terminals,valid_from,valid_to,person_type\n\
            E1,Ann,ok.jpg,,,,\n\
            E2,Bob,ok.jpg,face:T1; gate,2026-01-01,2026-12-31,block\n\
            E3,Cy,missing.jpg,,,,\n\
            E4,Di,tiny.jpg,,,,\n\
            E5,Ed,big.jpg,,,,\n\
            E6,Fa,png.jpg,,,,\n\
            E1,Dup,ok.jpg,,,,\n\
            E/7,Gi,ok.jpg,,,,\n\
            E8,Hu,ok.jpg,,2026-02-01,2026-01-01,\n\
            E9,Io,ok.jpg,,,,guest\n\
            E10,Ja,ok.jpg,,,2026-03-01T17:30,\n\
            E3,Cy,ok.jpg,,,,\n";
        let path = dir.path().join("staff.csv");
        std::fs::write(&path, csv).unwrap();
        let parsed = read_csv(&path, chrono_tz::Europe::Amsterdam).unwrap();
        let ids: Vec<&str> = parsed
            .employees
            .iter()
            .map(|e| e.employee_id.as_str())
            .collect();
        assert_eq!(ids, ["E1", "E2", "E10"]);
        let e2 = &parsed.employees[1];
        // The console shows a terminal as face:T1: its name here is T1.
        assert_eq!(e2.terminals, ["T1", "gate"]);
        assert_eq!(e2.person_type, PersonType::Block);
        // Through 31 December, Amsterdam: ends at 2027-01-01T00:00+01:00.
        assert_eq!(e2.valid_to_ms, Some(1_798_758_000_000));
        assert_eq!(parsed.employees[2].valid_to_ms, Some(1_772_382_600_000));
        let reasons: Vec<(u64, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        let has = |line: u64, words: &str| {
            assert!(
                reasons.iter().any(|(l, r)| *l == line && r.contains(words)),
                "line {line} should say {words:?}: {reasons:?}"
            )
        };
        has(4, "No such file");
        has(5, "too small");
        has(6, "1080p");
        has(7, "not a JPEG");
        has(8, "appears twice; the first row was kept");
        // A second row for one whose first failed is not read either: the words say which.
        has(
            13,
            "appears twice; only the first row is read, and it has an error",
        );
        has(9, "contains '/'");
        has(10, "not after");
        has(11, "guest");
        assert!(!parsed.unreadable_ids);
        assert!(parsed.failed_ids().contains("E3"));
        assert!(!parsed.failed_ids().contains("E/7"));
    }

    #[test]
    fn a_file_without_the_required_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "id,name\n1,a\n").unwrap();
        let err = read_csv(&path, chrono_tz::UTC).unwrap_err().to_string();
        assert!(err.contains("employee_id"), "{err}");
    }

    #[test]
    fn a_misspelt_column_is_refused_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(
            &path,
            "employee_id,name,photo,terminal,type\nE1,Ann,a.jpg,gate-1,block\n",
        )
        .unwrap();
        let err = read_csv(&path, chrono_tz::UTC).unwrap_err().to_string();
        assert!(
            err.contains(r#"unknown column(s) ["terminal", "type"]"#),
            "{err}"
        );
        assert!(err.contains("person_type"), "{err}");
    }

    #[test]
    fn a_photo_over_a_decimal_megabyte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("big.jpg");
        let mut bytes = vec![0u8; 1_000_001];
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        std::fs::write(&photo, &bytes).unwrap();
        let why = check_photo(&photo).unwrap_err();
        assert!(
            why.contains("1,000,001") || why.contains("1000001"),
            "{why}"
        );
        assert!(why.contains("1 MB"), "{why}");
        // One byte less passes the size check (and fails later, on what a JPEG must hold).
        bytes.pop();
        std::fs::write(&photo, &bytes).unwrap();
        assert!(!check_photo(&photo).unwrap_err().contains("1 MB"));
    }
}
