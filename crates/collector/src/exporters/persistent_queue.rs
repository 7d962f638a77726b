//! The on-disk sending queue behind `sending_queue.storage`: an append-only log of records
//! (`length u32 | crc32 u32 | payload`) in numbered segment files, plus a `committed` file
//! naming the first record not yet delivered.
//!
//! - An append returns only after `write(2)` (and `fsync(2)` when the storage says so), so
//!   data acknowledged upstream survives SIGKILL; with `fsync: true` it survives power loss.
//! - Records are handed to senders in order; the committed position advances past a record
//!   only once it and every record before it were delivered (or given up), so a restart
//!   redelivers anything in flight: at-least-once.
//! - A new segment is started at every open, so a record torn by a crash is only ever at the
//!   end of an old segment. A record whose checksum does not match is reported, and the rest
//!   of its segment is skipped, never a crash.
//! - At most `capacity` undelivered records: beyond that, appends are refused (the exporter
//!   turns that into a retryable refusal upstream).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SEGMENT_BYTES: u64 = 8 << 20;
const MAX_RECORD: u32 = 256 << 20;

/// Where a record starts: (segment number, byte offset).
pub type Position = (u64, u64);

pub struct PersistentQueue {
    dir: PathBuf,
    fsync: bool,
    capacity: usize,
    state: Mutex<State>,
    pub notify: tokio::sync::Notify,
}

struct State {
    write_seg: u64,
    writer: File,
    write_off: u64,
    read_pos: Position,
    /// Records handed out and not yet committed: true once acknowledged.
    outstanding: BTreeMap<Position, bool>,
    committed: Position,
    /// Records appended or recovered and not yet committed.
    len: usize,
    corrupt: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the persistent queue at {dir} is full ({capacity} batches waiting)")]
    Full { dir: String, capacity: usize },
    #[error("cannot write the persistent queue at {dir}: {source}")]
    Io { dir: String, source: io::Error },
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:010}.seg"))
}

fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    v.sort();
    Ok(v)
}

/// What reading at a position found.
enum Read_ {
    Record(Vec<u8>, u64),
    /// Nothing more in this segment (clean end).
    End,
    /// Torn or corrupt: the rest of the segment is unusable.
    Bad(String),
}

fn read_at(dir: &Path, (seg, off): Position) -> io::Result<Read_> {
    let mut f = match File::open(seg_path(dir, seg)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read_::End),
        Err(e) => return Err(e),
    };
    let size = f.metadata()?.len();
    if off >= size {
        return Ok(Read_::End);
    }
    if size - off < 8 {
        return Ok(Read_::Bad(format!("torn record header at {off}")));
    }
    f.seek(SeekFrom::Start(off))?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head)?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD || off + 8 + len as u64 > size {
        return Ok(Read_::Bad(format!(
            "torn or corrupt record at {off} (length {len})"
        )));
    }
    let mut payload = vec![0u8; len as usize];
    f.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(Read_::Bad(format!(
            "checksum mismatch in the record at {off}"
        )));
    }
    Ok(Read_::Record(payload, off + 8 + len as u64))
}

impl PersistentQueue {
    /// Opens (creating) the queue in `dir` and recovers what was not yet delivered.
    pub fn open(dir: &Path, fsync: bool, capacity: usize) -> io::Result<PersistentQueue> {
        fs::create_dir_all(dir)?;
        let segs = segments(dir)?;
        let committed = fs::read_to_string(dir.join("committed"))
            .ok()
            .and_then(|t| {
                let (a, b) = t.trim().split_once(' ')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .unwrap_or((segs.first().copied().unwrap_or(1), 0));
        // Count what is left to deliver, and find corrupt records now rather than later.
        let mut len = 0;
        let mut corrupt = 0;
        for &s in segs.iter().filter(|s| **s >= committed.0) {
            let mut off = if s == committed.0 { committed.1 } else { 0 };
            loop {
                match read_at(dir, (s, off))? {
                    Read_::Record(_, next) => {
                        len += 1;
                        off = next;
                    }
                    Read_::End => break,
                    Read_::Bad(why) => {
                        corrupt += 1;
                        tracing::error!(queue = %dir.display(), segment = s, "{why}; the rest of this segment is skipped");
                        break;
                    }
                }
            }
        }
        let write_seg = segs.last().copied().unwrap_or(0).max(committed.0) + 1;
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(seg_path(dir, write_seg))?;
        if len > 0 {
            tracing::info!(queue = %dir.display(), batches = len, "recovered undelivered batches from disk; delivery resumes");
        }
        Ok(PersistentQueue {
            dir: dir.to_path_buf(),
            fsync,
            capacity,
            state: Mutex::new(State {
                write_seg,
                writer,
                write_off: 0,
                read_pos: committed,
                outstanding: BTreeMap::new(),
                committed,
                len,
                corrupt,
            }),
            notify: tokio::sync::Notify::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Corrupt records found so far.
    pub fn corrupt(&self) -> u64 {
        self.state.lock().expect("queue lock").corrupt
    }

    /// Appends one record durably (see the module doc for what "durably" means).
    pub fn append(&self, payload: &[u8]) -> Result<(), QueueError> {
        let io_err = |source| QueueError::Io {
            dir: self.dir.display().to_string(),
            source,
        };
        let mut st = self.state.lock().expect("queue lock");
        if st.len >= self.capacity {
            return Err(QueueError::Full {
                dir: self.dir.display().to_string(),
                capacity: self.capacity,
            });
        }
        if st.write_off >= SEGMENT_BYTES {
            st.write_seg += 1;
            st.writer = OpenOptions::new()
                .create(true)
                .append(true)
                .open(seg_path(&self.dir, st.write_seg))
                .map_err(io_err)?;
            st.write_off = 0;
        }
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        rec.extend_from_slice(payload);
        st.writer.write_all(&rec).map_err(io_err)?;
        if self.fsync {
            st.writer.sync_data().map_err(io_err)?;
        }
        st.write_off += rec.len() as u64;
        st.len += 1;
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    /// The next record not yet handed out, if any.
    pub fn next(&self) -> Option<(Position, Vec<u8>)> {
        let mut st = self.state.lock().expect("queue lock");
        loop {
            let pos = st.read_pos;
            match read_at(&self.dir, pos) {
                Ok(Read_::Record(payload, next)) => {
                    st.read_pos = (pos.0, next);
                    st.outstanding.insert(pos, false);
                    return Some((pos, payload));
                }
                Ok(Read_::End) if pos.0 < st.write_seg => st.read_pos = (pos.0 + 1, 0),
                Ok(Read_::End) => return None,
                Ok(Read_::Bad(why)) => {
                    if pos.0 == st.write_seg {
                        // Our own segment, still being written: nothing complete yet.
                        return None;
                    }
                    st.corrupt += 1;
                    st.len = st.len.saturating_sub(1);
                    tracing::error!(queue = %self.dir.display(), segment = pos.0, "{why}; the rest of this segment is skipped");
                    st.read_pos = (pos.0 + 1, 0);
                    self.advance(&mut st);
                }
                Err(e) => {
                    tracing::error!(queue = %self.dir.display(), error = %e, "cannot read the persistent queue");
                    return None;
                }
            }
        }
    }

    /// Marks a record delivered (or given up); commits what is now contiguous.
    pub fn ack(&self, pos: Position) {
        let mut st = self.state.lock().expect("queue lock");
        if let Some(done) = st.outstanding.get_mut(&pos) {
            *done = true;
            st.len = st.len.saturating_sub(1);
        }
        self.advance(&mut st);
    }

    fn advance(&self, st: &mut State) {
        while let Some((&p, &done)) = st.outstanding.first_key_value() {
            if !done {
                break;
            }
            st.outstanding.remove(&p);
        }
        let committed = st.outstanding.keys().next().copied().unwrap_or(st.read_pos);
        if committed == st.committed {
            return;
        }
        st.committed = committed;
        let tmp = self.dir.join("committed.tmp");
        let ok = fs::write(&tmp, format!("{} {}\n", committed.0, committed.1))
            .and_then(|_| fs::rename(&tmp, self.dir.join("committed")));
        if let Err(e) = ok {
            tracing::error!(queue = %self.dir.display(), error = %e, "cannot record delivery progress; some batches may be sent again after a restart");
        }
        // Whole segments before the committed one are delivered.
        if let Ok(segs) = segments(&self.dir) {
            for s in segs.into_iter().filter(|s| *s < committed.0) {
                let _ = fs::remove_file(seg_path(&self.dir, s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("otel-lab-pq-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn what_is_not_acknowledged_comes_back_after_reopening() {
        let d = dir("reopen");
        {
            let q = PersistentQueue::open(&d, false, 100).unwrap();
            for i in 0..5u8 {
                q.append(&[i; 10]).unwrap();
            }
            let (p0, r0) = q.next().unwrap();
            let (p1, _) = q.next().unwrap();
            let (_p2, _) = q.next().unwrap();
            assert_eq!(r0, vec![0; 10]);
            q.ack(p0);
            q.ack(p1);
            // record 2 handed out but never acknowledged: the process "dies" here.
        }
        let q = PersistentQueue::open(&d, false, 100).unwrap();
        assert_eq!(q.len(), 3);
        let got: Vec<u8> = std::iter::from_fn(|| q.next()).map(|(_, r)| r[0]).collect();
        assert_eq!(got, vec![2, 3, 4]);
    }

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let d = dir("order");
        {
            let q = PersistentQueue::open(&d, true, 100).unwrap();
            for i in 0..3u8 {
                q.append(&[i]).unwrap();
            }
            let a = q.next().unwrap().0;
            let b = q.next().unwrap().0;
            q.ack(b);
            let _ = a;
        }
        let q = PersistentQueue::open(&d, false, 100).unwrap();
        let got: Vec<u8> = std::iter::from_fn(|| q.next()).map(|(_, r)| r[0]).collect();
        assert_eq!(
            got,
            vec![0, 1, 2],
            "the unacknowledged first record holds the commit back"
        );
    }

    #[test]
    fn a_full_queue_refuses() {
        let q = PersistentQueue::open(&dir("full"), false, 2).unwrap();
        q.append(b"a").unwrap();
        q.append(b"b").unwrap();
        assert!(matches!(q.append(b"c"), Err(QueueError::Full { .. })));
        let (p, _) = q.next().unwrap();
        q.ack(p);
        q.append(b"c").unwrap();
    }

    #[test]
    fn a_corrupt_record_is_reported_and_skipped_without_losing_later_segments() {
        let d = dir("corrupt");
        {
            let q = PersistentQueue::open(&d, false, 100).unwrap();
            q.append(b"first").unwrap();
            q.append(b"second").unwrap();
        }
        {
            let q = PersistentQueue::open(&d, false, 100).unwrap();
            q.append(b"third").unwrap();
        }
        // Flip a byte in the first segment's first payload.
        let first = seg_path(&d, segments(&d).unwrap()[0]);
        let mut bytes = fs::read(&first).unwrap();
        bytes[9] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let q = PersistentQueue::open(&d, false, 100).unwrap();
        assert_eq!(q.corrupt(), 1);
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.next()).map(|(_, r)| r).collect();
        assert_eq!(got, vec![b"third".to_vec()]);
    }

    #[test]
    fn a_torn_tail_from_a_crash_is_skipped() {
        let d = dir("torn");
        {
            let q = PersistentQueue::open(&d, false, 100).unwrap();
            q.append(b"whole").unwrap();
        }
        let seg = seg_path(&d, segments(&d).unwrap()[0]);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        let q = PersistentQueue::open(&d, false, 100).unwrap();
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.next()).map(|(_, r)| r).collect();
        assert_eq!(got, vec![b"whole".to_vec()]);
    }
}
