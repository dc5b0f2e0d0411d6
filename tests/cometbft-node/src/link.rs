//! The node's end of priv_validator_laddr: it listens, the signer dials in (CometBFT's
//! SignerListenerEndpoint does the same). TCP connections are wrapped in a SecretConnection
//! under the node's own key; unix sockets carry the messages in the clear. Either way a message
//! is a `privval.Message` preceded by its length as a protobuf uvarint.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use ed25519_consensus::SigningKey;
use prost::Message as _;
use tendermint_p2p::secret_connection::{self, SecretConnection};
use tendermint_proto::v0_38::privval::Message;

/// A decrypted SecretConnection frame holds at most this many bytes. Every read asks for a
/// whole frame: tendermint-p2p 0.41's `SecretConnection::read` panics when the caller's buffer
/// is shorter than the decrypted frame (it copies the rest into an empty buffer).
const FRAME: usize = secret_connection::DATA_MAX_SIZE;

/// The largest message the node accepts from a signer (a signed vote is a few hundred bytes).
const MAX_MESSAGE: usize = 64 * 1024;

/// Where the node listens.
pub enum Listener {
    Tcp {
        listener: TcpListener,
        key: Box<SigningKey>,
    },
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// `tcp://HOST:PORT` (port 0: the OS chooses) or `unix:///path`.
    pub fn bind(address: &str, key: SigningKey) -> io::Result<Self> {
        if let Some(hostport) = address.strip_prefix("tcp://") {
            let listener = TcpListener::bind(hostport)?;
            Ok(Listener::Tcp {
                listener,
                key: Box::new(key),
            })
        } else if let Some(path) = address.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            let listener = UnixListener::bind(&path)?;
            Ok(Listener::Unix { listener, path })
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("listen address must be tcp://HOST:PORT or unix:///PATH, not {address:?}"),
            ))
        }
    }

    /// The address a signer dials: `tcp://<node id>@127.0.0.1:PORT` or `unix:///path`.
    pub fn dial_address(&self) -> io::Result<String> {
        Ok(match self {
            Listener::Tcp { listener, key } => {
                let id = secret_connection::PublicKey::from(&**key).peer_id();
                format!("tcp://{id}@{}", listener.local_addr()?)
            }
            Listener::Unix { path, .. } => format!("unix://{}", path.display()),
        })
    }

    /// Accept signers for as long as the process lives, each on this thread: the handshake
    /// is done as soon as a signer dials (as a node does), so a signer never waits for the
    /// test's next request to finish connecting. Ready connections (or the reason one failed)
    /// come out of the returned channel, oldest first.
    pub fn spawn_acceptor(self, io_timeout: Duration) -> mpsc::Receiver<io::Result<Connection>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let accepted = match &self {
                    Listener::Tcp { listener, key } => listener
                        .accept()
                        .and_then(|(stream, _)| tcp_session(stream, key, io_timeout)),
                    Listener::Unix { listener, .. } => listener.accept().and_then(|(stream, _)| {
                        stream.set_read_timeout(Some(io_timeout))?;
                        stream.set_write_timeout(Some(io_timeout))?;
                        Ok(Connection::new(Box::new(stream), None))
                    }),
                };
                if tx.send(accepted).is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// Remove a unix socket's file (the acceptor thread holds the listener until the process
/// exits).
pub fn remove_socket(address: &str) {
    if let Some(path) = address.strip_prefix("unix://") {
        let _ = std::fs::remove_file(path);
    }
}

fn tcp_session(
    stream: TcpStream,
    key: &SigningKey,
    io_timeout: Duration,
) -> io::Result<Connection> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    let secret = SecretConnection::new(stream, key.clone(), secret_connection::Version::V0_34)
        .map_err(|e| io::Error::other(format!("SecretConnection handshake: {e}")))?;
    let peer = secret.remote_pubkey().peer_id().to_string();
    Ok(Connection::new(Box::new(secret), Some(peer)))
}

/// Anything a connection reads from and writes to.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One signer connection: length-prefixed `privval.Message`s both ways.
pub struct Connection {
    stream: Box<dyn Stream>,
    /// Bytes read but not yet consumed as a message.
    pending: Vec<u8>,
    /// The signer's SecretConnection identity (TCP only).
    pub peer_id: Option<String>,
}

impl Connection {
    fn new(stream: Box<dyn Stream>, peer_id: Option<String>) -> Self {
        Connection {
            stream,
            pending: Vec::new(),
            peer_id,
        }
    }

    pub fn send(&mut self, message: &Message) -> io::Result<()> {
        let bytes = message.encode_length_delimited_to_vec();
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }

    pub fn receive(&mut self) -> io::Result<Message> {
        loop {
            if let Some((len, prefix)) = uvarint(&self.pending)? {
                if len > MAX_MESSAGE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("message of {len} bytes announced (at most {MAX_MESSAGE})"),
                    ));
                }
                if self.pending.len() >= prefix + len {
                    let message = Message::decode(&self.pending[prefix..prefix + len])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    self.pending.drain(..prefix + len);
                    return Ok(message);
                }
            }
            let mut frame = [0u8; FRAME];
            let n = self.stream.read(&mut frame)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the signer closed the connection",
                ));
            }
            self.pending.extend_from_slice(&frame[..n]);
        }
    }
}

/// A protobuf uvarint at the start of `bytes`: Some((value, its length)) once complete.
fn uvarint(bytes: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        if i == 10 {
            break;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(value)
                .map(|v| Some((v, i + 1)))
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "length too large"));
        }
    }
    if bytes.len() >= 10 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "length prefix longer than 10 bytes",
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::uvarint;

    #[test]
    fn uvarint_reads_protobuf_lengths() {
        assert_eq!(uvarint(&[]).unwrap(), None);
        assert_eq!(uvarint(&[0x05, 0xaa]).unwrap(), Some((5, 1)));
        assert_eq!(uvarint(&[0xac, 0x02]).unwrap(), Some((300, 2)));
        assert_eq!(uvarint(&[0xac]).unwrap(), None);
        assert!(uvarint(&[0xff; 11]).is_err());
    }
}
