//! CRC32C on PROXY-header-sized inputs (16-256 bytes), side by side: the
//! crates that compute it and the call patterns a parser can use to take
//! the checksum field as zero. Picks what `realip::proxy::v2` verifies with.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// Where the checksum field sits: after a 16-byte fixed part, a 12-byte
/// IPv4 block and a 3-byte TLV head, as on an NLB header (clamped for the
/// shortest inputs).
fn field_at(n: usize) -> usize {
    31.min(n - 4)
}

/// crc32c, three calls: bytes before the field, four zeros, bytes after.
fn crc32c_three(b: &[u8], at: usize) -> u32 {
    let c = crc32c::crc32c(&b[..at]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &b[at + 4..])
}

#[repr(align(8))]
struct Chunk([u8; 256]);

/// crc32c, one call over an 8-byte-aligned stack copy with the field zeroed.
fn crc32c_copy(b: &[u8], at: usize) -> u32 {
    let mut c = Chunk([0; 256]);
    let c = &mut c.0[..b.len()];
    c.copy_from_slice(b);
    c[at..at + 4].fill(0);
    crc32c::crc32c(c)
}

/// crc-fast, one call over the same copy: what `realip::proxy::v2` does.
fn crc_fast_copy(b: &[u8], at: usize) -> u32 {
    let mut c = Chunk([0; 256]);
    let c = &mut c.0[..b.len()];
    c.copy_from_slice(b);
    c[at..at + 4].fill(0);
    crc_fast::crc32_iscsi(c)
}

/// crc-fast through its `Digest`, three updates around the field: no copy.
fn crc_fast_three(b: &[u8], at: usize) -> u32 {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    d.update(&b[..at]);
    d.update(&[0; 4]);
    d.update(&b[at + 4..]);
    d.finalize() as u32
}

const CRC_ISCSI16: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn benches(c: &mut Criterion) {
    let data: Vec<u8> = (0..256u32).map(|i| (i * 131 + 7) as u8).collect();
    // The patterns must agree before they are timed.
    for n in [16usize, 104, 256] {
        let b = &data[..n];
        let at = field_at(n);
        let mut z = b.to_vec();
        z[at..at + 4].fill(0);
        let want = crc32c::crc32c(&z);
        assert_eq!(crc32c_three(b, at), want);
        assert_eq!(crc32c_copy(b, at), want);
        assert_eq!(crc_fast_copy(b, at), want);
        assert_eq!(crc_fast_three(b, at), want);
        assert_eq!(
            crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &z) as u32,
            want
        );
        assert_eq!(CRC_ISCSI16.checksum(&z), want);
    }
    let mut g = c.benchmark_group("crc32c_small");
    for n in [16usize, 32, 64, 104, 128, 256] {
        let b = &data[..n];
        let at = field_at(n);
        g.bench_with_input(BenchmarkId::new("crc32c_one_call", n), b, |x, b| {
            x.iter(|| crc32c::crc32c(black_box(b)))
        });
        g.bench_with_input(BenchmarkId::new("crc32c_three_calls", n), b, |x, b| {
            x.iter(|| crc32c_three(black_box(b), at))
        });
        g.bench_with_input(BenchmarkId::new("crc32c_stack_copy", n), b, |x, b| {
            x.iter(|| crc32c_copy(black_box(b), at))
        });
        g.bench_with_input(BenchmarkId::new("crc_fast_one_call", n), b, |x, b| {
            x.iter(|| crc_fast::crc32_iscsi(black_box(b)))
        });
        g.bench_with_input(BenchmarkId::new("crc_fast_stack_copy", n), b, |x, b| {
            x.iter(|| crc_fast_copy(black_box(b), at))
        });
        g.bench_with_input(BenchmarkId::new("crc_fast_three_calls", n), b, |x, b| {
            x.iter(|| crc_fast_three(black_box(b), at))
        });
        g.bench_with_input(BenchmarkId::new("crc_slice16_one_call", n), b, |x, b| {
            x.iter(|| CRC_ISCSI16.checksum(black_box(b)))
        });
    }
    g.finish();
}

criterion_group!(crc32c_small, benches);
criterion_main!(crc32c_small);
