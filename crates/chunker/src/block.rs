//! Block math: checked newtypes for block size, file id and block index, and [`FileLayout`],
//! which cuts a file of a given size into blocks.

use core::ops::Range;

use crate::error::{Reject, RejectCode};
use crate::limits;

/// A GetStream block size `l`, within 256..=131072 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockSize(u32);

impl BlockSize {
    /// Checks `bytes` against the AWS bounds; outside them is `BlockSizeOutOfBounds`.
    pub const fn new(bytes: u32) -> Result<Self, Reject> {
        if bytes < limits::MIN_BLOCK_SIZE || bytes > limits::MAX_BLOCK_SIZE {
            return Err(Reject::new(
                RejectCode::BlockSizeOutOfBounds,
                "block size must be 256..=131072 bytes",
            ));
        }
        Ok(Self(bytes))
    }

    /// The size in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// How many blocks of this size fit in the 128 KiB payload cap of one request (at least 1).
    pub const fn blocks_per_request_cap(self) -> u32 {
        limits::MAX_PAYLOAD_PER_REQUEST / self.0
    }
}

/// A stream file id `f`, 0..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(u8);

impl FileId {
    /// Checks `id` against 0..=255; a larger id names no file and is `InvalidRequest`.
    pub const fn new(id: u32) -> Result<Self, Reject> {
        if id > limits::MAX_FILE_ID {
            return Err(Reject::new(
                RejectCode::InvalidRequest,
                "file id must be 0..=255",
            ));
        }
        Ok(Self(id as u8))
    }

    /// The id.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl From<u8> for FileId {
    fn from(id: u8) -> Self {
        Self(id)
    }
}

/// An absolute, 0-based block index inside one file; [`FileLayout::block_index`] is the
/// checked constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockIndex(u32);

impl BlockIndex {
    /// The index.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A file of `file_size` bytes cut into blocks of `block_size`; the last block may be shorter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLayout {
    /// The file size in bytes.
    pub file_size: u64,
    /// The block size.
    pub block_size: BlockSize,
}

impl FileLayout {
    /// The layout of a `file_size`-byte file in blocks of `block_size`.
    pub const fn new(file_size: u64, block_size: BlockSize) -> Self {
        Self {
            file_size,
            block_size,
        }
    }

    /// `ceil(file_size / block_size)`, saturated at `u32::MAX`.
    pub const fn block_count(&self) -> u32 {
        let b = self.block_size.0 as u64;
        let n = self.file_size.div_ceil(b);
        if n > u32::MAX as u64 {
            u32::MAX
        } else {
            n as u32
        }
    }

    /// `index` as a [`BlockIndex`] of this file; past the last block is `ResourceNotFound`.
    pub const fn block_index(&self, index: u32) -> Result<BlockIndex, Reject> {
        if index < self.block_count() {
            Ok(BlockIndex(index))
        } else {
            Err(Reject::new(RejectCode::ResourceNotFound, "block not found"))
        }
    }

    /// Whether `index` names a block of the file.
    pub const fn contains(&self, index: u32) -> bool {
        index < self.block_count()
    }

    /// The byte range of block `index`, clamped to the file (empty past the end).
    pub fn block_range(&self, index: u32) -> Range<usize> {
        let b = u64::from(self.block_size.0);
        let start = (u64::from(index) * b).min(self.file_size);
        let end = (start + b).min(self.file_size);
        start as usize..end as usize
    }

    /// The payload length of block `index`: the block size, except for the last block, which is
    /// `file_size − last·block_size`; 0 past the end of the file.
    pub fn block_len(&self, index: u32) -> u32 {
        let r = self.block_range(index);
        (r.end - r.start) as u32
    }

    /// The length of the last block (0 for an empty file).
    pub fn last_block_len(&self) -> u32 {
        match self.block_count() {
            0 => 0,
            n => self.block_len(n - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_bounds() {
        assert_eq!(
            BlockSize::new(255).unwrap_err().code,
            RejectCode::BlockSizeOutOfBounds
        );
        assert_eq!(
            BlockSize::new(131_073).unwrap_err().code,
            RejectCode::BlockSizeOutOfBounds
        );
        assert_eq!(BlockSize::new(256).unwrap().get(), 256);
        assert_eq!(BlockSize::new(131_072).unwrap().blocks_per_request_cap(), 1);
        assert_eq!(BlockSize::new(4096).unwrap().blocks_per_request_cap(), 32);
    }

    #[test]
    fn file_id_bounds() {
        assert_eq!(FileId::new(255).unwrap().get(), 255);
        assert_eq!(
            FileId::new(256).unwrap_err().code,
            RejectCode::InvalidRequest
        );
    }

    #[test]
    fn layout_of_10000_bytes_in_4k() {
        let l = FileLayout::new(10_000, BlockSize::new(4096).unwrap());
        assert_eq!(l.block_count(), 3);
        assert_eq!(l.block_range(0), 0..4096);
        assert_eq!(l.block_range(2), 8192..10_000);
        assert_eq!(l.block_len(2), 1808);
        assert_eq!(l.last_block_len(), 1808);
        assert_eq!(l.block_len(3), 0);
        assert!(!l.contains(3));
        assert_eq!(l.block_index(2).unwrap().get(), 2);
        assert_eq!(
            l.block_index(3).unwrap_err().code,
            RejectCode::ResourceNotFound
        );
    }

    #[test]
    fn exact_multiple_and_empty() {
        let l = FileLayout::new(8192, BlockSize::new(4096).unwrap());
        assert_eq!(l.block_count(), 2);
        assert_eq!(l.last_block_len(), 4096);
        let e = FileLayout::new(0, BlockSize::new(4096).unwrap());
        assert_eq!(e.block_count(), 0);
        assert_eq!(e.last_block_len(), 0);
    }
}
