//! A durable message queue with the semantics of an Amazon SQS standard queue, kept in one
//! SQLite file, so `make run` has the asynchronous hop with nothing to install: order-service
//! sends `order.placed` events to the queue `orders` and the Lambda emulator's event-source
//! poller receives them in batches for the `fulfilment` function, as the Lambda service does
//! with SQS in the Kind lab. Every process opens the same file (WAL mode), so a message
//! survives a restart of the producer, the consumer or both.
//!
//! What is SQS's and kept: a received message is hidden for the visibility timeout and comes
//! back if it is not deleted in time (at-least-once delivery: consumers must be idempotent);
//! only the receipt handle of the latest receive deletes it; its receive count rises on every
//! receive, and a message received more than `max_receive_count` times moves to the
//! dead-letter queue (the redrive policy) instead of being delivered again. Message
//! attributes are string key/value pairs: the trace context travels in them.
//!
//! Why SQLite rather than an SQS-compatible server: the lab's services already keep their
//! data in SQLite (rusqlite, bundled), a file needs no process to start or port to take,
//! and a transaction makes "receive" (choose, hide, count) one atomic step across
//! processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

/// How a queue hands its messages out.
#[derive(Debug, Clone)]
pub struct Redrive {
    /// Receives after which a message goes to `dead_letter_queue` (SQS's maxReceiveCount).
    pub max_receive_count: u32,
    /// Where messages received too often go.
    pub dead_letter_queue: String,
}

/// One message as a consumer receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub message_id: String,
    /// Deletes this delivery of the message; a later receive gives a new one.
    pub receipt_handle: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// When it was sent, in milliseconds since the Unix epoch (SQS's SentTimestamp).
    pub sent_at_ms: i64,
    /// How many times it has been received, this time included
    /// (SQS's ApproximateReceiveCount).
    pub receive_count: u32,
}

/// What one receive returned: the messages, and the ids of those it moved to the
/// dead-letter queue instead (received too often already).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub messages: Vec<Received>,
    pub dead_lettered: Vec<String>,
}

/// What a queue holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages waiting to be received (SQS's ApproximateNumberOfMessages).
    pub visible: u64,
    /// Messages received and neither deleted nor back yet (ApproximateNumberOfMessagesNotVisible).
    pub in_flight: u64,
    /// Age of the oldest message in the queue, visible or not, in milliseconds
    /// (ApproximateAgeOfOldestMessage).
    pub oldest_age_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("message attributes of {message_id} are not a JSON object of strings: {source}")]
    Attributes {
        message_id: String,
        source: serde_json::Error,
    },
}

/// The queues in one SQLite file. Clone-free: share it behind an `Arc`.
pub struct Queues {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT NOT NULL,
    message_id     TEXT NOT NULL UNIQUE,
    body           TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    sent_at_ms     INTEGER NOT NULL,
    visible_at_ms  INTEGER NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt_handle TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at_ms, seq);
";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Queues {
    /// Opens (creating if needed) the queue file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let conn = Connection::open(path)?;
        // WAL lets the producer and the consumer, in different processes, work at once;
        // a writer waits up to 5 s for the other instead of failing with SQLITE_BUSY.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends one message; returns its message id.
    pub fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let message_id = uuid::Uuid::new_v4().to_string();
        let attributes =
            serde_json::to_string(attributes).expect("a map of strings serialises to JSON");
        let now = now_ms();
        self.conn().execute(
            "INSERT INTO messages (queue, message_id, body, attributes, sent_at_ms, visible_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![queue, message_id, body, attributes, now],
        )?;
        Ok(message_id)
    }

    /// Receives up to `max` visible messages, oldest first, hiding them for `visibility`.
    /// With a `redrive`, a message that would be received for the
    /// `max_receive_count + 1`-th time moves to the dead-letter queue instead.
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        redrive: Option<&Redrive>,
    ) -> Result<Batch, Error> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let mut received = Vec::new();
        let mut dead_lettered = Vec::new();
        {
            let mut candidates = tx.prepare_cached(
                "SELECT seq, message_id, body, attributes, sent_at_ms, receive_count FROM messages
                 WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = candidates
                .query_map(params![queue, now, (max * 2 + 10) as i64], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, u32>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (seq, message_id, body, attributes, sent_at_ms, receive_count) in rows {
                if received.len() == max {
                    break;
                }
                if let Some(redrive) = redrive
                    && receive_count >= redrive.max_receive_count
                {
                    // A new message in the dead-letter queue, received afresh from there,
                    // but with the same id and sent time, as SQS keeps them.
                    tx.execute(
                        "UPDATE messages SET queue = ?2, visible_at_ms = ?3, receive_count = 0,
                         receipt_handle = NULL WHERE seq = ?1",
                        params![seq, redrive.dead_letter_queue, now],
                    )?;
                    dead_lettered.push(message_id);
                    continue;
                }
                let receipt_handle = uuid::Uuid::new_v4().to_string();
                let receive_count = receive_count + 1;
                tx.execute(
                    "UPDATE messages SET visible_at_ms = ?2, receive_count = ?3,
                     receipt_handle = ?4 WHERE seq = ?1",
                    params![
                        seq,
                        now + visibility.as_millis() as i64,
                        receive_count,
                        receipt_handle
                    ],
                )?;
                let attributes =
                    serde_json::from_str(&attributes).map_err(|source| Error::Attributes {
                        message_id: message_id.clone(),
                        source,
                    })?;
                received.push(Received {
                    message_id,
                    receipt_handle,
                    body,
                    attributes,
                    sent_at_ms,
                    receive_count,
                });
            }
        }
        tx.commit()?;
        Ok(Batch {
            messages: received,
            dead_lettered,
        })
    }

    /// Deletes the message received with `receipt_handle`; false when that delivery is no
    /// longer current (it came back after its visibility timeout and was received again,
    /// or it was deleted already).
    pub fn delete(&self, queue: &str, receipt_handle: &str) -> Result<bool, Error> {
        let deleted = self.conn().execute(
            "DELETE FROM messages WHERE queue = ?1 AND receipt_handle = ?2",
            params![queue, receipt_handle],
        )?;
        Ok(deleted == 1)
    }

    /// Makes the message received with `receipt_handle` visible again after `delay`
    /// (SQS's ChangeMessageVisibility); false when that delivery is no longer current.
    pub fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<bool, Error> {
        let changed = self.conn().execute(
            "UPDATE messages SET visible_at_ms = ?3 WHERE queue = ?1 AND receipt_handle = ?2",
            params![queue, receipt_handle, now_ms() + delay.as_millis() as i64],
        )?;
        Ok(changed == 1)
    }

    /// Moves every message of `from` (a dead-letter queue) back to `to`, visible now and
    /// with its receive count reset, as SQS's dead-letter queue redrive does; returns how
    /// many moved.
    pub fn redrive(&self, from: &str, to: &str) -> Result<usize, Error> {
        let moved = self.conn().execute(
            "UPDATE messages SET queue = ?2, visible_at_ms = ?3, receive_count = 0, \
             receipt_handle = NULL WHERE queue = ?1",
            params![from, to, now_ms()],
        )?;
        Ok(moved)
    }

    /// How many messages `queue` holds, and the age of its oldest.
    pub fn stats(&self, queue: &str) -> Result<Stats, Error> {
        let now = now_ms();
        let conn = self.conn();
        let (visible, in_flight, oldest): (i64, i64, Option<i64>) = conn
            .query_row(
                "SELECT COALESCE(SUM(visible_at_ms <= ?2), 0), COALESCE(SUM(visible_at_ms > ?2), 0),
                        MIN(sent_at_ms)
                 FROM messages WHERE queue = ?1",
                params![queue, now],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?
            .unwrap_or((0, 0, None));
        Ok(Stats {
            visible: visible as u64,
            in_flight: in_flight as u64,
            oldest_age_ms: oldest.map(|sent| (now - sent).max(0)),
        })
    }

    /// The messages of `queue` without receiving them (for showing a dead-letter queue):
    /// id, body and receive-independent fields, oldest first.
    pub fn peek(&self, queue: &str, max: usize) -> Result<Vec<(String, String, i64)>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT message_id, body, sent_at_ms FROM messages WHERE queue = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![queue, max as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn messages_come_out_in_order_with_their_attributes_and_are_hidden_once_received() {
        let dir = tempfile::tempdir().unwrap();
        let queues = Queues::open(dir.path().join("q.db")).unwrap();
        for n in 0..3 {
            queues
                .send(
                    "orders",
                    &format!("m{n}"),
                    &attrs(&[("traceparent", "00-x")]),
                )
                .unwrap();
        }
        let first = queues
            .receive("orders", 2, SECOND * 30, None)
            .unwrap()
            .messages;
        assert_eq!(
            first.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["m0", "m1"]
        );
        assert_eq!(first[0].attributes["traceparent"], "00-x");
        assert_eq!(first[0].receive_count, 1);
        let rest = queues
            .receive("orders", 10, SECOND * 30, None)
            .unwrap()
            .messages;
        assert_eq!(rest.len(), 1, "received messages are hidden");
        assert_eq!(rest[0].body, "m2");
        assert!(
            queues
                .receive("other", 10, SECOND, None)
                .unwrap()
                .messages
                .is_empty()
        );
        let stats = queues.stats("orders").unwrap();
        assert_eq!((stats.visible, stats.in_flight), (0, 3));
        assert!(stats.oldest_age_ms.is_some());
    }

    #[test]
    fn an_undeleted_message_comes_back_and_only_the_latest_receipt_deletes_it() {
        let dir = tempfile::tempdir().unwrap();
        let queues = Queues::open(dir.path().join("q.db")).unwrap();
        queues.send("orders", "m", &BTreeMap::new()).unwrap();
        let first = queues
            .receive("orders", 1, Duration::ZERO, None)
            .unwrap()
            .messages;
        let second = queues
            .receive("orders", 1, SECOND * 30, None)
            .unwrap()
            .messages;
        assert_eq!(second[0].message_id, first[0].message_id);
        assert_eq!(second[0].receive_count, 2);
        assert!(!queues.delete("orders", &first[0].receipt_handle).unwrap());
        assert!(queues.delete("orders", &second[0].receipt_handle).unwrap());
        assert_eq!(queues.stats("orders").unwrap(), Stats::default());
    }

    #[test]
    fn a_message_received_too_often_moves_to_the_dead_letter_queue() {
        let dir = tempfile::tempdir().unwrap();
        let queues = Queues::open(dir.path().join("q.db")).unwrap();
        let redrive = Redrive {
            max_receive_count: 2,
            dead_letter_queue: "orders-dlq".into(),
        };
        let id = queues.send("orders", "poison", &BTreeMap::new()).unwrap();
        for attempt in 1..=2 {
            let got = queues
                .receive("orders", 10, Duration::ZERO, Some(&redrive))
                .unwrap()
                .messages;
            assert_eq!(got.len(), 1, "attempt {attempt}");
        }
        let last = queues
            .receive("orders", 10, Duration::ZERO, Some(&redrive))
            .unwrap();
        assert!(last.messages.is_empty());
        assert_eq!(
            last.dead_lettered,
            std::slice::from_ref(&id),
            "the receive says what it moved"
        );
        let dead = queues.peek("orders-dlq", 10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].0.as_str(), dead[0].1.as_str()),
            (id.as_str(), "poison")
        );
        assert_eq!(queues.stats("orders-dlq").unwrap().visible, 1);

        assert_eq!(queues.redrive("orders-dlq", "orders").unwrap(), 1);
        let back = queues
            .receive("orders", 10, Duration::ZERO, Some(&redrive))
            .unwrap();
        assert_eq!(
            back.messages.len(),
            1,
            "a redriven message is delivered again"
        );
        assert_eq!(back.messages[0].receive_count, 1, "with its count reset");
    }

    #[test]
    fn messages_survive_closing_the_file_and_two_handles_share_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let producer = Queues::open(&path).unwrap();
        let consumer = Queues::open(&path).unwrap();
        producer.send("orders", "a", &BTreeMap::new()).unwrap();
        let got = consumer
            .receive("orders", 10, SECOND * 30, None)
            .unwrap()
            .messages;
        assert_eq!(got.len(), 1);
        producer.send("orders", "b", &BTreeMap::new()).unwrap();
        drop(producer);
        drop(consumer);
        let reopened = Queues::open(&path).unwrap();
        let stats = reopened.stats("orders").unwrap();
        assert_eq!((stats.visible, stats.in_flight), (1, 1));
        assert_eq!(
            reopened
                .receive("orders", 10, SECOND, None)
                .unwrap()
                .messages[0]
                .body,
            "b"
        );
    }

    #[test]
    fn change_visibility_returns_a_message_early() {
        let dir = tempfile::tempdir().unwrap();
        let queues = Queues::open(dir.path().join("q.db")).unwrap();
        queues.send("orders", "m", &BTreeMap::new()).unwrap();
        let got = queues
            .receive("orders", 1, SECOND * 30, None)
            .unwrap()
            .messages;
        assert!(
            queues
                .change_visibility("orders", &got[0].receipt_handle, Duration::ZERO)
                .unwrap()
        );
        assert_eq!(
            queues
                .receive("orders", 1, SECOND, None)
                .unwrap()
                .messages
                .len(),
            1
        );
    }
}
