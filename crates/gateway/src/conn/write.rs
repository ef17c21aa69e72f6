//! The write side of a connection: replies go out from the connection's own task, eagerly
//! without waiting after each batch of requests ([`Connection::write_now`]), then through a
//! [`write_step`] branch of its `select!` while the socket is full, all within the write-stall
//! timeout.

use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Connection, End};
use crate::wire::Outbound;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    /// Writes what the socket takes right now, without waiting (usually all of it). The
    /// write-stall clock starts when replies wait after all earlier ones were out, and restarts
    /// whenever a write makes progress; a socket that takes nothing leaves it running.
    pub(super) fn write_now(&mut self) -> Result<(), End> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut progressed = self.drained;
        while !self.pending.is_empty() || self.unflushed {
            let step = pin!(write_step(&mut self.writer, &mut self.pending)).poll(&mut cx);
            match step {
                Poll::Ready(Ok(flushed)) => {
                    self.unflushed = !flushed;
                    progressed = true;
                }
                Poll::Ready(Err(e)) => return Err(End::Io(e)),
                Poll::Pending => break,
            }
        }
        self.drained = self.pending.is_empty() && !self.unflushed;
        if progressed && !self.drained {
            self.write_progress = Instant::now();
        }
        Ok(())
    }

    /// Accounts for one [`write_step`] of the `select!`: a write made progress, or a flush
    /// completed.
    pub(super) fn wrote(&mut self, flushed: bool) {
        self.unflushed = !flushed;
        self.drained = self.pending.is_empty() && flushed;
        self.write_progress = Instant::now();
    }

    /// Writes and flushes every pending reply, within the write-stall timeout.
    pub(super) async fn write_all_pending(&mut self) -> Result<(), End> {
        let all = async {
            self.writer.write_all_buf(&mut self.pending).await?;
            self.writer.flush().await
        };
        match tokio::time::timeout(self.shared.cfg.write_stall_timeout, all).await {
            Ok(Ok(())) => {
                self.unflushed = false;
                self.drained = true;
                Ok(())
            }
            Ok(Err(e)) => Err(End::Io(e)),
            Err(_) => Err(End::WriteStalled),
        }
    }
}

/// One step of getting replies onto the wire: one (vectored) write of what is pending, or, once
/// nothing is, a flush (TLS may hold written bytes back). Ready with whether it flushed.
pub(super) async fn write_step<W: AsyncWrite + Unpin>(
    writer: &mut W,
    pending: &mut Outbound,
) -> std::io::Result<bool> {
    if pending.is_empty() {
        writer.flush().await?;
        return Ok(true);
    }
    match writer.write_buf(pending).await? {
        0 => Err(std::io::ErrorKind::WriteZero.into()),
        _ => Ok(false),
    }
}
