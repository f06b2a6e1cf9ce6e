//! sea-orm entities for edgefn's own tables (see `migrations/`).

/// A function: a stable name and which version serves it.
pub mod function {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_functions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub name: String,
        pub active_version: Option<i32>,
        /// The function's current settings (limits today), JSON.
        pub settings: String,
        /// Access policy and CORS settings, JSON; none means `authenticated`.
        #[sea_orm(column_type = "Text", nullable)]
        pub access: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::function_version::Entity")]
        Versions,
    }

    impl Related<super::function_version::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Versions.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One immutable deployment of a function: source, bytecode and manifest.
pub mod function_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_function_versions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub function_id: i32,
        pub version: i32,
        #[sea_orm(column_type = "Text")]
        pub source: String,
        pub source_hash: String,
        pub bytecode: Vec<u8>,
        pub bytecode_hash: String,
        /// Fingerprint of the engine build the bytecode belongs to.
        pub engine: String,
        pub build_us: i64,
        /// The manifest this version was deployed with, JSON.
        #[sea_orm(column_type = "Text")]
        pub settings: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::function::Entity",
            from = "Column::FunctionId",
            to = "super::function::Column::Id",
            on_delete = "Cascade"
        )]
        Function,
    }

    impl Related<super::function::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Function.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The record of one invocation.
pub mod execution {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_executions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub function_name: String,
        pub version: Option<i32>,
        pub received_at: DateTimeUtc,
        pub duration_us: i64,
        pub queue_us: i64,
        pub instantiate_us: i64,
        pub run_us: i64,
        pub caller: Option<String>,
        pub method: String,
        #[sea_orm(column_type = "Text")]
        pub path: String,
        pub status: i32,
        pub outcome: String,
        /// Console lines, JSON array.
        #[sea_orm(column_type = "Text")]
        pub console: String,
        /// The error, JSON, when the invocation failed.
        #[sea_orm(column_type = "Text", nullable)]
        pub error: Option<String>,
        pub fuel_consumed: Option<i64>,
        pub peak_memory_bytes: Option<i64>,
        /// W3C trace id (32 hex digits) the invocation ran under.
        pub trace_id: Option<String>,
        /// The client's address.
        pub client_ip: Option<String>,
        /// Everything else, JSON.
        #[sea_orm(column_type = "Text")]
        pub details: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An admin API key, stored as a hash; the prefix identifies it in lists.
pub mod admin_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_admin_keys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub prefix: String,
        pub key_hash: String,
        pub label: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A secret's latest value, encrypted under the master key `key_id` names.
pub mod secret {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub version: i32,
        pub key_id: String,
        pub nonce: Vec<u8>,
        pub ciphertext: Vec<u8>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    // No derived Debug: even ciphertext has no business in a log line.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Secret").field("name", &self.name).field("version", &self.version).finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Function `function_name` may read secret `secret_name`.
pub mod secret_grant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_secret_grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub function_name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub secret_name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A user who signs in with email and password.
pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub email: String,
        /// argon2id PHC string.
        pub password_hash: String,
        /// JSON object.
        #[sea_orm(column_type = "Text")]
        pub metadata: String,
        pub disabled: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    // No derived Debug: a password hash has no business in a log line.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("User").field("id", &self.id).field("email", &self.email).finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A named group of users.
pub mod group {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// User `user_id` is a member of group `group_name`.
pub mod group_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_group_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One refresh token, stored as its SHA-256; single use, in a family.
pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub family_id: String,
        pub user_id: String,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An app table in the application database: its definition and policies.
pub mod app_table {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_app_tables")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The table spec (columns, indexes), JSON.
        #[sea_orm(column_type = "Text")]
        pub definition: String,
        pub rls_enabled: bool,
        /// The row-level-security policies, JSON.
        #[sea_orm(column_type = "Text")]
        pub policies: String,
        pub schema_version: i32,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One applied schema change to an app table (append-only).
pub mod app_schema_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "edgefn_app_schema_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub table_name: String,
        pub schema_version: i32,
        /// `create`, `alter`, `policies` or `drop`.
        pub kind: String,
        /// The request as received, JSON.
        #[sea_orm(column_type = "Text")]
        pub request: String,
        /// The SQL statements it ran, JSON array.
        #[sea_orm(column_type = "Text")]
        pub statements: String,
        pub applied_by: String,
        pub applied_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
