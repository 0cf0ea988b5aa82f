//! Each kind of bad input gives its own typed error.

use ykt_qr_symbol::{
    DecodeFailure, GreyFrame, ImageError, RenderError, ScanError, Symbol, scan, scan_grey,
    scan_pgm, scan_png,
};

fn code_png() -> Vec<u8> {
    let code = hex::decode(ykt_qr::testing::CODE_80_HEX).unwrap();
    Symbol::encode(&code).unwrap().to_png(3, 4).unwrap()
}

#[test]
fn a_blank_image_has_no_symbol() {
    let white = GreyFrame::filled(300, 200, 255).unwrap();
    assert!(matches!(
        scan(&white.to_png().unwrap()),
        Err(ScanError::NoSymbol)
    ));
    assert!(matches!(scan(&white.to_pgm()), Err(ScanError::NoSymbol)));
    let black = GreyFrame::filled(64, 64, 0).unwrap();
    assert!(matches!(
        scan_pgm(&black.to_pgm()),
        Err(ScanError::NoSymbol)
    ));
}

#[test]
fn a_truncated_png_is_a_bad_image() {
    let png = code_png();
    for cut in [9, 40, png.len() / 2, png.len() - 13] {
        match scan_png(&png[..cut]) {
            Err(ScanError::BadImage(ImageError::Png(_))) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_truncated_pgm_says_how_many_bytes_are_missing() {
    let frame = GreyFrame::filled(10, 10, 255).unwrap();
    let pgm = frame.to_pgm();
    match scan(&pgm[..pgm.len() - 7]) {
        Err(ScanError::BadImage(ImageError::Truncated { expected, actual })) => {
            assert_eq!((expected, actual), (100, 93));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        scan_pgm(b"P5\n10 x\n255\n"),
        Err(ScanError::BadImage(ImageError::PgmHeader(_)))
    ));
    assert!(matches!(
        scan_pgm(b"P5 0 10 255\n"),
        Err(ScanError::BadImage(ImageError::Empty { .. }))
    ));
    assert!(matches!(
        scan_pgm(b"P5 100000 100000 255\n"),
        Err(ScanError::BadImage(ImageError::TooLarge { .. }))
    ));
}

#[test]
fn pgm_headers_with_comments_and_16_bit_samples_are_read() {
    let frame = GreyFrame::new(2, 1, vec![0, 255]).unwrap();
    let mut pgm = b"P5\n# camera 7\n2 1\n# dump\n255\n".to_vec();
    pgm.extend_from_slice(frame.pixels());
    assert_eq!(GreyFrame::from_pgm(&pgm).unwrap(), frame);
    let wide = b"P5 2 1 65535\n\x00\x00\xff\xff";
    assert_eq!(GreyFrame::from_pgm(wide).unwrap(), frame);
}

#[test]
fn garbage_is_an_unknown_format() {
    for junk in [&b""[..], b"GIF89a", b"\x89PN", b"hello world"] {
        assert!(
            matches!(
                scan(junk),
                Err(ScanError::BadImage(ImageError::UnknownFormat))
            ),
            "{junk:?}"
        );
    }
    // A PNG signature followed by junk.
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(&[0x42; 200]);
    assert!(matches!(
        scan(&fake),
        Err(ScanError::BadImage(ImageError::Png(_)))
    ));
}

#[test]
fn a_raw_buffer_shorter_than_its_dimensions_is_refused() {
    assert!(matches!(
        scan_grey(20, 20, &[255; 399]),
        Err(ScanError::BadImage(ImageError::Truncated {
            expected: 400,
            actual: 399
        }))
    ));
    assert!(matches!(
        scan_grey(usize::MAX, 2, &[]),
        Err(ScanError::BadImage(ImageError::TooLarge { .. }))
    ));
}

#[test]
fn a_damaged_symbol_is_a_decode_failure_or_no_symbol() {
    let code = hex::decode(ykt_qr::testing::CODE_80_HEX).unwrap();
    let mut frame = Symbol::encode(&code).unwrap().to_frame(3, 4).unwrap();
    let w = frame.width();
    // Blot out a band across the data area, far more than level M corrects, keeping the
    // finder patterns.
    let pixels = frame.pixels_mut();
    for y in w * 2 / 5..w * 3 / 5 {
        for x in 0..w {
            pixels[y * w + x] = if (x / 3 + y / 3) % 2 == 0 { 0 } else { 255 };
        }
    }
    match scan_grey(w, w, frame.pixels()) {
        Err(ScanError::Decode(
            DecodeFailure::ErrorCorrection | DecodeFailure::Data | DecodeFailure::FormatInformation,
        ))
        | Err(ScanError::NoSymbol) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_different_symbols_in_one_frame_are_refused() {
    let a = Symbol::encode(b"first code")
        .unwrap()
        .to_frame(4, 4)
        .unwrap();
    let b = Symbol::encode(b"second code")
        .unwrap()
        .to_frame(4, 4)
        .unwrap();
    let (h, w) = (a.height().max(b.height()), a.width() + b.width());
    let mut both = GreyFrame::filled(w, h, 255).unwrap();
    for (frame, x0) in [(&a, 0), (&b, a.width())] {
        for y in 0..frame.height() {
            for x in 0..frame.width() {
                both.pixels_mut()[y * w + x0 + x] = frame.pixel(x, y).unwrap();
            }
        }
    }
    match scan(&both.to_pgm()) {
        Err(ScanError::SeveralSymbols(2)) => {}
        other => panic!("{other:?}"),
    }
    // The same payload twice is one code.
    let mut twice = GreyFrame::filled(a.width() * 2, a.height(), 255).unwrap();
    for x0 in [0, a.width()] {
        for y in 0..a.height() {
            for x in 0..a.width() {
                twice.pixels_mut()[y * a.width() * 2 + x0 + x] = a.pixel(x, y).unwrap();
            }
        }
    }
    assert_eq!(scan(&twice.to_pgm()).unwrap(), b"first code");
}

#[test]
fn render_errors() {
    assert!(matches!(
        Symbol::encode(&vec![0; 3000]),
        Err(RenderError::TooLong { len: 3000, .. })
    ));
    let symbol = Symbol::encode(b"x").unwrap();
    assert!(matches!(symbol.to_png(0, 4), Err(RenderError::Size { .. })));
    assert!(matches!(
        symbol.to_frame(100_000, 4),
        Err(RenderError::Size { .. })
    ));
}
