//! The `sqlite` backend's disk side: every batch written to the store is also appended, as
//! the OTLP protobuf it came in, to a SQLite file; when the collector starts, the newest
//! batches that fit the store's limits are read back into memory. Queries are still
//! answered by the in-memory store and its indexes; the file is what survives a restart.
//!
//! Why SQLite: the lab already uses it (bundled, so nothing to install), it is the best-kept
//! embedded database there is, and in WAL mode a committed transaction survives the
//! process being killed. Why whole batches: they are what the exporter receives, replaying
//! them through the same translation keeps one code path, and deleting the oldest rows
//! bounds the file simply.
//!
//! A writer thread commits what arrived every [`COMMIT_EVERY`] (or every
//! [`COMMIT_ROWS`] batches), so a SIGKILL loses at most that much. About every
//! [`TRIM_EVERY`] it deletes batches older than `max_age` and the oldest batches beyond
//! `max_bytes`, and hands the freed pages back to the file system.

use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a received batch may wait before it is committed to disk.
pub const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Batches committed in one transaction at most.
pub const COMMIT_ROWS: usize = 500;
/// How often the age and size bounds are enforced.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// What a stored batch holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Traces = 1,
    Logs = 2,
}

impl Kind {
    fn from_i64(v: i64) -> Option<Kind> {
        match v {
            1 => Some(Kind::Traces),
            2 => Some(Kind::Logs),
            _ => None,
        }
    }
}

/// Where and how much.
#[derive(Clone, Debug)]
pub struct Settings {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// A batch read back at start: its kind and its OTLP protobuf body.
pub type Replayed = (Kind, Vec<u8>);

struct Row {
    kind: Kind,
    items: usize,
    body: Vec<u8>,
    received_us: i64,
}

/// The open file and its writer thread.
pub struct Persistence {
    sender: Mutex<Option<Sender<Row>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // auto_vacuum must be chosen before the first table exists; INCREMENTAL lets the trim
    // give deleted pages back without rewriting the whole file.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS batches (
             id INTEGER PRIMARY KEY,
             received_us INTEGER NOT NULL,
             kind INTEGER NOT NULL,
             items INTEGER NOT NULL,
             bytes INTEGER NOT NULL,
             body BLOB NOT NULL
         );",
    )?;
    Ok(conn)
}

impl Persistence {
    /// Opens (or creates) the file and reads back, oldest first, the newest batches within
    /// `max_age` holding at most `max_spans` spans and `max_logs` log records.
    pub fn open(
        settings: &Settings,
        max_spans: usize,
        max_logs: usize,
    ) -> anyhow::Result<(Persistence, Vec<Replayed>)> {
        if let Some(dir) = settings.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create the directory {}: {e}", dir.display())
            })?;
        }
        let conn = open_connection(&settings.path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", settings.path.display()))?;
        let replayed = read_back(&conn, settings, max_spans, max_logs)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", settings.path.display()))?;
        let (sender, receiver) = channel();
        let thread_settings = settings.clone();
        let writer = std::thread::Builder::new()
            .name("jaeger-storage-sqlite".into())
            .spawn(move || write_loop(conn, receiver, thread_settings))?;
        Ok((
            Persistence {
                sender: Mutex::new(Some(sender)),
                writer: Mutex::new(Some(writer)),
                path: settings.path.clone(),
            },
            replayed,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a batch for the disk; it is committed within [`COMMIT_EVERY`].
    pub fn append(&self, kind: Kind, items: usize, body: Vec<u8>) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = sender.as_ref() {
            let _ = sender.send(Row {
                kind,
                items,
                body,
                received_us: now_us(),
            });
        }
    }

    /// Commits what is queued and stops the writer.
    pub fn close(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Persistence {
    fn drop(&mut self) {
        self.close();
    }
}

fn read_back(
    conn: &Connection,
    settings: &Settings,
    max_spans: usize,
    max_logs: usize,
) -> rusqlite::Result<Vec<Replayed>> {
    let oldest = now_us() - settings.max_age.as_micros() as i64;
    let mut stmt = conn.prepare(
        "SELECT kind, items, body FROM batches WHERE received_us >= ?1 ORDER BY id DESC",
    )?;
    let mut rows = stmt.query(params![oldest])?;
    let (mut spans, mut logs) = (0usize, 0usize);
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let Some(kind) = Kind::from_i64(row.get(0)?) else {
            continue;
        };
        let items: i64 = row.get(1)?;
        let items = items.max(0) as usize;
        let (count, limit) = match kind {
            Kind::Traces => (&mut spans, max_spans),
            Kind::Logs => (&mut logs, max_logs),
        };
        if *count + items > limit {
            continue;
        }
        *count += items;
        out.push((kind, row.get::<_, Vec<u8>>(2)?));
        if spans >= max_spans && logs >= max_logs {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

fn write_loop(mut conn: Connection, receiver: Receiver<Row>, settings: Settings) {
    let mut pending: Vec<Row> = Vec::new();
    let mut last_trim = Instant::now();
    let mut deadline: Option<Instant> = None;
    loop {
        let wait = deadline.map_or(TRIM_EVERY, |d| d.saturating_duration_since(Instant::now()));
        let closed = match receiver.recv_timeout(wait) {
            Ok(row) => {
                pending.push(row);
                deadline.get_or_insert_with(|| Instant::now() + COMMIT_EVERY);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if !pending.is_empty() && (closed || due || pending.len() >= COMMIT_ROWS) {
            if let Err(e) = commit(&mut conn, &pending) {
                // Kept in memory and tried again: a full disk may clear.
                tracing::error!(path = %settings.path.display(), error = %e, batches = pending.len(), "cannot write the trace store to disk; will try again");
            } else {
                pending.clear();
                deadline = None;
            }
        }
        if closed || last_trim.elapsed() >= TRIM_EVERY {
            if let Err(e) = trim(&conn, &settings) {
                tracing::warn!(path = %settings.path.display(), error = %e, "cannot trim the trace store on disk");
            }
            last_trim = Instant::now();
        }
        if closed {
            if !pending.is_empty() {
                tracing::error!(path = %settings.path.display(), batches = pending.len(), "stopping with batches not written to disk");
            }
            return;
        }
    }
}

fn commit(conn: &mut Connection, rows: &[Row]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO batches (received_us, kind, items, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for r in rows {
            insert.execute(params![
                r.received_us,
                r.kind as i64,
                r.items as i64,
                r.body.len() as i64,
                r.body
            ])?;
        }
    }
    tx.commit()
}

/// Deletes what is older than `max_age`, then the oldest batches beyond `max_bytes`.
fn trim(conn: &Connection, settings: &Settings) -> rusqlite::Result<()> {
    let oldest = now_us() - settings.max_age.as_micros() as i64;
    let mut deleted = conn.execute(
        "DELETE FROM batches WHERE received_us < ?1",
        params![oldest],
    )?;
    let total: i64 = conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM batches", [], |r| {
        r.get(0)
    })?;
    if total as u64 > settings.max_bytes {
        // The newest rows that fit; everything older goes.
        let mut stmt = conn.prepare_cached("SELECT id, bytes FROM batches ORDER BY id DESC")?;
        let mut rows = stmt.query([])?;
        let mut kept = 0u64;
        let mut cut = None;
        while let Some(row) = rows.next()? {
            let (id, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
            kept += bytes as u64;
            if kept > settings.max_bytes {
                cut = Some(id);
                break;
            }
        }
        drop(rows);
        if let Some(id) = cut {
            deleted += conn.execute("DELETE FROM batches WHERE id <= ?1", params![id])?;
        }
    }
    if deleted > 0 {
        conn.execute_batch("PRAGMA incremental_vacuum;")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, max_bytes: u64, max_age: Duration) -> Settings {
        Settings {
            path: dir.join("store.db"),
            max_bytes,
            max_age,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("otel-lab-persist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn batches_come_back_oldest_first_within_the_limits() {
        let dir = temp_dir("limits");
        let s = settings(&dir, u64::MAX, Duration::from_secs(3600));
        let (p, replayed) = Persistence::open(&s, 10, 10).unwrap();
        assert!(replayed.is_empty());
        for i in 0..5u8 {
            p.append(Kind::Traces, 4, vec![i]);
        }
        p.append(Kind::Logs, 3, vec![9]);
        p.close();
        let (_p, replayed) = Persistence::open(&s, 10, 10).unwrap();
        // At most 10 spans: the newest two trace batches of four, and the log batch.
        assert_eq!(
            replayed,
            vec![
                (Kind::Traces, vec![3]),
                (Kind::Traces, vec![4]),
                (Kind::Logs, vec![9])
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_oldest_batches_go_past_max_bytes() {
        let dir = temp_dir("bytes");
        let s = settings(&dir, 250, Duration::from_secs(3600));
        let (p, _) = Persistence::open(&s, 1000, 1000).unwrap();
        for i in 0..5u8 {
            p.append(Kind::Traces, 1, vec![i; 100]);
        }
        p.close(); // commits, then trims
        let (_p, replayed) = Persistence::open(&s, 1000, 1000).unwrap();
        assert_eq!(
            replayed,
            vec![(Kind::Traces, vec![3; 100]), (Kind::Traces, vec![4; 100])]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
