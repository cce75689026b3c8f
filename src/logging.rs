//! gwshim's own log lines: to stderr, one line per event, prefixed "gwshim:".

use log::{Level, LevelFilter};
use std::io::Write;

pub fn init(level: LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).format(|buf, record| {
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        writeln!(buf, "gwshim: {tag}{}", record.args())
    });
    // Fails only if a logger is already set, which nothing else does.
    let _ = builder.try_init();
}
