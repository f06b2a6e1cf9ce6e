//! The secrets manager: values encrypted at rest, write-only through the API,
//! readable only by the functions granted them.
//!
//! Invariants:
//! - a value is stored only as XChaCha20-Poly1305 ciphertext with a fresh
//!   random nonce, the secret's name and version bound as associated data (a
//!   ciphertext copied to another name or version fails to decrypt);
//! - no value is ever returned by the API, logged, or put in an error; the
//!   `Debug` of every type that holds one prints the name only;
//! - the server refuses to start when the master key it has cannot decrypt
//!   what is stored; it never makes up a new key over existing secrets.

use crate::entities::{secret, secret_grant};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Largest secret value accepted.
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// How long a function's grant list is cached. Changes made through this
/// server apply at once; other servers sharing the database see them within
/// this time.
pub const GRANTS_TTL: Duration = Duration::from_secs(15);

/// What went wrong with a secret operation.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The name is not a valid secret name.
    #[error(
        "invalid secret name {0:?}: use 1 to 128 characters, upper-case letters, digits and underscores, starting with a letter (like OPENAI_API_KEY)"
    )]
    InvalidName(String),
    /// The value is empty or too large.
    #[error("{0}")]
    InvalidValue(String),
    /// No secret of that name exists.
    #[error("no secret named {0:?}")]
    NotFound(String),
    /// The master key is missing, malformed or does not match the database.
    #[error("{0}")]
    MasterKey(String),
    /// A stored value did not decrypt (tampered with, or a key mix-up).
    #[error("the stored value of secret {0:?} could not be decrypted with the master key")]
    Undecryptable(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
}

/// Checks a secret name: what `env.NAME` can spell and the engine recognises.
pub fn validate_name(name: &str) -> Result<(), SecretsError> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some('A'..='Z'))
        && name.len() <= 128
        && chars.all(|c| matches!(c, 'A'..='Z' | '0'..='9' | '_'));
    if valid { Ok(()) } else { Err(SecretsError::InvalidName(name.to_owned())) }
}

/// One 256-bit master key and the id stored beside what it encrypts.
struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
    /// Kept only to derive purpose-bound subkeys (see [`Secrets::derived_keys`]).
    bytes: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    fn from_base64(text: &str, origin: &str) -> Result<Self, SecretsError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            SecretsError::MasterKey(format!("the master key in {origin} is not valid base64"))
        })?);
        if bytes.len() != 32 {
            return Err(SecretsError::MasterKey(format!(
                "the master key in {origin} must be 32 bytes (base64 of 32 random bytes), found {} bytes",
                bytes.len()
            )));
        }
        // The id is a hash of the key under a fixed label: it tells keys apart
        // without revealing anything usable about them.
        let mut hasher = Sha256::new();
        hasher.update(b"edgefn master key id\0");
        hasher.update(&bytes[..]);
        let id = hex::encode(&hasher.finalize()[..8]);
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key");
        let bytes = Zeroizing::new(<[u8; 32]>::try_from(&bytes[..]).expect("checked length"));
        Ok(MasterKey { id, cipher, bytes })
    }

    /// HMAC-SHA256(master key, purpose): a key for one purpose that reveals
    /// nothing about the master key or any other purpose's key.
    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.bytes[..]).expect("HMAC takes any key length");
        mac.update(b"edgefn derived key\0");
        mac.update(purpose.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    fn encrypt(&self, name: &str, version: i32, value: &str) -> (Vec<u8>, Vec<u8>) {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(name, version);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: &aad })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        (nonce.to_vec(), ciphertext)
    }

    fn decrypt(&self, row: &secret::Model) -> Result<Zeroizing<String>, SecretsError> {
        let undecryptable = || SecretsError::Undecryptable(row.name.clone());
        let nonce: [u8; 24] = row.nonce.as_slice().try_into().map_err(|_| undecryptable())?;
        let aad = associated_data(&row.name, row.version);
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: &row.ciphertext, aad: &aad })
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain).map(Zeroizing::new).map_err(|_| undecryptable())
    }
}

fn associated_data(name: &str, version: i32) -> Vec<u8> {
    format!("edgefn secret\0{name}\0{version}").into_bytes()
}

/// Where the master keys come from (see `config.rs`).
#[derive(Clone)]
pub struct KeySource {
    /// The key itself (base64), from the environment; wins over `file`.
    pub key: Option<Zeroizing<String>>,
    /// The key file; created on first start when nothing is encrypted yet.
    pub file: PathBuf,
    /// A previous key, still accepted for reading during a rotation.
    pub previous_file: Option<PathBuf>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .field("file", &self.file)
            .field("previous_file", &self.previous_file)
            .finish()
    }
}

/// The current master key (encrypts everything new) and, during a rotation,
/// the previous one (still decrypts what it encrypted).
struct Keyring {
    current: MasterKey,
    previous: Option<MasterKey>,
}

impl Keyring {
    fn by_id(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(&self.previous).find(|key| key.id == id)
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, SecretsError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        SecretsError::MasterKey(format!("cannot read the master key file {}: {e}", path.display()))
    })?);
    MasterKey::from_base64(&text, &path.display().to_string())
}

/// Writes a new random key to `path`, readable by the owner only.
fn generate_key_file(path: &Path) -> Result<MasterKey, SecretsError> {
    use std::io::Write;
    let failed = |e: std::io::Error| {
        SecretsError::MasterKey(format!("cannot create the master key file {}: {e}", path.display()))
    };
    let key = Zeroizing::new(STANDARD.encode(XChaCha20Poly1305::generate_key(&mut OsRng)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(key.as_bytes()).and_then(|()| file.write_all(b"\n")).and_then(|()| file.sync_all()).map_err(failed)?;
    MasterKey::from_base64(&key, &path.display().to_string())
}

/// What the admin API shows of a secret: never its value.
#[derive(Debug, Clone, Serialize)]
pub struct SecretSummary {
    /// The secret's name.
    pub name: String,
    /// Starts at 1; every update adds one.
    pub version: i32,
    /// When it was first set.
    pub created_at: DateTime<Utc>,
    /// When its value last changed.
    pub updated_at: DateTime<Utc>,
    /// The functions granted it.
    pub granted_to: Vec<String>,
}

/// The secrets one invocation may read, decrypted; names in grant order.
/// `None`: granted, but no secret of that name is set.
#[derive(Default)]
pub struct GrantedValues(pub Vec<(String, Option<Zeroizing<String>>)>);

impl GrantedValues {
    /// The granted names, in grant order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }
}

impl std::fmt::Debug for GrantedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

/// The secrets store.
pub struct Secrets {
    db: DatabaseConnection,
    keys: Keyring,
    grants: moka::future::Cache<String, Arc<Vec<String>>>,
}

impl Secrets {
    /// Loads the master key(s) and checks them against what is stored.
    pub async fn open(db: DatabaseConnection, source: &KeySource) -> Result<Self, SecretsError> {
        let stored_key_ids: BTreeSet<String> = secret::Entity::find()
            .select_only()
            .column(secret::Column::KeyId)
            .distinct()
            .into_tuple::<String>()
            .all(&db)
            .await?
            .into_iter()
            .collect();
        let current = if let Some(key) = &source.key {
            MasterKey::from_base64(key, "EDGEFN_MASTER_KEY")?
        } else if source.file.exists() {
            read_key_file(&source.file)?
        } else if stored_key_ids.is_empty() {
            let key = generate_key_file(&source.file)?;
            tracing::info!(file = %source.file.display(), "created a new master key for secrets");
            key
        } else {
            return Err(SecretsError::MasterKey(format!(
                "secrets are stored, but the master key file {} does not exist; restore it (or set EDGEFN_MASTER_KEY). \
                 edgefn will not generate a new key: the stored secrets could never be decrypted again",
                source.file.display()
            )));
        };
        let previous = source.previous_file.as_deref().map(read_key_file).transpose()?;
        let keys = Keyring { current, previous };
        let unknown: Vec<&String> = stored_key_ids.iter().filter(|id| keys.by_id(id).is_none()).collect();
        if !unknown.is_empty() {
            return Err(SecretsError::MasterKey(format!(
                "the master key does not match the stored secrets: they are encrypted under key id {} but the \
                 configured key is {}{}; start with the key they were written with (and, to change keys, \
                 see `edgefn rotate-master-key --help`)",
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                keys.current.id,
                keys.previous.as_ref().map(|k| format!(" (previous {})", k.id)).unwrap_or_default(),
            )));
        }
        Ok(Secrets { db, keys, grants: moka::future::Cache::builder().time_to_live(GRANTS_TTL).build() })
    }

    /// Keys for `purpose` derived from the master key(s): the current one
    /// first, then the previous one during a rotation, each with the master
    /// key's id. Servers that share a database share the master key, so they
    /// derive the same keys with nothing more to distribute.
    pub fn derived_keys(&self, purpose: &str) -> Vec<(String, Zeroizing<[u8; 32]>)> {
        std::iter::once(&self.keys.current)
            .chain(self.keys.previous.as_ref())
            .map(|key| (key.id.clone(), key.derive(purpose)))
            .collect()
    }

    /// Sets a secret's value: version 1 when new, else the next version.
    /// Returns the summary and whether the secret was created.
    pub async fn set(&self, name: &str, value: &str) -> Result<(SecretSummary, bool), SecretsError> {
        validate_name(name)?;
        if value.is_empty() {
            return Err(SecretsError::InvalidValue("a secret's value must not be empty".into()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(SecretsError::InvalidValue(format!(
                "a secret's value must be at most {MAX_VALUE_BYTES} bytes, this one is {}",
                value.len()
            )));
        }
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let existing = secret::Entity::find_by_id(name).one(&txn).await?;
        let created = existing.is_none();
        let version = existing.as_ref().map_or(1, |row| row.version + 1);
        let (nonce, ciphertext) = self.keys.current.encrypt(name, version, value);
        let row = secret::ActiveModel {
            name: Set(name.to_owned()),
            version: Set(version),
            key_id: Set(self.keys.current.id.clone()),
            nonce: Set(nonce),
            ciphertext: Set(ciphertext),
            created_at: Set(existing.as_ref().map_or(now, |row| row.created_at)),
            updated_at: Set(now),
        };
        secret::Entity::insert(row)
            .on_conflict(
                OnConflict::column(secret::Column::Name)
                    .update_columns([
                        secret::Column::Version,
                        secret::Column::KeyId,
                        secret::Column::Nonce,
                        secret::Column::Ciphertext,
                        secret::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        let summary = self.summary(name).await?.ok_or_else(|| SecretsError::NotFound(name.to_owned()))?;
        Ok((summary, created))
    }

    /// Every secret, by name, without values.
    pub async fn list(&self) -> Result<Vec<SecretSummary>, SecretsError> {
        let rows = secret::Entity::find().order_by_asc(secret::Column::Name).all(&self.db).await?;
        let mut grants = self.grants_by_secret(None).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let granted_to = grants.remove(&row.name).unwrap_or_default();
                summarize(row, granted_to)
            })
            .collect())
    }

    async fn summary(&self, name: &str) -> Result<Option<SecretSummary>, SecretsError> {
        let Some(row) = secret::Entity::find_by_id(name).one(&self.db).await? else { return Ok(None) };
        let granted_to = self.grants_by_secret(Some(name)).await?.remove(name).unwrap_or_default();
        Ok(Some(summarize(row, granted_to)))
    }

    async fn grants_by_secret(&self, only: Option<&str>) -> Result<BTreeMap<String, Vec<String>>, SecretsError> {
        let mut query = secret_grant::Entity::find().order_by_asc(secret_grant::Column::FunctionName);
        if let Some(name) = only {
            query = query.filter(secret_grant::Column::SecretName.eq(name));
        }
        let mut by_secret: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for grant in query.all(&self.db).await? {
            by_secret.entry(grant.secret_name).or_default().push(grant.function_name);
        }
        Ok(by_secret)
    }

    /// Deletes a secret. Grants of it stay (a function reading it gets a
    /// clear "granted but not set" error) so that setting it again restores it.
    pub async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        validate_name(name)?;
        let deleted = secret::Entity::delete_by_id(name).exec(&self.db).await?;
        if deleted.rows_affected == 0 {
            return Err(SecretsError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// The secret names a function is granted, sorted (cached for [`GRANTS_TTL`]).
    pub async fn grants(&self, function: &str) -> Result<Arc<Vec<String>>, SecretsError> {
        let db = self.db.clone();
        let key = function.to_owned();
        self.grants
            .try_get_with(function.to_owned(), async move {
                let names = secret_grant::Entity::find()
                    .filter(secret_grant::Column::FunctionName.eq(key))
                    .order_by_asc(secret_grant::Column::SecretName)
                    .all(&db)
                    .await?
                    .into_iter()
                    .map(|grant| grant.secret_name)
                    .collect();
                Ok::<_, sea_orm::DbErr>(Arc::new(names))
            })
            .await
            .map_err(|e: Arc<sea_orm::DbErr>| SecretsError::Database(sea_orm::DbErr::Custom(e.to_string())))
    }

    /// Replaces a function's grants, in the caller's transaction; call
    /// [`Secrets::forget_grants`] once it commits.
    pub async fn replace_grants(conn: &impl ConnectionTrait, function: &str, names: &[String]) -> Result<(), SecretsError> {
        for name in names {
            validate_name(name)?;
        }
        secret_grant::Entity::delete_many().filter(secret_grant::Column::FunctionName.eq(function)).exec(conn).await?;
        let unique: BTreeSet<&String> = names.iter().collect();
        if !unique.is_empty() {
            secret_grant::Entity::insert_many(unique.into_iter().map(|name| secret_grant::ActiveModel {
                function_name: Set(function.to_owned()),
                secret_name: Set(name.clone()),
            }))
            .exec(conn)
            .await?;
        }
        Ok(())
    }

    /// Replaces a function's grants in a transaction of its own.
    pub async fn set_grants(&self, function: &str, names: &[String]) -> Result<(), SecretsError> {
        let txn = self.db.begin().await?;
        Self::replace_grants(&txn, function, names).await?;
        txn.commit().await?;
        self.forget_grants(function).await;
        Ok(())
    }

    /// Drops the cached grants of a function after they changed.
    pub async fn forget_grants(&self, function: &str) {
        self.grants.invalidate(function).await;
    }

    /// Decrypts the secrets granted to `function`, for one invocation. Costs
    /// nothing for a function without grants.
    pub async fn granted_values(&self, function: &str) -> Result<GrantedValues, SecretsError> {
        // The cached grants first; the database's futures are boxed (see
        // `Deployments::active`): a function without secrets needs neither.
        let names = match self.grants.get(function).await {
            Some(names) => names,
            None => Box::pin(self.grants(function)).await?,
        };
        if names.is_empty() {
            return Ok(GrantedValues::default());
        }
        Box::pin(self.values_of(&names)).await
    }

    async fn values_of(&self, names: &[String]) -> Result<GrantedValues, SecretsError> {
        let rows = secret::Entity::find().filter(secret::Column::Name.is_in(names.iter().cloned())).all(&self.db).await?;
        let mut values = Vec::with_capacity(names.len());
        for name in names.iter() {
            let value = match rows.iter().find(|row| &row.name == name) {
                Some(row) => Some(self.decrypt(row)?),
                None => None,
            };
            values.push((name.clone(), value));
        }
        Ok(GrantedValues(values))
    }

    fn decrypt(&self, row: &secret::Model) -> Result<Zeroizing<String>, SecretsError> {
        let key = self.keys.by_id(&row.key_id).ok_or_else(|| SecretsError::Undecryptable(row.name.clone()))?;
        key.decrypt(row)
    }

    /// Re-encrypts every value not yet under the current key. Row by row,
    /// each under a new nonce: servers that know both keys keep serving.
    /// Returns how many values were re-encrypted.
    pub async fn reencrypt_all(&self) -> Result<usize, SecretsError> {
        let stale = secret::Entity::find()
            .filter(secret::Column::KeyId.ne(self.keys.current.id.clone()))
            .all(&self.db)
            .await?;
        for row in &stale {
            let value = self.decrypt(row)?;
            let (nonce, ciphertext) = self.keys.current.encrypt(&row.name, row.version, &value);
            // Only if nobody changed the value meanwhile (same version): a
            // concurrent update is already under the current key.
            secret::Entity::update_many()
                .col_expr(secret::Column::KeyId, self.keys.current.id.clone().into())
                .col_expr(secret::Column::Nonce, nonce.into())
                .col_expr(secret::Column::Ciphertext, ciphertext.into())
                .filter(secret::Column::Name.eq(row.name.clone()))
                .filter(secret::Column::Version.eq(row.version))
                .exec(&self.db)
                .await?;
        }
        Ok(stale.len())
    }
}

fn summarize(row: secret::Model, granted_to: Vec<String>) -> SecretSummary {
    SecretSummary { name: row.name, version: row.version, created_at: row.created_at, updated_at: row.updated_at, granted_to }
}

/// Replaces granted secret values in text written to records and logs.
///
/// Besides the value itself, it catches the forms a value commonly takes on
/// its way out: base64 and base64url (at any alignment, so a value embedded
/// in `btoa("user:" + key)` is caught too) and percent-encoding.
#[derive(Default)]
pub struct Redactor {
    /// (pattern, replacement), longest pattern first.
    patterns: Vec<(Zeroizing<String>, String)>,
}

/// Encoded fragments shorter than this are not redacted: they would match
/// ordinary text by chance.
const MIN_ENCODED_FRAGMENT: usize = 8;

impl Redactor {
    /// A redactor for every granted secret that has a value.
    pub fn new(values: &GrantedValues) -> Self {
        let mut patterns = Vec::new();
        for (name, value) in &values.0 {
            let Some(value) = value else { continue };
            let replacement = format!("[REDACTED:{name}]");
            let mut forms: BTreeSet<String> = BTreeSet::new();
            forms.insert(value.to_string());
            for fragment in base64_fragments(value.as_bytes()) {
                forms.insert(fragment.replace('+', "-").replace('/', "_"));
                forms.insert(fragment);
            }
            let percent = percent_encode(value);
            if percent != **value {
                forms.insert(percent.replace("%20", "+"));
                forms.insert(percent);
            }
            for form in forms {
                if form == **value || form.len() >= MIN_ENCODED_FRAGMENT {
                    patterns.push((Zeroizing::new(form), replacement.clone()));
                }
            }
        }
        patterns.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        Redactor { patterns }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every known form of every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (pattern, replacement) in &self.patterns {
            if text.contains(pattern.as_str()) {
                text = text.replace(pattern.as_str(), replacement);
            }
        }
        text
    }
}

/// The base64 characters that encode only `value`'s bits, for each of the
/// three positions the value can start at within a longer encoded string.
fn base64_fragments(value: &[u8]) -> Vec<String> {
    let mut fragments = vec![STANDARD.encode(value)];
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&padded);
        // Character i carries bits [6i, 6i + 6); keep those fully inside the value's bits.
        let first = (8 * offset).div_ceil(6);
        let end = (8 * (offset + value.len())) / 6;
        if end > first {
            fragments.push(encoded[first..end].to_owned());
        }
    }
    fragments
}

/// `encodeURIComponent`'s output.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(name: &str, value: &str) -> Redactor {
        Redactor::new(&GrantedValues(vec![(name.into(), Some(Zeroizing::new(value.into())))]))
    }

    #[test]
    fn secret_names_are_upper_snake_case() {
        assert!(validate_name("OPENAI_API_KEY").is_ok());
        assert!(validate_name("K1").is_ok());
        for bad in ["", "openai", "1KEY", "_KEY", "KEY-1", "KEY ONE", &"K".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn redacts_the_value_and_its_encodings() {
        let value = "sk-live-0123456789abcdef";
        let r = redactor("OPENAI_API_KEY", value);
        assert_eq!(r.redact(&format!("key={value}!")), "key=[REDACTED:OPENAI_API_KEY]!");
        for embedded in [
            STANDARD.encode(value),
            STANDARD.encode(format!("user:{value}")),
            STANDARD.encode(format!("ab{value}xyz")),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("a{value}")),
        ] {
            let out = r.redact(&format!("Basic {embedded}"));
            assert!(out.contains("[REDACTED:OPENAI_API_KEY]"), "{embedded} -> {out}");
        }
        let spaced = redactor("PASSWORD", "correct horse/battery staple");
        assert_eq!(spaced.redact("p=correct%20horse%2Fbattery%20staple"), "p=[REDACTED:PASSWORD]");
        assert_eq!(spaced.redact("p=correct+horse%2Fbattery+staple"), "p=[REDACTED:PASSWORD]");
        assert_eq!(r.redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn encryption_binds_name_and_version() {
        let key = MasterKey::from_base64(&STANDARD.encode([7u8; 32]), "test").unwrap();
        let (nonce, ciphertext) = key.encrypt("A", 1, "value");
        let row = |name: &str, version| secret::Model {
            name: name.into(),
            version,
            key_id: key.id.clone(),
            nonce: nonce.clone(),
            ciphertext: ciphertext.clone(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(key.decrypt(&row("A", 1)).unwrap().as_str(), "value");
        assert!(key.decrypt(&row("B", 1)).is_err(), "moved to another name");
        assert!(key.decrypt(&row("A", 2)).is_err(), "replayed as another version");
        assert!(!ciphertext.windows(5).any(|w| w == b"value"));
    }

    #[test]
    fn a_malformed_master_key_is_refused() {
        assert!(MasterKey::from_base64("not base64!", "x").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 16]), "x").is_err());
    }
}
