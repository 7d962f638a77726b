//! `lab queue`: the asynchronous hop's queues as the local lab keeps them
//! (`STATE/queue.db`): how many order events wait, are being handled, and how old the oldest
//! is, for `orders` and its dead-letter queue `orders-dlq`; the dead letters themselves;
//! and, with `--redrive`, the dead letters moved back to `orders` to be tried again (SQS's
//! dead-letter queue redrive), once whatever failed them is fixed.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::Queues;

/// The queue order-service sends to and the fulfilment polls.
pub const ORDERS: &str = "orders";
/// Where messages go after failing every attempt.
pub const DEAD_LETTERS: &str = "orders-dlq";

/// The report `lab queue` prints; with `redrive`, after moving the dead letters back.
pub fn report(state: &Path, redrive: bool, limit: usize) -> anyhow::Result<String> {
    let file = state.join("queue.db");
    if !file.exists() {
        anyhow::bail!(
            "{} does not exist: start the lab (make run) and place an order first",
            file.display()
        );
    }
    let queues = Queues::open(&file)?;
    let mut out = String::new();
    if redrive {
        let moved = queues.redrive(DEAD_LETTERS, ORDERS)?;
        writeln!(
            out,
            "moved {moved} message(s) from {DEAD_LETTERS} back to {ORDERS}\n"
        )?;
    }
    writeln!(
        out,
        "{:<12} {:>8} {:>10}  oldest",
        "queue", "waiting", "in flight"
    )?;
    for name in [ORDERS, DEAD_LETTERS] {
        let stats = queues.stats(name)?;
        let oldest = stats.oldest_age_ms.map_or("-".to_owned(), |ms| {
            format_age(Duration::from_millis(ms as u64))
        });
        writeln!(
            out,
            "{name:<12} {:>8} {:>10}  {oldest}",
            stats.visible, stats.in_flight
        )?;
    }
    let dead = queues.peek(DEAD_LETTERS, limit)?;
    if dead.is_empty() {
        writeln!(out, "\nno dead letters")?;
    } else {
        writeln!(out, "\ndead letters in {DEAD_LETTERS}, oldest first:")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        for (id, body, sent_at_ms) in &dead {
            let age = format_age(Duration::from_millis((now - sent_at_ms).max(0) as u64));
            let body: String = body.chars().take(100).collect();
            writeln!(out, "  {id}  sent {age} ago  {body}")?;
        }
        writeln!(
            out,
            "\nEach failed attempt is a `process orders` span with an error: search service\n\
             fulfilment in the explorer. Once fixed, try them again: lab queue --redrive"
        )?;
    }
    Ok(out)
}

fn format_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn shows_counts_and_dead_letters_and_redrives_them() {
        let dir = tempfile::tempdir().unwrap();
        let queues = Queues::open(dir.path().join("queue.db")).unwrap();
        queues
            .send(ORDERS, "{\"order_id\":\"o-1\"}", &BTreeMap::new())
            .unwrap();
        let id = queues
            .send(ORDERS, "not an order", &BTreeMap::new())
            .unwrap();
        let redrive = queue::Redrive {
            max_receive_count: 1,
            dead_letter_queue: DEAD_LETTERS.into(),
        };
        // Receive both once; the second receive moves them to the dead-letter queue.
        queues
            .receive(ORDERS, 10, Duration::ZERO, Some(&redrive))
            .unwrap();
        queues
            .receive(ORDERS, 10, Duration::ZERO, Some(&redrive))
            .unwrap();

        let text = report(dir.path(), false, 10).unwrap();
        assert!(text.contains(&id), "{text}");
        assert!(text.contains("not an order"), "{text}");
        let dlq_line = text.lines().find(|l| l.starts_with(DEAD_LETTERS)).unwrap();
        assert!(
            dlq_line.split_whitespace().nth(1) == Some("2"),
            "{dlq_line}"
        );

        let text = report(dir.path(), true, 10).unwrap();
        assert!(text.starts_with("moved 2 message(s)"), "{text}");
        assert!(text.contains("no dead letters"), "{text}");
        assert_eq!(queues.stats(ORDERS).unwrap().visible, 2);
    }

    #[test]
    fn without_a_queue_file_it_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = report(dir.path(), false, 10).unwrap_err().to_string();
        assert!(err.contains("make run"), "{err}");
    }
}
