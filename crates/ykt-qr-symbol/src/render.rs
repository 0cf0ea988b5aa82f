//! Drawing: the payload in byte mode at [`ERROR_CORRECTION`], in the smallest version that
//! holds it, then as text, PNG or a grey frame.

use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode};

use crate::MAX_PAYLOAD;
use crate::error::RenderError;
use crate::frame::{GreyFrame, MAX_PIXELS};

/// A QR error-correction level (ISO/IEC 18004): the share of codewords that may be lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCorrection {
    /// About 7 %.
    Low,
    /// About 15 %.
    Medium,
    /// About 25 %.
    Quartile,
    /// About 30 %.
    High,
}

impl ErrorCorrection {
    fn level(self) -> EcLevel {
        match self {
            Self::Low => EcLevel::L,
            Self::Medium => EcLevel::M,
            Self::Quartile => EcLevel::Q,
            Self::High => EcLevel::H,
        }
    }
}

/// The error-correction level of ride code symbols.
///
/// L (qr-code.md §1.2, open question 3: the standard's level is not public): the brief suggests
/// M, which puts the largest code (364 bytes) into version 15 (77 × 77 modules); L (version 12)
/// suits small screens and is available through [`Symbol::encode_with`].
pub const ERROR_CORRECTION: ErrorCorrection = ErrorCorrection::Medium;

/// How [`Symbol::to_text`] draws modules in a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextStyle {
    /// Unicode half blocks (`▀ ▄ █`), two module rows per line, dark modules drawn in the
    /// terminal's foreground: for a light background.
    HalfBlocks,
    /// Half blocks with light modules drawn in the foreground: for a dark background (the
    /// usual terminal), so the symbol is dark on light as scanners expect.
    HalfBlocksInverted,
    /// Plain ASCII, `##` for a dark module and two spaces for a light one, one module row per
    /// line: for terminals without Unicode (dark modules in the foreground).
    Ascii,
}

/// A QR symbol: its modules, version and level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    width: usize,
    /// Row by row; true = dark.
    dark: Vec<bool>,
    version: u8,
    level: ErrorCorrection,
}

impl Symbol {
    /// The symbol of `payload` in byte mode at [`ERROR_CORRECTION`] (qr-code.md §1.2).
    pub fn encode(payload: &[u8]) -> Result<Self, RenderError> {
        Self::encode_with(payload, ERROR_CORRECTION)
    }

    /// The symbol of `payload` in one byte-mode segment at `level`, in the smallest version
    /// (1–40) that holds it.
    pub fn encode_with(payload: &[u8], level: ErrorCorrection) -> Result<Self, RenderError> {
        let ec = level.level();
        let too_long = || RenderError::TooLong {
            len: payload.len(),
            max: max_payload(level),
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(too_long());
        }
        for version in 1..=40i16 {
            let mut bits = Bits::new(qrcode::Version::Normal(version));
            if bits.push_byte_data(payload).is_err() || bits.push_terminator(ec).is_err() {
                continue;
            }
            let Ok(code) = QrCode::with_bits(bits, ec) else {
                continue;
            };
            let width = code.width();
            let dark = code
                .into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            return Ok(Self {
                width,
                dark,
                version: version as u8,
                level,
            });
        }
        Err(too_long())
    }

    /// The version, 1–40.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The error-correction level.
    pub fn error_correction(&self) -> ErrorCorrection {
        self.level
    }

    /// Modules per side (17 + 4 × version).
    pub fn width(&self) -> usize {
        self.width
    }

    /// True when the module at column `x`, row `y` is dark; false outside the symbol (the
    /// quiet zone).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark.get(y * self.width + x) == Some(&true)
    }

    /// Dark at (x, y) counted with a quiet zone of `quiet` modules on every side.
    fn is_dark_framed(&self, x: usize, y: usize, quiet: usize) -> bool {
        x >= quiet && y >= quiet && self.is_dark(x - quiet, y - quiet)
    }

    /// The symbol as lines of text with a quiet zone of `quiet` modules, each line ending in
    /// `\n`.
    pub fn to_text(&self, style: TextStyle, quiet: usize) -> String {
        let side = self.width + 2 * quiet;
        let mut out = String::new();
        match style {
            TextStyle::Ascii => {
                for y in 0..side {
                    for x in 0..side {
                        out.push_str(if self.is_dark_framed(x, y, quiet) {
                            "##"
                        } else {
                            "  "
                        });
                    }
                    out.push('\n');
                }
            }
            TextStyle::HalfBlocks | TextStyle::HalfBlocksInverted => {
                let inverted = style == TextStyle::HalfBlocksInverted;
                for y in (0..side).step_by(2) {
                    for x in 0..side {
                        // Ink = drawn in the foreground colour.
                        let ink =
                            |y: usize| y < side && (self.is_dark_framed(x, y, quiet) != inverted);
                        out.push(match (ink(y), ink(y + 1)) {
                            (true, true) => '█',
                            (true, false) => '▀',
                            (false, true) => '▄',
                            (false, false) => ' ',
                        });
                    }
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The symbol as a grey frame: `scale` pixels a module, a quiet zone of `quiet_zone`
    /// modules, black (0) on white (255).
    pub fn to_frame(&self, scale: u32, quiet_zone: u32) -> Result<GreyFrame, RenderError> {
        let size_error = RenderError::Size { scale, quiet_zone };
        let modules = self
            .width
            .checked_add(2 * quiet_zone as usize)
            .ok_or(RenderError::Size { scale, quiet_zone })?;
        let side = modules
            .checked_mul(scale as usize)
            .filter(|s| *s > 0 && s.checked_mul(*s).is_some_and(|a| a <= MAX_PIXELS))
            .ok_or(size_error)?;
        let (scale, quiet) = (scale as usize, quiet_zone as usize);
        let mut pixels = Vec::with_capacity(side * side);
        for py in 0..side {
            for px in 0..side {
                let dark = self.is_dark_framed(px / scale, py / scale, quiet);
                pixels.push(if dark { 0 } else { 255 });
            }
        }
        GreyFrame::new(side, side, pixels).map_err(|_| RenderError::Size {
            scale: scale as u32,
            quiet_zone,
        })
    }

    /// The symbol as PNG bytes (8-bit grey): `scale` pixels a module, a quiet zone of
    /// `quiet_zone` modules.
    pub fn to_png(&self, scale: u32, quiet_zone: u32) -> Result<Vec<u8>, RenderError> {
        let frame = self.to_frame(scale, quiet_zone)?;
        frame_to_png(&frame)
    }
}

/// A grey frame as PNG bytes (8-bit grey).
pub(crate) fn frame_to_png(frame: &GreyFrame) -> Result<Vec<u8>, RenderError> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder
        .write_image(
            frame.pixels(),
            frame.width() as u32,
            frame.height() as u32,
            image::ExtendedColorType::L8,
        )
        .map_err(RenderError::Png)?;
    Ok(out)
}

impl GreyFrame {
    /// The frame as PNG bytes (8-bit grey).
    pub fn to_png(&self) -> Result<Vec<u8>, RenderError> {
        frame_to_png(self)
    }
}

/// The most bytes one byte-mode segment carries at `level` (version 40).
fn max_payload(level: ErrorCorrection) -> usize {
    match level {
        ErrorCorrection::Low => 2953,
        ErrorCorrection::Medium => 2331,
        ErrorCorrection::Quartile => 1663,
        ErrorCorrection::High => 1273,
    }
}

impl std::fmt::Display for Symbol {
    /// The symbol in [`TextStyle::HalfBlocks`] with the standard quiet zone.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text(TextStyle::HalfBlocks, crate::QUIET_ZONE))
    }
}
