//! An 8-bit grey picture: what a scanner's camera gives, and its binary PGM (`P5`) dump.

use crate::error::ImageError;

/// The largest picture accepted or drawn, in pixels (16 Mpx: a 4096 × 4096 frame).
pub const MAX_PIXELS: usize = 1 << 24;

/// An 8-bit grey picture, row by row from the top left; 0 is black, 255 white.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyFrame {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl GreyFrame {
    /// A frame of `width` × `height` from its pixels; extra bytes after the last pixel are
    /// ignored, missing ones are an error.
    pub fn new(width: usize, height: usize, mut pixels: Vec<u8>) -> Result<Self, ImageError> {
        let expected = checked_area(width, height)?;
        if pixels.len() < expected {
            return Err(ImageError::Truncated {
                expected,
                actual: pixels.len(),
            });
        }
        pixels.truncate(expected);
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// A frame of one grey level.
    pub fn filled(width: usize, height: usize, level: u8) -> Result<Self, ImageError> {
        let area = checked_area(width, height)?;
        Ok(Self {
            width,
            height,
            pixels: vec![level; area],
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row by row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixels, row by row, for editing in place.
    pub fn pixels_mut(&mut self) -> &mut [u8] {
        &mut self.pixels
    }

    /// The pixel at (x, y); `None` outside the frame.
    pub fn pixel(&self, x: usize, y: usize) -> Option<u8> {
        if x < self.width && y < self.height {
            self.pixels.get(y * self.width + x).copied()
        } else {
            None
        }
    }

    /// The frame as a binary PGM (`P5`, maximum value 255).
    pub fn to_pgm(&self) -> Vec<u8> {
        let header = format!("P5\n{} {}\n255\n", self.width, self.height);
        let mut out = Vec::with_capacity(header.len() + self.pixels.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.pixels);
        out
    }

    /// Parses a binary PGM (`P5`): the header (with `#` comments), then one byte a pixel
    /// (maximum value up to 255, scaled to 0–255) or two bytes big-endian (up to 65535, the
    /// high byte of the scaled value is kept).
    pub fn from_pgm(bytes: &[u8]) -> Result<Self, ImageError> {
        let mut header = PgmHeader { bytes, at: 0 };
        if header.bytes.get(..2) != Some(b"P5") {
            return Err(ImageError::PgmHeader("no P5 magic"));
        }
        header.at = 2;
        let width = header.number("width")?;
        let height = header.number("height")?;
        let max = header.number("maximum value")?;
        if max == 0 || max > 65_535 {
            return Err(ImageError::PgmHeader("maximum value not in 1–65535"));
        }
        // Exactly one whitespace byte separates the header from the raster.
        match header.bytes.get(header.at) {
            Some(b) if b.is_ascii_whitespace() => header.at += 1,
            _ => return Err(ImageError::PgmHeader("no whitespace before the raster")),
        }
        let area = checked_area(width, height)?;
        let raster = &bytes[header.at..];
        let sample = if max > 255 { 2 } else { 1 };
        let expected = area * sample;
        if raster.len() < expected {
            return Err(ImageError::Truncated {
                expected,
                actual: raster.len(),
            });
        }
        let scale = |v: usize| -> u8 { (v.min(max) * 255 / max) as u8 };
        let pixels = if sample == 1 {
            raster[..area]
                .iter()
                .map(|b| scale(usize::from(*b)))
                .collect()
        } else {
            raster[..expected]
                .chunks_exact(2)
                .map(|p| scale(usize::from(u16::from_be_bytes([p[0], p[1]]))))
                .collect()
        };
        Ok(Self {
            width,
            height,
            pixels,
        })
    }
}

fn checked_area(width: usize, height: usize) -> Result<usize, ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { width, height });
    }
    match width.checked_mul(height) {
        Some(area) if area <= MAX_PIXELS => Ok(area),
        _ => Err(ImageError::TooLarge { width, height }),
    }
}

struct PgmHeader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl PgmHeader<'_> {
    /// Skips whitespace and comments, then reads a decimal number.
    fn number(&mut self, what: &'static str) -> Result<usize, ImageError> {
        loop {
            match self.bytes.get(self.at) {
                Some(b) if b.is_ascii_whitespace() => self.at += 1,
                Some(b'#') => {
                    while let Some(b) = self.bytes.get(self.at) {
                        self.at += 1;
                        if *b == b'\n' || *b == b'\r' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || digits.len() > 9 {
            return Err(ImageError::PgmHeader(what));
        }
        Ok(digits
            .iter()
            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0')))
    }
}
