//! Bounded reads of the small files an operator names (a configuration, a policy, a key
//! set, a password file, a CA certificate): only a regular file, and only up to a size
//! cap, so a device such as `/dev/zero` or a FIFO is refused instead of exhausting
//! memory or blocking the start.

use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// Why a bounded read failed (the message names no content of the file).
#[derive(Debug, Error)]
pub enum BoundedReadError {
    /// A device, FIFO, socket or folder.
    #[error("not a regular file")]
    NotRegular,
    /// Larger than the cap.
    #[error("{len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The file's size.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// It could not be read (missing, no permission, not UTF-8).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads `path` as text: a regular file of at most `max_bytes` (checked before the read,
/// and the read itself stops at the cap should the file grow meanwhile).
pub fn read_to_string(path: &Path, max_bytes: u64) -> Result<String, BoundedReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(BoundedReadError::NotRegular);
    }
    if meta.len() > max_bytes {
        return Err(BoundedReadError::TooLarge {
            len: meta.len(),
            max: max_bytes,
        });
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max_bytes)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_folders_and_big_files_are_refused() {
        for p in ["/dev/zero", "/dev/null", "/"] {
            let e = read_to_string(Path::new(p), 1024).unwrap_err();
            assert!(matches!(e, BoundedReadError::NotRegular), "{p}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let e = read_to_string(&big, 1024).unwrap_err().to_string();
        assert_eq!(e, "2048 bytes, over the 1024-byte limit");
        assert_eq!(read_to_string(&big, 2048).unwrap().len(), 2048);
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_to_string(&fifo, 1024).unwrap_err();
            assert!(matches!(e, BoundedReadError::NotRegular), "{e}");
        }
    }
}
