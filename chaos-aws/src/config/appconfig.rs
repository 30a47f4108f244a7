//! AWS AppConfig through the AppConfig Lambda extension's local HTTP endpoint
//! (`http://localhost:2772/applications/{app}/environments/{env}/configurations/{profile}`).
//!
//! The extension polls AppConfig itself and serves its cached copy on loopback, so a fetch
//! here is one local HTTP/1 request: no AWS credentials, no SDK client.

use std::ffi::OsStr;
use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::source::{MAX_PLAN_BYTES, SourceError};

/// The environment variable the extension reads its port from (and so do we).
pub const APPCONFIG_PORT_ENV_VAR: &str = "AWS_APPCONFIG_EXTENSION_HTTP_PORT";
/// The extension's port unless [`APPCONFIG_PORT_ENV_VAR`] says otherwise.
pub const DEFAULT_APPCONFIG_PORT: u16 = 2772;
/// How long a fetch waits for the extension's whole answer before giving up (no faults, a
/// warning): long enough for the extension's first fetch from AppConfig after a cold start.
pub const DEFAULT_APPCONFIG_TIMEOUT: Duration = Duration::from_secs(3);

/// Where an AppConfig configuration is read: application, environment and configuration
/// profile (names or ids, as the extension accepts them), the extension's port, a timeout.
#[derive(Clone, PartialEq, Eq)]
pub struct AppConfigSource {
    application: String,
    environment: String,
    profile: String,
    /// The port, or why [`APPCONFIG_PORT_ENV_VAR`] could not be read (reported by each fetch:
    /// a bad setting means no faults and a warning, never a failed start).
    port: Result<u16, String>,
    timeout: Duration,
}

impl AppConfigSource {
    /// The configuration `profile` of `application` in `environment`, through the extension
    /// on the port named by [`APPCONFIG_PORT_ENV_VAR`] ([`DEFAULT_APPCONFIG_PORT`] when unset),
    /// waiting at most [`DEFAULT_APPCONFIG_TIMEOUT`].
    pub fn new(
        application: impl Into<String>,
        environment: impl Into<String>,
        profile: impl Into<String>,
    ) -> Self {
        Self {
            application: application.into(),
            environment: environment.into(),
            profile: profile.into(),
            port: port_from_env(std::env::var_os(APPCONFIG_PORT_ENV_VAR).as_deref()),
            timeout: DEFAULT_APPCONFIG_TIMEOUT,
        }
    }

    /// The extension's port, instead of reading [`APPCONFIG_PORT_ENV_VAR`].
    pub fn port(mut self, port: u16) -> Self {
        self.port = Ok(port);
        self
    }

    /// How long a fetch waits for the whole answer ([`DEFAULT_APPCONFIG_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL fetched (with the port's error in place of the port when it could not be read).
    pub fn url(&self) -> String {
        let port = match &self.port {
            Ok(port) => port.to_string(),
            Err(_) => format!("${APPCONFIG_PORT_ENV_VAR}"),
        };
        format!("http://localhost:{port}{}", self.path())
    }

    fn path(&self) -> String {
        format!(
            "/applications/{}/environments/{}/configurations/{}",
            encode_segment(&self.application),
            encode_segment(&self.environment),
            encode_segment(&self.profile),
        )
    }

    /// Reads the configuration's text. `source_name` is the source as displayed.
    pub(crate) async fn fetch(&self, source_name: String) -> Result<String, SourceError> {
        let read_error = |message: String| SourceError::Read {
            source_name: source_name.clone(),
            message,
        };
        let port = self.port.clone().map_err(read_error)?;
        let answer = tokio::time::timeout(self.timeout, get(port, &self.path())).await;
        let (status, body) = match answer {
            Err(_) => {
                return Err(read_error(format!(
                    "the AppConfig extension on localhost:{port} did not answer within {:?}; \
                     raise the source's timeout if the extension is slow to start",
                    self.timeout
                )));
            }
            Ok(Err(GetError::TooLarge)) => {
                return Err(SourceError::TooLarge {
                    source_name,
                    bytes: MAX_PLAN_BYTES + 1,
                });
            }
            Ok(Err(GetError::Http(message))) => return Err(read_error(message)),
            Ok(Ok(answer)) => answer,
        };
        let text = String::from_utf8(body.to_vec());
        if !status.is_success() {
            let detail = text.as_deref().unwrap_or("").trim();
            let detail: String = detail.chars().take(200).collect();
            let hint = if status == hyper::StatusCode::NOT_FOUND {
                "; check the application, environment and profile names and that a deployment \
                 of the profile exists"
            } else {
                ""
            };
            return Err(read_error(format!(
                "the AppConfig extension answered {status}{}{detail}{hint}",
                if detail.is_empty() { "" } else { ": " },
            )));
        }
        text.map_err(|_| read_error("the configuration is not UTF-8 text".to_owned()))
    }
}

/// Why the HTTP exchange with the extension failed.
enum GetError {
    Http(String),
    TooLarge,
}

/// One `GET` on a fresh loopback connection; the status and the whole body.
async fn get(port: u16, path: &str) -> Result<(hyper::StatusCode, Bytes), GetError> {
    let stream = tokio::net::TcpStream::connect(("localhost", port))
        .await
        .map_err(|error| {
            GetError::Http(format!(
                "cannot connect to the AppConfig extension on localhost:{port}: {error} (is the \
                 AWS AppConfig Lambda extension layer attached to the function?)"
            ))
        })?;
    let http_error = |error: hyper::Error| {
        GetError::Http(format!(
            "HTTP exchange with the AppConfig extension on localhost:{port} failed: {error}"
        ))
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    // The connection is driven by its own task, ended when the fetch ends (or is dropped at
    // the timeout), so a stalled extension holds no task and no socket.
    let _driver = AbortOnDrop(tokio::spawn(connection));
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("localhost:{port}"))
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|error| GetError::Http(format!("cannot build the request for {path}: {error}")))?;
    let response = sender.send_request(request).await.map_err(http_error)?;
    let status = response.status();
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|bytes| bytes > MAX_PLAN_BYTES) {
        return Err(GetError::TooLarge);
    }
    let body = Limited::new(response.into_body(), MAX_PLAN_BYTES)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                GetError::TooLarge
            } else {
                GetError::Http(format!(
                    "reading the AppConfig extension's answer on localhost:{port} failed: {error}"
                ))
            }
        })?
        .to_bytes();
    Ok((status, body))
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The port in [`APPCONFIG_PORT_ENV_VAR`]'s value (`None`: unset, the default port).
fn port_from_env(value: Option<&OsStr>) -> Result<u16, String> {
    let Some(value) = value else {
        return Ok(DEFAULT_APPCONFIG_PORT);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!(
            "{APPCONFIG_PORT_ENV_VAR} is {text:?}; expected the extension's port, a number from \
             1 to 65535 (unset means {DEFAULT_APPCONFIG_PORT})"
        )),
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl fmt::Display for AppConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AppConfig {}/{}/{} (extension on ",
            self.application, self.environment, self.profile
        )?;
        match &self.port {
            Ok(port) => write!(f, "localhost:{port})"),
            Err(_) => write!(f, "an unreadable port)"),
        }
    }
}

impl fmt::Debug for AppConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfigSource")
            .field("url", &self.url())
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_comes_from_the_environment_or_defaults() {
        assert_eq!(port_from_env(None), Ok(2772));
        assert_eq!(port_from_env(Some(OsStr::new(" 2773 "))), Ok(2773));
        for bad in ["", "0", "70000", "http"] {
            let error = port_from_env(Some(OsStr::new(bad))).unwrap_err();
            assert!(
                error.contains(APPCONFIG_PORT_ENV_VAR) && error.contains(&format!("{bad:?}")),
                "{error}"
            );
        }
    }

    #[test]
    fn the_url_is_the_extensions_with_encoded_segments() {
        let source = AppConfigSource::new("orders app", "prod", "chaos/plan").port(2772);
        assert_eq!(
            source.url(),
            "http://localhost:2772/applications/orders%20app/environments/prod/configurations/chaos%2Fplan"
        );
        assert_eq!(
            source.to_string(),
            "AppConfig orders app/prod/chaos/plan (extension on localhost:2772)"
        );
    }
}
