//! Per-(chunk, rendition) checkpoints: the media file is renamed into place first,
//! then a small JSON record is written atomically. The record is the commit point,
//! so a crash at any moment leaves either a verifiable pair or work to redo.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chunk::Chunk;

pub const CHECKPOINT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub version: u32,
    pub chunk: Chunk,
    pub rendition: String,
    /// Hash of everything that determines the output (input, range, settings):
    /// a record from different settings is not reused.
    pub fingerprint: String,
    /// File name, next to the record.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub duration_sec: f64,
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub encoder: String,
}

pub struct Paths {
    pub media: PathBuf,
    pub record: PathBuf,
}

pub fn paths(rendition_dir: &Path, chunk: &Chunk) -> Paths {
    Paths {
        media: rendition_dir.join(format!("{}.mp4", chunk.name)),
        record: rendition_dir.join(format!("{}.json", chunk.name)),
    }
}

/// Unique sibling temp path, so a rename is atomic (same directory/filesystem).
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn fingerprint(parts: &serde_json::Value) -> String {
    hex(&Sha256::digest(parts.to_string().as_bytes()))[..16].to_string()
}

fn sync_dir(dir: &Path) {
    // Makes the rename itself durable; best effort (not all filesystems allow it).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes bytes to `path` via temp + fsync + rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Moves a finished temp media file into place and then writes its record.
pub fn commit(media_tmp: &Path, paths: &Paths, record: &Checkpoint) -> std::io::Result<()> {
    File::open(media_tmp)?.sync_all()?;
    fs::rename(media_tmp, &paths.media)?;
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    write_atomic(&paths.record, &json)
}

/// The record at `paths.record` if it matches `fingerprint` and the media file
/// still has the recorded size and hash; None means "encode again".
pub fn load_valid(paths: &Paths, fingerprint: &str) -> Option<Checkpoint> {
    let rec: Checkpoint = serde_json::from_slice(&fs::read(&paths.record).ok()?).ok()?;
    if rec.version != CHECKPOINT_VERSION || rec.fingerprint != fingerprint {
        return None;
    }
    let meta = fs::metadata(&paths.media).ok()?;
    if meta.len() != rec.bytes || sha256_file(&paths.media).ok()? != rec.sha256 {
        return None;
    }
    Some(rec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::chunk::chunk_name;

    fn record(dir: &Path, data: &[u8]) -> (Paths, Checkpoint) {
        let chunk = Chunk { index: 3, name: chunk_name(3), start_sec: 6.0, end_sec: 8.0, starts_on_keyframe: true };
        let p = paths(dir, &chunk);
        let tmp = temp_path(&p.media);
        fs::write(&tmp, data).unwrap();
        let rec = Checkpoint {
            version: CHECKPOINT_VERSION,
            chunk,
            rendition: "360p".into(),
            fingerprint: "abc".into(),
            file: "chunk_00003.mp4".into(),
            bytes: data.len() as u64,
            sha256: sha256_file(&tmp).unwrap(),
            duration_sec: 2.0,
            frames: 50,
            width: 640,
            height: 360,
            codecs: "avc1.64001e".into(),
            encoder: "libx264".into(),
        };
        commit(&tmp, &p, &rec).unwrap();
        assert!(!tmp.exists());
        (p, rec)
    }

    #[test]
    fn valid_checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (p, rec) = record(dir.path(), b"media bytes");
        assert_eq!(p.media.file_name().unwrap(), "chunk_00003.mp4");
        assert_eq!(load_valid(&p, "abc"), Some(rec));
        // different settings -> not reused
        assert_eq!(load_valid(&p, "other"), None);
    }

    #[test]
    fn tampered_or_missing_media_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = record(dir.path(), b"media bytes");
        fs::write(&p.media, b"media bytez").unwrap(); // same size, different hash
        assert_eq!(load_valid(&p, "abc"), None);
        fs::remove_file(&p.media).unwrap();
        assert_eq!(load_valid(&p, "abc"), None);
        fs::write(&p.record, b"{not json").unwrap();
        assert_eq!(load_valid(&p, "abc"), None);
    }

    #[test]
    fn sha256_of_known_input() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        fs::write(&f, b"abc").unwrap();
        assert_eq!(sha256_file(&f).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
