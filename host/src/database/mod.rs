//! The application database: app tables that functions query as their
//! caller, with row-level security applied by the host.
//!
//! - `schema`: table definitions and their DDL;
//! - `policy`: the RLS expression language, compiled to SQL predicates;
//! - `query`: a function's query plan, checked and compiled with policies;
//! - `filter`: the plan's filters (`eq`, `in`, `or(...)`) as SQL;
//! - this module: the catalog (which tables exist, their policies) and the
//!   admin operations that change it.
//!
//! Invariants:
//! - app tables live in their own namespace (`app` schema on PostgreSQL,
//!   `app_` prefix on SQLite) and functions reach only tables in the catalog,
//!   so no query can touch edgefn's own tables;
//! - a schema change runs its DDL and its catalog update in one transaction:
//!   it is applied and recorded entirely, or not at all;
//! - a table has row-level security on unless the admin turns it off, and an
//!   operation with no policy is denied.

pub mod filter;
pub mod policy;
pub mod query;
pub mod schema;
pub mod sql;

use crate::entities::{app_schema_change, app_table};
use chrono::{DateTime, Utc};
use policy::PolicyExpr;
use schema::{AlterSpec, SchemaError, TableDefinition, TableSpec};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sql::Backend;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a catalog snapshot is trusted. Changes made through this server
/// apply at once; other servers sharing a PostgreSQL see them within this.
pub const CATALOG_TTL: Duration = Duration::from_secs(2);

/// Whose rights a function's queries run with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseRole {
    /// The calling user's, under row-level security.
    #[default]
    Caller,
    /// The service role's: row-level security does not apply.
    Service,
}

/// The operations a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    /// Every operation.
    All,
}

/// A row-level-security policy as the admin API takes it. Policies for the
/// same operation are alternatives (any one allowing a row is enough), as
/// PostgreSQL's permissive policies are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// A name for people (unique per table).
    pub name: String,
    /// What it governs.
    pub operation: Operation,
    /// Which existing rows the operation may see (select, update, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    /// What new rows must satisfy (insert, update); for update it defaults
    /// to `using`, as in PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// `PUT /admin/v1/tables/{name}/policies`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSpec {
    /// Row-level security on or off for the table.
    pub rls_enabled: bool,
    /// The complete new set of policies.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
}

/// A table's policies, parsed and grouped by what they check.
#[derive(Debug, Clone, Default)]
pub struct CompiledPolicies {
    /// Rows a select may see.
    pub select: Vec<PolicyExpr>,
    /// What an inserted row must satisfy.
    pub insert_check: Vec<PolicyExpr>,
    /// Rows an update may change.
    pub update_using: Vec<PolicyExpr>,
    /// What an updated row must satisfy.
    pub update_check: Vec<PolicyExpr>,
    /// Rows a delete may remove.
    pub delete: Vec<PolicyExpr>,
}

impl CompiledPolicies {
    fn compile(specs: &[PolicySpec], table: &TableDefinition) -> Result<Self, SchemaError> {
        let mut compiled = CompiledPolicies::default();
        let mut names = std::collections::HashSet::new();
        let lookup = table.column_lookup();
        for spec in specs {
            if spec.name.trim().is_empty() || spec.name.len() > 100 {
                return Err(SchemaError::Invalid("every policy needs a name of 1 to 100 characters".into()));
            }
            if !names.insert(spec.name.as_str()) {
                return Err(SchemaError::Conflict(format!("two policies are named {:?}", spec.name)));
            }
            let parse = |source: &Option<String>, part: &str| {
                source
                    .as_deref()
                    .map(|s| {
                        PolicyExpr::parse(s, &lookup)
                            .map_err(|e| SchemaError::Invalid(format!("policy {:?}, {part}: {e}", spec.name)))
                    })
                    .transpose()
            };
            let using = parse(&spec.using, "using")?;
            let check = parse(&spec.check, "check")?;
            let missing = |what: &str| SchemaError::Invalid(format!("policy {:?} ({:?}) needs {what}", spec.name, spec.operation));
            let refuse = |what: &str| {
                SchemaError::Invalid(format!("policy {:?}: a {:?} policy takes no {what}", spec.name, spec.operation))
            };
            match spec.operation {
                Operation::Select | Operation::Delete => {
                    if check.is_some() {
                        return Err(refuse("check (use using)"));
                    }
                    let using = using.ok_or_else(|| missing("a using expression"))?;
                    if spec.operation == Operation::Select { &mut compiled.select } else { &mut compiled.delete }.push(using);
                }
                Operation::Insert => {
                    if using.is_some() {
                        return Err(refuse("using (use check)"));
                    }
                    compiled.insert_check.push(check.ok_or_else(|| missing("a check expression"))?);
                }
                Operation::Update | Operation::All => {
                    let using = using.ok_or_else(|| missing("a using expression"))?;
                    let check = check.unwrap_or_else(|| using.clone());
                    if spec.operation == Operation::All {
                        compiled.select.push(using.clone());
                        compiled.delete.push(using.clone());
                        compiled.insert_check.push(check.clone());
                    }
                    compiled.update_using.push(using);
                    compiled.update_check.push(check);
                }
            }
        }
        Ok(compiled)
    }
}

/// One app table as the catalog knows it.
#[derive(Debug, Clone)]
pub struct AppTable {
    /// Columns and indexes.
    pub definition: TableDefinition,
    /// Whether row-level security applies.
    pub rls_enabled: bool,
    /// The policies as written.
    pub policies: Vec<PolicySpec>,
    /// The policies, parsed.
    pub compiled: CompiledPolicies,
    /// How many changes the table has had.
    pub schema_version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl AppTable {
    fn from_row(row: app_table::Model, others: &dyn Fn(&str) -> Option<TableDefinition>) -> Result<Self, SchemaError> {
        let corrupt = |e: &dyn std::fmt::Display| {
            SchemaError::Database(sea_orm::DbErr::Custom(format!("the stored definition of app table {} is unreadable: {e}", row.name)))
        };
        let spec: TableSpec = serde_json::from_str(&row.definition).map_err(|e| corrupt(&e))?;
        let policies: Vec<PolicySpec> = serde_json::from_str(&row.policies).map_err(|e| corrupt(&e))?;
        let definition = TableDefinition::new(spec, others).map_err(|e| corrupt(&e))?;
        let compiled = CompiledPolicies::compile(&policies, &definition).map_err(|e| corrupt(&e))?;
        Ok(AppTable {
            definition,
            rls_enabled: row.rls_enabled,
            policies,
            compiled,
            schema_version: row.schema_version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The table as the admin API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let spec = self.definition.spec(self.rls_enabled);
        json!({
            "name": spec.name,
            "columns": spec.columns,
            "indexes": spec.indexes,
            "rls_enabled": self.rls_enabled,
            "policies": self.policies,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

fn strip_references(mut spec: TableSpec) -> TableSpec {
    for column in &mut spec.columns {
        column.references = None;
    }
    spec
}

/// Every app table, as of one moment.
#[derive(Debug, Default)]
pub struct Catalog {
    tables: HashMap<String, Arc<AppTable>>,
}

impl Catalog {
    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&Arc<AppTable>> {
        self.tables.get(name)
    }
}

/// A recorded schema change.
#[derive(Debug, Serialize)]
pub struct SchemaChange {
    /// Change id (UUIDv7, so ids sort by time).
    pub id: String,
    /// The table changed.
    pub table: String,
    /// The table's schema version after the change.
    pub schema_version: i32,
    /// `create`, `alter`, `policies` or `drop`.
    pub kind: String,
    /// The request as received.
    pub request: serde_json::Value,
    /// The SQL it ran.
    pub statements: Vec<String>,
    /// Who made it (an admin key's prefix).
    pub applied_by: String,
    /// When.
    pub applied_at: DateTime<Utc>,
}

/// The application database: its connection and catalog.
pub struct AppDatabase {
    db: DatabaseConnection,
    backend: Backend,
    catalog: RwLock<(Instant, Arc<Catalog>)>,
}

impl AppDatabase {
    /// The app database on edgefn's own connection.
    pub fn new(db: DatabaseConnection) -> Self {
        let backend = Backend::of(db.get_database_backend());
        let stale = Instant::now().checked_sub(CATALOG_TTL * 2).unwrap_or_else(Instant::now);
        AppDatabase { db, backend, catalog: RwLock::new((stale, Arc::new(Catalog::default()))) }
    }

    /// The connection queries run on.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The backend SQL is written for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The current catalog (re-read when older than [`CATALOG_TTL`]).
    pub async fn catalog(&self) -> Result<Arc<Catalog>, SchemaError> {
        {
            let cached = self.catalog.read().expect("catalog lock");
            if cached.0.elapsed() < CATALOG_TTL {
                return Ok(cached.1.clone());
            }
        }
        let fresh = Arc::new(load_catalog(&self.db).await?);
        *self.catalog.write().expect("catalog lock") = (Instant::now(), fresh.clone());
        Ok(fresh)
    }

    fn invalidate(&self) {
        let mut cached = self.catalog.write().expect("catalog lock");
        cached.0 = Instant::now().checked_sub(CATALOG_TTL * 2).unwrap_or(cached.0);
    }

    /// Every app table.
    pub async fn list(&self) -> Result<Vec<Arc<AppTable>>, SchemaError> {
        let mut tables: Vec<_> = load_catalog(&self.db).await?.tables.into_values().collect();
        tables.sort_by(|a, b| a.definition.name.cmp(&b.definition.name));
        Ok(tables)
    }

    /// One app table, read from the database (not the cache).
    pub async fn get(&self, name: &str) -> Result<Arc<AppTable>, SchemaError> {
        let catalog = load_catalog(&self.db).await?;
        catalog.tables.get(name).cloned().ok_or_else(|| SchemaError::UnknownTable(name.into()))
    }

    /// Creates a table.
    pub async fn create_table(&self, spec: TableSpec, applied_by: &str) -> Result<Arc<AppTable>, SchemaError> {
        let request = serde_json::to_value(&spec).unwrap_or_default();
        let rls_enabled = spec.rls_enabled.unwrap_or(true);
        let name = spec.name.clone();
        self.change(&name, "create", request, applied_by, |catalog, backend| {
            if catalog.tables.contains_key(&name) {
                return Err(SchemaError::Conflict(format!("an app table named {name} already exists")));
            }
            let definition = TableDefinition::new(spec, &|other| catalog.tables.get(other).map(|t| t.definition.clone()))?;
            let statements = definition.create_statements(backend);
            let now = Utc::now();
            let table = AppTable {
                definition,
                rls_enabled,
                policies: Vec::new(),
                compiled: CompiledPolicies::default(),
                schema_version: 0,
                created_at: now,
                updated_at: now,
            };
            Ok((Some(table), statements))
        })
        .await
        .map(|table| table.expect("created"))
    }

    /// Adds or drops columns and indexes.
    pub async fn alter_table(&self, name: &str, alter: AlterSpec, applied_by: &str) -> Result<Arc<AppTable>, SchemaError> {
        let request = serde_json::to_value(&alter).unwrap_or_default();
        self.change(name, "alter", request, applied_by, |catalog, backend| {
            let current = catalog.tables.get(name).ok_or_else(|| SchemaError::UnknownTable(name.into()))?;
            let mut table = (**current).clone();
            let mut statements = Vec::new();
            for index in &alter.drop_indexes {
                table.definition.remove_index(index)?;
                statements.push(TableDefinition::drop_index_sql(index, backend));
            }
            // The columns each policy reads, parsed once, against the table
            // as it stands before the change.
            let read_by: Vec<(String, Vec<String>)> = table
                .policies
                .iter()
                .map(|p| {
                    let lookup = table.definition.column_lookup();
                    let sources = [&p.using, &p.check].into_iter().flatten();
                    (p.name.clone(), sources.filter_map(|s| PolicyExpr::parse(s, &lookup).ok()).flat_map(|e| e.columns()).collect())
                })
                .collect();
            for column in &alter.drop_columns {
                if let Some((policy, _)) = read_by.iter().find(|(_, columns)| columns.contains(column)) {
                    return Err(SchemaError::Conflict(format!(
                        "column {column} is read by policy {policy:?}; change the policy first"
                    )));
                }
                if let Some(other) = catalog.tables.values().find(|t| {
                    t.definition.columns.iter().any(|c| {
                        c.spec.references.as_ref().is_some_and(|r| r.table == name && r.column == *column)
                    })
                }) {
                    return Err(SchemaError::Conflict(format!(
                        "column {column} is referenced by a foreign key of table {}",
                        other.definition.name
                    )));
                }
                table.definition.remove_column(column)?;
                statements.push(table.definition.drop_column_sql(column, backend));
            }
            for spec in alter.add_columns.clone() {
                if spec.primary_key {
                    return Err(SchemaError::Invalid(format!(
                        "column {}: a primary key cannot be added to an existing table",
                        spec.name
                    )));
                }
                let others = |other: &str| catalog.tables.get(other).map(|t| t.definition.clone());
                table.definition.add_column(spec.clone(), &others)?;
                let column = table.definition.column(&spec.name).expect("just added").clone();
                statements.push(table.definition.add_column_sql(&column, backend));
            }
            for index in alter.add_indexes.clone() {
                let index = table.definition.add_index(index)?.clone();
                statements.push(table.definition.create_index_sql(&index, backend));
            }
            if statements.is_empty() {
                return Err(SchemaError::Invalid(
                    "the change is empty: give add_columns, drop_columns, add_indexes or drop_indexes".into(),
                ));
            }
            Ok((Some(table), statements))
        })
        .await
        .map(|table| table.expect("altered"))
    }

    /// Replaces a table's row-level-security settings and policies.
    pub async fn set_policies(&self, name: &str, spec: PoliciesSpec, applied_by: &str) -> Result<Arc<AppTable>, SchemaError> {
        let request = serde_json::to_value(&spec).unwrap_or_default();
        self.change(name, "policies", request, applied_by, |catalog, _| {
            let current = catalog.tables.get(name).ok_or_else(|| SchemaError::UnknownTable(name.into()))?;
            let mut table = (**current).clone();
            table.compiled = CompiledPolicies::compile(&spec.policies, &table.definition)?;
            table.policies = spec.policies;
            table.rls_enabled = spec.rls_enabled;
            Ok((Some(table), Vec::new()))
        })
        .await
        .map(|table| table.expect("updated"))
    }

    /// Drops a table and its rows.
    pub async fn drop_table(&self, name: &str, applied_by: &str) -> Result<(), SchemaError> {
        self.change(name, "drop", json!({}), applied_by, |catalog, backend| {
            let table = catalog.tables.get(name).ok_or_else(|| SchemaError::UnknownTable(name.into()))?;
            if let Some(other) = catalog
                .tables
                .values()
                .find(|t| t.definition.name != name && t.definition.referenced_tables().any(|r| r == name))
            {
                return Err(SchemaError::Conflict(format!(
                    "table {} has a foreign key to {name}; drop or alter it first",
                    other.definition.name
                )));
            }
            Ok((None, vec![table.definition.drop_sql(backend)]))
        })
        .await
        .map(|_| ())
    }

    /// The recorded changes, newest first; of one table when `table` is set.
    pub async fn changes(&self, table: Option<&str>) -> Result<Vec<SchemaChange>, SchemaError> {
        let mut query = app_schema_change::Entity::find().order_by_desc(app_schema_change::Column::Id);
        if let Some(table) = table {
            query = query.filter(app_schema_change::Column::TableName.eq(table));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| SchemaChange {
                id: row.id,
                table: row.table_name,
                schema_version: row.schema_version,
                kind: row.kind,
                request: serde_json::from_str(&row.request).unwrap_or_default(),
                statements: serde_json::from_str(&row.statements).unwrap_or_default(),
                applied_by: row.applied_by,
                applied_at: row.applied_at,
            })
            .collect())
    }

    /// Runs one schema change: `plan` sees the catalog as of the
    /// transaction's start and returns the table's new state (None: dropped)
    /// and the DDL to run; DDL, catalog row and history commit together.
    async fn change(
        &self,
        name: &str,
        kind: &str,
        request: serde_json::Value,
        applied_by: &str,
        plan: impl FnOnce(&Catalog, Backend) -> Result<(Option<AppTable>, Vec<String>), SchemaError>,
    ) -> Result<Option<Arc<AppTable>>, SchemaError> {
        let txn = self.db.begin_with_options(write_transaction()).await?;
        let catalog = load_catalog(&txn).await?;
        let previous_version = catalog.tables.get(name).map(|t| t.schema_version).unwrap_or(0);
        let (table, statements) = plan(&catalog, self.backend)?;
        for statement in &statements {
            txn.execute_unprepared(statement).await.map_err(|e| SchemaError::Refused(database_message(&e)))?;
        }
        let version = previous_version + 1;
        let now = Utc::now();
        let table = table.map(|mut table| {
            table.schema_version = version;
            table.updated_at = now;
            Arc::new(table)
        });
        save_catalog_row(&txn, name, table.as_deref()).await?;
        app_schema_change::Entity::insert(app_schema_change::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            table_name: Set(name.to_owned()),
            schema_version: Set(version),
            kind: Set(kind.to_owned()),
            request: Set(request.to_string()),
            statements: Set(serde_json::to_string(&statements).unwrap_or_default()),
            applied_by: Set(applied_by.to_owned()),
            applied_at: Set(now),
        })
        .exec(&txn)
        .await?;
        txn.commit().await?;
        self.invalidate();
        Ok(table)
    }
}

/// Options for a transaction that will write. On SQLite it takes the write
/// lock at BEGIN: a deferred transaction that reads first and writes later
/// fails at once ("database is locked") if anyone wrote in between, where an
/// immediate one waits its turn. PostgreSQL ignores the setting.
pub fn write_transaction() -> sea_orm::TransactionOptions {
    sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    }
}

/// The part of a database error a person can act on.
pub fn database_message(error: &sea_orm::DbErr) -> String {
    let text = error.to_string();
    // sqlx wraps the server's message in layers of context: keep what the
    // database said, without SQLite's extended result code.
    let said = text.split_once("error returned from database: ").map_or(text.as_str(), |(_, said)| said);
    let said = match said.strip_prefix("(code: ") {
        Some(rest) => rest.split_once(") ").map_or(rest, |(_, message)| message),
        None => said,
    };
    without_app_namespace(&said.replace("\"app\".", ""))
}

/// App tables are `app_<name>` on SQLite: the name the app uses, with the
/// prefix dropped only where a name starts (a column `happy_app_id` stays).
fn without_app_namespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("app_") {
        let before = rest[..at].chars().next_back().or_else(|| out.chars().next_back());
        let starts_name = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        if !starts_name {
            out.push_str("app_");
        }
        rest = &rest[at + 4..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_messages_name_tables_as_the_app_does() {
        let error = sea_orm::DbErr::Custom(
            "error returned from database: (code: 1299) NOT NULL constraint failed: app_notes.happy_app_id".into(),
        );
        assert_eq!(database_message(&error), "NOT NULL constraint failed: notes.happy_app_id");
        let error = sea_orm::DbErr::Custom("error returned from database: duplicate key in \"app\".\"notes\"".into());
        assert_eq!(database_message(&error), "duplicate key in \"notes\"");
    }
}

async fn save_catalog_row(txn: &DatabaseTransaction, name: &str, table: Option<&AppTable>) -> Result<(), SchemaError> {
    let Some(table) = table else {
        app_table::Entity::delete_by_id(name.to_owned()).exec(txn).await?;
        return Ok(());
    };
    let row = app_table::ActiveModel {
        name: Set(name.to_owned()),
        definition: Set(serde_json::to_string(&table.definition.spec(table.rls_enabled)).unwrap_or_default()),
        rls_enabled: Set(table.rls_enabled),
        policies: Set(serde_json::to_string(&table.policies).unwrap_or_default()),
        schema_version: Set(table.schema_version),
        created_at: Set(table.created_at),
        updated_at: Set(table.updated_at),
    };
    if table.schema_version == 1 {
        app_table::Entity::insert(row).exec(txn).await?;
    } else {
        app_table::Entity::update(row).exec(txn).await?;
    }
    Ok(())
}

async fn load_catalog(conn: &impl ConnectionTrait) -> Result<Catalog, SchemaError> {
    let rows = app_table::Entity::find().all(conn).await?;
    let specs: HashMap<String, TableSpec> = rows
        .iter()
        .filter_map(|row| Some((row.name.clone(), serde_json::from_str(&row.definition).ok()?)))
        .collect();
    let others = |name: &str| {
        specs.get(name).and_then(|spec| TableDefinition::new(strip_references(spec.clone()), &|_| None).ok())
    };
    let mut tables = HashMap::with_capacity(rows.len());
    for row in rows {
        let table = AppTable::from_row(row, &others)?;
        tables.insert(table.definition.name.clone(), Arc::new(table));
    }
    Ok(Catalog { tables })
}
