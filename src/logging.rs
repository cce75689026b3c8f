//! gwshim's own log lines: to stderr, one line per event, prefixed "gwshim:".

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        // One write per line, as before; a log line that cannot be written is dropped.
        let line = format!("gwshim: {tag}{}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

pub fn init(level: LevelFilter) {
    // Fails only if a logger is already set, which nothing else does.
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}
