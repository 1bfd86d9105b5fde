//! Locking as the whole crate does it.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if another thread panicked while holding it: every value
/// guarded this way stays consistent between statements, so a poisoned lock carries no torn state.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A value alone on its cache lines: 128 bytes, as the adjacent-line prefetcher fetches lines
/// in pairs. For a value one thread writes often while others read its neighbours (or write it
/// too), so that those writes do not keep evicting the neighbours from every other core.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
