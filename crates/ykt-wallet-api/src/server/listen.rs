//! The listeners (client.md §6.6): the Unix socket (the default; mode 0600, the peer's uid
//! checked on every request) and loopback HTTP (optional; 127.0.0.1 only), and [`serve`] for
//! both.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{
    DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use super::{AppState, PeerUid, tcp_app, unix_app};
use crate::proposals::{SOCKET_MODE, SOCKET_NAME};

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `$XDG_RUNTIME_DIR` is not set, so there is no default socket path.
    #[error("XDG_RUNTIME_DIR is not set; give the socket path")]
    NoRuntimeDir,
    /// Something that is not a socket is at the socket path; it is left alone.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// Another server answers on the socket path.
    #[error("another server is listening on {0}")]
    InUse(PathBuf),
    /// The socket could not be set up.
    #[error("setting up the socket {path}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The loopback address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
}

/// The default socket path: `$XDG_RUNTIME_DIR/ykt-wallet.sock` (client.md §6.6).
pub fn default_socket_path() -> Result<PathBuf, ServeError> {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join(SOCKET_NAME)),
        _ => Err(ServeError::NoRuntimeDir),
    }
}

/// The API on a Unix socket (client.md §6.6): created mode 0600, callers of other uids refused.
#[derive(Debug)]
pub struct UnixServer {
    listener: UnixListener,
    path: PathBuf,
    owner_uid: u32,
}

impl UnixServer {
    /// Binds the socket at `path` (inside a Tokio runtime). A stale socket there (nobody
    /// answers) is replaced; a live one or anything that is not a socket is an error.
    ///
    /// The socket is bound in a new directory of mode 0700 next to `path`, given mode 0600,
    /// then renamed into place, so it is never reachable with a wider mode. The owner of the
    /// socket file is the uid callers must have.
    pub fn bind(path: &Path) -> Result<Self, ServeError> {
        let socket_error = |source| ServeError::Socket {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ServeError::InUse(path.to_path_buf()));
                }
            }
            Ok(_) => return Err(ServeError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(socket_error(e)),
        }
        let parent = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().unwrap_or(SOCKET_NAME.as_ref());
        let mut staging_name = std::ffi::OsString::from(".");
        staging_name.push(name);
        staging_name.push(format!(".{}.new", std::process::id()));
        let staging = parent.join(staging_name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(socket_error)?;
        let staged = staging.join(SOCKET_NAME);
        let bound = (|| {
            let listener = UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(SOCKET_MODE))?;
            let owner_uid = std::fs::metadata(&staged)?.uid();
            std::fs::rename(&staged, path)?;
            Ok((listener, owner_uid))
        })();
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_dir(&staging);
        let (listener, owner_uid) = bound.map_err(socket_error)?;
        tracing::info!(path = %path.display(), "local API listening on a Unix socket");
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            owner_uid,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The uid callers must have.
    pub fn owner_uid(&self) -> u32 {
        self.owner_uid
    }

    /// Takes callers of `uid` instead of the socket owner's, so tests can see the uid check
    /// refuse a real connection.
    #[doc(hidden)]
    pub fn danger_expect_uid(mut self, uid: u32) -> Self {
        self.owner_uid = uid;
        self
    }

    /// Serves until `shutdown` completes, then removes the socket file.
    pub async fn serve(
        self,
        state: AppState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            path,
            owner_uid,
        } = self;
        let app = unix_app(state, owner_uid).into_make_service_with_connect_info::<PeerUid>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve);
        let _ = std::fs::remove_file(&path);
        served
    }
}

/// The API on loopback HTTP (client.md §6.6, optional): 127.0.0.1 only, with a `Host`
/// allow-list.
#[derive(Debug)]
pub struct TcpServer {
    listener: TcpListener,
    addr: SocketAddr,
    hosts: Vec<String>,
}

impl TcpServer {
    /// Binds 127.0.0.1:`port` (0 for an ephemeral port). The allow-list starts as
    /// `127.0.0.1:PORT` and `localhost:PORT` with the port bound.
    pub async fn bind(port: u16) -> Result<Self, ServeError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(ServeError::Serve)?;
        let port = addr.port();
        tracing::info!(%addr, "local API listening on loopback HTTP");
        Ok(Self {
            listener,
            addr,
            hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Also takes requests whose `Host` is `host` (compared whole, port included).
    pub fn allow_host(mut self, host: &str) -> Self {
        self.hosts.push(host.to_string());
        self
    }

    /// The `Host` values taken.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        state: AppState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        axum::serve(self.listener, tcp_app(state, self.hosts))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve)
    }
}

/// Serves on the Unix socket and, when given, on loopback HTTP, until `shutdown` completes or
/// either listener fails (which stops the other too); the socket file is removed at the end.
pub async fn serve(
    unix: UnixServer,
    tcp: Option<TcpServer>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let unix_task = async {
        let served = unix
            .serve(state.clone(), until_stopped(stopped.clone()))
            .await;
        let _ = stop.send(true);
        served
    };
    let tcp_task = async {
        let Some(tcp) = tcp else {
            return Ok(());
        };
        let served = tcp
            .serve(state.clone(), until_stopped(stopped.clone()))
            .await;
        let _ = stop.send(true);
        served
    };
    let trigger = async {
        tokio::select! {
            () = shutdown => {
                let _ = stop.send(true);
            }
            () = until_stopped(stopped.clone()) => {}
        }
    };
    let (unix_served, tcp_served, ()) = tokio::join!(unix_task, tcp_task, trigger);
    unix_served.and(tcp_served)
}
