//! The on-disk sending queue behind `sending_queue.storage`: an append-only log of records
//! (`length u32 | crc32 u32 | size u32 | payload`, the checksum over size and payload) in
//! numbered segment files, plus a `committed` file naming the first record not yet delivered.
//!
//! - An append returns only after `write(2)` (and `fsync(2)` when the storage says so), so
//!   data acknowledged upstream survives SIGKILL; with `fsync: true` it survives power loss.
//! - Records are handed to senders in order; the committed position advances past a record
//!   only once it and every record before it were delivered (or given up), so a restart
//!   redelivers anything in flight: at-least-once.
//! - A new segment is started at every open, so a record torn by a crash is only ever at the
//!   end of an old segment. A record whose checksum does not match is reported, and the rest
//!   of its segment is skipped, never a crash.
//! - At most `capacity` undelivered batches, items or bytes (the `sizer`; a record's size is
//!   stored with it): beyond that, appends are refused and the exporter turns that into a
//!   retryable refusal upstream. With the bytes sizer this bounds the disk: the files hold the
//!   undelivered bytes plus at most one segment (8 MiB) of delivered ones not yet removed.

use super::queue::Sizer;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SEGMENT_BYTES: u64 = 8 << 20;
const MAX_RECORD: u32 = 256 << 20;
const HEADER: u64 = 12;

/// Where a record starts: (segment number, byte offset).
pub type Position = (u64, u64);

pub struct PersistentQueue {
    dir: PathBuf,
    fsync: bool,
    capacity: u64,
    sizer: Sizer,
    state: Mutex<State>,
    pub notify: tokio::sync::Notify,
}

struct State {
    write_seg: u64,
    writer: File,
    write_off: u64,
    read_pos: Position,
    /// Records appended or recovered and not yet handed out, with their sizes.
    waiting: BTreeMap<Position, u32>,
    /// Records handed out and not yet committed: (acknowledged, size).
    outstanding: BTreeMap<Position, (bool, u32)>,
    committed: Position,
    /// Total size of what is waiting or handed out and not yet acknowledged.
    used: u64,
    corrupt: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the persistent queue at {dir} is full ({used} of {capacity} {unit} waiting)")]
    Full {
        dir: String,
        used: u64,
        capacity: u64,
        unit: &'static str,
    },
    #[error(
        "a batch of {size} {unit} is larger than the whole persistent queue at {dir} (queue_size {capacity})"
    )]
    TooLarge {
        dir: String,
        size: u64,
        capacity: u64,
        unit: &'static str,
    },
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
    /// The payload, its size in the queue's sizer, and where the next record starts.
    Record(Vec<u8>, u32, u64),
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
    if size - off < HEADER {
        return Ok(Read_::Bad(format!("torn record header at {off}")));
    }
    f.seek(SeekFrom::Start(off))?;
    let mut head = [0u8; HEADER as usize];
    f.read_exact(&mut head)?;
    let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
    let (len, crc, units) = (word(0), word(4), word(8));
    if len > MAX_RECORD || off + HEADER + len as u64 > size {
        return Ok(Read_::Bad(format!(
            "torn or corrupt record at {off} (length {len})"
        )));
    }
    let mut payload = vec![0u8; len as usize];
    f.read_exact(&mut payload)?;
    if checksum(units, &payload) != crc {
        return Ok(Read_::Bad(format!(
            "checksum mismatch in the record at {off}"
        )));
    }
    Ok(Read_::Record(payload, units, off + HEADER + len as u64))
}

fn checksum(units: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&units.to_le_bytes());
    h.update(payload);
    h.finalize()
}

impl PersistentQueue {
    /// Opens (creating) the queue in `dir` and recovers what was not yet delivered.
    pub fn open(
        dir: &Path,
        fsync: bool,
        capacity: u64,
        sizer: Sizer,
    ) -> io::Result<PersistentQueue> {
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
        let mut waiting = BTreeMap::new();
        let mut corrupt = 0;
        for &s in segs.iter().filter(|s| **s >= committed.0) {
            let mut off = if s == committed.0 { committed.1 } else { 0 };
            loop {
                match read_at(dir, (s, off))? {
                    Read_::Record(_, units, next) => {
                        waiting.insert((s, off), units);
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
        let used = waiting.values().map(|&u| u64::from(u)).sum();
        if !waiting.is_empty() {
            tracing::info!(queue = %dir.display(), batches = waiting.len(), size = used, unit = sizer.unit(), "recovered undelivered batches from disk; delivery resumes");
        }
        Ok(PersistentQueue {
            dir: dir.to_path_buf(),
            fsync,
            capacity,
            sizer,
            state: Mutex::new(State {
                write_seg,
                writer,
                write_off: 0,
                read_pos: committed,
                waiting,
                outstanding: BTreeMap::new(),
                committed,
                used,
                corrupt,
            }),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Batches not yet delivered.
    pub fn len(&self) -> usize {
        let st = self.state.lock().expect("queue lock");
        st.waiting.len() + st.outstanding.values().filter(|(done, _)| !done).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of what is not yet delivered, in the queue's sizer.
    pub fn used(&self) -> u64 {
        self.state.lock().expect("queue lock").used
    }

    /// Corrupt records found so far.
    pub fn corrupt(&self) -> u64 {
        self.state.lock().expect("queue lock").corrupt
    }

    /// Appends one record durably (see the module doc for what "durably" means).
    /// `units` is the batch's size in the queue's sizer.
    pub fn append(&self, payload: &[u8], units: u32) -> Result<(), QueueError> {
        let io_err = |source| QueueError::Io {
            dir: self.dir.display().to_string(),
            source,
        };
        if u64::from(units) > self.capacity {
            return Err(QueueError::TooLarge {
                dir: self.dir.display().to_string(),
                size: units.into(),
                capacity: self.capacity,
                unit: self.sizer.unit(),
            });
        }
        let mut st = self.state.lock().expect("queue lock");
        if st.used + u64::from(units) > self.capacity {
            return Err(QueueError::Full {
                dir: self.dir.display().to_string(),
                used: st.used,
                capacity: self.capacity,
                unit: self.sizer.unit(),
            });
        }
        if st.write_off >= SEGMENT_BYTES {
            let next = st.write_seg + 1;
            st.writer = OpenOptions::new()
                .create(true)
                .append(true)
                .open(seg_path(&self.dir, next))
                .map_err(io_err)?;
            st.write_seg = next;
            st.write_off = 0;
        }
        let mut rec = Vec::with_capacity(payload.len() + HEADER as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&checksum(units, payload).to_le_bytes());
        rec.extend_from_slice(&units.to_le_bytes());
        rec.extend_from_slice(payload);
        let at = (st.write_seg, st.write_off);
        if let Err(e) = st.writer.write_all(&rec) {
            // A partial write (disk full) must not be followed by records the reader would
            // never reach: continue in a fresh segment.
            st.write_off = SEGMENT_BYTES;
            return Err(io_err(e));
        }
        st.write_off += rec.len() as u64;
        // Written, so it will be read and delivered even if the sync below fails.
        st.waiting.insert(at, units);
        st.used += u64::from(units);
        if self.fsync {
            st.writer.sync_data().map_err(io_err)?;
        }
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
                Ok(Read_::Record(payload, units, next)) => {
                    st.read_pos = (pos.0, next);
                    st.waiting.remove(&pos);
                    st.outstanding.insert(pos, (false, units));
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
                    // What was counted in the rest of this segment will never be delivered.
                    let lost: Vec<Position> = st
                        .waiting
                        .range(pos..(pos.0 + 1, 0))
                        .map(|(&p, _)| p)
                        .collect();
                    for p in lost {
                        let units = st.waiting.remove(&p).unwrap_or(0);
                        st.used = st.used.saturating_sub(units.into());
                    }
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
        if let Some((done, units)) = st.outstanding.get_mut(&pos)
            && !*done
        {
            *done = true;
            let units = u64::from(*units);
            st.used = st.used.saturating_sub(units);
        }
        self.advance(&mut st);
    }

    fn advance(&self, st: &mut State) {
        while let Some((&p, &(done, _))) = st.outstanding.first_key_value() {
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
            let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
            for i in 0..5u8 {
                q.append(&[i; 10], 1).unwrap();
            }
            let (p0, r0) = q.next().unwrap();
            let (p1, _) = q.next().unwrap();
            let (_p2, _) = q.next().unwrap();
            assert_eq!(r0, vec![0; 10]);
            q.ack(p0);
            q.ack(p1);
            // record 2 handed out but never acknowledged: the process "dies" here.
        }
        let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
        assert_eq!(q.len(), 3);
        let got: Vec<u8> = std::iter::from_fn(|| q.next()).map(|(_, r)| r[0]).collect();
        assert_eq!(got, vec![2, 3, 4]);
    }

    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        let d = dir("order");
        {
            let q = PersistentQueue::open(&d, true, 100, Sizer::Requests).unwrap();
            for i in 0..3u8 {
                q.append(&[i], 1).unwrap();
            }
            let a = q.next().unwrap().0;
            let b = q.next().unwrap().0;
            q.ack(b);
            let _ = a;
        }
        let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
        let got: Vec<u8> = std::iter::from_fn(|| q.next()).map(|(_, r)| r[0]).collect();
        assert_eq!(
            got,
            vec![0, 1, 2],
            "the unacknowledged first record holds the commit back"
        );
    }

    #[test]
    fn a_full_queue_refuses() {
        let q = PersistentQueue::open(&dir("full"), false, 2, Sizer::Requests).unwrap();
        q.append(b"a", 1).unwrap();
        q.append(b"b", 1).unwrap();
        assert!(matches!(q.append(b"c", 1), Err(QueueError::Full { .. })));
        let (p, _) = q.next().unwrap();
        q.ack(p);
        q.append(b"c", 1).unwrap();
    }

    #[test]
    fn sizes_bound_the_queue_and_survive_a_restart() {
        let d = dir("sizes");
        {
            let q = PersistentQueue::open(&d, false, 1000, Sizer::Bytes).unwrap();
            q.append(&[1; 600], 600).unwrap();
            let full = q.append(&[2; 500], 500).unwrap_err();
            assert_eq!(
                full.to_string(),
                format!(
                    "the persistent queue at {} is full (600 of 1000 bytes waiting)",
                    d.display()
                )
            );
            assert!(matches!(
                q.append(&[3; 1001], 1001),
                Err(QueueError::TooLarge { size: 1001, .. })
            ));
            q.append(&[4; 400], 400).unwrap();
            assert_eq!(q.used(), 1000);
            let (first, _) = q.next().unwrap();
            q.ack(first);
            assert_eq!(q.used(), 400);
        }
        let q = PersistentQueue::open(&d, false, 1000, Sizer::Bytes).unwrap();
        assert_eq!((q.len(), q.used()), (1, 400));
        let (p, payload) = q.next().unwrap();
        assert_eq!(payload, vec![4; 400]);
        q.ack(p);
        assert_eq!((q.len(), q.used()), (0, 0));
    }

    #[test]
    fn a_corrupt_record_is_reported_and_skipped_without_losing_later_segments() {
        let d = dir("corrupt");
        {
            let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
            q.append(b"first", 1).unwrap();
            q.append(b"second", 1).unwrap();
        }
        {
            let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
            q.append(b"third", 1).unwrap();
        }
        // Flip a byte in the first segment's first payload.
        let first = seg_path(&d, segments(&d).unwrap()[0]);
        let mut bytes = fs::read(&first).unwrap();
        bytes[HEADER as usize + 1] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
        assert_eq!(q.corrupt(), 1);
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.next()).map(|(_, r)| r).collect();
        assert_eq!(got, vec![b"third".to_vec()]);
    }

    #[test]
    fn a_torn_tail_from_a_crash_is_skipped() {
        let d = dir("torn");
        {
            let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
            q.append(b"whole", 1).unwrap();
        }
        let seg = seg_path(&d, segments(&d).unwrap()[0]);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        let q = PersistentQueue::open(&d, false, 100, Sizer::Requests).unwrap();
        let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.next()).map(|(_, r)| r).collect();
        assert_eq!(got, vec![b"whole".to_vec()]);
    }
}
