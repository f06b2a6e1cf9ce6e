//! Tokens from an external OpenID Connect identity provider, verified with
//! the provider's published keys (JWKS). Keys are fetched on first use,
//! re-read every [`JWKS_MAX_AGE`], and re-read early when a token names a key
//! id we do not have (the provider rotated), at most once per
//! [`ExternalProviderConfig::min_refetch`] so that made-up key ids cannot
//! make us hammer it.

use super::{Caller, CallerSource, IdentityError, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

pub const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How to trust and read the provider's tokens.
#[derive(Debug, Clone)]
pub struct ExternalProviderConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry for us.
    pub audience: String,
    /// Where its JWKS is published.
    pub jwks_url: String,
    /// The only algorithms accepted (asymmetric ones only).
    pub algorithms: Vec<Algorithm>,
    /// Claim holding the user's groups (a list of strings); dots reach into
    /// objects, e.g. `realm_access.roles`.
    pub groups_claim: String,
    /// Claim holding the user's metadata (an object).
    pub metadata_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// The least time between two JWKS fetches.
    pub min_refetch: Duration,
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// Last successful fetch.
    fetched_at: Option<Instant>,
    /// Last fetch, successful or not.
    attempted_at: Option<Instant>,
}

impl KeyCache {
    fn fresh_key(&self, kid: &str) -> Option<DecodingKey> {
        let fresh = self.fetched_at.is_some_and(|at| at.elapsed() < JWKS_MAX_AGE);
        self.keys.get(kid).filter(|_| fresh).cloned()
    }
}

pub struct ExternalProvider {
    config: ExternalProviderConfig,
    client: reqwest::Client,
    cache: RwLock<KeyCache>,
    /// One fetch at a time; waiters re-check the cache after it.
    fetching: Mutex<()>,
    validations: HashMap<Algorithm, Validation>,
}

impl ExternalProvider {
    pub fn new(config: ExternalProviderConfig) -> Result<Self, IdentityError> {
        if config.algorithms.is_empty() {
            return Err(IdentityError::Invalid("the external identity provider needs at least one algorithm".into()));
        }
        if let Some(symmetric) = config.algorithms.iter().find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) {
            // A shared secret cannot come from a public JWKS; accepting HS*
            // here is how "sign with the public key" attacks work.
            return Err(IdentityError::Invalid(format!(
                "{symmetric:?} is symmetric and cannot be verified with a provider's public keys; use RS256, ES256 or similar"
            )));
        }
        // One validation per algorithm: jsonwebtoken wants every listed
        // algorithm in the key's family, and a provider may mix RSA and EC keys.
        let validations = config
            .algorithms
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.algorithms = vec![algorithm];
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = config.leeway_secs;
                (algorithm, validation)
            })
            .collect();
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .build()
            .map_err(|e| IdentityError::Internal(format!("building the JWKS client: {e}")))?;
        Ok(ExternalProvider {
            config,
            client,
            cache: RwLock::new(KeyCache { keys: HashMap::new(), fetched_at: None, attempted_at: None }),
            fetching: Mutex::new(()),
            validations,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The caller a valid provider token identifies, and until when the
    /// token may be accepted (`exp` plus the leeway).
    pub async fn verify(&self, token: &str) -> Result<(Caller, u64), IdentityError> {
        let header = jsonwebtoken::decode_header(token).map_err(super::tokens::describe)?;
        let Some(validation) = self.validations.get(&header.alg) else {
            return Err(IdentityError::InvalidToken(format!(
                "the identity provider's tokens must be signed with {:?}, not {:?}",
                self.config.algorithms, header.alg
            )));
        };
        let kid = header.kid.ok_or_else(|| IdentityError::InvalidToken("the token has no key id (kid)".into()))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, validation).map_err(super::tokens::describe)?;
        let claims = data.claims;
        let id = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IdentityError::InvalidToken("the token's subject (sub) is not a string".into()))?;
        let groups = match claim(&claims, &self.config.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let metadata = match claim(&claims, &self.config.metadata_claim) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        // `exp` was validated as a number; JSON may spell it with a fraction.
        let expires_at = claims.get("exp").and_then(Value::as_f64).map_or(0, |exp| exp as u64).saturating_add(self.config.leeway_secs);
        let caller = Caller {
            id: id.to_owned(),
            email: claims.get("email").and_then(Value::as_str).map(str::to_owned),
            role: Role::Authenticated,
            groups,
            metadata,
            source: CallerSource::External,
            actor: None,
        };
        Ok((caller, expires_at))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, IdentityError> {
        if let Some(key) = self.cache.read().await.fresh_key(kid) {
            return Ok(key);
        }
        let _one_fetch = self.fetching.lock().await;
        {
            // Another request may have fetched while this one waited.
            let cache = self.cache.read().await;
            if let Some(key) = cache.fresh_key(kid) {
                return Ok(key);
            }
            if cache.attempted_at.is_some_and(|at| at.elapsed() < self.config.min_refetch) {
                return match (cache.keys.get(kid), cache.fetched_at) {
                    // Stale but the provider just failed: better than nothing.
                    (Some(key), _) => Ok(key.clone()),
                    (None, Some(_)) => Err(unknown_key(kid)),
                    (None, None) => Err(IdentityError::ProviderUnavailable("no JWKS fetch has succeeded yet".into())),
                };
            }
        }
        let fetched = self.fetch().await;
        let mut cache = self.cache.write().await;
        cache.attempted_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at = cache.attempted_at;
                cache.keys.get(kid).cloned().ok_or_else(|| unknown_key(kid))
            }
            Err(error) => {
                // Keep the keys we had; the next attempt waits for min_refetch.
                tracing::warn!(error = %error, "fetching the identity provider's JWKS failed");
                cache.keys.get(kid).cloned().ok_or(error)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, IdentityError> {
        let unavailable = |e: String| IdentityError::ProviderUnavailable(e);
        let response = self.client.get(&self.config.jwks_url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("{} answered {}", self.config.jwks_url, response.status())));
        }
        let set: JwkSet = response.json().await.map_err(|e| unavailable(format!("not a JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)) {
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping a JWKS key edgefn cannot use"),
            }
        }
        Ok(keys)
    }
}

fn unknown_key(kid: &str) -> IdentityError {
    IdentityError::InvalidToken(format!("the token was signed with a key ({kid:?}) the identity provider does not publish"))
}

/// A claim by dotted path.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}
