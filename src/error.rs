//! One error type for the library: every failure a user can cause ends here with a message that
//! says what was wrong and what to do, never a panic.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The bytes are not an image/volume we can read (corrupt, truncated, wrong format).
    Decode(String),
    /// A checkpoint or model file that is not what was asked for, or is damaged.
    Weights(String),
    /// A prompt (box, point) that cannot be used with this image.
    Prompt(String),
    /// Input that is well-formed but unusable (too large, empty, mismatched sizes...).
    Input(String),
    /// The compute device failed (adapter lost, out of memory).
    Device(String),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(m) => write!(f, "cannot read image: {m}"),
            Error::Weights(m) => write!(f, "model weights: {m}"),
            Error::Prompt(m) => write!(f, "prompt: {m}"),
            Error::Input(m) => write!(f, "input: {m}"),
            Error::Device(m) => write!(f, "compute device: {m}"),
            Error::Io(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The same error with `what` (e.g. which file) put in front of its message.
    pub fn context(self, what: &str) -> Error {
        let pre = |m: String| format!("{what}: {m}");
        match self {
            Error::Decode(m) => Error::Decode(pre(m)),
            Error::Weights(m) => Error::Weights(pre(m)),
            Error::Prompt(m) => Error::Prompt(pre(m)),
            Error::Input(m) => Error::Input(pre(m)),
            Error::Device(m) => Error::Device(pre(m)),
            Error::Io(m) => Error::Io(pre(m)),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
