//! Zip archives: pair folders imported as one file, exported synthetic pairs, the app's
//! autosave records. One reader with limits, so a hostile archive gives an error, not a crash.

use crate::{Error, Result};
use std::io::{Cursor, Read, Write};

/// Largest entry read into memory (a zip bomb stops here with a message).
pub const MAX_ENTRY: u64 = 512 << 20;

/// A zip of `(name, bytes)` entries, deflated.
pub fn write_zip(entries: &[(String, &[u8])]) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Io(format!("cannot write the zip: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), opts).map_err(|e| err(&e))?;
        zip.write_all(bytes).map_err(|e| err(&e))?;
    }
    Ok(zip.finish().map_err(|e| err(&e))?.into_inner())
}

/// The file entries of a zip (folders flattened into their paths), in archive order.
pub fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let bad = |e: &dyn std::fmt::Display| Error::Decode(format!("not a readable zip ({e})"));
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let mut out = vec![];
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| bad(&e))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_owned();
        if f.size() > MAX_ENTRY {
            return Err(Error::Input(format!(
                "{name} in the zip is {} MB; the limit is {} MB",
                f.size() >> 20,
                MAX_ENTRY >> 20
            )));
        }
        let mut b = Vec::with_capacity(f.size() as usize);
        // The declared size can lie: read at most one byte past the limit.
        f.take(MAX_ENTRY + 1)
            .read_to_end(&mut b)
            .map_err(|e| bad(&e))?;
        if b.len() as u64 > MAX_ENTRY {
            return Err(Error::Input(format!(
                "{name} in the zip is larger than it claims"
            )));
        }
        out.push((name, b));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_bytes() {
        let z = write_zip(&[("a/b.png".into(), b"xyz"), ("c".into(), &[0u8; 1000])]).unwrap();
        let e = read_zip(&z).unwrap();
        assert_eq!(e[0], ("a/b.png".to_string(), b"xyz".to_vec()));
        assert_eq!(e[1].1.len(), 1000);
        let err = read_zip(b"PK\x03\x04 not really").unwrap_err().to_string();
        assert!(err.contains("not a readable zip"), "{err}");
        assert!(read_zip(&z[..z.len() / 2]).is_err());
    }
}
