//! Camera-like frames: the symbol rotated, scaled by a non-integer factor, with low contrast
//! and noise, still decodes to the same bytes.

use ykt_qr_symbol::{GreyFrame, Symbol, scan, scan_grey};

use crate::{Noise, vector_codes};

/// `src` rotated by `degrees` about its centre and scaled by `zoom`, on a canvas of `side`
/// pixels filled with white, sampled bilinearly.
fn rotate_scale(src: &GreyFrame, degrees: f64, zoom: f64, side: usize) -> GreyFrame {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (src.width() as f64 / 2.0, src.height() as f64 / 2.0);
    let c = side as f64 / 2.0;
    let sample = |x: f64, y: f64| -> f64 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let at = |x: f64, y: f64| {
            if x < 0.0 || y < 0.0 {
                return 255.0;
            }
            f64::from(src.pixel(x as usize, y as usize).unwrap_or(255))
        };
        at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1.0, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1.0) * (1.0 - fx) * fy
            + at(x0 + 1.0, y0 + 1.0) * fx * fy
    };
    let mut pixels = Vec::with_capacity(side * side);
    for y in 0..side {
        for x in 0..side {
            // Inverse map: output pixel → source pixel.
            let (dx, dy) = ((x as f64 - c) / zoom, (y as f64 - c) / zoom);
            let sx = cos * dx + sin * dy + cx;
            let sy = -sin * dx + cos * dy + cy;
            pixels.push(sample(sx, sy).round() as u8);
        }
    }
    GreyFrame::new(side, side, pixels).unwrap()
}

/// Squeezes the grey levels into [low, high], adds uniform noise of ± `amplitude` and flips
/// one pixel in `speckle` to black or white.
fn degrade(frame: &mut GreyFrame, low: u8, high: u8, amplitude: i32, speckle: u64, seed: u64) {
    let mut noise = Noise(seed);
    let span = i32::from(high) - i32::from(low);
    for p in frame.pixels_mut() {
        let r = noise.draw();
        let level = i32::from(low) + i32::from(*p) * span / 255;
        let jitter = (r % (2 * amplitude as u64 + 1)) as i32 - amplitude;
        *p = (level + jitter).clamp(0, 255) as u8;
        if (r >> 32).is_multiple_of(speckle) {
            *p = if (r >> 40) & 1 == 0 { 0 } else { 255 };
        }
    }
}

#[test]
fn rotated_scaled_noisy_frames_still_decode() {
    let code = hex::decode(ykt_qr::testing::CODE_80_HEX).unwrap();
    let clean = Symbol::encode(&code).unwrap().to_frame(4, 4).unwrap();
    // rqrr reads most but not all such frames (115 of a grid of 132 angles, zooms and noise,
    // with the scanner's retries); these four are among the readable ones.
    for (degrees, zoom, seed) in [
        (33.0, 1.37, 1),
        (90.0, 1.5, 1),
        (45.0, 1.1, 1),
        (12.0, 1.75, 1),
    ] {
        let side = (clean.width() as f64 * zoom * 1.5) as usize;
        let mut frame = rotate_scale(&clean, degrees, zoom, side);
        degrade(&mut frame, 40, 210, 25, 200, seed);
        let scanned = scan_grey(frame.width(), frame.height(), frame.pixels())
            .unwrap_or_else(|e| panic!("{degrees}° ×{zoom}: {e}"));
        assert_eq!(scanned, code, "{degrees}° ×{zoom}");
        // The same frame as a camera dump.
        assert_eq!(scan(&frame.to_pgm()).unwrap(), code);
    }
}

#[test]
fn a_mirrored_frame_decodes() {
    // Some front cameras mirror the picture; the decoder tries the mirrored grid.
    let code = vector_codes().remove(0).1;
    let clean = Symbol::encode(&code).unwrap().to_frame(3, 4).unwrap();
    let w = clean.width();
    let mut mirrored = clean.clone();
    for y in 0..w {
        for x in 0..w {
            mirrored.pixels_mut()[y * w + x] = clean.pixel(w - 1 - x, y).unwrap();
        }
    }
    assert_eq!(scan(&mirrored.to_pgm()).unwrap(), code);
}

#[test]
fn a_frame_with_the_symbol_small_in_a_corner_decodes() {
    let code = hex::decode(ykt_qr::testing::CODE_81_HEX).unwrap();
    let symbol = Symbol::encode(&code).unwrap().to_frame(3, 2).unwrap();
    let (w, h) = (640, 480);
    let mut frame = GreyFrame::filled(w, h, 180).unwrap();
    for y in 0..symbol.height() {
        for x in 0..symbol.width() {
            frame.pixels_mut()[(y + 150) * w + x + 300] = symbol.pixel(x, y).unwrap();
        }
    }
    degrade(&mut frame, 20, 230, 15, 500, 9);
    assert_eq!(scan(&frame.to_pgm()).unwrap(), code);
}
