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

/// What `realip::proxy::v2` did for a header up to 128 bytes: the inline
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

// ------------------------------------------------------------------
// A copy-free route: the CRC32C of the header as it is, in one crc-fast
// call, corrected for the field. CRC32C is linear, so the two checksums
// differ by the field's own contribution, `F · x^(8(k+4)) mod P` for the
// field `F` (as the CRC register reads it, little-endian) followed by `k`
// bytes: one carry-less multiplication by a constant looked up by `k`,
// here in integer arithmetic (safe code cannot reach PCLMULQDQ), then a
// slice-by-4 reduction. Measured against the copy (`nlb_patterns`); kept
// here, not in the library, because it costs more instructions.
// Everything is in the reflected bit order of CRC32C: in a `u32` register
// value, bit `j` is the coefficient of `x^(31 - j)`.

/// The CRC32C polynomial, reflected.
const POLY: u32 = 0x82F6_3B78;

/// The register after one zero byte: `s · x^8 mod P`.
const fn zero_byte(s: u32) -> u32 {
    let mut s = s;
    let mut i = 0;
    while i < 8 {
        s = if s & 1 != 0 { (s >> 1) ^ POLY } else { s >> 1 };
        i += 1;
    }
    s
}

/// `ZERO4[i][b]`: a register holding only byte `b` in its byte `3 - i`,
/// after four zero bytes (slice-by-4 on zero data): `x^32` times any
/// register is four lookups.
static ZERO4: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut b = 0;
    while b < 256 {
        let mut s = b as u32;
        let mut i = 0;
        while i < 4 {
            s = zero_byte(s);
            t[i][b] = s;
            i += 1;
        }
        b += 1;
    }
    t
};

/// `s · x^32 mod P`.
#[inline(always)]
fn times_x32(s: u32) -> u32 {
    ZERO4[3][(s & 0xFF) as usize]
        ^ ZERO4[2][((s >> 8) & 0xFF) as usize]
        ^ ZERO4[1][((s >> 16) & 0xFF) as usize]
        ^ ZERO4[0][(s >> 24) as usize]
}

/// Carry-less product of two 32-bit values by integer multiplication:
/// each operand split into four sets of bits 4 apart, so that no column
/// of an integer product sums more than 8 bits and carries never reach
/// the next bit of the same set, which the masks then keep.
#[inline(always)]
const fn clmul32(a: u32, b: u32) -> u64 {
    const M: [u64; 4] = [0x1111_1111, 0x2222_2222, 0x4444_4444, 0x8888_8888];
    const W: u64 = 0x1111_1111_1111_1111;
    let (a, b) = (a as u64, b as u64);
    let (a0, a1, a2, a3) = (a & M[0], a & M[1], a & M[2], a & M[3]);
    let (b0, b1, b2, b3) = (b & M[0], b & M[1], b & M[2], b & M[3]);
    let z0 = (a0 * b0) ^ (a1 * b3) ^ (a2 * b2) ^ (a3 * b1);
    let z1 = (a0 * b1) ^ (a1 * b0) ^ (a2 * b3) ^ (a3 * b2);
    let z2 = (a0 * b2) ^ (a1 * b1) ^ (a2 * b0) ^ (a3 * b3);
    let z3 = (a0 * b3) ^ (a1 * b2) ^ (a2 * b1) ^ (a3 * b0);
    (z0 & W) | (z1 & (W << 1)) | (z2 & (W << 2)) | (z3 & (W << 3))
}

/// `a · b mod P` for two reflected registers. Their carry-less product
/// shifted left by one holds the product's 32 high-degree coefficients in
/// its low word and the 32 low-degree ones in its high word; the high part
/// is reduced as `x^32` times a register.
#[inline(always)]
fn mul_mod(a: u32, b: u32) -> u32 {
    let q = clmul32(a, b) << 1;
    times_x32(q as u32) ^ (q >> 32) as u32
}

/// `x^(8n)` as a reflected register (`x^0` is the top bit), for `n` up to
/// 2047, by repeated zero bytes (compile time only).
const fn x_pow_8n(n: usize) -> u32 {
    let mut s = 0x8000_0000;
    let mut i = 0;
    while i < n {
        s = zero_byte(s);
        i += 1;
    }
    s
}

/// `NEAR[k] = x^(8(k + 4)) mod P`: a field followed by `k < 256` bytes.
static NEAR: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut s = x_pow_8n(4);
    let mut k = 0;
    while k < 256 {
        t[k] = s;
        s = zero_byte(s);
        k += 1;
    }
    t
};

/// `FAR[j] = x^(8 · 256 j) mod P`: with [`NEAR`], any `k` of a `u16`
/// length (the field is followed by fewer than 65536 bytes).
static FAR: [u32; 256] = {
    let mut t = [0u32; 256];
    let step = x_pow_8n(256);
    let mut s = 0x8000_0000;
    let mut j = 0;
    while j < 256 {
        t[j] = s;
        s = const_mul_mod(s, step);
        j += 1;
    }
    t
};

/// [`mul_mod`] at compile time (bitwise reduction, no tables).
const fn const_mul_mod(a: u32, b: u32) -> u32 {
    let q = clmul32(a, b) << 1;
    let mut h = q as u32;
    let mut i = 0;
    while i < 4 {
        h = zero_byte(h);
        i += 1;
    }
    h ^ (q >> 32) as u32
}

/// `x^(8(k + 4)) mod P`: what the field's register value is multiplied by
/// when `k` bytes follow it.
#[inline(always)]
fn field_shift(k: usize) -> u32 {
    let near = NEAR[k & 0xFF];
    if k < 256 {
        near
    } else {
        mul_mod(near, FAR[(k >> 8) & 0xFF])
    }
}

/// CRC32C of `header` with the 4 bytes at `at` taken as zero. `at + 4`
/// must not pass the end of `header` (the caller checked it); if it did,
/// the result would be some wrong checksum, never a panic.
#[inline(always)]
fn clmul_crc_over(header: &[u8], at: usize) -> u32 {
    let Some(field) = header.get(at..).and_then(<[u8]>::first_chunk::<4>) else {
        return crc_fast::crc32_iscsi(header);
    };
    // The four bytes, processed from a zero register, leave what they
    // would leave as the register's own value: the field as little-endian.
    let f = u32::from_le_bytes(*field);
    let after = header.len() - at - 4;
    crc_fast::crc32_iscsi(header) ^ mul_mod(f, field_shift(after))
}

/// The correction against the `crc32c` crate over a zeroed copy: every
/// length to 300 and field position (every entry of `NEAR`), and long
/// headers (`FAR`); run before anything is timed.
fn check_clmul_route() {
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 131 + 7) as u8).collect();
    let check = |len: usize, at: usize| {
        let mut zeroed = data[..len].to_vec();
        zeroed[at..at + 4].fill(0);
        assert_eq!(
            clmul_crc_over(&data[..len], at),
            crc32c::crc32c(&zeroed),
            "len {len} at {at}"
        );
    };
    for len in 4..=300 {
        for at in 0..=len - 4 {
            check(len, at);
        }
    }
    for len in [1000, 4096, 65_551] {
        // A field sits 19 bytes in or later, so fewer than 65536 follow it.
        for at in [19, 31, 200, len / 2, len - 300, len - 5, len - 4] {
            check(len, at);
        }
    }
}

/// One crc-fast call over the header as it is, the field's contribution
/// removed by the carry-less multiplication above.
#[inline(never)]
fn nlb_crc_fast_whole_clmul_term(b: &[u8], at: usize) -> u32 {
    clmul_crc_over(b, at)
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

/// A floor: one crc-fast call over the first 8 bytes (its fixed cost).
#[inline(never)]
fn floor_crc_fast_8_bytes(b: &[u8], _at: usize) -> u32 {
    crc_fast::crc32_iscsi(&b[..8])
}

type Pattern = (&'static str, fn(&[u8], usize) -> u32);

/// The valid patterns, then (`FLOORS` of them at the end) the floors.
const NLB_PATTERNS: [Pattern; 14] = [
    ("crc_fast_whole_clmul_term", nlb_crc_fast_whole_clmul_term),
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
    ("floor_crc_fast_8_bytes", floor_crc_fast_8_bytes),
];
const FLOORS: usize = 4;

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
    check_clmul_route();
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
