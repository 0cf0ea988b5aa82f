//! Every code of the `ykt-qr` vectors (good, flipped, malformed: all are just bytes here) is
//! drawn as a PNG, scanned back, and gives exactly its bytes.

use ykt_qr_symbol::{QUIET_ZONE, Symbol, scan, scan_png};

use crate::vector_codes;

#[test]
fn every_vector_code_round_trips_through_png() {
    for (case, code) in vector_codes() {
        let symbol = Symbol::encode(&code).unwrap();
        let png = symbol.to_png(3, QUIET_ZONE as u32).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{case}");
        assert_eq!(scan_png(&png).unwrap(), code, "{case}");
        assert_eq!(scan(&png).unwrap(), code, "{case} (by signature)");
    }
}

#[test]
fn every_vector_code_round_trips_through_a_pgm_frame() {
    for (case, code) in vector_codes() {
        let frame = Symbol::encode(&code).unwrap().to_frame(2, 4).unwrap();
        assert_eq!(scan(&frame.to_pgm()).unwrap(), code, "{case}");
        let raw = ykt_qr_symbol::scan_grey(frame.width(), frame.height(), frame.pixels());
        assert_eq!(raw.unwrap(), code, "{case} (raw buffer)");
    }
}

#[test]
fn the_largest_code_takes_version_15_at_level_m() {
    // qr-code.md §1.2: 364 bytes in byte mode: L → 12, M → 15, Q → 17, H → 20.
    use ykt_qr_symbol::ErrorCorrection as E;
    let code = vec![0xA5; 364];
    for (level, version) in [
        (E::Low, 12),
        (E::Medium, 15),
        (E::Quartile, 17),
        (E::High, 20),
    ] {
        let symbol = Symbol::encode_with(&code, level).unwrap();
        assert_eq!(symbol.version(), version, "{level:?}");
        assert_eq!(symbol.width(), 17 + 4 * usize::from(version));
    }
    assert_eq!(Symbol::encode(&code).unwrap().version(), 15);
    assert_eq!(ykt_qr_symbol::ERROR_CORRECTION, E::Medium);
}

#[test]
fn the_brief_s_worked_example_decodes_as_a_code_after_the_scan() {
    let code = hex::decode(ykt_qr::testing::CODE_80_HEX).unwrap();
    let png = Symbol::encode(&code).unwrap().to_png(4, 4).unwrap();
    let scanned = scan(&png).unwrap();
    let decoded = ykt_qr::QrCode::decode(&scanned).unwrap();
    assert_eq!(decoded.generation_time, ykt_qr::testing::GENERATION_TIME);
}
