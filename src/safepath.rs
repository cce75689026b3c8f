//! Safe path resolution: a folder is opened once, component by component, into a directory
//! fd, so that what is later done through the fd happens in the folder that was resolved,
//! whatever is renamed or swapped on the path meanwhile. A symlink on the way is followed only
//! when nobody but root or gwshim's own user could have put it there or changed it (the
//! symlink and the folder holding it are owned by one of them), as systemd's "safe" path
//! resolution does: `/var/run -> /run` is followed, a folder swapped for a symlink by
//! another user is not. See docs/pidfiles.md.

use crate::error::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// As the kernel's own limit on symlinks in one lookup.
pub const MAX_LINKS: usize = 40;

/// One step of a path, as resolution walks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Root,
    Parent,
    Name(OsString),
}

/// The steps of `path`, `.` left out. Pure.
pub fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .filter_map(|c| match c {
            Component::RootDir => Some(Step::Root),
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(n) => Some(Step::Name(n.to_owned())),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Whether a symlink owned by `link_owner`, in a folder owned by `folder_owner`, may be
/// followed by a process whose effective uid is `own`: only root and that user may have
/// made or changed it. Pure.
pub fn may_follow(link_owner: u32, folder_owner: u32, own: u32) -> bool {
    let trusted = |uid: u32| uid == 0 || uid == own;
    trusted(link_owner) && trusted(folder_owner)
}

/// An open folder: every later step goes through `fd`; `path` is for messages only.
pub struct Dir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Dir {
    pub fn try_clone(&self) -> Result<Dir> {
        Ok(Dir {
            fd: self
                .fd
                .try_clone()
                .context(|| format!("cannot duplicate the fd of {}", self.path.display()))?,
            path: self.path.clone(),
        })
    }
}

/// O_PATH: a handle to walk from, with no read permission needed and nothing opened for I/O.
fn open_step(dir: impl AsFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn root() -> Result<OwnedFd> {
    open_step(AT_FDCWD, OsStr::new("/")).context(|| "cannot open /".into())
}

/// Opens the folder `path` safely, as the module comment says. Ok(None): some component
/// does not exist. Err: why it cannot be resolved safely, naming the component.
pub fn open_dir(path: &Path) -> Result<Option<Dir>> {
    let own = nix::unistd::geteuid().as_raw();
    let mut todo: VecDeque<Step> = steps(path).into();
    let (mut fd, mut shown) = match todo.front() {
        Some(Step::Root) => (root()?, PathBuf::from("/")),
        _ => (
            open_step(AT_FDCWD, OsStr::new("."))
                .context(|| "cannot open the current folder".into())?,
            PathBuf::new(),
        ),
    };
    let mut links = 0;
    while let Some(step) = todo.pop_front() {
        let name = match step {
            Step::Root => {
                fd = root()?;
                shown = PathBuf::from("/");
                continue;
            }
            Step::Parent => {
                fd = open_step(&fd, OsStr::new(".."))
                    .context(|| format!("cannot open {}/..", shown.display()))?;
                shown.push("..");
                continue;
            }
            Step::Name(name) => name,
        };
        let next = match open_step(&fd, &name) {
            Ok(next) => next,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => {
                return Err(e).context(|| format!("cannot open {}", shown.join(&name).display()));
            }
        };
        let here = shown.join(&name);
        let st = fstat(&next).context(|| format!("cannot stat {}", here.display()))?;
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => {
                fd = next;
                shown = here;
            }
            SFlag::S_IFLNK => {
                let folder = fstat(&fd).context(|| format!("cannot stat {}", shown.display()))?;
                if !may_follow(st.st_uid, folder.st_uid, own) {
                    let whose = match own {
                        0 => "root's".to_string(),
                        _ => format!("root's or uid {own}'s"),
                    };
                    return Err(Error::msg(format!(
                        "{} is a symlink owned by uid {} in a folder owned by uid {}; only \
                         {whose} are followed",
                        here.display(),
                        st.st_uid,
                        folder.st_uid
                    )));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::msg(format!(
                        "more than {MAX_LINKS} symlinks on the way (at {})",
                        here.display()
                    )));
                }
                // The very link that was judged: read through its own fd, not by name again.
                let target = readlinkat(&next, OsStr::new(""))
                    .context(|| format!("cannot read the symlink {}", here.display()))?;
                for step in steps(Path::new(&target)).into_iter().rev() {
                    todo.push_front(step);
                }
            }
            _ => {
                return Err(Error::msg(format!("{} is not a folder", here.display())));
            }
        }
    }
    Ok(Some(Dir { fd, path: shown }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        let n = |s: &str| Step::Name(s.into());
        let table: &[(&str, Vec<Step>)] = &[
            ("/run/x", vec![Step::Root, n("run"), n("x")]),
            ("a/./b/", vec![n("a"), n("b")]),
            ("../a", vec![Step::Parent, n("a")]),
            ("//a//b", vec![Step::Root, n("a"), n("b")]),
            ("", vec![]),
        ];
        for (path, want) in table {
            assert_eq!(&steps(Path::new(path)), want, "{path:?}");
        }
    }

    #[test]
    fn follows_only_links_root_or_we_could_have_made() {
        // (link owner, folder owner, own uid, followed)
        let table = [
            (0, 0, 0, true),
            (0, 0, 1000, true),
            (1000, 1000, 1000, true),
            (1000, 0, 1000, true),
            (0, 1000, 1000, true),
            // as root: another user's link, or any link in another user's folder
            (1000, 1000, 0, false),
            (1000, 0, 0, false),
            (0, 1000, 0, false),
            // as a user: a third user's
            (2000, 2000, 1000, false),
            (0, 2000, 1000, false),
            (2000, 0, 1000, false),
        ];
        for (link, folder, own, want) in table {
            assert_eq!(may_follow(link, folder, own), want, "{link} {folder} {own}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gwshim-safepath-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn resolves_own_links_and_dotdot() {
        let dir = scratch("links");
        std::fs::create_dir_all(dir.join("real/sub")).expect("mkdir");
        std::os::unix::fs::symlink("real", dir.join("rel")).expect("symlink");
        std::os::unix::fs::symlink(dir.join("real"), dir.join("abs")).expect("symlink");
        std::os::unix::fs::symlink("loop", dir.join("loop")).expect("symlink");
        std::fs::write(dir.join("file"), "").expect("write");
        let id = |p: &Path| {
            let d = open_dir(p).expect("resolves").expect("exists");
            let st = fstat(&d.fd).expect("fstat");
            (st.st_dev, st.st_ino)
        };
        let want = id(&dir.join("real/sub"));
        for p in ["rel/sub", "abs/sub", "rel/sub/../sub", "abs/../real/sub"] {
            assert_eq!(id(&dir.join(p)), want, "{p}");
        }
        assert!(open_dir(&dir.join("nothing/here")).expect("ok").is_none());
        assert!(open_dir(&dir.join("file/x")).is_err());
        let err = open_dir(&dir.join("loop/x")).err().expect("a loop");
        assert!(err.to_string().contains("symlinks"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
