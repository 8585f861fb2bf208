//! CRC32C on PROXY-header-sized inputs (16-256 bytes), side by side: the
//! crates that compute it and the call patterns a parser can use to take
//! the checksum field as zero. Picks what `realip::proxy::v2` verifies with.
//!
//! Group `crc32c_small`: the crates on 16-256 bytes. Group `crc32c_nlb`:
//! the ways to take the field of the real NLB header (`common/proxy.rs`)
//! as zero, at the allocation's alignment and 3 bytes off it.
//! `CRC32C_PLAIN=1` runs the same NLB patterns in a plain interleaved
//! timing loop instead; `CRC32C_ONLY=name` runs one 1000 times (for
//! `valgrind --tool=callgrind`).

use std::hint::black_box;

#[path = "common/proxy.rs"]
mod common;

use criterion::{criterion_group, BenchmarkId, Criterion};

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

/// crc-fast, one call over the same copy (made by `memcpy`): what
/// `realip::proxy::v2` did before it copied inline.
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

// ------------------------------------------------------------------
// The real NLB header: ways to take its checksum field as zero, each one
// `#[inline(never)]` so callgrind counts its instructions per call.

/// CRC32C state after four zero bytes, one table per byte of the state
/// (slice-by-4 with zero data).
const fn zero4_tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 4 {
            let p = t[k - 1][i];
            t[k][i] = (p >> 8) ^ t[0][(p & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}
static Z4: [[u32; 256]; 4] = zero4_tables();

fn zero4(s: u32) -> u32 {
    Z4[3][(s & 0xFF) as usize]
        ^ Z4[2][((s >> 8) & 0xFF) as usize]
        ^ Z4[1][((s >> 16) & 0xFF) as usize]
        ^ Z4[0][(s >> 24) as usize]
}

/// The 8-byte-aligned buffer of `realip::proxy::v2`, with its two steps
/// written out the same way (the library keeps them private).
#[repr(align(8))]
struct CrcChunk([u8; 128]);

impl CrcChunk {
    /// Two fixed-size copies that overlap, inline: no `memcpy` call.
    #[inline(always)]
    fn fill_from(&mut self, part: &[u8]) -> &mut [u8] {
        let n = part.len().min(128);
        let (dst, src) = (&mut self.0[..n], &part[..n]);
        macro_rules! both_ends {
            ($k:literal) => {{
                dst[..$k].copy_from_slice(&src[..$k]);
                dst[n - $k..].copy_from_slice(&src[n - $k..]);
            }};
        }
        match n {
            64.. => both_ends!(64),
            32..=63 => both_ends!(32),
            16..=31 => both_ends!(16),
            8..=15 => both_ends!(8),
            _ => dst.copy_from_slice(src),
        }
        dst
    }

    /// Zeroes `lo..hi` (at most 4 bytes) by rewriting whole 8-byte words.
    #[inline(always)]
    fn clear(&mut self, lo: usize, hi: usize) {
        if lo >= hi || hi - lo > 4 {
            return;
        }
        let w = lo / 8 * 8;
        let mask = ((1u128 << (8 * (hi - lo))) - 1) << (8 * (lo - w));
        for (i, m) in [mask as u64, (mask >> 64) as u64].into_iter().enumerate() {
            let at = w + 8 * i;
            if m == 0 {
                continue;
            }
            if let Some(word) = self.0.get_mut(at..at + 8) {
                let mut x = [0u8; 8];
                x.copy_from_slice(word);
                word.copy_from_slice(&(u64::from_le_bytes(x) & !m).to_le_bytes());
            }
        }
    }
}

/// What `realip::proxy::v2` does for a header up to 128 bytes: the inline
/// copy, the field cleared word-wise, one crc-fast call.
#[inline(never)]
fn nlb_crc_fast_inline_copy(b: &[u8], at: usize) -> u32 {
    let mut c = CrcChunk([0; 128]);
    c.fill_from(b);
    c.clear(at, at + 4);
    crc_fast::crc32_iscsi(&c.0[..b.len()])
}

#[inline(never)]
fn nlb_crc_fast_copy(b: &[u8], at: usize) -> u32 {
    crc_fast_copy(b, at)
}

#[inline(never)]
fn nlb_crc32c_copy(b: &[u8], at: usize) -> u32 {
    crc32c_copy(b, at)
}

#[inline(never)]
fn nlb_crc32c_three(b: &[u8], at: usize) -> u32 {
    crc32c_three(b, at)
}

/// Two calls around the field, the four zero bytes applied to the state
/// in between by table.
#[inline(never)]
fn nlb_crc32c_two_table(b: &[u8], at: usize) -> u32 {
    let c = crc32c::crc32c(&b[..at]);
    let c = !zero4(!c);
    crc32c::crc32c_append(c, &b[at + 4..])
}

#[inline(never)]
fn nlb_crc_fast_digest_three(b: &[u8], at: usize) -> u32 {
    crc_fast_three(b, at)
}

#[repr(align(8))]
struct Patch([u8; 16]);

/// Three calls cut at 8-byte-aligned addresses: the bytes before the
/// aligned word holding the field, a 16-byte aligned copy of those words
/// with the field zeroed, and the rest; no call starts unaligned except
/// the first (as a single call would).
#[inline(never)]
fn nlb_crc32c_aligned_patch(b: &[u8], at: usize) -> u32 {
    let lead = (b.as_ptr() as usize + at) % 8;
    let k = at - lead.min(at);
    let end = (k + 16).min(b.len());
    let mut p = Patch([0; 16]);
    let p = &mut p.0[..end - k];
    p.copy_from_slice(&b[k..end]);
    p[at - k..at - k + 4].fill(0);
    let c = crc32c::crc32c(&b[..k]);
    let c = crc32c::crc32c_append(c, p);
    crc32c::crc32c_append(c, &b[end..])
}

/// Zero bytes the checksum is extended with.
static ZEROS: [u8; 256] = [0; 256];

/// What the field's bytes add to the CRC of the header as it is: the CRC
/// register started from the field (as the first 4 data bytes would leave
/// it) and run over 4 + (bytes after the field) zeros, here by crc32c from
/// a static zero buffer. XORed with the CRC of the header as it is, it
/// gives the CRC with the field zeroed, with no copy of the header.
fn field_term_crc32c(b: &[u8], at: usize) -> u32 {
    let f = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut rest = b.len() - at;
    let mut c = !f;
    while rest > 0 {
        let n = rest.min(ZEROS.len());
        c = crc32c::crc32c_append(c, &ZEROS[..n]);
        rest -= n;
    }
    !c
}

/// The same term by crc-fast alone: the register run from state `s` over
/// `k` zero bytes is crc-fast's checksum of `s ^ !0` (4 bytes, little
/// endian) and `k - 4` zeros, xor `!0`; a stack buffer holds that message.
fn field_term_crc_fast(b: &[u8], at: usize) -> u32 {
    let mut s = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut rest = b.len() - at;
    let mut m = Chunk([0; 256]);
    // Every piece at least 4 bytes long (`rest` starts at 4 or more).
    while rest > 0 {
        let k = if rest <= 256 { rest } else { 252 };
        m.0[..4].copy_from_slice(&(s ^ !0).to_le_bytes());
        s = crc_fast::crc32_iscsi(&m.0[..k]) ^ !0;
        rest -= k;
    }
    s
}

/// crc-fast over the header as it is, corrected by the field's term.
#[inline(never)]
fn nlb_crc_fast_whole_term_crc32c(b: &[u8], at: usize) -> u32 {
    crc_fast::crc32_iscsi(b) ^ field_term_crc32c(b, at)
}

#[inline(never)]
fn nlb_crc_fast_whole_term_crc_fast(b: &[u8], at: usize) -> u32 {
    crc_fast::crc32_iscsi(b) ^ field_term_crc_fast(b, at)
}

/// Not a valid pattern: the `memcpy` copy without zeroing the field, to
/// see what the copy alone costs.
#[inline(never)]
fn floor_crc_fast_copy_unzeroed(b: &[u8], _at: usize) -> u32 {
    let mut c = Chunk([0; 256]);
    let c = &mut c.0[..b.len()];
    c.copy_from_slice(b);
    crc_fast::crc32_iscsi(c)
}

/// Floors, not valid patterns: one call over the header as it is.
#[inline(never)]
fn floor_crc32c_whole(b: &[u8], _at: usize) -> u32 {
    crc32c::crc32c(b)
}

#[inline(never)]
fn floor_crc_fast_whole(b: &[u8], _at: usize) -> u32 {
    crc_fast::crc32_iscsi(b)
}

type Pattern = (&'static str, fn(&[u8], usize) -> u32);

/// The valid patterns, then (`FLOORS` of them at the end) the floors.
const NLB_PATTERNS: [Pattern; 12] = [
    ("crc_fast_inline_copy", nlb_crc_fast_inline_copy),
    ("crc_fast_memcpy_copy", nlb_crc_fast_copy),
    ("crc32c_memcpy_copy", nlb_crc32c_copy),
    ("crc32c_three_calls", nlb_crc32c_three),
    ("crc32c_two_calls_zero4_table", nlb_crc32c_two_table),
    ("crc_fast_digest_three", nlb_crc_fast_digest_three),
    ("crc32c_aligned_patch", nlb_crc32c_aligned_patch),
    ("crc_fast_whole_term_crc32c", nlb_crc_fast_whole_term_crc32c),
    (
        "crc_fast_whole_term_crc_fast",
        nlb_crc_fast_whole_term_crc_fast,
    ),
    (
        "floor_crc_fast_memcpy_unzeroed",
        floor_crc_fast_copy_unzeroed,
    ),
    ("floor_crc32c_whole_unzeroed", floor_crc32c_whole),
    ("floor_crc_fast_whole_unzeroed", floor_crc_fast_whole),
];
const FLOORS: usize = 3;

/// The NLB header at its allocation's alignment and 3 bytes past it.
fn nlb_inputs() -> (Vec<u8>, Vec<u8>, usize) {
    let nlb = common::nlb();
    let at = 16 + 12 + 3;
    let mut shifted = vec![0u8; 3];
    shifted.extend_from_slice(&nlb);
    (nlb, shifted, at)
}

fn nlb_benches(c: &mut Criterion) {
    let (nlb, shifted, at) = nlb_inputs();
    let mut zeroed = nlb.clone();
    zeroed[at..at + 4].fill(0);
    let want = crc32c::crc32c(&zeroed);
    assert_eq!(
        u32::from_be_bytes(nlb[at..at + 4].try_into().unwrap()),
        want
    );
    for (name, f) in &NLB_PATTERNS[..NLB_PATTERNS.len() - FLOORS] {
        assert_eq!(f(&nlb, at), want, "{name}");
        assert_eq!(f(&shifted[3..], at), want, "{name}");
    }
    let mut g = c.benchmark_group("crc32c_nlb");
    for (input, b) in [("aligned", &nlb[..]), ("offset3", &shifted[3..])] {
        for (name, f) in NLB_PATTERNS {
            g.bench_with_input(BenchmarkId::new(name, input), b, |x, b| {
                x.iter(|| f(black_box(b), at))
            });
        }
    }
    g.finish();
}

criterion_group!(crc32c_small, benches, nlb_benches);

fn main() {
    // `CRC32C_ONLY=crc32c_three_calls`: 1000 calls of that pattern on the
    // aligned NLB header and nothing else, to count its instructions
    // under `valgrind --tool=callgrind`.
    if let Ok(only) = std::env::var("CRC32C_ONLY") {
        let (nlb, _, at) = nlb_inputs();
        let (_, f) = NLB_PATTERNS
            .iter()
            .find(|(n, _)| *n == only)
            .expect("a pattern name");
        for _ in 0..1000 {
            black_box(f(black_box(&nlb), at));
        }
        return;
    }
    // `CRC32C_PLAIN=1`: a plain timing loop over the NLB patterns instead,
    // interleaved (each round times every pattern once), 15 rounds of 10^6
    // calls; prints the minimum and median ns per call.
    if std::env::var_os("CRC32C_PLAIN").is_some() {
        let (nlb, _, at) = nlb_inputs();
        let mut times = vec![Vec::new(); NLB_PATTERNS.len()];
        for _ in 0..15 {
            for (i, (_, f)) in NLB_PATTERNS.iter().enumerate() {
                let start = std::time::Instant::now();
                for _ in 0..1_000_000 {
                    black_box(f(black_box(&nlb), at));
                }
                times[i].push(start.elapsed().as_nanos() as f64 / 1e6);
            }
        }
        for ((n, _), mut t) in NLB_PATTERNS.iter().zip(times) {
            t.sort_by(f64::total_cmp);
            println!(
                "{n:<32} min {:>6.2} ns   median {:>6.2} ns",
                t[0],
                t[t.len() / 2]
            );
        }
        return;
    }
    crc32c_small();
    Criterion::default().configure_from_args().final_summary();
}
