#!/usr/bin/env bash
# Rebuilds injection.bin, the learned injection detector's weights, from the
# public sources pinned in sources.json: downloads them (once, verified by
# sha256) into PGPROMPT_GUARD_DATA (default ~/.cache/pgprompt/guard-data),
# writes the training set, trains (examples/train_injection.rs) and prints
# the held-back figures; fixed_scores.jsonl gets the scores the trainer gives
# a few held-back texts, which the extension's tests check the shipped model
# gives too. The same sources give the same bytes.
# With --leave-one-out (make model-unseen), writes no model: for each
# source, trains without it and prints how the detector does on it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
CACHE=${PGPROMPT_GUARD_DATA:-$HOME/.cache/pgprompt/guard-data}
VENV="$ROOT/target/guard-model-venv"
ensure_venv "$VENV" "$ROOT/extension/guard_model/requirements.txt"
mkdir -p "$CACHE"
# Apertium translates some English texts (translate.py; versions pinned in
# sources.json and checked there). TRANSLATE=0 leaves them out, to measure
# what they bring (make model-unseen TRANSLATE=0).
EXTRA=()
if [ "${TRANSLATE:-1}" = 1 ]; then
    # shellcheck disable=SC2046 # one word per package
    apt_ensure $("$VENV/bin/python" -c 'import json, sys; print(*json.load(open(sys.argv[1]))["translation"]["packages"])' extension/guard_model/sources.json)
    EXTRA=(--translate)
fi
log "training set from the pinned sources"
"$VENV/bin/python" extension/guard_model/prepare.py --cache "$CACHE" --out "$ROOT/target/guard-model-train.jsonl" "${EXTRA[@]}"
# No link-time optimisation: the trainer needs none, and it builds in a
# fraction of the time.
trainer() {
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo run --locked --release -q -p pgprompt --example train_injection -- "$@"
}
if [ "${1:-}" = --leave-one-out ]; then
    log "each source left out in turn (no model written)"
    # SEED=n (make model-unseen SEED=1): another order and planting; 0, the
    # default, is the shipped model's.
    trainer --leave-one-out "$ROOT/target/guard-model-train.jsonl" "${SEED:-0}"
    exit 0
fi
log "training"
trainer "$ROOT/target/guard-model-train.jsonl" extension/guard_model/injection.bin extension/guard_model/fixed_scores.jsonl
sha256sum extension/guard_model/injection.bin extension/guard_model/fixed_scores.jsonl
