//! Answers that must not be given away: `lab check` keeps only a salted SHA-256 of each
//! expected answer and compares the learner's normalised answer with it, as the open-ecosystem
//! challenges' `verify.sh` does. The salt (module, question) keeps equal answers to different
//! questions from having equal digests.

use sha2::{Digest, Sha256};

/// Lower case, surrounding quotes and backticks dropped, inner whitespace collapsed: "
/// `Lab-Node-1` " and "lab-node-1" are the same answer.
pub fn normalise(answer: &str) -> String {
    answer
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '`'))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The digest stored for an answer: hex SHA-256 of `otel-lab/MODULE/QUESTION:` and the
/// normalised answer.
pub fn digest(module: &str, question: &str, answer: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("otel-lab/{module}/{question}:").as_bytes());
    hasher.update(normalise(answer).as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `answer` is the one whose digest is `expected`.
pub fn matches(module: &str, question: &str, answer: &str, expected: &str) -> bool {
    digest(module, question, answer) == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_ignores_case_quotes_and_spacing() {
        assert_eq!(normalise("  `Lab-Node-1` "), "lab-node-1");
        assert_eq!(normalise("\"HTTP  response\""), "http response");
    }

    #[test]
    fn the_salt_separates_questions() {
        assert_ne!(digest("02", "a", "x"), digest("02", "b", "x"));
        assert_ne!(digest("01", "a", "x"), digest("02", "a", "x"));
        assert!(matches("02", "a", " X ", &digest("02", "a", "x")));
        assert_eq!(digest("02", "a", "x").len(), 64);
    }
}
