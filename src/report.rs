//! What the commands print for people and orchestrators: the plan (a `plan` log event, `plan`'s
//! text), the end-of-run summary (a `summary` log event, a table on a terminal, the `--report`
//! JSON) and `cache stats`.
//!
//! Contract: every function here only formats figures it is given; none computes one. Text for
//! people is aligned and ends with a newline; the JSON forms are the stable interface for
//! scripts (field names as in docs/GUIDE.md).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::outcome::{ExitKind, JobError, PlanFigures, RunSummary};
use crate::progress::thousands;
use crate::state::CacheStats;

/// A duration for people: `0.42 s`, `12.3 s`, `4m 05s`, `2h 10m`.
fn human_seconds(seconds: f64) -> String {
    let s = seconds.max(0.0);
    match s {
        s if s < 10.0 => format!("{s:.2} s"),
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!(
            "{}h {:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
    }
}

/// A plan's figures as one `plan` log event, before the lookups.
pub fn log_plan(f: &PlanFigures) {
    tracing::info!(
        event = "plan",
        rows = f.rows,
        distinct_numbers = f.distinct_numbers,
        cached = f.cached,
        to_look_up = f.to_look_up,
        requests = f.requests,
        least_time_s = f.least_time_s,
        accounts = f.accounts,
        batch_size = f.batch_size,
        batch_size_reason = %f.batch_size_reason,
        shard = f.shard,
        "plan"
    );
}

/// The end of a run as one `summary` log event (and a `sandbox` event with its counters), for
/// logs and orchestrators.
pub fn log_summary(s: &RunSummary, output: &Path) {
    tracing::info!(
        event = "summary",
        rows = s.plan.rows,
        distinct_numbers = s.plan.distinct_numbers,
        cached = s.plan.cached,
        looked_up = s.looked_up,
        failed_numbers = s.failed_numbers,
        requests = s.requests,
        retries = s.retries,
        elapsed_s = s.elapsed_s,
        passes = s.passes,
        stages = %json(&s.stages),
        cells_by_status = %json(&s.cells_by_status),
        errors = %json(&s.errors),
        top_operators = %json(&s.top_operators),
        rejected_answers = %json(&s.rejected_answers),
        accounts = %json(&s.accounts),
        batch_size = s.batch_size,
        batch_size_reason = %s.batch_size_reason,
        shard = s.plan.shard,
        metadata = %s.metadata,
        output = %written(s, output),
        "summary"
    );
    if let Some(stats) = &s.sandbox {
        tracing::info!(event = "sandbox", sandbox = %json(stats), "sandbox counters");
    }
}

/// Where the output went: its path, or why a run of one shard wrote none.
fn written(s: &RunSummary, output: &Path) -> String {
    match &s.plan.shard {
        Some(shard) => {
            format!("not written: shard {shard} (its answers are in its state: `cache export`)")
        }
        None => output.display().to_string(),
    }
}

/// Each login's requests, or `dropped` (`acme 40 · bob dropped`), when there are several.
fn logins_line(s: &RunSummary) -> Option<String> {
    if s.accounts.len() < 2 {
        return None;
    }
    let logins: Vec<String> = s
        .accounts
        .iter()
        .map(|a| match &a.dropped {
            Some(why) => format!("{} dropped ({why})", a.login),
            None => format!("{} {}", a.login, thousands(a.requests)),
        })
        .collect();
    Some(logins.join(" · "))
}

/// The end of a run as a short table for a person at a terminal.
pub fn closing_table(s: &RunSummary, output: &Path, failure: Option<&JobError>) -> String {
    let joined = |pairs: &mut dyn Iterator<Item = (String, u64)>| {
        pairs
            .map(|(k, n)| format!("{k} {}", thousands(n)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let empty = s.cells_by_status.get("empty").copied().unwrap_or(0);
    // The statuses in docs/GUIDE.md's order, then any other.
    const ORDER: [&str; 4] = ["ok", "not_found", "invalid_number", "failed"];
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    let mut statuses: Vec<(&String, &u64)> = s
        .cells_by_status
        .iter()
        .filter(|(k, _)| *k != "empty")
        .collect();
    statuses.sort_by_key(|(k, _)| rank(k));
    let mut by_status = statuses.into_iter().map(|(k, n)| (k.clone(), *n));
    let mut cells_detail = joined(&mut by_status);
    if empty > 0 {
        let _ = write!(cells_detail, " (and {} empty)", thousands(empty));
    }
    let errors: u64 = s.errors.values().sum();
    let rows: [(&str, String, String); 5] = [
        ("rows", thousands(s.plan.rows), String::new()),
        ("phone cells", thousands(s.plan.phone_cells), cells_detail),
        (
            "numbers",
            thousands(s.plan.distinct_numbers),
            format!(
                "cached {} · looked up {} · failed {}",
                thousands(s.plan.cached),
                thousands(s.looked_up),
                thousands(s.failed_numbers)
            ),
        ),
        (
            "requests",
            thousands(s.requests),
            format!(
                "retries {} · errors {}{}",
                thousands(s.retries),
                thousands(errors),
                match errors {
                    0 => String::new(),
                    _ => format!(" ({})", joined(&mut s.errors.clone().into_iter())),
                }
            ),
        ),
        ("time", human_seconds(s.elapsed_s), String::new()),
    ];
    let width = rows.iter().map(|(_, v, _)| v.len()).max().unwrap_or(0);
    let mut out = String::new();
    let headline = match failure {
        None => "phone-enrich: done".to_string(),
        Some(f) => format!("phone-enrich: stopped ({})", f.kind.name()),
    };
    let _ = writeln!(out, "{headline}");
    for (label, value, detail) in &rows {
        let _ = writeln!(out, "  {label:<12} {value:>width$}   {detail}");
    }
    out.push_str(&closing_notes(s, output, failure));
    out.lines()
        .map(|l| l.trim_end().to_string() + "\n")
        .collect()
}

/// The closing table's lines below the figures: the logins, the batches, the output, the
/// rejected answers kept.
fn closing_notes(s: &RunSummary, output: &Path, failure: Option<&JobError>) -> String {
    let mut out = String::new();
    if let Some(logins) = logins_line(s) {
        let _ = writeln!(out, "  {:<12} {logins}", "logins");
    }
    if s.batch_size > 0 {
        let (size, why) = (s.batch_size, &s.batch_size_reason);
        let _ = writeln!(out, "  {:<12} {size} numbers ({why})", "batches");
    }
    let written = failure.is_none_or(|f| f.kind == ExitKind::TooManyFailed);
    let _ = match written {
        true => writeln!(out, "  {:<12} {}", "output", self::written(s, output)),
        false => writeln!(out, "  {:<12} not written", "output"),
    };
    if let Some(dir) = s.rejected_answers.first().and_then(|f| f.parent()) {
        let kept = s.rejected_answers.len();
        let _ = writeln!(
            out,
            "  {:<12} {kept} answers kept in {}",
            "rejected",
            dir.display()
        );
    }
    out
}

/// The `--report` file: the outcome, its exit code, the error if any, and the summary.
pub fn report_json(
    s: &RunSummary,
    output: &Path,
    failure: Option<&JobError>,
    exit_code: u8,
) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        outcome: &'a str,
        exit_code: u8,
        error: Option<String>,
        /// `null` for a run of one shard, which writes none.
        output: Option<&'a Path>,
        summary: &'a RunSummary,
    }
    let report = Report {
        outcome: failure.map_or("success", |f| f.kind.name()),
        exit_code,
        error: failure.map(|f| format!("{:#}", f.error)),
        output: s.plan.shard.is_none().then_some(output),
        summary: s,
    };
    serde_json::to_string_pretty(&report).expect("a report serializes") + "\n"
}

/// `plan`'s figures, aligned, one per line, then where the batches' length comes from.
pub fn plan_text(f: &PlanFigures) -> String {
    let time =
        |s: f64| humantime::format_duration(Duration::from_secs(s.ceil() as u64)).to_string();
    let mut rows = vec![
        ("rows", thousands(f.rows)),
        ("phone cells", thousands(f.phone_cells)),
        ("invalid numbers", thousands(f.invalid_cells)),
        ("distinct numbers", thousands(f.distinct_numbers)),
        ("already cached", thousands(f.cached)),
        ("to look up", thousands(f.to_look_up)),
        ("requests needed", thousands(f.requests)),
        ("accounts", thousands(f.accounts)),
        ("other runs on them", thousands(f.runs_sharing_logins)),
        ("batch size", thousands(f.batch_size)),
        ("least time", time(f.least_time_s)),
    ];
    if let Some(shard) = &f.shard {
        rows.insert(5, ("shard", shard.clone()));
    }
    if let Some(sharded) = &f.sharded {
        rows.extend([
            ("shards", thousands(sharded.shards as u64)),
            ("largest shard", thousands(sharded.largest_shard)),
            ("requests per shard", thousands(sharded.requests_per_shard)),
            ("least time sharded", time(sharded.least_time_s)),
        ]);
    }
    format!("{}batch size: {}\n", aligned(&rows), f.batch_size_reason)
}

/// `cache stats`: the store's answers by host, status and age, and its size on disk.
pub fn cache_stats_text(dir: &Path, stats: &CacheStats) -> String {
    let mut out = format!(
        "{}: {} answers, {} on disk\n",
        dir.display(),
        thousands(stats.entries),
        human_bytes(stats.size_on_disk_bytes)
    );
    for (host, h) in &stats.hosts {
        let _ = writeln!(out, "  {host}");
        let rows: Vec<(&str, String)> = h
            .by_status
            .iter()
            .map(|(status, n)| (status.as_str(), thousands(*n)))
            .chain(
                h.by_age
                    .rows()
                    .into_iter()
                    .map(|(age, n)| (age, thousands(n))),
            )
            .collect();
        for line in aligned(&rows).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// `label   value` lines, labels left-aligned and values right-aligned in columns.
fn aligned(rows: &[(&str, String)]) -> String {
    let label = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let value = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(l, v)| format!("{l:<label$}  {v:>value$}\n"))
        .collect()
}

/// `93 MB`, `512 kB`, `17 B` (powers of 1000, as `du --si`).
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// A value as compact JSON, for a log field.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_for_people() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1_234_567, "1,234,567"),
        ];
        for (n, want) in cases {
            assert_eq!(thousands(*n), *want);
        }
        let cases: &[(f64, &str)] = &[
            (0.391, "0.39 s"),
            (12.34, "12.3 s"),
            (245.0, "4m 05s"),
            (7_800.0, "2h 10m"),
        ];
        for (s, want) in cases {
            assert_eq!(human_seconds(*s), *want);
        }
    }

    #[test]
    fn plan_text_is_aligned_and_ends_with_a_newline() {
        let text = plan_text(&PlanFigures {
            rows: 3_000,
            least_time_s: 3_725.0,
            batch_size: 100,
            batch_size_reason: "provider.batch_size".into(),
            sharded: Some(crate::outcome::ShardedFigures {
                shards: 3,
                largest_shard: 1_040,
                requests_per_shard: 11,
                least_time_s: 1_220.0,
            }),
            ..Default::default()
        });
        assert!(
            text.ends_with("\nbatch size: provider.batch_size\n"),
            "{text}"
        );
        let ends: Vec<usize> = text.lines().rev().skip(1).map(str::len).collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
        assert!(text.contains("least time          1h 2m 5s"), "{text}");
        assert!(text.contains("least time sharded   20m 20s"), "{text}");
    }

    #[test]
    fn the_closing_table_names_statuses_and_the_output() {
        let mut s = RunSummary::default();
        s.plan.rows = 3_000;
        s.plan.distinct_numbers = 1_681;
        s.looked_up = 1_681;
        s.requests = 17;
        s.plan.phone_cells = 2_707;
        s.cells_by_status = [("ok".to_string(), 2_707), ("empty".to_string(), 60)].into();
        s.errors = [("api_9".to_string(), 2)].into();
        let table = closing_table(&s, Path::new("out/demo.parquet"), None);
        assert!(table.starts_with("phone-enrich: done\n"), "{table}");
        assert!(
            table.contains("  phone cells   2,707   ok 2,707 (and 60 empty)\n"),
            "{table}"
        );
        assert!(table.contains("errors 2 (api_9 2)"), "{table}");
        assert!(
            table.ends_with("  output       out/demo.parquet\n"),
            "{table}"
        );
        let interrupted = JobError::new(ExitKind::Interrupted, anyhow::anyhow!("signal"));
        let table = closing_table(&s, Path::new("out.parquet"), Some(&interrupted));
        assert!(table.starts_with("phone-enrich: stopped (interrupted)\n"));
        assert!(table.ends_with("  output       not written\n"), "{table}");
    }
}
