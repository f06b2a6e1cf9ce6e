//! The policy language's lexer, parser and checks against the table's
//! columns: everything [`super::PolicyExpr::parse`] refuses is refused here,
//! with the character position of the mistake.

use super::compile::like_tokens;
use super::*;

// ---------------------------------------------------------------- tokens ---

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character position.
    pub(super) pos: usize,
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
pub(super) fn lex(source: &str) -> Vec<Token> {
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

pub(super) struct Parser<'a> {
    pub(super) tokens: Vec<Token>,
    pub(super) at: usize,
    pub(super) depth: usize,
    pub(super) columns: &'a dyn Fn(&str) -> Option<ColumnType>,
}

const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "is", "like", "ilike", "null"];

impl Parser<'_> {
    pub(super) fn peek(&self) -> &Token {
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
    pub(super) fn unexpected(&self, expected: &str) -> PolicyError {
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

    pub(super) fn or(&mut self) -> Result<Node, PolicyError> {
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
