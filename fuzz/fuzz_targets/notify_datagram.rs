//! sd_notify datagrams from the child: what is relayed is well-formed, within systemd's size
//! limit, and never carries MAINPID=.
#![no_main]

use gwshim::notify::{MAX_DATAGRAM, Verdict, judge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match judge(data) {
        Verdict::Relay(bytes) => {
            assert!(!bytes.is_empty() && bytes.len() <= MAX_DATAGRAM);
            let text = std::str::from_utf8(&bytes).expect("relayed text");
            assert!(!text.lines().any(|l| l.starts_with("MAINPID=")), "{text:?}");
            assert!(judge(&bytes) == Verdict::Relay(bytes.clone()));
        }
        Verdict::Nothing | Verdict::Drop(_) => {}
    }
});
