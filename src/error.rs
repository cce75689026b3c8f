//! The one error type: what gwshim was doing, and the OS error that stopped it.

use std::fmt;
use std::io;

#[derive(Debug)]
pub struct Error {
    context: String,
    source: Option<io::Error>,
}

pub type Result<T> = std::result::Result<T, Error>;

#[allow(dead_code)] // Error::msg is not called yet on this branch; keeps clippy -D warnings green
impl Error {
    pub fn msg(context: impl Into<String>) -> Self {
        Error {
            context: context.into(),
            source: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(e) => write!(f, "{}: {}", self.context, e),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for Error {}

/// Attach what gwshim was doing to an OS error.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error {
            context: what(),
            source: Some(e),
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(io::Error::from).context(what)
    }
}
