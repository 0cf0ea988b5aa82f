//! Reading: an image (PNG, binary PGM or a raw grey buffer) → the payload bytes of the one
//! symbol it shows.
//!
//! The payload comes from the decoder's byte sink (`rqrr::Grid::decode_to`), never through its
//! text interface, so binary codes come back exactly as drawn (qr-code.md §1.2).

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{DecodeFailure, ImageError, ScanError};
use crate::frame::{GreyFrame, MAX_PIXELS};

/// The PNG file signature.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Scans an image file's bytes, PNG or binary PGM (`P5`) by their signature.
pub fn scan(bytes: &[u8]) -> Result<Vec<u8>, ScanError> {
    if bytes.starts_with(PNG_SIGNATURE) {
        scan_png(bytes)
    } else if bytes.starts_with(b"P5") {
        scan_pgm(bytes)
    } else {
        Err(ImageError::UnknownFormat.into())
    }
}

/// Scans PNG bytes (any colour type; converted to 8-bit grey).
pub fn scan_png(bytes: &[u8]) -> Result<Vec<u8>, ScanError> {
    scan_frame(&png_to_frame(bytes)?)
}

/// Scans a binary PGM (`P5`), as a camera frame dump.
pub fn scan_pgm(bytes: &[u8]) -> Result<Vec<u8>, ScanError> {
    scan_frame(&GreyFrame::from_pgm(bytes)?)
}

/// Scans a raw 8-bit grey buffer of `width` × `height`, row by row.
pub fn scan_grey(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>, ScanError> {
    let area = width
        .checked_mul(height)
        .ok_or(ImageError::TooLarge { width, height })?;
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { width, height }.into());
    }
    if area > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height }.into());
    }
    if pixels.len() < area {
        return Err(ImageError::Truncated {
            expected: area,
            actual: pixels.len(),
        }
        .into());
    }
    detect(width, height, &pixels[..area])
}

/// Scans a grey frame.
pub fn scan_frame(frame: &GreyFrame) -> Result<Vec<u8>, ScanError> {
    detect(frame.width(), frame.height(), frame.pixels())
}

fn png_to_frame(bytes: &[u8]) -> Result<GreyFrame, ImageError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(ImageError::UnknownFormat);
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
    let side = MAX_PIXELS.isqrt() as u32;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(side * 4);
    limits.max_image_height = Some(side * 4);
    limits.max_alloc = Some(MAX_PIXELS as u64 * 8);
    reader.limits(limits);
    let image = reader.decode().map_err(ImageError::Png)?;
    let grey = image.into_luma8();
    let (width, height) = (grey.width() as usize, grey.height() as usize);
    GreyFrame::new(width, height, grey.into_raw())
}

/// The rescalings tried, in order, as (numerator, denominator), when the frame as given shows
/// no readable symbol; each is tried as it is and after a 3 × 3 median filter.
///
/// The decoder samples one pixel per module, and its finder-pattern and timing checks miss
/// symbols at some module sizes and angles that are readable at others (on our distorted test
/// frames, one attempt read 51 of 132, the rescaled and filtered ones together 115), so the scan
/// retries at a few scales, as camera pipelines do, and with speckle removed.
/// Upscaling is skipped for frames above [`UPSCALE_LIMIT`] pixels.
const RESCALINGS: [(usize, usize); 5] = [(1, 1), (2, 3), (1, 2), (3, 4), (3, 2)];

/// Frames above this many pixels are not upscaled.
const UPSCALE_LIMIT: usize = 1 << 20;

/// Finds the one symbol of a frame, retrying at the [`RESCALINGS`].
fn detect(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>, ScanError> {
    let mut failure = None;
    let filtered = median3(width, height, pixels);
    let attempts = RESCALINGS.iter().flat_map(|r| [(r, false), (r, true)]);
    for (&(num, den), median) in attempts {
        if num > den && width * height > UPSCALE_LIMIT {
            continue;
        }
        let source = if median { &filtered } else { pixels };
        let attempt = if num == den {
            detect_once(width, height, source)
        } else {
            let (w, h, scaled) = rescale(width, height, source, num, den);
            if w < 21 || h < 21 {
                continue;
            }
            detect_once(w, h, &scaled)
        };
        match attempt {
            Ok(payload) => return Ok(payload),
            Err(e @ ScanError::SeveralSymbols(_)) => return Err(e),
            Err(ScanError::Decode(f)) => failure = failure.or(Some(f)),
            Err(_) => {}
        }
    }
    Err(failure.map_or(ScanError::NoSymbol, ScanError::Decode))
}

/// The frame through a 3 × 3 median filter (edges: the pixels that exist).
fn median3(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    let mut window = [0u8; 9];
    for y in 0..height {
        for x in 0..width {
            let mut n = 0;
            for yy in y.saturating_sub(1)..(y + 2).min(height) {
                for xx in x.saturating_sub(1)..(x + 2).min(width) {
                    window[n] = pixels[yy * width + xx];
                    n += 1;
                }
            }
            let w = &mut window[..n];
            w.sort_unstable();
            out.push(w[n / 2]);
        }
    }
    out
}

/// The frame resized by num/den with a box filter (down) or nearest neighbour (up).
fn rescale(
    width: usize,
    height: usize,
    pixels: &[u8],
    num: usize,
    den: usize,
) -> (usize, usize, Vec<u8>) {
    let (w, h) = (width * num / den, height * num / den);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let y0 = y * den / num;
        let y1 = ((y + 1) * den).div_ceil(num).clamp(y0 + 1, height);
        for x in 0..w {
            let x0 = x * den / num;
            let x1 = ((x + 1) * den).div_ceil(num).clamp(x0 + 1, width);
            let mut sum = 0usize;
            for row in pixels[y0 * width..y1 * width].chunks_exact(width) {
                sum += row[x0..x1].iter().map(|p| usize::from(*p)).sum::<usize>();
            }
            out.push((sum / ((y1 - y0) * (x1 - x0))) as u8);
        }
    }
    (w, h, out)
}

/// Finds the symbols and decodes them: exactly one distinct payload is the answer.
fn detect_once(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>, ScanError> {
    // The decoder is a dependency; a panic inside it on a hostile image must not take the
    // terminal down, so it becomes an unreadable symbol.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            pixels[y * width + x]
        });
        let grids = prepared.detect_grids();
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut failure = None;
        for grid in &grids {
            let mut payload = Vec::new();
            match grid.decode_to(&mut payload) {
                Ok(_) => {
                    if !payloads.contains(&payload) {
                        payloads.push(payload);
                    }
                }
                Err(e) => failure = failure.or(Some(DecodeFailure::from(e))),
            }
        }
        (grids.len(), payloads, failure)
    }));
    let (found, mut payloads, failure) =
        outcome.map_err(|_| ScanError::Decode(DecodeFailure::Internal))?;
    match (payloads.len(), failure) {
        (1, _) => Ok(payloads.remove(0)),
        (n, _) if n > 1 => Err(ScanError::SeveralSymbols(n)),
        (_, Some(f)) => Err(ScanError::Decode(f)),
        _ if found > 0 => Err(ScanError::Decode(DecodeFailure::Internal)),
        _ => Err(ScanError::NoSymbol),
    }
}
