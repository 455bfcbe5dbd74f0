//! Timestamps as devices write them: integer milliseconds since the Unix epoch (UTC), or an
//! RFC 3339 string with an explicit offset. Everything inside Watchfloor is `i64` epoch ms.

use chrono::DateTime;
use serde_json::Value;

/// How far ahead of the receiver's clock a device timestamp may be before it is refused. Device
/// clocks drift, but a fix stamped hours ahead would pin the device "in the future" and make
/// every honest update look stale, so it is quarantined instead.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Why a wire timestamp was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp must be epoch milliseconds or an RFC 3339 string, found {0}")]
    WrongType(&'static str),
    #[error("timestamp {0:?} is not RFC 3339 (for example 2026-11-23T08:15:00Z)")]
    BadText(String),
    #[error("timestamp {0} ms is out of range")]
    OutOfRange(f64),
    #[error("timestamp {0} looks like seconds since 1970 (1973 or earlier as milliseconds): send milliseconds")]
    LooksLikeSeconds(i64),
    #[error("timestamp {0} ms ({1}) is before 2010: the device's clock is not set")]
    ClockUnset(i64, String),
    #[error(
        "timestamp is {ahead_ms} ms ahead of the receiver's clock (limit {MAX_FUTURE_SKEW_MS} ms)"
    )]
    InFuture { ahead_ms: i64 },
}

/// A number below this (1973-03-03 as milliseconds) is not a time a live device reports: it is
/// seconds, the commonest slip (OwnTracks's own `tst` is seconds), which read as milliseconds
/// would put a fix in January 1970, stored and shown as 56 years old.
const EARLIEST_NUMBER_MS: f64 = 100_000_000_000.0;

/// 2010-01-01T00:00:00Z. A device time before it is a clock that was never set or lost its
/// setting: GPS units and terminals come back from a flat battery at 1970, 1980, 2000 or their
/// firmware's date. Taken at its word it was stored as history decades old (and stretched a
/// review's timeline to those decades) while the device looked stale at once.
pub const EARLIEST_DEVICE_MS: i64 = 1_262_304_000_000;

/// The last millisecond of the year 9999: timestamps are accepted from 1970 to here, which
/// keeps arithmetic on them far from overflow and keeps every stored time a positive number.
const LAST_MS: f64 = 253_402_300_799_000.0;

/// Parses a JSON timestamp value into epoch milliseconds and checks it against `now_ms`.
pub fn parse_timestamp(value: &Value, now_ms: i64) -> Result<i64, TimestampError> {
    let ms = match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| TimestampError::BadText(truncate(s, 64)))?
            .timestamp_millis() as f64,
        Value::Null => return Err(TimestampError::WrongType("null")),
        Value::Bool(_) => return Err(TimestampError::WrongType("a boolean")),
        Value::Array(_) => return Err(TimestampError::WrongType("an array")),
        Value::Object(_) => return Err(TimestampError::WrongType("an object")),
    };
    if !ms.is_finite() || !(0.0..=LAST_MS).contains(&ms) {
        return Err(TimestampError::OutOfRange(ms));
    }
    let ms = ms as i64;
    let ahead_ms = ms.saturating_sub(now_ms);
    if ahead_ms > MAX_FUTURE_SKEW_MS {
        return Err(TimestampError::InFuture { ahead_ms });
    }
    if ms < EARLIEST_DEVICE_MS {
        let shown = DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        return Err(TimestampError::ClockUnset(ms, shown));
    }
    Ok(ms)
}

/// [`parse_timestamp`] for a time a device wrote itself as a number of milliseconds (the native
/// format's `ts`): a number before 1973 is refused as seconds.
pub fn parse_device_timestamp(value: &Value, now_ms: i64) -> Result<i64, TimestampError> {
    match parse_timestamp(value, now_ms) {
        Err(TimestampError::ClockUnset(ms, _))
            if value.is_number() && (ms as f64) < EARLIEST_NUMBER_MS =>
        {
            Err(TimestampError::LooksLikeSeconds(ms))
        }
        other => other,
    }
}

/// Shortens untrusted text for an error message, on a character boundary.
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_500_000_000;

    #[test]
    fn seconds_are_refused_with_the_reason() {
        let err = parse_device_timestamp(&json!(NOW / 1000), NOW).unwrap_err();
        assert_eq!(err, TimestampError::LooksLikeSeconds(NOW / 1000));
        assert!(err.to_string().contains("looks like seconds"), "{err}");
        // A string is what it says: 1970 as text is a clock not set, not seconds.
        assert!(matches!(
            parse_device_timestamp(&json!("1970-01-01T00:00:01Z"), NOW),
            Err(TimestampError::ClockUnset(1000, _))
        ));
    }

    #[test]
    fn a_clock_that_was_never_set_is_refused_with_its_date() {
        // 2000-01-01 as milliseconds: a GPS unit back from a flat battery.
        let err = parse_device_timestamp(&json!(946_684_800_000i64), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "timestamp 946684800000 ms (2000-01-01 00:00:00 UTC) is before 2010: the device's clock is not set"
        );
        assert!(matches!(
            parse_timestamp(&json!("1980-01-06T00:00:00Z"), NOW),
            Err(TimestampError::ClockUnset(..))
        ));
        // The first millisecond of 2010 is a time; the one before is not.
        assert_eq!(
            parse_timestamp(&json!(EARLIEST_DEVICE_MS), NOW),
            Ok(EARLIEST_DEVICE_MS)
        );
        assert!(parse_timestamp(&json!(EARLIEST_DEVICE_MS - 1), NOW).is_err());
    }

    #[test]
    fn reads_both_documented_forms() {
        assert_eq!(parse_timestamp(&json!(NOW - 1000), NOW), Ok(NOW - 1000));
        assert_eq!(
            parse_timestamp(&json!("2026-11-23T08:15:00.250Z"), NOW),
            Ok(1_795_421_700_250),
            "RFC 3339 with a Z offset is UTC"
        );
        assert_eq!(
            parse_timestamp(&json!("2026-11-23T09:15:00.250+01:00"), NOW),
            Ok(1_795_421_700_250),
            "an explicit offset is honoured"
        );
    }

    #[test]
    fn refuses_what_would_corrupt_ordering() {
        assert!(matches!(
            parse_timestamp(&json!(NOW + 3_600_000), NOW),
            Err(TimestampError::InFuture { .. })
        ));
        assert!(matches!(
            parse_timestamp(&json!(-5), NOW),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_timestamp(&json!(1e300), NOW),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(
            matches!(
                parse_timestamp(&json!("1969-12-31T23:59:59Z"), NOW),
                Err(TimestampError::OutOfRange(_))
            ),
            "text before 1970 is refused as numbers are"
        );
        assert!(matches!(
            parse_timestamp(&json!("0001-01-01T00:00:00Z"), NOW),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_timestamp(&json!("1970-01-01T00:00:00Z"), NOW),
            Err(TimestampError::ClockUnset(0, _))
        ));
        assert!(matches!(
            parse_timestamp(&json!("yesterday"), NOW),
            Err(TimestampError::BadText(_))
        ));
        assert!(matches!(
            parse_timestamp(&json!(true), NOW),
            Err(TimestampError::WrongType(_))
        ));
    }
}
