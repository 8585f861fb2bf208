//! Trusted proxy ranges.
