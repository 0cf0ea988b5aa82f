//! The terminal renderings draw the same modules: read back into a frame, they scan.

use ykt_qr_symbol::{GreyFrame, Symbol, TextStyle, scan_frame};

/// Rebuilds a frame (4 pixels a module) from half-block text; `ink_dark` says whether the
/// drawn cells are dark modules.
fn frame_from_half_blocks(text: &str, ink_dark: bool) -> GreyFrame {
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    let side = lines[0].len();
    let rows = lines.len() * 2;
    let scale = 4;
    let mut pixels = vec![255u8; side * scale * rows * scale];
    for (ly, line) in lines.iter().enumerate() {
        assert_eq!(line.len(), side, "ragged line {ly}");
        for (x, ch) in line.iter().enumerate() {
            let (top, bottom) = match ch {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?}"),
            };
            for (half, ink) in [(0, top), (1, bottom)] {
                let dark = ink == ink_dark;
                for py in 0..scale {
                    for px in 0..scale {
                        let y = (ly * 2 + half) * scale + py;
                        pixels[y * side * scale + x * scale + px] = if dark { 0 } else { 255 };
                    }
                }
            }
        }
    }
    GreyFrame::new(side * scale, rows * scale, pixels).unwrap()
}

fn frame_from_ascii(text: &str) -> GreyFrame {
    let lines: Vec<&str> = text.lines().collect();
    let side = lines.len();
    let scale = 3;
    let mut pixels = vec![255u8; side * scale * side * scale];
    for (y, line) in lines.iter().enumerate() {
        assert_eq!(line.len(), side * 2);
        for x in 0..side {
            let dark = &line[2 * x..2 * x + 2] == "##";
            for py in 0..scale {
                for px in 0..scale {
                    pixels[(y * scale + py) * side * scale + x * scale + px] =
                        if dark { 0 } else { 255 };
                }
            }
        }
    }
    GreyFrame::new(side * scale, side * scale, pixels).unwrap()
}

#[test]
fn half_blocks_ascii_and_inverted_text_scan_back() {
    let code = hex::decode(ykt_qr::testing::CODE_80_HEX).unwrap();
    let symbol = Symbol::encode(&code).unwrap();
    let side = symbol.width() + 8;

    let text = symbol.to_text(TextStyle::HalfBlocks, 4);
    assert_eq!(text.lines().count(), side.div_ceil(2));
    assert_eq!(
        scan_frame(&frame_from_half_blocks(&text, true)).unwrap(),
        code
    );
    assert_eq!(text, symbol.to_string());

    let inverted = symbol.to_text(TextStyle::HalfBlocksInverted, 4);
    assert_eq!(
        scan_frame(&frame_from_half_blocks(&inverted, false)).unwrap(),
        code
    );
    // The quiet zone is drawn as ink when inverted.
    assert!(inverted.lines().next().unwrap().chars().all(|c| c == '█'));

    let ascii = symbol.to_text(TextStyle::Ascii, 4);
    assert!(ascii.is_ascii());
    assert_eq!(ascii.lines().count(), side);
    assert_eq!(scan_frame(&frame_from_ascii(&ascii)).unwrap(), code);
}
