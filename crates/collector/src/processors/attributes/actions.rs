//! The attribute actions the Go collector's `attraction` package implements, shared by the
//! `attributes` processor (span, log and data-point attributes) and the `resource`
//! processor (resource attributes).

use crate::pdata::attributes::{self, ConfigValue};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One entry of `actions:` (attributes processor) or `attributes:` (resource processor).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionConfig {
    /// The attribute the action works on. Required, except for `delete` and `hash` given a
    /// `pattern`. No default.
    pub key: String,
    /// The value to set (`insert`, `update`, `upsert`); a YAML string, integer, float or
    /// boolean becomes an attribute of that type. Exactly one of `value` and
    /// `from_attribute` is needed for those actions. No default.
    pub value: Option<ConfigValue>,
    /// Copy the value of this other attribute instead of a literal `value`; nothing happens
    /// when that attribute is absent. No default.
    pub from_attribute: Option<String>,
    /// A regular expression: for `delete` and `hash` it selects every attribute whose key
    /// matches (besides `key`); for `extract` it is applied to the value of `key` and each
    /// named group `(?P<name>...)` becomes an attribute. No default.
    pub pattern: Option<String>,
    /// For `convert`: `int`, `double` or `string`. Values that do not convert stay as they
    /// are. No default.
    pub converted_type: Option<String>,
    /// insert (only when absent) | update (only when present) | upsert (either) | delete |
    /// hash (replace by the hex SHA-256 of the value) | extract | convert. Required.
    pub action: Option<ActionKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Insert,
    Update,
    Upsert,
    Delete,
    Hash,
    Extract,
    Convert,
}

#[derive(Clone, Debug)]
enum Source {
    Value(AnyValue),
    FromAttribute(String),
}

#[derive(Clone, Copy, Debug)]
enum TargetType {
    Int,
    Double,
    String,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Source),
    Update(Source),
    Upsert(Source),
    Delete(Option<Regex>),
    Hash(Option<Regex>),
    Extract(Regex),
    Convert(TargetType),
}

#[derive(Clone, Debug)]
struct Action {
    key: String,
    op: Op,
}

/// A validated, compiled list of actions, applied in order.
#[derive(Clone, Debug, Default)]
pub struct Actions(Vec<Action>);

/// Checks every action, returning one message per problem (`"action 2 (key \"x\"): ..."`).
pub fn compile(cfgs: &[ActionConfig]) -> Result<Actions, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, c) in cfgs.iter().enumerate() {
        match compile_one(c) {
            Ok(a) => out.push(a),
            Err(msg) => problems.push(format!("action {i} (key \"{}\"): {msg}", c.key)),
        }
    }
    if problems.is_empty() {
        Ok(Actions(out))
    } else {
        Err(problems)
    }
}

fn compile_one(c: &ActionConfig) -> Result<Action, String> {
    let kind = c.action.ok_or(
        "missing \"action\"; one of insert, update, upsert, delete, hash, extract, convert",
    )?;
    let pattern = match &c.pattern {
        Some(p) => Some(Regex::new(p).map_err(|e| format!("invalid pattern: {e}"))?),
        None => None,
    };
    let needs_key = !matches!(kind, ActionKind::Delete | ActionKind::Hash) || pattern.is_none();
    if needs_key && c.key.is_empty() {
        return Err("missing \"key\"".into());
    }
    let source = || -> Result<Source, String> {
        match (&c.value, &c.from_attribute) {
            (Some(v), None) => Ok(Source::Value(v.0.clone())),
            (None, Some(f)) if !f.is_empty() => Ok(Source::FromAttribute(f.clone())),
            (Some(_), Some(_)) => {
                Err("set either \"value\" or \"from_attribute\", not both".into())
            }
            _ => Err("needs \"value\" or \"from_attribute\"".into()),
        }
    };
    let only_kind = |what: &str| -> Result<(), String> {
        if c.value.is_some() || c.from_attribute.is_some() {
            return Err(format!("{what} takes no \"value\" or \"from_attribute\""));
        }
        Ok(())
    };
    let op = match kind {
        ActionKind::Insert => Op::Insert(source()?),
        ActionKind::Update => Op::Update(source()?),
        ActionKind::Upsert => Op::Upsert(source()?),
        ActionKind::Delete => {
            only_kind("delete")?;
            Op::Delete(pattern)
        }
        ActionKind::Hash => {
            only_kind("hash")?;
            Op::Hash(pattern)
        }
        ActionKind::Extract => {
            only_kind("extract")?;
            let re = pattern.ok_or("extract needs a \"pattern\" with named groups")?;
            if re.capture_names().flatten().next().is_none() {
                return Err("the extract pattern has no named group (?P<name>...)".into());
            }
            Op::Extract(re)
        }
        ActionKind::Convert => {
            only_kind("convert")?;
            Op::Convert(match c.converted_type.as_deref() {
                Some("int") => TargetType::Int,
                Some("double") => TargetType::Double,
                Some("string") => TargetType::String,
                other => {
                    return Err(format!(
                        "convert needs \"converted_type\" int, double or string, found {other:?}"
                    ));
                }
            })
        }
    };
    if c.converted_type.is_some() && kind != ActionKind::Convert {
        return Err("\"converted_type\" only applies to the convert action".into());
    }
    Ok(Action {
        key: c.key.clone(),
        op,
    })
}

impl Actions {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn apply(&self, attrs: &mut Vec<KeyValue>) {
        for a in &self.0 {
            a.apply(attrs);
        }
    }
}

impl Action {
    fn apply(&self, attrs: &mut Vec<KeyValue>) {
        let pos = attrs.iter().position(|kv| kv.key == self.key);
        match &self.op {
            Op::Insert(src) => {
                if pos.is_none()
                    && let Some(v) = resolve(src, attrs)
                {
                    attributes::upsert(attrs, &self.key, v);
                }
            }
            Op::Update(src) => {
                if let Some(p) = pos
                    && let Some(v) = resolve(src, attrs)
                {
                    attrs[p].value = Some(v);
                }
            }
            Op::Upsert(src) => {
                if let Some(v) = resolve(src, attrs) {
                    attributes::upsert(attrs, &self.key, v);
                }
            }
            Op::Delete(pattern) => attrs.retain(|kv| !self.selects(pattern, &kv.key)),
            Op::Hash(pattern) => {
                for kv in attrs.iter_mut() {
                    if self.selects(pattern, &kv.key)
                        && let Some(v) = kv.value.as_mut()
                    {
                        *v = attributes::string(sha256_hex(v));
                    }
                }
            }
            Op::Extract(re) => {
                let Some(text) =
                    pos.and_then(|p| match attrs[p].value.as_ref()?.value.as_ref()? {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                else {
                    return;
                };
                let Some(caps) = re.captures(&text) else {
                    return;
                };
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        attributes::upsert(attrs, name, attributes::string(m.as_str()));
                    }
                }
            }
            Op::Convert(to) => {
                if let Some(p) = pos
                    && let Some(v) = attrs[p].value.as_mut()
                    && let Some(new) = convert(v, *to)
                {
                    *v = new;
                }
            }
        }
    }

    fn selects(&self, pattern: &Option<Regex>, key: &str) -> bool {
        (!self.key.is_empty() && key == self.key)
            || pattern.as_ref().is_some_and(|re| re.is_match(key))
    }
}

fn resolve(src: &Source, attrs: &[KeyValue]) -> Option<AnyValue> {
    match src {
        Source::Value(v) => Some(v.clone()),
        Source::FromAttribute(k) => attributes::get(attrs, k).cloned(),
    }
}

/// The Go collector's `sha2Hasher`: strings hash their UTF-8 bytes, booleans one byte
/// (0 or 1), ints and doubles their 8 little-endian bytes; other types become "".
fn sha256_hex(v: &AnyValue) -> String {
    let bytes: Vec<u8> = match &v.value {
        Some(Value::StringValue(s)) => s.as_bytes().to_vec(),
        Some(Value::BoolValue(b)) => vec![u8::from(*b)],
        Some(Value::IntValue(i)) => i.to_le_bytes().to_vec(),
        Some(Value::DoubleValue(f)) => f.to_bits().to_le_bytes().to_vec(),
        _ => return String::new(),
    };
    hex::encode(Sha256::digest(&bytes))
}

fn convert(v: &AnyValue, to: TargetType) -> Option<AnyValue> {
    let new = match (to, v.value.as_ref()?) {
        (TargetType::String, _) => Value::StringValue(attributes::as_text(v)),
        (TargetType::Int, Value::IntValue(i)) => Value::IntValue(*i),
        (TargetType::Int, Value::DoubleValue(f)) => Value::IntValue(*f as i64),
        (TargetType::Int, Value::BoolValue(b)) => Value::IntValue(i64::from(*b)),
        (TargetType::Int, Value::StringValue(s)) => Value::IntValue(s.trim().parse().ok()?),
        (TargetType::Double, Value::DoubleValue(f)) => Value::DoubleValue(*f),
        (TargetType::Double, Value::IntValue(i)) => Value::DoubleValue(*i as f64),
        (TargetType::Double, Value::BoolValue(b)) => Value::DoubleValue(f64::from(u8::from(*b))),
        (TargetType::Double, Value::StringValue(s)) => Value::DoubleValue(s.trim().parse().ok()?),
        _ => return None,
    };
    Some(AnyValue { value: Some(new) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> AnyValue {
        AnyValue {
            value: Some(Value::IntValue(i)),
        }
    }

    fn action(key: &str, kind: ActionKind) -> ActionConfig {
        ActionConfig {
            key: key.into(),
            action: Some(kind),
            ..Default::default()
        }
    }

    #[test]
    fn insert_update_upsert_respect_presence() {
        let mut insert = action("a", ActionKind::Insert);
        insert.value = Some(ConfigValue(attributes::string("new")));
        let mut update = action("missing", ActionKind::Update);
        update.value = Some(ConfigValue(int(1)));
        let mut upsert = action("b", ActionKind::Upsert);
        upsert.from_attribute = Some("a".into());
        let actions = compile(&[insert, update, upsert]).unwrap();
        let mut attrs = vec![attributes::string_kv("a", "old")];
        actions.apply(&mut attrs);
        assert_eq!(attributes::get_text(&attrs, "a").as_deref(), Some("old"));
        assert_eq!(attributes::get_text(&attrs, "b").as_deref(), Some("old"));
        assert!(attributes::get(&attrs, "missing").is_none());
    }

    #[test]
    fn hash_matches_go_sha256_of_value_bytes() {
        let actions = compile(&[
            action("user", ActionKind::Hash),
            action("n", ActionKind::Hash),
        ])
        .unwrap();
        let mut attrs = vec![
            attributes::string_kv("user", "abc"),
            KeyValue {
                key: "n".into(),
                value: Some(int(1)),
                ..Default::default()
            },
        ];
        actions.apply(&mut attrs);
        // sha256("abc"), a published test vector.
        assert_eq!(
            attributes::get_text(&attrs, "user").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // sha256 of 01 00 00 00 00 00 00 00 (int 1, little endian).
        assert_eq!(
            attributes::get_text(&attrs, "n").unwrap(),
            hex::encode(Sha256::digest([1u8, 0, 0, 0, 0, 0, 0, 0]))
        );
    }

    #[test]
    fn delete_by_key_and_pattern() {
        let mut del = action("", ActionKind::Delete);
        del.pattern = Some("^secret\\.".into());
        let actions = compile(&[action("x", ActionKind::Delete), del]).unwrap();
        let mut attrs = vec![
            attributes::string_kv("x", "1"),
            attributes::string_kv("secret.token", "2"),
            attributes::string_kv("keep", "3"),
        ];
        actions.apply(&mut attrs);
        let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["keep"]);
    }

    #[test]
    fn extract_and_convert() {
        let mut ex = action("http.url", ActionKind::Extract);
        ex.pattern = Some("^/users/(?P<user_id>\\d+)$".into());
        let mut conv = action("user_id", ActionKind::Convert);
        conv.converted_type = Some("int".into());
        let actions = compile(&[ex, conv]).unwrap();
        let mut attrs = vec![attributes::string_kv("http.url", "/users/42")];
        actions.apply(&mut attrs);
        assert_eq!(attributes::get(&attrs, "user_id"), Some(&int(42)));
    }

    #[test]
    fn reports_every_bad_action() {
        let mut both = action("a", ActionKind::Insert);
        both.value = Some(ConfigValue(int(1)));
        both.from_attribute = Some("b".into());
        let errs = compile(&[
            action("a", ActionKind::Insert),
            both,
            ActionConfig::default(),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("needs \"value\" or \"from_attribute\""));
        assert!(errs[2].contains("missing \"action\""));
    }
}
