//! Zero-copy reads of stored files: a read-only memory map wrapped in [`bytes::Bytes`].
//!
//! This is the only module in the workspace allowed to use `unsafe`.

use std::fs::File;
use std::io;
use std::path::Path;

use bytes::Bytes;

/// Maps `path` read-only and returns its bytes without copying them.
///
/// The returned `Bytes` (and every clone or slice of it) keeps the mapping alive; the file is unmapped
/// when the last one drops. An empty file gives `Bytes::new()` (zero-length maps are not allowed).
pub fn map_file(path: &Path) -> io::Result<Bytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // # Safety
    //
    // A file-backed map is only sound while nobody truncates or rewrites the file underneath it
    // (truncation turns reads into SIGBUS, rewrites change "immutable" bytes). The store guarantees this
    // for every file it maps: object and part files are written once under a fresh random name in a
    // temporary directory, fsynced, then renamed into place and never opened for writing again. New
    // versions are new files, and a file is only ever unlinked, which leaves existing maps intact.
    // Callers outside the store must give the same guarantee for the paths they pass here.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::map_file;

    #[test]
    fn maps_without_copying_and_survives_unlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.bin");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let bytes = map_file(&path).expect("map");
        assert_eq!(&bytes[..], &data[..]);
        let slice = bytes.slice(4096..8192);
        assert_eq!(
            slice.as_ptr(),
            bytes[4096..].as_ptr(),
            "slicing must not copy"
        );
        std::fs::remove_file(&path).expect("unlink");
        assert_eq!(
            &slice[..],
            &data[4096..8192],
            "the map outlives the directory entry"
        );
    }

    #[test]
    fn empty_file_is_empty_bytes_and_missing_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").expect("write");
        assert!(map_file(&path).expect("map").is_empty());
        let err = map_file(&dir.path().join("missing")).expect_err("missing file");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
