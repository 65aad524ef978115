# Shared by the bench scripts (source it from the repository's root): builds the binary and
# writes job files for the in-process sandbox.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/phone-enrich-target}"
cargo build --release -q
BIN="$CARGO_TARGET_DIR/release/phone-enrich"

# sandbox_job FILE CSV DIR BATCH_SIZE RATE LATENCY: a job reading the `phone` column of CSV into
# DIR/enriched.parquet, its state in DIR/state, through the in-process sandbox; client and
# sandbox both at RATE (e.g. "100/1s"), the sandbox answering after LATENCY.
sandbox_job() {
  cat > "$1" <<TOML
[input]
path = "$2"
phone_columns = ["phone"]
[output]
path = "$3/enriched.parquet"
[state]
dir = "$3/state"
[provider]
kind = "sandbox"
batch_size = $4
request_limit = "$5"
identical_limit = "3/1s"
concurrency = 14
[provider.sandbox]
request_limit = "$5"
identical_limit = "3/1s"
latency = "$6"
TOML
}
