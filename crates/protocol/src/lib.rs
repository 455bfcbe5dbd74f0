//! Watchfloor's wire formats, as pure functions from `(topic, bytes)` to typed messages.
//!
//! This crate owns the meaning of what devices publish and nothing else: it does no I/O, keeps no
//! state and never reads the clock (callers pass `now` in), so every decoder can be fuzzed and
//! property-tested in isolation. A decoder either returns a typed message or a [`DecodeError`]
//! that says why, in words an operator can read in the quarantine list; it never panics.
//!
//! - [`device_id`]: the validated device identifier shared by every adapter.
//! - [`time`]: timestamps as they appear on the wire (epoch milliseconds or RFC 3339).
//! - [`native`]: Watchfloor's own documented format (`docs/protocol.md`).
//! - [`owntracks`]: OwnTracks phones (location, last will, geofence transitions).
//! - [`face`]: face-recognition terminals: presence, heartbeat, access records, stranger snaps.
//! - [`face_sync`]: face-terminal person sync: the commands sent and the Acks that answer them.

pub mod device_id;
pub mod face;
pub mod face_sync;
mod lenient;
pub mod native;
pub mod owntracks;
pub mod time;

pub use device_id::{DeviceId, DeviceIdError};
pub use native::{DecodeError, DeviceEvent, DeviceKind, Fix, NativeMessage, Severity, Status};

/// Largest payload any native decoder accepts. Real location/status/event payloads are a few
/// hundred bytes; anything this large is either a bug or hostile, and parsing it would let one
/// device spend memory and CPU meant for the whole fleet.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
