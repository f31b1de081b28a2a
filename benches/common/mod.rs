//! Shared by the benchmark targets: the machine's description, quantiles, people fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use quartermaster::core::model::{ActionOp, Email, Handle, Person, PersonStatus, RoleName};
use quartermaster::core::ports::{Account, BulkOp, Connector, ConnectorError, Effect, Subject};
use quartermaster::engine::Connectors;

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
        timezone: None,
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

/// What a [`Watched`] connector saw, for benches that time connector calls.
pub enum Seen<'a> {
    /// `apply` is about to call the real connector.
    Started {
        op: ActionOp,
        who: &'a Subject,
        entitlement: Option<&'a str>,
    },
    /// `apply` returned; it started at `started`.
    Finished {
        op: ActionOp,
        who: &'a Subject,
        started: Instant,
    },
}

/// Called with the connector's name and what it saw.
pub type Watcher = Arc<dyn Fn(&str, Seen<'_>) + Send + Sync>;

/// Delegates every call to the real connector and reports each `apply` (the engine's one
/// call per action) to a [`Watcher`]. Because `apply` goes straight to the real connector,
/// the calls it makes inside are not seen.
pub struct Watched {
    pub name: String,
    pub inner: Arc<dyn Connector>,
    pub watch: Watcher,
}

/// Every connector in `conns`, wrapped in a [`Watched`] reporting to `watch`.
pub fn watched(conns: Connectors, watch: &Watcher) -> Connectors {
    conns
        .into_iter()
        .map(|(name, inner)| {
            let w = Watched {
                name: name.to_string(),
                inner,
                watch: watch.clone(),
            };
            (name, Arc::new(w) as Arc<dyn Connector>)
        })
        .collect()
}

#[async_trait]
impl Connector for Watched {
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError> {
        self.inner.find_account(who).await
    }
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.create_account(who).await
    }
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.disable_account(who).await
    }
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.enable_account(who).await
    }
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.inner.delete_account(who).await
    }
    async fn grant(&self, who: &Subject, e: &str) -> Result<Effect, ConnectorError> {
        self.inner.grant(who, e).await
    }
    async fn revoke(&self, who: &Subject, e: &str) -> Result<Effect, ConnectorError> {
        self.inner.revoke(who, e).await
    }
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        self.inner.list_grants(who).await
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.inner.test_connection().await
    }
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        (self.watch)(
            &self.name,
            Seen::Started {
                op,
                who,
                entitlement,
            },
        );
        let started = Instant::now();
        let r = self.inner.apply(op, who, entitlement).await;
        (self.watch)(&self.name, Seen::Finished { op, who, started });
        r
    }
    fn bulk(&self) -> bool {
        self.inner.bulk()
    }
    /// Each operation is seen starting when the bulk call starts, and finishing when it ends.
    async fn apply_many(&self, ops: &[BulkOp]) -> Vec<Result<Effect, ConnectorError>> {
        for o in ops {
            (self.watch)(
                &self.name,
                Seen::Started {
                    op: o.op,
                    who: &o.who,
                    entitlement: o.entitlement.as_deref(),
                },
            );
        }
        let started = Instant::now();
        let r = self.inner.apply_many(ops).await;
        for o in ops {
            (self.watch)(
                &self.name,
                Seen::Finished {
                    op: o.op,
                    who: &o.who,
                    started,
                },
            );
        }
        r
    }
}

/// Every log line written, in memory (for the canary searches).
#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);

impl LogBuf {
    /// What was logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process's log subscriber, writing into a [`LogBuf`] at `filter` (an
/// `EnvFilter` directive such as `debug`); the returned function sets another filter.
pub fn capture_logs(filter: &str) -> (LogBuf, impl Fn(&str)) {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.init();
    let set = move |f: &str| {
        handle
            .reload(tracing_subscriber::EnvFilter::new(f))
            .unwrap()
    };
    (logs, set)
}

/// Where canary secrets turned up: the logs, what was sent to chat, the audit rows.
pub struct CanariesFound {
    pub logs: usize,
    pub chat: usize,
    pub audit: usize,
}

impl CanariesFound {
    /// Counts every occurrence of each canary in the logs, the chat text and the audit rows
    /// (each row as serialised JSON).
    pub fn search(
        canaries: &[&str],
        logs: &str,
        chat: &str,
        audit: &[quartermaster::store::AuditRecord],
    ) -> Self {
        let count = |hay: &str| canaries.iter().map(|c| hay.matches(c).count()).sum();
        Self {
            logs: count(logs),
            chat: count(chat),
            audit: audit
                .iter()
                .map(|r| count(&serde_json::to_string(r).unwrap()))
                .sum(),
        }
    }

    pub fn total(&self) -> usize {
        self.logs + self.chat + self.audit
    }

    /// "N (logs a, chat b, audit c)".
    pub fn summary(&self) -> String {
        format!(
            "{} (logs {}, chat {}, audit {})",
            self.total(),
            self.logs,
            self.chat,
            self.audit
        )
    }
}
