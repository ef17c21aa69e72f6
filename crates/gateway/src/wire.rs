//! Bytes on the wire: MQTT packets encoded with `rumqttc::mqttbytes`, the hand-written PUBLISH
//! header of the block path, and [`Outbound`], a queue of byte chunks written with vectored writes.
//!
//! The block path never copies a payload: a data message is two chunks, a small header
//! (MQTT fixed header + topic + CBOR data header) and a [`Bytes`] slice of the mmap'd image.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::v4::Packet;

/// Largest packet the gateway accepts from a device (AWS IoT: 128 KiB payload plus headers).
pub const MAX_INCOMING_PACKET: usize = 132 * 1024;

/// Largest packet the gateway writes (a 128 KiB block plus topic and headers, or a broker message).
pub const MAX_OUTGOING_PACKET: usize = 268_435_455;

/// PUBLISH, QoS 0, no DUP, no RETAIN.
const PUBLISH_QOS0: u8 = 0x30;

/// Appends the fixed header and topic of a QoS 0 PUBLISH whose payload is `payload_len` bytes; the
/// payload itself must be written right after.
pub fn put_publish_header(topic: &str, payload_len: usize, out: &mut BytesMut) {
    let remaining = 2 + topic.len() + payload_len;
    out.put_u8(PUBLISH_QOS0);
    put_remaining_length(remaining, out);
    // Topics are built from validated names, so they are far below 64 KiB.
    out.put_u16(topic.len() as u16);
    out.put_slice(topic.as_bytes());
}

/// Appends an MQTT variable-byte-integer remaining length (at most 4 bytes).
fn put_remaining_length(mut len: usize, out: &mut BytesMut) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if len == 0 {
            return;
        }
    }
}

/// Byte chunks to write to one connection, in order. Implements [`Buf`] with
/// [`Buf::chunks_vectored`], so `write_all_buf` hands all chunks to one vectored write.
#[derive(Debug, Default)]
pub struct Outbound {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Outbound {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one chunk (empty chunks are skipped).
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Appends an MQTT packet encoded with `rumqttc::mqttbytes`.
    pub fn push_packet(
        &mut self,
        packet: &Packet,
        scratch: &mut BytesMut,
    ) -> Result<(), rumqttc::mqttbytes::Error> {
        packet.write(scratch, MAX_OUTGOING_PACKET)?;
        self.push(scratch.split().freeze());
        Ok(())
    }

    /// Moves every chunk of `other` to the end of this queue.
    pub fn append(&mut self, other: &mut Self) {
        self.len += other.len;
        self.chunks.append(&mut other.chunks);
        other.len = 0;
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of chunks queued.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl Buf for Outbound {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c[..])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of Outbound");
        self.len -= cnt;
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::Publish;

    #[test]
    fn hand_written_publish_header_matches_the_codec() {
        for len in [
            0usize, 1, 127, 128, 4113, 16_383, 16_384, 131_169, 2_097_152,
        ] {
            let topic = "$aws/things/dev1/streams/s1/data/cbor";
            let payload = vec![0xab; len];
            let mut ours = BytesMut::new();
            put_publish_header(topic, len, &mut ours);
            ours.extend_from_slice(&payload);
            let mut theirs = BytesMut::new();
            Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))
                .write(&mut theirs, MAX_OUTGOING_PACKET)
                .expect("encode");
            assert_eq!(ours, theirs, "payload length {len}");
        }
    }

    #[test]
    fn outbound_is_a_buf_over_its_chunks_in_order() {
        let mut out = Outbound::new();
        out.push(Bytes::from_static(b"abc"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"defg"));
        assert_eq!((out.remaining(), out.chunk_count()), (7, 2));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(out.chunks_vectored(&mut slices), 2);
        out.advance(4);
        assert_eq!(out.chunk(), b"efg");
        let mut rest = Outbound::new();
        rest.push(Bytes::from_static(b"h"));
        out.append(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(out.copy_to_bytes(4), Bytes::from_static(b"efgh"));
        assert!(out.is_empty());
    }
}
