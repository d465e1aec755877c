//! Authentication: password hashing, the JWT signing keys, access tokens, refresh-token
//! sessions and the bearer extractor.
//!
//! For handlers: take an [`AuthUser`] argument to require a valid access token, then
//! [`require_role`] to restrict by role. Tokens are issued by `routes::auth` through
//! [`session`].

pub mod extractor;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod session;

pub use extractor::{require_role, AuthUser};
pub use keys::JwtKeys;
