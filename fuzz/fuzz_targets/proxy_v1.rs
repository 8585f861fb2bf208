#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    realip_fuzz::check(data, realip::proxy::v1::parse(data));
});
