//! Logging in and out: `POST /api/v1/auth/login`, `/auth/logout`, and the token refresh the
//! transport performs on a 401 (`/auth/refresh`).
//!
//! Invariants:
//! - A login registers the replica's own device id: it is the node of the replica's clock and
//!   the `device_id` of every push, so the server's device record and the stamps agree. An
//!   answer naming another device is refused (nothing is stored).
//! - The session (`Replica::set_session`) is stored before the tokens: a login refused by the
//!   replica (another user's unsent changes are on the phone) stores no token, and the
//!   server session it opened is ended again at once.
//! - The outbox is never touched by logging in or out.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{Answer, Client, Method, Retry};
use super::error::HttpError;
use super::options::HttpOptions;
use crate::ids::{DeviceId, GridId, UserId};
use crate::replica::{Credentials, Replica};
use crate::sync::TransportError;
use crate::workflow::Role;

/// Who logged in, as the server answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoginInfo {
    pub user_id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    /// The grids assigned to the user (a supervisor's scope is their area: the first pull
    /// states it).
    pub grid_ids: Vec<GridId>,
    /// This replica's device id, now registered with the server.
    pub device_id: DeviceId,
    pub server_url: String,
}

/// The token part of a login or refresh answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    pub refresh_token: String,
    pub device_id: DeviceId,
    #[serde(default)]
    user: Option<UserAnswer>,
}

#[derive(Deserialize)]
struct UserAnswer {
    id: UserId,
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    role: String,
    #[serde(default)]
    grid_ids: Vec<GridId>,
}

/// Log in with the default [`HttpOptions`]. See [`login_with`].
pub fn login(
    replica: &Replica,
    server_url: &str,
    username: &str,
    password: &str,
    device_name: Option<&str>,
) -> Result<LoginInfo, HttpError> {
    login_with(
        replica,
        server_url,
        username,
        password,
        device_name,
        &HttpOptions::default(),
    )
}

/// `POST /api/v1/auth/login` with this replica's device id; stores the user in the replica's
/// session and the server URL and tokens in its credentials. A wrong password is
/// `Transport(Auth)`, a login the server throttles `Transport(Unavailable { status: 429 })`.
pub fn login_with(
    replica: &Replica,
    server_url: &str,
    username: &str,
    password: &str,
    device_name: Option<&str>,
    options: &HttpOptions,
) -> Result<LoginInfo, HttpError> {
    let client = Client::new(server_url, options)?;
    let device_id = replica.device_id();
    let mut body = json!({"username": username, "password": password, "device_id": device_id});
    if let (Some(name), Some(obj)) = (device_name, body.as_object_mut()) {
        obj.insert("device_name".into(), json!(name));
    }
    let body = serde_json::to_vec(&body).map_err(|e| HttpError::Protocol(e.to_string()))?;
    let answer = client.send(
        Method::Post,
        "/api/v1/auth/login",
        None,
        Some(&body),
        Retry::Always,
    )?;
    let tokens: TokenAnswer = answer.decode()?;
    let user = tokens
        .user
        .as_ref()
        .ok_or_else(|| HttpError::Protocol("the login answer has no user".into()))?;
    let role: Role = user
        .role
        .parse()
        .map_err(|e: String| HttpError::Protocol(e))?;
    if tokens.device_id != device_id {
        return Err(HttpError::Protocol(format!(
            "the server registered device {} instead of this phone's {device_id}",
            tokens.device_id
        )));
    }
    if let Err(e) = replica.set_session(user.id, role, user.grid_ids.clone()) {
        // Best effort: end the server session nobody will use.
        let _ = client.send(
            Method::Post,
            "/api/v1/auth/logout",
            Some(&tokens.access_token),
            None,
            Retry::NotAfterNetworkError,
        );
        return Err(e.into());
    }
    replica.save_credentials(&Credentials {
        server_url: client.base_url().to_owned(),
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
    })?;
    Ok(LoginInfo {
        user_id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        role,
        grid_ids: user.grid_ids.clone(),
        device_id,
        server_url: client.base_url().to_owned(),
    })
}

/// End this device's session: `POST /api/v1/auth/logout`, then forget the tokens. The tokens
/// are forgotten whatever the server answers (a phone that cannot reach the server still
/// logs out locally; the error is returned). The session's user, the records and the outbox
/// stay: the same user's next login syncs everything unsent.
pub fn logout(replica: &Replica) -> Result<(), HttpError> {
    logout_with(replica, &HttpOptions::default())
}

/// [`logout`] with `options`.
pub fn logout_with(replica: &Replica, options: &HttpOptions) -> Result<(), HttpError> {
    let Some(credentials) = replica.credentials()? else {
        return Ok(());
    };
    let outcome = Client::new(&credentials.server_url, options).and_then(|client| {
        let answer = client.send(
            Method::Post,
            "/api/v1/auth/logout",
            Some(&credentials.access_token),
            None,
            Retry::Always,
        )?;
        // 401: the session had already ended (expired, revoked): logged out all the same.
        if answer.is_success() || answer.status == 401 {
            Ok(())
        } else {
            Err(HttpError::Transport(answer.to_error()))
        }
    });
    replica.clear_tokens()?;
    outcome
}

/// `POST /api/v1/auth/refresh`: a new token pair for `refresh_token`. Not retried after a
/// network error (see the module notes of [`super`]). A refusal is `Auth` with "log in again".
pub(crate) fn refresh(client: &Client, refresh_token: &str) -> Result<TokenAnswer, TransportError> {
    let body = serde_json::to_vec(&json!({"refresh_token": refresh_token}))
        .map_err(|e| TransportError::Network(e.to_string()))?;
    let answer = client.send(
        Method::Post,
        "/api/v1/auth/refresh",
        None,
        Some(&body),
        Retry::NotAfterNetworkError,
    )?;
    if answer.is_success() {
        return answer.decode();
    }
    match answer.status {
        429 | 500..=599 => Err(answer.to_error()),
        _ => Err(log_in_again(&answer)),
    }
}

/// An `Auth` error telling the worker to log in again.
pub(crate) fn log_in_again(answer: &Answer) -> TransportError {
    let (code, message) = answer.envelope();
    let mut text = format!("{message} ({code})");
    if !message.contains("log in again") {
        text.push_str("; log in again");
    }
    text.push_str(" - unsent changes stay on this phone");
    TransportError::Auth(text)
}
