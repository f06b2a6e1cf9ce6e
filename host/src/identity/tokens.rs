//! edgefn's own access tokens: HS256 JWTs signed with a key derived from the
//! secrets master key, so every server sharing the database verifies them.
//! During a master-key rotation tokens signed under the previous key still
//! verify; the `kid` header says which key signed.

use super::IdentityError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The master-key derivation purpose of the signing key.
pub const SIGNING_KEY_PURPOSE: &str = "access token signing v1";

/// Claims of an edgefn access token. Only who the caller is: groups and
/// metadata are read at request time.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// The refresh-token family (session) it was issued in.
    pub sid: String,
    pub role: String,
    /// On a token an admin had issued to call functions as this user, the
    /// admin (RFC 8693's actor claim); absent on the user's own tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// Who acts on the subject's behalf.
#[derive(Debug, Serialize, Deserialize)]
pub struct Actor {
    /// The admin key's caller label, `admin-key:<prefix>`.
    pub sub: String,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys that sign (the first) and verify (all) access tokens.
pub struct TokenKeys {
    issuer: String,
    keys: Vec<SigningKey>,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(issuer: &str, derived: Vec<(String, zeroize::Zeroizing<[u8; 32]>)>) -> Self {
        assert!(!derived.is_empty(), "there is always a current master key");
        let keys = derived
            .into_iter()
            .map(|(kid, bytes)| SigningKey {
                kid,
                encoding: EncodingKey::from_secret(&bytes[..]),
                decoding: DecodingKey::from_secret(&bytes[..]),
            })
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Same clocks: edgefn issued it.
        validation.leeway = 0;
        TokenKeys { issuer: issuer.to_owned(), keys, validation }
    }

    /// A signed access token for `user_id` in session `session_id`, acted
    /// on by `actor` when an admin asked for it.
    pub fn issue(&self, user_id: &str, session_id: &str, ttl: Duration, actor: Option<&str>) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            sub: user_id.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ttl.as_secs().max(1),
            sid: session_id.to_owned(),
            role: "authenticated".into(),
            act: actor.map(|sub| Actor { sub: sub.to_owned() }),
        };
        let key = &self.keys[0];
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).expect("HS256 signing does not fail")
    }

    /// The claims of a valid token; the error says what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, IdentityError> {
        let header = jsonwebtoken::decode_header(token).map_err(describe)?;
        if header.alg != Algorithm::HS256 {
            return Err(IdentityError::InvalidToken(format!(
                "edgefn access tokens are signed with HS256, not {:?}",
                header.alg
            )));
        }
        let key = match header.kid.as_deref() {
            Some(kid) => self.keys.iter().find(|k| k.kid == kid).ok_or_else(|| {
                IdentityError::InvalidToken("the token was signed with a key this server does not know; sign in again".into())
            })?,
            None => return Err(IdentityError::InvalidToken("the token has no key id (kid)".into())),
        };
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation).map(|data| data.claims).map_err(describe)
    }
}

/// The `iss` claim, read without verifying anything, only to choose the
/// verifier (which then checks `iss` itself).
pub fn unverified_issuer(token: &str) -> Result<String, IdentityError> {
    let malformed = || IdentityError::InvalidToken("the token is not a JWT (header.payload.signature)".into());
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| malformed())?;
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let claims: Issuer = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    claims.iss.ok_or_else(|| IdentityError::InvalidToken("the token has no issuer (iss)".into()))
}

/// A token error as a caller should read it.
pub fn describe(error: jsonwebtoken::errors::Error) -> IdentityError {
    use jsonwebtoken::errors::ErrorKind;
    let reason = match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf is in the future)".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's signing algorithm is not accepted".to_owned()
        }
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted".to_owned(),
        ErrorKind::InvalidAudience => "the token is not meant for this server (aud)".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token lacks the {claim:?} claim"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            "the token is malformed".to_owned()
        }
        _ => "the token is not valid".to_owned(),
    };
    IdentityError::InvalidToken(reason)
}
