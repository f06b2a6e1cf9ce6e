//! A parsed policy as SQL for one caller: column comparisons bound to the
//! column's type, everything without a column folded here (see the module
//! invariants in `policy/mod.rs`).

use super::*;

// ----------------------------------------------------------- compilation ---

pub(super) struct Caller<'a> {
    pub(super) auth: &'a AuthContext,
    /// `now()`, once per compilation.
    pub(super) now: Json,
}

impl Caller<'_> {
    /// The value of a non-column operand; `None` is SQL NULL.
    fn value(&self, operand: &Operand) -> Option<Json> {
        match operand {
            Operand::Literal(v) => Some(v.clone()),
            Operand::Uid => self.auth.uid.as_deref().and_then(caller_text),
            Operand::Email => self.auth.email.as_deref().and_then(caller_text),
            Operand::Role => caller_text(&self.auth.role),
            Operand::Metadata(key) => match self.auth.metadata.get(key)? {
                Json::String(text) => caller_text(text),
                value @ (Json::Number(_) | Json::Bool(_)) => Some(value.clone()),
                _ => None,
            },
            Operand::Now => Some(self.now.clone()),
            Operand::Column(..) | Operand::Groups => None,
        }
    }

    pub(super) fn emit(&self, node: &Node, sql: &mut SqlBuilder) {
        match node {
            Node::Const(b) => truth(sql, Some(*b)),
            Node::Flag(name) => {
                sql.push_identifier(name).push(" = TRUE");
            }
            Node::Junction(kind, terms) => {
                for (i, term) in terms.iter().enumerate() {
                    sql.push(match (i, kind) {
                        (0, _) => "",
                        (_, Junction::And) => " AND ",
                        (_, Junction::Or) => " OR ",
                    });
                    let group = matches!(term, Node::Junction(..));
                    sql.push(if group { "(" } else { "" });
                    self.emit(term, sql);
                    sql.push(if group { ")" } else { "" });
                }
            }
            Node::Not(inner) => {
                sql.push("NOT (");
                self.emit(inner, sql);
                sql.push(")");
            }
            Node::Compare(left, op, right) => match (left, right) {
                (Operand::Column(a, _), Operand::Column(b, _)) => {
                    sql.push_identifier(a).push(op.sql()).push_identifier(b);
                }
                (Operand::Column(name, ty), other) => {
                    sql.push_identifier(name).push(op.sql());
                    self.bind(sql, *ty, other);
                }
                (other, Operand::Column(name, ty)) => {
                    self.bind(sql, *ty, other);
                    sql.push(op.sql()).push_identifier(name);
                }
                (a, b) => truth(sql, self.fold_compare(a, *op, b)),
            },
            Node::IsNull { operand: Operand::Column(name, _), negated } => {
                sql.push_identifier(name).push(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Node::IsNull { operand, negated } => truth(sql, Some(self.value(operand).is_none() != *negated)),
            Node::InList { operand, negated, items } => self.emit_in(sql, operand, *negated, items),
            Node::InGroups { operand, negated } => {
                let groups: Vec<Operand> = self.auth.groups.iter().filter_map(|g| caller_text(g)).map(Operand::Literal).collect();
                self.emit_in(sql, operand, *negated, &groups);
            }
            // SqlBuilder::push_like makes `like` case-sensitive and `ilike`
            // not on both backends (GLOB on SQLite, whose LIKE ignores case).
            Node::Like { operand: Operand::Column(name, _), negated: false, insensitive, pattern } => {
                sql.push_like(name, pattern, *insensitive);
            }
            Node::Like { operand: Operand::Column(name, _), negated: true, insensitive, pattern } => {
                sql.push("NOT (").push_like(name, pattern, *insensitive).push(")");
            }
            Node::Like { operand, negated, insensitive, pattern } => {
                let matched = match self.value(operand) {
                    Some(Json::String(text)) => Some(like_matches(&text, pattern, *insensitive)),
                    _ => None,
                };
                truth(sql, matched.map(|m| m != *negated));
            }
        }
    }

    fn emit_in(&self, sql: &mut SqlBuilder, operand: &Operand, negated: bool, items: &[Operand]) {
        match operand {
            // `x IN ()` is not valid SQL; by the SQL standard's definition it
            // is FALSE (and `x NOT IN ()` TRUE).
            Operand::Column(..) if items.is_empty() => truth(sql, Some(negated)),
            Operand::Column(name, ty) => {
                sql.push_identifier(name).push(if negated { " NOT IN (" } else { " IN (" });
                for (i, item) in items.iter().enumerate() {
                    sql.push(if i == 0 { "" } else { ", " });
                    self.bind(sql, *ty, item);
                }
                sql.push(")");
            }
            _ => {
                let found = fold_in(items.iter().map(|item| self.fold_compare(operand, Cmp::Eq, item)));
                truth(sql, found.map(|f| f != negated));
            }
        }
    }

    /// A parameter converted to the column's type, or NULL when the value is
    /// missing or does not convert (never FALSE: see the module invariant).
    fn bind(&self, sql: &mut SqlBuilder, column: ColumnType, operand: &Operand) {
        let bound = self.value(operand).is_some_and(|value| sql.push_value(column, &value).is_ok());
        if !bound {
            sql.push("NULL");
        }
    }

    fn fold_compare(&self, left: &Operand, op: Cmp, right: &Operand) -> Option<bool> {
        let as_time = *left == Operand::Now || *right == Operand::Now;
        fold_values(self.value(left).as_ref(), op, self.value(right).as_ref(), as_time)
    }
}

/// Text from the caller as a value. PostgreSQL text cannot hold NUL, so a
/// string with one equals no stored value: NULL, rather than a query error.
fn caller_text(text: &str) -> Option<Json> {
    (!text.contains('\0')).then(|| Json::String(text.to_owned()))
}

fn truth(sql: &mut SqlBuilder, value: Option<bool>) {
    sql.push(match value {
        Some(true) => "TRUE",
        Some(false) => "FALSE",
        None => "NULL",
    });
}

/// SQL comparison of two values, type-strict: `None` is unknown (NULL).
/// Equality across types is false; ordering only between two numbers, two
/// strings or (`as_time`) two timestamps, else unknown.
fn fold_values(left: Option<&Json>, op: Cmp, right: Option<&Json>, as_time: bool) -> Option<bool> {
    let (left, right) = (left?, right?);
    let ordering = if as_time {
        let instant = |v: &Json| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        instant(left)?.cmp(&instant(right)?)
    } else {
        match (left, right) {
            (Json::Number(a), Json::Number(b)) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => a.as_f64()?.partial_cmp(&b.as_f64()?)?,
            },
            (Json::String(a), Json::String(b)) => a.cmp(b),
            (Json::Bool(a), Json::Bool(b)) if !op.is_ordering() => a.cmp(b),
            _ if !op.is_ordering() => return Some(op == Cmp::Ne),
            _ => return None,
        }
    };
    Some(op.holds(ordering))
}

/// SQL `IN` over the element comparisons: true if any is true, else unknown
/// if any is unknown, else false (so also false for no elements).
fn fold_in(comparisons: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut result = Some(false);
    for comparison in comparisons {
        match comparison {
            Some(true) => return Some(true),
            None => result = None,
            Some(false) => {}
        }
    }
    result
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum LikeTok {
    /// `%`
    Any,
    /// `_`
    One,
    Char(char),
}

/// A LIKE pattern's elements; `None` when it ends with a lone backslash.
pub(super) fn like_tokens(pattern: &str) -> Option<Vec<LikeTok>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => LikeTok::Char(chars.next()?),
            '%' => LikeTok::Any,
            '_' => LikeTok::One,
            c => LikeTok::Char(c),
        });
    }
    Some(tokens)
}

/// LIKE in Rust, for comparisons without a column: greedy matching with
/// backtracking to the last `%` (linear in practice, never exponential).
pub(super) fn like_matches(text: &str, pattern: &str, insensitive: bool) -> bool {
    let (text, pattern) = if insensitive { (text.to_lowercase(), pattern.to_lowercase()) } else { (text.to_owned(), pattern.to_owned()) };
    let Some(pattern) = like_tokens(&pattern) else { return false };
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut last_any: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(LikeTok::Any) => {
                last_any = Some((p + 1, t));
                p += 1;
            }
            Some(LikeTok::One) => (t, p) = (t + 1, p + 1),
            Some(LikeTok::Char(c)) if *c == text[t] => (t, p) = (t + 1, p + 1),
            _ => match last_any {
                Some((after, from)) => {
                    (p, t) = (after, from + 1);
                    last_any = Some((after, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|token| *token == LikeTok::Any)
}
