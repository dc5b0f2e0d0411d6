//! The connection to a node: the signer dials the node's `priv_validator_laddr` (the node
//! listens, as CometBFT's `SignerListenerEndpoint` does). `tcp://` runs CometBFT's
//! SecretConnection (X25519 + ChaCha20-Poly1305, authenticated by Ed25519 identities) through
//! the `cometbft-p2p` crate; `unix://` is a plain stream framed by [`super::codec`].

use std::path::PathBuf;
use std::time::Duration;

use cometbft_p2p::{AsyncReadMsg as _, AsyncSecretConnection, AsyncWriteMsg as _, IdentitySecret};
use prost::Message as _;
use tokio::net::{TcpStream, UnixStream};

use super::codec::{self, CodecError, MAX_MESSAGE};
use super::proto::Message;

/// Where a node's privval listener is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAddress {
    /// `tcp://[NODE_ID@]HOST:PORT`: SecretConnection; with a node id, the node must prove it.
    Tcp {
        /// Host name or IP.
        host: String,
        /// Port.
        port: u16,
        /// The node's expected id (hex of 20 bytes), if pinned.
        node_id: Option<[u8; 20]>,
    },
    /// `unix:///PATH`: a plain Unix socket (the node's own host; file permissions guard it).
    Unix(PathBuf),
}

impl std::fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeAddress::Tcp { host, port, .. } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            NodeAddress::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port}"),
            NodeAddress::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl std::str::FromStr for NodeAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (node_id, rest) = match rest.split_once('@') {
                Some((id, rest)) => {
                    let bytes = hex::decode(id)
                        .ok()
                        .and_then(|b| <[u8; 20]>::try_from(b).ok())
                        .ok_or_else(|| {
                            format!("`{id}` is not a node id (40 hex digits before `@`)")
                        })?;
                    (Some(bytes), rest)
                }
                None => (None, rest),
            };
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| "no port: tcp://HOST:PORT".to_string())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.contains('/') {
                return Err("no host: tcp://HOST:PORT".into());
            }
            let port = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{port}` is not a port"))?;
            Ok(NodeAddress::Tcp {
                host: host.to_string(),
                port,
                node_id,
            })
        } else if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err("give an absolute path, unix:///PATH (three slashes)".into());
            }
            Ok(NodeAddress::Unix(PathBuf::from(path)))
        } else {
            Err("neither tcp://HOST:PORT nor unix:///PATH".into())
        }
    }
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Connecting, the handshake or a read or write took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The socket failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// SecretConnection failed (handshake, authentication, decryption, decoding).
    #[error("secret connection: {0}")]
    Secret(#[from] cometbft_p2p::Error),
    /// The node is not the one pinned.
    #[error("the node's id is {actual}, not the pinned {expected}")]
    WrongNode {
        /// Pinned.
        expected: String,
        /// Presented.
        actual: String,
    },
    /// Framing on the plain stream.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// An open connection to a node.
pub enum Connection {
    /// `tcp://`.
    Secret(Box<AsyncSecretConnection<TcpStream>>),
    /// `unix://`.
    Plain(UnixStream),
}

impl Connection {
    /// Dial `address` and, for TCP, run the SecretConnection handshake as `identity`; the
    /// whole within `timeout`. Returns the connection and, for TCP, the node's id.
    pub async fn dial(
        address: &NodeAddress,
        identity: &IdentitySecret,
        timeout: Duration,
    ) -> Result<(Connection, Option<String>), TransportError> {
        let dial = async {
            match address {
                NodeAddress::Tcp {
                    host,
                    port,
                    node_id,
                } => {
                    let tcp = TcpStream::connect((host.as_str(), *port)).await?;
                    tcp.set_nodelay(true)?;
                    let conn = AsyncSecretConnection::new(tcp, identity).await?;
                    let peer = conn.peer_public_key().peer_id();
                    if let Some(expected) = node_id
                        && peer.verify(cometbft_p2p::PeerId(*expected)).is_err()
                    {
                        return Err(TransportError::WrongNode {
                            expected: hex::encode(expected),
                            actual: peer.to_string(),
                        });
                    }
                    Ok((Connection::Secret(Box::new(conn)), Some(peer.to_string())))
                }
                NodeAddress::Unix(path) => {
                    Ok((Connection::Plain(UnixStream::connect(path).await?), None))
                }
            }
        };
        tokio::time::timeout(timeout, dial)
            .await
            .map_err(|_| TransportError::Timeout("connecting"))?
    }

    /// The next message from the node, waiting at most `idle` for it.
    pub async fn recv(&mut self, idle: Duration) -> Result<Message, TransportError> {
        let read = async {
            match self {
                Connection::Secret(conn) => {
                    // The crate reads length-delimited messages up to 1 MiB; the node's own
                    // limit is checked on what arrived.
                    let message: Message = conn.read_msg().await?;
                    let length = message.encoded_len();
                    if length > MAX_MESSAGE {
                        return Err(CodecError::TooLong(length as u64).into());
                    }
                    Ok(message)
                }
                Connection::Plain(stream) => Ok(codec::read(stream).await?),
            }
        };
        tokio::time::timeout(idle, read)
            .await
            .map_err(|_| TransportError::Timeout("waiting for the node"))?
    }

    /// Send `message`, within `timeout`.
    pub async fn send(
        &mut self,
        message: Message,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let write = async {
            match self {
                Connection::Secret(conn) => {
                    let length = message.encoded_len();
                    if length > MAX_MESSAGE {
                        return Err(CodecError::TooLong(length as u64).into());
                    }
                    Ok(conn.write_msg(message).await?)
                }
                Connection::Plain(stream) => Ok(codec::write(stream, &message).await?),
            }
        };
        tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| TransportError::Timeout("writing to the node"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_an_optional_node_id() {
        let a: NodeAddress = "tcp://127.0.0.1:26659".parse().expect("tcp");
        assert_eq!(
            a,
            NodeAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 26659,
                node_id: None
            }
        );
        let id = "f0".repeat(20);
        let a: NodeAddress = format!("tcp://{id}@[::1]:26659").parse().expect("pinned");
        assert!(matches!(a, NodeAddress::Tcp { node_id: Some(n), .. } if n == [0xf0; 20]));
        assert_eq!(a.to_string(), "tcp://[::1]:26659");
        let u: NodeAddress = "unix:///run/node/privval.sock".parse().expect("unix");
        assert_eq!(u, NodeAddress::Unix("/run/node/privval.sock".into()));
        for bad in [
            "127.0.0.1:26659",
            "tcp://127.0.0.1",
            "tcp://:26659",
            "tcp://h:0",
            "tcp://abc@h:1",
            "unix://relative.sock",
        ] {
            assert!(bad.parse::<NodeAddress>().is_err(), "{bad}");
        }
    }
}
