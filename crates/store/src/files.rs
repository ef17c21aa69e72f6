//! Durable file plumbing for object and part bytes: write to `tmp/`, fsync, rename into place under a
//! random name, fsync the directory. Nothing here knows about keys; file names are always fresh UUIDs.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// Directory (under the data dir) for bytes still being written.
pub(crate) const TMP_DIR: &str = "tmp";
/// Directory (under the data dir) for object version files.
pub(crate) const OBJECTS_DIR: &str = "objects";
/// Directory (under the data dir) for multipart upload part files.
pub(crate) const PARTS_DIR: &str = "parts";

/// A file that is complete, fsynced and renamed into its final directory, but not yet referenced by a
/// committed metadata row.
#[derive(Debug)]
pub(crate) struct Installed {
    /// File name inside its directory (a UUID).
    pub(crate) name: String,
    /// Full path of the installed file.
    pub(crate) path: PathBuf,
    /// Length in bytes.
    pub(crate) size: u64,
    /// MD5 of the content.
    pub(crate) md5: [u8; 16],
}

impl Installed {
    /// The S3 ETag of a single-part upload: the quoted hex MD5.
    pub(crate) fn etag(&self) -> String {
        quoted_etag(&self.md5)
    }

    /// Removes the file again (used when the metadata commit fails).
    pub(crate) fn discard(self) {
        remove_quietly(&self.path);
    }
}

/// `"<hex>"`, the form S3 uses for ETags.
pub(crate) fn quoted_etag(digest: &[u8]) -> String {
    format!("\"{}\"", hex::encode(digest))
}

/// A fresh, unused path in the temporary directory.
pub(crate) fn tmp_path(data_dir: &Path) -> PathBuf {
    data_dir
        .join(TMP_DIR)
        .join(uuid::Uuid::new_v4().simple().to_string())
}

/// Writes `data` to a new temp file, fsyncs it and installs it into `dest_dir`.
pub(crate) fn install_bytes(data_dir: &Path, dest_dir: &str, data: &[u8]) -> io::Result<Installed> {
    let tmp = tmp_path(data_dir);
    let written = File::create_new(&tmp).and_then(|mut file| {
        file.write_all(data)?;
        file.sync_all()
    });
    if let Err(e) = written {
        remove_quietly(&tmp);
        return Err(e);
    }
    let md5: [u8; 16] = Md5::digest(data).into();
    install(data_dir, dest_dir, &tmp, data.len() as u64, md5)
}

/// Hashes an existing temp file, fsyncs it and installs it into `dest_dir` (the temp file is moved).
pub(crate) fn install_file(data_dir: &Path, dest_dir: &str, tmp: &Path) -> io::Result<Installed> {
    let mut file = File::open(tmp)?;
    let mut hasher = Md5::new();
    let size = copy_hashing(&mut file, None, &mut hasher)?;
    file.sync_all()?;
    install(data_dir, dest_dir, tmp, size, hasher.finalize().into())
}

/// Concatenates `sources` into a new temp file, fsyncs it and installs it into `dest_dir`.
pub(crate) fn install_concatenation(
    data_dir: &Path,
    dest_dir: &str,
    sources: &[PathBuf],
) -> io::Result<Installed> {
    let tmp = tmp_path(data_dir);
    let written = File::create_new(&tmp).and_then(|mut out| {
        let mut hasher = Md5::new();
        let mut size = 0u64;
        for source in sources {
            size += copy_hashing(&mut File::open(source)?, Some(&mut out), &mut hasher)?;
        }
        out.sync_all()?;
        Ok((size, hasher.finalize().into()))
    });
    match written {
        Ok((size, md5)) => install(data_dir, dest_dir, &tmp, size, md5),
        Err(e) => {
            remove_quietly(&tmp);
            Err(e)
        }
    }
}

/// Reads `input` to its end, feeding `hasher` and (when given) appending to `out`; returns the length.
fn copy_hashing(input: &mut File, mut out: Option<&mut File>, hasher: &mut Md5) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(size);
        }
        hasher.update(&buf[..n]);
        if let Some(out) = out.as_deref_mut() {
            out.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
}

/// Renames a complete, fsynced temp file to a fresh name in `dest_dir` and fsyncs that directory.
fn install(
    data_dir: &Path,
    dest_dir: &str,
    tmp: &Path,
    size: u64,
    md5: [u8; 16],
) -> io::Result<Installed> {
    let dir = data_dir.join(dest_dir);
    let name = uuid::Uuid::new_v4().simple().to_string();
    let path = dir.join(&name);
    fs::rename(tmp, &path)?;
    if let Err(e) = sync_dir(&dir) {
        remove_quietly(&path);
        return Err(e);
    }
    Ok(Installed {
        name,
        path,
        size,
        md5,
    })
}

/// Fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file that no committed row references any more. Failure only leaves garbage that the next
/// [`sweep`] collects, so it is logged, not returned.
pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an unreferenced file");
    }
}

/// Deletes every file in `dir` whose name `keep` rejects; returns how many were removed.
/// Run only while holding the data-directory lock, when no other writer can be mid-install.
pub(crate) fn sweep(dir: &Path, keep: impl Fn(&str) -> bool) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(&keep) && entry.file_type()?.is_file() {
            remove_quietly(&entry.path());
            removed += 1;
        }
    }
    Ok(removed)
}
