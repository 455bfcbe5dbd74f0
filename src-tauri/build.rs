fn main() {
    // Only the desktop build embeds the UI and the Tauri context; the headless build has none.
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
