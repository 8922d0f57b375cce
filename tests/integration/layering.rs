//! The crate's layers point one way (ARCHITECTURE.md): the pure core, then the foundation
//! (errors, secrets, storage, configuration, templates), then the services, then the edges
//! (`web`, `cli`). The compiler sees one crate, so this test reads the sources and fails when a
//! module names a layer above its own, or when the core reaches for I/O.

use std::path::{Path, PathBuf};

/// Each top-level module and its rank: a module may name its own top-level module and any
/// of lower rank. `cli` may also start the web server (both are edges; `web` never names `cli`).
const RANKS: &[(&str, u8)] = &[
    ("domain", 0),
    ("error", 1),
    ("crypto", 1),
    ("metrics", 1),
    ("db", 2),
    ("config", 3),
    ("telemetry", 3),
    ("templates", 4),
    ("services", 5),
    ("web", 6),
    ("cli", 7),
];

/// What the pure core must never touch: the file system, the network, the database, the web
/// framework, the async runtime, mail.
const IO_IN_CORE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::io",
    "std::process",
    "diesel",
    "actix",
    "tokio",
    "lettre",
    "reqwest",
    "crate::db",
    "rand::",
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source names through `crate::`, including grouped imports such as
/// `use crate::{db, services::x}`. Comments are skipped (doc links may mention any layer).
fn named_modules(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Grouped: each item's first segment, up to the closing brace on this line.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let first: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !first.is_empty() {
                        found.push((n + 1, first));
                    }
                }
            } else {
                let first: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((n + 1, first));
            }
        }
    }
    found
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn no_module_names_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = top_module(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| {
            panic!(
                "{}: top-level module `{module}` has no layer",
                file.display()
            )
        });
        let source = std::fs::read_to_string(file).unwrap();
        for (line, target) in named_modules(&source) {
            checked += 1;
            let Some(theirs) = rank(&target) else {
                violations.push(format!(
                    "{}:{line}: crate::{target} is no known module",
                    file.display()
                ));
                continue;
            };
            if target != module && theirs >= own {
                violations.push(format!(
                    "{}:{line}: `{module}` (layer {own}) names crate::{target} (layer {theirs})",
                    file.display()
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "the scan found only {checked} references: is it reading src/?"
    );
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_pure_core_does_no_io() {
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    rust_files(&domain, &mut files);
    assert!(files.len() > 5);
    let mut violations = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        // Unit tests inside the core may read fixtures; the code above them may not.
        let code = source.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for needle in IO_IN_CORE {
                if line.contains(needle) {
                    violations.push(format!("{}:{}: {needle}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "I/O in the pure core:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_sees_grouped_and_plain_imports() {
    let names =
        named_modules("use crate::{db, services::x};\nlet a = crate::web::f(); // crate::cli");
    let names: Vec<&str> = names.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(names, ["db", "services", "web"]);
}

/// Diesel knows a migration by the date-and-number prefix of its folder: two folders with the
/// same prefix are one version, and the second is never run (two branches once both added
/// `2026-12-03-000001_...`, and SQLite databases silently lacked a column). Every prefix is
/// unique, and both backends have the same migrations.
#[test]
fn migration_versions_are_unique_and_the_same_on_both_backends() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |backend: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(backend))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (postgres, sqlite) = (names("postgres"), names("sqlite"));
    assert_eq!(postgres, sqlite, "the backends' migrations differ");
    let mut versions: Vec<&str> = postgres
        .iter()
        .map(|n| n.split('_').next().unwrap_or(n))
        .collect();
    let all = versions.len();
    versions.dedup();
    assert_eq!(versions.len(), all, "a version is used twice: {postgres:?}");
}

/// The stylesheet's blocks all close: a merge once dropped one closing brace, and every rule
/// after it (the editor's, the second factor's) silently stopped applying.
#[test]
fn the_stylesheet_s_braces_balance() {
    let css =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/css/dma.css"))
            .unwrap();
    let mut depth: i64 = 0;
    for (n, line) in css.lines().enumerate() {
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        assert!(depth >= 0, "a brace closes nothing at line {}", n + 1);
        // Rules sit at most two deep (an @media block holding a rule).
        assert!(
            depth <= 2,
            "a block opened before line {} is not closed",
            n + 1
        );
    }
    assert_eq!(depth, 0, "a block is never closed");
}
