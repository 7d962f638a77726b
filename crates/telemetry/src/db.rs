//! Database client instrumentation, to the current database semantic conventions: one
//! CLIENT span per statement and the `db.client.operation.duration` histogram.
//!
//! ```ignore
//! let db = telemetry::db::DbClient::new("sqlite", sqlite_error_type);
//! let conn = db.lock(&connection); // a span only when another request holds it
//! let row = db.statement(Statement::new("SELECT", "products", sql), || {
//!     conn.prepare_cached(sql)?.query_row(params![sku], from_row)
//! })?;
//! ```
//!
//! The span is named `{db.operation.name} {db.collection.name}` (`SELECT products`) and
//! carries `db.system.name`, `db.operation.name`, `db.collection.name` and `db.query.text`
//! (the statement as written, with placeholders: never the values). A failed statement sets
//! the span status to Error with an `exception` event and `error.type`.
//!
//! The histogram is in seconds with the conventions' advised boundaries, and its points
//! carry only `db.system.name`, `db.operation.name`, `db.collection.name` and, on failure,
//! `error.type`: no query text and no ids, which would give every statement or row a
//! series of its own.
//!
//! The library is not tied to one driver (this crate does not depend on rusqlite): the
//! caller says how its errors map to `error.type`.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::Histogram;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry_semantic_conventions::{attribute as semconv, metric as semconv_metric};

/// Boundaries of `db.client.operation.duration`, in seconds, as the database semantic
/// conventions advise. An embedded database answers in microseconds, so most statements
/// land in the first bucket; the upper ones catch lock waits and the slow-query fault.
pub const OPERATION_DURATION_BUCKETS_SECONDS: [f64; 9] =
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// The instrumentation scope of the statement spans and the duration histogram.
const INSTRUMENTATION_SCOPE: &str = "telemetry.db";

/// Name of the span that shows a request waiting for a connection another request holds.
pub const CONNECTION_WAIT_SPAN: &str = "wait for connection";

/// One statement, described by low-cardinality names.
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    /// `db.operation.name`: `SELECT`, `INSERT`, `UPDATE`, ...
    pub operation: &'static str,
    /// `db.collection.name`: the table.
    pub collection: &'static str,
    /// `db.query.text`: the statement with its placeholders, never with values.
    pub query_text: &'a str,
}

impl<'a> Statement<'a> {
    pub fn new(operation: &'static str, collection: &'static str, query_text: &'a str) -> Self {
        Self {
            operation,
            collection,
            query_text,
        }
    }
}

/// Instruments the statements of one database system; create it after [`crate::init`]
/// (its histogram comes from the global meter provider) and clone it freely.
pub struct DbClient<E> {
    tracer: Arc<BoxedTracer>,
    system: &'static str,
    error_type: fn(&E) -> Cow<'static, str>,
    duration: Histogram<f64>,
}

impl<E> Clone for DbClient<E> {
    fn clone(&self) -> Self {
        Self {
            tracer: self.tracer.clone(),
            system: self.system,
            error_type: self.error_type,
            duration: self.duration.clone(),
        }
    }
}

impl<E: std::error::Error> DbClient<E> {
    /// `system` is `db.system.name` (`sqlite`, `postgresql`, ...); `error_type` names a
    /// failure for `error.type`: a low-cardinality code such as the driver's error code,
    /// never the message.
    pub fn new(system: &'static str, error_type: fn(&E) -> Cow<'static, str>) -> Self {
        let duration = opentelemetry::global::meter(INSTRUMENTATION_SCOPE)
            .f64_histogram(semconv_metric::DB_CLIENT_OPERATION_DURATION)
            .with_unit("s")
            .with_description("Duration of database client operations.")
            .with_boundaries(OPERATION_DURATION_BUCKETS_SECONDS.to_vec())
            .build();
        Self {
            tracer: Arc::new(opentelemetry::global::tracer(INSTRUMENTATION_SCOPE)),
            system,
            error_type,
            duration,
        }
    }

    /// Runs `run` (one statement) inside its CLIENT span and records its duration.
    pub fn statement<T>(
        &self,
        statement: Statement<'_>,
        run: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        // Made with the OpenTelemetry API, not a `tracing` span: a statement has no
        // children and logs nothing, and this path runs for every statement of every
        // request (see the crate doc on cost). Its parent is the current context: the
        // caller's span, whichever API made it.
        let tracer = &*self.tracer;
        let mut span = tracer
            .span_builder(format!("{} {}", statement.operation, statement.collection))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(semconv::DB_SYSTEM_NAME, self.system),
                KeyValue::new(semconv::DB_OPERATION_NAME, statement.operation),
                KeyValue::new(semconv::DB_COLLECTION_NAME, statement.collection),
                KeyValue::new(semconv::DB_QUERY_TEXT, statement.query_text.to_owned()),
            ])
            .start(tracer);
        let start = Instant::now();
        let result = run();
        let elapsed = start.elapsed().as_secs_f64();
        let attributes = [
            KeyValue::new(semconv::DB_SYSTEM_NAME, self.system),
            KeyValue::new(semconv::DB_OPERATION_NAME, statement.operation),
            KeyValue::new(semconv::DB_COLLECTION_NAME, statement.collection),
        ];
        match &result {
            Ok(_) => self.duration.record(elapsed, &attributes),
            Err(err) => {
                let error_type: opentelemetry::StringValue = (self.error_type)(err).into();
                span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
                crate::record_error_on(&mut span, err);
                let [system, operation, collection] = attributes;
                self.duration.record(
                    elapsed,
                    &[
                        system,
                        operation,
                        collection,
                        KeyValue::new(semconv::ERROR_TYPE, error_type),
                    ],
                );
            }
        }
        span.end();
        result
    }

    /// Takes the one connection behind `connection`. When another request holds it, the
    /// wait becomes a [`CONNECTION_WAIT_SPAN`] span (a child of the caller's span, just
    /// before this request's statements) so a trace shows the queueing as what it is.
    ///
    /// Why a span of its own rather than a longer first statement: time spent queueing
    /// behind another request is the application's doing, not the database's. Folded into
    /// `SELECT ...` it would read as a slow query and send a learner to the wrong place;
    /// as its own bar in the waterfall, next to the statements, it says "this request
    /// waited its turn" and the statements keep their true duration (and so does
    /// `db.client.operation.duration`). An uncontended lock costs nanoseconds, so no span is
    /// made then: it would cost more than the wait it shows and add a bar to every trace.
    ///
    /// A poisoned lock is taken anyway: a panic in another request's statement leaves the
    /// connection usable (SQLite rolls an unfinished transaction back when it is dropped).
    pub fn lock<'a, C>(&self, connection: &'a Mutex<C>) -> MutexGuard<'a, C> {
        match connection.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let _waiting = tracing::info_span!(
                    "db.connection.wait",
                    otel.name = CONNECTION_WAIT_SPAN,
                    { semconv::DB_SYSTEM_NAME } = self.system,
                )
                .entered();
                connection.lock().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }
}

/// The name of SQLite's primary result code in an (extended) result code, such as
/// `SQLITE_BUSY` for 5 or 517 (`SQLITE_BUSY_SNAPSHOT`): SQLite's own low-cardinality names
/// for `error.type` (<https://sqlite.org/rescode.html>), whichever Rust driver reported it.
pub fn sqlite_result_code_name(code: i32) -> &'static str {
    match code & 0xff {
        1 => "SQLITE_ERROR",
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        12 => "SQLITE_NOTFOUND",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        15 => "SQLITE_PROTOCOL",
        16 => "SQLITE_EMPTY",
        17 => "SQLITE_SCHEMA",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        22 => "SQLITE_NOLFS",
        23 => "SQLITE_AUTH",
        24 => "SQLITE_FORMAT",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        27 => "SQLITE_NOTICE",
        28 => "SQLITE_WARNING",
        // The semantic conventions' value for "none of the known ones".
        _ => "_OTHER",
    }
}

/// `error.type` of a failed statement: SQLite's result code name (`SQLITE_BUSY`,
/// `SQLITE_CONSTRAINT`, ...) or the name of rusqlite's own error (`QueryReturnedNoRows`);
/// never the message, which can carry values.
#[cfg(feature = "sqlite")]
pub fn sqlite_error_type(err: &rusqlite::Error) -> Cow<'static, str> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => {
            sqlite_result_code_name(failure.extended_code).into()
        }
        other => {
            let debug = format!("{other:?}");
            let variant = debug
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default();
            if variant.is_empty() {
                "_OTHER".into()
            } else {
                variant.to_owned().into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("constraint failed")]
    struct Constraint;

    #[test]
    fn a_statement_returns_what_it_ran_ok_or_failed() {
        let db = DbClient::new("sqlite", |_: &Constraint| "ConstraintViolation".into());
        let ok = db.statement(Statement::new("SELECT", "t", "SELECT 1"), || Ok(1));
        assert_eq!(ok.unwrap(), 1);
        let failed: Result<(), _> = db
            .statement(Statement::new("INSERT", "t", "INSERT ..."), || {
                Err(Constraint)
            });
        assert!(failed.is_err());
    }

    #[test]
    fn sqlite_codes_are_named_by_their_primary_code() {
        assert_eq!(sqlite_result_code_name(5), "SQLITE_BUSY");
        assert_eq!(sqlite_result_code_name(517), "SQLITE_BUSY");
        assert_eq!(sqlite_result_code_name(2067), "SQLITE_CONSTRAINT");
        assert_eq!(sqlite_result_code_name(0), "_OTHER");
    }

    #[test]
    fn lock_waits_for_the_holder_and_survives_poison() {
        let db = DbClient::new("sqlite", |_: &Constraint| "x".into());
        let connection = std::sync::Arc::new(Mutex::new(0));
        let held = connection.lock().unwrap();
        let waiter = {
            let (db, connection) = (db.clone(), connection.clone());
            std::thread::spawn(move || *db.lock(&connection) + 1)
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(held);
        assert_eq!(waiter.join().unwrap(), 1);

        let poisoner = connection.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(connection.is_poisoned());
        assert_eq!(*db.lock(&connection), 0);
    }
}
