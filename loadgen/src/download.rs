//! The download of one stream file by one device, sans-IO: bytes and `now` in, request bytes and
//! outcomes out. It asks the way the AWS OTA agent does (PROTOCOL.md §1.6, §1.9): `o = 0`, a
//! bitmap of every block still missing, `n` blocks per request, a new request as soon as the `n`
//! asked for have arrived, and the same request again after a quiet timeout.
//!
//! Unlike the agent, every request carries its own client token (`r<seq>`), which the server
//! echoes in each data message. That is what lets the report tell the two kinds of duplicates
//! apart: a block that arrives again because the device asked again (a *duplicate block*, normal
//! after loss), and a block the server sent twice for one request (a *server duplicate*, a bug).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use otastream_chunker::request::{self, GetStreamRequest};
use otastream_chunker::response::{self, BlockError};
use otastream_chunker::{BlockSize, FileId, FileLayout, Format, Reject};

/// How many recent requests keep their send time and received set (late answers to older
/// requests still count as blocks, without a latency).
const RECENT_REQUESTS: usize = 16;

/// What one download needs to know.
#[derive(Clone, Debug)]
pub struct DownloadPlan {
    /// File size and block size.
    pub layout: FileLayout,
    /// `f`: the file inside the stream.
    pub file_id: FileId,
    /// CBOR or JSON topics.
    pub format: Format,
    /// `n`: blocks asked for per request.
    pub blocks_per_request: u32,
    /// Quiet time after which the same request is sent again.
    pub retry_after: Duration,
    /// Minimum time between two requests (part-load runs); zero for none.
    pub pace: Duration,
    /// The image, when known: every block is compared with it.
    pub expected: Option<Bytes>,
}

impl DownloadPlan {
    /// A plan for `image_size` bytes in `block_size` blocks of file 0, retrying after 1 s.
    pub fn new(image_size: u64, block_size: BlockSize, format: Format) -> Self {
        Self {
            layout: FileLayout::new(image_size, block_size),
            file_id: FileId::new(0).unwrap_or_else(|_| unreachable!("0 is a valid file id")),
            format,
            blocks_per_request: 1,
            retry_after: Duration::from_secs(1),
            pace: Duration::ZERO,
            expected: None,
        }
    }
}

/// Counters of one download.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownloadStats {
    /// Requests sent (retries included).
    pub requests: u64,
    /// Requests sent again after a quiet timeout.
    pub retries: u64,
    /// New blocks received.
    pub blocks: u64,
    /// Payload bytes of the new blocks.
    pub bytes: u64,
    /// Blocks received again after the device had them (it asked twice).
    pub duplicate_blocks: u64,
    /// Blocks the server sent more than once for the same request.
    pub server_duplicates: u64,
}

/// What a data message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A block the device still needed; `latency` from its request, when that is still known.
    New {
        /// Time from the request to this block.
        latency: Option<Duration>,
    },
    /// A block the device already had.
    Duplicate,
}

/// Why a download cannot go on (the AWS agent fails its job on each of these).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DownloadError {
    /// The data message does not decode.
    #[error("undecodable data message: {0}")]
    Undecodable(String),
    /// The message does not fit the file (index, length, file id).
    #[error("block does not fit the file: {0:?}")]
    BadBlock(BlockError),
    /// The message names another file.
    #[error("data message for file {0}, expected file 0")]
    WrongFile(u32),
    /// The block's bytes differ from the image.
    #[error("block {0} differs from the image")]
    Corrupt(u32),
    /// The server answered on the `rejected` topic.
    #[error("request rejected: {0}")]
    Rejected(String),
}

impl From<Reject> for DownloadError {
    fn from(r: Reject) -> Self {
        Self::Undecodable(r.to_string())
    }
}

/// One request still remembered: when it went out, how many blocks it asked for, which came.
#[derive(Debug)]
struct Sent {
    seq: u32,
    at: Instant,
    asked: u32,
    got: Vec<u32>,
}

/// The state of one device's download. See the module docs for the protocol.
#[derive(Debug)]
pub struct Download {
    plan: DownloadPlan,
    /// Bit i set = block i still missing (byte i/8, bit i%8, LSB first).
    missing: Vec<u8>,
    remaining: u32,
    next_seq: u32,
    recent: VecDeque<Sent>,
    stats: DownloadStats,
}

impl Download {
    /// A download with every block missing.
    pub fn new(plan: DownloadPlan) -> Self {
        let blocks = plan.layout.block_count();
        let mut missing = vec![0xFF; blocks.div_ceil(8) as usize];
        if !blocks.is_multiple_of(8)
            && let Some(last) = missing.last_mut()
        {
            *last = (1u8 << (blocks % 8)) - 1;
        }
        Self {
            plan,
            missing,
            remaining: blocks,
            next_seq: 0,
            recent: VecDeque::with_capacity(RECENT_REQUESTS),
            stats: DownloadStats::default(),
        }
    }

    /// Every block arrived.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Blocks still missing.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// The counters so far.
    pub fn stats(&self) -> DownloadStats {
        self.stats
    }

    /// The device restarted: requests in flight are forgotten, the bitmap is kept (the agent
    /// resumes from the blocks it has stored).
    pub fn restart(&mut self) {
        self.recent.clear();
    }

    /// The request to send now, if one is due: the first one, the next one once the last
    /// request's blocks all arrived, or the same one again after the quiet timeout.
    pub fn poll_request(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.request_due(now) {
            return None;
        }
        if self
            .recent
            .back()
            .is_some_and(|last| (last.got.len() as u32) < last.asked)
        {
            self.stats.retries += 1;
        }
        Some(self.request(now))
    }

    /// Whether [`Download::poll_request`] would send something at `now`.
    pub fn request_due(&self, now: Instant) -> bool {
        if self.is_complete() {
            return false;
        }
        self.recent.back().is_none_or(|last| {
            let answered = last.got.len() as u32 >= last.asked;
            let quiet = now >= last.at + self.plan.retry_after;
            let paced = now >= last.at + self.plan.pace;
            quiet || (answered && paced)
        })
    }

    /// When [`Download::poll_request`] may next have something to send (`None`: not before
    /// a message arrives).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_complete() {
            return None;
        }
        let last = self.recent.back()?;
        let retry = last.at + self.plan.retry_after;
        if last.got.len() as u32 >= last.asked {
            Some(retry.min(last.at + self.plan.pace))
        } else {
            Some(retry)
        }
    }

    fn request(&mut self, now: Instant) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let token = format!("r{seq}");
        let asked = self.plan.blocks_per_request.min(self.remaining);
        let req = GetStreamRequest {
            client_token: Some(&token),
            stream_version: None,
            file_id: self.plan.file_id,
            block_size: self.plan.layout.block_size,
            offset: 0,
            count: Some(self.plan.blocks_per_request),
            bitmap: Some(Cow::Borrowed(&self.missing)),
        };
        let mut out = Vec::with_capacity(32 + self.missing.len());
        request::encode_get(self.plan.format, &req, &mut out);
        if self.recent.len() == RECENT_REQUESTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Sent {
            seq,
            at: now,
            asked,
            got: Vec::with_capacity(asked as usize),
        });
        self.stats.requests += 1;
        out
    }

    /// A message arrived on the data topic.
    pub fn handle_data(&mut self, payload: &[u8], now: Instant) -> Result<Received, DownloadError> {
        let msg = response::decode_data(self.plan.format, payload)?;
        msg.validate(&self.plan.layout)
            .map_err(DownloadError::BadBlock)?;
        if msg.file_id != u32::from(self.plan.file_id.get()) {
            return Err(DownloadError::WrongFile(msg.file_id));
        }
        let index = msg.index;
        let seq = msg
            .client_token
            .as_deref()
            .and_then(|t| t.strip_prefix('r'))
            .and_then(|n| n.parse::<u32>().ok());
        let sent = seq.and_then(|seq| self.recent.iter_mut().find(|s| s.seq == seq));
        let latency = match sent {
            Some(sent) if sent.got.contains(&index) => {
                self.stats.server_duplicates += 1;
                return Ok(Received::Duplicate);
            }
            Some(sent) => {
                sent.got.push(index);
                Some(now.saturating_duration_since(sent.at))
            }
            None => None,
        };
        let (byte, bit) = ((index / 8) as usize, 1u8 << (index % 8));
        if self.missing[byte] & bit == 0 {
            self.stats.duplicate_blocks += 1;
            return Ok(Received::Duplicate);
        }
        if let Some(image) = &self.plan.expected
            && image.get(self.plan.layout.block_range(index)) != Some(&msg.payload[..])
        {
            return Err(DownloadError::Corrupt(index));
        }
        self.missing[byte] &= !bit;
        self.remaining -= 1;
        self.stats.blocks += 1;
        self.stats.bytes += u64::from(msg.len);
        Ok(Received::New { latency })
    }

    /// A message arrived on the `rejected` topic: the download cannot go on.
    pub fn handle_rejected(&self, payload: &[u8]) -> DownloadError {
        DownloadError::Rejected(String::from_utf8_lossy(payload).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otastream_chunker::select;

    const BLOCK: u32 = 4096;

    fn plan(size: u64, n: u32) -> DownloadPlan {
        let mut p = DownloadPlan::new(size, BlockSize::new(BLOCK).unwrap(), Format::Cbor);
        p.blocks_per_request = n;
        p.expected = Some(Bytes::from(image(size as usize)));
        p
    }

    /// An image of `len` bytes, a download of it at `n` blocks per request, and the time now.
    fn start(len: usize, n: u32) -> (Vec<u8>, Download, Instant) {
        let img = image(len);
        let d = Download::new(plan(len as u64, n));
        (img, d, Instant::now())
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 253) as u8).collect()
    }

    /// Answers `req` the way a correct server does, through the chunker's own selection.
    fn serve(req: &[u8], img: &[u8]) -> Vec<Vec<u8>> {
        let req = request::decode_get(Format::Cbor, req).unwrap();
        let layout = FileLayout::new(img.len() as u64, req.block_size);
        select::select_blocks(&req, &layout)
            .unwrap()
            .map(|i| {
                let mut out = Vec::new();
                let block = &img[layout.block_range(i)];
                response::encode_data(Format::Cbor, req.client_token, 0, i, block, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn downloads_every_block_once_with_n_per_request() {
        let (img, mut d, now) = start(10 * 4096 + 100, 4);
        let mut rounds = 0;
        while let Some(req) = d.poll_request(now) {
            rounds += 1;
            for msg in serve(&req, &img) {
                assert!(matches!(d.handle_data(&msg, now), Ok(Received::New { .. })));
            }
        }
        assert!(d.is_complete());
        assert_eq!(rounds, 3, "11 blocks at 4 per request");
        let s = d.stats();
        assert_eq!(
            (s.blocks, s.bytes, s.requests, s.retries),
            (11, img.len() as u64, 3, 0)
        );
        assert_eq!((s.duplicate_blocks, s.server_duplicates), (0, 0));
    }

    #[test]
    fn asks_again_after_the_quiet_timeout_and_counts_late_blocks_as_duplicates() {
        let (img, mut d, t0) = start(3 * 4096, 1);
        let first = d.poll_request(t0).unwrap();
        assert_eq!(d.poll_request(t0 + Duration::from_millis(999)), None);
        assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let again = d.poll_request(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(d.stats().retries, 1);
        let late = serve(&first, &img);
        let on_time = serve(&again, &img);
        assert!(matches!(
            d.handle_data(&late[0], t0),
            Ok(Received::New { .. })
        ));
        assert_eq!(d.handle_data(&on_time[0], t0), Ok(Received::Duplicate));
        assert_eq!(d.stats().duplicate_blocks, 1);
        assert_eq!(d.stats().server_duplicates, 0);
    }

    #[test]
    fn the_same_block_twice_for_one_request_is_a_server_duplicate() {
        let (img, mut d, now) = start(2 * 4096, 1);
        let req = d.poll_request(now).unwrap();
        let msg = serve(&req, &img).remove(0);
        assert!(matches!(d.handle_data(&msg, now), Ok(Received::New { .. })));
        assert_eq!(d.handle_data(&msg, now), Ok(Received::Duplicate));
        assert_eq!(d.stats().server_duplicates, 1);
    }

    #[test]
    fn restart_keeps_the_bitmap() {
        let (img, mut d, now) = start(5 * 4096, 2);
        let req = d.poll_request(now).unwrap();
        for msg in serve(&req, &img) {
            d.handle_data(&msg, now).unwrap();
        }
        d.restart();
        let req = d.poll_request(now).unwrap();
        let decoded = request::decode_get(Format::Cbor, &req).unwrap();
        assert_eq!(decoded.bitmap.as_deref(), Some(&[0b1_1100][..]));
        assert_eq!(d.remaining(), 3);
    }

    #[test]
    fn wrong_bytes_length_and_index_fail_the_download() {
        let (_, mut d, now) = start(2 * 4096, 1);
        d.poll_request(now).unwrap();
        let mut bad = Vec::new();
        response::encode_data(Format::Cbor, Some("r0"), 0, 0, &[9; 4096], &mut bad);
        assert_eq!(d.handle_data(&bad, now), Err(DownloadError::Corrupt(0)));
        bad.clear();
        response::encode_data(Format::Cbor, Some("r0"), 0, 7, &[9; 4096], &mut bad);
        assert!(matches!(
            d.handle_data(&bad, now),
            Err(DownloadError::BadBlock(_))
        ));
        assert!(matches!(
            d.handle_data(b"\xff\x00", now),
            Err(DownloadError::Undecodable(_))
        ));
    }

    #[test]
    fn pace_delays_the_next_request() {
        let img = image(3 * 4096);
        let mut p = plan(img.len() as u64, 1);
        p.pace = Duration::from_millis(20);
        let mut d = Download::new(p);
        let t0 = Instant::now();
        let req = d.poll_request(t0).unwrap();
        d.handle_data(&serve(&req, &img)[0], t0).unwrap();
        assert_eq!(d.poll_request(t0 + Duration::from_millis(19)), None);
        assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_millis(20)));
        assert!(d.poll_request(t0 + Duration::from_millis(20)).is_some());
        assert_eq!(d.stats().retries, 0);
    }
}
