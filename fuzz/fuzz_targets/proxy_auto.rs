#![no_main]
use realip::proxy::{self, Detected};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let result = proxy::parse(data);
    if proxy::detect(data) == Detected::NotProxy {
        assert_eq!(result, Err(proxy::Error::NotProxy));
    }
    realip_fuzz::check(data, result);
});
