//! Which blocks one GetStream request asks for (PROTOCOL.md §1.6–1.7, fixtures README):
//!
//! - with a bitmap `b`: byte k covers blocks `o+8k … o+8k+7`, bit j (value `1 << j`, LSB first)
//!   is block `o+8k+j`; the first `n` set bits are served when `n` is given, all set bits otherwise;
//! - without a bitmap: blocks `o … o+n−1` (`n` defaulting to the cap);
//! - bits past the end of the file are ignored, indices are absolute and ascending, and one
//!   request never gets more than 128 KiB of payload (`131072 / l` blocks).
//!
//! The selection is an allocation-free iterator over the request's own bitmap.

use crate::block::FileLayout;
use crate::error::{Reject, RejectCode};
use crate::request::GetStreamRequest;

/// The absolute block indices one request selects, ascending and without duplicates.
#[derive(Clone, Debug)]
pub struct BlockSelection<'r> {
    source: Source<'r>,
    /// Blocks still allowed by `n` and the payload cap.
    remaining: u32,
    /// The file's block count: nothing at or past it is yielded.
    end: u32,
}

#[derive(Clone, Debug)]
enum Source<'r> {
    Range {
        next: u32,
    },
    Bitmap {
        bytes: &'r [u8],
        next_byte: usize,
        bits: u8,
        base: u32,
    },
}

/// Selects the blocks `req` asks for in a file laid out as `layout` (which must use the request's
/// block size). A file with no blocks, or an offset at or past the last block, is
/// `OffsetOutOfBounds`; an all-zero bitmap selects nothing.
pub fn select_blocks<'r>(
    req: &'r GetStreamRequest<'_>,
    layout: &FileLayout,
) -> Result<BlockSelection<'r>, Reject> {
    let end = layout.block_count();
    if req.offset >= end {
        return Err(Reject::new(
            RejectCode::OffsetOutOfBounds,
            "offset o is at or past the end of the file",
        ));
    }
    let cap = layout.block_size.blocks_per_request_cap();
    let (source, remaining) = match req.bitmap.as_deref() {
        Some(bytes) => (
            Source::Bitmap {
                bytes,
                next_byte: 0,
                bits: 0,
                base: req.offset,
            },
            req.count.map_or(cap, |n| n.min(cap)),
        ),
        None => (
            Source::Range { next: req.offset },
            req.count.unwrap_or(cap).min(cap),
        ),
    };
    Ok(BlockSelection {
        source,
        remaining,
        end,
    })
}

impl Iterator for BlockSelection<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.remaining == 0 {
            return None;
        }
        let index = match &mut self.source {
            Source::Range { next } => {
                let i = *next;
                *next = next.saturating_add(1);
                i
            }
            Source::Bitmap {
                bytes,
                next_byte,
                bits,
                base,
            } => loop {
                if *bits != 0 {
                    let j = bits.trailing_zeros();
                    *bits &= *bits - 1;
                    break *base + j;
                }
                let &byte = bytes.get(*next_byte)?;
                *base = base.saturating_add(if *next_byte == 0 { 0 } else { 8 });
                *next_byte += 1;
                *bits = byte;
            },
        };
        if index >= self.end {
            // Indices only grow, so everything after this one is past the end too.
            self.remaining = 0;
            return None;
        }
        self.remaining -= 1;
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockSize, FileId};
    use alloc::borrow::Cow;
    use alloc::vec::Vec;

    fn req(offset: u32, count: Option<u32>, bitmap: Option<&[u8]>, l: u32) -> GetStreamRequest<'_> {
        GetStreamRequest {
            client_token: None,
            stream_version: None,
            file_id: FileId::new(0).unwrap(),
            block_size: BlockSize::new(l).unwrap(),
            offset,
            count,
            bitmap: bitmap.map(Cow::Borrowed),
        }
    }

    fn select(r: &GetStreamRequest<'_>, size: u64) -> Result<Vec<u32>, RejectCode> {
        let layout = FileLayout::new(size, r.block_size);
        select_blocks(r, &layout)
            .map(Iterator::collect)
            .map_err(|e| e.code)
    }

    #[test]
    fn doc_example_offset_20() {
        // blocks 20, 21, 24, 43 -> bytes 13 00 80
        let r = req(20, None, Some(&[0x13, 0x00, 0x80]), 256);
        assert_eq!(select(&r, 16_384), Ok(alloc::vec![20, 21, 24, 43]));
    }

    #[test]
    fn n_caps_bitmap_and_range() {
        let r = req(0, Some(4), Some(&[0xd8, 0x03]), 1024);
        assert_eq!(select(&r, 40_000), Ok(alloc::vec![3, 4, 6, 7]));
        let r = req(5, Some(4), None, 1024);
        assert_eq!(select(&r, 10_000), Ok(alloc::vec![5, 6, 7, 8]));
        let r = req(8, Some(4), None, 1024);
        assert_eq!(select(&r, 10_000), Ok(alloc::vec![8, 9]));
    }

    #[test]
    fn payload_cap() {
        let r = req(0, None, Some(&[0xff; 8]), 4096);
        assert_eq!(select(&r, 1 << 20).unwrap().len(), 32);
        let r = req(0, Some(40), None, 4096);
        assert_eq!(select(&r, 1 << 20).unwrap().len(), 32);
    }

    #[test]
    fn offset_past_end_and_empty_file() {
        let r = req(3, None, None, 4096);
        assert_eq!(select(&r, 10_000), Err(RejectCode::OffsetOutOfBounds));
        let r = req(0, None, Some(&[1]), 4096);
        assert_eq!(select(&r, 0), Err(RejectCode::OffsetOutOfBounds));
        let r = req(0, Some(8), Some(&[0]), 4096);
        assert_eq!(select(&r, 10_000), Ok(alloc::vec![]));
    }
}
