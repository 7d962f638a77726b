//! `lab incident --seed N`: the workshop's last exercise. It switches on, hidden, two or
//! three problems chosen by the seed from [`POOL`] (the planted problems and two operational
//! faults), and the learner finds them from traces and metrics alone and names them
//! (`lab check 17 --answer problems=...`).
//!
//! Hidden means what a real incident is like: each workload acts on its hidden scenarios but
//! does not list them in `GET /admin/faults` (only their count and a salted digest of their
//! names) and does not mark its spans with `fault.injected`. The check compares the digest
//! of the learner's names, split by workload, with each workload's digest, so neither the
//! check nor the lab's pages give the answer away. (With the names of the pool in hand, a
//! digest can be matched by trying every subset; it keeps the answer off the page, it does
//! not stop a determined cheat.) Instructors get the answer sheet with `--reveal`.

use crate::fault::{self, FaultError, FaultUpdate, WORKLOADS, Workload};

/// The problems an incident draws from: every planted problem, and two faults whose cause a
/// trace shows plainly.
pub const POOL: &[&str] = &[
    "db_single_connection",
    "drop_trace_context",
    "customer_id_metric_label",
    "sequential_downstream_calls",
    "n_plus_one_queries",
    "span_per_item",
    "slow_inventory_queries",
    "inventory_lock",
];

/// Pairs that hide each other: with the payment hop's context dropped, payment-service's
/// spans are in another trace, and the order of the downstream calls cannot be read off one
/// waterfall.
const EXCLUSIVE: &[(&str, &str)] = &[("drop_trace_context", "sequential_downstream_calls")];

/// SplitMix64: seed N must name the same incident on every machine and in every release,
/// which `rand`'s `StdRng` does not promise.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The problems of incident `seed`: two or three, never an exclusive pair, in pool order.
pub fn problems(seed: u64) -> Vec<&'static str> {
    let mut rng = SplitMix64(seed);
    let count = 2 + rng.below(2);
    let mut chosen: Vec<&'static str> = Vec::new();
    while chosen.len() < count {
        let candidate = POOL[rng.below(POOL.len())];
        let clashes = chosen.iter().any(|c| {
            EXCLUSIVE
                .iter()
                .any(|&(a, b)| (a, b) == (c, candidate) || (b, a) == (c, candidate))
        });
        if !chosen.contains(&candidate) && !clashes {
            chosen.push(candidate);
        }
    }
    chosen.sort_by_key(|p| POOL.iter().position(|q| q == p));
    chosen
}

/// The workload that acts on `scenario`.
pub fn owner(scenario: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.scenarios.contains(&scenario))
}

/// Starts incident `seed` on the running lab: every workload's faults cleared (so nothing
/// left from a module gives a false lead), then each one's share of the problems, hidden.
/// Returns how many problems are hidden.
pub async fn start(seed: u64) -> Result<usize, FaultError> {
    let chosen = problems(seed);
    let client = fault::client();
    for w in WORKLOADS {
        let hidden: Vec<String> = chosen
            .iter()
            .filter(|p| owner(p).is_some_and(|o| o.name == w.name))
            .map(|p| (*p).to_owned())
            .collect();
        let update = FaultUpdate {
            hidden_scenarios: Some(hidden),
            ..FaultUpdate::clear()
        };
        fault::post(&client, w, &update).await?;
    }
    Ok(chosen.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_the_same_two_or_three_problems_every_time() {
        for seed in 0..200 {
            let chosen = problems(seed);
            assert_eq!(chosen, problems(seed));
            assert!((2..=3).contains(&chosen.len()), "{seed}: {chosen:?}");
            for (a, b) in EXCLUSIVE {
                assert!(!(chosen.contains(a) && chosen.contains(b)), "{seed}");
            }
        }
        // Pinned: an instructor's answer sheet must not change between releases.
        assert_eq!(
            problems(1),
            [
                "sequential_downstream_calls",
                "slow_inventory_queries",
                "inventory_lock"
            ]
        );
        let all: std::collections::BTreeSet<_> = (0..200).flat_map(problems).collect();
        assert_eq!(
            all.len(),
            POOL.len(),
            "every problem comes up in some incident"
        );
    }

    #[test]
    fn every_problem_in_the_pool_has_a_workload() {
        for p in POOL {
            assert!(owner(p).is_some(), "{p} belongs to no workload");
        }
    }
}
