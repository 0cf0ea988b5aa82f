#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ykt_fuzz_harness::purse_store_data::run(data));
