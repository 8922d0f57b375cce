//! The document's outline: the top-level fields, version, settings, scale, bands, pillars and
//! domains, and the links between pillars and domains. Rules that span the whole file live
//! here.

use std::collections::BTreeSet;

use super::reader::{at, idx, is_version, list_words, Fields, Reader};
use super::{DOMAIN_FIELDS, MAX_TITLE_CHARS, PILLAR_FIELDS, TOP_FIELDS};
use crate::domain::document::Node;
use crate::domain::questionnaire::{Band, Domain, Pillar, QuestionIndex, Questionnaire, Scale};
use crate::domain::{did_you_mean, plain_number};

impl Reader {
    pub(super) fn questionnaire(&mut self, root: &Node) -> Option<Questionnaire> {
        let Node::Map(entries) = root else {
            self.err(
                "",
                format!(
                    "the top level must be a mapping of fields (key:, version:, title:, \
                     settings:, domains: ...), not {}",
                    root.describe()
                ),
            );
            return None;
        };
        let f = Fields {
            path: String::new(),
            entries,
        };
        self.check_fields(&f, TOP_FIELDS, &|_| None);
        self.prescan_question_keys(&f);

        let format = match f.present("format") {
            None => 1,
            Some(node) => match node.as_i64() {
                Some(1) => 1,
                _ => {
                    self.err(
                        "format",
                        "only format 1 exists; write format: 1 or leave the field out",
                    );
                    1
                }
            },
        };
        let key = self.required_slug(&f, "key", "questionnaire key");
        let version = self.version(&f);
        let title = self.required_text(&f, "title", MAX_TITLE_CHARS, "");
        let description = self.optional_text(&f, "description");
        let settings = self.settings(&f);
        let scale = self.scale(&f);
        let decimals = self.decimals(&f);
        let bands = self.bands(&f);
        let pillars = self.pillars(&f);
        let domains = self.domains(&f);
        self.check_pillar_links(&pillars, &domains, &f);

        Some(Questionnaire {
            index: QuestionIndex::new(&domains),
            format,
            key,
            version,
            title,
            description,
            settings,
            scale,
            decimals,
            bands,
            pillars,
            domains,
        })
    }

    fn prescan_question_keys(&mut self, f: &Fields) {
        let Some(Node::List(domains)) = f.get("domains") else {
            return;
        };
        let questions = domains
            .iter()
            .filter_map(|d| match d.get("questions") {
                Some(Node::List(qs)) => Some(qs),
                _ => None,
            })
            .flatten();
        for (position, question) in questions.enumerate() {
            if let Some(Node::Text(key)) = question.get("key") {
                self.all_keys.entry(key.clone()).or_insert(position);
            }
        }
    }

    fn version(&mut self, f: &Fields) -> String {
        let path = f.at("version");
        match f.get("version") {
            None => {
                self.missing(f, "version", "for example version: \"2025.1\"");
                String::new()
            }
            Some(Node::Int(_) | Node::Float(_)) => {
                let shown = match f.get("version") {
                    Some(Node::Int(i)) => i.to_string(),
                    Some(Node::Float(x)) => plain_number(*x),
                    _ => String::new(),
                };
                self.err(
                    &path,
                    format!(
                        "must be text; put it in quotes (version: \"{shown}\") so it is not \
                         read as a number"
                    ),
                );
                String::new()
            }
            Some(node) => {
                let text = self.text_value(node, &path, usize::MAX).unwrap_or_default();
                if !text.is_empty() && !is_version(&text) {
                    self.err(
                        &path,
                        format!(
                            "\"{text}\" is not a valid version: use up to 32 letters, digits, \
                             dots and hyphens, starting with a letter or digit (for example \
                             \"2025.1\")"
                        ),
                    );
                }
                text
            }
        }
    }

    fn settings(&mut self, f: &Fields) -> Vec<String> {
        if !f.has("settings") {
            self.missing(
                f,
                "settings",
                "list the care settings this questionnaire serves, for example settings: [acute]",
            );
            return Vec::new();
        }
        let Some(items) = self.list(f, "settings", " such as [acute]") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err(
                &f.at("settings"),
                "list at least one care setting, for example [acute]",
            );
        }
        let path = f.at("settings");
        items
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.slug_value(node, &idx(&path, i), "setting"))
            .collect()
    }

    fn scale(&mut self, f: &Fields) -> Scale {
        let Some(node) = f.present("scale") else {
            return Scale::default();
        };
        let Some(s) = self.mapping(node, &f.at("scale"), "{min: number, max: number}") else {
            return Scale::default();
        };
        self.check_fields(&s, &["min", "max"], &|_| None);
        let min = self.required_number(&s, "min", "");
        let max = self.required_number(&s, "max", "");
        match (min, max) {
            (Some(min), Some(max)) if min < max => Scale { min, max },
            (Some(min), Some(max)) => {
                self.err(
                    &s.path,
                    format!(
                        "min ({}) must be less than max ({})",
                        plain_number(min),
                        plain_number(max)
                    ),
                );
                Scale::default()
            }
            _ => Scale::default(),
        }
    }

    fn decimals(&mut self, f: &Fields) -> u8 {
        let Some(node) = f.present("decimals") else {
            return 1;
        };
        match node.as_i64().and_then(|d| u8::try_from(d).ok()) {
            Some(d) if d <= 4 => d,
            _ => {
                self.err(&f.at("decimals"), "must be a whole number from 0 to 4");
                1
            }
        }
    }

    fn bands(&mut self, f: &Fields) -> Vec<Band> {
        let Some(items) = self.list(f, "bands", " of {min, label}") else {
            return Vec::new();
        };
        let path = f.at("bands");
        let mut bands: Vec<Band> = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(b) = self.mapping(node, &idx(&path, i), "a band {min, label}") else {
                continue;
            };
            self.check_fields(&b, &["min", "label"], &|_| None);
            let min = self.required_number(&b, "min", "the lowest score that gets this label");
            let label = self.required_text(&b, "label", MAX_TITLE_CHARS, "");
            let Some(min) = min else { continue };
            if let Some(previous) = bands.last() {
                if min <= previous.min {
                    self.err(
                        &b.at("min"),
                        format!(
                            "must be greater than the previous band's min ({}); list bands \
                             from lowest to highest",
                            plain_number(previous.min)
                        ),
                    );
                }
            }
            bands.push(Band { min, label });
        }
        bands
    }

    fn pillars(&mut self, f: &Fields) -> Vec<Pillar> {
        let Some(items) = self.list(f, "pillars", " of pillars") else {
            return Vec::new();
        };
        let path = f.at("pillars");
        let mut seen = BTreeSet::new();
        let mut pillars = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(p) = self.mapping(node, &idx(&path, i), "a pillar") else {
                continue;
            };
            self.check_fields(&p, PILLAR_FIELDS, &|_| None);
            let key = self.required_slug(&p, "key", "pillar key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&p.at("key"), format!("duplicate pillar key \"{key}\""));
            }
            pillars.push(Pillar {
                title: self.required_text(&p, "title", MAX_TITLE_CHARS, ""),
                description: self.optional_text(&p, "description"),
                weight: self.weight(&p),
                key,
            });
        }
        pillars
    }

    fn domains(&mut self, f: &Fields) -> Vec<Domain> {
        if !f.has("domains") {
            self.missing(f, "domains", "a questionnaire needs at least one domain");
            return Vec::new();
        }
        let Some(items) = self.list(f, "domains", " of domains") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err("domains", "list at least one domain");
        }
        let path = f.at("domains");
        let mut seen = BTreeSet::new();
        let mut domains = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(d) = self.mapping(node, &idx(&path, i), "a domain") else {
                continue;
            };
            self.check_fields(&d, DOMAIN_FIELDS, &|_| None);
            let key = self.required_slug(&d, "key", "domain key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&d.at("key"), format!("duplicate domain key \"{key}\""));
            }
            let title = self.required_text(&d, "title", MAX_TITLE_CHARS, "");
            let description = self.optional_text(&d, "description");
            let pillar = match d.present("pillar") {
                Some(node) => self.slug_value(node, &d.at("pillar"), "pillar key"),
                None => None,
            };
            let weight = self.weight(&d);
            let questions = self.questions(&d);
            domains.push(Domain {
                key,
                title,
                description,
                pillar,
                weight,
                questions,
            });
        }
        domains
    }

    fn check_pillar_links(&mut self, pillars: &[Pillar], domains: &[Domain], f: &Fields) {
        let keys: Vec<&str> = pillars.iter().map(|p| p.key.as_str()).collect();
        for (i, domain) in domains.iter().enumerate() {
            let path = idx(&f.at("domains"), i);
            match &domain.pillar {
                None if !pillars.is_empty() => self.err(
                    &path,
                    format!(
                        "missing required field \"pillar\"; when pillars are listed every \
                         domain must name one of them ({})",
                        list_words(&keys)
                    ),
                ),
                Some(p) if pillars.is_empty() => self.err(
                    &at(&path, "pillar"),
                    format!(
                        "names pillar \"{p}\" but the questionnaire lists no pillars; add a \
                         pillars list or remove this field"
                    ),
                ),
                Some(p) if !keys.contains(&p.as_str()) => {
                    let hint = match did_you_mean(p, &keys) {
                        Some(s) => format!(" (did you mean \"{s}\"?)"),
                        None => format!("; use one of {}", list_words(&keys)),
                    };
                    self.err(
                        &at(&path, "pillar"),
                        format!("there is no pillar \"{p}\"{hint}"),
                    );
                }
                _ => {}
            }
        }
        for (i, pillar) in pillars.iter().enumerate() {
            if pillar.key.is_empty() {
                continue;
            }
            if !domains
                .iter()
                .any(|d| d.pillar.as_deref() == Some(pillar.key.as_str()))
            {
                self.err(
                    &idx(&f.at("pillars"), i),
                    format!(
                        "pillar \"{}\" has no domains; name it in a domain's pillar field or \
                         remove it",
                        pillar.key
                    ),
                );
            }
        }
    }
}
