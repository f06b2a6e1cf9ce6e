//! Row-level-security policies: the expression language that says which rows
//! of an app table a caller may see or write, with PostgreSQL RLS semantics,
//! e.g. `owner_id = auth.uid() or 'admin' in auth.groups()`.
//!
//! A policy is parsed and checked against its table's columns once, when it is
//! stored ([`PolicyExpr::parse`]); compiling it for a caller cannot fail.
//!
//! Invariants:
//! - nothing an author or a caller supplies reaches SQL text. Columns are
//!   pushed as identifiers only after the table vouched for them; every
//!   literal and every `auth.*` value is a bound parameter; the only words
//!   written are our own (`TRUE`, `FALSE`, `NULL`, operators, `GLOB`...).
//! - a value that cannot be compared (an anonymous caller's `auth.uid()`,
//!   missing metadata, metadata of the wrong type) becomes SQL `NULL`, never
//!   `FALSE`: a comparison with NULL is unknown, `NOT` unknown is unknown, and
//!   a row whose predicate is unknown is not visible. `NOT FALSE` would be
//!   TRUE, so a missing value could otherwise grant access.
//! - comparisons without a column are evaluated here with the same
//!   three-valued, type-strict rules (`'1'` is not `1`).
//! - `like` is case-sensitive and `ilike` case-insensitive on both backends
//!   (SQLite's own LIKE ignores ASCII case, so `like` runs as GLOB there).

use super::sql::{Backend, ColumnType, SqlBuilder, typed_value};
use serde_json::{Map, Value as Json};
use std::cmp::Ordering;
use std::fmt;

/// Longest policy, in characters.
pub const MAX_POLICY_CHARS: usize = 4096;
/// Deepest nesting of parentheses and `not`.
pub const MAX_POLICY_DEPTH: usize = 16;

const FUNCTIONS: &str = "auth.uid(), auth.email(), auth.role(), auth.groups(), auth.metadata('key') and now()";

/// Who is calling, as policies see it.
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    /// The user id; `None` for anonymous callers.
    pub uid: Option<String>,
    /// `auth.email()`; `None` for anonymous callers.
    pub email: Option<String>,
    /// `"anonymous"`, `"authenticated"` or `"service"`.
    pub role: String,
    /// `auth.groups()`, possibly empty.
    pub groups: Vec<String>,
    /// `auth.metadata('key')` reads a string, number or boolean from here.
    pub metadata: Map<String, Json>,
}

/// A policy that cannot be stored: what is wrong, and where (1-based
/// character position in the source).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", .position.map(|p| format!(" (at character {p})")).unwrap_or_default())]
pub struct PolicyError {
    /// What is wrong, in words for the policy's author.
    pub message: String,
    /// 1-based character position in the source, when one place is at fault.
    pub position: Option<usize>,
}

fn error_at(message: impl Into<String>, position: usize) -> PolicyError {
    PolicyError { message: message.into(), position: Some(position) }
}

/// A parsed, validated policy expression.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyExpr {
    source: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Const(bool),
    /// A bare boolean column.
    Flag(String),
    /// Two or more conditions joined by one of `and` / `or`.
    Junction(Junction, Vec<Node>),
    Not(Box<Node>),
    Compare(Operand, Cmp, Operand),
    IsNull { operand: Operand, negated: bool },
    InList { operand: Operand, negated: bool, items: Vec<Operand> },
    InGroups { operand: Operand, negated: bool },
    Like { operand: Operand, negated: bool, insensitive: bool, pattern: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Column(String, ColumnType),
    /// A string, number or boolean.
    Literal(Json),
    Uid,
    Email,
    Role,
    Metadata(String),
    Now,
    /// Only ever the right side of `in`; never stored elsewhere.
    Groups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Junction {
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn text(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Cmp::Ne => " <> ",
            Cmp::Eq => " = ",
            Cmp::Lt => " < ",
            Cmp::Le => " <= ",
            Cmp::Gt => " > ",
            Cmp::Ge => " >= ",
        }
    }

    fn is_ordering(self) -> bool {
        !matches!(self, Cmp::Eq | Cmp::Ne)
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering.is_eq(),
            Cmp::Ne => ordering.is_ne(),
            Cmp::Lt => ordering.is_lt(),
            Cmp::Le => ordering.is_le(),
            Cmp::Gt => ordering.is_gt(),
            Cmp::Ge => ordering.is_ge(),
        }
    }
}

impl PolicyExpr {
    /// Parses `source` and checks it against the table's columns (name ->
    /// type): unknown columns and type mismatches are refused here, once.
    pub fn parse(source: &str, columns: &dyn Fn(&str) -> Option<ColumnType>) -> Result<PolicyExpr, PolicyError> {
        let length = source.chars().count();
        if length > MAX_POLICY_CHARS {
            return Err(error_at(
                format!("a policy is at most {MAX_POLICY_CHARS} characters long; this one has {length}"),
                MAX_POLICY_CHARS + 1,
            ));
        }
        let mut parser = Parser { tokens: lex(source), at: 0, depth: 0, columns };
        if parser.peek().tok == Tok::End {
            return Err(PolicyError {
                message: "the policy is empty: write a condition like `owner_id = auth.uid()`, or `true`".into(),
                position: None,
            });
        }
        let root = parser.or()?;
        match parser.peek().tok {
            Tok::End => Ok(PolicyExpr { source: source.to_owned(), root }),
            Tok::RParen => Err(error_at("this `)` closes nothing", parser.peek().pos)),
            _ => Err(parser.unexpected("`and`, `or` or the end of the policy")),
        }
    }

    /// The policy as its author wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The columns it reads, each once (so the schema can refuse dropping one
    /// a policy uses).
    pub fn columns(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.root.visit_columns(&mut |name| {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        });
        names
    }

    /// Appends the predicate as SQL, wrapped in parentheses, for `auth`.
    pub fn compile(&self, auth: &AuthContext, sql: &mut SqlBuilder) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let caller = Caller { auth, now: Json::String(now) };
        sql.push("(");
        caller.emit(&self.root, sql);
        sql.push(")");
    }
}

// --------------------------------------------------------------- display ---

impl Node {
    fn visit_columns(&self, visit: &mut impl FnMut(&str)) {
        let mut operand = |o: &Operand| {
            if let Operand::Column(name, _) = o {
                visit(name);
            }
        };
        match self {
            Node::Const(_) => {}
            Node::Flag(name) => operand(&Operand::Column(name.clone(), ColumnType::Boolean)),
            Node::Junction(_, terms) => terms.iter().for_each(|t| t.visit_columns(visit)),
            Node::Not(inner) => inner.visit_columns(visit),
            Node::Compare(left, _, right) => {
                operand(left);
                operand(right);
            }
            Node::IsNull { operand: o, .. } | Node::InGroups { operand: o, .. } | Node::Like { operand: o, .. } => operand(o),
            Node::InList { operand: o, items, .. } => {
                operand(o);
                items.iter().for_each(operand);
            }
        }
    }

    /// Writes `self` inside `parent` (`None` for `not`), in parentheses
    /// unless precedence makes them unnecessary.
    fn fmt_within(&self, f: &mut fmt::Formatter<'_>, parent: Option<Junction>) -> fmt::Result {
        match self {
            Node::Junction(Junction::And, _) if parent == Some(Junction::Or) => write!(f, "{self}"),
            Node::Junction(..) => write!(f, "({self})"),
            _ => write!(f, "{self}"),
        }
    }
}

fn quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    write!(f, "'{}'", text.replace('\'', "''"))
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Column(name, _) => f.write_str(name),
            Operand::Literal(Json::String(s)) => quoted(f, s),
            Operand::Literal(other) => write!(f, "{other}"),
            Operand::Uid => f.write_str("auth.uid()"),
            Operand::Email => f.write_str("auth.email()"),
            Operand::Role => f.write_str("auth.role()"),
            Operand::Groups => f.write_str("auth.groups()"),
            Operand::Metadata(key) => {
                f.write_str("auth.metadata(")?;
                quoted(f, key)?;
                f.write_str(")")
            }
            Operand::Now => f.write_str("now()"),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |negated: bool| if negated { "not " } else { "" };
        match self {
            Node::Const(b) => write!(f, "{b}"),
            Node::Flag(name) => f.write_str(name),
            Node::Junction(kind, terms) => {
                for (i, term) in terms.iter().enumerate() {
                    f.write_str(match (i, kind) {
                        (0, _) => "",
                        (_, Junction::And) => " and ",
                        (_, Junction::Or) => " or ",
                    })?;
                    term.fmt_within(f, Some(*kind))?;
                }
                Ok(())
            }
            Node::Not(inner) => {
                f.write_str("not ")?;
                inner.fmt_within(f, None)
            }
            Node::Compare(left, op, right) => write!(f, "{left} {} {right}", op.text()),
            Node::IsNull { operand, negated } => write!(f, "{operand} is {}null", not(*negated)),
            Node::InList { operand, negated, items } => {
                write!(f, "{operand} {}in (", not(*negated))?;
                for (i, item) in items.iter().enumerate() {
                    write!(f, "{}{item}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str(")")
            }
            Node::InGroups { operand, negated } => write!(f, "{operand} {}in auth.groups()", not(*negated)),
            Node::Like { operand, negated, insensitive, pattern } => {
                write!(f, "{operand} {}{} ", not(*negated), if *insensitive { "ilike" } else { "like" })?;
                quoted(f, pattern)
            }
        }
    }
}

/// The normalized form (lower-case keywords, `!=`, minimal parentheses),
/// which parses back to the same policy.
impl fmt::Display for PolicyExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

mod compile;
mod parse;
#[cfg(test)]
mod tests;

use compile::Caller;
use parse::{Parser, Tok, lex};
