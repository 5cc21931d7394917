//! What loading a rule set costs: CPU time and peak memory of `RuleSet::parse`, then of the
//! first and the following detections on a page (where lazily compiled patterns are built).
//! Linux only (reads `/proc/self`). `docs/benchmarks.md` records the figures.
//!
//! Usage: `cargo run --release -p technographic --example load_rules -- [TECHNOLOGIES.json CATEGORIES.json]`
//! (the shipped rules without arguments).

use std::time::Instant;

use technographic::{Page, RuleSet, DEFAULT_CATEGORIES, DEFAULT_TECHNOLOGIES};

/// (user + system CPU seconds, peak resident KiB) of this process so far.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state field.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (technologies, categories) = match args.as_slice() {
        [t, c] => (
            std::fs::read_to_string(t).expect("technologies file"),
            std::fs::read_to_string(c).expect("categories file"),
        ),
        _ => (DEFAULT_TECHNOLOGIES.to_owned(), DEFAULT_CATEGORIES.to_owned()),
    };
    let (cpu0, rss0) = usage();
    let wall = Instant::now();
    let rules = RuleSet::parse(&technologies, &categories).expect("rules load");
    let load_wall = wall.elapsed();
    let (cpu1, rss1) = usage();
    let report = rules.report();
    println!(
        "rules: {} technologies, {} patterns ({} on the fallback engine, {} not compiled)",
        report.technologies,
        report.patterns,
        report.fallback.len(),
        report.failed.len()
    );
    println!(
        "load: {:.2} s wall, {:.2} s CPU, peak RSS {} MiB (+{} MiB)",
        load_wall.as_secs_f64(),
        cpu1 - cpu0,
        rss1 / 1024,
        rss1.saturating_sub(rss0) / 1024
    );
    let html = r#"<html><head><meta name="generator" content="WordPress 6.4.2">
        <script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
        <script src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>
        <link rel="stylesheet" href="/wp-content/themes/x/style.css"></head>
        <body><p>Powered by WordPress</p></body></html>"#;
    let page = Page::new(
        "https://acme.test/",
        [("server", "nginx/1.25.3"), ("x-powered-by", "PHP/8.2")],
        html.repeat(40),
    );
    for round in ["first", "second"] {
        let (cpu_a, _) = usage();
        let wall = Instant::now();
        let found = rules.detect(std::slice::from_ref(&page));
        let (cpu_b, rss) = usage();
        println!(
            "{round} detection: {} technologies, {:.3} s wall, {:.2} s CPU, peak RSS {} MiB",
            found.len(),
            wall.elapsed().as_secs_f64(),
            cpu_b - cpu_a,
            rss / 1024
        );
    }
}
