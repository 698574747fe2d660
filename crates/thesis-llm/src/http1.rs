//! The HTTP/1.1 client of plain `http://` upstreams (a vLLM, Ollama or llama.cpp next door, where
//! the gateway's own latency shows): pooled keep-alive connections, each one driven by the task
//! that reads its response. There is no connection task and no channel between the socket and
//! the reader, so a streamed answer goes from the upstream's socket to the client's within one
//! task, instead of one hand-over between two tasks (often two threads) per chunk.
//!
//! `https://` upstreams, and any upstream an `HTTP_PROXY` / `ALL_PROXY` applies to, go through
//! reqwest instead (TLS, HTTP/2, proxies): see [`crate::providers::Provider::new`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Io = TokioIo<TcpStream>;

/// One keep-alive connection: the handle requests are sent with, and the connection itself,
/// which only makes progress while someone polls it.
struct Conn {
    tx: SendRequest<Full<Bytes>>,
    driver: Connection<Io, Full<Bytes>>,
}

impl Conn {
    /// Whether the connection can take a request now: the peer has not closed it, and the last
    /// answer on it was read to its end. Polls it once without waiting (a closed socket reads
    /// as closed at once).
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.driver).poll(&mut cx) {
            Poll::Ready(_) => false,
            Poll::Pending => self.tx.is_ready(),
        }
    }
}

/// Connections to one upstream (`host:port`).
pub struct Pool {
    authority: String,
    host: HeaderValue,
    /// Idle connections, the most recently used last (taken first: still warm, least likely
    /// closed by the peer).
    idle: Mutex<VecDeque<(Conn, Instant)>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `host:port` (`authority`); fails when it cannot be a `Host` header.
    pub fn new(
        authority: &str,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Arc<Pool>, String> {
        let host = HeaderValue::from_str(authority)
            .map_err(|_| format!("`{authority}` cannot be a Host header"))?;
        Ok(Arc::new(Pool {
            authority: authority.to_string(),
            host,
            idle: Mutex::new(VecDeque::new()),
            max_idle,
            idle_timeout,
            connect_timeout,
        }))
    }

    /// Idle connections held now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Conn, Instant)>> {
        // the queue stays consistent whatever panicked while holding it
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn checkout(&self) -> Option<Conn> {
        loop {
            let (mut conn, since) = self.lock().pop_back()?;
            if since.elapsed() < self.idle_timeout && conn.reusable() {
                return Some(conn);
            }
        }
    }

    fn checkin(&self, conn: Conn) {
        let now = Instant::now();
        let mut idle = self.lock();
        idle.push_back((conn, now));
        while idle.len() > self.max_idle
            || idle
                .front()
                .is_some_and(|(_, since)| now.duration_since(*since) >= self.idle_timeout)
        {
            idle.pop_front();
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| format!("connecting failed: {e}"))?;
        // every chunk of a request or stream leaves at once
        tcp.set_nodelay(true)
            .map_err(|e| format!("connecting failed: {e}"))?;
        let (tx, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("connecting failed: {e}"))?;
        Ok(Conn { tx, driver })
    }

    /// Sends `req` (its `Host` header is set here) and returns once the answer's head is in.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, ResponseBody), String> {
        req.headers_mut().insert(HOST, self.host.clone());
        let mut conn = match self.checkout() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let mut answer = std::pin::pin!(conn.tx.send_request(req));
        let res = std::future::poll_fn(|cx| {
            let driven = Pin::new(&mut conn.driver).poll(cx);
            if let Poll::Ready(r) = answer.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(|e| e.to_string()));
            }
            match driven {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(())) => {
                    Poll::Ready(Err("the connection closed before an answer".to_string()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e.to_string())),
            }
        })
        .await?;
        let (head, body) = res.into_parts();
        Ok((
            head.status,
            ResponseBody {
                conn: Some(conn),
                body,
                pool: self.clone(),
            },
        ))
    }
}

/// An answer's body. Reading it drives its connection; once read to its end, the connection
/// goes back to the pool (dropped before that, it is closed).
pub struct ResponseBody {
    conn: Option<Conn>,
    body: Incoming,
    pool: Arc<Pool>,
}

impl ResponseBody {
    fn release(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && conn.reusable()
        {
            self.pool.checkin(conn);
        }
    }
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut driven = false;
        loop {
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                    _ => continue, // an empty chunk, or trailers
                },
                Poll::Ready(Some(Err(e))) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.to_string())));
                }
                Poll::Ready(None) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Poll::Pending if driven => return Poll::Pending,
                Poll::Pending => {}
            }
            // nothing buffered: let the connection read (what it reads is looked at above)
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Pending;
            };
            driven = true;
            match Pin::new(&mut conn.driver).poll(cx) {
                Poll::Pending => {}
                // closed: the body sees its end (or that it was cut short) next
                Poll::Ready(Ok(())) => this.conn = None,
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.to_string())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A bare HTTP/1.1 server: answers each request on a connection with `answer`, counts the
    /// connections it accepted, and closes a connection after `per_conn` answers.
    async fn server(answer: &'static str, per_conn: usize) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![];
                    for _ in 0..per_conn {
                        // read one request: head, then a body of its Content-Length
                        loop {
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                                let len: usize = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length: "))
                                    .map(|v| v.trim().parse().unwrap())
                                    .unwrap_or(0);
                                if buf.len() >= end + 4 + len {
                                    buf.drain(..end + 4 + len);
                                    break;
                                }
                            }
                            let mut chunk = [0u8; 4096];
                            let n = sock.read(&mut chunk).await.unwrap();
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        sock.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn pool(addr: &str) -> Arc<Pool> {
        Pool::new(addr, 8, Duration::from_secs(90), Duration::from_secs(5)).unwrap()
    }

    fn post() -> Request<Full<Bytes>> {
        Request::post("/v1/x")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    async fn read(body: ResponseBody) -> Result<String, String> {
        let chunks: Vec<Result<Bytes, String>> = body.collect().await;
        let mut out = vec![];
        for c in chunks {
            out.extend_from_slice(&c?);
        }
        Ok(String::from_utf8(out).unwrap())
    }

    const CHUNKED: &str =
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n";

    #[tokio::test]
    async fn a_connection_read_to_its_end_serves_the_next_request() {
        let (addr, accepted) = server(CHUNKED, 100).await;
        let pool = pool(&addr);
        for _ in 0..5 {
            let (status, body) = pool.send(post()).await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(read(body).await.unwrap(), "onetwo");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (addr, accepted) = server(CHUNKED, 100).await;
        let pool = pool(&addr);
        let (_, body) = pool.send(post()).await.unwrap();
        drop(body);
        assert_eq!(pool.idle(), 0);
        let (_, body) = pool.send(post()).await.unwrap();
        assert_eq!(read(body).await.unwrap(), "onetwo");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_reused() {
        // one answer per connection, then the server closes it
        let (addr, accepted) = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 1).await;
        let pool = pool(&addr);
        for _ in 0..3 {
            let (_, body) = pool.send(post()).await.unwrap();
            assert_eq!(read(body).await.unwrap(), "ok");
            // let the close arrive
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let (addr, _) = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nabc",
            1,
        )
        .await;
        let (_, body) = pool(&addr).send(post()).await.unwrap();
        assert!(read(body).await.is_err());
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let e = pool(&addr).send(post()).await.err().unwrap();
        assert!(e.starts_with("connecting failed"), "{e}");
    }

    #[tokio::test]
    async fn idle_connections_are_bounded() {
        let (addr, _) = server(CHUNKED, 100).await;
        let pool = Pool::new(&addr, 2, Duration::from_secs(90), Duration::from_secs(5)).unwrap();
        let mut open = vec![];
        for _ in 0..4 {
            open.push(pool.send(post()).await.unwrap().1);
        }
        for body in open {
            read(body).await.unwrap();
        }
        assert_eq!(pool.idle(), 2);
    }
}
