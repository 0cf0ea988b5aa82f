//! Ride QR codes as QR symbols: the wallet's side draws the code's bytes, the scanning
//! terminal's side reads them back from a camera frame (qr-code.md §1.2).
//!
//! ```text
//!  wallet:   code bytes ─ Symbol::encode (byte mode, level ERROR_CORRECTION, smallest version)
//!              ├─ to_text:  Unicode half blocks / ASCII, with quiet zone (a terminal)
//!              ├─ to_png:   PNG bytes (scale, quiet zone)
//!              └─ to_frame: GreyFrame (8-bit grey pixels; PGM P5 bytes)
//!  terminal: PNG bytes | PGM bytes | grey buffer ─ scan_* ─ rqrr ─ payload bytes
//! ```
//!
//! What it owns: the choice of QR mode and error-correction level for ride codes, rendering, the
//! parsing of the two image formats a terminal is handed (PNG files, binary PGM camera frame
//! dumps) and the scan itself, which must give back exactly the bytes that were drawn: ride codes
//! are raw binary (§1.2: no base64 or hex wrapper in the symbol), so the payload is taken from
//! the decoder as bytes, never through a text string.
//! What it does not own: the meaning of the bytes (`ykt-qr` decodes and verifies them), files
//! and cameras (the caller reads and writes; this crate only takes and gives bytes), and time.
//!
//! Every scanner is total: any input gives the payload or a typed [`ScanError`], never a panic.

mod error;
mod frame;
mod render;
mod scan;

pub use crate::error::{DecodeFailure, ImageError, RenderError, ScanError};
pub use crate::frame::{GreyFrame, MAX_PIXELS};
pub use crate::render::{ERROR_CORRECTION, ErrorCorrection, Symbol, TextStyle};
pub use crate::scan::{scan, scan_frame, scan_grey, scan_pgm, scan_png};

/// The largest payload a symbol carries in byte mode (version 40, level L: 2953 bytes).
pub const MAX_PAYLOAD: usize = 2953;

/// The quiet zone (light border, in modules) ISO/IEC 18004 asks for around a symbol, and the
/// default of the renderers' callers.
pub const QUIET_ZONE: usize = 4;
