//! Reading /proc/PID/stat: the few fields gwshim needs about a process.

/// Fields of /proc/PID/stat, numbered as in proc(5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: R, S, D, Z, T, t, X, ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 5.
    pub pgrp: i32,
    /// Field 22: clock ticks after boot; with the pid it names one process for good.
    pub start_time: u64,
}

/// Parses the text of /proc/PID/stat. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from the last ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 of proc(5).
    let field = |n: usize| fields.get(n - 3).copied();
    let mut state = field(3)?.chars();
    let stat = Stat {
        state: state.next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    };
    state.next().is_none().then_some(stat)
}

/// The stat of a live (or zombie) process; None when it does not exist.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let line = "4242 (python3) S 100 4242 100 34816 4242 4194560 1 0 0 0 0 0 0 0 20 0 1 0 225406 1 2 3";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                ppid: 100,
                pgrp: 4242,
                start_time: 225406
            })
        );
        let odd = "7 (a) (b) Z 1 7 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        assert_eq!(
            parse_stat(odd).map(|s| (s.state, s.start_time)),
            Some(('Z', 99))
        );
        for bad in [
            "",
            "1 (x",
            "1 (x) S 1 2",
            "1 (x) S a 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5",
            "1 (x) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }
}
