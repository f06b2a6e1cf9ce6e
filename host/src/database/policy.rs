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

// ---------------------------------------------------------------- tokens ---

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(Json),
    Cmp(Cmp),
    LParen,
    RParen,
    Comma,
    Dot,
    End,
    /// A lexical error; always the last token.
    Bad(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based character position.
    pos: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Num(n) => format!("the number {n}"),
        Tok::Cmp(c) => format!("`{}`", c.text()),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::End | Tok::Bad(_) => "the end of the policy".into(),
    }
}

/// Splits the source into tokens. Lexing stops at the first error, which
/// becomes a `Bad` token so that errors are reported in source order.
fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            tokens.push(Token { tok: Tok::End, pos: i + 1 });
            return tokens;
        };
        match lex_one(&chars, i, c) {
            Ok((tok, end)) => {
                tokens.push(Token { tok, pos: i + 1 });
                i = end;
            }
            Err((message, at)) => {
                tokens.push(Token { tok: Tok::Bad(message), pos: at + 1 });
                return tokens;
            }
        }
    }
}

/// One token starting at `chars[i] == c`: the token and where the next one
/// starts, or a message and the (0-based) index it is about.
fn lex_one(chars: &[char], i: usize, c: char) -> Result<(Tok, usize), (String, usize)> {
    let next = chars.get(i + 1).copied();
    let single = |tok| Ok((tok, i + 1));
    match c {
        '(' => single(Tok::LParen),
        ')' => single(Tok::RParen),
        ',' => single(Tok::Comma),
        '.' => single(Tok::Dot),
        '=' => single(Tok::Cmp(Cmp::Eq)),
        '!' if next == Some('=') => Ok((Tok::Cmp(Cmp::Ne), i + 2)),
        '<' if next == Some('=') => Ok((Tok::Cmp(Cmp::Le), i + 2)),
        '<' if next == Some('>') => Ok((Tok::Cmp(Cmp::Ne), i + 2)),
        '<' => single(Tok::Cmp(Cmp::Lt)),
        '>' if next == Some('=') => Ok((Tok::Cmp(Cmp::Ge), i + 2)),
        '>' => single(Tok::Cmp(Cmp::Gt)),
        '\'' => lex_string(chars, i),
        '"' => Err(("double quotes are not allowed: write column names bare (owner_id) and strings in single quotes ('text')".into(), i)),
        ';' => Err(("`;` is not allowed: a policy is one condition, not SQL statements".into(), i)),
        '-' if next == Some('-') => Err(("comments (`--`) are not allowed in a policy".into(), i)),
        '/' if next == Some('*') => Err(("comments (`/* */`) are not allowed in a policy".into(), i)),
        '-' if next.is_some_and(|n| n.is_ascii_digit()) => lex_number(chars, i),
        c if c.is_ascii_digit() => lex_number(chars, i),
        c if c.is_ascii_alphabetic() || c == '_' => {
            let end = (i..chars.len()).find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_')).unwrap_or(chars.len());
            match (i..end).find(|&j| !chars[j].is_ascii()) {
                // `tеam` with a Cyrillic `е`: name the look-alike, not `t`.
                Some(j) => lex_one(chars, j, chars[j]),
                None => Ok((Tok::Word(chars[i..end].iter().collect()), end)),
            }
        }
        c if c.is_control() => Err((format!("control character U+{:04X} is not allowed", c as u32), i)),
        c if !c.is_ascii() => Err((
            format!(
                "unexpected character '{c}' (U+{:04X}): outside 'strings' a policy is plain ASCII \
                 (a look-alike of a Latin letter?)",
                c as u32
            ),
            i,
        )),
        c => Err((format!("unexpected character '{c}'"), i)),
    }
}

fn lex_string(chars: &[char], start: usize) -> Result<(Tok, usize), (String, usize)> {
    let mut text = String::new();
    let mut j = start + 1;
    loop {
        match chars.get(j) {
            None => return Err(("unterminated string: close it with '".into(), start)),
            Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                text.push('\'');
                j += 2;
            }
            Some('\'') => return Ok((Tok::Str(text), j + 1)),
            Some(&c) if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {
                return Err((format!("control character U+{:04X} is not allowed in a string", c as u32), j));
            }
            Some(&c) => {
                text.push(c);
                j += 1;
            }
        }
    }
}

fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), (String, usize)> {
    let digits = |from: usize| (from..chars.len()).find(|&j| !chars[j].is_ascii_digit()).unwrap_or(chars.len());
    let mut end = digits(start + 1);
    let mut integer = true;
    if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(|c| c.is_ascii_digit()) {
        (end, integer) = (digits(end + 1), false);
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(end + 1), Some('+' | '-')));
        if chars.get(end + 1 + sign).is_some_and(|c| c.is_ascii_digit()) {
            (end, integer) = (digits(end + 1 + sign), false);
        }
    }
    if chars.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')) {
        return Err(("malformed number".into(), start));
    }
    let text: String = chars[start..end].iter().collect();
    let number = if integer {
        text.parse::<i64>().ok().map(Json::from)
    } else {
        text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number)
    };
    number.map(|n| (Tok::Num(n), end)).ok_or_else(|| (format!("the number {text} is out of range"), start))
}

// ---------------------------------------------------------------- parser ---

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    columns: &'a dyn Fn(&str) -> Option<ColumnType>,
}

const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "is", "like", "ilike", "null"];

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        // The last token is End or Bad; looking past it sees it again.
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        self.at = (self.at + 1).min(self.tokens.len() - 1);
        token
    }

    fn is_word(&self, ahead: usize, word: &str) -> bool {
        matches!(&self.peek_at(ahead).tok, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(0, word);
        if found {
            self.bump();
        }
        found
    }

    /// The error for the current token when it is not `expected` (or the
    /// lexical error that stopped the tokens there).
    fn unexpected(&self, expected: &str) -> PolicyError {
        let token = self.peek();
        match &token.tok {
            Tok::Bad(message) => error_at(message.clone(), token.pos),
            other => error_at(format!("expected {expected}, found {}", describe(other)), token.pos),
        }
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<(), PolicyError> {
        if self.peek().tok != tok {
            return Err(self.unexpected(expected));
        }
        self.bump();
        Ok(())
    }

    fn enter(&mut self, pos: usize) -> Result<(), PolicyError> {
        self.depth += 1;
        if self.depth > MAX_POLICY_DEPTH {
            return Err(error_at(
                format!("the policy nests too deeply: at most {MAX_POLICY_DEPTH} levels of parentheses and `not`"),
                pos,
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, PolicyError> {
        self.junction(Junction::Or)
    }

    /// `term (or term)*` or `term (and term)*`; `(a or b) or c` flattens.
    fn junction(&mut self, kind: Junction) -> Result<Node, PolicyError> {
        let mut terms = Vec::new();
        loop {
            match if kind == Junction::Or { self.junction(Junction::And)? } else { self.not()? } {
                Node::Junction(inner, nested) if inner == kind => terms.extend(nested),
                term => terms.push(term),
            }
            if !self.eat_word(if kind == Junction::Or { "or" } else { "and" }) {
                break;
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Node::Junction(kind, terms) })
    }

    fn not(&mut self) -> Result<Node, PolicyError> {
        if !self.is_word(0, "not") {
            return self.predicate();
        }
        let pos = self.bump().pos;
        self.enter(pos)?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Node::Not(Box::new(inner)))
    }

    fn predicate(&mut self) -> Result<Node, PolicyError> {
        if self.peek().tok == Tok::LParen {
            let pos = self.bump().pos;
            self.enter(pos)?;
            let inner = self.or()?;
            self.expect(Tok::RParen, &format!("`)` to close the `(` at character {pos}"))?;
            self.depth -= 1;
            return Ok(inner);
        }
        let (left, left_pos) = self.operand()?;
        let negated = self.is_word(0, "not") && ["in", "like", "ilike"].iter().any(|w| self.is_word(1, w));
        if negated {
            self.bump();
        }
        let token = self.peek().clone();
        match &token.tok {
            Tok::Cmp(op) => {
                self.bump();
                let (right, right_pos) = self.operand()?;
                check_compare(&left, left_pos, *op, token.pos, &right, right_pos)?;
                Ok(Node::Compare(left, *op, right))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                self.bump();
                let negated = self.eat_word("not");
                if !self.eat_word("null") {
                    return Err(self.unexpected("`null` or `not null` after `is`"));
                }
                scalar(&left, left_pos)?;
                Ok(Node::IsNull { operand: left, negated })
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => {
                self.bump();
                self.in_tail(left, left_pos, negated, token.pos)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("ilike") => {
                self.bump();
                let insensitive = w.eq_ignore_ascii_case("ilike");
                let Tok::Str(pattern) = self.peek().tok.clone() else {
                    return Err(self.unexpected("a pattern in single quotes, like '%@example.com'"));
                };
                let pattern_pos = self.bump().pos;
                check_like(&left, left_pos, &pattern, pattern_pos)?;
                Ok(Node::Like { operand: left, negated, insensitive, pattern })
            }
            _ => self.bare(left, left_pos),
        }
    }

    /// After `[not] in`: a list of values or `auth.groups()`.
    fn in_tail(&mut self, left: Operand, left_pos: usize, negated: bool, in_pos: usize) -> Result<Node, PolicyError> {
        scalar(&left, left_pos)?;
        if self.peek().tok != Tok::LParen {
            let (right, right_pos) = self.operand()?;
            if right != Operand::Groups {
                return Err(error_at("`in` takes a list like ('a', 'b') or auth.groups()", right_pos));
            }
            if let Operand::Column(name, ty) = &left
                && *ty != ColumnType::Text
            {
                return Err(error_at(format!("groups are text; `{name}` is {}", kind(*ty)), left_pos));
            }
            return Ok(Node::InGroups { operand: left, negated });
        }
        self.bump();
        if self.peek().tok == Tok::RParen {
            return Err(error_at("an empty list matches nothing; give at least one value", self.peek().pos));
        }
        let mut items = Vec::new();
        loop {
            let (item, pos) = self.operand()?;
            if let Operand::Column(name, _) = &item {
                return Err(error_at(format!("a list holds values, not columns (`{name}`)"), pos));
            }
            check_compare(&left, left_pos, Cmp::Eq, in_pos, &item, pos)?;
            items.push(item);
            match self.peek().tok {
                Tok::Comma => self.bump(),
                Tok::RParen => break,
                _ => return Err(self.unexpected("`,` or `)` in the list")),
            };
        }
        self.bump();
        Ok(Node::InList { operand: left, negated, items })
    }

    /// An operand with nothing after it: a condition on its own.
    fn bare(&self, operand: Operand, pos: usize) -> Result<Node, PolicyError> {
        let ends = matches!(self.peek().tok, Tok::End | Tok::RParen) || self.is_word(0, "and") || self.is_word(0, "or");
        if !ends {
            return Err(self.unexpected(&format!("a comparison after {operand} (=, !=, <, in, is null, like ...)")));
        }
        match operand {
            Operand::Column(name, ColumnType::Boolean) => Ok(Node::Flag(name)),
            Operand::Literal(Json::Bool(b)) => Ok(Node::Const(b)),
            Operand::Column(name, ty) => Err(error_at(
                format!("`{name}` is {}, not a condition: compare it, like `{name} = ...`", kind(ty)),
                pos,
            )),
            other => Err(error_at(format!("{other} is not a condition: compare it, like `{other} = ...`"), pos)),
        }
    }

    fn operand(&mut self) -> Result<(Operand, usize), PolicyError> {
        let token = self.peek().clone();
        let pos = token.pos;
        let operand = match token.tok {
            Tok::Str(s) => Operand::Literal(Json::String(s)),
            Tok::Num(n) => Operand::Literal(n),
            Tok::Word(word) => {
                let lower = word.to_ascii_lowercase();
                let then = self.peek_at(1).tok.clone();
                match lower.as_str() {
                    "true" | "false" => Operand::Literal(Json::Bool(lower == "true")),
                    "null" => {
                        return Err(error_at("null is only written as `is null` or `is not null` (`= null` is never true)", pos));
                    }
                    "auth" if then == Tok::Dot => {
                        self.bump();
                        return Ok((self.auth_function()?, pos));
                    }
                    "now" if then == Tok::LParen => {
                        self.bump();
                        self.bump();
                        self.no_arguments("now()")?;
                        return Ok((Operand::Now, pos));
                    }
                    "select" | "exists" if (self.columns)(&lower).is_none() => {
                        return Err(error_at("subqueries are not allowed in a policy", pos));
                    }
                    k if KEYWORDS.contains(&k) => {
                        return Err(error_at(format!("expected a column, a value or a function, found `{word}`"), pos));
                    }
                    _ if then == Tok::LParen => {
                        return Err(error_at(format!("unknown function `{word}()`; the functions are {FUNCTIONS}"), pos));
                    }
                    _ if then == Tok::Dot => {
                        return Err(error_at(
                            format!("`{word}.`: columns are written without a table name; only auth.* functions use a dot"),
                            pos,
                        ));
                    }
                    _ if word != lower => {
                        return Err(error_at(format!("column names are lower case: `{word}` is not one (`{lower}`?)"), pos));
                    }
                    _ => match (self.columns)(&word) {
                        Some(ty) => Operand::Column(word, ty),
                        None => return Err(error_at(format!("unknown column `{word}`"), pos)),
                    },
                }
            }
            Tok::LParen => return Err(error_at("a parenthesized value is not allowed here (nor is a subquery)", pos)),
            _ => return Err(self.unexpected("a column, a value or a function")),
        };
        self.bump();
        Ok((operand, pos))
    }

    /// After `auth`, at the `.`.
    fn auth_function(&mut self) -> Result<Operand, PolicyError> {
        self.bump();
        let Tok::Word(name) = self.peek().tok.clone() else {
            return Err(self.unexpected("a function name after `auth.`"));
        };
        let name = name.to_ascii_lowercase();
        let pos = self.bump().pos;
        let operand = match name.as_str() {
            "uid" => Operand::Uid,
            "email" => Operand::Email,
            "role" => Operand::Role,
            "groups" => Operand::Groups,
            "metadata" => Operand::Metadata(String::new()),
            _ => return Err(error_at(format!("unknown function `auth.{name}()`; the functions are {FUNCTIONS}"), pos)),
        };
        self.expect(Tok::LParen, &format!("`(`: auth.{name} is a function, written auth.{name}()"))?;
        if name != "metadata" {
            self.no_arguments(&format!("auth.{name}()"))?;
            return Ok(operand);
        }
        let key_pos = self.peek().pos;
        let key = match self.peek().tok.clone() {
            Tok::Str(key) => key,
            Tok::Word(w) => {
                let message = format!("auth.metadata() takes the key in single quotes, like auth.metadata('{w}')");
                return Err(error_at(message, key_pos));
            }
            _ => return Err(self.unexpected("a key in single quotes, like auth.metadata('department')")),
        };
        self.bump();
        self.expect(Tok::RParen, "`)`: auth.metadata() takes one key")?;
        Ok(Operand::Metadata(key))
    }

    fn no_arguments(&mut self, function: &str) -> Result<(), PolicyError> {
        match self.peek().tok {
            Tok::RParen => {
                self.bump();
                Ok(())
            }
            Tok::End | Tok::Bad(_) => Err(self.unexpected("`)`")),
            _ => Err(error_at(format!("{function} takes no arguments"), self.peek().pos)),
        }
    }
}

// ------------------------------------------------------------ validation ---

/// "a text column", "an integer column".
fn kind(ty: ColumnType) -> String {
    format!("{} {} column", if ty == ColumnType::Integer { "an" } else { "a" }, ty.name())
}

fn scalar(operand: &Operand, pos: usize) -> Result<(), PolicyError> {
    if *operand == Operand::Groups {
        return Err(error_at("auth.groups() is a list: use it as `'admin' in auth.groups()`", pos));
    }
    Ok(())
}

fn check_compare(left: &Operand, left_pos: usize, op: Cmp, op_pos: usize, right: &Operand, right_pos: usize) -> Result<(), PolicyError> {
    scalar(left, left_pos)?;
    scalar(right, right_pos)?;
    match (left, right) {
        (Operand::Column(a, ta), Operand::Column(b, tb)) => {
            check_column_op(a, *ta, op, op_pos)?;
            if ta != tb {
                let message = format!("`{a}` is {} and `{b}` {}; they cannot be compared", kind(*ta), kind(*tb));
                return Err(error_at(message, op_pos));
            }
            Ok(())
        }
        (Operand::Column(name, ty), other) => check_against_column(name, *ty, op, op_pos, other, right_pos),
        (other, Operand::Column(name, ty)) => check_against_column(name, *ty, op, op_pos, other, left_pos),
        (Operand::Now, other) => check_against_now(other, right_pos),
        (other, Operand::Now) => check_against_now(other, left_pos),
        _ => Ok(()),
    }
}

fn check_column_op(name: &str, ty: ColumnType, op: Cmp, op_pos: usize) -> Result<(), PolicyError> {
    if ty == ColumnType::Json {
        // Equality of stored JSON text (SQLite) and of JSONB values
        // (PostgreSQL) differ, so no comparison would mean one thing.
        return Err(error_at(format!("`{name}` is a json column: it can only be tested with `is null` or `is not null`"), op_pos));
    }
    if op.is_ordering() && !ty.is_ordered() {
        let message = format!("`{}` does not apply to `{name}`, {}; use = or !=", op.text(), kind(ty));
        return Err(error_at(message, op_pos));
    }
    Ok(())
}

fn check_against_column(name: &str, ty: ColumnType, op: Cmp, op_pos: usize, value: &Operand, pos: usize) -> Result<(), PolicyError> {
    check_column_op(name, ty, op, op_pos)?;
    let problem = match value {
        Operand::Literal(literal) => {
            typed_value(ty, Backend::Sqlite, literal).err().map(|e| format!("`{name}` is {}: {e}", kind(ty)))
        }
        Operand::Uid if ty == ColumnType::Uuid => None,
        Operand::Uid | Operand::Email | Operand::Role if ty == ColumnType::Text => None,
        Operand::Metadata(_) => None,
        Operand::Now if ty == ColumnType::Timestamp => None,
        Operand::Now => Some(format!("now() is a timestamp; `{name}` is {}", kind(ty))),
        other => Some(format!("{other} is text; `{name}` is {}", kind(ty))),
    };
    problem.map_or(Ok(()), |message| Err(error_at(message, pos)))
}

fn check_against_now(other: &Operand, pos: usize) -> Result<(), PolicyError> {
    match other {
        Operand::Now | Operand::Metadata(_) => Ok(()),
        Operand::Literal(Json::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(()),
        _ => Err(error_at(format!("now() compares with timestamps like '2026-01-31T12:00:00Z', not {other}"), pos)),
    }
}

fn check_like(operand: &Operand, pos: usize, pattern: &str, pattern_pos: usize) -> Result<(), PolicyError> {
    scalar(operand, pos)?;
    match operand {
        Operand::Column(_, ColumnType::Text) => {}
        Operand::Column(name, ty) => return Err(error_at(format!("`like` applies to text; `{name}` is {}", kind(*ty)), pos)),
        Operand::Literal(Json::String(_)) | Operand::Uid | Operand::Email | Operand::Role | Operand::Metadata(_) => {}
        other => return Err(error_at(format!("`like` applies to text, not to {other}"), pos)),
    }
    if like_tokens(pattern).is_none() {
        return Err(error_at("a pattern cannot end with a lone `\\` (it escapes the next % or _)", pattern_pos));
    }
    Ok(())
}

// ----------------------------------------------------------- compilation ---

struct Caller<'a> {
    auth: &'a AuthContext,
    /// `now()`, once per compilation.
    now: Json,
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

    fn emit(&self, node: &Node, sql: &mut SqlBuilder) {
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
enum LikeTok {
    /// `%`
    Any,
    /// `_`
    One,
    Char(char),
}

/// A LIKE pattern's elements; `None` when it ends with a lone backslash.
fn like_tokens(pattern: &str) -> Option<Vec<LikeTok>> {
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
fn like_matches(text: &str, pattern: &str, insensitive: bool) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UID: &str = "0190c7b4-5d1e-7a3b-9c4d-2e6f8a1b3c5d";

    fn table(name: &str) -> Option<ColumnType> {
        Some(match name {
            "owner_id" | "editor_id" => ColumnType::Uuid,
            "author" | "email" | "department" | "team" | "status" | "x" => ColumnType::Text,
            "level" | "count" | "a" | "b" => ColumnType::Integer,
            "price" => ColumnType::Real,
            "published" | "archived" => ColumnType::Boolean,
            "deleted_at" | "expires_at" => ColumnType::Timestamp,
            "data" => ColumnType::Json,
            "avatar" => ColumnType::Blob,
            _ => return None,
        })
    }

    fn parse(source: &str) -> PolicyExpr {
        PolicyExpr::parse(source, &table).unwrap_or_else(|e| panic!("{source:?} should parse: {e}"))
    }

    fn error(source: &str) -> PolicyError {
        PolicyExpr::parse(source, &table).expect_err(source)
    }

    fn user() -> AuthContext {
        let metadata = json!({"department": "eng", "team": "core", "clearance": 3, "since": "2020-01-01T00:00:00Z", "profile": {"a": 1}});
        AuthContext {
            uid: Some(UID.into()),
            email: Some("ada@corp.example".into()),
            role: "authenticated".into(),
            groups: vec!["admin".into(), "core".into()],
            metadata: metadata.as_object().cloned().unwrap_or_default(),
        }
    }

    fn anonymous() -> AuthContext {
        AuthContext { role: "anonymous".into(), ..AuthContext::default() }
    }

    /// The compiled SQL text and its number of bound values.
    fn compile(source: &str, auth: &AuthContext, backend: Backend) -> (String, usize) {
        let mut sql = SqlBuilder::new(backend);
        parse(source).compile(auth, &mut sql);
        assert_sql_is_ours(sql.sql());
        (sql.sql().to_owned(), sql.value_count())
    }

    fn sqlite(source: &str, auth: &AuthContext) -> String {
        compile(source, auth, Backend::Sqlite).0
    }

    /// The text contains only quoted known columns, placeholders and the
    /// words and punctuation this module writes: nothing from the source.
    fn assert_sql_is_ours(sql: &str) {
        const WORDS: [&str; 17] =
            ["TRUE", "FALSE", "NULL", "AND", "OR", "NOT", "IN", "IS", "LIKE", "ILIKE", "GLOB", "ESCAPE", "lower", "CAST", "AS", "uuid", ""];
        let mut rest = sql.replace(" ESCAPE '\\'", " ESCAPE");
        while let Some(start) = rest.find('"') {
            let end = start + 1 + rest[start + 1..].find('"').expect("closed identifier");
            assert!(table(&rest[start + 1..end]).is_some(), "identifier {} in {sql}", &rest[start..=end]);
            rest.replace_range(start..=end, " ");
        }
        for word in rest.split(|c: char| "()=<>,?$ ".contains(c) || c.is_ascii_digit()) {
            assert!(WORDS.contains(&word), "unexpected {word:?} in {sql}");
        }
    }

    #[test]
    fn injection_attempts_never_reach_sql_text() {
        let long = format!("status = '{}'", "a".repeat(4990));
        let parens = format!("{}true{}", "(".repeat(1000), ")".repeat(1000));
        let nots = format!("{}true", "not ".repeat(1000));
        let attacks: Vec<(&str, &str, usize)> = vec![
            ("owner_id = auth.uid(); drop table x", "`;` is not allowed", 22),
            ("'a' = 'a' -- ", "comments (`--`)", 11),
            ("true /* */", "comments (`/* */`)", 6),
            ("\"owner_id\" = auth.uid()", "double quotes are not allowed", 1),
            ("auth.metadata(department) = 'x'", "in single quotes, like auth.metadata('department')", 15),
            ("auth.uid(1) = owner_id", "auth.uid() takes no arguments", 10),
            ("pg_sleep(1)", "unknown function `pg_sleep()`", 1),
            ("status = 'x' or pg_sleep(10) is null", "unknown function `pg_sleep()`", 17),
            ("owner_id = (select 1)", "nor is a subquery", 12),
            ("(select 1) = 1", "subqueries are not allowed", 2),
            ("auth.role() = 'service' or exists (select 1)", "subqueries are not allowed", 28),
            ("status = 'a' union select 1", "found `union`", 14),
            ("\u{43e}wner_id = auth.uid()", "U+043E", 1),
            ("status = 'x' or t\u{435}am = 'x'", "U+0435", 18),
            (&long, "at most 4096 characters", 4097),
            (&parens, "nests too deeply", 17),
            (&nots, "nests too deeply", 65),
            ("'unterminated", "unterminated string", 1),
            ("status = 'open", "unterminated string", 10),
            ("status = 'a\0b'", "U+0000 is not allowed in a string", 12),
            ("true\0", "U+0000", 5),
            ("status = 'x\\' or 1=1 --", "comments (`--`)", 22),
            ("owner_id = $1", "unexpected character '$'", 12),
            ("status = ?", "unexpected character '?'", 10),
            ("status = 'a' || 'b'", "unexpected character '|'", 14),
            ("auth.uid()::text = status", "unexpected character ':'", 11),
            ("app.users = auth.uid()", "without a table name", 1),
            ("Owner_Id = auth.uid()", "column names are lower case", 1),
            ("status = 0x41", "malformed number", 10),
            ("lower(status) = 'x'", "unknown function `lower()`", 1),
            ("auth.sql('drop')", "unknown function `auth.sql()`", 6),
            ("status like '%' escape '!'", "found `escape`", 17),
            ("null = null", "is null", 1),
            ("owner_id = auth.uid() or owner_id = auth.uid(", "expected `)`", 46),
        ];
        for (source, message, position) in attacks {
            let e = error(source);
            assert!(e.message.contains(message), "{source:?}: {e}");
            assert_eq!(e.position, Some(position), "{source:?}: {e}");
        }
        // Valid, though hostile-looking: the author's own choices, compiled
        // with every value bound.
        let (sql, values) = compile("owner_id = auth.uid() or 1=1", &user(), Backend::Sqlite);
        assert_eq!((sql.as_str(), values), ("(\"owner_id\" = ? OR TRUE)", 1));
        let (sql, values) = compile("status = 'x'' or ''1''=''1' or status = 'it''s'", &user(), Backend::Postgres);
        assert_eq!((sql.as_str(), values), ("(\"status\" = $1 OR \"status\" = $2)", 2));
        let mut hostile = user();
        hostile.metadata.insert("department".into(), json!("x' OR '1'='1"));
        hostile.groups = vec!["a') OR TRUE --".into()];
        hostile.uid = Some("'; drop table users; --".into());
        let (sql, values) = compile("department = auth.metadata('department') or team in auth.groups() or author = auth.uid()", &hostile, Backend::Sqlite);
        assert_eq!(sql, "(\"department\" = ? OR \"team\" IN (?) OR \"author\" = ?)");
        assert_eq!(values, 3);
    }

    #[test]
    fn the_documented_examples_compile_on_both_backends() {
        let cases: [(&str, &str, &str, usize); 22] = [
            ("owner_id = auth.uid()", "(\"owner_id\" = ?)", "(\"owner_id\" = CAST($1 AS uuid))", 1),
            (
                "owner_id = auth.uid() or 'admin' in auth.groups()",
                "(\"owner_id\" = ? OR TRUE)",
                "(\"owner_id\" = CAST($1 AS uuid) OR TRUE)",
                1,
            ),
            ("department = auth.metadata('department')", "(\"department\" = ?)", "(\"department\" = $1)", 1),
            ("auth.role() = 'authenticated'", "(TRUE)", "(TRUE)", 0),
            ("auth.role() in ('authenticated', 'service')", "(TRUE)", "(TRUE)", 0),
            ("published and not archived", "(\"published\" = TRUE AND NOT (\"archived\" = TRUE))", "(\"published\" = TRUE AND NOT (\"archived\" = TRUE))", 0),
            (
                "status in ('open', 'pending') and (owner_id = auth.uid() or team = auth.metadata('team'))",
                "(\"status\" IN (?, ?) AND (\"owner_id\" = ? OR \"team\" = ?))",
                "(\"status\" IN ($1, $2) AND (\"owner_id\" = CAST($3 AS uuid) OR \"team\" = $4))",
                4,
            ),
            ("deleted_at is null", "(\"deleted_at\" IS NULL)", "(\"deleted_at\" IS NULL)", 0),
            ("x is not null", "(\"x\" IS NOT NULL)", "(\"x\" IS NOT NULL)", 0),
            ("auth.uid() is not null", "(TRUE)", "(TRUE)", 0),
            ("level <= auth.metadata('clearance')", "(\"level\" <= ?)", "(\"level\" <= $1)", 1),
            ("expires_at > now()", "(\"expires_at\" > ?)", "(\"expires_at\" > $1)", 1),
            ("email like '%@example.com'", "(\"email\" GLOB ?)", "(\"email\" LIKE $1 ESCAPE '\\')", 1),
            ("email ilike '%@example.com'", "(lower(\"email\") LIKE lower(?) ESCAPE '\\')", "(\"email\" ILIKE $1 ESCAPE '\\')", 1),
            ("email not like 'a%'", "(NOT (\"email\" GLOB ?))", "(NOT (\"email\" LIKE $1 ESCAPE '\\'))", 1),
            ("auth.email() like '%@corp.example'", "(TRUE)", "(TRUE)", 0),
            ("true", "(TRUE)", "(TRUE)", 0),
            ("false", "(FALSE)", "(FALSE)", 0),
            ("team in auth.groups()", "(\"team\" IN (?, ?))", "(\"team\" IN ($1, $2))", 2),
            ("'x' != 'y' and a <> b", "(TRUE AND \"a\" <> \"b\")", "(TRUE AND \"a\" <> \"b\")", 0),
            ("level = 42 or price < -3.5 or status = 'it''s'", "(\"level\" = ? OR \"price\" < ? OR \"status\" = ?)", "(\"level\" = $1 OR \"price\" < $2 OR \"status\" = $3)", 3),
            ("not (a = 1 or b = 2) and team not in ('x')", "(NOT (\"a\" = ? OR \"b\" = ?) AND \"team\" NOT IN (?))", "(NOT (\"a\" = $1 OR \"b\" = $2) AND \"team\" NOT IN ($3))", 3),
        ];
        for (source, sqlite, postgres, values) in cases {
            assert_eq!(compile(source, &user(), Backend::Sqlite), (sqlite.to_owned(), values), "{source}");
            assert_eq!(compile(source, &user(), Backend::Postgres), (postgres.to_owned(), values), "{source}");
        }
    }

    #[test]
    fn values_are_bound_converted_to_the_columns_type() {
        let mut sql = SqlBuilder::new(Backend::Sqlite);
        parse("status in ('open', 'it''s') and level >= auth.metadata('clearance') and owner_id = auth.uid()").compile(&user(), &mut sql);
        let values = sql.build().values.expect("values").0;
        assert_eq!(
            values,
            vec![
                sea_orm::Value::String(Some("open".into())),
                sea_orm::Value::String(Some("it's".into())),
                sea_orm::Value::BigInt(Some(3)),
                sea_orm::Value::String(Some(UID.into())),
            ]
        );
    }

    #[test]
    fn anonymous_callers_match_no_owner_even_under_not() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            assert_eq!(compile("owner_id = auth.uid()", &anonymous(), backend), ("(\"owner_id\" = NULL)".into(), 0));
            assert_eq!(compile("not (owner_id = auth.uid())", &anonymous(), backend), ("(NOT (\"owner_id\" = NULL))".into(), 0));
            assert_eq!(compile("owner_id != auth.uid()", &anonymous(), backend), ("(\"owner_id\" <> NULL)".into(), 0));
            assert_eq!(compile("not (auth.uid() = 'x')", &anonymous(), backend), ("(NOT (NULL))".into(), 0));
            assert_eq!(compile("author in (auth.uid(), auth.email())", &anonymous(), backend), ("(\"author\" IN (NULL, NULL))".into(), 0));
        }
        // A uid that is not a UUID (an external provider's subject) cannot
        // equal a uuid column: NULL, not an error and not FALSE.
        let external = AuthContext { uid: Some("auth0|123".into()), ..user() };
        assert_eq!(sqlite("not (owner_id = auth.uid())", &external), "(NOT (\"owner_id\" = NULL))");
        assert_eq!(compile("author = auth.uid()", &external, Backend::Sqlite), ("(\"author\" = ?)".into(), 1));
    }

    #[test]
    fn metadata_of_the_wrong_type_or_missing_becomes_null_never_false() {
        let mut auth = user();
        auth.metadata.insert("clearance".into(), json!("3"));
        assert_eq!(compile("not (level <= auth.metadata('clearance'))", &auth, Backend::Sqlite), ("(NOT (\"level\" <= NULL))".into(), 0));
        for key in ["missing", "profile"] {
            let source = format!("department = auth.metadata('{key}')");
            assert_eq!(compile(&source, &user(), Backend::Postgres), ("(\"department\" = NULL)".into(), 0), "{key}");
        }
        auth.metadata.insert("clearance".into(), json!(null));
        assert_eq!(sqlite("level = auth.metadata('clearance')", &auth), "(\"level\" = NULL)");
        auth.metadata.insert("clearance".into(), json!(2.5));
        assert_eq!(sqlite("level not in (auth.metadata('clearance'), 7)", &auth), "(\"level\" NOT IN (NULL, ?))");
        assert_eq!(sqlite("price > auth.metadata('clearance')", &auth), "(\"price\" > ?)");
    }

    #[test]
    fn comparisons_without_a_column_fold_with_sql_three_valued_logic() {
        let mut auth = user();
        auth.metadata.insert("tomorrow".into(), json!("yesterday"));
        let cases = [
            ("auth.role() = 'authenticated'", "TRUE", "FALSE"),
            ("auth.role() in ('authenticated', 'service')", "TRUE", "FALSE"),
            ("'admin' in auth.groups()", "TRUE", "FALSE"),
            ("'admin' not in auth.groups()", "FALSE", "TRUE"),
            ("auth.uid() in auth.groups()", "FALSE", "FALSE"),
            ("auth.uid() is null", "FALSE", "TRUE"),
            ("auth.uid() = auth.uid()", "TRUE", "NULL"),
            ("auth.uid() != 'x'", "TRUE", "NULL"),
            ("auth.metadata('clearance') = 3", "TRUE", "NULL"),
            ("auth.metadata('clearance') = 3.0", "TRUE", "NULL"),
            ("auth.metadata('clearance') = '3'", "FALSE", "NULL"),
            ("auth.metadata('clearance') != '3'", "TRUE", "NULL"),
            ("auth.metadata('clearance') > 2", "TRUE", "NULL"),
            ("auth.metadata('clearance') > '2'", "NULL", "NULL"),
            ("auth.metadata('profile') is null", "TRUE", "TRUE"),
            ("auth.metadata('missing') in ('a', 'b')", "NULL", "NULL"),
            ("auth.metadata('clearance') not in (1, 2)", "TRUE", "NULL"),
            ("auth.metadata('department') not in ('x', auth.metadata('missing'))", "NULL", "NULL"),
            ("auth.metadata('department') in ('eng', auth.metadata('missing'))", "TRUE", "NULL"),
            ("'x' != 'y'", "TRUE", "TRUE"),
            ("'a' < 'b'", "TRUE", "TRUE"),
            ("1 = 1.0", "TRUE", "TRUE"),
            ("-2 < 1", "TRUE", "TRUE"),
            ("true = 1", "FALSE", "FALSE"),
            ("true < false", "NULL", "NULL"),
            ("auth.email() like '%@corp.example'", "TRUE", "NULL"),
            ("auth.email() like '%@CORP.example'", "FALSE", "NULL"),
            ("auth.email() ilike '%@CORP.example'", "TRUE", "NULL"),
            ("auth.email() not like 'ada_@%'", "TRUE", "NULL"),
            ("auth.metadata('clearance') like '3'", "NULL", "NULL"),
            ("now() > '2000-01-01T00:00:00Z'", "TRUE", "TRUE"),
            ("now() < '2000-01-01T00:00:00+01:00'", "FALSE", "FALSE"),
            ("auth.metadata('since') < now()", "TRUE", "NULL"),
            ("auth.metadata('tomorrow') < now()", "NULL", "NULL"),
        ];
        for (source, signed_in, anonymous_caller) in cases {
            assert_eq!(sqlite(source, &auth), format!("({signed_in})"), "{source} (signed in)");
            assert_eq!(sqlite(source, &anonymous()), format!("({anonymous_caller})"), "{source} (anonymous)");
        }
    }

    #[test]
    fn in_groups_binds_each_group_and_is_false_without_groups() {
        let no_groups = AuthContext { groups: vec![], ..user() };
        assert_eq!(compile("team in auth.groups()", &user(), Backend::Postgres), ("(\"team\" IN ($1, $2))".into(), 2));
        assert_eq!(compile("team in auth.groups()", &no_groups, Backend::Postgres), ("(FALSE)".into(), 0));
        assert_eq!(compile("team not in auth.groups()", &no_groups, Backend::Sqlite), ("(TRUE)".into(), 0));
        assert_eq!(compile("team not in auth.groups()", &user(), Backend::Sqlite), ("(\"team\" NOT IN (?, ?))".into(), 2));
        assert_eq!(sqlite("'admin' in auth.groups()", &no_groups), "(FALSE)");
        // Text PostgreSQL could not bind matches nothing instead of failing.
        let nul = AuthContext { groups: vec!["a\0".into(), "core".into()], uid: Some("x\0".into()), ..user() };
        assert_eq!(compile("team in auth.groups() or author = auth.uid()", &nul, Backend::Postgres), ("(\"team\" IN ($1) OR \"author\" = NULL)".into(), 1));
    }

    #[test]
    fn like_is_case_sensitive_and_ilike_is_not_on_both_backends() {
        let matches = [
            ("abc", "a%", false, true),
            ("ABC", "a%", false, false),
            ("ABC", "a%", true, true),
            ("abc", "a_c", false, true),
            ("éa", "_a", false, true),
            ("ÉA", "éa", true, true),
            ("100%", "100\\%", false, true),
            ("1000", "100\\%", false, false),
            ("a_b", "a\\_b", false, true),
            ("axb", "a\\_b", false, false),
            ("", "%", false, true),
            ("", "_", false, false),
            ("abc", "abc%", false, true),
            ("abcd", "abc", false, false),
            ("mississippi", "%iss%pi", false, true),
        ];
        for (text, pattern, insensitive, expected) in matches {
            assert_eq!(like_matches(text, pattern, insensitive), expected, "{text:?} like {pattern:?} ({insensitive})");
        }
        // Backtracking is bounded: this returns at once.
        assert!(!like_matches(&"a".repeat(4000), &"%a".repeat(1000).replace("%a%a", "%a%b"), false));

        let mut sql = SqlBuilder::new(Backend::Sqlite);
        parse("email like '%\\_x*'").compile(&user(), &mut sql);
        assert_eq!(sql.build().values.expect("values").0, vec![sea_orm::Value::String(Some("*_x[*]".into()))]);
        let mut sql = SqlBuilder::new(Backend::Postgres);
        parse("email not ilike '%\\_x*'").compile(&user(), &mut sql);
        assert_eq!(sql.sql(), "(NOT (\"email\" ILIKE $1 ESCAPE '\\'))");
        assert_eq!(sql.build().values.expect("values").0, vec![sea_orm::Value::String(Some("%\\_x*".into()))]);
        assert_eq!(sqlite("email not ilike 'A%'", &user()), "(NOT (lower(\"email\") LIKE lower(?) ESCAPE '\\'))");
    }

    #[test]
    fn type_mismatches_are_refused_when_the_policy_is_stored() {
        let cases = [
            ("count = 'x'", "`count` is an integer column: expected an integer, got the string \"x\"", 9),
            ("level = 3.5", "expected an integer", 9),
            ("published = 1", "expected true or false", 13),
            ("'x' = count", "`count` is an integer column", 1),
            ("expires_at > 'tomorrow'", "expected an RFC 3339 timestamp", 14),
            ("owner_id = 'not-a-uuid'", "expected a UUID", 12),
            ("price like 'x%'", "`like` applies to text; `price` is a real column", 1),
            ("owner_id like 'x%'", "`owner_id` is a uuid column", 1),
            ("5 like '5'", "`like` applies to text, not to 5", 1),
            ("status like 'abc\\'", "lone `\\`", 13),
            ("data < 'x'", "`data` is a json column", 6),
            ("data = '{}'", "`data` is a json column", 6),
            ("avatar < 'AAE='", "`<` does not apply to `avatar`, a blob column", 8),
            ("published < true", "`<` does not apply to `published`, a boolean column", 11),
            ("published >= archived", "`>=` does not apply", 11),
            ("status", "`status` is a text column, not a condition", 1),
            ("published and level", "`level` is an integer column, not a condition", 15),
            ("auth.uid()", "auth.uid() is not a condition", 1),
            ("42", "42 is not a condition", 1),
            ("level = status", "`level` is an integer column and `status` a text column", 7),
            ("status > now()", "now() is a timestamp; `status` is a text column", 10),
            ("now() = 'soon'", "now() compares with timestamps", 9),
            ("now() = auth.uid()", "now() compares with timestamps", 9),
            ("level = auth.uid()", "auth.uid() is text; `level` is an integer column", 9),
            ("owner_id = auth.email()", "auth.email() is text; `owner_id` is a uuid column", 12),
            ("level in auth.groups()", "groups are text; `level` is an integer column", 1),
            ("status in ('open', 1)", "expected a string, got the number 1", 20),
            ("status in (level)", "a list holds values, not columns", 12),
            ("status in ()", "an empty list", 12),
            ("status in auth.uid()", "`in` takes a list", 11),
            ("auth.groups() = 'x'", "auth.groups() is a list", 1),
            ("'x' = auth.groups()", "auth.groups() is a list", 7),
            ("auth.groups() is null", "auth.groups() is a list", 1),
            ("nope = 1", "unknown column `nope`", 1),
            ("x = null", "null is only written as `is null`", 5),
            ("x is nul", "expected `null` or `not null`", 6),
            ("status = 'a' status = 'b'", "expected `and`, `or` or the end of the policy, found `status`", 14),
            ("status == 'x'", "expected a column, a value or a function, found `=`", 9),
            ("status = and", "found `and`", 10),
            ("auth.uid", "expected `(`", 9),
            ("auth.metadata() = 'x'", "expected a key in single quotes", 15),
            ("auth.metadata('k", "unterminated string", 15),
            ("auth.metadata('a', 'b') = 'x'", "expected `)`", 18),
            ("status not like level", "a pattern in single quotes", 17),
            (")", "expected a column, a value or a function, found `)`", 1),
            ("true)", "closes nothing", 5),
            ("(true", "`)` to close the `(` at character 1", 6),
            ("9223372036854775808 = 1", "out of range", 1),
        ];
        for (source, message, position) in cases {
            let e = error(source);
            assert!(e.message.contains(message), "{source:?}: {e}");
            assert_eq!(e.position, Some(position), "{source:?}: {e}");
        }
        assert_eq!(error("").position, None);
        assert_eq!(error(" \n\t").message, "the policy is empty: write a condition like `owner_id = auth.uid()`, or `true`");
    }

    #[test]
    fn limits_are_inclusive() {
        let longest = format!("true{}", " ".repeat(MAX_POLICY_CHARS - 4));
        assert!(PolicyExpr::parse(&longest, &table).is_ok());
        assert!(PolicyExpr::parse(&format!("{longest} "), &table).is_err());
        let deepest = format!("{}true{}", "(".repeat(MAX_POLICY_DEPTH), ")".repeat(MAX_POLICY_DEPTH));
        assert!(PolicyExpr::parse(&deepest, &table).is_ok());
        assert!(PolicyExpr::parse(&format!("({deepest})"), &table).is_err());
        // Long flat chains are not nesting.
        let chain = vec!["a = 1"; 400].join(" or ");
        assert_eq!(compile(&chain, &user(), Backend::Sqlite).1, 400);
    }

    #[test]
    fn errors_read_as_a_sentence_with_the_position() {
        assert_eq!(error("nope = 1").to_string(), "unknown column `nope` (at character 1)");
        assert_eq!(error("").to_string(), "the policy is empty: write a condition like `owner_id = auth.uid()`, or `true`");
    }

    #[test]
    fn display_is_normalized_and_parses_back_to_the_same_policy() {
        let cases = [
            ("STATUS_X", ""),
            ("status IN ('a') AND NOT published Or x IS NOT NULL", "status in ('a') and not published or x is not null"),
            ("(a = 1 or b <> 2) and (x = 'it''s')", "(a = 1 or b != 2) and x = 'it''s'"),
            ("((a = 1 or b = 2) or x = 'y')", "a = 1 or b = 2 or x = 'y'"),
            ("not (a = 1 and b = 2)", "not (a = 1 and b = 2)"),
            ("Auth.UID() IS NULL and auth.Metadata('k''s') = -3.5e2", "auth.uid() is null and auth.metadata('k''s') = -350.0"),
            ("team NOT IN auth.groups() or email NOT ILIKE '%x'", "team not in auth.groups() or email not ilike '%x'"),
            ("expires_at > NOW() and TRUE", "expires_at > now() and true"),
        ];
        for (source, normalized) in cases.into_iter().skip(1) {
            let policy = parse(source);
            assert_eq!(policy.to_string(), normalized);
            assert_eq!(policy.source(), source);
            assert_eq!(parse(normalized).root, policy.root, "{source}");
        }
        assert!(error(cases[0].0).message.contains("lower case"));
    }

    #[test]
    fn columns_lists_each_column_read_once() {
        let policy = parse("owner_id = auth.uid() or (published and status in ('a')) or owner_id = editor_id or a <> b");
        assert_eq!(policy.columns(), ["owner_id", "published", "status", "editor_id", "a", "b"]);
        assert!(parse("auth.role() = 'service'").columns().is_empty());
    }

    /// xorshift: reproducible without a dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }
    }

    /// A random well-formed policy over the test table.
    fn random_policy(rng: &mut Rng, depth: usize) -> String {
        const CONDITIONS: [&str; 12] = [
            "owner_id = auth.uid()", "status in ('a', 'it''s')", "published", "x is null", "email like '%\\_a'", "team not in auth.groups()",
            "level <= auth.metadata('clearance')", "expires_at > now()", "'admin' in auth.groups()", "auth.role() != 'service'", "a <> b", "false",
        ];
        match rng.below(if depth > 3 { 1 } else { 4 }) {
            0 => CONDITIONS[rng.below(CONDITIONS.len())].to_owned(),
            1 => format!("not {}", random_policy(rng, depth + 1)),
            2 => format!("({} and {})", random_policy(rng, depth + 1), random_policy(rng, depth + 1)),
            _ => format!("{} or {}", random_policy(rng, depth + 1), random_policy(rng, depth + 1)),
        }
    }

    /// Compiles on both backends for both callers, and checks the text.
    fn compile_everywhere(policy: &PolicyExpr) {
        for auth in [user(), anonymous()] {
            for backend in [Backend::Sqlite, Backend::Postgres] {
                let mut sql = SqlBuilder::new(backend);
                policy.compile(&auth, &mut sql);
                assert_sql_is_ours(sql.sql());
                assert!(sql.sql().starts_with('(') && sql.sql().ends_with(')'));
            }
        }
    }

    #[test]
    fn random_input_never_panics_and_what_parses_round_trips() {
        const NOISE: [&str; 44] = [
            "owner_id", "status", "level", "published", "data", "auth", ".", "uid", "(", ")", "'a'", "'", "1", "-2.5", "=", "<", ">=",
            "!=", "!", "and", "or", "not", "in", "is", "null", "like", "ilike", "auth.uid()", "auth.groups()", "auth.metadata('k')",
            "now()", ",", ";", "--", "/*", "\"", "\u{e9}", "\0", " ", "true", "'%_\\'", "\\", "NOT", "1e400",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200 {
            // Token soup: almost never valid, must never panic.
            let soup: Vec<&str> = (0..1 + rng.below(12)).map(|_| NOISE[rng.below(NOISE.len())]).collect();
            let soup = soup.join(if rng.below(2) == 0 { " " } else { "" });
            if let Ok(policy) = PolicyExpr::parse(&soup, &table) {
                compile_everywhere(&policy);
            }
            // A valid policy parses, compiles, and its normal form is stable.
            let source = random_policy(&mut rng, 0);
            let policy = parse(&source);
            compile_everywhere(&policy);
            let normalized = policy.to_string();
            assert_eq!(parse(&normalized).root, policy.root, "{source}");
            assert_eq!(parse(&normalized).to_string(), normalized);
            // The same with one noise token spliced in: an error or a policy.
            let mut at = rng.below(source.len() + 1);
            while !source.is_char_boundary(at) {
                at -= 1;
            }
            let spliced = format!("{}{}{}", &source[..at], NOISE[rng.below(NOISE.len())], &source[at..]);
            if let Ok(policy) = PolicyExpr::parse(&spliced, &table) {
                compile_everywhere(&policy);
                assert_eq!(parse(&policy.to_string()).root, policy.root, "{spliced}");
            }
        }
    }
}
