//! The employee CSV import against arbitrary bytes: every row is checked on its own and a bad
//! one becomes a row error with its reason; the file as a whole never panics the import. Photo
//! paths resolve in a folder holding one valid JPEG (`ok.jpg`), so rows can pass too.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use watchfloor_core::facesync::import;

fn photos() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x02, 0x80, 0x01, 0xE0];
        jpeg.extend([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9]);
        std::fs::write(dir.path().join("ok.jpg"), jpeg).expect("write ok.jpg");
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let _ = import::read_csv_from(data, photos(), "fuzz.csv", chrono_tz::Europe::Amsterdam);
});
