//! JSON Schemas (draft 2020-12) of the three contracts, generated from the Rust types with schemars:
//! the input events ([`crate::decode::contract`]), the alerts ([`crate::alert::Alert`]) and the
//! seller standing records ([`crate::rules::standing::Standing`]). Shipped in `deploy/schemas/`
//! (`sellerguard schema --out deploy/schemas`); `tests/schemas.rs` fails when the files drift from
//! the code and checks real instances against them.

use std::path::Path;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

use crate::alert::Alert;
use crate::decode::contract::{EventV1, LIMITS};
use crate::rules::standing::Standing;

#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct SchemaError {
    pub path: String,
    pub source: std::io::Error,
}

/// Events are read: the schema describes what deserializing accepts.
pub fn event_schema() -> Value {
    let mut v = generate::<EventV1<'static>>(SchemaSettings::draft2020_12().for_deserialize());
    if let Some(Value::String(d)) = v.get_mut("description") {
        d.push_str("\n\n");
        d.push_str(LIMITS);
    }
    v
}

/// Alerts are written: the schema describes what serializing produces.
pub fn alert_schema() -> Value {
    generate::<Alert>(SchemaSettings::draft2020_12().for_serialize())
}

pub fn standing_schema() -> Value {
    generate::<Standing>(SchemaSettings::draft2020_12().for_serialize())
}

fn generate<T: JsonSchema>(settings: SchemaSettings) -> Value {
    settings.into_generator().into_root_schema_for::<T>().to_value()
}

/// Generates one schema.
pub type Generator = fn() -> Value;

/// The shipped files: name in `deploy/schemas/` and generator.
pub const FILES: [(&str, Generator); 3] = [
    ("event.v1.schema.json", event_schema),
    ("alert.v1.schema.json", alert_schema),
    ("standing.v1.schema.json", standing_schema),
];

/// A schema as shipped: pretty JSON (keys sorted) and a final newline, so diffs are readable.
pub fn render(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    s.push('\n');
    s
}

/// Writes the three files into `dir` (created if missing); returns their paths.
pub fn write_all(dir: &Path) -> Result<Vec<std::path::PathBuf>, SchemaError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SchemaError { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut written = Vec::new();
    for (name, schema) in FILES {
        let path = dir.join(name);
        std::fs::write(&path, render(&schema())).map_err(err(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_schema_discriminates_on_type() {
        let v = event_schema();
        let text = render(&v);
        for t in crate::decode::EventType::ALL {
            assert!(text.contains(&format!("\"const\": \"{}\"", t.as_str())), "{} missing:\n{text}", t.as_str());
        }
        assert!(v["description"].as_str().unwrap().contains("input.max_message_bytes"));
    }
}
