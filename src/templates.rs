//! HTML (and email) templates. They are compiled into the binary so `dma serve` works from any
//! folder; an operator may point `DMA_TEMPLATES_DIR` at a folder whose files replace the
//! built-in ones of the same name. Strict mode turns a misspelt variable into an error caught
//! by the tests instead of a silently blank page.

use std::path::Path;
use std::sync::Arc;

use handlebars::Handlebars;
use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::error::AppError;

static BUILT_IN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

#[derive(Clone)]
pub struct Templates {
    registry: Arc<Handlebars<'static>>,
}

impl Templates {
    /// Register every built-in template, then the overrides, failing on the first template
    /// that does not parse (naming it).
    pub fn load(overrides: Option<&Path>) -> Result<Self, anyhow::Error> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.set_dev_mode(false);
        // Escaped output also shows hidden characters (bidi overrides, zero-width) as U+FFFD:
        // input refuses them in names, and this keeps anything stored before from reordering
        // or hiding text on a page or in an HTML email. Line breaks and tabs are kept.
        hb.register_escape_fn(|s| {
            let shown: String = s
                .chars()
                .map(|c| {
                    if crate::domain::text::is_hidden_or_control(c)
                        && !matches!(c, '\n' | '\r' | '\t')
                    {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect();
            handlebars::html_escape(&shown)
        });
        register_dir(&mut hb, &BUILT_IN)?;
        if let Some(dir) = overrides {
            register_overrides(&mut hb, dir, dir)?;
        }
        Ok(Templates {
            registry: Arc::new(hb),
        })
    }

    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, AppError> {
        self.registry
            .render(name, data)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("template {name}: {e}")))
    }

    pub fn has(&self, name: &str) -> bool {
        self.registry.has_template(name)
    }
}

fn template_name(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    s.strip_suffix(".hbs").map(|n| n.replace('\\', "/"))
}

fn register_dir(hb: &mut Handlebars<'static>, dir: &Dir<'static>) -> Result<(), anyhow::Error> {
    for file in dir.files() {
        if let (Some(name), Some(text)) = (template_name(file.path()), file.contents_utf8()) {
            hb.register_template_string(&name, text)
                .map_err(|e| anyhow::anyhow!("built-in template {name}: {e}"))?;
        }
    }
    for sub in dir.dirs() {
        register_dir(hb, sub)?;
    }
    Ok(())
}

fn register_overrides(
    hb: &mut Handlebars<'static>,
    root: &Path,
    dir: &Path,
) -> Result<(), anyhow::Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("templates folder {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            register_overrides(hb, root, &path)?;
        } else if let Some(name) = path.strip_prefix(root).ok().and_then(template_name) {
            let text = std::fs::read_to_string(&path)?;
            hb.register_template_string(&name, text)
                .map_err(|e| anyhow::anyhow!("template {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
