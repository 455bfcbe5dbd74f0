//! The wall clock, read only at the edges (message arrival, batch emission). Logic below the
//! edges takes time as an argument so tests control it.

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds on a clock that only moves forward with the time that passes, sleep included,
/// whatever is done to the wall clock: Linux's boot clock. Elsewhere the monotonic clock from
/// the first call, which may stand still while the machine sleeps.
pub fn boot_ms() -> i64 {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        // tv_nsec: below 10^9.
        t.tv_sec.saturating_mul(1_000) + t.tv_nsec / 1_000_000
    }
    #[cfg(not(target_os = "linux"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        i64::try_from(
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_millis(),
        )
        .unwrap_or(i64::MAX)
    }
}
