#!/usr/bin/env bash
# Digests of what `sellerguard replay` writes (alerts without `detected_at`, and standing records)
# on fixed inputs: the Olist sample, two generated streams, and one of them shuffled within the
# allowed lateness. A refactor that must not change behaviour keeps every line of this output.
#   scripts/golden.sh [workdir]  (needs ../shared beside the project; builds in release)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
cargo build --release --locked --quiet --bin sellerguard --example olist_jsonl
bin=target/release/sellerguard
target/release/examples/olist_jsonl > "$work/olist.jsonl"
"$bin" gen --out "$work/gen-default.jsonl" 2>/dev/null
"$bin" gen --sellers 1000 --fraud-share 0.2 --days 30 --out "$work/gen-1000x30.jsonl" 2>/dev/null
# Shuffled within 240 s (under the 300 s lateness): each line keyed by its time plus a seeded jitter.
python3 - "$work/gen-1000x30.jsonl" "$work/gen-shuffled.jsonl" <<'PY'
import json, random, sys
from datetime import datetime
rng = random.Random(7)
def ms(ts):
    return ts if isinstance(ts, int) else int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
lines = open(sys.argv[1]).read().splitlines()
keyed = sorted(((ms(json.loads(l)["ts"]) + rng.randint(0, 240_000), i, l) for i, l in enumerate(lines)))
open(sys.argv[2], "w").write("".join(l + "\n" for _, _, l in keyed))
PY
digest() { # input config
    local name=$1 input=$2 config=$3
    "$bin" replay ${config:+--config "$config"} --standing "$work/$name.standing" "$input" \
        > "$work/$name.alerts" 2> "$work/$name.summary"
    local a s
    a=$(sed -E 's/"detected_at":"[^"]*",?//' "$work/$name.alerts" | sha256sum | cut -c1-16)
    s=$(sha256sum < "$work/$name.standing" | cut -c1-16)
    printf '%-14s alerts %6d %s  standing %7d %s\n' "$name" "$(wc -l < "$work/$name.alerts")" "$a" \
        "$(wc -l < "$work/$name.standing")" "$s"
}
digest olist "$work/olist.jsonl" config/olist.toml
digest gen-default "$work/gen-default.jsonl" ""
digest gen-1000x30 "$work/gen-1000x30.jsonl" ""
digest gen-shuffled "$work/gen-shuffled.jsonl" ""
