//! Sockets, the epoll loops and connection buffers. Knows nothing of commands: bytes go to the
//! handler and its replies come back as bytes.

mod conn;
mod listener;
mod sys;
mod worker;

pub use listener::{bind_tcp, ListenError};
pub use worker::{spawn_workers, WorkerHandle};
