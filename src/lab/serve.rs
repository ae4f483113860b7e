//! The wan host's web server: static files over HTTP/1.1 (GET and HEAD,
//! keep-alive), enough for apt to read the lab's mirror. It runs as a thread
//! of the wan host's PID 1, inside the wan host's network namespace, so only
//! lab hosts (and this machine through the lab's own veth) can reach it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Serve `root` on `listener` forever, a thread per connection.
pub fn serve(listener: TcpListener, root: PathBuf) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = connection(stream, &root);
        });
    }
}

/// The file a request path names under `root`, if it is a plain relative
/// path (no `..`, no absolute component) to a regular file.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let path = percent_decode(path)?;
    let rel = path.strip_prefix('/')?;
    let mut out = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    out.is_file().then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn connection(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let request = request.trim_end().to_string();
        if request.is_empty() {
            continue;
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let h = header.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut words = request.split_whitespace();
        let (method, target, version) = (words.next(), words.next(), words.next());
        close |= version != Some("HTTP/1.1");
        let head_only = method == Some("HEAD");
        match (method, target) {
            (Some("GET" | "HEAD"), Some(target)) => match resolve(root, target) {
                Some(path) => send_file(&mut out, &path, head_only, close)?,
                None => send_status(&mut out, "404 Not Found", close)?,
            },
            _ => {
                send_status(&mut out, "405 Method Not Allowed", true)?;
                return Ok(());
            }
        }
        if close {
            return Ok(());
        }
    }
}

fn send_status(out: &mut TcpStream, status: &str, close: bool) -> std::io::Result<()> {
    let body = format!("{status}\n");
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )?;
    out.flush()
}

fn send_file(
    out: &mut TcpStream,
    path: &Path,
    head_only: bool,
    close: bool,
) -> std::io::Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(_) => return send_status(out, "404 Not Found", close),
    };
    let len = file.metadata()?.len();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    )?;
    if !head_only {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("debian")).unwrap();
        std::fs::write(dir.path().join("debian/Packages"), "x").unwrap();
        let r = dir.path();
        assert_eq!(
            resolve(r, "/debian/Packages"),
            Some(r.join("debian/Packages"))
        );
        assert_eq!(
            resolve(r, "/debian/%50ackages?x=1"),
            Some(r.join("debian/Packages"))
        );
        assert_eq!(resolve(r, "/debian/../debian/Packages"), None);
        assert_eq!(resolve(r, "/debian"), None, "directories are not served");
        assert_eq!(resolve(r, "debian/Packages"), None);
        assert_eq!(resolve(r, "//etc/passwd"), None);
        assert_eq!(resolve(r, "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(r, "/%zz"), None);
    }

    #[test]
    fn serves_get_head_and_keep_alive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "hello").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || serve(listener, root));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\nHEAD /f HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 5\r\n\r\nhello"), "{text}");
        assert_eq!(text.matches("200 OK").count(), 2, "{text}");
        assert!(text.ends_with("404 Not Found\n"), "{text}");
    }
}
