//! Forwarded-header parsers (sans-IO).
