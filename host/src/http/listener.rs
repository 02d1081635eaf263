//! The listening socket: TCP, or a Unix socket for a proxy on the same
//! machine (nginx's `proxy_pass http://unix:/run/host/host.sock`), bound
//! here or inherited (from the process this one replaced, or from systemd).
//!
//! A Unix socket's file is made readable and writable by the host's user
//! and group only (0660), a stale one left by a killed host is replaced,
//! and the file is removed when the process that made it stops (not when
//! it hands the socket to a successor; a socket systemd or a predecessor
//! made is left alone, and a stale file is replaced at the next start).

use std::{
    io,
    net::SocketAddr,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::fs::{FileTypeExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::table::Listen;

/// The mode of a socket file: the host's user and group (give nginx's
/// user the host's group).
const SOCKET_MODE: u32 = 0o660;

/// A listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
        /// Whether this process made the file (and removes it).
        made_here: bool,
    },
}

/// An accepted connection.
pub(super) enum Connection {
    /// With the client's address.
    Tcp(TcpStream, SocketAddr),
    /// From a process on this machine.
    Unix(UnixStream),
}

impl Listener {
    /// Listens at `listen`.
    pub async fn bind(listen: &Listen) -> anyhow::Result<Listener> {
        match listen {
            Listen::Tcp(address) => TcpListener::bind(address)
                .await
                .map(Listener::Tcp)
                .with_context(|| format!("cannot listen on {address}")),
            Listen::Unix(path) => {
                let cannot = || format!("cannot listen on unix:{}", path.display());
                remove_stale_socket(path).with_context(cannot)?;
                let listener = UnixListener::bind(path).with_context(cannot)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
                    .with_context(cannot)?;
                Ok(Listener::Unix {
                    listener,
                    path: path.clone(),
                    made_here: true,
                })
            }
        }
    }

    /// The listening socket `fd` a parent passed: TCP or Unix, as it is.
    pub fn inherited(fd: OwnedFd) -> anyhow::Result<Listener> {
        let domain = rustix::net::sockopt::socket_domain(&fd)?;
        if domain == rustix::net::AddressFamily::UNIX {
            let listener = std::os::unix::net::UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            let path = listener
                .local_addr()?
                .as_pathname()
                .map(Path::to_owned)
                .context("the inherited Unix socket has no path")?;
            let listener = UnixListener::from_std(listener)?;
            return Ok(Listener::Unix {
                listener,
                path,
                made_here: false,
            });
        }
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        Ok(Listener::Tcp(TcpListener::from_std(listener)?))
    }

    /// Where it listens, as a client reaches it: `http://127.0.0.1:5000`
    /// or `unix:/run/host/host.sock`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(address) => format!("http://{address}"),
                Err(_) => "http://(unknown address)".to_owned(),
            },
            Listener::Unix { path, .. } => format!("unix:{}", path.display()),
        }
    }

    /// The next connection.
    pub(super) async fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, address) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream, address))
            }
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                Ok(Connection::Unix(stream))
            }
        }
    }

    /// Closes it for good: a Unix socket's file goes too, if this process
    /// made it.
    pub fn close(self) {
        if let Listener::Unix {
            path,
            made_here: true,
            ..
        } = &self
            && let Err(error) = std::fs::remove_file(path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the socket {}: {error}", path.display());
        }
    }

    /// The socket, for handing to a successor, which keeps its file.
    pub fn into_fd(self) -> io::Result<OwnedFd> {
        match self {
            Listener::Tcp(listener) => listener.into_std().map(OwnedFd::from),
            Listener::Unix { listener, .. } => listener.into_std().map(OwnedFd::from),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(listener) => listener.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

/// Removes a socket file nobody listens on any more (a host that was
/// killed leaves its file); refuses one in use or a file that is no
/// socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket; remove it or choose another",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process listens on it (a host running already?)",
        )),
        Err(_) => std::fs::remove_file(path),
    }
}
