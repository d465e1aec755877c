//! Authentication building blocks: password hashing and the JWT signing keys.
//! (Login, refresh-token rotation and the bearer extractor are built on these.)

pub mod keys;
pub mod password;

pub use keys::JwtKeys;
