//! Module 17, the incident: `lab incident --seed N` hides two or three problems in the lab
//! (see [`crate::incident`]); the learner finds them from traces and metrics and names them.
//! The names are checked against the digests the workloads publish, workload by workload, so
//! the check can say where the answer is right without saying what it is.

use std::collections::BTreeMap;

use super::explorer::ApiError;
use super::{Context, Criterion, Module, Question};
use crate::fault::{self, Hidden, WORKLOADS, hidden_digest};
use crate::incident::{POOL, owner};

pub const MODULE: Module = Module {
    id: "17",
    title: "The incident: find and name the hidden problems",
    page: "docs/workshop/17-incident.md",
    questions: &[Question {
        key: "problems",
        text: "which problems are hidden in the lab? (their scenario names, comma-separated)",
    }],
};

/// The answer's names: split on commas and spaces, normalised, deduplicated.
fn names(answer: &str) -> Vec<String> {
    let mut names: Vec<String> = answer
        .split([',', ' '])
        .map(super::answer::normalise)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let client = fault::client();
    let mut hidden: BTreeMap<&'static str, Hidden> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for w in WORKLOADS {
        match fault::get(&client, w).await {
            Ok(settings) => {
                if let Some(h) = settings.hidden.filter(|h| h.count > 0) {
                    hidden.insert(w.name, h);
                }
            }
            Err(e) => unreadable.push(e.to_string()),
        }
    }
    let total: usize = hidden.values().map(|h| h.count).sum();

    let what = "an incident is running";
    out.push(if !unreadable.is_empty() {
        Criterion::fail(what, unreadable.join("\n"))
    } else if total == 0 {
        Criterion::fail(
            what,
            "no workload has hidden problems: start the incident with the seed your instructor \
             gives you, lab incident --seed N",
        )
    } else {
        Criterion::pass(what, format!("{total} problems are hidden in the lab"))
    });

    let what = format!("question problems: {}", MODULE.questions[0].text);
    let Some(given) = ctx.answers.get("problems") else {
        out.push(Criterion::fail(
            what,
            "not answered yet: lab check 17 --answer problems=NAME,NAME",
        ));
        return Ok(out);
    };
    let given = names(given);
    if let Some(unknown) = given.iter().find(|n| !POOL.contains(&n.as_str())) {
        out.push(Criterion::fail(
            what,
            format!(
                "{unknown:?} is not a problem an incident hides; they are: {}",
                POOL.join(", ")
            ),
        ));
        return Ok(out);
    }
    if total == 0 {
        out.push(Criterion::fail(
            what,
            "start the incident first (see above)",
        ));
        return Ok(out);
    }
    if given.len() != total {
        out.push(Criterion::fail(
            what,
            format!(
                "you named {}, the incident hides {total}: keep looking (or drop a guess)",
                given.len()
            ),
        ));
        return Ok(out);
    }
    // Each workload's share of the answer against that workload's digest.
    let mut wrong = Vec::new();
    for w in WORKLOADS {
        let mine: Vec<&str> = given
            .iter()
            .map(String::as_str)
            .filter(|n| owner(n).is_some_and(|o| o.name == w.name))
            .collect();
        let right = match hidden.get(w.name) {
            Some(h) => mine.len() == h.count && hidden_digest(&h.salt, &mine) == h.digest,
            None => mine.is_empty(),
        };
        if !right {
            wrong.push(w.name);
        }
    }
    out.push(if wrong.is_empty() {
        Criterion::pass(what, format!("all {total} named"))
    } else {
        Criterion::fail(
            what,
            format!(
                "not yet right for {}: look again at what those workloads' spans and metrics \
                 show (the other workloads' part of your answer is right)",
                wrong.join(", ")
            ),
        )
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_on_commas_and_spaces() {
        assert_eq!(
            names(" Span_Per_Item, db_single_connection  span_per_item"),
            ["db_single_connection", "span_per_item"]
        );
    }
}
