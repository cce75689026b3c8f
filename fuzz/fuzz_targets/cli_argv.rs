//! The whole command line and GWSHIM_* environment: NUL-separated words, the words after a
//! lone "ENV" are NAME=value variables. Never a panic, only a config, an exit or a usage error.
#![no_main]

use gwshim::cli::{Parsed, parse};
use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let mut words = data.split(|&b| b == 0);
    let mut argv = vec![OsString::from("gwshim")];
    let mut env: Vec<(String, OsString)> = Vec::new();
    let mut in_env = false;
    for w in words.by_ref() {
        if w == b"ENV" {
            in_env = true;
            continue;
        }
        if in_env {
            if let Some(eq) = w.iter().position(|&b| b == b'=') {
                let name = String::from_utf8_lossy(&w[..eq]).into_owned();
                env.push((name, OsString::from_vec(w[eq + 1..].to_vec())));
            }
        } else {
            argv.push(OsString::from_vec(w.to_vec()));
        }
    }
    let lookup = |var: &str| {
        env.iter()
            .find(|(name, _)| name == var)
            .map(|(_, v)| v.clone())
    };
    match parse(argv, &lookup) {
        Ok(Parsed::Run(config)) => {
            assert!(!config.command.is_empty());
            if let Some(t) = config.stop_timeout {
                let _ = std::time::Instant::now() + t;
            }
            let _ = std::time::Instant::now() + config.grace;
        }
        Ok(Parsed::Exit { .. }) => {}
        Err(usage) => assert!(!usage.0.is_empty()),
    }
});
