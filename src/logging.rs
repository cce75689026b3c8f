//! gwshim's own log lines: to stderr, one line per event, prefixed "gwshim:". When stderr is
//! the journal, each line starts with its syslog priority ("<4>") so `journalctl -p warning`
//! finds gwshim's warnings. The child's output is never touched.

use log::{Level, LevelFilter};
use std::io::Write;

/// Whether JOURNAL_STREAM ("DEVICE:INODE") names the file that stderr is.
pub fn stderr_is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let parsed = journal_stream
        .and_then(|v| v.split_once(':'))
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)));
    parsed.is_some() && parsed == stderr
}

/// syslog(3) priorities: err, warning, info, debug.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// "1 leftover process", "2 leftover processes": a count and its noun, singular or plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

fn stderr_id() -> Option<(u64, u64)> {
    let meta = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    Some((meta.st_dev, meta.st_ino))
}

pub fn init(level: LevelFilter) {
    // fstat only when there is a JOURNAL_STREAM to compare with: most runs have none.
    let stream = std::env::var("JOURNAL_STREAM").ok();
    let journal = stream.is_some() && stderr_is_journal(stream.as_deref(), stderr_id());
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).format(move |buf, record| {
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        if journal {
            write!(buf, "<{}>", priority(record.level()))?;
        }
        writeln!(buf, "gwshim: {tag}{}", record.args())
    });
    // Fails only if a logger is already set, which nothing else does.
    let _ = builder.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_journal() {
        type Row<'a> = (Option<&'a str>, Option<(u64, u64)>, bool);
        let table: &[Row] = &[
            (Some("8:1234"), Some((8, 1234)), true),
            (Some("8:1234"), Some((8, 1235)), false),
            (Some("8:1234"), None, false),
            (None, Some((8, 1234)), false),
            (Some("garbage"), Some((8, 1234)), false),
            (Some("8:"), Some((8, 0)), false),
        ];
        for &(env, fd, want) in table {
            assert_eq!(stderr_is_journal(env, fd), want, "{env:?} {fd:?}");
        }
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Trace), 7);
        assert_eq!(count(1, "process", "processes"), "1 process");
        assert_eq!(count(0, "process", "processes"), "0 processes");
        assert_eq!(count(2, "start", "starts"), "2 starts");
    }
}
