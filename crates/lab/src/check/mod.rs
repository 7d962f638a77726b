//! `lab check MODULE`: the workshop's verifier, Rustlings' patience with Dynatrace's
//! `verify.sh` shape. A module's check is a list of criteria, each judged against the running
//! lab through the interfaces a person would look at (the explorer's Jaeger API, the
//! Prometheus pages, the learner's files), and printed as passed (✓) or not (✗) with a hint
//! that says what is still missing. The command exits 0 only when every criterion passes.
//!
//! Quiz answers whose value is fixed by the lab's code or config are compared as salted
//! SHA-256 digests ([`answer`]), so reading this source does not give them away; answers
//! that depend on the learner's own traces are compared with those traces.

pub mod answer;
pub mod async_hop;
pub mod backend_swap;
pub mod baggage;
pub mod bottleneck;
pub mod business_span;
pub mod cardinality;
pub mod cold_start;
pub mod collector_metrics;
pub mod explorer;
pub mod incident;
pub mod pipelines;
pub mod propagation;
pub mod red_metrics;
pub mod resources;
pub mod sampling;
pub mod slo;
pub mod span_noise;
pub mod tour;
pub mod trace_test;

use std::collections::BTreeMap;
use std::path::PathBuf;

use explorer::{ApiError, LabApi};

/// One question a module asks, answered with `--answer KEY=VALUE`.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub key: &'static str,
    pub text: &'static str,
}

/// A workshop module that `lab check` knows.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// What the learner types: `lab check 01`.
    pub id: &'static str,
    pub title: &'static str,
    /// Its page, relative to the checkout.
    pub page: &'static str,
    pub questions: &'static [Question],
}

/// Every module with a check, in workshop order.
pub const MODULES: &[Module] = &[
    tour::MODULE,
    resources::MODULE,
    business_span::MODULE,
    propagation::MODULE,
    baggage::MODULE,
    red_metrics::MODULE,
    cardinality::MODULE,
    span_noise::MODULE,
    bottleneck::MODULE,
    pipelines::MODULE,
    collector_metrics::MODULE,
    cold_start::MODULE,
    backend_swap::MODULE,
    slo::MODULE,
    sampling::MODULE,
    trace_test::MODULE,
    incident::MODULE,
    async_hop::MODULE,
];

/// The verdict on one criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// What is checked, as a statement that is true once it passes.
    pub what: String,
    /// `Ok(detail)` when it passes (the detail may be empty); `Err(hint)` otherwise.
    pub outcome: Result<String, String>,
}

impl Criterion {
    pub fn pass(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            outcome: Ok(detail.into()),
        }
    }

    pub fn fail(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            outcome: Err(hint.into()),
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// What a module's criteria read: the lab's APIs, the checkout and the learner's answers.
pub struct Context {
    pub api: LabApi,
    pub repo: PathBuf,
    pub answers: Answers,
}

/// The `--answer` values, by question key.
#[derive(Debug, Clone, Default)]
pub struct Answers(BTreeMap<String, String>);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckError {
    #[error("unknown module {0:?}; modules with a check: {list}", list = module_ids())]
    UnknownModule(String),
    #[error("module {module} asks no question; drop --answer")]
    NoQuestions { module: &'static str },
    #[error(
        "--answer {given:?}: module {module} asks {keys}; answer as --answer KEY=VALUE (see `lab check {module}`)"
    )]
    UnknownQuestion {
        module: &'static str,
        given: String,
        keys: String,
    },
}

fn module_ids() -> String {
    MODULES.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}

/// The module `id` names: `01`, `1` and `01-tour` all name module 01.
pub fn module(id: &str) -> Result<&'static Module, CheckError> {
    let number = id.split('-').next().unwrap_or(id);
    MODULES
        .iter()
        .find(|m| m.id == id || (number.parse::<u32>().ok() == m.id.parse::<u32>().ok()))
        .filter(|_| !id.is_empty())
        .ok_or_else(|| CheckError::UnknownModule(id.to_owned()))
}

impl Answers {
    /// Pairs each `--answer` with its question: `KEY=VALUE`, or a bare value when the module
    /// asks one question only.
    pub fn parse(module: &'static Module, given: &[String]) -> Result<Self, CheckError> {
        let mut answers = BTreeMap::new();
        for raw in given {
            if module.questions.is_empty() {
                return Err(CheckError::NoQuestions { module: module.id });
            }
            let (key, value) = match raw.split_once('=') {
                Some((key, value)) if module.questions.iter().any(|q| q.key == key.trim()) => {
                    (key.trim().to_owned(), value.to_owned())
                }
                _ if module.questions.len() == 1 => {
                    (module.questions[0].key.to_owned(), raw.clone())
                }
                _ => {
                    return Err(CheckError::UnknownQuestion {
                        module: module.id,
                        given: raw.clone(),
                        keys: module
                            .questions
                            .iter()
                            .map(|q| q.key)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            };
            answers.insert(key, value);
        }
        Ok(Self(answers))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl Context {
    /// The criterion "`scenario` is switched off on `workload`", as its `/admin/faults` says
    /// now: the fix of a planted problem.
    pub async fn switched_off(&self, workload: &str, scenario: &str) -> Criterion {
        let what = format!("{scenario} is switched off on {workload}");
        let settings = match crate::fault::workload(workload) {
            Ok(w) => crate::fault::get(&crate::fault::client(), w)
                .await
                .map_err(|e| format!("could not read {workload}'s faults: {e}")),
            Err(e) => Err(e.to_string()),
        };
        match settings {
            Ok(s) if !s.scenarios.contains(scenario) => Criterion::pass(what, ""),
            Ok(_) => Criterion::fail(
                what,
                format!("it is still on: lab fault {workload} --off {scenario}"),
            ),
            Err(e) => Criterion::fail(what, e),
        }
    }

    /// The criterion for question `key` of `module`: passes when the answer given is one of
    /// `accept` (after normalising), with a hint naming the question otherwise.
    pub fn judge(
        &self,
        module: &Module,
        key: &str,
        accept: impl Fn(&str) -> bool,
        hint: &str,
    ) -> Criterion {
        let question = module
            .questions
            .iter()
            .find(|q| q.key == key)
            // The modules name only their own questions; a typo here is a bug in lab itself.
            .unwrap_or_else(|| panic!("module {} has no question {key}", module.id));
        let what = format!("question {key}: {}", question.text);
        match self.answers.get(key) {
            None => Criterion::fail(
                what,
                format!(
                    "not answered yet: lab check {} --answer {key}=...",
                    module.id
                ),
            ),
            Some(given) if accept(given) => Criterion::pass(what, format!("{given:?} is right")),
            Some(given) => Criterion::fail(what, format!("{given:?} is not it. {hint}")),
        }
    }
}

/// Runs `module`'s criteria against the lab. `Err` only when the lab cannot be asked at all.
pub async fn evaluate(module: &Module, ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    // One cheap call first, so "the lab is not running" is one clear line, not a ✗ per
    // criterion.
    ctx.api.services().await?;
    match module.id {
        "01" => tour::criteria(ctx).await,
        "02" => resources::criteria(ctx).await,
        "03" => business_span::criteria(ctx).await,
        "04" => propagation::criteria(ctx).await,
        "05" => baggage::criteria(ctx).await,
        "06" => red_metrics::criteria(ctx).await,
        "07" => cardinality::criteria(ctx).await,
        "08" => span_noise::criteria(ctx).await,
        "09" => bottleneck::criteria(ctx).await,
        "10" => pipelines::criteria(ctx).await,
        "11" => collector_metrics::criteria(ctx).await,
        "12" => cold_start::criteria(ctx).await,
        "13" => backend_swap::criteria(ctx).await,
        "14" => slo::criteria(ctx).await,
        "15" => sampling::criteria(ctx).await,
        "16" => trace_test::criteria(ctx).await,
        "17" => incident::criteria(ctx).await,
        "18" => async_hop::criteria(ctx).await,
        // MODULES and this match are kept together; the unit tests call every module.
        other => unreachable!("module {other} is in MODULES but has no criteria"),
    }
}

/// The report `lab check` prints: one line per criterion, its hint indented below.
pub fn render(module: &Module, criteria: &[Criterion]) -> String {
    let mut out = format!(
        "lab check {} — {} ({})\n",
        module.id, module.title, module.page
    );
    for c in criteria {
        match &c.outcome {
            Ok(detail) if detail.is_empty() => out.push_str(&format!("  ✓ {}\n", c.what)),
            Ok(detail) => out.push_str(&format!("  ✓ {} — {detail}\n", c.what)),
            Err(hint) => {
                out.push_str(&format!("  ✗ {}\n", c.what));
                for line in hint.lines() {
                    out.push_str(&format!("      hint: {line}\n"));
                }
            }
        }
    }
    let passed = criteria.iter().filter(|c| c.passed()).count();
    if passed == criteria.len() {
        out.push_str(&format!(
            "module {} done: {passed}/{} criteria pass.\n",
            module.id,
            criteria.len()
        ));
    } else {
        out.push_str(&format!(
            "{passed}/{} criteria pass; fix the ✗ lines and run `lab check {}` again.\n",
            criteria.len(),
            module.id
        ));
    }
    out
}

/// `lab check --list`.
pub fn list() -> String {
    let mut out = String::from("Workshop modules with a check (docs/workshop/README.md):\n");
    for m in MODULES {
        out.push_str(&format!("  {}  {:<42} {}\n", m.id, m.title, m.page));
        for q in m.questions {
            out.push_str(&format!("        --answer {}=...  {}\n", q.key, q.text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_named_by_number_or_page_name() {
        assert_eq!(module("01").unwrap().id, "01");
        assert_eq!(module("1").unwrap().id, "01");
        assert_eq!(module("03-business-span").unwrap().id, "03");
        let err = module("99").unwrap_err().to_string();
        assert!(
            err.contains("01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12, 13, 14, 15, 16, 17"),
            "{err}"
        );
        assert!(module("").is_err());
    }

    #[test]
    fn every_module_page_exists_and_names_its_check() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for m in MODULES {
            let page = std::fs::read_to_string(repo.join(m.page))
                .unwrap_or_else(|e| panic!("{}: {e}", m.page));
            assert!(
                page.contains(&format!("lab check {}", m.id)),
                "{} does not tell the learner to run lab check {}",
                m.page,
                m.id
            );
            for q in m.questions {
                assert!(
                    page.contains(&format!("{}=", q.key)),
                    "{} does not ask question {}",
                    m.page,
                    q.key
                );
            }
        }
    }

    #[test]
    fn answers_pair_with_questions_by_key() {
        let m = module("02").unwrap();
        let answers = Answers::parse(m, &["node=lab-node-1".into()]).unwrap();
        assert_eq!(answers.get("node"), Some("lab-node-1"));
        let err = Answers::parse(m, &["lab-node-1".into()]).unwrap_err();
        assert!(err.to_string().contains("node"), "{err}");
    }

    #[test]
    fn render_marks_each_criterion_and_counts() {
        let m = module("01").unwrap();
        let out = render(
            m,
            &[
                Criterion::pass("a trace", "abc"),
                Criterion::fail("an answer", "send one"),
            ],
        );
        assert!(out.contains("  ✓ a trace — abc\n"), "{out}");
        assert!(
            out.contains("  ✗ an answer\n      hint: send one\n"),
            "{out}"
        );
        assert!(out.contains("1/2 criteria pass"), "{out}");
    }
}
