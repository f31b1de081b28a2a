//! Shared by the benchmark targets: the machine's description, quantiles, people fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quartermaster::core::model::{Email, Handle, Person, PersonStatus, RoleName};

/// nproc, CPU model, RAM and the UTC date, for BENCHMARKS.md.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_owned(), |s| s.trim().to_owned());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .map_or("unknown".to_owned(), |l| l.trim().to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cpus} CPUs, {model}, {mem}; date {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Quantiles of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
}

/// Nearest-rank quantiles.
pub fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let q = |p: f64| {
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    };
    Stats {
        n: v.len(),
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
        max: v.last().copied().unwrap_or_default(),
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={} p95={} p99={} p99.9={} max={} ms",
            self.n,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )
    }
}

/// `n` bench people (`b00000`…) in `role`, managed by `manager`, with Discord ids
/// `2000000000000NNNNN`.
pub fn people(n: usize, role: &str, manager: &str) -> Vec<Person> {
    (0..n).map(|i| person(i, role, manager)).collect()
}

/// One bench person.
pub fn person(i: usize, role: &str, manager: &str) -> Person {
    let handle = format!("b{i:05}");
    Person {
        handle: Handle::parse(&handle).unwrap(),
        name: format!("Bench Person {i}"),
        email: Email::parse(&format!("{handle}@acme.test")).unwrap(),
        department: "Bench".into(),
        role: RoleName::parse(role).unwrap(),
        manager: Some(Handle::parse(manager).unwrap()),
        discord_id: Some(discord_id(i)),
        status: PersonStatus::Active,
    }
}

/// The Discord id of bench person `i`.
pub fn discord_id(i: usize) -> String {
    format!("2{i:017}")
}

/// Resident set size of process `pid` in KiB (from /proc), and its peak (VmHWM).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// True under `cargo bench` (which passes `--bench`). `cargo test --all-targets` also builds
/// and starts bench targets, without that flag: then a bench returns at once, so CI does not
/// spend minutes on it.
pub fn under_cargo_bench() -> bool {
    if std::env::args().any(|a| a == "--bench") {
        return true;
    }
    println!("not under `cargo bench`: skipped (run `cargo bench --bench NAME`)");
    false
}

/// CPU time this process has used so far (user + system, all threads), from /proc.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 10)
}
