// Only the desktop build embeds the UI and the Tauri context; the headless build has none.
//
// The app manifest lists every command the backend defines, so Tauri generates a permission
// for each (`allow-console-info`, ...) and a window may call only those its capability file in
// capabilities/ grants: the live console its own, the review window its own.
#[cfg(feature = "desktop")]
const COMMANDS: &[&str] = &[
    // Both windows.
    "app_mode",
    // The live console.
    "open_review",
    "console_info",
    "subscribe_live",
    "metrics",
    "recent_quarantine",
    "retry_now",
    "device_events",
    "device_trail",
    "act_on_incident",
    "incident_audit",
    "notify",
    "check_notifications",
    "set_attention",
    "sync_overview",
    "sync_employees",
    "sync_placements",
    "sync_failures",
    "sync_control",
    "import_employees",
    "set_terminal_groups",
    "attendance_log",
    "attendance_daily",
    "export_attendance",
    "event_images",
    // The review window.
    "review_frame",
    "review_audit",
    "review_step",
    "review_next_incident",
    "review_track",
    "review_export",
];

fn main() {
    #[cfg(feature = "desktop")]
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build: the Tauri config, capabilities and icons are valid");
}
