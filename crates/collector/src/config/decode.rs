//! A serde `Deserializer` over [`Node`] that turns component config structs into values
//! while collecting errors with their key path and position. Unknown keys are all reported
//! (not just the first), and scalars are read leniently the way the Go collector reads them
//! after `${env:...}` substitution: `"4317"` is a fine port number.

use super::node::{Node, Value};
use super::{ConfigError, Errors};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use std::cell::RefCell;
use std::fmt;

/// Decodes `node` (or defaults, when it is absent or null) into `T`, adding every problem
/// found to `errors`. `path` is the key path of `node`, e.g. `receivers::otlp`. Unknown keys
/// are reported but do not stop decoding, so later checks can still report their findings;
/// callers decide validity by whether `errors` grew.
pub fn decode<T: DeserializeOwned>(node: &Node, path: &str, errors: &mut Errors) -> Option<T> {
    let sink = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe {
        node,
        path: path.to_string(),
        sink: &sink,
    });
    errors.extend(sink.into_inner());
    result.ok()
}

#[derive(Debug)]
pub struct DeError {
    msg: String,
    /// Already recorded in the sink with a position.
    recorded: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}
impl std::error::Error for DeError {}
impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            msg: msg.to_string(),
            recorded: false,
        }
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    sink: &'a RefCell<Vec<ConfigError>>,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, key: &str) -> NodeDe<'a> {
        NodeDe {
            node,
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}::{key}", self.path)
            },
            sink: self.sink,
        }
    }

    /// Gives an error from below its place in the file, once.
    fn locate(&self, e: DeError) -> DeError {
        if e.recorded {
            return e;
        }
        self.sink.borrow_mut().push(ConfigError {
            loc: Some(self.node.loc.clone()),
            path: self.path.clone(),
            message: e.msg.clone(),
        });
        DeError {
            msg: e.msg,
            recorded: true,
        }
    }

    fn wrong(&self, expected: &str) -> DeError {
        self.locate(DeError::custom(format!(
            "expected {expected}, found {}",
            describe(self.node)
        )))
    }

    fn int(&self) -> Result<i128, DeError> {
        match &self.node.value {
            Value::Int(i) => Ok(*i as i128),
            Value::Float(f) if f.fract() == 0.0 => Ok(*f as i128),
            Value::Str(s) => s
                .trim()
                .parse::<i128>()
                .map_err(|_| self.wrong("an integer")),
            _ => Err(self.wrong("an integer")),
        }
    }

    fn float(&self) -> Result<f64, DeError> {
        match &self.node.value {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => s.trim().parse::<f64>().map_err(|_| self.wrong("a number")),
            _ => Err(self.wrong("a number")),
        }
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("\"{s}\""),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => node.kind().to_string(),
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let i = self.int()?;
            let n = <$ty>::try_from(i).map_err(|_| {
                self.locate(DeError::custom(format!(
                    "{i} is out of range for {}",
                    stringify!($ty)
                )))
            })?;
            v.$visit(n).map_err(|e| self.locate(e))
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => v.visit_i64(*i),
            Value::Float(f) => v.visit_f64(*f),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(items) => v.visit_seq(Seq {
                de: &self,
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => v.visit_map(Map {
                de: &self,
                entries: entries.iter().map(|(k, n)| (k.name.as_str(), n)).collect(),
                pos: 0,
            }),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let b = match &self.node.value {
            Value::Bool(b) => *b,
            Value::Str(s) if s == "true" => true,
            Value::Str(s) if s == "false" => false,
            _ => return Err(self.wrong("true or false")),
        };
        v.visit_bool(b).map_err(|e| self.locate(e))
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        v.visit_f32(f as f32).map_err(|e| self.locate(e))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        v.visit_f64(f).map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.scalar_text() {
            Some(s) => v.visit_string(s).map_err(|e| self.locate(e)),
            None => Err(self.wrong("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => v.visit_unit().map_err(|e| self.locate(e)),
            _ => Err(self.wrong("nothing")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Seq(items) => v.visit_seq(Seq {
                de: &self,
                items: items.iter().enumerate(),
            }),
            Value::Null => v.visit_seq(Seq {
                de: &self,
                items: [].iter().enumerate(),
            }),
            _ => return Err(self.wrong("a list")),
        };
        r.map_err(|e| self.locate(e))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let entries = match &self.node.value {
            Value::Map(entries) => entries.iter().map(|(k, n)| (k.name.as_str(), n)).collect(),
            Value::Null => Vec::new(),
            _ => return Err(self.wrong("a mapping")),
        };
        let r = v.visit_map(Map {
            de: &self,
            entries,
            pos: 0,
        });
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let entries: Vec<(&str, &Node)> = match &self.node.value {
            Value::Map(entries) => {
                let mut known = Vec::new();
                for (k, n) in entries {
                    if fields.contains(&k.name.as_str()) {
                        known.push((k.name.as_str(), n));
                    } else {
                        let path = self.child(n, &k.name).path;
                        self.sink.borrow_mut().push(ConfigError {
                            loc: Some(k.loc.clone()),
                            path,
                            message: format!(
                                "unknown key \"{}\"; valid keys here: {}",
                                k.name,
                                fields.join(", ")
                            ),
                        });
                    }
                }
                known
            }
            Value::Null => Vec::new(),
            _ => return Err(self.wrong("a mapping")),
        };
        let r = v.visit_map(Map {
            de: &self,
            entries,
            pos: 0,
        });
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => {
                let d: de::value::StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                v.visit_enum(d).map_err(|e| self.locate(e))
            }
            _ => Err(self.wrong("one of the documented names")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

/// Errors raised by a value's own `Deserialize` after our deserializer handed it the data
/// (a bad duration, say) belong to that value's place, not its parent's.
fn record(
    sink: &RefCell<Vec<ConfigError>>,
    e: DeError,
    loc: super::node::Loc,
    path: String,
) -> DeError {
    if e.recorded {
        return e;
    }
    sink.borrow_mut().push(ConfigError {
        loc: Some(loc),
        path,
        message: e.msg.clone(),
    });
    DeError {
        msg: e.msg,
        recorded: true,
    }
}

struct Seq<'a, 'b, I> {
    de: &'b NodeDe<'a>,
    items: I,
}

impl<'de, 'a, 'b, I: Iterator<Item = (usize, &'a Node)>> SeqAccess<'de> for Seq<'a, 'b, I> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => {
                let child = self.de.child(node, &i.to_string());
                let (loc, path) = (node.loc.clone(), child.path.clone());
                seed.deserialize(child)
                    .map(Some)
                    .map_err(|e| record(self.de.sink, e, loc, path))
            }
            None => Ok(None),
        }
    }
}

struct Map<'a, 'b> {
    de: &'b NodeDe<'a>,
    entries: Vec<(&'a str, &'a Node)>,
    pos: usize,
}

impl<'de, 'a, 'b> MapAccess<'de> for Map<'a, 'b> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((k, _)) = self.entries.get(self.pos) else {
            return Ok(None);
        };
        let d: de::value::StrDeserializer<'_, DeError> = k.into_deserializer();
        seed.deserialize(d).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, node) = self.entries[self.pos];
        self.pos += 1;
        let child = self.de.child(node, k);
        let (loc, path) = (node.loc.clone(), child.path.clone());
        seed.deserialize(child)
            .map_err(|e| record(self.de.sink, e, loc, path))
    }
}
