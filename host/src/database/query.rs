//! A function's query plan (built by `ctx.db` in JS, sent as JSON), checked
//! against the catalog and run with the caller's row-level security.
//!
//! Invariants:
//! - the table's policies for the operation are ANDed, in their own
//!   parentheses, with the function's filters: no filter (an `or`, an `in`
//!   list, a `like '%'`) can widen what the policies allow;
//! - rows an insert, update or upsert writes are re-read under the
//!   operation's check policies before the statement's savepoint is
//!   released; one failing row undoes the whole statement;
//! - every column name is looked up in the table's definition before it is
//!   written into SQL, and every value is a bound parameter of that
//!   column's type.

use super::policy::{AuthContext, PolicyExpr};
use super::filter::{Filter, FilterSql, count_filters};
use super::sql::{Backend, ColumnType, SqlBuilder, decode_column};
use super::{AppTable, Catalog, database_message, write_transaction};
use super::schema::ColumnDefault;
use sea_orm::{ConnectionTrait, DbErr, TransactionSession, TransactionTrait};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};


/// Why a query was refused or failed, as the function sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct QueryError {
    /// Stable code: `invalid-query`, `unknown-table`, `unknown-column`,
    /// `invalid-value`, `permission-denied`, `check-violation`,
    /// `constraint-violation`, `too-many-rows`, `not-single`, `database-error`.
    pub code: &'static str,
    /// For a person.
    pub message: String,
}

impl QueryError {
    /// An error with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        QueryError { code, message: message.into() }
    }
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::new("invalid-query", message)
}

impl From<DbErr> for QueryError {
    fn from(error: DbErr) -> Self {
        let message = database_message(&error);
        let lower = message.to_lowercase();
        let code = if ["unique", "foreign key", "not null", "not-null", "constraint", "violates"].iter().any(|k| lower.contains(k)) {
            "constraint-violation"
        } else {
            "database-error"
        };
        QueryError::new(code, message)
    }
}

/// What the query does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Select,
    Insert,
    Update,
    Upsert,
    Delete,
}

/// Sort order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    column: String,
    #[serde(default = "yes")]
    ascending: bool,
    #[serde(default)]
    nulls_first: Option<bool>,
}

fn yes() -> bool {
    true
}

/// `.single()` or `.maybeSingle()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Single {
    /// Exactly one row.
    One,
    /// Zero or one row.
    Maybe,
}

/// A query as the JS builder sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    table: String,
    action: Action,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    order: Vec<Order>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    count: Option<String>,
    #[serde(default)]
    head: bool,
    #[serde(default)]
    single: Option<Single>,
    #[serde(default)]
    rows: Option<Vec<Map<String, Json>>>,
    #[serde(default)]
    patch: Option<Map<String, Json>>,
    #[serde(default)]
    on_conflict: Option<Vec<String>>,
    #[serde(default)]
    ignore_duplicates: bool,
    #[serde(default)]
    returning: bool,
}

impl Plan {
    /// Parses the JSON a function sent.
    pub fn parse(json: &str) -> Result<Plan, QueryError> {
        serde_json::from_str(json).map_err(|e| invalid(format!("the query plan is malformed: {e}")))
    }

    /// The table it names.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SQL operation it runs, as traces name it.
    pub fn operation(&self) -> &'static str {
        match self.action {
            Action::Select => "SELECT",
            Action::Insert => "INSERT",
            Action::Update => "UPDATE",
            Action::Upsert => "UPSERT",
            Action::Delete => "DELETE",
        }
    }
}

/// Who runs a query, and with what limits.
#[derive(Debug, Clone)]
pub struct QueryContext {
    /// The caller, as policies see them.
    pub auth: AuthContext,
    /// The function runs with the service role: policies do not apply.
    pub bypass_rls: bool,
    /// Most rows one query may return or change.
    pub max_rows: usize,
}

/// The rows and count a query produced, as the JSON the function receives.
/// `conn` is the pool, or the function's open transaction when `nested`.
pub async fn execute<C>(
    conn: &C,
    nested: bool,
    backend: Backend,
    catalog: &Catalog,
    plan: Plan,
    context: &QueryContext,
) -> Result<Json, QueryError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let table = catalog
        .table(&plan.table)
        .ok_or_else(|| QueryError::new("unknown-table", format!("there is no table named {:?}", plan.table)))?
        .clone();
    let query = Query { table: &table, plan: &plan, context, backend };
    query.check_shape()?;
    match plan.action {
        Action::Select => query.select(conn).await,
        Action::Insert | Action::Update | Action::Upsert | Action::Delete => {
            // Writes and their policy checks commit together or not at all,
            // inside the function's transaction when it has one.
            let savepoint = if nested { conn.begin().await? } else { conn.begin_with_options(write_transaction()).await? };
            let result = match plan.action {
                Action::Insert => query.insert(&savepoint).await,
                Action::Update => query.update(&savepoint).await,
                Action::Delete => query.delete(&savepoint).await,
                _ => query.upsert(&savepoint).await,
            };
            match result {
                Ok(value) => {
                    savepoint.commit().await?;
                    Ok(value)
                }
                Err(error) => {
                    savepoint.rollback().await?;
                    Err(error)
                }
            }
        }
    }
}

struct Query<'a> {
    table: &'a AppTable,
    plan: &'a Plan,
    context: &'a QueryContext,
    backend: Backend,
}

impl Query<'_> {
    fn name(&self) -> &str {
        &self.table.definition.name
    }

    fn column_type(&self, column: &str) -> Result<ColumnType, QueryError> {
        self.table.definition.column_type(column).ok_or_else(|| {
            QueryError::new("unknown-column", format!("table {} has no column {column:?}", self.name()))
        })
    }

    fn check_shape(&self) -> Result<(), QueryError> {
        let plan = self.plan;
        let action = format!("{:?}", plan.action).to_lowercase();
        let only_for = |given: bool, what: &str, allowed: &[Action]| {
            if given && !allowed.contains(&plan.action) {
                Err(invalid(format!("{what} does not apply to {action}")))
            } else {
                Ok(())
            }
        };
        only_for(plan.rows.is_some(), "rows", &[Action::Insert, Action::Upsert])?;
        only_for(plan.patch.is_some(), "a patch", &[Action::Update])?;
        only_for(!plan.filters.is_empty(), "filters", &[Action::Select, Action::Update, Action::Delete])?;
        only_for(!plan.order.is_empty() || plan.limit.is_some() || plan.offset.is_some(), "order, limit and range", &[Action::Select])?;
        only_for(plan.count.is_some() || plan.head, "count", &[Action::Select])?;
        only_for(plan.on_conflict.is_some() || plan.ignore_duplicates, "onConflict", &[Action::Upsert])?;
        if let Some(count) = &plan.count
            && count != "exact"
        {
            return Err(invalid(format!("count {count:?} is not supported; use \"exact\"")));
        }
        if matches!(plan.action, Action::Update | Action::Delete) && plan.filters.is_empty() {
            return Err(invalid(format!(
                "{action} without a filter would change every row of {}; add a filter such as .eq(\"id\", id)",
                self.name()
            )));
        }
        for column in plan.columns.iter().flatten() {
            self.column_type(column)?;
        }
        let mut conditions = 0;
        for filter in &plan.filters {
            count_filters(filter, 1, &mut conditions)?;
        }
        Ok(())
    }

    /// The policies for this operation, or None when they do not apply.
    fn policies(&self, pick: impl Fn(&super::CompiledPolicies) -> &Vec<PolicyExpr>, operation: &str) -> Result<Option<&[PolicyExpr]>, QueryError> {
        if self.context.bypass_rls || !self.table.rls_enabled {
            return Ok(None);
        }
        let policies = pick(&self.table.compiled);
        if policies.is_empty() {
            return Err(QueryError::new(
                "permission-denied",
                format!("row-level security on table {} has no {operation} policy, so {operation} is denied", self.name()),
            ));
        }
        Ok(Some(policies))
    }

    fn push_policies(&self, sql: &mut SqlBuilder, policies: Option<&[PolicyExpr]>) {
        let Some(policies) = policies else {
            sql.push("TRUE");
            return;
        };
        sql.push("(");
        for (i, policy) in policies.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            policy.compile(&self.context.auth, sql);
        }
        sql.push(")");
    }

    /// ` WHERE (policies) AND (filters)`.
    fn push_where(&self, sql: &mut SqlBuilder, policies: Option<&[PolicyExpr]>) -> Result<(), QueryError> {
        sql.push(" WHERE ");
        self.push_policies(sql, policies);
        sql.push(" AND (");
        FilterSql { table: &self.table.definition }.push_filters(sql, &self.plan.filters, " AND ", "TRUE")?;
        sql.push(")");
        Ok(())
    }

    /// The columns to return: the plan's, or all of them.
    fn output_columns(&self) -> Vec<(&str, ColumnType)> {
        match &self.plan.columns {
            Some(columns) => columns.iter().map(|c| (c.as_str(), self.table.definition.column_type(c).expect("checked"))).collect(),
            None => self.table.definition.columns.iter().map(|c| (c.name(), c.column_type())).collect(),
        }
    }

    fn push_column_list(&self, sql: &mut SqlBuilder, columns: &[(&str, ColumnType)]) {
        for (i, (name, ty)) in columns.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_select_column(name, *ty);
        }
    }

    async fn fetch(&self, conn: &impl ConnectionTrait, sql: SqlBuilder, columns: &[(&str, ColumnType)]) -> Result<Vec<Json>, QueryError> {
        let rows = conn.query_all_raw(sql.build()).await?;
        rows.iter()
            .map(|row| {
                let mut object = Map::with_capacity(columns.len());
                for (name, ty) in columns {
                    object.insert((*name).to_owned(), decode_column(row, name, *ty, self.backend)?);
                }
                Ok(Json::Object(object))
            })
            .collect::<Result<_, DbErr>>()
            .map_err(QueryError::from)
    }

    fn too_many_rows(&self) -> QueryError {
        QueryError::new(
            "too-many-rows",
            format!(
                "the query on {} matched more than {} rows, the most one query may return or change; add .limit() or narrower filters",
                self.name(),
                self.context.max_rows
            ),
        )
    }

    fn shape_result(&self, rows: Vec<Json>, count: Option<u64>) -> Result<Json, QueryError> {
        let data = match self.plan.single {
            _ if self.plan.head => Json::Null,
            None => Json::Array(rows),
            Some(single) => match rows.len() {
                1 => rows.into_iter().next().expect("one row"),
                0 if single == Single::Maybe => Json::Null,
                n => {
                    return Err(QueryError::new(
                        "not-single",
                        format!("expected {} row, but the query on {} returned {n}", if single == Single::One { "exactly one" } else { "at most one" }, self.name()),
                    ));
                }
            },
        };
        Ok(json!({ "data": data, "count": count }))
    }

    async fn select(&self, conn: &impl ConnectionTrait) -> Result<Json, QueryError> {
        let policies = self.policies(|p| &p.select, "select")?;
        let count = if self.plan.count.is_some() {
            let mut sql = SqlBuilder::new(self.backend);
            sql.push("SELECT COUNT(*) AS n FROM ").push_table(self.name());
            self.push_where(&mut sql, policies)?;
            let row = conn.query_one_raw(sql.build()).await?.ok_or_else(|| invalid("count returned nothing"))?;
            Some(row.try_get::<i64>("", "n")?.max(0) as u64)
        } else {
            None
        };
        if self.plan.head {
            return self.shape_result(Vec::new(), count);
        }
        let columns = self.output_columns();
        let mut sql = SqlBuilder::new(self.backend);
        sql.push("SELECT ");
        self.push_column_list(&mut sql, &columns);
        sql.push(" FROM ").push_table(self.name());
        self.push_where(&mut sql, policies)?;
        for (i, order) in self.plan.order.iter().enumerate() {
            let ty = self.column_type(&order.column)?;
            if ty == ColumnType::Json || ty == ColumnType::Blob {
                return Err(invalid(format!("cannot order by {}, a {} column", order.column, ty.name())));
            }
            sql.push(if i == 0 { " ORDER BY " } else { ", " }).push_identifier(&order.column);
            sql.push(if order.ascending { " ASC" } else { " DESC" });
            match order.nulls_first {
                Some(true) => sql.push(" NULLS FIRST"),
                Some(false) => sql.push(" NULLS LAST"),
                None => &mut sql,
            };
        }
        let max = self.context.max_rows as u64;
        // One row more than allowed tells "exactly the maximum" from "more".
        let fetch = match (self.plan.single, self.plan.limit) {
            (Some(_), _) => 2,
            (None, Some(limit)) if limit <= max => limit,
            _ => max + 1,
        };
        sql.push(" LIMIT ").push_integer(fetch as i64);
        if let Some(offset) = self.plan.offset {
            sql.push(" OFFSET ").push_integer(i64::try_from(offset).map_err(|_| invalid("offset is too large"))?);
        }
        let rows = self.fetch(conn, sql, &columns).await?;
        if rows.len() as u64 > max {
            return Err(self.too_many_rows());
        }
        self.shape_result(rows, count)
    }

    async fn delete(&self, conn: &impl ConnectionTrait) -> Result<Json, QueryError> {
        let policies = self.policies(|p| &p.delete, "delete")?;
        let columns = self.output_columns();
        let mut sql = SqlBuilder::new(self.backend);
        sql.push("DELETE FROM ").push_table(self.name());
        self.push_where(&mut sql, policies)?;
        sql.push(" RETURNING ");
        self.push_column_list(&mut sql, &columns);
        let rows = self.fetch(conn, sql, &columns).await?;
        if rows.len() > self.context.max_rows {
            return Err(self.too_many_rows());
        }
        self.mutation_result(rows)
    }

    fn mutation_result(&self, rows: Vec<Json>) -> Result<Json, QueryError> {
        let count = rows.len() as u64;
        if self.plan.returning {
            self.shape_result(rows, Some(count))
        } else {
            Ok(json!({ "data": null, "count": count }))
        }
    }

    /// Columns to return from a write: what was asked plus the primary key
    /// (needed to check the written rows).
    fn returned_columns(&self) -> Vec<(&str, ColumnType)> {
        let mut columns = self.output_columns();
        for pk in self.table.definition.primary_key() {
            if !columns.iter().any(|(name, _)| *name == pk.name()) {
                columns.push((pk.name(), pk.column_type()));
            }
        }
        columns
    }

    /// The row with defaults edgefn fills in (the database cannot know the
    /// caller), every key checked against the table.
    fn complete_row(&self, row: &Map<String, Json>) -> Result<Vec<(String, ColumnType, Json)>, QueryError> {
        let mut values = Vec::with_capacity(row.len() + 2);
        for (column, value) in row {
            values.push((column.clone(), self.column_type(column)?, value.clone()));
        }
        for column in &self.table.definition.columns {
            if row.contains_key(column.name()) {
                continue;
            }
            let auth = &self.context.auth;
            let value = match &column.default {
                Some(ColumnDefault::AuthUid) => auth.uid.clone().map(Json::String).unwrap_or(Json::Null),
                Some(ColumnDefault::AuthEmail) => auth.email.clone().map(Json::String).unwrap_or(Json::Null),
                Some(ColumnDefault::RandomUuid) => Json::String(uuid::Uuid::now_v7().to_string()),
                _ => continue,
            };
            values.push((column.name().to_owned(), column.column_type(), value));
        }
        Ok(values)
    }

    async fn insert_row(&self, conn: &impl ConnectionTrait, row: &Map<String, Json>) -> Result<Json, QueryError> {
        let values = self.complete_row(row)?;
        let columns = self.returned_columns();
        let mut sql = SqlBuilder::new(self.backend);
        sql.push("INSERT INTO ").push_table(self.name());
        if values.is_empty() {
            sql.push(" DEFAULT VALUES");
        } else {
            sql.push(" (");
            for (i, (column, _, _)) in values.iter().enumerate() {
                sql.push(if i == 0 { "" } else { ", " }).push_identifier(column);
            }
            sql.push(") VALUES (");
            for (i, (column, ty, value)) in values.iter().enumerate() {
                sql.push(if i == 0 { "" } else { ", " });
                sql.push_value(*ty, value).map_err(|e| {
                    QueryError::new("invalid-value", format!("{}.{column}: {e}", self.name()))
                })?;
            }
            sql.push(")");
        }
        sql.push(" RETURNING ");
        self.push_column_list(&mut sql, &columns);
        let mut rows = self.fetch(conn, sql, &columns).await?;
        rows.pop().ok_or_else(|| QueryError::new("database-error", "the insert returned no row"))
    }

    async fn insert(&self, conn: &impl ConnectionTrait) -> Result<Json, QueryError> {
        let check = self.policies(|p| &p.insert_check, "insert")?;
        let rows = self.rows()?;
        let mut written = Vec::with_capacity(rows.len());
        for row in rows {
            written.push(self.insert_row(conn, row).await?);
        }
        self.check_written(conn, &written, check, "insert").await?;
        self.mutation_result(self.strip_unrequested(written))
    }

    fn rows(&self) -> Result<&Vec<Map<String, Json>>, QueryError> {
        let rows = self.plan.rows.as_ref().ok_or_else(|| invalid("an insert needs rows"))?;
        if rows.is_empty() {
            return Err(invalid("an insert needs at least one row"));
        }
        if rows.len() > self.context.max_rows {
            return Err(self.too_many_rows());
        }
        Ok(rows)
    }

    /// Drops the primary key columns added only for checking.
    fn strip_unrequested(&self, rows: Vec<Json>) -> Vec<Json> {
        let Some(requested) = &self.plan.columns else { return rows };
        rows.into_iter()
            .map(|row| match row {
                Json::Object(mut object) => {
                    object.retain(|key, _| requested.contains(key));
                    Json::Object(object)
                }
                other => other,
            })
            .collect()
    }

    /// Verifies every written row against the check policies; any row that
    /// fails (or evaluates to unknown) fails the statement.
    async fn check_written(
        &self,
        conn: &impl ConnectionTrait,
        rows: &[Json],
        check: Option<&[PolicyExpr]>,
        operation: &str,
    ) -> Result<(), QueryError> {
        let Some(check) = check else { return Ok(()) };
        let pk = self.table.definition.primary_key();
        for chunk in rows.chunks(100) {
            let mut sql = SqlBuilder::new(self.backend);
            sql.push("SELECT COUNT(*) AS n FROM ").push_table(self.name()).push(" WHERE ");
            self.push_policies(&mut sql, Some(check));
            sql.push(" AND (");
            for (i, row) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { " OR (" });
                for (j, column) in pk.iter().enumerate() {
                    sql.push(if j == 0 { "" } else { " AND " }).push_identifier(column.name()).push(" = ");
                    sql.push_value(column.column_type(), &row[column.name()])
                        .map_err(|e| QueryError::new("database-error", e.to_string()))?;
                }
                sql.push(")");
            }
            sql.push(")");
            let row = conn.query_one_raw(sql.build()).await?.ok_or_else(|| invalid("check returned nothing"))?;
            let passing = row.try_get::<i64>("", "n")?;
            if passing != chunk.len() as i64 {
                return Err(QueryError::new(
                    "check-violation",
                    format!(
                        "the new row violates row-level security on table {}: no {operation} policy's check allows it",
                        self.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn update(&self, conn: &impl ConnectionTrait) -> Result<Json, QueryError> {
        let patch = self.plan.patch.as_ref().filter(|p| !p.is_empty()).ok_or_else(|| invalid("an update needs a non-empty patch"))?;
        let written = self.update_where(conn, patch, None).await?;
        self.mutation_result(self.strip_unrequested(written))
    }

    /// `UPDATE ... SET patch WHERE (using) AND (filters or the given key)`,
    /// then the check; returns the written rows.
    async fn update_where(
        &self,
        conn: &impl ConnectionTrait,
        patch: &Map<String, Json>,
        key: Option<&[(String, ColumnType, Json)]>,
    ) -> Result<Vec<Json>, QueryError> {
        let using = self.policies(|p| &p.update_using, "update")?;
        let check = self.policies(|p| &p.update_check, "update")?;
        let columns = self.returned_columns();
        let mut sql = SqlBuilder::new(self.backend);
        sql.push("UPDATE ").push_table(self.name()).push(" SET ");
        for (i, (column, value)) in patch.iter().enumerate() {
            let ty = self.column_type(column)?;
            sql.push(if i == 0 { "" } else { ", " }).push_identifier(column).push(" = ");
            sql.push_value(ty, value)
                .map_err(|e| QueryError::new("invalid-value", format!("{}.{column}: {e}", self.name())))?;
        }
        match key {
            None => self.push_where(&mut sql, using)?,
            Some(key) => {
                sql.push(" WHERE ");
                self.push_policies(&mut sql, using);
                for (column, ty, value) in key {
                    sql.push(" AND ").push_identifier(column).push(" = ");
                    sql.push_value(*ty, value).map_err(|e| QueryError::new("invalid-value", e.to_string()))?;
                }
            }
        }
        sql.push(" RETURNING ");
        self.push_column_list(&mut sql, &columns);
        let written = self.fetch(conn, sql, &columns).await?;
        if written.len() > self.context.max_rows {
            return Err(self.too_many_rows());
        }
        self.check_written(conn, &written, check, "update").await?;
        Ok(written)
    }

    async fn upsert(&self, conn: &impl ConnectionTrait) -> Result<Json, QueryError> {
        let rows = self.rows()?;
        let conflict: Vec<String> = match &self.plan.on_conflict {
            Some(columns) => columns.clone(),
            None => self.table.definition.primary_key().iter().map(|c| c.name().to_owned()).collect(),
        };
        for column in &conflict {
            self.column_type(column)?;
        }
        let insert_check = self.policies(|p| &p.insert_check, "insert")?;
        let mut written = Vec::with_capacity(rows.len());
        for row in rows {
            let key: Option<Vec<(String, ColumnType, Json)>> = conflict
                .iter()
                .map(|c| Some((c.clone(), self.column_type(c).ok()?, row.get(c).filter(|v| !v.is_null())?.clone())))
                .collect();
            let existing = match &key {
                Some(key) => self.exists(conn, key).await?,
                None => false,
            };
            if !existing {
                let inserted = self.insert_row(conn, row).await?;
                self.check_written(conn, std::slice::from_ref(&inserted), insert_check, "insert").await?;
                written.push(inserted);
            } else if !self.plan.ignore_duplicates {
                let key = key.expect("existing rows have a key");
                let patch: Map<String, Json> = row.iter().filter(|(k, _)| !conflict.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if patch.is_empty() {
                    continue;
                }
                let updated = self.update_where(conn, &patch, Some(&key)).await?;
                if updated.is_empty() {
                    return Err(QueryError::new(
                        "permission-denied",
                        format!("a row with that key already exists in {} and row-level security does not let you update it", self.name()),
                    ));
                }
                written.extend(updated);
            }
        }
        self.mutation_result(self.strip_unrequested(written))
    }

    /// Whether a row with this key exists, whoever may see it: an upsert
    /// must know whether it inserts or updates.
    async fn exists(&self, conn: &impl ConnectionTrait, key: &[(String, ColumnType, Json)]) -> Result<bool, QueryError> {
        let mut sql = SqlBuilder::new(self.backend);
        sql.push("SELECT COUNT(*) AS n FROM ").push_table(self.name()).push(" WHERE TRUE");
        for (column, ty, value) in key {
            sql.push(" AND ").push_identifier(column).push(" = ");
            sql.push_value(*ty, value).map_err(|e| QueryError::new("invalid-value", format!("{}.{column}: {e}", self.name())))?;
        }
        let row = conn.query_one_raw(sql.build()).await?.ok_or_else(|| invalid("lookup returned nothing"))?;
        Ok(row.try_get::<i64>("", "n")? > 0)
    }
}
