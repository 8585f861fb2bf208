//! Client-address resolution: the one decision point.
