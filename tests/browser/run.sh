#!/usr/bin/env bash
# The dashboard's browser test: starts the release `tracery serve` on SQLite in a scratch
# folder, feeds it the synthetic plant (tracery-bench; a second one with a planted cause of
# failure) and one misread scan, then drives
# Debian's headless Chromium through the dashboard with playwright-core.
# Screenshots go to $TRACERY_ARTIFACTS (default target/ci-artifacts/dashboard).
# Needs: target/release/{tracery,tracery-bench}, node, npm, chromium.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
artifacts=${TRACERY_ARTIFACTS:-$repo/target/ci-artifacts/dashboard}
work=$(mktemp -d)
# Two alert rules: the misread scan below makes the one on quarantined events at its read
# point fire; the other can never fire and the page says so.
cat >"$work/tracery.toml" <<'TOML'
[[alerts.rules]]
name = "receiving-quarantined"
kind = "quarantine_rate"
query = { EQ_readPoint = "urn:epc:id:sgln:4012345.00001.1" }
above = 0.0
window_secs = 86400

[[alerts.rules]]
name = "never"
kind = "blocked_source"
TOML
# Port 0: the suite picks its own ports and names them in its "tracery serving" log line.
(cd "$work" && exec "$repo/target/release/tracery" serve --config "$work/tracery.toml" \
  --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-format json >"$work/serve.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
read -r grpc http < <(python3 - "$work/serve.log" <<'PY'
import json, sys, time
for _ in range(300):
    for line in open(sys.argv[1]):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "tracery serving":
            print(entry["grpc"].rsplit(":", 1)[1], entry["http"].rsplit(":", 1)[1])
            sys.exit(0)
    time.sleep(0.1)
sys.exit("the suite did not start: " + open(sys.argv[1]).read())
PY
)
"$repo/target/release/tracery-bench" capture --addr "http://127.0.0.1:$grpc" --events 3000 --streams 1 --seed 1
# A second plant whose supplier lot S2L10 fails 20 times as often: the analysis view must
# rank it.
"$repo/target/release/tracery-bench" analyze --addr "http://127.0.0.1:$grpc" --events 3000 --seed 2 \
  --failed 100 --lot-factor 20 --rounds 1 --label browser
python3 - "$http" <<'PY'
import json, sys, urllib.request
scan = {"type": "ObjectEvent", "eventTime": "2026-01-01T09:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE", "bizStep": "receiving",
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.1"},
        "epcList": ["https://id.gs1.org/01/09506000134353/21/X1"]}
document = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-01-01T09:00:00Z",
            "epcisBody": {"eventList": [scan]}}
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/capture", json.dumps(document).encode(),
                                 {"Content-Type": "application/ld+json"})
print("misread scan captured:", urllib.request.urlopen(request).status)
PY
cd "$repo/tests/browser"
npm ci --no-audit --no-fund --loglevel=error
TRACERY_URL="http://127.0.0.1:$http" ARTIFACTS="$artifacts" CHROMIUM="$(command -v chromium)" \
  node --test --test-reporter=spec dashboard.test.mjs
echo "Dashboard screenshots (CI artefacts):"
ls -l "$artifacts"
