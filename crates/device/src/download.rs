//! One file transfer: the agent's whole-file bitmap of missing blocks, the GetStream request it
//! sends, and the blocks received so far.
//!
//! The image is hashed as it arrives: blocks extend a running SHA-256 in index order, and blocks
//! that arrive ahead of a gap wait in a small reorder map. So a simulated fleet does not have to
//! hold every image in memory; [`Download::image`] keeps a full copy only when asked to.

use std::borrow::Cow;
use std::collections::BTreeMap;

use otastream_chunker::request::{self, GetStreamRequest};
use otastream_chunker::response::{BlockError, DataMessage};
use otastream_chunker::{BlockSize, FileId, FileLayout, Format};
use sha2::{Digest, Sha256};

/// The client token the AWS agent puts in every GetStream request.
pub const STREAM_CLIENT_TOKEN: &str = "rdy";

/// What one incoming block did to the download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingest {
    /// A new block; `received` blocks of the file are now in.
    Accepted {
        /// The block index.
        index: u32,
        /// Blocks received so far, this one included.
        received: u32,
    },
    /// A block the bitmap already marks as received: ignored.
    Duplicate(u32),
    /// The last missing block: the whole file is in.
    Complete {
        /// The block index.
        index: u32,
        /// SHA-256 of the file.
        sha256: [u8; 32],
    },
    /// A block the agent rejects (index past the end, wrong `l`, payload larger than a block).
    Bad,
}

/// The state of one file transfer.
#[derive(Clone, Debug)]
pub struct Download {
    layout: FileLayout,
    file_id: u8,
    /// Bit set = block still missing (the agent's "erased" value), LSB first.
    bitmap: Vec<u8>,
    remaining: u32,
    hasher: Sha256,
    /// Blocks `0..hashed` are in `hasher`.
    hashed: u32,
    ahead: BTreeMap<u32, Vec<u8>>,
    image: Option<Vec<u8>>,
    /// Blocks written with a payload shorter or longer than their `l` (the agent writes `l` bytes).
    pub(crate) length_mismatches: u32,
}

impl Download {
    /// A fresh transfer of a `size`-byte file (`size > 0`); `keep_image` keeps a full copy.
    pub fn new(size: u64, block_size: BlockSize, file_id: u8, keep_image: bool) -> Self {
        let layout = FileLayout::new(size, block_size);
        let blocks = layout.block_count();
        let mut bitmap = vec![0xff; blocks.div_ceil(8) as usize];
        let tail_bits = blocks % 8;
        if let (Some(last), true) = (bitmap.last_mut(), tail_bits != 0) {
            *last = (1u8 << tail_bits) - 1;
        }
        Self {
            layout,
            file_id,
            bitmap,
            remaining: blocks,
            hasher: Sha256::new(),
            hashed: 0,
            ahead: BTreeMap::new(),
            image: keep_image.then(|| vec![0; size as usize]),
            length_mismatches: 0,
        }
    }

    /// The file's layout.
    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }

    /// Blocks received so far.
    pub fn received(&self) -> u32 {
        self.layout.block_count() - self.remaining
    }

    /// Blocks still missing.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// The bitmap of missing blocks (bit set = missing), as sent in `b`.
    pub fn bitmap(&self) -> &[u8] {
        &self.bitmap
    }

    /// The lowest missing block.
    pub fn first_missing(&self) -> Option<u32> {
        self.bitmap
            .iter()
            .enumerate()
            .find(|(_, b)| **b != 0)
            .map(|(k, b)| k as u32 * 8 + b.trailing_zeros())
    }

    /// The full image, when the download keeps one.
    pub fn image(&self) -> Option<&[u8]> {
        self.image.as_deref()
    }

    /// Appends the GetStream request the AWS agent sends: `{c:"rdy", f, l, o:0, b:<whole bitmap>, n}`.
    pub fn encode_request(&self, format: Format, blocks_per_request: u32, out: &mut Vec<u8>) {
        let req = GetStreamRequest {
            client_token: Some(STREAM_CLIENT_TOKEN),
            stream_version: None,
            file_id: FileId::from(self.file_id),
            block_size: self.layout.block_size,
            offset: 0,
            count: Some(blocks_per_request),
            bitmap: Some(Cow::Borrowed(&self.bitmap)),
        };
        request::encode_get(format, &req, out);
    }

    /// Checks a decoded data message like the agent (`len(p)` ≤ block size, then `i` and `l`) and
    /// stores its block.
    pub fn ingest_message(&mut self, msg: &DataMessage<'_>) -> Ingest {
        if msg.payload.len() > self.layout.block_size.get() as usize {
            return Ingest::Bad;
        }
        match msg.validate(&self.layout) {
            Ok(()) => {}
            // The agent writes `l` bytes whatever `len(p)` is; the image is then wrong and the
            // signature check fails at the end, exactly as on a real device.
            Err(BlockError::PayloadLengthMismatch) => self.length_mismatches += 1,
            Err(_) => return Ingest::Bad,
        }
        self.ingest(msg.index, msg.len, &msg.payload)
    }

    /// Stores block `index` of claimed length `len` (already validated) with `payload`.
    fn ingest(&mut self, index: u32, len: u32, payload: &[u8]) -> Ingest {
        let (byte, bit) = ((index / 8) as usize, 1u8 << (index % 8));
        let Some(slot) = self.bitmap.get_mut(byte) else {
            return Ingest::Bad;
        };
        if *slot & bit == 0 {
            return Ingest::Duplicate(index);
        }
        *slot &= !bit;
        self.remaining -= 1;
        // The agent writes exactly `l` bytes: a short payload is padded, a long one cut.
        let stored = &payload[..payload.len().min(len as usize)];
        let padding = len as usize - stored.len();
        if let Some(image) = &mut self.image {
            let range = self.layout.block_range(index);
            image[range.start..range.start + stored.len()].copy_from_slice(stored);
        }
        if index == self.hashed {
            // In order (the usual case): hash straight from the message, no copy.
            self.hasher.update(stored);
            if padding > 0 {
                self.hasher.update(vec![0; padding]);
            }
            self.hashed += 1;
        } else {
            let mut block = stored.to_vec();
            block.resize(len as usize, 0);
            self.ahead.insert(index, block);
        }
        while let Some(next) = self.ahead.remove(&self.hashed) {
            self.hasher.update(&next);
            self.hashed += 1;
        }
        if self.remaining == 0 {
            return Ingest::Complete {
                index,
                sha256: self.hasher.clone().finalize().into(),
            };
        }
        Ingest::Accepted {
            index,
            received: self.received(),
        }
    }

    /// Stores an HTTP range body as block `index` (the agent assumes the index; `l` = body length).
    pub fn ingest_http(&mut self, index: u32, body: &[u8]) -> Ingest {
        let msg = DataMessage {
            client_token: None,
            file_id: u32::from(self.file_id),
            index,
            len: u32::try_from(body.len()).unwrap_or(u32::MAX),
            payload: Cow::Borrowed(body),
        };
        self.ingest_message(&msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(index: u32, len: u32, payload: &[u8]) -> DataMessage<'_> {
        DataMessage {
            client_token: None,
            file_id: 0,
            index,
            len,
            payload: Cow::Borrowed(payload),
        }
    }

    #[test]
    fn bitmap_clears_out_of_range_bits() {
        let bs = BlockSize::new(4096).unwrap();
        assert_eq!(Download::new(10_000, bs, 0, false).bitmap(), [0x07]);
        assert_eq!(Download::new(40_000, bs, 0, false).bitmap(), [0xff, 0x03]);
        assert_eq!(Download::new(8 * 4096, bs, 0, false).bitmap(), [0xff]);
        let mut out = Vec::new();
        Download::new(10_000, bs, 0, false).encode_request(Format::Cbor, 1, &mut out);
        assert_eq!(
            hex::encode(out),
            "a6616363726479616600616c191000616f0061624107616e01"
        );
    }

    #[test]
    fn out_of_order_blocks_hash_like_the_whole_file() {
        let bs = BlockSize::new(256).unwrap();
        let image: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        let mut d = Download::new(1000, bs, 0, true);
        for i in [3u32, 1, 2] {
            let r = d.layout().block_range(i);
            assert!(matches!(
                d.ingest_message(&msg(i, r.len() as u32, &image[r])),
                Ingest::Accepted { .. }
            ));
        }
        assert_eq!(d.first_missing(), Some(0));
        assert_eq!(
            d.ingest_message(&msg(1, 256, &image[256..512])),
            Ingest::Duplicate(1)
        );
        let done = d.ingest_message(&msg(0, 256, &image[..256]));
        assert_eq!(
            done,
            Ingest::Complete {
                index: 0,
                sha256: Sha256::digest(&image).into()
            }
        );
        assert_eq!(d.image(), Some(&image[..]));
        assert_eq!(d.first_missing(), None);
    }

    #[test]
    fn agent_validation_rules() {
        let bs = BlockSize::new(256).unwrap();
        let mut d = Download::new(1000, bs, 0, false);
        assert_eq!(
            d.ingest_message(&msg(4, 256, &[0; 256])),
            Ingest::Bad,
            "past the end"
        );
        assert_eq!(
            d.ingest_message(&msg(3, 256, &[0; 256])),
            Ingest::Bad,
            "last block has l = 232"
        );
        assert_eq!(
            d.ingest_message(&msg(0, 257, &[0; 257])),
            Ingest::Bad,
            "payload larger than a block"
        );
        assert!(matches!(
            d.ingest_message(&msg(0, 256, &[0; 200])),
            Ingest::Accepted { .. }
        ));
        assert_eq!(d.length_mismatches, 1);
        assert_eq!(d.ingest_http(1, &[0; 100]), Ingest::Bad, "short range body");
    }
}
