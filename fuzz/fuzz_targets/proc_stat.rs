//! /proc/PID/stat: field 2 is the command name, up to 16 bytes the process chose itself
//! (spaces, parentheses, newlines and all), so the parser is fed arbitrary names too.
#![no_main]

use gwshim::proc::parse_stat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_stat(text);
    // A real line around an arbitrary command name must parse whatever the name holds.
    if text.len() <= 16 {
        let line =
            format!("4242 ({text}) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99 0");
        let stat = parse_stat(&line).expect("a real stat line");
        assert_eq!(
            (stat.state, stat.ppid, stat.pgrp, stat.start_time),
            ('S', 1, 4242, 99)
        );
    }
});
