#!/usr/bin/env sh
# Uploads a generated CSV to the api forwarded by Tilt on localhost:3000 and prints the
# answer. ROWS sets its size (default 10000); SLUICE_API_KEY is sent when set.
set -eu
rows=${ROWS:-10000}
api=${SLUICE_API_URL:-http://127.0.0.1:3000}
file=$(mktemp "${TMPDIR:-/tmp}/sluice-sample.XXXXXX")
trap 'rm -f "$file"' EXIT

awk -v rows="$rows" 'BEGIN {
  print "id,name,email,amount"
  for (i = 1; i <= rows; i++) printf "%d,Customer %d,customer%d@example.com,%.2f\n", i, i, i, i * 1.5
}' > "$file"

set -- -sS -i -F "file=@$file;type=text/csv;filename=sample.csv"
if [ -n "${SLUICE_API_KEY:-}" ]; then
  set -- "$@" -H "Authorization: Bearer $SLUICE_API_KEY"
fi
echo "Uploading $rows rows to $api/uploads"
curl "$@" "$api/uploads"
echo
