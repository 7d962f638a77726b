//! `${env:VAR}`, `${env:VAR:-default}`, `${VAR}` and `$$` in scalar values, as the Go
//! collector expands them. Keys are never expanded.

use super::node::{Node, Value};
use super::{ConfigError, Errors};

/// Expands every string scalar below `node`. Unset variables without a default expand to
/// the empty string, as in the Go collector, with a warning naming the place.
pub fn expand(node: &mut Node, lookup: &dyn Fn(&str) -> Option<String>, errors: &mut Errors) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok((out, missing)) => {
                for var in missing {
                    errors.warn(
                        Some(node.loc.clone()),
                        "",
                        format!("environment variable {var} is not set; using an empty value"),
                    );
                }
                *s = out;
            }
            Err(msg) => errors.push(ConfigError {
                loc: Some(node.loc.clone()),
                path: String::new(),
                message: msg,
            }),
        },
        Value::Seq(items) => items.iter_mut().for_each(|n| expand(n, lookup, errors)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, n)| expand(n, lookup, errors)),
        _ => {}
    }
}

/// Returns the expanded text and the names of unset variables that had no default.
pub fn expand_str(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unterminated \"${{\" in \"{s}\""))?;
            let inner = &r[..end];
            let (scheme_var, default) = match inner.find(":-") {
                Some(j) => (&inner[..j], Some(&inner[j + 2..])),
                None => (inner, None),
            };
            let var = match scheme_var.split_once(':') {
                Some(("env", v)) => v,
                Some((scheme, _)) => {
                    return Err(format!(
                        "unsupported config source \"{scheme}\" in \"${{{inner}}}\"; only env is supported"
                    ));
                }
                None => scheme_var,
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid environment variable name \"{var}\" in \"{s}\""
                ));
            }
            match (lookup(var), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(var.to_string()),
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok((out, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("gateway".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_every_form_the_go_collector_accepts() {
        let cases = [
            ("${env:HOST}:4317", "gateway:4317"),
            ("${HOST}", "gateway"),
            ("${env:NOPE:-127.0.0.1}:1", "127.0.0.1:1"),
            ("${env:HOST:-x}", "gateway"),
            ("price $$5", "price $5"),
            ("plain $HOST", "plain $HOST"),
            ("${env:EMPTY:-d}", ""),
        ];
        for (input, want) in cases {
            assert_eq!(expand_str(input, &env).unwrap().0, want, "{input}");
        }
    }

    #[test]
    fn unset_without_default_is_empty_and_reported() {
        let (out, missing) = expand_str("a${env:NOPE}b", &env).unwrap();
        assert_eq!(out, "ab");
        assert_eq!(missing, vec!["NOPE"]);
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(expand_str("${env:HOST", &env).is_err());
        assert!(expand_str("${file:/x}", &env).is_err());
        assert!(expand_str("${env:A-B}", &env).is_err());
    }
}
