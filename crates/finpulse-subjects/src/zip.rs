//! A zip archive of stored (uncompressed) files: what a subject export is handed over in. One
//! person's data is small, and a stored archive opens with every tool on every system.

/// The most files one archive holds (the format's 16-bit count, without ZIP64).
pub const ZIP_FILES_MAX: usize = u16::MAX as usize;
/// The most bytes an archive may hold (32-bit offsets, without ZIP64).
pub const ZIP_BYTES_MAX: u64 = u32::MAX as u64;

/// Why an archive could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipError {
    /// More files than the format counts.
    #[error("{0} files: an archive holds at most {ZIP_FILES_MAX}")]
    TooManyFiles(usize),
    /// More bytes than 32-bit offsets reach.
    #[error("the archive would pass {ZIP_BYTES_MAX} bytes")]
    TooLarge,
    /// A name that is empty, absolute, climbs out (`..`) or is longer than the format allows.
    #[error("file name {0:?} is not a relative path inside the archive")]
    BadName(String),
}

/// One file of an archive.
pub struct ZipFile<'a> {
    /// Its path inside the archive (`/`-separated, relative).
    pub name: &'a str,
    /// Its content.
    pub bytes: &'a [u8],
}

/// The archive of `files`, in order, each stored as it is, names marked UTF-8. Times are the
/// DOS epoch: the archive's bytes depend only on its files, and its manifest carries the time.
pub fn write_stored(files: &[ZipFile<'_>]) -> Result<Vec<u8>, ZipError> {
    if files.len() > ZIP_FILES_MAX {
        return Err(ZipError::TooManyFiles(files.len()));
    }
    const VERSION: u16 = 20;
    const UTF8_NAMES: u16 = 1 << 11;
    const DOS_DATE_1980_01_01: u16 = (1 << 5) | 1;
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    for f in files {
        let name = f.name;
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) || name.len() > u16::MAX as usize
        {
            return Err(ZipError::BadName(name.to_string()));
        }
        let offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge)?;
        let size = u32::try_from(f.bytes.len()).map_err(|_| ZipError::TooLarge)?;
        let crc = crc32fast::hash(f.bytes);
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [VERSION, UTF8_NAMES, 0, 0, DOS_DATE_1980_01_01] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(f.bytes);
        // Its central directory record.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [VERSION, VERSION, UTF8_NAMES, 0, 0, DOS_DATE_1980_01_01] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name.len() as u16, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge)?;
    let central_size = u32::try_from(central.len()).map_err(|_| ZipError::TooLarge)?;
    if u64::from(central_offset) + u64::from(central_size) + 22 > ZIP_BYTES_MAX {
        return Err(ZipError::TooLarge);
    }
    out.extend_from_slice(&central);
    // End of central directory.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, files.len() as u16, files.len() as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_archive_are_refused() {
        for name in ["", "/etc/passwd", "../x", "a/../../x", "a//b"] {
            let err = write_stored(&[ZipFile { name, bytes: b"x" }]).unwrap_err();
            assert_eq!(err, ZipError::BadName(name.into()));
        }
    }

    #[test]
    fn an_archive_lists_each_file_with_its_checksum_and_ends_with_the_directory() {
        let zip = write_stored(&[ZipFile { name: "a.json", bytes: b"{}" }, ZipFile { name: "数据/b.csv", bytes: b"x,y\n" }]).unwrap();
        assert_eq!(&zip[..4], &0x0403_4b50u32.to_le_bytes());
        let end = &zip[zip.len() - 22..];
        assert_eq!(&end[..4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        assert_eq!(u32::from_le_bytes(zip[14..18].try_into().unwrap()), crc32fast::hash(b"{}"));
    }
}
