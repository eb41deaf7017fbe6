//! One accepted connection, plain or TLS: the request code reads and
//! writes through it and never knows which.

use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Conn {
    tcp: TcpStream,
    tls: Option<Box<ServerConnection>>,
    /// Headers the web config adds to every response ("Name: value\r\n"...).
    pub extra_headers: String,
}

impl Conn {
    pub fn new(tcp: TcpStream, tls: Option<Arc<ServerConfig>>) -> io::Result<Conn> {
        let tls = match tls {
            Some(cfg) => Some(Box::new(
                ServerConnection::new(cfg).map_err(io::Error::other)?,
            )),
            None => None,
        };
        Ok(Conn {
            tcp,
            tls,
            extra_headers: String::new(),
        })
    }

    /// Completes the TLS handshake by `deadline` (nothing to do for plain
    /// HTTP). Done here, one socket read at a time, because rustls' Stream
    /// would run the whole handshake inside one read: a client that
    /// trickles handshake bytes could then hold the connection long past
    /// the head deadline.
    pub fn handshake(&mut self, deadline: Instant) -> io::Result<()> {
        let Some(t) = self.tls.as_mut() else {
            return Ok(());
        };
        while t.is_handshaking() {
            if t.wants_write() {
                t.write_tls(&mut self.tcp)?;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.tcp.set_read_timeout(Some(left))?;
            if t.read_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Err(e) = t.process_new_packets() {
                // Send the alert that says why, then give up.
                let _ = t.write_tls(&mut self.tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        while t.wants_write() {
            t.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Bounds each read of the socket.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(d)
    }

    /// The client's certificate, once the handshake is done (TLS only).
    pub fn peer_certificate(&self) -> Option<rustls_pki_types::CertificateDer<'static>> {
        self.tls
            .as_ref()
            .and_then(|t| t.peer_certificates())
            .and_then(|c| c.first().cloned())
    }

    /// Ends our side (close_notify first under TLS) and keeps reading, so
    /// a client still sending sees the answer rather than a reset.
    pub fn close_write(&mut self) {
        if let Some(t) = self.tls.as_mut() {
            t.send_close_notify();
            let _ = t.complete_io(&mut self.tcp);
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_mut() {
            Some(t) => rustls::Stream::new(t.as_mut(), &mut self.tcp).read(buf),
            None => self.tcp.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tls.as_mut() {
            Some(t) => rustls::Stream::new(t.as_mut(), &mut self.tcp).write(buf),
            None => self.tcp.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(t) => rustls::Stream::new(t.as_mut(), &mut self.tcp).flush(),
            None => self.tcp.flush(),
        }
    }
}
