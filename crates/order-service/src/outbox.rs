//! The outbox relay: sends the events the checkout wrote to the outbox (in the transaction
//! that stored the order) to the queue, then deletes them. A send that fails leaves the
//! event where it is, to be sent again; a crash between the send and the delete sends it
//! twice, so delivery is at least once and the consumer is idempotent (a capture or a
//! commit done twice changes nothing).
//!
//! Each send is a PRODUCER span `send orders` in the trace of the checkout that stored the
//! order (its context was stored with the event), and the message carries that span's
//! context in its attributes: the fulfilment that handles it links back here.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use telemetry::faults::Faults;
use telemetry::messaging::{self, Producer};
use tokio::sync::Notify;

use crate::event_queue::{SendError, Sender};
use crate::store::Store;

/// How often the relay looks at the outbox when nothing wakes it: events left by a
/// previous run, or by a send that failed.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// The planted problem of workshop module 18.
pub const DROP_MESSAGE_CONTEXT: &str = "drop_message_context";

/// Events sent per look at the outbox.
const BATCH: usize = 10;

/// Where `order.placed` events go.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    sender: Sender,
    producer: Producer,
    wake: Arc<Notify>,
    faults: Faults,
}

impl Outbox {
    pub fn new(store: Store, sender: Sender, faults: Faults) -> Self {
        Self {
            faults,
            producer: Producer::new(sender.system(), sender.queue_name()),
            store,
            sender,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells the relay an event is waiting (called after an order is stored).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends events until the task is dropped.
    pub async fn relay(self) {
        let mut failures = 0u32;
        loop {
            match self.send_waiting().await {
                Ok(0) => {
                    failures = 0;
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Ok(_) => failures = 0,
                Err(err) => {
                    failures += 1;
                    let delay = Duration::from_millis(200 * 2u64.pow(failures.min(5)));
                    tracing::warn!(error = %err, retry_in = ?delay, "sending order events failed; they stay in the outbox");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Sends what the outbox holds, up to one batch; returns how many were sent.
    async fn send_waiting(&self) -> anyhow::Result<usize> {
        // Looking at an empty outbox every few seconds is not work anyone asked for: no
        // spans for it. The sends below are traced, in the checkout's trace.
        let quiet = opentelemetry::Context::current().with_telemetry_suppressed();
        let events = self.store.outbox(BATCH).with_context(quiet).await?;
        let sent = events.len();
        for event in events {
            let parent = messaging::extract(&event.trace_context);
            let (cx, mut attributes) = self.producer.start_send(
                &parent,
                vec![KeyValue::new("order.id", event.order_id.clone())],
            );
            attributes.insert("event_type".to_owned(), event.event_type.clone());
            if self.faults.scenario(DROP_MESSAGE_CONTEXT) {
                // The planted problem: the message goes out without the context the send
                // span put in it, the way a hand-written producer that builds its own
                // attributes loses it. The send span is still there, in the order's trace;
                // nothing on the consumer's side can point back to it.
                let _current = cx.clone().attach();
                self.faults.mark_injected(DROP_MESSAGE_CONTEXT);
                for key in ["traceparent", "tracestate", "baggage"] {
                    attributes.remove(key);
                }
            }
            let result = self
                .sender
                .send(event.payload.clone(), attributes)
                .with_context(cx.clone())
                .await;
            let message_id = match result {
                Ok(id) => id,
                Err(err) => {
                    messaging::end_send(&cx, Err(&err));
                    return Err(err.into());
                }
            };
            let deleted = self
                .store
                .outbox_sent(event.seq)
                .with_context(cx.clone())
                .await;
            messaging::end_send::<SendError>(&cx, Ok(&message_id));
            deleted?;
            tracing::debug!(order.id = %event.order_id, "order.placed sent");
        }
        Ok(sent)
    }
}
