//! The timing loop and median every plain (non-criterion) harness shares.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Instant;

/// Mean ns per call of `f` over `iters` calls, each result black-boxed.
/// Out of line so that callgrind can count exactly the loop
/// (`--toggle-collect='*ns_per_call*'`).
#[inline(never)]
pub(crate) fn ns_per_call<T>(iters: u32, f: &dyn Fn() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

/// The median of a non-empty sample.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
