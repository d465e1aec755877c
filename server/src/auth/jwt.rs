//! Access tokens: short-lived HS256 JWTs that say who is calling from which device.
//!
//! Owns: the claim set, issuing ([`issue_access_token`]) and verifying
//! ([`verify_access_token`]).
//!
//! Invariants (anchors.md, "jsonwebtoken traps"):
//! - The algorithm is pinned: tokens are signed with HS256 and the validation accepts
//!   exactly `[HS256]`, so `alg: none`, RS/ES tokens and algorithm-confusion tricks fail.
//! - `exp`, `nbf`, `iss`, `aud` and `sub` are required and checked (`iss = grid-server`,
//!   `aud = grid`); leeway is [`LEEWAY_SECS`]. The claim struct is typed (numbers are
//!   integers, ids are UUID strings), so `exp: "…"` or a malformed id fails to decode.
//! - `typ` must be `access`: nothing else signed with the same key (a future token kind) can
//!   pass as an access token. Refresh tokens are opaque random strings, not JWTs at all.
//! - A valid signature is necessary, not sufficient: the bearer extractor
//!   (`crate::auth::extractor`) also checks the device, its session and the user in the
//!   database on every request, so revocation does not wait for `exp`.
//! - Tokens are never logged.

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sync_core::ids::{DeviceId, UserId};
use sync_core::workflow::Role;

use super::JwtKeys;
use crate::error::{AppError, AppResult};

/// Lifetime of an access token: 15 minutes. Short, because a stolen token is only stopped by
/// the database checks of the extractor; phones refresh it with their refresh token.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Clock skew tolerated on `exp` and `nbf` (between server processes, not phones: phones
/// never validate tokens).
pub const LEEWAY_SECS: u64 = 30;
/// The `iss` claim.
pub const ISSUER: &str = "grid-server";
/// The `aud` claim.
pub const AUDIENCE: &str = "grid";
/// The `typ` claim of access tokens.
pub const TYP_ACCESS: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: UserId,
    /// The device id.
    pub dev: DeviceId,
    /// The user's role when the token was issued (informational: the extractor uses the
    /// role stored now, so a role change takes effect at the next request).
    pub role: Role,
    /// Token kind: always [`TYP_ACCESS`] for access tokens.
    pub typ: String,
    /// Issuer: [`ISSUER`].
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// A freshly signed access token.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The compact JWT.
    pub token: String,
    /// Seconds until it expires (the `expires_in` of the login response).
    pub expires_in: i64,
    /// Its claims.
    pub claims: AccessClaims,
}

impl std::fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("claims", &self.claims)
            .finish()
    }
}

/// The claims of a new access token issued at `now_secs` (seconds since the Unix epoch).
pub fn access_claims(user: UserId, device: DeviceId, role: Role, now_secs: i64) -> AccessClaims {
    AccessClaims {
        sub: user,
        dev: device,
        role,
        typ: TYP_ACCESS.to_owned(),
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        iat: now_secs,
        nbf: now_secs,
        exp: now_secs + ACCESS_TOKEN_TTL_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

/// Sign `claims` with HS256 (exposed so tests can sign unusual but well-keyed claims).
pub fn sign_claims<C: Serialize>(keys: &JwtKeys, claims: &C) -> AppResult<String> {
    encode(&Header::new(Algorithm::HS256), claims, &keys.encoding)
        .map_err(|e| AppError::internal(anyhow::anyhow!("signing an access token: {e}")))
}

/// Issue an access token for `user` on `device`, valid for [`ACCESS_TOKEN_TTL_SECS`].
pub fn issue_access_token(
    keys: &JwtKeys,
    user: UserId,
    device: DeviceId,
    role: Role,
) -> AppResult<IssuedAccessToken> {
    let now = chrono::Utc::now().timestamp();
    let claims = access_claims(user, device, role, now);
    let token = sign_claims(keys, &claims)?;
    Ok(IssuedAccessToken {
        token,
        expires_in: ACCESS_TOKEN_TTL_SECS,
        claims,
    })
}

/// The validation rules of access tokens (see the module invariants).
pub fn access_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.leeway = LEEWAY_SECS;
    validation
}

/// Verify an access token's signature and claims. Every failure is a 401: `token_expired`
/// when only the expiry is wrong (the phone should refresh), `invalid_token` otherwise. The
/// reason is logged at debug level, never the token.
pub fn verify_access_token(keys: &JwtKeys, token: &str) -> AppResult<AccessClaims> {
    let data =
        decode::<AccessClaims>(token, &keys.decoding, &access_validation()).map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            match e.kind() {
                JwtErrorKind::ExpiredSignature => {
                    AppError::unauthorized("the access token has expired")
                        .with_code("token_expired")
                }
                _ => invalid_token(),
            }
        })?;
    let claims = data.claims;
    if claims.typ != TYP_ACCESS {
        tracing::debug!(typ = %claims.typ, "token of another kind presented as access token");
        return Err(invalid_token());
    }
    Ok(claims)
}

/// 401 `invalid_token`.
pub fn invalid_token() -> AppError {
    AppError::unauthorized("the access token is invalid").with_code("invalid_token")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn keys() -> JwtKeys {
        JwtKeys::from_secret(b"unit-test-secret-unit-test-secret")
    }

    #[test]
    fn issue_then_verify() {
        let keys = keys();
        let (u, d) = (UserId::new(), DeviceId::new());
        let issued = issue_access_token(&keys, u, d, Role::Worker).unwrap();
        assert_eq!(issued.expires_in, 900);
        let claims = verify_access_token(&keys, &issued.token).unwrap();
        assert_eq!(claims, issued.claims);
        assert_eq!((claims.sub, claims.dev, claims.role), (u, d, Role::Worker));
        assert!(!format!("{issued:?}").contains(&issued.token));
    }

    #[test]
    fn refuses_bad_claims() {
        let keys = keys();
        let now = chrono::Utc::now().timestamp();
        let good = serde_json::to_value(access_claims(
            UserId::new(),
            DeviceId::new(),
            Role::Admin,
            now,
        ))
        .unwrap();
        let variant = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v;
            }
            sign_claims(&keys, &c).unwrap()
        };
        assert!(verify_access_token(&keys, &sign_claims(&keys, &good).unwrap()).is_ok());
        for (k, v) in [
            ("exp", json!(null)),
            ("exp", json!((now + 600).to_string())),
            ("exp", json!(now - 3600)),
            ("nbf", json!(null)),
            ("nbf", json!(now + 3600)),
            ("aud", json!("other")),
            ("iss", json!("other")),
            ("sub", json!(null)),
            ("sub", json!("not-a-uuid")),
            ("typ", json!("refresh")),
            ("role", json!("root")),
        ] {
            let err = verify_access_token(&keys, &variant(k, v.clone())).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Unauthorized, "{k}={v}");
        }
        let expired = verify_access_token(&keys, &variant("exp", json!(now - 3600))).unwrap_err();
        assert_eq!(expired.code(), "token_expired");
        let other_key = JwtKeys::from_secret(b"another-secret-another-secret!!");
        let forged = sign_claims(&other_key, &good).unwrap();
        assert_eq!(
            verify_access_token(&keys, &forged).unwrap_err().code(),
            "invalid_token"
        );
        assert!(verify_access_token(&keys, "not.a.jwt").is_err());
        assert!(verify_access_token(&keys, "").is_err());
    }
}
