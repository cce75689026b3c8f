//! What lists gwshim's options, checked against the options the code declares
//! (`gwshim::cli::options()`), both ways: `gwshim --help`, the man page (docs/gwshim.1) and the
//! README's option table must each name every option, with its value and its GWSHIM_* twin,
//! and nothing the code does not take. Each check is also shown to catch a listing that lacks
//! an option. That each twin reaches its option is cli.rs's table test.

mod common;

use gwshim::cli::{Declared, options};
use std::fs;
use std::process::{Command, Stdio};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    fs::read_to_string(format!("{MANIFEST}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn help() -> String {
    let out = Command::new(common::GWSHIM)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .expect("gwshim --help");
    assert!(out.status.success(), "gwshim --help: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The declared option a listed flag (`--grace`, `-v`, `-vv`) names, if any.
fn declared<'a>(opts: &'a [Declared], flag: &str) -> Option<&'a Declared> {
    let short = flag
        .strip_prefix('-')
        .filter(|s| !s.starts_with('-'))
        .and_then(|s| s.chars().next());
    opts.iter()
        .find(|o| o.long == flag || (short.is_some() && o.short == short))
}

/// The flags `--help` lists in its Options section, the usage line's value for each option,
/// and the rule that names the twins: what is missing or unknown.
fn help_problems(help: &str, opts: &[Declared]) -> Vec<String> {
    let mut problems = Vec::new();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Options:"))
        .take_while(|l| !l.is_empty())
        // An option's own line: two spaces, then the option (wrapped text is indented more).
        .filter_map(|l| l.strip_prefix("  ").filter(|l| l.starts_with('-')))
        .flat_map(|l| {
            l.split([' ', ','])
                .take_while(|w| w.is_empty() || w.starts_with('-'))
                .filter(|w| w.starts_with('-'))
        })
        .collect();
    let usage = help.lines().next().unwrap_or_default();
    for o in opts {
        if !listed.contains(&o.long) {
            problems.push(format!("--help does not list {}", o.long));
        }
        if let Some(c) = o.short
            && !listed.contains(&format!("-{c}").as_str())
        {
            problems.push(format!("--help does not list -{c}"));
        }
        if let Some(v) = o.value
            && !usage.contains(&format!("[{} <{v}", o.long))
        {
            problems.push(format!("--help's usage line lacks {} {v}", o.long));
        }
    }
    for flag in listed {
        if declared(opts, flag).is_none() {
            problems.push(format!("--help lists {flag}, which gwshim does not take"));
        }
    }
    if !help.contains("Every option has an environment twin, GWSHIM_ and its name in capitals") {
        problems.push("--help does not say how the twins are named".into());
    }
    problems
}

/// The text of one section of a man page, from `.SH NAME` to the next `.SH`.
fn man_section<'a>(man: &'a str, name: &str) -> &'a str {
    let start = man
        .find(&format!("\n.SH {name}\n"))
        .map_or(man.len(), |i| i + 1);
    let rest = &man[start..];
    let end = rest[1..].find("\n.SH ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// The man page's OPTIONS headings (`.B \-\-group`, `.BI \-\-grace " SECS"`,
/// `.BR \-v ", " \-\-verbose`, each after a `.TP`), and its ENVIRONMENT section's twins.
fn man_problems(man: &str, opts: &[Declared]) -> Vec<String> {
    let mut problems = Vec::new();
    let section = man_section(man, "OPTIONS");
    let headings: Vec<String> = section
        .split("\n.TP\n")
        .skip(1)
        .filter_map(|entry| entry.lines().next())
        .map(|l| l.replace("\\-", "-"))
        .collect();
    // (flag, value) for every flag a heading names
    let mut listed: Vec<(String, Option<String>)> = Vec::new();
    for h in &headings {
        let Some((macro_, rest)) = h.split_once(' ') else {
            continue;
        };
        match macro_ {
            ".B" => listed.push((rest.trim().to_string(), None)),
            ".BI" => {
                let (flag, value) = rest.split_once(' ').unwrap_or((rest, ""));
                let value = value.trim().trim_matches('"').trim();
                listed.push((flag.to_string(), Some(value.to_string())));
            }
            ".BR" => listed.extend(
                rest.split("\", \"")
                    .map(|f| (f.trim_matches([' ', '"']).to_string(), None)),
            ),
            _ => {}
        }
    }
    for o in opts {
        match listed.iter().find(|(f, _)| f == o.long) {
            None => problems.push(format!("the man page's OPTIONS lack {}", o.long)),
            Some((_, value)) if value.as_deref() != o.value => problems.push(format!(
                "the man page gives {} the value {value:?}, the code {:?}",
                o.long, o.value
            )),
            Some(_) => {}
        }
        if let Some(c) = o.short
            && !listed.iter().any(|(f, _)| *f == format!("-{c}"))
        {
            problems.push(format!("the man page's OPTIONS lack -{c}"));
        }
    }
    for (flag, _) in &listed {
        if declared(opts, flag).is_none() {
            problems.push(format!(
                "the man page lists {flag}, which gwshim does not take"
            ));
        }
    }
    let environment = man_section(man, "ENVIRONMENT").replace("\\-", "-");
    for twin in opts.iter().filter_map(|o| o.twin.as_deref()) {
        if !environment.contains(twin) {
            problems.push(format!("the man page's ENVIRONMENT lacks {twin}"));
        }
    }
    problems
}

/// The README's option table: a row `| `--flag VALUE` | `GWSHIM_TWIN` | meaning |` for every
/// option with a twin, and one for -v and -q (whose twin is GWSHIM_LOG).
fn readme_problems(readme: &str, opts: &[Declared]) -> Vec<String> {
    let mut problems = Vec::new();
    let rows: Vec<(Vec<String>, String)> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| option | environment twin |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let ticked = |cell: &str| -> Vec<String> {
                cell.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect()
            };
            (
                ticked(cells.first().copied().unwrap_or_default()),
                ticked(cells.get(1).copied().unwrap_or_default()).join(" "),
            )
        })
        .collect();
    if rows.is_empty() {
        return vec!["the README has no option table".into()];
    }
    let find = |flag: &str| {
        rows.iter()
            .find(|(options, _)| options.iter().any(|o| o.split(' ').next() == Some(flag)))
    };
    for o in opts {
        let (flag, twin) = match (&o.twin, o.short) {
            (Some(twin), _) => (o.long.to_string(), twin.clone()),
            // Only the log switches stand for a variable, GWSHIM_LOG.
            (None, Some(c)) if ["--verbose", "--quiet"].contains(&o.long) => {
                (format!("-{c}"), "GWSHIM_LOG".to_string())
            }
            (None, _) => continue,
        };
        let spelled = match o.value {
            Some(v) if o.twin.is_some() => format!("{flag} {v}"),
            _ => flag.clone(),
        };
        match find(&flag) {
            None => problems.push(format!("the README's option table lacks {flag}")),
            Some((options, in_row)) => {
                if !options.contains(&spelled) {
                    problems.push(format!(
                        "the README's table spells {flag} {options:?}, not `{spelled}`"
                    ));
                }
                // `GWSHIM_LOG=off|error|...` names the variable and its values.
                if *in_row != twin && !in_row.starts_with(&format!("{twin}=")) {
                    problems.push(format!(
                        "the README's table gives {flag} the twin {in_row:?}, not {twin}"
                    ));
                }
            }
        }
    }
    for (options, twin) in &rows {
        for o in options {
            let flag = o.split(' ').next().unwrap_or_default();
            match declared(opts, flag) {
                None => problems.push(format!(
                    "the README's table lists {flag}, which gwshim does not take"
                )),
                Some(d) if d.twin.is_none() && !twin.starts_with("GWSHIM_LOG=") => problems.push(
                    format!("the README's table gives {flag} a twin, {twin}, the code does not"),
                ),
                Some(_) => {}
            }
        }
    }
    problems
}

#[test]
fn the_code_declares_the_options_and_twins_the_listings_are_checked_against() {
    let opts = options();
    let long = |name: &str| opts.iter().find(|o| o.long == name);
    let grace = long("--grace").expect("--grace");
    assert_eq!(grace.value, Some("SECS"));
    assert_eq!(grace.twin.as_deref(), Some("GWSHIM_GRACE"));
    assert_eq!(long("--group").and_then(|o| o.value), None);
    for no_twin in ["--help", "--version", "--verbose", "--quiet"] {
        assert_eq!(
            long(no_twin).map(|o| o.twin.clone()),
            Some(None),
            "{no_twin}"
        );
    }
    assert!(opts.len() > 20, "{opts:?}");
}

#[test]
fn help_lists_every_option() {
    let (opts, help) = (options(), help());
    let problems = help_problems(&help, &opts);
    assert!(problems.is_empty(), "{problems:#?}");
    // The check itself: an option missing from the Options section, or from the usage line.
    let without_grace: String = help
        .lines()
        .filter(|l| !l.starts_with("  --grace"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        help_problems(&without_grace, &opts),
        ["--help does not list --grace"]
    );
    let usage_without = help.replacen("[--grace <SECS>] ", "", 1);
    assert_eq!(
        help_problems(&usage_without, &opts),
        ["--help's usage line lacks --grace SECS"]
    );
}

#[test]
fn man_page_lists_every_option_and_twin() {
    let (opts, man) = (options(), read("docs/gwshim.1"));
    let problems = man_problems(&man, &opts);
    assert!(problems.is_empty(), "{problems:#?}");
    // The check itself: an option, a short one, a value and a twin the page lacks, and an
    // option the code does not take.
    let cases = [
        (".BI \\-\\-grace \" SECS\"", ".BI \\-\\-graze \" SECS\""),
        (".BR \\-v \", \" \\-\\-verbose", ".B \\-\\-verbose"),
        (
            ".BI \\-\\-backoff \" BASE:CAP\"",
            ".BI \\-\\-backoff \" SPAN\"",
        ),
    ];
    let want: [&[&str]; 3] = [
        &[
            "the man page's OPTIONS lack --grace",
            "the man page lists --graze, which gwshim does not take",
        ],
        &["the man page's OPTIONS lack -v"],
        &["the man page gives --backoff the value Some(\"SPAN\"), the code Some(\"BASE:CAP\")"],
    ];
    for ((from, to), want) in cases.iter().zip(want) {
        assert!(man.contains(from), "{from}");
        assert_eq!(man_problems(&man.replacen(from, to, 1), &opts), want);
    }
    let environment = man_section(&man, "ENVIRONMENT");
    let without_twin = man.replacen(
        environment,
        &environment.replace("GWSHIM_MIN_UPTIME", "GWSHIM_X"),
        1,
    );
    assert_eq!(
        man_problems(&without_twin, &opts),
        ["the man page's ENVIRONMENT lacks GWSHIM_MIN_UPTIME"]
    );
}

#[test]
fn readme_option_table_lists_every_option_and_twin() {
    let (opts, readme) = (options(), read("README.md"));
    let problems = readme_problems(&readme, &opts);
    assert!(problems.is_empty(), "{problems:#?}");
    // The check itself: a row gone, a twin misnamed, a value misspelled, an unknown option.
    let row = |flag: &str| {
        readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag}")))
            .unwrap_or_else(|| panic!("no row for {flag}"))
            .to_string()
    };
    let grace = row("--grace SECS");
    assert_eq!(
        readme_problems(&readme.replacen(&format!("{grace}\n"), "", 1), &opts),
        ["the README's option table lacks --grace"]
    );
    let renamed = grace.replace("`GWSHIM_GRACE`", "`GWSHIM_GRACE_SECS`");
    assert_eq!(
        readme_problems(&readme.replacen(&grace, &renamed, 1), &opts),
        ["the README's table gives --grace the twin \"GWSHIM_GRACE_SECS\", not GWSHIM_GRACE"]
    );
    let respelled = grace.replace("`--grace SECS`", "`--grace SPAN`");
    assert_eq!(
        readme_problems(&readme.replacen(&grace, &respelled, 1), &opts),
        ["the README's table spells --grace [\"--grace SPAN\"], not `--grace SECS`"]
    );
    let extra = format!("{grace}\n| `--graze SECS` | `GWSHIM_GRAZE` | eat |");
    assert_eq!(
        readme_problems(&readme.replacen(&grace, &extra, 1), &opts),
        ["the README's table lists --graze, which gwshim does not take"]
    );
}
