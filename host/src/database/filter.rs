//! A function's filters (`eq`, `in`, `or(...)`...) as SQL over one table.
//!
//! Invariant: a column is looked up in the table's definition before its
//! name is written, and every operand is bound converted to that column's
//! type; an `or` / `not` stays inside its own parentheses, so the caller
//! (`query.rs`) can AND the table's policies around the whole.

use super::query::QueryError;
use super::schema::TableDefinition;
use super::sql::{ColumnType, SqlBuilder, ValueError};
use serde::Deserialize;
use serde_json::Value as Json;

/// Deepest nesting of `or` / `and` / `not` filters.
const MAX_FILTER_DEPTH: usize = 8;
/// Most filter conditions in one query.
const MAX_FILTERS: usize = 200;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
}

/// One filter: a condition on a column, or a combination of filters.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    /// Any of them.
    Or {
        /// Alternatives.
        or: Vec<Filter>,
    },
    /// All of them.
    And {
        /// Conditions.
        and: Vec<Filter>,
    },
    /// Not this one.
    Not {
        /// The negated filter.
        not: Box<Filter>,
    },
    /// `column op value`.
    Condition {
        /// Column name.
        column: String,
        /// Operator.
        op: FilterOp,
        /// Operand (an array for `in`; null/true/false for `is`).
        #[serde(default)]
        value: Json,
    },
}

/// Filters compiled against one table.
pub struct FilterSql<'a> {
    /// The table the filters read.
    pub table: &'a TableDefinition,
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::new("invalid-query", message)
}

impl FilterSql<'_> {
    fn name(&self) -> &str {
        &self.table.name
    }

    fn column_type(&self, column: &str) -> Result<ColumnType, QueryError> {
        self.table.column_type(column).ok_or_else(|| {
            QueryError::new("unknown-column", format!("table {} has no column {column:?}", self.name()))
        })
    }

    /// Appends `filters` joined by `joiner`, or `empty` when there are none.
    pub fn push_filters(&self, sql: &mut SqlBuilder, filters: &[Filter], joiner: &str, empty: &str) -> Result<(), QueryError> {
        if filters.is_empty() {
            sql.push(empty);
        }
        for (i, filter) in filters.iter().enumerate() {
            if i > 0 {
                sql.push(joiner);
            }
            self.push_filter(sql, filter)?;
        }
        Ok(())
    }

    fn push_filter(&self, sql: &mut SqlBuilder, filter: &Filter) -> Result<(), QueryError> {
        match filter {
            Filter::Or { or } => {
                sql.push("(");
                self.push_filters(sql, or, " OR ", "FALSE")?;
                sql.push(")");
            }
            Filter::And { and } => {
                sql.push("(");
                self.push_filters(sql, and, " AND ", "TRUE")?;
                sql.push(")");
            }
            Filter::Not { not } => {
                sql.push("(NOT ");
                self.push_filter(sql, not)?;
                sql.push(")");
            }
            Filter::Condition { column, op, value } => self.push_condition(sql, column, *op, value)?,
        }
        Ok(())
    }

    fn push_condition(&self, sql: &mut SqlBuilder, column: &str, op: FilterOp, value: &Json) -> Result<(), QueryError> {
        let ty = self.column_type(column)?;
        let bad_value = |e: ValueError| {
            QueryError::new("invalid-value", format!("filter on {}.{column}: {e}", self.name()))
        };
        let comparison = match op {
            FilterOp::Eq => "=",
            FilterOp::Neq => "<>",
            FilterOp::Gt => ">",
            FilterOp::Gte => ">=",
            FilterOp::Lt => "<",
            FilterOp::Lte => "<=",
            FilterOp::Like | FilterOp::Ilike => {
                let Some(pattern) = value.as_str() else {
                    return Err(QueryError::new("invalid-value", format!("like on {column} needs a string pattern")));
                };
                if ty != ColumnType::Text {
                    return Err(invalid(format!("like works on text columns; {column} is {}", ty.name())));
                }
                sql.push("(");
                sql.push_like(column, pattern, op == FilterOp::Ilike);
                sql.push(")");
                return Ok(());
            }
            FilterOp::In => {
                let Some(items) = value.as_array() else {
                    return Err(QueryError::new("invalid-value", format!("in on {column} needs an array of values")));
                };
                if items.is_empty() {
                    sql.push("FALSE");
                    return Ok(());
                }
                sql.push_identifier(column).push(" IN (");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    if item.is_null() {
                        return Err(QueryError::new("invalid-value", format!("in on {column}: null never matches; use .is(column, null)")));
                    }
                    sql.push_value(ty, item).map_err(bad_value)?;
                }
                sql.push(")");
                return Ok(());
            }
            FilterOp::Is => {
                sql.push_identifier(column);
                match value {
                    Json::Null => sql.push(" IS NULL"),
                    Json::Bool(b) if ty == ColumnType::Boolean => sql.push(if *b { " = TRUE" } else { " = FALSE" }),
                    _ => return Err(QueryError::new("invalid-value", format!("is on {column} takes null (or true/false on a boolean column)"))),
                };
                return Ok(());
            }
        };
        if value.is_null() {
            return Err(QueryError::new("invalid-value", format!("comparing {column} with null never matches; use .is({column:?}, null)")));
        }
        if comparison != "=" && comparison != "<>" && !ty.is_ordered() {
            return Err(invalid(format!("{column} is {}, which has no order; use eq or neq", ty.name())));
        }
        sql.push_identifier(column).push(" ").push(comparison).push(" ");
        sql.push_value(ty, value).map_err(bad_value)?;
        Ok(())
    }

}

/// Checks the nesting depth and the number of conditions.
pub fn count_filters(filter: &Filter, depth: usize, count: &mut usize) -> Result<(), QueryError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid(format!("filters are nested more than {MAX_FILTER_DEPTH} levels deep")));
    }
    *count += 1;
    if *count > MAX_FILTERS {
        return Err(invalid(format!("a query may have at most {MAX_FILTERS} filter conditions")));
    }
    match filter {
        Filter::Or { or: list } | Filter::And { and: list } => {
            list.iter().try_for_each(|f| count_filters(f, depth + 1, count))
        }
        Filter::Not { not } => count_filters(not, depth + 1, count),
        Filter::Condition { .. } => Ok(()),
    }
}
