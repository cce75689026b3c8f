//! The pid file reader: the gateway's JSON record or a bare integer, any bytes at all
//! (gwshim reads at most 64 KiB of a file anyone with write access to the folder may have
//! written), then the verdict over every kind of observed process.
#![no_main]

use gwshim::pidfile::{LockState, Process, Record, Verdict, parse_record, same_command, verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let record = parse_record(data);
    let live = vec!["python3".to_string(), "-m".into(), "hermes_cli.main".into()];
    let processes = [
        Process::Missing,
        Process::Dead('Z'),
        Process::Hidden,
        Process::Alive {
            start_time: 42,
            cmdline: Some(live.clone()),
        },
        Process::Alive {
            start_time: u64::MAX,
            cmdline: None,
        },
    ];
    for process in &processes {
        for lock in [LockState::Held, LockState::Free, LockState::Unknown] {
            let v = verdict(&record, process, lock, 4242);
            // Whatever it says, it must be explainable in a log line.
            let why = match &v {
                Verdict::Stale(why) | Verdict::Live(why) => why.to_string(),
            };
            assert!(!why.is_empty());
            if let Record::Invalid(_) = record {
                if lock != LockState::Held {
                    assert!(matches!(v, Verdict::Stale(_)), "garbage kept: {v:?}");
                }
            }
        }
    }
    if let Record::Pid {
        argv: Some(argv), ..
    } = &record
    {
        let _ = same_command(argv, &live);
        let _ = same_command(&live, argv);
        assert!(argv.is_empty() || same_command(argv, argv));
    }
});
