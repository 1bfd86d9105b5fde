//! Sockets, the epoll loops and connection buffers. Knows nothing of commands: bytes go to the
//! handler and its replies come back as bytes.

mod balance;
mod buffers;
mod conn;
mod listener;
mod output;
mod stream;
mod sys;
pub mod tls;
mod udp;
mod worker;

pub use listener::{bind_tcp, bind_unix, KeptSockets, ListenError};
pub use stream::{Listener, Stream};
pub use sys::adopt_inherited_fd;
pub use udp::{bind_udp, spawn_udp, UdpThread};
pub use worker::{spawn_workers, WorkerHandle, WorkerProbe};
