//! [`StoreError`]: the one error type of the store, and its conversions.

/// Everything that can go wrong in the store.
///
/// Messages of the client-facing variants (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`) start with
/// the AWS error code when AWS has one, followed by `": "` and a human sentence, e.g.
/// `NotFound("NoSuchBucket: bucket 'fw' does not exist")`. [`StoreError::code`] extracts that code so the
/// control plane can map errors to the wire in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The resource, bucket, key, version, upload or stream does not exist
    /// (codes: `NoSuchBucket`, `NoSuchKey`, `NoSuchVersion`, `NoSuchUpload`, `ResourceNotFoundException`).
    #[error("not found: {0}")]
    NotFound(String),
    /// A create found an existing item (`BucketAlreadyOwnedByYou`, `ResourceAlreadyExistsException`).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The operation conflicts with the current state (`BucketNotEmpty`).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is malformed (`InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`,
    /// `InvalidArgument`, `KeyTooLongError`, `InvalidRequestException`, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata database failed or holds something unreadable.
    #[error("database error: {0}")]
    Db(String),
}

impl StoreError {
    /// The AWS error code at the start of a client-facing message, if there is one
    /// (`NotFound("NoSuchKey: ...")` gives `Some("NoSuchKey")`). `Io` and `Db` give `None`.
    pub fn code(&self) -> Option<&str> {
        let message = match self {
            Self::NotFound(m) | Self::AlreadyExists(m) | Self::Conflict(m) | Self::Invalid(m) => m,
            Self::Io(_) | Self::Db(_) => return None,
        };
        let (code, _) = message.split_once(": ")?;
        let is_code = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric());
        is_code.then_some(code)
    }

    /// `NotFound` with an AWS code and a sentence.
    pub(crate) fn not_found(code: &str, what: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{code}: {what}"))
    }

    /// `Invalid` with an AWS code and a sentence.
    pub(crate) fn invalid(code: &str, what: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("{code}: {what}"))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Db(format!("JSON (de)serialization failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn code_is_the_leading_aws_code() {
        assert_eq!(
            StoreError::not_found("NoSuchKey", "b/k").code(),
            Some("NoSuchKey")
        );
        assert_eq!(
            StoreError::Conflict("BucketNotEmpty: b".into()).code(),
            Some("BucketNotEmpty")
        );
        assert_eq!(StoreError::Invalid("no code here".into()).code(), None);
        assert_eq!(StoreError::Invalid("two words: x".into()).code(), None);
        assert_eq!(StoreError::Db("x: y".into()).code(), None);
    }
}
