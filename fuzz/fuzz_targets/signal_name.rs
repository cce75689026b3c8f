//! Signal names on the command line (`--pdeathsig`, `--rewrite-signal FROM:TO`, and their
//! GWSHIM_* twins): whatever parses is a real signal number, and its name parses back to it.
#![no_main]

use gwshim::cli::parse_rewrite;
use gwshim::signals::{name, parse_signal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(sig) = parse_signal(text) {
        assert!((1..=64).contains(&sig), "{text:?} -> {sig}");
        assert_eq!(parse_signal(&name(sig)), Ok(sig), "{text:?} -> {sig}");
    }
    if let Ok((from, to)) = parse_rewrite(text) {
        assert!((1..=64).contains(&from));
        assert!(to.is_none_or(|t| (1..=64).contains(&t)));
    }
});
