//! The AWS IoT quotas of the Streams protocol (PROTOCOL.md §1.4, §5). All are inclusive bounds
//! unless the name says otherwise.

/// Smallest block size `l` a GetStream request may ask for.
pub const MIN_BLOCK_SIZE: u32 = 256;
/// Largest block size `l` a GetStream request may ask for.
pub const MAX_BLOCK_SIZE: u32 = 131_072;
/// Largest block offset `o` (24 MiB / 256 B).
pub const MAX_OFFSET: u32 = 98_304;
/// Largest block count `n`.
pub const MAX_BLOCK_COUNT: u32 = 98_304;
/// Largest bitmap `b`: AWS requires fewer than 12,288 bytes.
pub const MAX_BITMAP_BYTES: usize = 12_287;
/// Most payload bytes served for one request; the device asks again for the rest.
pub const MAX_PAYLOAD_PER_REQUEST: u32 = 131_072;
/// Longest client token `c`, in bytes.
pub const MAX_CLIENT_TOKEN: usize = 64;
/// Largest file id `f`.
pub const MAX_FILE_ID: u32 = 255;
