//! `clusterctl render`: every file a node should have, offline. Prints them, or
//! writes one tree per node under `--out DIR` mirroring the target paths.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::render_manifest::Manifest;
use super::select::select_by;
use crate::cli::RenderArgs;
use crate::cluster::Cluster;
use crate::desired;
use crate::error::{Error, Result};
use crate::templates::{self, Templates};

pub fn run(args: RenderArgs) -> Result<i32> {
    let path = &args.inventory.path;
    let cluster = Cluster::load(path)?;
    let templates =
        Templates::load(templates::override_dir(path, args.templates.dir.as_deref())?.as_deref())?;
    let selected = select_by(&cluster, args.node.as_deref(), "--node")?;
    // One node at a time, written (or printed) before the next is rendered.
    match &args.out {
        Some(dir) => {
            let out = OutDir::open(dir)?;
            let mut manifest = Manifest::read(dir)?;
            desired::render_some(&cluster, &templates, &selected, |node, files| {
                let node_dir = out.subdir(Path::new(node))?;
                let mut written = Vec::new();
                for f in &files {
                    let rel = f.path.trim_start_matches('/');
                    node_dir.write(Path::new(rel), &f.content)?;
                    written.push((rel.to_string(), f.content.as_str()));
                }
                manifest.rendered(node, written);
                println!(
                    "{}: {} files under {}",
                    node,
                    files.len(),
                    dir.join(node).display()
                );
                Ok(())
            })?;
            let names = cluster.node_names();
            for gone in manifest.finish(dir, |n| names.contains(&n))? {
                println!("{gone}: removed (no longer rendered)");
            }
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            desired::render_some(&cluster, &templates, &selected, |node, files| {
                let mut text = String::new();
                for f in &files {
                    text.push_str(&format!("==> {node}: {}\n", f.describe()));
                    text.push_str(&f.content);
                    if !f.content.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push('\n');
                }
                // A closed pipe (`| head`) is not an error worth a message.
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                Ok(())
            })?;
        }
    }
    Ok(0)
}

/// A directory `render --out` writes into, held open: everything below it
/// is reached with `openat`/`mkdirat` and `O_NOFOLLOW`, and each file is
/// written to a new temporary (`O_CREAT|O_EXCL`) and renamed into place, so
/// a symlink (or hard link) planted in the output directory is never
/// written through, even if it appears while we write; one found in the
/// way is refused with a clear error.
struct OutDir {
    fd: std::os::fd::OwnedFd,
    /// For messages.
    path: PathBuf,
}

fn planted(path: &Path, what: &str) -> Error {
    Error::usage(
        format!("refusing to write through {}: it is {what}", path.display()),
        Some("render --out never follows links below the output directory; remove it, or pass a fresh directory"),
    )
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn c_name(name: &std::ffi::OsStr) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    // Names come from node names and catalog paths: never a NUL byte.
    std::ffi::CString::new(name.as_bytes()).unwrap_or_default()
}

impl OutDir {
    /// The `--out` directory itself (created if missing); it must not be a
    /// symlink either. Its parents are the user's path, followed as usual.
    fn open(dir: &Path) -> Result<OutDir> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => return Err(planted(dir, "a symbolic link")),
            Ok(m) if !m.is_dir() => return Err(planted(dir, "not a directory")),
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(dir).map_err(io_err(dir))?,
        }
        let path = c_name(dir.as_os_str());
        // SAFETY: a valid C string; the returned fd is checked and owned.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        OutDir::own(fd, dir.to_path_buf())
    }

    fn own(fd: libc::c_int, path: PathBuf) -> Result<OutDir> {
        use std::os::fd::FromRawFd;
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            let link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP | libc::ENOTDIR) if link => planted(&path, "a symbolic link"),
                Some(libc::ELOOP | libc::ENOTDIR) => planted(&path, "not a directory"),
                _ => io_err(&path)(e),
            });
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(OutDir { fd, path })
    }

    fn raw(&self) -> libc::c_int {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// The directory `rel` below this one, created as needed, every
    /// component opened without following a link.
    fn subdir(&self, rel: &Path) -> Result<OutDir> {
        let mut dir = OutDir {
            fd: self.fd.try_clone().map_err(io_err(&self.path))?,
            path: self.path.clone(),
        };
        for comp in rel.components() {
            let name = c_name(comp.as_os_str());
            let path = dir.path.join(comp);
            // SAFETY: valid fd and C string.
            if unsafe { libc::mkdirat(dir.raw(), name.as_ptr(), 0o777) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(io_err(&path)(e));
                }
            }
            // SAFETY: valid fd and C string; the result is checked and owned.
            let fd = unsafe {
                libc::openat(
                    dir.raw(),
                    name.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            dir = OutDir::own(fd, path)?;
        }
        Ok(dir)
    }

    /// Write `content` to `rel` (a relative path) below this directory.
    fn write(&self, rel: &Path, content: &str) -> Result<()> {
        use std::io::Write as _;
        use std::os::fd::FromRawFd;
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => self.subdir(p)?,
            _ => self.subdir(Path::new(""))?,
        };
        let Some(file_name) = rel.file_name() else {
            return Err(planted(&self.path.join(rel), "not a file name"));
        };
        let target = parent.path.join(file_name);
        let name = c_name(file_name);
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, C string and stat buffer.
        let found = unsafe {
            libc::fstatat(
                parent.raw(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } == 0;
        if found {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => return Err(planted(&target, "a symbolic link")),
                libc::S_IFREG => {}
                _ => return Err(planted(&target, "not a regular file")),
            }
        }
        let tmp_name = std::ffi::OsString::from(format!(
            ".{}.clusterctl-{}.tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let tmp = c_name(&tmp_name);
        // SAFETY: valid fd and C string; the result is checked and owned.
        let fd = unsafe {
            libc::openat(
                parent.raw(),
                tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o666 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io_err(&parent.path.join(&tmp_name))(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let written = file.write_all(content.as_bytes());
        drop(file);
        // SAFETY: valid fds and C strings.
        let renamed = written.and_then(|()| {
            if unsafe { libc::renameat(parent.raw(), tmp.as_ptr(), parent.raw(), name.as_ptr()) }
                == 0
            {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        if let Err(e) = renamed {
            // SAFETY: valid fd and C string.
            unsafe { libc::unlinkat(parent.raw(), tmp.as_ptr(), 0) };
            return Err(io_err(&target)(e));
        }
        Ok(())
    }
}
