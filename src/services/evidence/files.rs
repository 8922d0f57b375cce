//! What an evidence file is and what it may be called. A file's type is read from its first
//! bytes (the `infer` crate's magic numbers), not taken from its name or the browser's
//! `Content-Type`, and it must be one of the kinds an assessor can open: PDF, office documents
//! and images. The name a person gave it is kept only in a safe form (no folders, no control
//! or quoting characters, an extension that agrees with the content), because it is echoed in
//! `Content-Disposition` when the file is downloaded.
//!
//! [`Stager`] receives an upload a piece at a time (bounded memory) into a temporary file,
//! hashing, counting and keeping the first bytes for the type check as it goes, so the
//! database sees only a complete, checked, digested file.

use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};

use crate::domain::FieldError;
use crate::error::AppError;

/// How many leading bytes the type check reads: enough for every signature `infer` knows,
/// including the entries of an office document's ZIP container.
const HEAD_BYTES: usize = 64 * 1024;
/// The longest stored file name, in characters.
const MAX_NAME_CHARS: usize = 120;

/// A kind of file accepted as evidence: its media type, a description for people, and the
/// extensions its names may have (the first is used when a name has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub media_type: &'static str,
    pub label: &'static str,
    pub extensions: &'static [&'static str],
}

/// Every accepted kind.
pub const ACCEPTED: &[FileType] = &[
    FileType {
        media_type: "application/pdf",
        label: "PDF",
        extensions: &["pdf"],
    },
    FileType {
        media_type: "image/png",
        label: "PNG image",
        extensions: &["png"],
    },
    FileType {
        media_type: "image/jpeg",
        label: "JPEG image",
        extensions: &["jpg", "jpeg"],
    },
    FileType {
        media_type: "image/gif",
        label: "GIF image",
        extensions: &["gif"],
    },
    FileType {
        media_type: "image/webp",
        label: "WebP image",
        extensions: &["webp"],
    },
    FileType {
        media_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        label: "Word document",
        extensions: &["docx"],
    },
    FileType {
        media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        label: "Excel workbook",
        extensions: &["xlsx"],
    },
    FileType {
        media_type: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        label: "PowerPoint presentation",
        extensions: &["pptx"],
    },
    FileType {
        media_type: "application/vnd.oasis.opendocument.text",
        label: "OpenDocument text",
        extensions: &["odt"],
    },
    FileType {
        media_type: "application/vnd.oasis.opendocument.spreadsheet",
        label: "OpenDocument spreadsheet",
        extensions: &["ods"],
    },
    FileType {
        media_type: "application/msword",
        label: "Word 97-2003 document",
        extensions: &["doc"],
    },
    FileType {
        media_type: "application/vnd.ms-excel",
        label: "Excel 97-2003 workbook",
        extensions: &["xls"],
    },
];

/// The kinds in a few words, for error messages.
pub const ACCEPTED_IN_WORDS: &str = "PDF, Word, Excel, PowerPoint, OpenDocument text or spreadsheet, or a PNG, JPEG, GIF or WebP image";

/// The kinds, for a form's hint: "PDF, Word document, ...".
pub fn accepted_labels() -> String {
    ACCEPTED
        .iter()
        .map(|t| t.label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `accept` attribute of a file input: the extensions, so the picker offers only these.
pub fn accept_attribute() -> String {
    ACCEPTED
        .iter()
        .flat_map(|t| t.extensions.iter().map(|e| format!(".{e}")))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn by_media_type(media_type: &str) -> Option<&'static FileType> {
    ACCEPTED.iter().find(|t| t.media_type == media_type)
}

fn by_extension(ext: &str) -> Option<&'static FileType> {
    ACCEPTED.iter().find(|t| t.extensions.contains(&ext))
}

/// The lower-cased extension of a name, if it has one.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

fn refused(message: String) -> AppError {
    AppError::UnsupportedMediaType(message)
}

/// The type of a file from its first bytes, with the name's extension deciding only between
/// kinds the content cannot tell apart (an old Word or Excel file is an OLE compound document
/// whose directory may lie beyond the bytes read). A name whose extension names another
/// accepted kind than the content is refused, so a file is never stored as what it is not.
pub fn detect(head: &[u8], name: &str) -> Result<&'static FileType, AppError> {
    let ext = extension(name);
    let named = ext.as_deref().and_then(by_extension);
    let sniffed = infer::get(head).map(|t| t.mime_type());
    let found = match sniffed {
        // An OLE compound document: Word or Excel 97-2003 by the name (infer reads the
        // directory only when it lies within the bytes read).
        Some("application/x-ole-storage" | "application/msword" | "application/vnd.ms-excel") => {
            match named.filter(|t| t.extensions.iter().any(|e| *e == "doc" || *e == "xls")) {
                Some(t) => t,
                None => {
                    return Err(refused(format!(
                        "This file is an old-style Office document (OLE), but its name does not end in .doc or .xls. Accepted: {ACCEPTED_IN_WORDS}."
                    )))
                }
            }
        }
        Some(mime) => match by_media_type(mime) {
            Some(t) => t,
            None => {
                return Err(refused(format!(
                    "This file's content is {mime}, which is not accepted as evidence. Accepted: {ACCEPTED_IN_WORDS}."
                )))
            }
        },
        None => {
            return Err(refused(format!(
                "The type of this file could not be recognised from its content{}. Accepted: {ACCEPTED_IN_WORDS}.",
                named.map(|t| format!(" (its name says {}, but it does not look like one)", t.label)).unwrap_or_default()
            )))
        }
    };
    if let Some(claimed) = named {
        if claimed.media_type != found.media_type {
            return Err(refused(format!(
                "This file's content is a {}, but its name ends in .{}. Rename it to end in .{} or choose the file you meant.",
                found.label,
                ext.unwrap_or_default(),
                found.extensions[0]
            )));
        }
    }
    Ok(found)
}

/// A name safe to store and to send back in `Content-Disposition`: the last part of any path
/// (`../../x` becomes `x`), without control characters, quotes, slashes or other characters
/// that mean something to a shell or a header, at most [`MAX_NAME_CHARS`] characters, never
/// hidden (a leading dot), and ending in an extension of the checked type.
pub fn safe_name(claimed: &str, kind: &FileType) -> String {
    let last = claimed.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_control() || "\"'`<>:|?*;%$&{}[]".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    name = name.trim().trim_start_matches('.').trim().to_string();
    let ext_ok = extension(&name).is_some_and(|e| kind.extensions.contains(&e.as_str()));
    let stem: String = if ext_ok {
        let (stem, _) = name.rsplit_once('.').unwrap_or((&name, ""));
        stem.to_string()
    } else {
        name.clone()
    };
    let mut stem: String = stem.chars().take(MAX_NAME_CHARS - 6).collect();
    stem = stem.trim_end_matches(['.', ' ']).to_string();
    if stem.is_empty() {
        stem = "evidence".into();
    }
    let ext = if ext_ok {
        extension(&name).unwrap_or_else(|| kind.extensions[0].to_string())
    } else {
        kind.extensions[0].to_string()
    };
    format!("{stem}.{ext}")
}

/// A file received and checked, waiting in a temporary file to be stored.
pub struct Staged {
    file: tempfile::NamedTempFile,
    pub digest: String,
    pub size: u64,
    pub kind: &'static FileType,
    pub file_name: String,
}

impl Staged {
    /// The file's bytes, from the start.
    pub fn reader(&self) -> Result<std::fs::File, AppError> {
        self.file
            .reopen()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("staged evidence unreadable: {e}")))
    }
}

/// Receives an upload piece by piece: writes it to a temporary file, hashes and counts it,
/// keeps its first bytes, and refuses (413) as soon as it passes the limit.
pub struct Stager {
    out: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    limit: usize,
}

fn io_fault(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("staging evidence: {e}"))
}

impl Stager {
    pub fn new(limit: usize) -> Result<Self, AppError> {
        Ok(Stager {
            out: BufWriter::with_capacity(
                256 * 1024,
                tempfile::NamedTempFile::new().map_err(io_fault)?,
            ),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            limit,
        })
    }

    /// The next piece of the file.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), AppError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit as u64 {
            return Err(too_large(self.limit));
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.hasher.update(bytes);
        self.out.write_all(bytes).map_err(io_fault)
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Check what was received: not empty, an accepted type; name it safely.
    pub fn finish(self, claimed_name: &str) -> Result<Staged, AppError> {
        if self.size == 0 {
            return Err(AppError::Validation(vec![FieldError::new(
                "file",
                "The selected file is empty",
            )]));
        }
        let kind = detect(&self.head, claimed_name)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_fault(e.into_error()))?;
        Ok(Staged {
            file,
            digest: hex::encode(self.hasher.finalize()),
            size: self.size,
            kind,
            file_name: safe_name(claimed_name, kind),
        })
    }
}

/// 413 with the evidence limit in words.
pub fn too_large(limit: usize) -> AppError {
    AppError::PayloadTooLarge(limit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
    ];

    #[test]
    fn the_type_comes_from_the_content() {
        assert_eq!(
            detect(PDF, "policy.pdf").unwrap().media_type,
            "application/pdf"
        );
        assert_eq!(detect(PDF, "policy").unwrap().media_type, "application/pdf");
        assert_eq!(detect(PNG, "diagram.png").unwrap().media_type, "image/png");
        // A name that claims another accepted kind than the content is refused.
        let e = detect(PNG, "policy.pdf").unwrap_err();
        assert!(matches!(e, AppError::UnsupportedMediaType(_)), "{e:?}");
        assert!(
            e.public_message().contains("PNG image"),
            "{}",
            e.public_message()
        );
        // Content that is not accepted, whatever the name says.
        let e = detect(b"#!/bin/sh\necho hi\n", "report.pdf").unwrap_err();
        assert!(matches!(e, AppError::UnsupportedMediaType(_)));
        let e = detect(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "report.pdf").unwrap_err();
        assert!(matches!(e, AppError::UnsupportedMediaType(_)));
        // An OLE compound document is Word or Excel by its name.
        let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0, 0, 0];
        assert_eq!(
            detect(&ole, "old.xls").unwrap().media_type,
            "application/vnd.ms-excel"
        );
        assert_eq!(
            detect(&ole, "old.doc").unwrap().media_type,
            "application/msword"
        );
        assert!(detect(&ole, "old.msi").is_err());
    }

    #[test]
    fn names_are_made_safe() {
        let pdf = by_media_type("application/pdf").unwrap();
        assert_eq!(safe_name("../../x", pdf), "x.pdf");
        assert_eq!(safe_name("..\\..\\windows\\evil.pdf", pdf), "evil.pdf");
        assert_eq!(safe_name("a\"b\r\nc.pdf", pdf), "a_b__c.pdf");
        assert_eq!(safe_name(".hidden.pdf", pdf), "hidden.pdf");
        assert_eq!(safe_name("", pdf), "evidence.pdf");
        assert_eq!(safe_name("...", pdf), "evidence.pdf");
        assert_eq!(safe_name("Board minutes.PDF", pdf), "Board minutes.pdf");
        assert_eq!(safe_name("photo.png", pdf), "photo.png.pdf");
        let long = "x".repeat(500) + ".pdf";
        assert!(safe_name(&long, pdf).chars().count() <= MAX_NAME_CHARS);
        assert_eq!(safe_name("Prüfbericht ü.pdf", pdf), "Prüfbericht ü.pdf");
    }

    #[test]
    fn the_stager_counts_hashes_and_refuses_past_its_limit() {
        let mut s = Stager::new(PDF.len()).unwrap();
        s.write(&PDF[..10]).unwrap();
        s.write(&PDF[10..]).unwrap();
        let staged = s.finish("a.pdf").unwrap();
        assert_eq!(staged.size, PDF.len() as u64);
        assert_eq!(staged.digest, hex::encode(Sha256::digest(PDF)));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut staged.reader().unwrap(), &mut back).unwrap();
        assert_eq!(back, PDF);

        let mut s = Stager::new(PDF.len() - 1).unwrap();
        assert!(matches!(s.write(PDF), Err(AppError::PayloadTooLarge(_))));
        let empty = Stager::new(10).unwrap().finish("a.pdf");
        assert!(matches!(empty, Err(AppError::Validation(_))));
    }
}
