//! The pacing state file (`NAME.pacing`): anything may be on disk after a crash, a full disk
//! or another writer. What parses must render back to the same history, and the wait
//! planned from it must be computable without overflow for any settings.
#![no_main]

use gwshim::pacing::{Backoff, History, plan, rate_wait};
use gwshim::unit::Settings;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(mut h) = History::parse(text) else {
        return;
    };
    assert_eq!(
        History::parse(&h.render()).as_ref(),
        Some(&h),
        "render/parse"
    );
    let settings = [
        Settings::default(),
        Settings {
            burst: 1,
            interval: Duration::from_secs(u32::MAX.into()),
            restart_sec: Duration::from_secs(u32::MAX.into()),
            ..Settings::default()
        },
        Settings {
            burst: u32::MAX,
            interval: Duration::from_millis(1),
            restart_sec: Duration::ZERO,
            ..Settings::default()
        },
    ];
    let backoffs = [
        Backoff::default(),
        Backoff {
            base: Duration::from_secs(u32::MAX.into()),
            cap: Duration::from_secs(u32::MAX.into()),
            min_uptime: Duration::from_secs(u32::MAX.into()),
        },
    ];
    let last = h.starts.last().copied().unwrap_or(0);
    for now in [0, last, last.saturating_add(1), u64::MAX] {
        for s in &settings {
            let _ = rate_wait(&h.starts, now, s);
            for b in &backoffs {
                for planned in [false, true] {
                    let p = plan(&h, now, Duration::from_millis(5), planned, s, b, None);
                    assert!(p.wait.is_zero() == p.cause.is_none(), "{p:?}");
                }
            }
        }
        let mut again = h.clone();
        again.record_start(now, Duration::from_secs(u32::MAX.into()));
        assert!(
            History::parse(&again.render()).is_some(),
            "record_start broke it"
        );
    }
    h.record_start(last, Duration::ZERO);
});
