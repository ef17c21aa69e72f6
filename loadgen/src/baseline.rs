//! The two references a run compares the server with. Both answer GetStream requests with the
//! same messages a server sends (through the chunker: same selection, same data-message bytes),
//! so only the transport differs:
//!
//! - [`serve_raw`]: a raw framed-TCP server in this process (see [`crate::link`] for the
//!   framing) — no MQTT, no broker: the ceiling of the machine.
//! - [`MosquittoResponder`]: an MQTT client of a broker, subscribed to every device's `get`
//!   topic, publishing the blocks to the device's `data` topic — what an ordinary broker plus a
//!   worker gives.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use otastream_chunker::topic::{self, StreamOp};
use otastream_chunker::{FileLayout, Format, request, response, select};
use rumqttc::{Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::link::{self, MAX_MESSAGE};

/// Answers GetStream requests for one image, sans-IO.
#[derive(Clone, Debug)]
pub struct Responder {
    image: Bytes,
}

impl Responder {
    /// A responder serving `image` as file 0 of every stream.
    pub fn new(image: Bytes) -> Self {
        Self { image }
    }

    /// Answers one request published on `topic`: `emit(reply topic, header, payload)` once per
    /// data message (CBOR: header + borrowed block; JSON: the whole message + empty payload),
    /// or once with a rejection. Topics that are not stream requests are ignored.
    pub fn answer(&self, topic: &str, payload: &[u8], mut emit: impl FnMut(&str, &[u8], &[u8])) {
        let Ok(t) = topic::parse_stream_topic(topic) else {
            return;
        };
        if t.op != StreamOp::Get {
            return;
        }
        let mut reply = String::with_capacity(topic.len() + 4);
        let req = match request::decode_get(t.format, payload) {
            Ok(req) => req,
            Err(e) => return self.reject(&t, &e, None, &mut reply, emit),
        };
        let layout = FileLayout::new(self.image.len() as u64, req.block_size);
        let blocks = match select::select_blocks(&req, &layout) {
            Ok(b) => b,
            Err(e) => return self.reject(&t, &e, req.client_token, &mut reply, emit),
        };
        t.reply(StreamOp::Data).write_to(&mut reply);
        let mut header = [0u8; response::MAX_DATA_HEADER];
        let mut json = Vec::new();
        for i in blocks {
            let block = &self.image[layout.block_range(i)];
            match t.format {
                Format::Cbor => {
                    let n = response::encode_data_header(
                        req.client_token,
                        0,
                        i,
                        block.len() as u32,
                        &mut header,
                    );
                    emit(&reply, &header[..n], block);
                }
                Format::Json => {
                    json.clear();
                    response::encode_data(Format::Json, req.client_token, 0, i, block, &mut json);
                    emit(&reply, &json, &[]);
                }
            }
        }
    }

    fn reject(
        &self,
        t: &topic::StreamTopic<'_>,
        e: &otastream_chunker::Reject,
        token: Option<&str>,
        reply: &mut String,
        mut emit: impl FnMut(&str, &[u8], &[u8]),
    ) {
        t.reply(StreamOp::Rejected).write_to(reply);
        let mut msg = Vec::new();
        response::encode_rejection(t.format, e.code, e.message, token, &mut msg);
        emit(reply, &msg, &[]);
    }
}

/// Serves the raw framed-TCP baseline on `listener` until the task is aborted.
pub fn serve_raw(listener: TcpListener, responder: Responder) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let responder = responder.clone();
            tokio::spawn(async move {
                // Errors end only this connection; devices hanging up at the end are normal.
                let _ = raw_connection(stream, &responder).await;
            });
        }
    })
}

async fn raw_connection(mut stream: TcpStream, responder: &Responder) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        while let Some((topic, payload)) = link::parse_frame(&mut buf)? {
            responder.answer(&topic, &payload, |reply, head, body| {
                link::write_frame(&mut out, reply, &[head, body]);
            });
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// The responder client of the Mosquitto baseline: subscribed to `$aws/things/+/streams/+/get/+`
/// on the broker; stops when dropped.
pub struct MosquittoResponder {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MosquittoResponder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl MosquittoResponder {
    /// Connects to `broker`, subscribes, and answers every request until dropped.
    pub async fn start(broker: SocketAddr, responder: Responder) -> anyhow::Result<Self> {
        let mut opts = MqttOptions::new(
            format!("otastream-loadgen-responder-{}", std::process::id()),
            broker.ip().to_string(),
            broker.port(),
        );
        opts.set_keep_alive(Duration::from_secs(60));
        opts.set_max_packet_size(MAX_MESSAGE, MAX_MESSAGE);
        opts.set_request_channel_capacity(8192);
        let (client, mut eventloop) = link::mqtt_session(
            opts,
            8192,
            Duration::from_secs(30),
            "$aws/things/+/streams/+/get/+",
        )
        .await
        .context("the broker session of the responder")?;
        // The event loop only reads and writes; answers are published from another task so a
        // full request channel can never deadlock the loop (CRATES.md §2).
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<rumqttc::Publish>();
        let poller = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let answerer = tokio::spawn(async move {
            let mut replies: Vec<(String, Vec<u8>)> = Vec::new();
            while let Some(p) = rx.recv().await {
                responder.answer(&p.topic, &p.payload, |topic, head, body| {
                    replies.push((topic.to_owned(), [head, body].concat()));
                });
                for (topic, msg) in replies.drain(..) {
                    if client
                        .publish(topic, QoS::AtMostOnce, false, msg)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Self {
            tasks: vec![poller, answerer],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::{Download, DownloadPlan, Received};
    use otastream_chunker::BlockSize;
    use std::time::Instant;

    #[test]
    fn the_responder_serves_a_whole_download_and_rejects_bad_requests() {
        let image = crate::setup::test_image(5 * 1024 + 7);
        let responder = Responder::new(image.clone());
        for format in [Format::Cbor, Format::Json] {
            let mut plan =
                DownloadPlan::new(image.len() as u64, BlockSize::new(1024).unwrap(), format);
            plan.blocks_per_request = 4;
            plan.expected = Some(image.clone());
            let mut d = Download::new(plan);
            let topic = format!("$aws/things/t1/streams/s1/get/{}", format.as_str());
            let now = Instant::now();
            while let Some(req) = d.poll_request(now) {
                let mut n = 0;
                responder.answer(&topic, &req, |reply, head, body| {
                    assert_eq!(
                        reply,
                        format!("$aws/things/t1/streams/s1/data/{}", format.as_str())
                    );
                    let msg = [head, body].concat();
                    assert!(matches!(d.handle_data(&msg, now), Ok(Received::New { .. })));
                    n += 1;
                });
                assert!(n > 0);
            }
            assert!(d.is_complete());
        }
        let mut seen = Vec::new();
        responder.answer("$aws/things/t1/streams/s1/get/cbor", b"\xff", |t, h, _| {
            seen.push((t.to_owned(), h.to_vec()));
        });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "$aws/things/t1/streams/s1/rejected/cbor");
        responder.answer("not/a/stream", b"", |_, _, _| {
            panic!("answered a foreign topic")
        });
    }
}
