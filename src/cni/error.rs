//! CNI's error object (`{cniVersion, code, msg, details}`) and its codes.

use serde_json::{json, Value};
use std::fmt;

/// The spec's well-known error codes; 100 and up are a plugin's own.
pub mod code {
    /// The configuration's version is not one the plugin speaks.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A field of the configuration is not supported.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// The container is unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// Reading or writing failed.
    pub const IO_FAILURE: u32 = 5;
    /// The configuration could not be decoded.
    pub const DECODING_FAILURE: u32 = 6;
    /// The network configuration is invalid.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// A transient failure: the runtime should try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADDs now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// cnm's own: applying or checking the attachment failed.
    pub const CNM_FAILED: u32 = 100;
    /// cnm's own: CHECK found the attachment drifted.
    pub const CNM_DRIFT: u32 = 101;
}

/// A CNI error: printed as the spec's error object, with a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// One of [`code`].
    pub code: u32,
    /// One line: what failed.
    pub msg: String,
    /// The longer story (may be empty).
    pub details: String,
}

impl CniError {
    /// An error with `code` and `msg`.
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with `details` (the longer story).
    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The error object in version `version`'s form.
    pub fn to_json(&self, version: &str) -> Value {
        let mut v = json!({ "cniVersion": version, "code": self.code, "msg": self.msg });
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }

    /// Read a plugin's error object (`None`: it is not one).
    pub fn from_json(v: &Value) -> Option<CniError> {
        let code = v.get("code")?.as_u64()?;
        Some(CniError {
            code: u32::try_from(code).ok()?,
            msg: v.get("msg").and_then(Value::as_str).unwrap_or("").into(),
            details: v
                .get("details")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}
