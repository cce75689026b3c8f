//! The values of gwshim's options (and GWSHIM_* variables): status lists, start limits,
//! backoff, time spans, switches, pid file paths. The first byte picks the parser.
#![no_main]

use gwshim::cli::{
    parse_backoff, parse_pidfile, parse_seconds, parse_start_limit, parse_status,
    parse_status_list, parse_switch,
};
use gwshim::timespan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 7 {
        0 => {
            if let Ok(list) = parse_status_list(text) {
                assert!(list.0.iter().all(|n| (0..=255).contains(n)), "{text:?}");
            }
        }
        1 => {
            if let Ok(n) = parse_status(text) {
                assert!((0..=255).contains(&n));
            }
        }
        2 => {
            let _ = parse_start_limit(text);
        }
        3 => {
            if let Ok((base, cap)) = parse_backoff(text) {
                assert!(base <= cap);
            }
        }
        4 => {
            if let Ok(d) = parse_seconds(text) {
                // A deadline this far away must still be representable.
                let _ = std::time::Instant::now() + d;
                let _ = timespan::show(d);
            }
        }
        5 => {
            let _ = parse_switch(text);
        }
        _ => {
            let _ = parse_pidfile(text);
        }
    }
});
