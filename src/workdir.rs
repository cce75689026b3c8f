//! gwshim's own working directory. The child starts in the one gwshim was started in; then
//! gwshim moves to `/` (as dumb-init does), so a gwshim running for days pins no mount point.
//! Every path it uses later (pid files, state folder) is made absolute before that.

use log::{debug, warn};
use std::path::PathBuf;

/// Makes `path` absolute against the working directory, in place; false when it cannot be
/// (the working directory was removed).
pub fn make_absolute(path: &mut PathBuf) -> bool {
    if path.is_absolute() {
        return true;
    }
    match std::path::absolute(&*path) {
        Ok(p) => {
            *path = p;
            true
        }
        Err(e) => {
            debug!("cannot make {} absolute: {e}", path.display());
            false
        }
    }
}

/// Moves gwshim to `/`, unless a relative path it still needs could not be made absolute.
pub fn leave(paths_absolute: bool) {
    if !paths_absolute {
        warn!("a relative path could not be made absolute; staying in the working directory");
        return;
    }
    if let Err(e) = nix::unistd::chdir("/") {
        warn!("cannot change to /: {e}; staying in the working directory");
    }
}
