//! Where the cache's memory lives, so that it outlives the process: a restart finds the items
//! of the last run there (see `cache::warm` for when they are trusted).
//!
//! - `-e PATH` (memcached's memory file): a file on tmpfs or DAX. Unlike memcached, which
//!   restores only after SIGUSR1, any clean stop (SIGTERM included) leaves it restorable.
//! - Under systemd: a memfd handed to the service's file-descriptor store (the unit's
//!   `FileDescriptorStoreMax=`), which systemd passes back on `systemctl restart` and keeps
//!   across a package upgrade's restart. `systemctl stop` empties the store: the next start is
//!   cold.
//!   With `-L`, that memfd is of huge pages (`MFD_HUGETLB`), which must be reserved
//!   (`vm.nr_hugepages`); without them, `-L` falls back to anonymous transparent huge pages,
//!   lost at exit. A stored memfd of the other kind (`-L` added or removed) is dropped.
//! - Otherwise: anonymous memory, lost at exit as memcached's is.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use super::{os_error, systemd, DaemonError};
use crate::cache::{EmptyBecause, WarmStart};
use crate::config::Settings;
use crate::os::os_reason;
use crate::server::Server;

/// Builds the server with its cache where the next run can find it. `stored` is the memfd the
/// last run left in systemd's file-descriptor store, if systemd passed one back. With `-e`,
/// also returns the memory file, locked: keep it open for as long as the server runs, so that a
/// second process started on the same file refuses to start instead of clearing the memory
/// under this one.
pub fn build_server(
    settings: Settings,
    stored: Option<File>,
) -> Result<(Server, Option<File>), DaemonError> {
    let map_error = |e: std::io::Error| os_error(format!("failed to map the item memory: {e}"));
    if let Some(path) = settings.memory_file.clone() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                os_error(format!(
                    "failed to open the memory file {}: {}",
                    path.display(),
                    os_reason(&e)
                ))
            })?;
        match crate::os::lock_exclusive(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(os_error(format!(
                    "the memory file {} is in use by another process",
                    path.display()
                )))
            }
            Err(e) => log::warn!("could not lock the memory file {}: {e}", path.display()),
        }
        let began = std::time::Instant::now();
        let (server, start) = Server::with_cache_file(settings, &file).map_err(map_error)?;
        report(&format!("the memory file {}", path.display()), start, began);
        return Ok((server, Some(file)));
    }
    let stored = stored.and_then(|file| match crate::cache::arena::is_huge(&file) {
        Ok(huge) if huge == settings.large_pages => Some(file),
        found => {
            let why = match found {
                Ok(_) if settings.large_pages => "-L was added".to_string(),
                Ok(_) => "-L was removed".to_string(),
                Err(e) => format!("it cannot be examined: {e}"),
            };
            log::info!(
                "starting with an empty cache: the memory in systemd's file-descriptor store \
                 was dropped because {why} since the last run"
            );
            systemd::remove_stored(systemd::CACHE_FD_NAME);
            None
        }
    });
    if let Some(file) = stored {
        let began = std::time::Instant::now();
        let (server, start) = Server::with_cache_file(settings, &file).map_err(map_error)?;
        report("systemd's file-descriptor store", start, began);
        return Ok((server, None));
    }
    if under_systemd() {
        let huge = settings.large_pages;
        let made = crate::cache::arena::memfd("memcached-rs-cache", huge).and_then(|file| {
            Server::with_cache_file(settings.clone(), &file).map(|(server, _)| (server, file))
        });
        match made {
            Ok((server, file)) => {
                if systemd::store_fd(systemd::CACHE_FD_NAME, &file) {
                    log::info!("cache memory handed to systemd's file-descriptor store");
                }
                return Ok((server, None));
            }
            Err(e) if huge => log::warn!(
                "-L: no huge pages for the cache's memfd ({e}; reserve them with \
                 vm.nr_hugepages): the cache is in anonymous memory and starts empty after \
                 every restart"
            ),
            Err(e) => log::warn!("the cache's memfd: {e}; the cache will not outlive this process"),
        }
    }
    Server::new(settings).map(|s| (s, None)).map_err(map_error)
}

/// Whether a service manager supervises the process (it can keep descriptors for it).
pub fn under_systemd() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// One line on how the cache started from `place`. A crash's lost cache is a warning, visible
/// by default (every read now goes to the backend, and nobody chose it); an empty start after
/// the administrator changed the memory settings is what they asked for, so it is information.
fn report(place: &str, start: WarmStart, began: std::time::Instant) {
    match start {
        WarmStart::Restored(r) => log::info!(
            "restored {} items from {place} in {:.2} s ({} expired or unreadable, dropped)",
            r.items,
            began.elapsed().as_secs_f64(),
            r.dropped
        ),
        WarmStart::Empty(EmptyBecause::NoCache) => {
            log::info!("starting with an empty cache in {place}")
        }
        WarmStart::Empty(why @ EmptyBecause::SettingsChanged) => {
            log::info!("starting with an empty cache: {place} was cleared because {why}")
        }
        WarmStart::Empty(why) => {
            log::warn!("starting with an empty cache: {place} was cleared because {why}")
        }
    }
}

/// After every thread that writes items has stopped: marks the cache's file as cleanly
/// stopped, so the next run restores it.
pub fn mark_clean_stop(server: &Server) {
    match server.cache.mark_clean_stop() {
        Ok(true) => log::info!(
            "cache kept for the next run: {} items",
            server.cache.stats().curr_items
        ),
        Ok(false) => {}
        Err(e) => log::error!("could not mark the cache's memory as cleanly stopped: {e}"),
    }
}
