//! The HMAC secret that signs access tokens, and the jsonwebtoken keys made from it.
//!
//! Invariant: the secret never appears in `Debug` output or logs. Where it comes from
//! (`GRID_JWT_SECRET` or the generated `<data-dir>/jwt-secret`) is `crate::config`'s job.

use jsonwebtoken::{DecodingKey, EncodingKey};

/// Signing keys for HS256 access tokens.
#[derive(Clone)]
pub struct JwtKeys {
    /// For signing.
    pub encoding: EncodingKey,
    /// For verifying.
    pub decoding: DecodingKey,
}

impl JwtKeys {
    /// Keys from a shared secret.
    pub fn from_secret(secret: &[u8]) -> JwtKeys {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use jsonwebtoken::{decode, encode, Algorithm, Header, Validation};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    #[test]
    fn keys_sign_and_verify() {
        let keys = JwtKeys::from_secret(b"0123456789abcdef0123456789abcdef");
        let exp = (chrono::Utc::now().timestamp() + 60) as u64;
        let token = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "u".into(),
                exp,
            },
            &keys.encoding,
        )
        .unwrap();
        let data =
            decode::<Claims>(&token, &keys.decoding, &Validation::new(Algorithm::HS256)).unwrap();
        assert_eq!(data.claims.sub, "u");
        assert_eq!(format!("{keys:?}"), "JwtKeys(<redacted>)");
    }
}
