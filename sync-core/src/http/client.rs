//! One HTTP exchange with the server: the request with its timeouts, bounded retries with
//! exponential backoff and jitter, and the mapping of the answer onto [`TransportError`].
//!
//! Retried (up to [`HttpOptions::max_retries`] times): network errors (no answer, timeout,
//! cut-off body), 5xx and 429. A `Retry-After` (seconds) is waited for when it is no longer
//! than [`HttpOptions::max_backoff`]; a longer one ends the call at once with `Unavailable`
//! carrying it. Everything else is final at the first answer.
//!
//! Mapping: 2xx → the body (a body that does not parse is `Network`: the answer was cut or
//! garbled); 401 → `Auth`; 429 and 5xx → `Unavailable`; any other status → `Refused` with the
//! error envelope's `code` and `message` (`http_<status>` when there is no envelope).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::HttpError;
use super::options::HttpOptions;
use crate::sync::TransportError;
use crate::wire::ErrorBody;

/// The largest answer read (a pull page of 1000 full records is a few MB).
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// Which failures a call may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Network errors, 5xx and 429: for requests that are safe to repeat (the sync protocol's
    /// are: a repeated push is answered `duplicate`).
    Always,
    /// 5xx and 429 only: for a refresh, which the server may have performed before the answer
    /// was lost (repeating it would present a rotated token).
    NotAfterNetworkError,
}

/// A whole answer.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<Duration>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error envelope's `(code, message)`, or a stand-in from the status.
    pub fn envelope(&self) -> (String, String) {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                format!("http_{}", self.status),
                format!("the server answered HTTP {}", self.status),
            ),
        }
    }

    /// The answer as a failure (for a non-2xx answer).
    pub fn to_error(&self) -> TransportError {
        let (code, message) = self.envelope();
        match self.status {
            401 => TransportError::Auth(format!("{message} ({code})")),
            429 | 500..=599 => TransportError::Unavailable {
                status: self.status,
                message: format!("{message} ({code})"),
                retry_after: self.retry_after,
            },
            status => TransportError::Refused {
                status,
                code,
                message,
            },
        }
    }

    /// The 2xx body as `T`, or the answer as a failure.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, TransportError> {
        if !self.is_success() {
            return Err(self.to_error());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            TransportError::Network(format!(
                "the server's answer (HTTP {}) is unreadable: {e}",
                self.status
            ))
        })
    }
}

/// A server and how to reach it.
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    options: HttpOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The server URL without a trailing slash, checked to be one this build can reach.
pub(crate) fn normalise_url(server_url: &str) -> Result<String, HttpError> {
    let url = server_url.trim().trim_end_matches('/');
    let supported =
        url.starts_with("http://") || (cfg!(feature = "rustls") && url.starts_with("https://"));
    let has_host = url
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty());
    if !supported || !has_host {
        let hint = if url.starts_with("https://") {
            "HTTPS needs sync-core's `rustls` feature"
        } else if cfg!(feature = "rustls") {
            "expected http://HOST[:PORT] or https://HOST[:PORT]"
        } else {
            "expected http://HOST[:PORT]"
        };
        return Err(HttpError::InvalidUrl(format!("{url:?}: {hint}")));
    }
    Ok(url.to_owned())
}

impl Client {
    pub fn new(server_url: &str, options: &HttpOptions) -> Result<Self, HttpError> {
        let base = normalise_url(server_url)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(10))))
            .user_agent(options.user_agent())
            .max_redirects(0)
            .build();
        Ok(Self {
            agent: ureq::Agent::new_with_config(config),
            base,
            options: options.clone(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send `path` (starting with `/`) with retries as `retry` allows. `Ok` is any HTTP
    /// answer (possibly a 4xx, or a 5xx/429 after the last try); `Err` is a network failure
    /// after the last try.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
        retry: Retry,
    ) -> Result<Answer, TransportError> {
        let mut attempt: u32 = 0;
        loop {
            let outcome = self.once(method, path, bearer, body);
            let (retryable, hint) = match &outcome {
                Err(_) => (retry == Retry::Always, None),
                Ok(a) if a.status == 429 || a.status >= 500 => (true, a.retry_after),
                Ok(_) => (false, None),
            };
            if !retryable || attempt >= self.options.max_retries {
                return outcome;
            }
            if hint.is_some_and(|h| h > self.options.max_backoff) {
                return outcome;
            }
            std::thread::sleep(backoff(&self.options, attempt, hint));
            attempt += 1;
        }
    }

    /// One try.
    fn once(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Answer, TransportError> {
        let url = format!("{}{path}", self.base);
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let result = match method {
            Method::Get => {
                let mut req = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            Method::Post => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send(body.unwrap_or(b"{}"))
            }
        };
        let response = result.map_err(|e| network(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| network(&e))?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}

fn network(e: &ureq::Error) -> TransportError {
    let what = match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::ConnectionFailed => "connection failed",
        _ => "request failed",
    };
    TransportError::Network(format!("{what}: {e}"))
}

/// The wait before retry number `attempt + 1`: `base · 2^attempt`, at most `max_backoff`,
/// times a random factor in [½, 1]; never less than the server's `Retry-After`.
pub(crate) fn backoff(
    options: &HttpOptions,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = options
        .base_backoff
        .saturating_mul(1u32 << attempt.min(20))
        .min(options.max_backoff);
    // uuid's v4 source is the OS RNG: no extra dependency for a little randomness.
    let permille = (uuid::Uuid::new_v4().as_u128() % 501) as u32;
    let jittered = exp.mul_f64(0.5 + f64::from(permille) / 1000.0);
    jittered.max(retry_after.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Value;

    #[test]
    fn backoff_grows_is_jittered_capped_and_honours_retry_after() {
        let o = HttpOptions {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..HttpOptions::default()
        };
        for attempt in 0..8 {
            let full = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_millis(1000));
            let d = backoff(&o, attempt, None);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        let d = backoff(&o, 0, Some(Duration::from_secs(2)));
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn urls_are_checked_and_normalised() {
        assert_eq!(
            normalise_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalise_url("ftp://x").is_err());
        assert!(normalise_url("http://").is_err());
        assert!(normalise_url("127.0.0.1:8080").is_err());
        assert_eq!(
            normalise_url("https://grid.example").is_ok(),
            cfg!(feature = "rustls")
        );
    }

    #[test]
    fn answers_map_to_transport_errors() {
        let answer = |status, body: &str| Answer {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: Some(Duration::from_secs(3)),
        };
        let env = r#"{"error": {"code": "invalid_value", "message": "bad"}}"#;
        assert_eq!(
            answer(422, env).to_error(),
            TransportError::Refused {
                status: 422,
                code: "invalid_value".into(),
                message: "bad".into()
            }
        );
        assert!(
            matches!(answer(401, env).to_error(), TransportError::Auth(m) if m.contains("bad"))
        );
        assert_eq!(
            answer(503, "<html>").to_error(),
            TransportError::Unavailable {
                status: 503,
                message: "the server answered HTTP 503 (http_503)".into(),
                retry_after: Some(Duration::from_secs(3)),
            }
        );
        assert!(matches!(
            answer(200, "{\"trunc").decode::<ErrorBody>(),
            Err(TransportError::Network(_))
        ));
        assert!(matches!(
            answer(429, env).decode::<ErrorBody>(),
            Err(TransportError::Unavailable { status: 429, .. })
        ));
    }

    /// A dead port: every try fails at once; the call gives up after the bounded retries.
    #[test]
    fn network_failures_are_retried_a_bounded_number_of_times() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let o = HttpOptions {
            max_retries: 2,
            base_backoff: Duration::from_millis(200),
            ..HttpOptions::default()
        };
        let client = Client::new(&format!("http://127.0.0.1:{port}"), &o).unwrap();
        let started = std::time::Instant::now();
        let err = client
            .send(Method::Get, "/healthz", None, None, Retry::Always)
            .unwrap_err();
        assert!(matches!(err, TransportError::Network(_)), "{err:?}");
        // Two waits: at least 100 ms + 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(300));
        let started = std::time::Instant::now();
        client
            .send(Method::Post, "/x", None, None, Retry::NotAfterNetworkError)
            .unwrap_err();
        // No wait at all (the first wait would be at least 100 ms).
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    /// A tiny HTTP server answering the given responses in turn, one per connection;
    /// returns its URL and a counter of requests served.
    fn scripted(
        answers: Vec<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // Read the request head (these tests send no body).
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut stream = reader.into_inner();
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (url, served)
    }

    #[test]
    fn unavailable_answers_are_retried_and_retry_after_is_honoured_or_returned() {
        use std::sync::atomic::Ordering;
        let busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 47\r\nConnection: close\r\n\r\n{\"error\": {\"code\": \"busy\", \"message\": \"later\"}}";
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
        let o = HttpOptions {
            max_retries: 3,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(5),
            ..HttpOptions::default()
        };
        let (url, served) = scripted(vec![busy, ok]);
        let client = Client::new(&url, &o).unwrap();
        let started = std::time::Instant::now();
        let answer = client
            .send(Method::Get, "/x", None, None, Retry::Always)
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After was not honoured"
        );

        // A Retry-After beyond max_backoff is not waited for: the call returns it.
        let throttled = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 900\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (url, served) = scripted(vec![throttled, ok]);
        let client = Client::new(&url, &o).unwrap();
        let answer = client
            .send(Method::Get, "/x", None, None, Retry::Always)
            .unwrap();
        assert_eq!(served.load(Ordering::SeqCst), 1);
        assert_eq!(
            answer.to_error(),
            TransportError::Unavailable {
                status: 429,
                message: "the server answered HTTP 429 (http_429)".into(),
                retry_after: Some(Duration::from_secs(900)),
            }
        );

        // Bounded: after max_retries the last 5xx is returned.
        let o = HttpOptions {
            max_retries: 1,
            ..o
        };
        let (url, served) = scripted(vec![busy, busy, ok]);
        let client = Client::new(&url, &o).unwrap();
        let err = client
            .send(Method::Get, "/x", None, None, Retry::Always)
            .unwrap()
            .decode::<Value>()
            .unwrap_err();
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert!(
            matches!(err, TransportError::Unavailable { status: 503, ref message, .. } if message.contains("busy")),
            "{err:?}"
        );
    }
}
