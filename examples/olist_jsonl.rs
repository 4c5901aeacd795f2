//! Writes the Olist sample as event contract v1 JSON lines, for the CLI:
//!
//! ```sh
//! cargo run --example olist_jsonl > /tmp/olist.jsonl
//! cargo run -- replay --config config/olist.toml /tmp/olist.jsonl > /tmp/olist-alerts.jsonl
//! ```
//!
//! The data directory defaults to `../shared/data/olist`; pass another as the first argument.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/olist");
    let dir = std::env::args().nth(1).unwrap_or_else(|| default.to_string());
    let conv = sellerguard::realdata::olist::convert(std::path::Path::new(&dir))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in &conv.lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    for (t, n) in &conv.events_by_type {
        eprintln!("{t:<16} {n}");
    }
    Ok(())
}
