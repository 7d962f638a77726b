//! The workshop against a real lab: every process started once by `lab up` (debug binaries),
//! then, for each module, `lab check` fails on the fresh lab and passes once the reference
//! solution is applied; `lab fault` sets, lists and clears faults on the real workloads; and
//! every command the module pages tell a person to type is run (or, for `make`, dry-run).
//! Last, one headless Chromium session takes the screenshots the module pages show, from this
//! lab, into docs/workshop/img/ (so `make test` keeps them current).
//! One lab for all of it keeps the CI cost to one start-up. Uses the lab's fixed ports, so it
//! fails when another lab is running.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Lab, build_workspace_binaries, repo};

const LAB: &str = env!("CARGO_BIN_EXE_lab");
const NOT_RUNNING: &str = "is the lab running? start it with make run";
const ORDER: &str = r#"{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}"#;

/// The directory of the debug binaries: `lab`, the services, the collector.
fn bin_dir() -> PathBuf {
    Path::new(LAB).parent().unwrap().to_path_buf()
}

/// PATH with the debug binaries first, as a learner's `export PATH=...target/release:$PATH`.
fn path_with_lab() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn require_tool(tool: &str, install: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is needed by this test: {install}");
}

/// `lab ARGS` as a learner types it in the checkout.
fn lab(args: &[&str]) -> Output {
    Command::new(LAB)
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run lab")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs module `module`'s reference solution `solution` (in docs/workshop/solutions/): it must
/// succeed and end with the check's "module NN done".
fn solved(solution: &str, module: &str) -> Output {
    let out = bash(&format!("docs/workshop/solutions/{solution}"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("module {module} done")),
        "{}",
        text(&out)
    );
    out
}

/// `lab check MODULE --answer A ...`, which must fail (exit 1): its output.
fn check_answering(module: &str, answers: &[&str]) -> Output {
    let mut args = vec!["check", module];
    for answer in answers {
        args.extend(["--answer", answer]);
    }
    let out = lab(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    out
}

/// Runs `script` with bash in the checkout, `lab` on the PATH.
fn bash(script: &str) -> Output {
    Command::new("bash")
        .args(["-c", script])
        .current_dir(repo())
        .env("PATH", path_with_lab())
        .env("NO_COLOR", "1")
        .output()
        .expect("run bash")
}

/// Runs `script` with bash in `dir`, `lab` and `collector` on the PATH.
fn bash_in(dir: &Path, script: &str) -> Output {
    Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", path_with_lab())
        .env("NO_COLOR", "1")
        .output()
        .expect("run bash")
}

/// A checkout as far as modules 10 and 16 need one: the lab's gateway config where `lab check`
/// recognises a checkout, the trace test's starter, and nothing in `workshop/`. Keeps the learner's files out of the
/// source tree.
fn scratch_checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("crates/collector/configs/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::copy(
        repo().join("crates/collector/configs/local/gateway.yaml"),
        local.join("gateway.yaml"),
    )
    .unwrap();
    let starter = dir.path().join("docs/workshop/starter");
    std::fs::create_dir_all(&starter).unwrap();
    std::fs::copy(
        repo().join("docs/workshop/starter/trace_test.py"),
        starter.join("trace_test.py"),
    )
    .unwrap();
    dir
}

fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request,urllib.error\n\
             m,u,b=sys.argv[1:4]\n\
             r=urllib.request.Request(u,data=b.encode() if m=='POST' else None,headers={'content-type':'application/json'},method=m)\n\
             try:\n  resp=urllib.request.urlopen(r,timeout=30); print(resp.status); print(resp.read().decode())\n\
             except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode())",
            method,
            url,
            body,
        ])
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, body) = out.split_once('\n').unwrap_or(("0", ""));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn json(url: &str) -> serde_json::Value {
    let (status, body) = http("GET", url, "");
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until `condition` holds, or fails with what `describe` says.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn faults_of(port: u16) -> serde_json::Value {
    json(&format!("http://127.0.0.1:{port}/admin/faults"))
}

/// `lab fault` against the real workloads: list, set, refuse, clear.
fn lab_fault_sets_lists_and_clears_faults() {
    let list = lab(&["fault"]);
    assert!(list.status.success(), "{}", text(&list));
    for w in [
        "order-service",
        "inventory-service",
        "fraud-check",
        "payment-service",
    ] {
        assert!(
            stdout(&list)
                .lines()
                .any(|l| l.starts_with(w) && l.ends_with("no faults")),
            "{w} not listed with no faults:\n{}",
            text(&list)
        );
    }

    let set = lab(&["fault", "payment-service", "payment_gateway_timeout"]);
    assert!(set.status.success(), "{}", text(&set));
    assert_eq!(
        faults_of(8081)["scenarios"],
        serde_json::json!(["payment_gateway_timeout"])
    );
    let set = lab(&[
        "fault",
        "payment-service",
        "--error-rate",
        "0.2",
        "--latency-ms",
        "300",
    ]);
    assert!(set.status.success(), "{}", text(&set));
    let payment = faults_of(8081);
    assert_eq!(payment["error_rate"], 0.2);
    assert_eq!(payment["latency_ms"], 300);
    assert_eq!(
        payment["scenarios"],
        serde_json::json!(["payment_gateway_timeout"]),
        "setting a rate keeps the scenario"
    );
    let list = lab(&["fault"]);
    assert!(
        stdout(&list).contains("error rate 0.2 · +300 ms · payment_gateway_timeout"),
        "{}",
        text(&list)
    );

    // Every scenario lab knows is accepted by the workload it names: the table is real.
    for (workload, port, scenario) in [
        ("inventory-service", 8082, "slow_inventory_queries"),
        ("inventory-service", 8082, "inventory_lock"),
        ("fraud-check", 9000, "fraud_reject_all"),
        ("payment-service", 8081, "payment_decline_all"),
    ] {
        let set = lab(&["fault", workload, scenario]);
        assert!(set.status.success(), "{}", text(&set));
        assert!(
            faults_of(port)["scenarios"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(scenario)),
            "{workload} did not turn {scenario} on"
        );
    }
    let off = lab(&["fault", "payment-service", "--off", "payment_decline_all"]);
    assert!(off.status.success(), "{}", text(&off));
    assert_eq!(
        faults_of(8081)["scenarios"],
        serde_json::json!(["payment_gateway_timeout"])
    );

    // Refusals name what exists.
    let unknown = lab(&["fault", "payments", "payment_gateway_timeout"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("unknown workload \"payments\"")
            && err.contains("payment-service")
            && err.contains("fraud-check"),
        "{}",
        text(&unknown)
    );
    let unknown = lab(&["fault", "payment-service", "slow_everything"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("payment-service refused")
            && err.contains("slow_everything")
            && err.contains("payment_gateway_timeout"),
        "the workload's list of scenarios is shown: {}",
        text(&unknown)
    );
    let wrong = lab(&["fault", "order-service", "inventory_lock"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("a scenario of inventory-service"),
        "{}",
        text(&wrong)
    );
    let bad_rate = lab(&["fault", "payment-service", "--error-rate", "1.5"]);
    assert_eq!(bad_rate.status.code(), Some(1), "{}", text(&bad_rate));
    assert_eq!(
        faults_of(8081)["error_rate"],
        0.2,
        "a refused change changes nothing"
    );

    let clear = lab(&["fault", "inventory-service", "--clear"]);
    assert!(clear.status.success(), "{}", text(&clear));
    assert_eq!(faults_of(8082)["scenarios"], serde_json::json!([]));
    assert_eq!(faults_of(8081)["latency_ms"], 300, "only inventory cleared");

    let clear = lab(&["fault", "--clear"]);
    assert!(clear.status.success(), "{}", text(&clear));
    for port in [8080, 8081, 8082, 9000] {
        let f = faults_of(port);
        assert_eq!(
            (
                f["error_rate"].as_f64(),
                f["latency_ms"].as_u64(),
                f["scenarios"].clone()
            ),
            (Some(0.0), Some(0), serde_json::json!([])),
            "port {port} not cleared"
        );
    }
}

/// Every command in a ```sh block of the workshop's pages, one per line: `lab ...` and
/// `curl ...` run against the lab (a usage error, exit 2, or a failing curl fails the test),
/// `make TARGET` must be a target (dry run), `export` must work in bash; the file commands of
/// module 10 (`mkdir`, `cp`, `collector`) must succeed, run in order in a scratch checkout so
/// the learner's `workshop/` never lands in the source tree.
fn every_command_on_the_pages_works() {
    let scratch = scratch_checkout();
    let dir = repo().join("docs/workshop");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let mut kinds = HashSet::new();
    for page in &pages {
        let markdown = std::fs::read_to_string(page).unwrap();
        let mut in_sh = false;
        for line in markdown.lines() {
            if line.trim_start().starts_with("```") {
                in_sh = !in_sh && line.trim() == "```sh";
                continue;
            }
            let command = line.split(" #").next().unwrap().trim();
            if !in_sh || command.is_empty() {
                continue;
            }
            let program = command.split_whitespace().next().unwrap();
            kinds.insert(program.to_owned());
            let where_ = format!("{}: {command}", page.display());
            match program {
                "lab" => {
                    let out = bash(command);
                    assert!(
                        matches!(out.status.code(), Some(0) | Some(1)),
                        "{where_}\n{}",
                        text(&out)
                    );
                }
                "curl" => {
                    // -f right after curl, so a pipe into grep keeps working; pipefail so a
                    // failing curl or a grep that finds nothing fails the test.
                    let out = bash(&format!("set -o pipefail; curl -f {}", &command[5..]));
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                // The learner's own files are in the scratch checkout.
                "python3" if command.contains("workshop/") => {
                    let out = bash_in(scratch.path(), command);
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                "python3" | "traffic" => {
                    let out = bash(command);
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                "make" => {
                    let out = bash(&format!("make -n {}", &command[5..]));
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                "mkdir" | "cp" | "collector" => {
                    let out = bash_in(scratch.path(), command);
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                "export" => {
                    let out = bash(&format!("{command} && command -v lab"));
                    assert!(out.status.success(), "{where_}\n{}", text(&out));
                }
                other => panic!("{where_}: the test does not know how to run {other}"),
            }
        }
    }
    for kind in [
        "lab",
        "curl",
        "make",
        "export",
        "python3",
        "collector",
        "traffic",
    ] {
        assert!(kinds.contains(kind), "no {kind} command found on the pages");
    }
}

/// An order placed through order-service; its trace id once payment-service's server span is
/// in the explorer, with that span's id.
fn checkout_with_payment_span() -> (String, String) {
    let (status, body) = http("POST", "http://127.0.0.1:8080/orders", ORDER);
    assert_eq!(status, 201, "{body}");
    let order: serde_json::Value = serde_json::from_str(&body).unwrap();
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    let mut server = None;
    wait_for("payment-service's POST /payments span", || {
        let (status, body) = http(
            "GET",
            &format!("http://127.0.0.1:16686/api/traces/{trace_id}"),
            "",
        );
        if status != 200 {
            return false;
        }
        let api: serde_json::Value = serde_json::from_str(&body).unwrap();
        server = api["data"][0]["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["operationName"] == "POST /payments")
            .map(|s| s["spanID"].as_str().unwrap().to_owned());
        server.is_some()
    });
    (trace_id, server.unwrap())
}

/// Sends one span to the gateway as OTLP/JSON, as payment-service would after the exercise.
fn send_validate_span(trace_id: &str, parent: &str, span_id: &str, with_valid: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut attributes =
        vec![serde_json::json!({"key": "payment.currency", "value": {"stringValue": "USD"}})];
    if with_valid {
        attributes.push(serde_json::json!({"key": "payment.valid", "value": {"boolValue": true}}));
    }
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "payment-service"}}]},
        "scopeSpans": [{"scope": {"name": "workshop-test"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "parentSpanId": parent,
            "name": "payment.validate", "kind": 1,
            "startTimeUnixNano": (now - 2_000_000).to_string(),
            "endTimeUnixNano": now.to_string(),
            "attributes": attributes}]}]}]});
    let (status, response) = http("POST", "http://127.0.0.1:4418/v1/traces", &body.to_string());
    assert_eq!(status, 200, "{response}");
}

/// Module 10 in a scratch checkout: no file, the lab's config copied as it is, a copy
/// validate refuses (its errors quoted), then the reference solution.
fn module_10_checks_the_learners_gateway_config() {
    let checkout = scratch_checkout();
    let dir = checkout.path();
    let check = || lab(&["check", "10", "--repo", dir.to_str().unwrap()]);
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out)
            .contains("cp crates/collector/configs/local/gateway.yaml workshop/gateway.yaml"),
        "no file: the hint says how to start: {}",
        text(&out)
    );

    std::fs::create_dir_all(dir.join("workshop")).unwrap();
    let copy = dir.join("workshop/gateway.yaml");
    std::fs::copy(
        dir.join("crates/collector/configs/local/gateway.yaml"),
        &copy,
    )
    .unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report.contains("✓ workshop/gateway.yaml is a copy of the lab's gateway")
            && report
                .contains("✓ collector validate --config workshop/gateway.yaml finds no problem")
            && report.contains("✗ the traces pipeline adds an attribute")
            && report.contains("✗ the traces pipeline drops the spans"),
        "an unchanged copy validates but adds and drops nothing: {}",
        text(&out)
    );

    // Defined but not wired, and a condition validate refuses: both named.
    let original = std::fs::read_to_string(&copy).unwrap();
    let broken = original.replacen(
        "processors:\n",
        "processors:\n  filter/browse:\n    traces:\n      span: ['name == \"GET /inventory']\n  \
         attributes/workshop:\n    actions: [{key: workshop.attendee, value: ada, action: upsert}]\n",
        1,
    );
    std::fs::write(&copy, broken).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report.contains("hint: workshop/gateway.yaml:")
            && report.contains("unterminated string")
            && report.contains("attributes/workshop is defined under processors: but not listed"),
        "validate's error is quoted at its line, the unwired processor named: {}",
        text(&out)
    );

    std::fs::write(&copy, original).unwrap();
    std::fs::remove_dir_all(dir.join("workshop")).unwrap();
    let script = repo().join("docs/workshop/solutions/10-pipelines.sh");
    let out = bash_in(dir, script.to_str().unwrap());
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("module 10 done"), "{}", text(&out));
    assert!(
        stdout(&out).contains("attributes/workshop sets workshop.attendee=\"ada\"")
            && stdout(&out).contains("drops GET /inventory"),
        "{}",
        text(&out)
    );
    // The source tree has no workshop/ of its own: the fresh-lab check above failed there.
    let out = lab(&["check", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// Module 16 in a scratch checkout: the starter passes on the healthy lab but catches neither
/// regression; the reference solution catches both; the learner's fault settings survive.
fn module_16_wants_a_test_that_fails_on_each_regression() {
    let checkout = scratch_checkout();
    let dir = checkout.path();
    let check = || lab(&["check", "16", "--repo", dir.to_str().unwrap()]);
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("cp docs/workshop/starter/trace_test.py workshop/trace_test.py"),
        "{}",
        text(&out)
    );

    std::fs::create_dir_all(dir.join("workshop")).unwrap();
    std::fs::copy(
        dir.join("docs/workshop/starter/trace_test.py"),
        dir.join("workshop/trace_test.py"),
    )
    .unwrap();
    let set = lab(&["fault", "payment-service", "--latency-ms", "5"]);
    assert!(set.status.success(), "{}", text(&set));
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report.contains("✓ it passes against the healthy lab")
            && report.contains("✗ it fails when order-service has drop_trace_context")
            && report.contains("✗ it fails when inventory-service has n_plus_one_queries"),
        "the starter cannot fail: {}",
        text(&out)
    );
    assert_eq!(
        faults_of(8081)["latency_ms"],
        5,
        "the settings are put back"
    );

    std::fs::copy(
        repo().join("docs/workshop/solutions/16-trace_test.py"),
        dir.join("workshop/trace_test.py"),
    )
    .unwrap();
    let out = check();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("module 16 done"), "{}", text(&out));
    assert!(
        stdout(&out).contains("SELECT products"),
        "the failure is the test's own message: {}",
        text(&out)
    );
    assert_eq!(
        faults_of(8081)["latency_ms"],
        5,
        "the settings are put back"
    );
    let clear = lab(&["fault", "--clear"]);
    assert!(clear.status.success(), "{}", text(&clear));
}

/// The incident: three seeds that between them hide every problem of the pool. For each, the
/// reference solution finds the problems from traces and metrics alone, and what it finds is
/// what `--reveal` says was hidden; while an incident runs, `lab fault` names no problem and
/// no span carries a `fault.injected` event.
fn module_17_incidents_are_found_from_telemetry_alone() {
    let mut covered = HashSet::new();
    for seed in ["11", "1", "7"] {
        let reveal = lab(&["incident", "--seed", seed, "--reveal"]);
        assert!(reveal.status.success(), "{}", text(&reveal));
        let hidden: HashSet<String> = stdout(&reveal)
            .split_once(": ")
            .unwrap()
            .1
            .trim()
            .split(", ")
            .map(str::to_owned)
            .collect();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let out = bash(&format!("docs/workshop/solutions/17-incident.sh {seed}"));
        assert!(out.status.success(), "seed {seed}: {}", text(&out));
        assert!(stdout(&out).contains("module 17 done"), "{}", text(&out));
        let found: HashSet<String> = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("found: "))
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(
            found, hidden,
            "seed {seed}: the telemetry shows what was hidden"
        );
        covered.extend(hidden);

        let list = lab(&["fault"]);
        let table: String = stdout(&list).lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(table.contains("hidden problem"), "{}", text(&list));
        for name in &covered {
            assert!(!table.contains(name.as_str()), "{name} shown: {table}");
        }
        let marked = search("order-service", "POST /orders")
            .into_iter()
            .chain(search("inventory-service", "POST /inventory/reserve"))
            .filter(|t| spans(t).all(|s| s["startTime"].as_u64().unwrap() >= since))
            .filter(|t| {
                spans(t).any(|s| {
                    s["logs"].as_array().into_iter().flatten().any(|l| {
                        l["fields"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|f| f["value"] == "fault.injected")
                    })
                })
            })
            .count();
        assert_eq!(marked, 0, "seed {seed}: hidden problems mark no span");
    }
    assert_eq!(covered.len(), 8, "the seeds cover the pool: {covered:?}");

    let wrong = lab(&["check", "17", "--answer", "problems=inventory_lock"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        stdout(&wrong).contains("you named 1, the incident hides 3"),
        "{}",
        text(&wrong)
    );
    let clear = lab(&["fault", "--clear"]);
    assert!(clear.status.success(), "{}", text(&clear));
    let over = lab(&["check", "17", "--answer", "problems=inventory_lock"]);
    assert!(
        stdout(&over).contains("no workload has hidden problems"),
        "{}",
        text(&over)
    );
}

/// Where a tool is on the PATH, or a failure saying how to install it.
fn tool_path(tool: &str, install: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{tool} is needed by this test: {install}"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

const BROWSER_INSTALL: &str = "the workshop pages' screenshots are taken in headless Chromium (apt-get install chromium chromium-driver)";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(tool_path("chromedriver", BROWSER_INSTALL))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(s)) = driver.child.try_wait() {
                panic!("chromedriver exited with {s}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after 20s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    async fn browser(&self, profile: &Path) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": tool_path("chromium", BROWSER_INSTALL),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,860",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() > deadline => panic!("no Chromium session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// What the screenshots show, found through the explorer's API before the browser starts.
struct Shots {
    /// A checkout with `session.id` in its baggage: its waterfall (01) and its root span's
    /// tags (05).
    checkout: String,
    checkout_root: String,
    /// A checkout whose fraud-check invocation was a cold start (12), and that span.
    cold: String,
    cold_span: String,
    /// A checkout with the payment hop broken (04).
    broken: String,
    /// A five-line checkout with a span per item and an N+1 (08).
    noisy: String,
    /// The checkout that waited longest for the one connection (09), and that span.
    queued: String,
    queued_span: String,
    /// An order whose fulfilment links to it (18).
    linked: String,
    /// Module 03's business span: its trace and id.
    validate: String,
    validate_span: String,
}

/// The traces of `service`'s `operation` in the last hour, as `/api/traces` returns them.
fn search(service: &str, operation: &str) -> Vec<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-fsS", "-G", "http://127.0.0.1:16686/api/traces"])
        .args(["--data-urlencode", &format!("service={service}")])
        .args(["--data-urlencode", &format!("operation={operation}")])
        .args([
            "--data-urlencode",
            "limit=500",
            "--data-urlencode",
            "lookback=1h",
        ])
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", text(&out));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    found["data"].as_array().cloned().unwrap_or_default()
}

fn spans(trace: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    trace["spans"].as_array().into_iter().flatten()
}

/// Whether planted problem `scenario` marked a span of the trace.
fn met(trace: &serde_json::Value, scenario: &str) -> bool {
    spans(trace).any(|s| {
        s["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["fields"].as_array().into_iter().flatten())
            .any(|f| f["key"] == "fault.name" && f["value"] == scenario)
    })
}

const SESSION: &str = "ada-1815";

/// The explorer's `/api/traces/{id}`, once every workload's spans of it are in.
fn whole_checkout(trace_id: &str) -> serde_json::Value {
    let mut trace = serde_json::Value::Null;
    wait_for("every workload's spans of the checkout", || {
        let (status, body) = http(
            "GET",
            &format!("http://127.0.0.1:16686/api/traces/{trace_id}"),
            "",
        );
        if status != 200 {
            return false;
        }
        let api: serde_json::Value = serde_json::from_str(&body).unwrap();
        trace = api["data"][0].clone();
        let services: HashSet<&str> = trace["processes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, p)| p["serviceName"].as_str())
            .collect();
        [
            "order-service",
            "inventory-service",
            "fraud-check",
            "payment-service",
        ]
        .iter()
        .all(|s| services.contains(s))
    });
    trace
}

fn span_id_where(trace: &serde_json::Value, pick: impl Fn(&serde_json::Value) -> bool) -> String {
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| pick(s))
        .and_then(|s| s["spanID"].as_str())
        .unwrap_or_else(|| panic!("no such span in {trace}"))
        .to_owned()
}

fn has_tag(span: &serde_json::Value, key: &str, value: &str) -> bool {
    span["tags"].as_array().into_iter().flatten().any(|t| {
        let v = &t["value"];
        t["key"] == key && v.as_str().map_or_else(|| v.to_string(), str::to_owned) == value
    })
}

fn find_shots() -> Shots {
    let out = bash(&format!(
        "curl -fsS -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
         -H 'baggage: session.id={SESSION}' -d '{ORDER}'"
    ));
    assert!(out.status.success(), "{}", text(&out));
    let order: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checkout = order["trace_id"].as_str().unwrap().to_owned();
    let trace = whole_checkout(&checkout);
    let checkout_root = span_id_where(&trace, |s| {
        s["operationName"] == "POST /orders" && has_tag(s, "session.id", SESSION)
    });

    // Module 12's solution left a checkout whose fraud-check span is a cold start.
    let found = json(
        "http://127.0.0.1:16686/api/traces?service=fraud-check&limit=100&lookback=1h&tags=%7B%22faas.coldstart%22%3A%22true%22%7D",
    );
    let cold = found["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["operationName"] == "POST /orders")
        })
        .and_then(|t| t["traceID"].as_str())
        .expect("module 12's solution left a checkout with a cold start")
        .to_owned();
    let trace = whole_checkout(&cold);
    let cold_span = span_id_where(&trace, |s| {
        has_tag(s, "faas.coldstart", "true") && has_tag(s, "span.kind", "server")
    });
    // The planted problems' modules left their traces: one of each for the pages.
    let broken = search("order-service", "POST /orders")
        .into_iter()
        .find(|t| met(t, "drop_trace_context"))
        .expect("module 04's solution left a broken checkout");
    let noisy = search("inventory-service", "inventory.price_item")
        .into_iter()
        .filter(|t| met(t, "n_plus_one_queries"))
        .max_by_key(|t| {
            spans(t)
                .filter(|s| s["operationName"] == "inventory.price_item")
                .count()
        })
        .expect("module 08's solution left a noisy checkout");
    let wait = |t: &serde_json::Value| {
        spans(t)
            .filter(|s| s["operationName"] == "wait for connection")
            .map(|s| {
                (
                    s["duration"].as_u64().unwrap(),
                    s["spanID"].as_str().unwrap().to_owned(),
                )
            })
            .max()
    };
    let (_, queued_span, queued) = search("order-service", "wait for connection")
        .into_iter()
        .filter_map(|t| {
            wait(&t).map(|(d, span)| (d, span, t["traceID"].as_str().unwrap().to_owned()))
        })
        .max()
        .expect("module 09's solution left queued checkouts");
    let validate = search("payment-service", "payment.validate")
        .into_iter()
        .find(|t| spans(t).any(|s| s["spanID"] == "00000000000000a2"))
        .expect("module 03's business span");
    // 18: an order the fulfilment links back to (module 18's solution placed some).
    let linked = search("order-service", "send orders")
        .into_iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .find(|id| {
            let out = Command::new("curl")
                .args([
                    "-fsS",
                    &format!("http://127.0.0.1:16686/api/lab/links/{id}"),
                ])
                .output()
                .expect("curl");
            let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            links["data"]["linkedFrom"]
                .as_array()
                .is_some_and(|l| l.iter().any(|t| t["rootService"] == "fulfilment"))
        })
        .expect("module 18's solution left an order linked from its fulfilment");
    Shots {
        linked,
        checkout,
        checkout_root,
        validate: validate["traceID"].as_str().unwrap().to_owned(),
        validate_span: "00000000000000a2".to_owned(),
        cold,
        cold_span,
        broken: broken["traceID"].as_str().unwrap().to_owned(),
        noisy: noisy["traceID"].as_str().unwrap().to_owned(),
        queued,
        queued_span,
    }
}

/// Writes the page's screenshot `docs/workshop/img/NAME`.
async fn save(c: &fantoccini::Client, name: &str) {
    let dir = repo().join("docs/workshop/img");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(
        png.len() > 10_000,
        "{name}: a {} byte screenshot is blank",
        png.len()
    );
    std::fs::write(dir.join(name), png).unwrap();
}

/// Runs `script` in the page until it returns something other than null or false.
async fn wait_js(c: &fantoccini::Client, what: &str, script: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if !(v.is_null() || v == false) {
            return v;
        }
        if Instant::now() > deadline {
            let html = c.source().await.unwrap_or_default();
            panic!("waited 15s for {what}; page:\n{html}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens a span's details on its trace page and brings the row with `key` into view.
async fn span_detail(c: &fantoccini::Client, trace: &str, span: &str, key: &str, value: &str) {
    c.goto(&format!("http://127.0.0.1:16686/trace/{trace}"))
        .await
        .unwrap();
    wait_js(
        c,
        "the span's row",
        &format!("return document.querySelector(\".span-row[data-span-id='{span}'] .span-name\")"),
    )
    .await;
    c.find(fantoccini::Locator::Css(&format!(
        ".span-row[data-span-id='{span}'] .span-name"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let shown = wait_js(
        c,
        &format!("{key} in the span's details"),
        &format!(
            "const d = document.querySelector(\".span-detail[data-detail-for='{span}']\"); \
             if (!d) return null; \
             const row = [...d.querySelectorAll('.tags-table tr, .process-table tr')].find(r => r.querySelector('td.key')?.textContent.trim() === '{key}'); \
             if (!row) return null; \
             row.style.outline = '3px solid #e8a317'; row.scrollIntoView({{block: 'center'}}); \
             return row.querySelector('td.value').textContent.trim();"
        ),
    )
    .await;
    assert_eq!(shown, value, "{key} on span {span} of {trace}");
}

/// Opens a trace's page in the lab's explorer and waits for its waterfall.
async fn waterfall(c: &fantoccini::Client, trace: &str, what: &str) {
    waterfall_at(c, "http://127.0.0.1:16686", trace, what).await;
}

/// The same, in the explorer at `base` (the second backend's, for module 13).
async fn waterfall_at(c: &fantoccini::Client, base: &str, trace: &str, what: &str) {
    c.goto(&format!("{base}/trace/{trace}")).await.unwrap();
    wait_js(
        c,
        what,
        "return document.querySelectorAll('.span-row').length >= 5 ? true : null;",
    )
    .await;
}

/// The screenshots the module pages show, from this lab after the solutions ran: one
/// Chromium session, four pages.
async fn take_screenshots(c: &fantoccini::Client, shots: &Shots) {
    // 01: the checkout's waterfall, its critical path drawn.
    c.goto(&format!("http://127.0.0.1:16686/trace/{}", shots.checkout))
        .await
        .unwrap();
    let on_path = wait_js(
        c,
        "the waterfall with its critical path",
        "const rows = document.querySelectorAll('.span-row'); \
         const path = document.querySelectorAll('.span-row.on-critical-path'); \
         return rows.length >= 6 && path.length > 0 ? path.length : null;",
    )
    .await;
    assert!(on_path.as_u64().unwrap() >= 1);
    save(c, "01-checkout-trace.png").await;

    // 18: an order's trace, Linked from its fulfilment.
    c.goto(&format!("http://127.0.0.1:16686/trace/{}", shots.linked))
        .await
        .unwrap();
    wait_js(
        c,
        "the order's Linked from",
        "const l = document.querySelector('#trace-links .link-from'); \
         if (!l || !l.textContent.includes('fulfilment: process orders')) return null; \
         l.closest('.trace-links').style.outline = '3px solid #e8a317'; return true;",
    )
    .await;
    save(c, "18-linked-from.png").await;

    // 05: session.id on order-service's server span.
    span_detail(
        c,
        &shots.checkout,
        &shots.checkout_root,
        "session.id",
        SESSION,
    )
    .await;
    save(c, "05-session-id.png").await;

    // 12: the cold start on fraud-check's span.
    span_detail(c, &shots.cold, &shots.cold_span, "faas.coldstart", "true").await;
    save(c, "12-coldstart.png").await;

    // 06: :8889 as the two greps of step 2 show it.
    c.goto("http://127.0.0.1:8889/metrics").await.unwrap();
    let lines = wait_js(
        c,
        "order-service's series on :8889",
        "const pre = document.querySelector('pre'); if (!pre) return null; \
         const keep = l => (l.startsWith('http_server_request_duration_seconds_count{') && l.includes('job=\"order-service\"')) \
           || (l.startsWith('traces_span_metrics_calls_total{') && l.includes('service_name=\"order-service\"')); \
         const lines = pre.textContent.split('\\n').filter(keep); \
         if (!lines.some(l => l.startsWith('http_')) || !lines.some(l => l.startsWith('traces_'))) return null; \
         document.body.innerHTML = '<p style=\"font:15px sans-serif\">http://127.0.0.1:8889/metrics, the lines of step 2\\'s two greps</p><pre style=\"white-space:pre-wrap;font-size:13px;line-height:1.5\"></pre>'; \
         document.querySelector('pre').textContent = lines.join('\\n'); \
         return lines.length;",
    )
    .await;
    assert!(lines.as_u64().unwrap() >= 2, "{lines}");
    save(c, "06-red-metrics.png").await;

    // 07: the per-customer series on :8889, as step 2's grep shows them.
    c.goto("http://127.0.0.1:8889/metrics").await.unwrap();
    let lines = wait_js(
        c,
        "orders_created_total's per-customer series on :8889",
        "const pre = document.querySelector('pre'); if (!pre) return null; \
         const lines = pre.textContent.split('\\n').filter(l => l.startsWith('orders_created_total{') && l.includes('customer_id=')); \
         if (lines.length < 20) return null; \
         document.body.innerHTML = '<p style=\"font:15px sans-serif\">http://127.0.0.1:8889/metrics, step 2\\'s grep: ' + lines.length + ' series with customer_id</p><pre style=\"white-space:pre-wrap;font-size:12px;line-height:1.4\"></pre>'; \
         document.querySelector('pre').textContent = lines.slice(0, 40).join('\\n'); \
         return lines.length;",
    )
    .await;
    assert!(lines.as_u64().unwrap() >= 20, "{lines}");
    save(c, "07-series.png").await;

    // 03: the business span module 03's change adds, with its attributes.
    span_detail(
        c,
        &shots.validate,
        &shots.validate_span,
        "payment.valid",
        "true",
    )
    .await;
    save(c, "03-business-span.png").await;

    // 11: the agent's exporter counters on :8887 after the oversized span.
    c.goto("http://127.0.0.1:8887/metrics").await.unwrap();
    let lines = wait_js(
        c,
        "the agent's exporter counters on :8887",
        "const pre = document.querySelector('pre'); if (!pre) return null; \
         const lines = pre.textContent.split('\\n').filter(l => /^otelcol_(exporter_sent|exporter_send_failed|receiver_accepted|receiver_refused)_spans_total/.test(l)); \
         if (!lines.some(l => l.startsWith('otelcol_exporter_send_failed'))) return null; \
         document.body.innerHTML = '<p style=\"font:15px sans-serif\">http://127.0.0.1:8887/metrics, the agent collector: its spans in and out</p><pre style=\"white-space:pre-wrap;font-size:13px;line-height:1.5\"></pre>'; \
         document.querySelector('pre').textContent = lines.join('\\n'); \
         return lines.length;",
    )
    .await;
    assert!(lines.as_u64().unwrap() >= 2, "{lines}");
    save(c, "11-agent-metrics.png").await;

    // 04: the broken checkout's waterfall, with no payment-service in it.
    waterfall(c, &shots.broken, "the broken checkout's waterfall").await;
    let services = wait_js(
        c,
        "the services of the broken checkout",
        "return document.body.textContent.includes('payment-service') ? 'payment' : 'ok';",
    )
    .await;
    assert_eq!(
        services, "ok",
        "the broken checkout shows no payment-service"
    );
    save(c, "04-broken-trace.png").await;

    // 08: the noisy checkout, scrolled to inventory-service's repeated spans.
    waterfall(c, &shots.noisy, "the noisy checkout's waterfall").await;
    let repeated = wait_js(
        c,
        "the per-item spans",
        "const rows = [...document.querySelectorAll('.span-row')].filter(r => r.textContent.includes('inventory.price_item')); \
         if (rows.length < 4) return null; rows[0].scrollIntoView({block: 'center'}); return rows.length;",
    )
    .await;
    assert!(repeated.as_u64().unwrap() >= 4, "{repeated}");
    save(c, "08-noisy-spans.png").await;

    // 09: the checkout that queued longest, its wait span opened.
    span_detail(
        c,
        &shots.queued,
        &shots.queued_span,
        "db.system.name",
        "sqlite",
    )
    .await;
    save(c, "09-wait-for-connection.png").await;
}

/// Runs `shoot` in one headless Chromium session, closing the browser even when an assertion
/// fails, so no Chromium outlives the test.
fn in_browser<F, Fut>(shoot: F)
where
    F: FnOnce(fantoccini::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let c = driver.browser(profile.path()).await;
        let result = tokio::spawn(shoot(c.clone())).await;
        let _ = c.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic.into_panic());
        }
    });
}

fn screenshots() {
    let shots = find_shots();
    in_browser(|c| async move { take_screenshots(&c, &shots).await });
}

#[test]
fn each_module_check_fails_on_a_fresh_lab_and_passes_after_its_solution() {
    require_tool("python3", "install Python 3 (apt-get install python3)");
    require_tool("curl", "install curl (apt-get install curl)");
    require_tool("git", "install git (apt-get install git)");
    tool_path("chromium", BROWSER_INSTALL);
    tool_path("chromedriver", BROWSER_INSTALL);
    build_workspace_binaries();

    // Before the lab: both commands say how to start it.
    let out = lab(&["check", "01"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(NOT_RUNNING),
        "{}",
        text(&out)
    );
    let out = lab(&["fault"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(NOT_RUNNING),
        "{}",
        text(&out)
    );

    let mut running = Lab::start();

    // A fresh lab passes no module: doing nothing is never enough.
    for module in [
        "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
        "16", "17", "18",
    ] {
        let out = lab(&["check", module]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(stdout(&out).contains("✗"), "{}", text(&out));
    }
    let list = lab(&["check", "--list"]);
    assert!(list.status.success(), "{}", text(&list));
    assert!(stdout(&list).contains("--answer spans="), "{}", text(&list));

    lab_fault_sets_lists_and_clears_faults();

    // 01: the reference solution reads its answers from the live trace.
    solved("01-tour.sh", "01");
    let wrong = check_answering(
        "01",
        &[
            "spans=9999",
            "slowest=order-service",
            "business-span=order_service.checkout",
        ],
    );
    assert!(
        stdout(&wrong).contains("✓ an order was placed"),
        "{}",
        text(&wrong)
    );
    assert_eq!(
        stdout(&wrong).matches("  ✗ ").count(),
        3,
        "{}",
        text(&wrong)
    );

    // 02: the reference answers pass; one wrong answer fails the module.
    solved("02-resources.sh", "02");
    let wrong = check_answering(
        "02",
        &[
            "node=lab-node-1",
            "instance=i-0lab5e7c1d2f3a9b4",
            "launch-type=ec2",
            "lambda-platform=aws_lambda",
            "status-attribute=http.status_code",
        ],
    );
    assert_eq!(
        stdout(&wrong).matches("  ✗ ").count(),
        2,
        "{}",
        text(&wrong)
    );

    // 05, 06, 12: each reference solution passes against the lab; a wrong answer fails.
    for (solution, module, wrong) in [
        (
            "05-baggage.sh",
            "05",
            vec!["session=never-sent-by-anyone", "added=customer.tier"],
        ),
        (
            "06-red-metrics.sh",
            "06",
            vec!["requests=0", "calls=0", "mean-ms=0", "kind-label=span_kind"],
        ),
        (
            "12-cold-starts.sh",
            "12",
            vec!["trace=0", "coldstarts=0", "idle=30"],
        ),
    ] {
        solved(solution, module);
        let out = check_answering(module, &wrong);
        assert!(stdout(&out).contains("  ✗ "), "{}", text(&out));
    }

    // 04, 07, 08, 09: the planted problems' modules. Each solution switches its problem on,
    // shows it, switches it off and shows the fix; then the same state with wrong answers
    // fails on exactly those answers.
    for (solution, module, wrong) in [
        (
            "04-propagation.sh",
            "04",
            vec![
                "orphan=00000000000000000000000000000001",
                "hop=order-service",
            ],
        ),
        ("07-cardinality.sh", "07", vec!["series=1", "label=job"]),
        (
            "08-too-many-spans.sh",
            "08",
            // Swapped: the N+1's statement is not noise, the span per item is no signal.
            vec!["noise=SELECT products", "signal=inventory.price_item"],
        ),
        ("09-bottleneck.sh", "09", vec!["wait=INSERT orders"]),
        (
            "18-async-hop.sh",
            "18",
            vec![
                "fulfilment=00000000000000000000000000000001",
                "linked_span=process orders",
                "orphan=00000000000000000000000000000002",
            ],
        ),
    ] {
        let out = solved(solution, module);
        if module == "09" {
            assert!(
                stdout(&out).contains("ms before,") && stdout(&out).contains("ms after"),
                "the check reports both p99s: {}",
                text(&out)
            );
        }
        let out = check_answering(module, &wrong);
        assert_eq!(
            stdout(&out).matches("  ✗ ").count(),
            wrong.len(),
            "only the answers are wrong: {}",
            text(&out)
        );
    }

    every_command_on_the_pages_works();

    module_10_checks_the_learners_gateway_config();

    // 03: the patch applies to this tree; a checkout with it applied passes the source
    // criterion; the span the patched service would send is produced here over OTLP (a
    // rebuild is too slow for CI), first without an attribute (still failing), then whole.
    let patch = repo().join("docs/workshop/solutions/03-business-span.patch");
    let applies = Command::new("git")
        .args(["apply", "--check"])
        .arg(&patch)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(applies.status.success(), "{}", text(&applies));
    let patched = tempfile::tempdir().unwrap();
    let routes = patched.path().join("crates/payment-service/src/routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(patched.path().join("crates/collector/configs")).unwrap();
    std::fs::copy(
        repo().join("crates/payment-service/src/routes/payments.rs"),
        routes.join("payments.rs"),
    )
    .unwrap();
    let apply = Command::new("git")
        .arg("apply")
        .arg(&patch)
        .current_dir(patched.path())
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let patched_repo = patched.path().to_str().unwrap();

    let check_03 = || lab(&["check", "03", "--repo", patched_repo]);
    let out = check_03();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("✓ crates/payment-service/src/routes/payments.rs creates a span"),
        "{}",
        text(&out)
    );
    let (trace_id, server) = checkout_with_payment_span();
    send_validate_span(&trace_id, &server, "00000000000000a1", false);
    wait_for("the partial span to reach the explorer", || {
        stdout(&check_03()).contains("lacks payment.valid")
    });
    assert_eq!(check_03().status.code(), Some(1));
    send_validate_span(&trace_id, &server, "00000000000000a2", true);
    wait_for("lab check 03 to pass", || check_03().status.success());
    let out = check_03();
    assert!(stdout(&out).contains("module 03 done"), "{}", text(&out));
    // The unpatched checkout still fails on its source, whatever the explorer holds.
    let out = lab(&["check", "03"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("✗ crates/payment-service/src/routes/payments.rs"),
        "{}",
        text(&out)
    );

    // 11 last: the oversized span costs the agent its whole batch, whatever else was in it.
    solved("11-collector-metrics.sh", "11");
    let wrong = check_answering(
        "11",
        &[
            "metric=otelcol_receiver_refused_spans_total",
            "tier=gateway",
            "limit=20",
        ],
    );
    assert_eq!(
        stdout(&wrong).matches("  ✗ ").count(),
        3,
        "only the answers are wrong: {}",
        text(&wrong)
    );

    // 14: payments failing until Prometheus fires the fast-burn alert.
    solved("14-slo-burn-rate.sh", "14");
    let wrong = check_answering(
        "14",
        &[
            "alert=OrderServiceErrorBudgetSlowBurn",
            "burn-rate=0.01",
            "hours=1",
        ],
    );
    assert_eq!(
        stdout(&wrong).matches("  ✗ ").count(),
        3,
        "only the answers are wrong: {}",
        text(&wrong)
    );

    module_16_wants_a_test_that_fails_on_each_regression();

    module_17_incidents_are_found_from_telemetry_alone();

    // Last, with every module's data in the lab: the pages' screenshots.
    screenshots();

    let status = running.stop();
    assert!(status.success(), "lab up exits 0 on SIGTERM: {status}");

    module_13_and_15_restart_the_lab_with_the_learners_gateway();
}

/// Modules 13 and 15 as their pages say: each solution edits the learner's copy, and the lab
/// restarts with `--workshop --gateway-config` (what `make workshop GATEWAY=...` runs). 13: an
/// order placed with no service changed shows up whole in the second backend's explorer. 15:
/// with tail sampling on the second backend's own pipeline, it keeps every error checkout and
/// a fraction of the others, while the lab's explorer keeps them all.
fn module_13_and_15_restart_the_lab_with_the_learners_gateway() {
    let checkout = scratch_checkout();
    let dir = checkout.path();
    let check = || lab(&["check", "13", "--repo", dir.to_str().unwrap()]);
    let script = repo().join("docs/workshop/solutions/13-backend-swap.sh");
    let out = bash_in(dir, script.to_str().unwrap());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("configuration is valid"),
        "{}",
        text(&out)
    );

    let config = dir.join("workshop/gateway.yaml");
    let mut running =
        Lab::start_with(&["--workshop", "--gateway-config", config.to_str().unwrap()]);
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("✓ a traces pipeline exports to the second backend")
            && stdout(&out)
                .contains("✗ the second backend's explorer (:16687) has a whole checkout"),
        "nothing sent yet: {}",
        text(&out)
    );
    let (status, body) = http("POST", "http://127.0.0.1:8080/orders", ORDER);
    assert_eq!(status, 201, "{body}");
    wait_for("lab check 13 to pass", || check().status.success());
    let out = check();
    assert!(stdout(&out).contains("module 13 done"), "{}", text(&out));
    let vendor_trace = stdout(&out)
        .split("http://127.0.0.1:16687/trace/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the check names the trace in the second backend")
        .to_owned();
    in_browser(move |c| async move {
        waterfall_at(
            &c,
            "http://127.0.0.1:16687",
            &vendor_trace,
            "the checkout in the second backend",
        )
        .await;
        save(&c, "13-second-backend.png").await;
    });

    let check = || lab(&["check", "15", "--repo", dir.to_str().unwrap()]);
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("✗ the second backend gets tail-sampled traces"),
        "module 13's file sends everything: {}",
        text(&out)
    );
    let status = running.stop();
    assert!(status.success(), "lab up exits 0 on SIGTERM: {status}");
    let script = repo().join("docs/workshop/solutions/15-sampling.sh");
    let out = bash_in(dir, script.to_str().unwrap());
    assert!(out.status.success(), "{}", text(&out));
    let mut running =
        Lab::start_with(&["--workshop", "--gateway-config", config.to_str().unwrap()]);
    for load in [
        "traffic --scenario checkout --requests 150 --rate 20",
        "traffic --scenario failures --requests 40 --rate 20",
    ] {
        let out = bash(load);
        assert!(out.status.success(), "{}", text(&out));
    }
    std::thread::sleep(Duration::from_secs(15));
    let mut last = String::new();
    wait_for("lab check 15 to pass (its last report is above)", || {
        let out = check();
        if !out.status.success() {
            last = text(&out);
            eprintln!("{last}");
        }
        out.status.success()
    });
    let out = check();
    assert!(stdout(&out).contains("module 15 done"), "{}", text(&out));
    let status = running.stop();
    assert!(status.success(), "lab up exits 0 on SIGTERM: {status}");
}
