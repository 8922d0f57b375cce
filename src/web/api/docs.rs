//! The API's documentation: the OpenAPI document as JSON, and a page that lays the same
//! document out for people in the service's own style. The page is built on the server from
//! the document (no Swagger UI, no script, nothing fetched from elsewhere), so it works
//! offline and always matches the code.

use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use crate::error::AppError;
use crate::web::errors::{PROBLEM_KINDS, PROBLEM_TYPE_BASE};
use crate::web::{page, AppState};

/// `GET /api/openapi.json`: the OpenAPI 3 document, generated from the handlers.
pub async fn openapi_json() -> Result<HttpResponse, AppError> {
    let text = super::document()
        .to_pretty_json()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(text))
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A schema in a few words: `Organisation`, `array of Cycle`, `string (date)`, `any`.
fn describe(schema: &Value) -> (String, Option<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        return (name.clone(), Some(format!("#schema-{name}")));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            let words: Vec<String> = parts
                .iter()
                .map(|p| describe(p).0)
                .filter(|w| w != "null")
                .collect();
            let link = parts.iter().find_map(|p| describe(p).1);
            let nullable = parts.iter().any(|p| describe(p).0 == "null");
            let text = words.join(" or ");
            return (
                if nullable {
                    format!("{text} or null")
                } else {
                    text
                },
                link,
            );
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let main = types.iter().find(|t| **t != "null").copied();
    let mut text = match main {
        None if types.is_empty() => "any".to_string(),
        None => "null".to_string(),
        Some("array") => {
            let (inner, link) = schema.get("items").map_or(("any".into(), None), describe);
            let nullable = types.contains(&"null");
            let text = format!("array of {inner}{}", if nullable { " or null" } else { "" });
            return (text, link);
        }
        Some("object") => match schema.get("additionalProperties") {
            Some(v @ Value::Object(_)) => {
                let (inner, link) = describe(v);
                return (format!("map of {inner}"), link);
            }
            _ => "object".to_string(),
        },
        Some(t) => t.to_string(),
    };
    if let Some(f) = schema.get("format").and_then(Value::as_str) {
        text.push_str(&format!(" ({f})"));
    }
    if types.len() > 1 && types.contains(&"null") {
        text.push_str(" or null");
    }
    (text, None)
}

fn content_rows(content: Option<&Value>) -> Vec<Value> {
    content
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .map(|(media, body)| {
                    let (text, href) = body.get("schema").map_or(("any".into(), None), describe);
                    json!({"media": media, "schema": text, "href": href})
                })
                .collect()
        })
        .unwrap_or_default()
}

fn operations(doc: &Value) -> Vec<Value> {
    let mut by_tag: Vec<(String, Vec<Value>)> = Vec::new();
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_string();
            let params: Vec<Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let (schema, href) =
                                p.get("schema").map_or(("any".into(), None), describe);
                            json!({
                                "name": p.get("name"), "in": p.get("in"),
                                "required": p.get("required").and_then(Value::as_bool).unwrap_or(false),
                                "schema": schema, "href": href,
                                "description": p.get("description").and_then(Value::as_str).unwrap_or(""),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let responses: Vec<Value> = op
                .get("responses")
                .and_then(Value::as_object)
                .map(|rs| {
                    rs.iter()
                        .map(|(status, r)| {
                            json!({
                                "status": status,
                                "description": r.get("description").and_then(Value::as_str).unwrap_or(""),
                                "content": content_rows(r.get("content")),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = op.get("requestBody").map(|b| {
                json!({
                    "description": b.get("description").and_then(Value::as_str).unwrap_or(""),
                    "content": content_rows(b.get("content")),
                })
            });
            let id = format!(
                "op-{method}-{}",
                path.trim_matches('/')
                    .replace(['/', '{', '}', '.'], "-")
                    .replace("--", "-")
            );
            let view = json!({
                "id": id, "method": method.to_uppercase(), "path": path,
                "summary": op.get("summary").and_then(Value::as_str).unwrap_or(""),
                "description": op.get("description").and_then(Value::as_str).unwrap_or(""),
                "params": params, "body": body, "responses": responses,
            });
            match by_tag.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push(view),
                None => by_tag.push((tag, vec![view])),
            }
        }
    }
    let descriptions: Vec<(String, String)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    Some((
                        t.get("name")?.as_str()?.to_string(),
                        t.get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    by_tag.sort_by_key(|(t, _)| {
        descriptions
            .iter()
            .position(|(name, _)| name == t)
            .unwrap_or(usize::MAX)
    });
    by_tag
        .into_iter()
        .map(|(tag, ops)| {
            let description = descriptions
                .iter()
                .find(|(name, _)| *name == tag)
                .map_or("", |(_, d)| d.as_str());
            json!({"tag": tag, "description": description, "operations": ops})
        })
        .collect()
}

fn schemas(doc: &Value) -> Vec<Value> {
    let empty = Map::new();
    let all = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    all.iter()
        .map(|(name, schema)| {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let properties: Vec<Value> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|ps| {
                    ps.iter()
                        .map(|(field, s)| {
                            let (text, href) = describe(s);
                            json!({
                                "name": field, "schema": text, "href": href,
                                "required": required.contains(&field.as_str()),
                                "description": s.get("description").and_then(Value::as_str).unwrap_or(""),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "name": name, "id": format!("schema-{name}"),
                "description": schema.get("description").and_then(Value::as_str).unwrap_or(""),
                "summary": describe(schema).0,
                "properties": properties,
            })
        })
        .collect()
}

/// `GET /api/docs`: the document as a page.
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let doc = serde_json::to_value(super::document()).map_err(|e| AppError::Internal(e.into()))?;
    let problems: Vec<Value> = PROBLEM_KINDS
        .iter()
        .map(|(kind, status, when)| {
            json!({"type": format!("{PROBLEM_TYPE_BASE}{kind}"), "status": status, "when": when})
        })
        .collect();
    page::render(
        &state,
        None,
        "api/docs",
        "API documentation",
        json!({
            "api_title": doc.pointer("/info/title"),
            "api_description": doc.pointer("/info/description"),
            "api_version": doc.pointer("/info/version"),
            "groups": operations(&doc),
            "schemas": schemas(&doc),
            "problems": problems,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_described_in_words() {
        assert_eq!(
            describe(&json!({"$ref": "#/components/schemas/Cycle"})),
            ("Cycle".to_string(), Some("#schema-Cycle".to_string()))
        );
        assert_eq!(
            describe(&json!({"type": ["string", "null"], "format": "date"})).0,
            "string (date) or null"
        );
        assert_eq!(
            describe(&json!({"type": "array", "items": {"$ref": "#/components/schemas/X"}})).0,
            "array of X"
        );
        assert_eq!(describe(&json!({})).0, "any");
    }
}
