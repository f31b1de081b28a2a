//! The load generator's HTTP/1.1 client: one connection per client, each request written as
//! bytes made before the clock starts, each response read with `httparse`.
//!
//! The clients run in the bench's process, on the same 2 CPUs as the servers they measure.
//! Through reqwest they cost 190–224 µs of CPU a request (measured on the reference's runs,
//! where they are all the process does), about as much as our server's own work a write; so
//! the figure measured the load generator as much as the server (the reference, a single
//! Python process, barely felt it). This client does the least a keep-alive client must:
//! write, read the head, read `Content-Length` bytes (or to the end when the server closes).
//! It sends the same requests to both servers.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One client's connection to a server, opened on first use and again after the server
/// closes it (scim2-server's `wsgiref` answers HTTP/1.0 and closes after each response).
pub struct Wire {
    addr: SocketAddr,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

/// A response: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What a response's head says about its body and its connection.
struct Head {
    status: u16,
    len: usize,
    length: Option<usize>,
    keep: bool,
}

impl Wire {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conn: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends one request (its whole bytes) and reads its response. A kept connection the
    /// server closed meanwhile (nothing read back) is opened again and the request resent
    /// once; anything else that goes wrong is a panic, naming it.
    pub async fn send(&mut self, request: &[u8]) -> Answer {
        let reused = self.conn.is_some();
        match self.try_send(request).await {
            Ok(a) => a,
            Err(e) if reused && self.buf.is_empty() => {
                self.conn = None;
                self.try_send(request)
                    .await
                    .unwrap_or_else(|e2| panic!("request to {} failed: {e}, then {e2}", self.addr))
            }
            Err(e) => panic!("request to {} failed: {e}", self.addr),
        }
    }

    async fn try_send(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        if self.conn.is_none() {
            let c = TcpStream::connect(self.addr).await?;
            c.set_nodelay(true)?;
            self.conn = Some(c);
        }
        let conn = self.conn.as_mut().expect("opened above");
        self.buf.clear();
        conn.write_all(request).await?;
        let head = loop {
            if conn.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(h) = parse_head(&self.buf)? {
                break h;
            }
        };
        match head.length {
            Some(n) => {
                while self.buf.len() < head.len + n {
                    if conn.read_buf(&mut self.buf).await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
            None => while conn.read_buf(&mut self.buf).await? > 0 {},
        }
        let end = head.length.map_or(self.buf.len(), |n| head.len + n);
        let body = self.buf[head.len..end].to_vec();
        if !head.keep || head.length.is_none() {
            self.conn = None;
        }
        self.buf.clear();
        Ok(Answer {
            status: head.status,
            body,
        })
    }
}

/// The response head in `buf`, once whole.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let status = r.code.unwrap_or(0);
    // No body, whatever the headers say (RFC 9112, 6.3).
    let mut length = matches!(status, 100..=199 | 204 | 304).then_some(0);
    let mut keep = r.version == Some(1);
    for h in r.headers.iter() {
        let v = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().ok();
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep = !v.eq_ignore_ascii_case("close");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(std::io::Error::other("chunked responses are not read here"));
        }
    }
    Ok(Some(Head {
        status,
        len,
        length,
        keep,
    }))
}

/// A request's bytes: `method path`, the token, a JSON body when given.
pub fn request(method: &str, addr: SocketAddr, path: &str, token: &str, body: &str) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         accept: */*\r\n"
    );
    if !body.is_empty() {
        r.push_str(&format!(
            "content-type: application/scim+json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}
