//! Password hashing: argon2id, m = 19456 KiB, t = 2, p = 1 (the OWASP minimum), stored as a
//! PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) that carries its own parameters,
//! so changing the parameters later still verifies old hashes.
//!
//! Invariants: a password is never logged; verification compares in constant time (argon2
//! crate); the bounds on length keep hashing cost bounded.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::error::{AppError, AppResult};

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Longest accepted password in bytes (hashing cost is linear in it).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn hasher() -> AppResult<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Check a new password: non-empty and at most [`MAX_PASSWORD_BYTES`].
pub fn validate_password(password: &str) -> AppResult<()> {
    if password.is_empty() {
        return Err(AppError::invalid("password must not be empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Hash `password` with a fresh random salt. CPU-heavy (~tens of ms): call it from a
/// blocking thread, not the async executor.
pub fn hash_password(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 salt: {e}")))?;
    let hash = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`. A malformed stored hash is an internal
/// error, not a mismatch. CPU-heavy like [`hash_password`].
pub fn verify_password(password: &str, hash: &str) -> AppResult<bool> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(hash)
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored password hash unreadable: {e}")))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(AppError::internal(anyhow::anyhow!("argon2 verify: {e}"))),
    }
}

/// A real argon2id hash with the current parameters (of a password nobody uses), so a
/// dummy verification costs exactly what a real one does — from the first call on, with no
/// one-time hashing that would make the first unknown-username login slower.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$KScMIn6EuMl4TEjYuIA/fA$AsHILncywoQzBQ3YyB8DlLtN7tJxb3Uu1VSPW8yFWIM";

/// Spend the same time as a real verification, for unknown usernames, so response times do
/// not reveal which usernames exist.
pub fn verify_dummy(password: &str) {
    let _ = verify_password(password, DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("正确的密码 horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("正确的密码 horse", &hash).unwrap());
        assert!(!verify_password("wrong", &hash).unwrap());
        assert_ne!(hash, hash_password("正确的密码 horse").unwrap(), "salted");
        assert!(verify_password("x", "not a phc string").is_err());
    }

    #[test]
    fn dummy_hash_has_the_current_parameters() {
        assert!(DUMMY_HASH.starts_with(&format!(
            "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}$"
        )));
        assert!(verify_password("grid dummy password", DUMMY_HASH).unwrap());
        verify_dummy("anything");
    }

    #[test]
    fn validates() {
        assert!(validate_password("").is_err());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(validate_password("ok").is_ok());
    }
}
