//! The condition language of the `filter` processor: a small subset of the Go collector's
//! OTTL boolean expressions, parsed once at validation time and evaluated per item.
//!
//! ```text
//! condition := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" condition ")" | comparison | IsMatch(operand, "re") | operand
//! comparison:= operand ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
//!            | operand ("=~" | "!~") "regex"
//! operand   := "string" | 42 | -1.5 | true | false | nil | ENUM_NAME | path
//! path      := name | kind | status.code | attributes["k"] | resource.attributes["k"] | ...
//! ```
//!
//! Values compare like OTTL: ints and floats numerically, strings lexically, and values of
//! different types are never equal (so `!=` is true and `<` false); a missing attribute is
//! `nil`. `=~` matches the value's text anywhere (anchor with `^...$`); on `nil` it is false.
//! Enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, `SEVERITY_NUMBER_INFO`,
//! `METRIC_DATA_TYPE_SUM`, ...) are their integer values, as in OTTL.

use regex::Regex;
use std::cmp::Ordering;
use std::fmt;

/// Where a condition is evaluated, which decides the paths it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    LogRecord,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Span => "span",
            Context::SpanEvent => "spanevent",
            Context::Metric => "metric",
            Context::DataPoint => "datapoint",
            Context::LogRecord => "log_record",
        }
    }

    /// Paths without a `["key"]` index.
    fn plain_paths(self) -> &'static [(&'static str, Path)] {
        use Path::*;
        match self {
            Context::Span => &[
                ("name", Name),
                ("kind", Kind),
                ("status.code", StatusCode),
                ("status.message", StatusMessage),
                ("trace_id.string", TraceId),
                ("span_id.string", SpanId),
                ("parent_span_id.string", ParentSpanId),
                ("trace_state", TraceState),
                ("start_time_unix_nano", StartTime),
                ("end_time_unix_nano", EndTime),
                ("dropped_attributes_count", Dropped),
                ("instrumentation_scope.name", ScopeName),
                ("instrumentation_scope.version", ScopeVersion),
                ("resource.dropped_attributes_count", ResourceDropped),
            ],
            Context::SpanEvent => &[
                ("name", Name),
                ("time_unix_nano", Time),
                ("span.name", SpanName),
                ("span.kind", Kind),
                ("span.status.code", StatusCode),
                ("instrumentation_scope.name", ScopeName),
                ("instrumentation_scope.version", ScopeVersion),
                ("resource.dropped_attributes_count", ResourceDropped),
            ],
            Context::Metric => &[
                ("name", MetricName),
                ("description", Description),
                ("unit", Unit),
                ("type", MetricType),
                ("aggregation_temporality", Temporality),
                ("is_monotonic", Monotonic),
                ("instrumentation_scope.name", ScopeName),
                ("instrumentation_scope.version", ScopeVersion),
                ("resource.dropped_attributes_count", ResourceDropped),
            ],
            Context::DataPoint => &[
                ("metric.name", MetricName),
                ("metric.description", Description),
                ("metric.unit", Unit),
                ("metric.type", MetricType),
                ("value_int", ValueInt),
                ("value_double", ValueDouble),
                ("count", Count),
                ("sum", Sum),
                ("time_unix_nano", Time),
                ("instrumentation_scope.name", ScopeName),
                ("instrumentation_scope.version", ScopeVersion),
                ("resource.dropped_attributes_count", ResourceDropped),
            ],
            Context::LogRecord => &[
                ("body", Body),
                ("severity_number", SeverityNumber),
                ("severity_text", SeverityText),
                ("event_name", EventName),
                ("trace_id.string", TraceId),
                ("span_id.string", SpanId),
                ("time_unix_nano", Time),
                ("observed_time_unix_nano", ObservedTime),
                ("flags", Flags),
                ("dropped_attributes_count", Dropped),
                ("instrumentation_scope.name", ScopeName),
                ("instrumentation_scope.version", ScopeVersion),
                ("resource.dropped_attributes_count", ResourceDropped),
            ],
        }
    }

    fn indexed_paths(self) -> &'static [&'static str] {
        match self {
            Context::SpanEvent => &[
                "attributes",
                "resource.attributes",
                "instrumentation_scope.attributes",
                "span.attributes",
            ],
            Context::Metric => &["resource.attributes", "instrumentation_scope.attributes"],
            _ => &[
                "attributes",
                "resource.attributes",
                "instrumentation_scope.attributes",
            ],
        }
    }
}

/// A value a path or literal evaluates to.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Nil,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Val {
    fn text(&self) -> Option<String> {
        match self {
            Val::Nil => None,
            Val::Str(s) => Some(s.clone()),
            Val::Int(i) => Some(i.to_string()),
            Val::Float(f) => Some(f.to_string()),
            Val::Bool(b) => Some(b.to_string()),
        }
    }

    fn compare(&self, other: &Val) -> Option<Ordering> {
        match (self, other) {
            (Val::Nil, Val::Nil) => Some(Ordering::Equal),
            (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
            (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
            (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b),
            (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// A field of the item a condition looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Path {
    Name,
    Kind,
    StatusCode,
    StatusMessage,
    TraceId,
    SpanId,
    ParentSpanId,
    TraceState,
    StartTime,
    EndTime,
    Time,
    ObservedTime,
    Dropped,
    Flags,
    SpanName,
    ScopeName,
    ScopeVersion,
    ResourceDropped,
    MetricName,
    Description,
    Unit,
    MetricType,
    Temporality,
    Monotonic,
    ValueInt,
    ValueDouble,
    Count,
    Sum,
    Body,
    SeverityNumber,
    SeverityText,
    EventName,
    Attr(String),
    ResourceAttr(String),
    ScopeAttr(String),
    SpanAttr(String),
}

/// What the processor knows about the item being tested.
pub trait Item {
    fn get(&self, path: &Path) -> Val;
}

#[derive(Clone, Debug)]
enum Operand {
    Lit(Val),
    Path(Path),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, CmpOp, Operand),
    Match(Operand, Regex),
    Truthy(Operand),
}

/// A parsed condition, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    expr: Expr,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Condition {
    pub fn parse(source: &str, ctx: Context) -> Result<Condition, String> {
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            ctx,
        };
        let expr = p.or()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(format!("unexpected {} at column {}", t.tok, t.col));
        }
        Ok(Condition {
            source: source.to_string(),
            expr,
        })
    }

    pub fn matches(&self, item: &dyn Item) -> bool {
        eval(&self.expr, item)
    }
}

fn operand_value(o: &Operand, item: &dyn Item) -> Val {
    match o {
        Operand::Lit(v) => v.clone(),
        Operand::Path(p) => item.get(p),
    }
}

fn eval(e: &Expr, item: &dyn Item) -> bool {
    match e {
        Expr::Or(v) => v.iter().any(|e| eval(e, item)),
        Expr::And(v) => v.iter().all(|e| eval(e, item)),
        Expr::Not(e) => !eval(e, item),
        Expr::Truthy(o) => operand_value(o, item) == Val::Bool(true),
        Expr::Match(o, re) => operand_value(o, item)
            .text()
            .is_some_and(|t| re.is_match(&t)),
        Expr::Cmp(a, op, b) => {
            let ord = operand_value(a, item).compare(&operand_value(b, item));
            match op {
                CmpOp::Eq => ord == Some(Ordering::Equal),
                CmpOp::Ne => ord != Some(Ordering::Equal),
                CmpOp::Lt => ord == Some(Ordering::Less),
                CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Gt => ord == Some(Ordering::Greater),
                CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Int(i) => write!(f, "number {i}"),
            Tok::Float(x) => write!(f, "number {x}"),
            Tok::Op(o) => write!(f, "`{o}`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
        }
    }
}

struct Token {
    tok: Tok,
    /// 1-based column in the condition, for error messages.
    col: usize,
}

fn lex(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = ["==", "!=", "=~", "!~", "<=", ">="]
            .into_iter()
            .find(|o| *o == two);
        let tok = if let Some(op) = op2 {
            i += 2;
            Tok::Op(op)
        } else if c == '<' || c == '>' {
            i += 1;
            Tok::Op(if c == '<' { "<" } else { ">" })
        } else if c == '[' || c == ']' || c == '(' || c == ')' || c == ',' {
            i += 1;
            match c {
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                _ => Tok::Comma,
            }
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string starting at column {col}")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let esc = chars
                            .get(i + 1)
                            .ok_or(format!("unterminated string starting at column {col}"))?;
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if let Ok(n) = text.parse::<i64>() {
                Tok::Int(n)
            } else {
                Tok::Float(
                    text.parse()
                        .map_err(|_| format!("invalid number {text:?} at column {col}"))?,
                )
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else {
            return Err(format!("unexpected character {c:?} at column {col}"));
        };
        out.push(Token { tok, col });
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    ctx: Context,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Result<&Token, String> {
        let t = self
            .tokens
            .get(self.pos)
            .ok_or("the condition ends too early")?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, want: Tok) -> Result<(), String> {
        let t = self.next()?;
        if t.tok == want {
            Ok(())
        } else {
            Err(format!(
                "expected {want} at column {}, found {}",
                t.col, t.tok
            ))
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == kw)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.unary()?];
        while self.keyword("and") {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(e);
        }
        if self.keyword("IsMatch") {
            self.pos += 1;
            self.expect(Tok::LParen)?;
            let target = self.operand()?;
            self.expect(Tok::Comma)?;
            let re = self.regex()?;
            self.expect(Tok::RParen)?;
            return Ok(Expr::Match(target, re));
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => return Ok(Expr::Truthy(left)),
        };
        self.pos += 1;
        let cmp = match op {
            "=~" => return Ok(Expr::Match(left, self.regex()?)),
            "!~" => return Ok(Expr::Not(Box::new(Expr::Match(left, self.regex()?)))),
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        Ok(Expr::Cmp(left, cmp, self.operand()?))
    }

    fn regex(&mut self) -> Result<Regex, String> {
        let t = self.next()?;
        match &t.tok {
            Tok::Str(s) => {
                Regex::new(s).map_err(|e| format!("invalid regular expression {s:?}: {e}"))
            }
            other => Err(format!(
                "expected a regular expression string at column {}, found {other}",
                t.col
            )),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let ctx = self.ctx;
        let t = self.next()?;
        let col = t.col;
        let name = match &t.tok {
            Tok::Str(s) => return Ok(Operand::Lit(Val::Str(s.clone()))),
            Tok::Int(i) => return Ok(Operand::Lit(Val::Int(*i))),
            Tok::Float(f) => return Ok(Operand::Lit(Val::Float(*f))),
            Tok::Ident(s) => s.clone(),
            other => {
                return Err(format!(
                    "expected a value or a path at column {col}, found {other}"
                ));
            }
        };
        match name.as_str() {
            "true" => return Ok(Operand::Lit(Val::Bool(true))),
            "false" => return Ok(Operand::Lit(Val::Bool(false))),
            "nil" => return Ok(Operand::Lit(Val::Nil)),
            _ => {}
        }
        if let Some(v) = enum_value(&name) {
            return Ok(Operand::Lit(Val::Int(v)));
        }
        if self.peek() == Some(&Tok::LBracket) {
            if !ctx.indexed_paths().contains(&name.as_str()) {
                return Err(format!(
                    "`{name}[...]` is not a path of the {} context; indexed paths: {}",
                    ctx.name(),
                    ctx.indexed_paths().join(", ")
                ));
            }
            self.pos += 1;
            let key = match &self.next()?.tok {
                Tok::Str(s) => s.clone(),
                other => {
                    return Err(format!(
                        "expected a quoted attribute name after `{name}[`, found {other}"
                    ));
                }
            };
            self.expect(Tok::RBracket)?;
            return Ok(Operand::Path(match name.as_str() {
                "attributes" => Path::Attr(key),
                "resource.attributes" => Path::ResourceAttr(key),
                "instrumentation_scope.attributes" => Path::ScopeAttr(key),
                _ => Path::SpanAttr(key),
            }));
        }
        match ctx.plain_paths().iter().find(|(n, _)| *n == name) {
            Some((_, p)) => Ok(Operand::Path(p.clone())),
            None => {
                let known: Vec<&str> = ctx.plain_paths().iter().map(|(n, _)| *n).collect();
                Err(format!(
                    "unknown path `{name}` at column {col} in the {} context; known paths: {}, {}[\"key\"]",
                    ctx.name(),
                    known.join(", "),
                    ctx.indexed_paths().join("[\"key\"], ")
                ))
            }
        }
    }
}

fn enum_value(name: &str) -> Option<i64> {
    const SEVERITIES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let v = match name {
        "SPAN_KIND_UNSPECIFIED" => 0,
        "SPAN_KIND_INTERNAL" => 1,
        "SPAN_KIND_SERVER" => 2,
        "SPAN_KIND_CLIENT" => 3,
        "SPAN_KIND_PRODUCER" => 4,
        "SPAN_KIND_CONSUMER" => 5,
        "STATUS_CODE_UNSET" => 0,
        "STATUS_CODE_OK" => 1,
        "STATUS_CODE_ERROR" => 2,
        "METRIC_DATA_TYPE_NONE" => 0,
        "METRIC_DATA_TYPE_GAUGE" => 1,
        "METRIC_DATA_TYPE_SUM" => 2,
        "METRIC_DATA_TYPE_HISTOGRAM" => 3,
        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM" => 4,
        "METRIC_DATA_TYPE_SUMMARY" => 5,
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => 0,
        "AGGREGATION_TEMPORALITY_DELTA" => 1,
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
        "SEVERITY_NUMBER_UNSPECIFIED" => 0,
        _ => {
            let rest = name.strip_prefix("SEVERITY_NUMBER_")?;
            let (level, n) = match rest.find(|c: char| c.is_ascii_digit()) {
                Some(i) => (
                    &rest[..i],
                    rest[i..]
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (2..=4).contains(n))?,
                ),
                None => (rest, 1),
            };
            let base = SEVERITIES.iter().position(|s| *s == level)? as i64 * 4 + 1;
            base + n - 1
        }
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<String, Val>);
    impl Item for Fake {
        fn get(&self, path: &Path) -> Val {
            let key = match path {
                Path::Name => "name".to_string(),
                Path::Kind => "kind".to_string(),
                Path::Attr(k) => format!("attr:{k}"),
                Path::ResourceAttr(k) => format!("res:{k}"),
                Path::SeverityNumber => "sev".to_string(),
                other => format!("{other:?}"),
            };
            self.0.get(&key).cloned().unwrap_or(Val::Nil)
        }
    }

    fn span(pairs: &[(&str, Val)]) -> Fake {
        Fake(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn check(cond: &str, ctx: Context, item: &Fake) -> bool {
        Condition::parse(cond, ctx)
            .unwrap_or_else(|e| panic!("{cond}: {e}"))
            .matches(item)
    }

    #[test]
    fn the_documented_examples_match() {
        let s = span(&[
            ("name", Val::Str("GET /healthz".into())),
            ("kind", Val::Int(2)),
            ("attr:http.route", Val::Str("/healthz".into())),
            ("res:service.name", Val::Str("traffic-gen".into())),
            ("attr:http.response.status_code", Val::Int(503)),
        ]);
        let c = Context::Span;
        assert!(check(r#"name == "GET /healthz""#, c, &s));
        assert!(check(r#"attributes["http.route"] == "/healthz""#, c, &s));
        assert!(check(
            r#"resource.attributes["service.name"] =~ "^traffic""#,
            c,
            &s
        ));
        assert!(check(
            r#"kind == SPAN_KIND_SERVER and attributes["http.response.status_code"] >= 500"#,
            c,
            &s
        ));
        assert!(check(
            r#"not (name == "x" or attributes["missing"] != nil)"#,
            c,
            &s
        ));
        assert!(check(r#"IsMatch(name, "healthz$")"#, c, &s));
        assert!(!check(r#"name != "GET /healthz""#, c, &s));
        assert!(
            !check(r#"attributes["missing"] =~ ".*""#, c, &s),
            "nil never matches"
        );
        assert!(
            !check(r#"attributes["http.response.status_code"] == "503""#, c, &s),
            "int is not string"
        );
        assert!(check(
            r#"attributes["http.response.status_code"] < 503.5"#,
            c,
            &s
        ));
    }

    #[test]
    fn severity_enums_and_log_paths() {
        assert_eq!(enum_value("SEVERITY_NUMBER_INFO"), Some(9));
        assert_eq!(enum_value("SEVERITY_NUMBER_WARN2"), Some(14));
        assert_eq!(enum_value("SEVERITY_NUMBER_FATAL4"), Some(24));
        let log = span(&[("sev", Val::Int(5))]);
        assert!(check("severity_number < 9", Context::LogRecord, &log));
        assert!(check(
            "severity_number < SEVERITY_NUMBER_INFO",
            Context::LogRecord,
            &log
        ));
    }

    #[test]
    fn parse_errors_say_what_and_where() {
        let err = Condition::parse(r#"nme == "x""#, Context::Span).unwrap_err();
        assert!(
            err.contains("unknown path `nme` at column 1 in the span context"),
            "{err}"
        );
        let err = Condition::parse("severity_number < 9", Context::Span).unwrap_err();
        assert!(err.contains("unknown path `severity_number`"), "{err}");
        let err = Condition::parse(r#"name == "x" and"#, Context::Span).unwrap_err();
        assert!(err.contains("ends too early"), "{err}");
        let err = Condition::parse(r#"name =~ "([""#, Context::Span).unwrap_err();
        assert!(err.contains("invalid regular expression"), "{err}");
        let err = Condition::parse(r#"name == "x" "y""#, Context::Span).unwrap_err();
        assert!(
            err.contains("unexpected string \"y\" at column 13"),
            "{err}"
        );
        let err = Condition::parse(r#"name == "x"#, Context::Span).unwrap_err();
        assert!(err.contains("unterminated string"), "{err}");
    }
}
