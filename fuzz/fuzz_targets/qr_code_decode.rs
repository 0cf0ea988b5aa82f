#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ykt_fuzz_harness::qr_code_decode::run(data));
