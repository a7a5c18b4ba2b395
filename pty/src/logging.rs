//! A tiny `log` backend: one line per record on stderr, filtered by `RUST_LOG`.
//!
//! `RUST_LOG` is a comma list of `level` or `target=level` (or a bare `target`,
//! meaning every level for it), levels being `off|error|warn|info|debug|trace`.
//! The most specific matching target wins (prefix on `::` boundaries). Unset or
//! empty means silent: clients print whatever the server writes into the terminal.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// One `target=level` rule; an empty target matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    target: String,
    level: LevelFilter,
}

/// A parsed `RUST_LOG` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// Sorted by target length, longest first, so the first match is the most specific.
    directives: Vec<Directive>,
}

impl Filter {
    /// Parses a `RUST_LOG` value; unknown levels and empty items are skipped.
    pub fn parse(spec: &str) -> Filter {
        let mut directives: Vec<Directive> = spec
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .filter_map(parse_directive)
            .collect();
        // Stable sort: for equal targets the later item wins after dedup below.
        directives.reverse();
        directives.sort_by_key(|d| std::cmp::Reverse(d.target.len()));
        Filter { directives }
    }

    /// The level allowed for `target` (`Off` when no rule matches).
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .find(|d| matches_target(&d.target, target))
            .map_or(LevelFilter::Off, |d| d.level)
    }

    /// The most verbose level any rule allows (for `log::set_max_level`).
    pub fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|d| d.level)
            .max()
            .unwrap_or(LevelFilter::Off)
    }
}

fn parse_directive(item: &str) -> Option<Directive> {
    match item.split_once('=') {
        Some((target, level)) => Some(Directive {
            target: target.trim().to_string(),
            level: parse_level(level.trim())?,
        }),
        None => Some(match parse_level(item) {
            Some(level) => Directive {
                target: String::new(),
                level,
            },
            None => Directive {
                target: item.to_string(),
                level: LevelFilter::Trace,
            },
        }),
    }
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    match text.to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// `axs` matches `axs` and `axs::http`, not `axs_core`.
fn matches_target(rule: &str, target: &str) -> bool {
    rule.is_empty()
        || target == rule
        || (target.starts_with(rule) && target[rule.len()..].starts_with("::"))
}

struct StderrLogger {
    filter: Filter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}: {}\n",
            utc_now(),
            record.level(),
            record.target(),
            record.args()
        );
        // One write per line keeps lines whole when threads log at once; a closed
        // stderr is not worth failing for.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the stderr logger with the filter from `RUST_LOG` (silent when unset).
/// Calling it again, or after another logger was installed, does nothing.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    init_with(&spec);
}

/// Installs the stderr logger with an explicit filter spec (same syntax as `RUST_LOG`).
pub fn init_with(spec: &str) {
    let filter = Filter::parse(spec);
    let max = filter.max_level();
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { filter }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_silent() {
        let f = Filter::parse("");
        assert_eq!(f.max_level(), LevelFilter::Off);
        assert_eq!(f.level_for("axs"), LevelFilter::Off);
    }

    #[test]
    fn global_and_per_target_levels() {
        let f = Filter::parse("warn, axs::http=debug,axs_pty=off,noisy");
        assert_eq!(f.level_for("axs"), LevelFilter::Warn);
        assert_eq!(f.level_for("axs::http"), LevelFilter::Debug);
        assert_eq!(f.level_for("axs::http::parse"), LevelFilter::Debug);
        assert_eq!(f.level_for("axs::httpx"), LevelFilter::Warn);
        assert_eq!(f.level_for("axs_pty::spawn"), LevelFilter::Off);
        assert_eq!(f.level_for("noisy"), LevelFilter::Trace);
        assert_eq!(f.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn later_item_wins_for_same_target() {
        let f = Filter::parse("error,info");
        assert_eq!(f.level_for("x"), LevelFilter::Info);
        let f = Filter::parse("ERROR");
        assert_eq!(f.level_for("x"), LevelFilter::Error);
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_657_367), "2026-11-26T01:42:47Z");
    }
}
