//! OTLP attribute helpers shared by the components that read or write attributes
//! (attributes, resource, filter, spanmetrics, prometheus, loki): lookup, Go-compatible
//! text rendering of an `AnyValue`, and YAML scalars as typed `AnyValue`s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The value of `key`, if the attribute is present and has a value.
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The value of `key` as text (see [`as_text`]).
pub fn get_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    get(attrs, key).map(as_text)
}

/// Sets `key` to `value`, replacing an existing attribute of that key.
pub fn upsert(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) {
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(value),
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value: Some(value),
            ..Default::default()
        }),
    }
}

pub fn string(s: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.into())),
    }
}

pub fn string_kv(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(string(value)),
        ..Default::default()
    }
}

/// An `AnyValue` as the Go collector's `Value.AsString` writes it: strings as they are,
/// numbers in shortest decimal form, bytes as base64, arrays and maps as JSON.
pub fn as_text(v: &AnyValue) -> String {
    match &v.value {
        None | Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(f)) => format_double(*f),
        Some(Value::BytesValue(b)) => STANDARD.encode(b),
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => to_json(v).to_string(),
    }
}

fn format_double(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        f.to_string()
    }
}

fn to_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        None | Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(f)) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Some(Value::BytesValue(b)) => J::String(STANDARD.encode(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(to_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(J::Null, to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
    }
}

/// A YAML scalar from a config (`value: 42`, `value: true`, `value: "x"`) kept with its
/// type, so `value: 42` becomes an OTLP int attribute as in the Go collector.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigValue(pub AnyValue);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConfigValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E>(self, b: bool) -> Result<ConfigValue, E> {
                Ok(ConfigValue(AnyValue {
                    value: Some(Value::BoolValue(b)),
                }))
            }
            fn visit_i64<E>(self, i: i64) -> Result<ConfigValue, E> {
                Ok(ConfigValue(AnyValue {
                    value: Some(Value::IntValue(i)),
                }))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<ConfigValue, E> {
                i64::try_from(u)
                    .map_err(|_| E::custom(format!("{u} does not fit in a 64-bit signed integer")))
                    .and_then(|i| self.visit_i64(i))
            }
            fn visit_f64<E>(self, f: f64) -> Result<ConfigValue, E> {
                Ok(ConfigValue(AnyValue {
                    value: Some(Value::DoubleValue(f)),
                }))
            }
            fn visit_str<E>(self, s: &str) -> Result<ConfigValue, E> {
                Ok(ConfigValue(string(s)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_like_go_as_string() {
        let v = |value| AnyValue { value: Some(value) };
        assert_eq!(as_text(&v(Value::IntValue(-3))), "-3");
        assert_eq!(as_text(&v(Value::DoubleValue(1.5))), "1.5");
        assert_eq!(as_text(&v(Value::BoolValue(true))), "true");
        assert_eq!(
            as_text(&v(Value::BytesValue(b"hello".to_vec()))),
            "aGVsbG8="
        );
        assert_eq!(as_text(&v(Value::BytesValue(b"hi".to_vec()))), "aGk=");
    }
}
