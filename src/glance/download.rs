//! Image data: streamed to the conversion directory, then detected and
//! converted to raw with `qemu-img`, as Cinder's `fetch_to_raw` does
//! (`image/image_utils.py`: download, `qemu-img info`, `qemu-img convert -O
//! raw`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::error::GlanceError;

/// Progress of a download: bytes received so far and the total when Glance
/// announced one (`Content-Length`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadProgress {
    /// Bytes written to the conversion directory so far.
    pub received: u64,
    /// The announced size, if any.
    pub total: Option<u64>,
}

/// Called after every chunk written (from the task running the download).
pub type ProgressFn = Arc<dyn Fn(&str, DownloadProgress) + Send + Sync>;

/// Formats whose headers are unmistakable: used to refuse, with a typed
/// error, a non-raw image when no `qemu-img` is configured, instead of
/// handing it on as raw.
pub(crate) fn sniff_format(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.len() >= off + magic.len() && &head[off..off + magic.len()] == magic;
    if at(0, b"QFI\xfb") {
        Some("qcow2")
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        Some("vmdk")
    } else if at(0, b"vhdxfile") {
        Some("vhdx")
    } else if at(0, b"conectix") {
        Some("vpc")
    } else if at(0x40, &[0x7f, 0x10, 0xda, 0xbe]) {
        Some("vdi")
    } else if at(0, b"LUKS\xba\xbe") {
        Some("luks")
    } else if at(0, b"WithoutFreeSpace") || at(0, b"WithouFreSpacExt") {
        Some("ploop")
    } else if at(0x8001, b"CD001") {
        Some("iso")
    } else {
        None
    }
}

/// Writes chunks to `path`, enforcing `limit` and reporting progress.
pub(crate) struct Sink {
    pub(crate) path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    pub(crate) received: u64,
    pub(crate) head: Vec<u8>,
}

impl Sink {
    pub(crate) async fn create(path: PathBuf) -> Result<Self, GlanceError> {
        let file =
            tokio::fs::File::create(&path).await.map_err(|source| GlanceError::Io { path: path.clone(), source })?;
        Ok(Self { path, file: tokio::io::BufWriter::with_capacity(1 << 20, file), received: 0, head: Vec::new() })
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), GlanceError> {
        // Keep the first 36 KiB: enough for every header sniff_format reads.
        if self.head.len() < 0x9000 {
            let take = (0x9000 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.file.write_all(chunk).await.map_err(|source| GlanceError::Io { path: self.path.clone(), source })?;
        self.received += chunk.len() as u64;
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<(PathBuf, u64, Vec<u8>), GlanceError> {
        let io = |source| GlanceError::Io { path: self.path.clone(), source };
        self.file.flush().await.map_err(io)?;
        self.file.get_ref().sync_all().await.map_err(io)?;
        Ok((self.path, self.received, self.head))
    }
}

/// Removes a file, ignoring that it may already be gone (cleanup after an
/// error must not hide that error).
pub(crate) async fn discard(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

/// `qemu-img info --output=json`: the detected format and virtual size.
pub(crate) async fn qemu_img_info(qemu_img: &Path, file: &Path) -> Result<(String, u64), GlanceError> {
    let out = run(qemu_img, &["info".as_ref(), "--output=json".as_ref(), file.as_os_str()]).await?;
    let doc: Value = serde_json::from_slice(&out)
        .map_err(|e| GlanceError::Conversion(format!("qemu-img info {}: not JSON: {e}", file.display())))?;
    let format = doc.get("format").and_then(Value::as_str);
    let size = doc.get("virtual-size").and_then(Value::as_u64);
    match (format, size) {
        (Some(f), Some(s)) => Ok((f.to_owned(), s)),
        _ => Err(GlanceError::Conversion(format!("qemu-img info {}: no format or virtual-size", file.display()))),
    }
}

/// `qemu-img convert -f FORMAT -O raw SRC DST`.
pub(crate) async fn qemu_img_convert(qemu_img: &Path, format: &str, src: &Path, dst: &Path) -> Result<(), GlanceError> {
    run(
        qemu_img,
        &[
            "convert".as_ref(),
            "-f".as_ref(),
            format.as_ref(),
            "-O".as_ref(),
            "raw".as_ref(),
            src.as_os_str(),
            dst.as_os_str(),
        ],
    )
    .await
    .map(drop)
}

async fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, GlanceError> {
    let shown = || {
        let mut s = program.display().to_string();
        for a in args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    };
    let out = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| GlanceError::Conversion(format!("{}: cannot run: {e}", shown())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(GlanceError::Conversion(format!("{}: {}: {}", shown(), out.status, err.trim())));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_recognised() {
        assert_eq!(sniff_format(b"QFI\xfb\0\0\0\x03"), Some("qcow2"));
        assert_eq!(sniff_format(b"KDMV...."), Some("vmdk"));
        let mut vdi = vec![0u8; 0x50];
        vdi[0x40..0x44].copy_from_slice(&[0x7f, 0x10, 0xda, 0xbe]);
        assert_eq!(sniff_format(&vdi), Some("vdi"));
        let mut iso = vec![0u8; 0x8010];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(sniff_format(&iso), Some("iso"));
        assert_eq!(sniff_format(&[0u8; 4096]), None);
        assert_eq!(sniff_format(b""), None);
    }
}
