#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ykt_fuzz_harness::gp_host_parsers::run(data));
