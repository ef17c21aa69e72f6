//! Reject codes: one variant per code AWS documents for `…/streams/<S>/rejected/<fmt>`.

use core::fmt;

/// A documented Streams error code (PROTOCOL.md §1.8). [`RejectCode::as_str`] is the wire text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// The topic of the stream request is not valid.
    InvalidTopic,
    /// The request is not valid JSON.
    InvalidJson,
    /// The request is not valid CBOR.
    InvalidCbor,
    /// The request is malformed (missing field, wrong type, client token too long, …).
    InvalidRequest,
    /// The service may not read the stream file from storage.
    Unauthorized,
    /// `l` is outside 256–131072.
    BlockSizeOutOfBounds,
    /// `o` is out of bounds.
    OffsetOutOfBounds,
    /// `n` is out of bounds.
    BlockCountLimitExceeded,
    /// The bitmap is too large.
    BlockBitmapLimitExceeded,
    /// Stream, file, file version or block not found.
    ResourceNotFound,
    /// `s` differs from the current stream version.
    VersionMismatch,
    /// The stored object changed since the stream was created.
    ETagMismatch,
    /// A service-side failure.
    InternalError,
}

impl RejectCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 13] = [
        Self::InvalidTopic,
        Self::InvalidJson,
        Self::InvalidCbor,
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::BlockSizeOutOfBounds,
        Self::OffsetOutOfBounds,
        Self::BlockCountLimitExceeded,
        Self::BlockBitmapLimitExceeded,
        Self::ResourceNotFound,
        Self::VersionMismatch,
        Self::ETagMismatch,
        Self::InternalError,
    ];

    /// The code as AWS writes it in the `o` field of a rejection.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTopic => "InvalidTopic",
            Self::InvalidJson => "InvalidJson",
            Self::InvalidCbor => "InvalidCbor",
            Self::InvalidRequest => "InvalidRequest",
            Self::Unauthorized => "Unauthorized",
            Self::BlockSizeOutOfBounds => "BlockSizeOutOfBounds",
            Self::OffsetOutOfBounds => "OffsetOutOfBounds",
            Self::BlockCountLimitExceeded => "BlockCountLimitExceeded",
            Self::BlockBitmapLimitExceeded => "BlockBitmapLimitExceeded",
            Self::ResourceNotFound => "ResourceNotFound",
            Self::VersionMismatch => "VersionMismatch",
            Self::ETagMismatch => "ETagMismatch",
            Self::InternalError => "InternalError",
        }
    }

    /// The code for a wire text, the inverse of [`RejectCode::as_str`].
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request is refused: the wire code and a human-readable message for the `m` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The wire code.
    pub code: RejectCode,
    /// The message sent in `m`.
    pub message: &'static str,
}

impl Reject {
    /// A rejection with `code` and `message`.
    pub const fn new(code: RejectCode, message: &'static str) -> Self {
        Self { code, message }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Reject {}
