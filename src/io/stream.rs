//! [`ProxiedStream`]: a connection with its PROXY header read off, and the
//! bytes that arrived behind the header replayed first.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proxy::OwnedHeader;

/// Bytes read from the socket while looking for the header that belong to
/// the application: `buf[pos..]` is still to be handed out.
#[derive(Debug)]
struct Replay {
    buf: Vec<u8>,
    pos: usize,
}

pin_project! {
    /// A connection whose PROXY header (if any) has been consumed.
    ///
    /// Reading yields first the bytes that arrived in the same reads as the
    /// header, then the inner stream: the application sees the byte
    /// stream exactly as the client sent it after the header. Writes go
    /// straight to the inner stream.
    ///
    /// Produced by [`ProxyAcceptor::accept`](super::ProxyAcceptor::accept)
    /// and, by default, by [`ProxyProtocolListener`](super::ProxyProtocolListener).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use realip::io::ProxyAcceptor;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// let (mut client, server) = tokio::io::duplex(256);
    /// // Header and request in one write, as load balancers often send them.
    /// client
    ///     .write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 443\r\nGET / HTTP/1.1\r\n\r\n")
    ///     .await?;
    /// let peer = "10.0.0.2:50000".parse()?;
    /// let mut stream = ProxyAcceptor::new().accept(server, peer).await?;
    /// let source = stream.proxy_header().and_then(|h| h.source());
    /// assert_eq!(source, Some("203.0.113.7:4242".parse()?));
    /// // The application reads the request as the client sent it.
    /// let mut method = [0u8; 4];
    /// stream.read_exact(&mut method).await?;
    /// assert_eq!(&method, b"GET ");
    /// # Ok(())
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct ProxiedStream<IO> {
        #[pin]
        inner: IO,
        replay: Option<Replay>,
        header: Option<Arc<OwnedHeader>>,
    }
}

impl<IO> ProxiedStream<IO> {
    /// `buf[start..]` are the bytes read past the header, replayed first.
    pub(crate) fn new(
        inner: IO,
        header: Option<Arc<OwnedHeader>>,
        buf: Vec<u8>,
        start: usize,
    ) -> Self {
        let replay = (start < buf.len()).then_some(Replay { buf, pos: start });
        Self {
            inner,
            replay,
            header,
        }
    }

    /// The accepted PROXY header; `None` when none was read or it was
    /// dropped by policy ([`Mode::Ignore`](super::Mode::Ignore)).
    pub fn proxy_header(&self) -> Option<&OwnedHeader> {
        self.header.as_deref()
    }

    /// The accepted header as a shared handle, to build a
    /// [`ProxiedAddr`](super::ProxiedAddr) without copying it.
    pub fn proxy_header_arc(&self) -> Option<&Arc<OwnedHeader>> {
        self.header.as_ref()
    }

    /// The inner stream. Reading from it directly skips the replay bytes
    /// (see [`replay_len`](Self::replay_len)).
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    /// The inner stream, mutably. Reading from it directly skips the replay
    /// bytes (see [`replay_len`](Self::replay_len)).
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.inner
    }

    /// How many bytes read past the header have not been handed out yet.
    pub fn replay_len(&self) -> usize {
        self.replay.as_ref().map_or(0, |r| r.buf.len() - r.pos)
    }

    /// The inner stream and the bytes read past the header that were not
    /// handed out yet (empty when all were): the application's data starts
    /// with those bytes, then continues on the stream.
    pub fn into_inner(self) -> (IO, Vec<u8>) {
        let rest = match self.replay {
            Some(Replay { mut buf, pos }) => {
                buf.drain(..pos);
                buf
            }
            None => Vec::new(),
        };
        (self.inner, rest)
    }
}

impl<IO: AsyncRead> AsyncRead for ProxiedStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if let Some(r) = this.replay.as_mut() {
            if out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let n = out.remaining().min(r.buf.len() - r.pos);
            out.put_slice(&r.buf[r.pos..r.pos + n]);
            r.pos += n;
            if r.pos == r.buf.len() {
                // Give the buffer back as soon as it is drained.
                *this.replay = None;
            }
            return Poll::Ready(Ok(()));
        }
        this.inner.poll_read(cx, out)
    }
}

impl<IO: AsyncWrite> AsyncWrite for ProxiedStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn replays_then_reads_inner() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = ProxiedStream::new(a, None, b"HDRhello ".to_vec(), 3);
        assert_eq!(s.replay_len(), 6);
        b.write_all(b"world").await.unwrap();
        drop(b);
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(s.replay_len(), 0);
    }

    #[tokio::test]
    async fn small_reads_drain_replay_in_order() {
        let (a, _b) = tokio::io::duplex(64);
        let mut s = ProxiedStream::new(a, None, b"xxabcde".to_vec(), 2);
        let mut one = [0u8; 2];
        s.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"ab");
        let (_, rest) = s.into_inner();
        assert_eq!(rest, b"cde");
    }

    #[tokio::test]
    async fn nothing_past_header_means_no_replay() {
        let (a, _b) = tokio::io::duplex(64);
        let s = ProxiedStream::new(a, None, b"HDR".to_vec(), 3);
        assert_eq!(s.replay_len(), 0);
        assert!(s.into_inner().1.is_empty());
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = ProxiedStream::new(a, None, Vec::new(), 0);
        s.write_all(b"pong").await.unwrap();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }
}
