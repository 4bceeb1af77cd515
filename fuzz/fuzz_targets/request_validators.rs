//! Fuzz target for the request validators (`aegis::security::request`): arbitrary bytes must
//! never panic, and what the validators accept must hold their invariants (`properties.rs`,
//! shared with the property test of the normal suite).
#![no_main]

#[path = "../properties.rs"]
mod properties;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| properties::request_validators(data));
