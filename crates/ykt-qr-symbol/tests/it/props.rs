//! Random payloads of every length a ride code may have (332 + N, N = 0…32, qr-code.md §1.1)
//! survive drawing and scanning byte for byte.

use proptest::prelude::*;
use ykt_qr_symbol::{Symbol, scan, scan_png};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ride_code_sized_payloads_round_trip(
        payload in (0usize..=32).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), 332 + n)),
        scale in 2u32..=4,
    ) {
        let symbol = Symbol::encode(&payload).unwrap();
        prop_assert!(symbol.version() <= 15);
        let png = symbol.to_png(scale, 4).unwrap();
        prop_assert_eq!(scan_png(&png).unwrap(), payload.clone());
        let pgm = symbol.to_frame(scale, 4).unwrap().to_pgm();
        prop_assert_eq!(scan(&pgm).unwrap(), payload);
    }

    #[test]
    fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = scan(&bytes);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&bytes);
        let _ = scan(&png);
        let mut pgm = b"P5 16 16 255\n".to_vec();
        pgm.extend_from_slice(&bytes);
        let _ = scan(&pgm);
    }
}
