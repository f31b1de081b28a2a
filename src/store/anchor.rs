//! Anchors: copies of the audit chain's head kept outside the database (`[audit] anchor_file`),
//! so that rows cut off the end, a chain rolled back to an older copy of the seal, or an
//! emptied audit table are caught by `audit verify --anchors FILE`.
//!
//! The file is text, one record per line, only ever appended to:
//!
//! ```text
//! genesis 2025-01-02T03:04:05.000006Z
//! seal 42 <hash of row 42> <hex HMAC of "42:<hash>", or -> 2025-01-02T03:04:06.000000Z
//! ```
//!
//! `genesis` names when the database was created (its `audit_genesis` record); each `seal` line
//! pins the chain's head after a commit. Every line goes out as one `write` on a file opened
//! with `O_APPEND`, so several processes (serve and a console) can append to one file and the
//! lines stay whole; each is followed by `fsync`.
//!
//! Cost: a commit that appended audit rows waits until a line covering its head is on disk.
//! One writer thread per process does the writing; commits that finish while it is busy are
//! covered by a single line for the newest head (group commit), so under load the file grows
//! by at most one line per `fsync`, and a commit waits for at most two.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;

use super::DbError;

/// The chain's head after a commit, as anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The last row's `seq`.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// The seal's HMAC, when an audit key is configured.
    pub mac: Option<String>,
}

/// One line of an anchor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorLine {
    /// The database the file was started for was created at this moment.
    Genesis {
        /// Its `audit_genesis.created_at`, RFC 3339 with microseconds.
        created_at: String,
    },
    /// The chain's head at some commit.
    Seal {
        /// The head's `seq`.
        seq: i64,
        /// The head's hash.
        hash: String,
        /// The seal's HMAC, if there was a key.
        mac: Option<String>,
    },
}

/// Parses an anchor file: the lines, each with its line number (from 1). Blank lines are
/// skipped; anything else that is not a record is an error naming its line.
pub fn parse_anchors(text: &str) -> Result<Vec<(usize, AnchorLine)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        let is_hash = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let rec = match words.as_slice() {
            [] => continue,
            ["genesis", at] if DateTime::parse_from_rfc3339(at).is_ok() => AnchorLine::Genesis {
                created_at: (*at).to_owned(),
            },
            ["seal", seq, hash, mac, _at] if is_hash(hash) => {
                let seq = seq
                    .parse::<i64>()
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| format!("line {n}: {seq:?} is not a row number"))?;
                AnchorLine::Seal {
                    seq,
                    hash: (*hash).to_owned(),
                    mac: (*mac != "-").then(|| (*mac).to_owned()),
                }
            }
            _ => {
                return Err(format!(
                    "line {n} is not an anchor record (\"genesis TIME\" or \"seal SEQ HASH MAC \
                     TIME\")"
                ));
            }
        };
        out.push((n, rec));
    }
    Ok(out)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends `line` with a single `write` and makes it durable.
fn append_line(file: &File, line: &str) -> std::io::Result<()> {
    let mut f = file;
    let n = f.write(line.as_bytes())?;
    if n != line.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", line.len()),
        ));
    }
    file.sync_data()
}

#[derive(Default)]
struct State {
    /// The newest head waiting for its line.
    pending: Option<Head>,
    /// Set when the store is dropped: the thread ends once nothing is pending.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer of one anchor file: a thread that appends a `seal` line for the newest head it
/// was given, and tells the waiting commits how far it got.
pub(crate) struct AnchorWriter {
    path: PathBuf,
    shared: Arc<Shared>,
    /// The highest `seq` whose line was written (or whose write failed and was logged).
    done: watch::Receiver<i64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for AnchorWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AnchorWriter {
    /// Opens (creating, mode 0600) the anchor file for appending; writes the `genesis` line
    /// when the file is new or empty. Returns the writer and whether the file was new.
    pub(crate) fn open(path: &Path, genesis_created_at: &str) -> Result<(Self, bool), DbError> {
        let err = |e: std::io::Error| {
            DbError::Anchor(format!(
                "cannot write the audit anchor file {}: {e}",
                path.display()
            ))
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(err)?;
        let fresh = file.metadata().map_err(err)?.len() == 0;
        if fresh {
            append_line(&file, &format!("genesis {genesis_created_at}\n")).map_err(err)?;
        } else {
            // Anchors of two databases in one file would make every check fail later: refuse
            // now (this is also what a database swapped for a fresh one looks like).
            let mut first = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(File::open(path).map_err(err)?),
                &mut first,
            )
            .map_err(err)?;
            if let Ok([(_, AnchorLine::Genesis { created_at })]) = parse_anchors(&first).as_deref()
            {
                let same = |t: &str| DateTime::parse_from_rfc3339(t).ok();
                if same(created_at) != same(genesis_created_at) {
                    return Err(DbError::Anchor(format!(
                        "the audit anchor file {} was started for a database created at \
                         {created_at}, but this database was created at {genesis_created_at}: \
                         if the database was replaced on purpose, move the file aside",
                        path.display()
                    )));
                }
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let (done_tx, done) = watch::channel(0i64);
        let thread = {
            let shared = shared.clone();
            let path = path.to_path_buf();
            std::thread::Builder::new()
                .name("qm-audit-anchor".into())
                .spawn(move || write_loop(&file, &path, &shared, &done_tx))
                .map_err(err)?
        };
        Ok((
            Self {
                path: path.to_path_buf(),
                shared,
                done,
                thread: Some(thread),
            },
            fresh,
        ))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Returns once a line covering `head` is on disk (or its write failed, which is logged).
    pub(crate) async fn anchor(&self, head: Head) {
        let seq = head.seq;
        if *self.done.borrow() >= seq {
            return;
        }
        {
            let mut st = self.shared.lock();
            if st.pending.as_ref().is_none_or(|p| p.seq < seq) {
                st.pending = Some(head);
            }
        }
        self.shared.wake.notify_one();
        let mut done = self.done.clone();
        // An error means the thread is gone; it has logged why.
        let _ = done.wait_for(|d| *d >= seq).await;
    }
}

fn write_loop(file: &File, path: &Path, shared: &Shared, done: &watch::Sender<i64>) {
    loop {
        let head = {
            let mut st = shared.lock();
            loop {
                if let Some(h) = st.pending.take() {
                    break h;
                }
                if st.closed {
                    return;
                }
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let line = format!(
            "seal {} {} {} {}\n",
            head.seq,
            head.hash,
            head.mac.as_deref().unwrap_or("-"),
            now_text()
        );
        if let Err(e) = append_line(file, &line) {
            tracing::error!(
                file = %path.display(),
                seq = head.seq,
                error = %e,
                "cannot append to the audit anchor file: this head is not anchored"
            );
        }
        done.send_modify(|d| *d = (*d).max(head.seq));
    }
}

impl Drop for AnchorWriter {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_bad_lines_are_named() {
        let h = "ab".repeat(32);
        let text = format!(
            "genesis 2025-01-02T03:04:05.000006Z\n\nseal 3 {h} - 2025-01-02T03:04:06.000000Z\n\
             seal 4 {h} 00ff 2025-01-02T03:04:07.000000Z\n"
        );
        assert_eq!(
            parse_anchors(&text).unwrap(),
            vec![
                (
                    1,
                    AnchorLine::Genesis {
                        created_at: "2025-01-02T03:04:05.000006Z".into()
                    }
                ),
                (
                    3,
                    AnchorLine::Seal {
                        seq: 3,
                        hash: h.clone(),
                        mac: None
                    }
                ),
                (
                    4,
                    AnchorLine::Seal {
                        seq: 4,
                        hash: h.clone(),
                        mac: Some("00ff".into())
                    }
                ),
            ]
        );
        let e = parse_anchors(&format!("genesis 2025-01-02T03:04:05Z\nseal 0 {h} - x\n"));
        assert!(e.unwrap_err().starts_with("line 2:"));
        let e = parse_anchors("genesis 2025-01-02T03:04:05Z\nseal 1 short - x\n");
        assert!(e.unwrap_err().starts_with("line 2 is not"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_leave_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.log");
        // Two writers on one file, as two processes would have.
        let (a, fresh_a) = AnchorWriter::open(&path, "2025-01-02T03:04:05.000006Z").unwrap();
        let (b, fresh_b) = AnchorWriter::open(&path, "2025-01-02T03:04:05.000006Z").unwrap();
        assert!(fresh_a && !fresh_b);
        // Another database's anchors do not go into this file.
        let e = AnchorWriter::open(&path, "2026-01-02T03:04:05.000006Z").unwrap_err();
        assert!(
            e.to_string()
                .contains("was started for a database created at 2025-01-02T03:04:05.000006Z"),
            "{e}"
        );
        let (a, b) = (Arc::new(a), Arc::new(b));
        let mut tasks = Vec::new();
        for i in 1..=200i64 {
            let w = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                w.anchor(Head {
                    seq: i,
                    hash: format!("{:064x}", i),
                    mac: (i % 3 == 0).then(|| "abcd".to_owned()),
                })
                .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        drop((a, b));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = parse_anchors(&text).unwrap();
        assert!(matches!(lines[0].1, AnchorLine::Genesis { .. }));
        for (_, l) in &lines[1..] {
            match l {
                AnchorLine::Seal { seq, hash, .. } => assert_eq!(hash, &format!("{seq:064x}")),
                other => panic!("{other:?}"),
            }
        }
        // Each writer anchored its newest head.
        let max = |even: bool| {
            lines
                .iter()
                .filter_map(|(_, l)| match l {
                    AnchorLine::Seal { seq, .. } if (seq % 2 == 0) == even => Some(*seq),
                    _ => None,
                })
                .max()
        };
        assert_eq!((max(true), max(false)), (Some(200), Some(199)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
}
