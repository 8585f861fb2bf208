//! Invariants every PROXY parse result must keep, shared by the fuzz targets.

use realip::proxy::{self, Status};

/// Checks one parse result of `data` (from any of the parsers).
pub fn check(data: &[u8], result: Result<Status<'_>, proxy::Error>) {
    match result {
        Ok(Status::Complete(h, n)) => {
            assert!(n <= data.len(), "consumed {n} of {}", data.len());
            // The header alone parses the same; one byte less is Partial.
            assert_eq!(proxy::parse(&data[..n]), Ok(Status::Complete(h, n)));
            assert!(matches!(proxy::parse(&data[..n - 1]), Ok(Status::Partial(_))));
            // Re-encoding gives a header that parses back equal.
            let mut out = Vec::new();
            h.write_to(&mut out).expect("a parsed header encodes");
            assert_eq!(proxy::parse(&out), Ok(Status::Complete(h, out.len())));
            // Validated TLVs iterate to the end of their region.
            let walked: usize = h.tlvs().map(|t| 3 + t.value.len()).sum();
            assert_eq!(walked, h.tlv_bytes().len());
            if let Some(ssl) = h.ssl() {
                let _ = ssl.tlvs().count();
            }
            assert_eq!(h.to_owned_header().as_header(), h);
        }
        Ok(Status::Partial(need)) => {
            if let Some(need) = need {
                assert!(data.len() + need.get() <= proxy::v2::MAX_LEN);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
