//! Where a live plan comes from, and why reading it failed.

use std::fmt;
use std::path::PathBuf;

/// Largest plan text read from any source: plans are small; a bigger value is a mistake.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// A place a plan (chaos-core's TOML or JSON format) is read from.
#[derive(Clone)]
#[non_exhaustive]
pub enum ConfigSource {
    /// An environment variable holding the plan inline (TOML, or JSON starting with `{`).
    Env(String),
    /// A file (TOML, or JSON starting with `{`).
    File(PathBuf),
    /// An SSM Parameter Store parameter, `String` or `SecureString` (read with decryption).
    #[cfg(feature = "ssm")]
    Ssm {
        /// The client reading it (not wrapped in chaos, or its own faults could hide the plan).
        client: aws_sdk_ssm::Client,
        /// The parameter's name or ARN.
        name: String,
    },
    /// An AWS AppConfig configuration profile, read through the AppConfig Lambda extension's
    /// local HTTP endpoint.
    #[cfg(feature = "appconfig")]
    AppConfig(super::appconfig::AppConfigSource),
}

impl ConfigSource {
    /// The plan inline in environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        Self::Env(name.into())
    }

    /// The plan in the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }

    /// The plan in SSM parameter `name`, read with `client`.
    #[cfg(feature = "ssm")]
    pub fn ssm(client: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        Self::Ssm {
            client,
            name: name.into(),
        }
    }

    /// The configuration `profile` of AppConfig `application` in `environment`, read through
    /// the AppConfig Lambda extension on its usual port (see [`AppConfigSource`] to set the
    /// port or the timeout).
    ///
    /// [`AppConfigSource`]: super::appconfig::AppConfigSource
    #[cfg(feature = "appconfig")]
    pub fn appconfig(
        application: impl Into<String>,
        environment: impl Into<String>,
        profile: impl Into<String>,
    ) -> Self {
        Self::AppConfig(super::appconfig::AppConfigSource::new(
            application,
            environment,
            profile,
        ))
    }

    /// Reads the plan's text.
    pub(crate) async fn fetch(&self) -> Result<String, SourceError> {
        let text = match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(text) => text,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SourceError::Missing {
                        source_name: self.to_string(),
                    });
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SourceError::Read {
                        source_name: self.to_string(),
                        message: "the value is not UTF-8".to_owned(),
                    });
                }
            },
            // A plan file is small: read in place rather than on tokio's blocking pool.
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SourceError::Missing {
                        source_name: self.to_string(),
                    });
                }
                Err(error) => {
                    return Err(SourceError::Read {
                        source_name: self.to_string(),
                        message: error.to_string(),
                    });
                }
            },
            #[cfg(feature = "ssm")]
            Self::Ssm { client, name } => {
                let output = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|error| {
                        let message = match error.as_service_error() {
                            Some(service) => format!("{service}"),
                            None => format!(
                                "{}",
                                aws_smithy_types::error::display::DisplayErrorContext(&error)
                            ),
                        };
                        SourceError::Read {
                            source_name: self.to_string(),
                            message,
                        }
                    })?;
                output
                    .parameter()
                    .and_then(|parameter| parameter.value())
                    .map(str::to_owned)
                    .ok_or_else(|| SourceError::Missing {
                        source_name: self.to_string(),
                    })?
            }
            #[cfg(feature = "appconfig")]
            Self::AppConfig(source) => source.fetch(self.to_string()).await?,
        };
        if text.len() > MAX_PLAN_BYTES {
            return Err(SourceError::TooLarge {
                source_name: self.to_string(),
                bytes: text.len(),
            });
        }
        Ok(text)
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            #[cfg(feature = "ssm")]
            Self::Ssm { name, .. } => write!(f, "SSM parameter {name}"),
            #[cfg(feature = "appconfig")]
            Self::AppConfig(source) => write!(f, "{source}"),
        }
    }
}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigSource({self})")
    }
}

/// Why a live plan could not be used. Each names the source; none stops the application.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Nothing is there: the variable is unset, the file or parameter does not exist.
    #[error(
        "{source_name} is not set or does not exist; create it with a chaos plan (TOML or JSON)"
    )]
    Missing {
        /// The source, as displayed.
        source_name: String,
    },
    /// Reading failed (I/O, permissions, the SSM call, the AppConfig extension's answer).
    #[error("could not read {source_name}: {message}")]
    Read {
        /// The source, as displayed.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The text is larger than [`MAX_PLAN_BYTES`].
    #[error("{source_name} holds {bytes} bytes; a plan may hold at most {MAX_PLAN_BYTES}")]
    TooLarge {
        /// The source, as displayed.
        source_name: String,
        /// Its size.
        bytes: usize,
    },
    /// The text is not a valid plan, or names what the wire wrapper does not know.
    #[error("{source_name}: {message}")]
    Plan {
        /// The source, as displayed.
        source_name: String,
        /// The plan error: line and column, or rule and field, and the fix.
        message: String,
    },
}
