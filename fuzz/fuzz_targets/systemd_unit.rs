//! What gwshim reads about its unit: `systemctl show` output and /proc/self/cgroup.
#![no_main]

use gwshim::unit::{parse_show, unit_from_cgroup, will_restart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(s) = parse_show(text, "hermes-gateway.service") {
        for status in [0, 1, 75, 78, 255] {
            let _ = will_restart(status, &s);
        }
        let _ = std::time::Instant::now() + s.restart_sec + s.next_restart_delay();
        let _ = s.systemd_backs_off();
        let _ = s.interval + gwshim::pacing::margin(s.interval);
    }
    if let Some(unit) = unit_from_cgroup(text) {
        assert!(unit.ends_with(".service") && !unit.contains('/'));
        let _ = gwshim::unit::is_valid_unit_name(&unit);
    }
});
