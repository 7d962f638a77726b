//! SIGHUP reloads the configuration of the real collector binary while an OTLP client sends
//! the whole time: a valid config changes what the collector does and loses no span; a
//! broken one is reported, problem by problem, and the running config stays.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

fn config(http: u16, health: u16, backend: std::net::SocketAddr, mark: Option<&str>) -> String {
    config_with(http, health, backend, mark, false)
}

fn config_with(
    http: u16,
    health: u16,
    backend: std::net::SocketAddr,
    mark: Option<&str>,
    reload_endpoint: bool,
) -> String {
    let (processor, list) = match mark {
        Some(value) => (
            format!(
                "  attributes/mark:\n    actions:\n      - {{key: config, value: {value}, action: upsert}}\n"
            ),
            "[attributes/mark, batch]",
        ),
        None => (String::new(), "[batch]"),
    };
    format!(
        r#"extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
    reload: {reload_endpoint}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
{processor}  batch:
    timeout: 50ms
exporters:
  otlp:
    endpoint: {backend}
    tls: {{insecure: true}}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: {list}
      exporters: [otlp]
"#
    )
}

/// Sends requests of 10 spans until told to stop, each retried until it is accepted, as an
/// OTLP client retries a failed export; counts the spans sent and the connections refused.
fn sender(
    http: u16,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{http}/v1/traces");
        let mut first = 0;
        while !stop.load(Ordering::SeqCst) {
            let body = json_spans(first, 10);
            loop {
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => break,
                    Err(e) if e.is_connect() => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            first += 10;
            sent.store(first, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

fn marks(rec: &Received) -> HashSet<String> {
    rec.spans()
        .iter()
        .filter_map(|(_, s)| {
            s.attributes
                .iter()
                .find(|kv| kv.key == "config")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{v:?}"))
        })
        .collect()
}

fn hangup(c: &Collector) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &c.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_losing_a_span_and_keeps_the_old_config_when_the_new_is_broken() {
    let (backend, rec) = backend().await;
    let (http, health) = (free_port(), free_port());
    let mut c = Collector::start(&config(http, health, backend, None));
    c.wait_healthy(health).await;
    let config_file = c.dir.join("config.yaml");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU32::new(0));
    let refused = Arc::new(AtomicU32::new(0));
    let client = sender(http, stop.clone(), sent.clone(), refused.clone());
    assert!(eventually(10, || rec.span_ids().len() >= 100).await);
    assert!(marks(&rec).is_empty(), "no processor marks spans yet");

    // A valid config: spans are marked from now on.
    std::fs::write(&config_file, config(http, health, backend, Some("second"))).unwrap();
    hangup(&c);
    assert!(
        eventually(20, || marks(&rec).iter().any(|m| m.contains("second"))).await,
        "no span went through the new pipeline:\n{}",
        c.logs()
    );
    assert!(c.logs().contains("configuration reloaded"), "{}", c.logs());

    // A broken config: every problem is named with its line, the running config stays.
    let broken = config(http, health, backend, Some("third"))
        .replace("timeout: 50ms", "timeout: 50")
        + "  bogus: 1\n";
    std::fs::write(&config_file, &broken).unwrap();
    let (line, text) = broken
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("timeout: 50"))
        .unwrap();
    let at = format!("config.yaml:{}:{}:", line + 1, text.find("50").unwrap() + 1);
    hangup(&c);
    assert!(
        eventually(10, || c.logs().contains("the running one stays")).await,
        "{}",
        c.logs()
    );
    let logs = c.logs();
    assert!(
        logs.contains(&format!(
            "{at} processors::batch::timeout: invalid duration \"50\""
        )),
        "{logs}"
    );
    assert!(logs.contains("service::bogus"), "{logs}");
    let before = rec.span_ids().len();
    assert!(
        eventually(10, || rec.span_ids().len() > before + 100).await,
        "spans still flow after a rejected reload"
    );
    assert!(
        !marks(&rec).iter().any(|m| m.contains("third")),
        "the broken config did not run"
    );

    stop.store(true, Ordering::SeqCst);
    client.await.unwrap();
    let sent = sent.load(Ordering::SeqCst);
    let expected: HashSet<String> = (1..=sent).map(|i| format!("{i:016x}")).collect();
    assert!(
        eventually(10, || {
            let got: HashSet<String> = rec.span_ids().into_iter().collect();
            expected.is_subset(&got)
        })
        .await,
        "spans lost across the reloads"
    );
    let got: HashSet<String> = rec.span_ids().into_iter().collect();
    assert!(sent >= 300, "the client kept sending ({sent} spans)");
    assert_eq!(
        got.len() as u32,
        sent,
        "every span the client sent arrived, and nothing else"
    );
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "the receiver's port stayed open through the reloads"
    );
    assert!(c.terminate().success());
}

/// `POST /reload` on the health check (when `reload: true`) reloads as SIGHUP does and
/// answers with the outcome; without `reload: true` there is no such endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_answers_with_what_happened() {
    let (backend, rec) = backend().await;
    let (http, health) = (free_port(), free_port());
    let mut c = Collector::start(&config_with(http, health, backend, None, true));
    c.wait_healthy(health).await;
    let config_file = c.dir.join("config.yaml");
    let client = reqwest::Client::new();
    let reload = || async {
        let r = client
            .post(format!("http://127.0.0.1:{health}/reload"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };

    std::fs::write(
        &config_file,
        config_with(http, health, backend, Some("posted"), true).replace("50ms", "fifty"),
    )
    .unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("processors::batch::timeout: invalid duration"),
        "{body}"
    );
    assert!(body.contains("the running configuration stays"), "{body}");

    std::fs::write(
        &config_file,
        config_with(http, health, backend, Some("posted"), true),
    )
    .unwrap();
    let (status, body) = reload().await;
    assert_eq!((status, body.as_str()), (200, "configuration reloaded\n"));
    let sent = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(json_spans(0, 10))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success());
    assert!(eventually(10, || marks(&rec).iter().any(|m| m.contains("posted"))).await);

    // Switched off again by the config it loaded: the next request finds no endpoint.
    std::fs::write(
        &config_file,
        config_with(http, health, backend, None, false),
    )
    .unwrap();
    let (status, body) = reload().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(reload().await.0, 404, "POST /reload is off");
    assert!(c.terminate().success());
}
