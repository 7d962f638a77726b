//! The `collector` command line as a user meets it: validate, components, --help.

use std::process::Command;

fn collector(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(args)
        .output()
        .expect("run collector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("otel-lab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn both_seed_configs_validate_unchanged() {
    for f in ["seed-lab.yaml", "seed-odd.yaml"] {
        let path = format!("{}/configs/examples/{f}", env!("CARGO_MANIFEST_DIR"));
        let (ok, out, err) = collector(&["validate", "--config", &path]);
        assert!(ok, "{f}: {err}");
        assert!(out.starts_with("configuration is valid"), "{out}");
    }
}

#[test]
fn validate_lists_every_error_with_file_line_and_key_path() {
    let path = write(
        "broken.yaml",
        r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: localhost
        max_recv_msg_size: 4
  zipkin:
processors:
  batch:
    timeout: 10
    send_batch_size: many
exporters:
  otlp/jaeger:
    endpoint: jaeger:4317
    compresion: gzip
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, memory_limiter]
      exporters: [otlp/jaeger, otlp/tempo]
"#,
    );
    let (ok, out, err) = collector(&["validate", "--config", &path]);
    assert!(!ok);
    assert_eq!(out, "");
    let expected = format!(
        "invalid configuration (7 errors):
  {p}:5:19: receivers::otlp::protocols::grpc::endpoint: \"localhost\" is not host:port (for example 127.0.0.1:4317, or :4317 for every interface)
  {p}:6:9: receivers::otlp::protocols::grpc::max_recv_msg_size: unknown key \"max_recv_msg_size\"; valid keys here: endpoint, max_recv_msg_size_mib, tls, auth
  {p}:7:3: receivers::zipkin: unknown receiver type \"zipkin\"; known receiver types: otlp
  {p}:10:14: processors::batch::timeout: invalid duration \"10\": use a number with a unit (ns, us, ms, s, m, h), e.g. 200ms, 10s, 1m30s
  {p}:15:5: exporters::otlp/jaeger::compresion: unknown key \"compresion\"; valid keys here: endpoint, tls, headers, compression, timeout, sending_queue, retry_on_failure, balancer_name, auth
  {p}:20:27: service::pipelines::traces::processors: processor \"memory_limiter\" is not defined (defined: batch)
  {p}:21:32: service::pipelines::traces::exporters: exporter \"otlp/tempo\" is not defined (defined: otlp/jaeger)
",
        p = path
    );
    let errors: String = err
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(errors, expected);
    assert!(err.contains(&format!("warning: {path}:7:3: receivers::zipkin: receiver \"zipkin\" is defined but not used in any pipeline")), "{err}");
}

#[test]
fn invalid_yaml_points_at_the_line() {
    let path = write(
        "bad-yaml.yaml",
        "receivers:\n  otlp:\n    protocols: [grpc\n",
    );
    let (ok, _, err) = collector(&["validate", "--config", &path]);
    assert!(!ok);
    assert!(err.contains(&format!("{path}:")), "{err}");
    assert!(err.contains("invalid YAML"), "{err}");
}

#[test]
fn later_config_files_override_earlier_ones() {
    let base = write(
        "base.yaml",
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: nope\nexporters:\n  nop:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nop]\n",
    );
    let fix = write(
        "fix.yaml",
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n",
    );
    let (ok, _, err) = collector(&["validate", "--config", &base]);
    assert!(!ok, "{err}");
    let (ok, out, err) = collector(&["validate", "--config", &base, "--config", &fix]);
    assert!(ok, "{err}");
    assert!(out.contains("1 pipelines"), "{out}");
}

#[test]
fn env_references_are_expanded_before_validation() {
    let path = write(
        "env.yaml",
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: ${env:LAB_TEST_ENDPOINT:-127.0.0.1:4317}\nexporters:\n  debug:\n    verbosity: ${env:LAB_TEST_VERBOSITY}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["validate", "--config", &path])
        .env("LAB_TEST_VERBOSITY", "loud")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("exporters::debug::verbosity: unknown verbosity \"loud\""),
        "{err}"
    );
}

#[test]
fn components_lists_every_type_with_a_description() {
    let (ok, out, _) = collector(&["components"]);
    assert!(ok);
    for kind in [
        "otlp ",
        "batch",
        "memory_limiter",
        "otlp_grpc (otlp)",
        "otlp_http (otlphttp)",
        "debug",
        "file",
        "nop",
        "health_check",
    ] {
        assert!(out.contains(kind), "{kind} missing from:\n{out}");
    }
}

#[test]
fn a_batch_that_acknowledges_before_a_persistent_queue_is_warned_about() {
    let path = write(
        "durable.yaml",
        "extensions:\n  file_storage:\n    directory: /tmp/otel-lab-cli-queues\nreceivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  batch:\nexporters:\n  otlp:\n    endpoint: 127.0.0.1:4317\n    sending_queue:\n      storage: file_storage\nservice:\n  extensions: [file_storage]\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [otlp]\n",
    );
    let (ok, _, err) = collector(&["validate", "--config", &path]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("warning: {path}:20:20: service::pipelines::traces::processors: \"batch\" acknowledges data before it reaches the persistent queue")),
        "{err}"
    );
}

#[test]
fn components_in_pipelines_of_a_signal_they_cannot_handle_are_named() {
    let path = write(
        "signals.yaml",
        "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  tail_sampling:\n    policies: [{name: all, type: always_sample}]\nexporters:\n  nop:\nconnectors:\n  spanmetrics:\nservice:\n  pipelines:\n    metrics:\n      receivers: [otlp, spanmetrics]\n      processors: [tail_sampling]\n      exporters: [nop, spanmetrics]\n    traces:\n      receivers: [spanmetrics]\n      exporters: [nop]\n",
    );
    let (ok, _, err) = collector(&["validate", "--config", &path]);
    assert!(!ok);
    for want in [
        format!(
            "{path}:19:19: service::pipelines::traces::receivers: connector \"spanmetrics\" cannot produce traces"
        ),
        format!(
            "{path}:16:20: service::pipelines::metrics::processors: processor \"tail_sampling\" does not support metrics"
        ),
        format!(
            "{path}:17:24: service::pipelines::metrics::exporters: connector \"spanmetrics\" cannot consume metrics"
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
}

/// Keys a Go config carries that this collector accepts without acting on them: the
/// config is valid, and each is named with its line and why it is ignored. Keys it does
/// act on (debug's sampling, tail sampling's expected rate) are not warned about.
#[test]
fn keys_accepted_for_compatibility_and_ignored_are_each_warned_about_at_their_line() {
    let path = write(
        "ignored.yaml",
        r#"extensions:
  health_check:
    check_collector_pipeline:
      enabled: true
      exporter_failure_threshold: 3
receivers:
  otlp:
    protocols:
      grpc:
processors:
  filter:
    error_mode: ignore
    traces:
      span: ['name == "GET /healthz"']
  tail_sampling:
    expected_new_traces_per_sec: 100
    policies: [{name: all, type: always_sample}]
exporters:
  otlp:
    endpoint: 127.0.0.1:4317
    balancer_name: round_robin
  file:
    path: /tmp/otel-lab-cli-ignored.jsonl
    flush_interval: 5s
  debug:
    sampling_initial: 5
    sampling_thereafter: 200
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [filter, tail_sampling]
      exporters: [otlp, file, debug]
"#,
    );
    let (ok, out, err) = collector(&["validate", "--config", &path]);
    assert!(ok, "{err}");
    assert!(out.starts_with("configuration is valid"), "{out}");
    for (line, key) in [
        (
            5,
            "extensions::health_check::check_collector_pipeline::exporter_failure_threshold",
        ),
        (12, "processors::filter::error_mode"),
        (21, "exporters::otlp::balancer_name"),
        (24, "exporters::file::flush_interval"),
    ] {
        let want = format!("warning: {path}:{line}:");
        let found = err
            .lines()
            .find(|l| l.starts_with(&want) && l.contains(&format!(" {key}: ")));
        let found = found.unwrap_or_else(|| panic!("no warning for {key} at line {line}:\n{err}"));
        assert!(
            found.contains("accepted for compatibility with Go configs and ignored"),
            "{found}"
        );
    }
    for acted_on in [
        "sampling_initial",
        "sampling_thereafter",
        "expected_new_traces_per_sec",
    ] {
        assert!(!err.contains(acted_on), "{acted_on} is not ignored:\n{err}");
    }
}
