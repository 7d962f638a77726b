//! The YAML document as a tree whose every key and value knows its file, line and column,
//! so that any later error (an unknown component, a wrong type, a bad duration) can point
//! at the place the user has to fix.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;
use std::sync::Arc;

/// A position in a config file (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub loc: Loc,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

impl Node {
    pub fn null(loc: Loc) -> Node {
        Node {
            loc,
            value: Value::Null,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A short description of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as text (strings, numbers and booleans), as a user would read it.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Deep-merges `over` onto `self`: maps merge key by key, anything else (lists included)
    /// is replaced, as the Go collector does with several `--config` files.
    pub fn merge(&mut self, over: Node) {
        match (&mut self.value, over.value) {
            (Value::Map(base), Value::Map(over_entries)) => {
                for (k, v) in over_entries {
                    match base.iter_mut().find(|(bk, _)| bk.name == k.name) {
                        Some((_, bv)) => bv.merge(v),
                        None => base.push((k, v)),
                    }
                }
            }
            (_, value) => {
                self.value = value;
                self.loc = over.loc;
            }
        }
    }

    /// Parses one YAML document; an empty document is an empty mapping.
    pub fn parse(file: &str, text: &str) -> Result<Node, (Option<Loc>, String)> {
        let file: Arc<str> = Arc::from(file);
        if text.trim().is_empty() {
            return Ok(Node {
                loc: Loc {
                    file,
                    line: 1,
                    column: 1,
                },
                value: Value::Map(Vec::new()),
            });
        }
        match serde_saphyr::from_str::<Spanned<Raw>>(text) {
            Ok(root) => Ok(convert(root, &file)),
            Err(e) => {
                let loc = e.location().map(|l| Loc {
                    file: file.clone(),
                    line: l.line() as u32,
                    column: l.column() as u32,
                });
                Err((loc, first_line(&e.to_string())))
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// The tree as serde-saphyr hands it to us, before locations get their file name.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<RawKey>, Spanned<Raw>)>),
}

struct RawKey(String);

fn convert(s: Spanned<Raw>, file: &Arc<str>) -> Node {
    let loc = loc_of(&s.referenced, file);
    let value = match s.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(|i| convert(i, file)).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    (
                        Key {
                            loc: loc_of(&k.referenced, file),
                            name: k.value.0,
                        },
                        convert(v, file),
                    )
                })
                .collect(),
        ),
    };
    Node { loc, value }
}

fn loc_of(l: &serde_saphyr::Location, file: &Arc<str>) -> Loc {
    Loc {
        file: file.clone(),
        line: l.line() as u32,
        column: l.column() as u32,
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        i64::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<RawKey>>()? {
            let v = map.next_value::<Spanned<Raw>>()?;
            entries.push((k, v));
        }
        Ok(Raw::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawKey, E> {
                Ok(RawKey(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<RawKey, E> {
                Ok(RawKey("null".into()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_value_knows_its_line_and_column() {
        let n = Node::parse("c.yaml", "a:\n  b: 5\n  c: [x, y]\n").unwrap();
        let a = n.get("a").unwrap();
        let (k, b) = &a.entries()[0];
        assert_eq!((k.loc.line, k.loc.column), (2, 3));
        assert_eq!((b.loc.line, b.loc.column), (2, 6));
        assert_eq!(b.value, Value::Int(5));
    }

    #[test]
    fn later_files_merge_maps_and_replace_lists() {
        let mut base = Node::parse("a", "x: {p: 1, q: [1, 2]}\n").unwrap();
        let over = Node::parse("b", "x: {q: [3], r: 2}\n").unwrap();
        base.merge(over);
        let x = base.get("x").unwrap();
        assert_eq!(x.get("p").unwrap().value, Value::Int(1));
        assert_eq!(x.get("r").unwrap().value, Value::Int(2));
        match &x.get("q").unwrap().value {
            Value::Seq(v) => assert_eq!(v.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
