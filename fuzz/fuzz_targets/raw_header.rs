//! Fuzz target for the raw-header check (`check_framing`) against httparse, the parser Pingora
//! uses: a head both accept must have one framing (`properties.rs`, shared with the property
//! test of the normal suite).
#![no_main]

#[path = "../properties.rs"]
mod properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| properties::raw_header(data));
