#!/usr/bin/env bash
# The reproduction behind docs/results.md: every seed recipe over paired seeds, then the
# robust baselines (the AutoAttack leaderboard), cheapest first so verdicts arrive early.
#
#   bash recipes/reproduce.sh [runs-dir] [results-dir]
#
# Run it from a git worktree pinned to one commit (`git worktree add --detach ../repro HEAD`):
# every results file records that commit. It resumes: after any interruption, start the same
# command again; finished seeds are read back, an unfinished variant continues from its last
# epoch. Each finished recipe's report (Markdown, JSON, PNG; no checkpoints) is copied to
# <results-dir>/<recipe>/, ready to commit; a recipe whose report is there is not run again (a
# finished run is not resumed but started anew, so run.py alone would repeat it). The plan and
# its measured cost: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/reproduction}
RESULTS=${2:-reproduction}
PY=${PYTHON:-python}
COMMIT=$(git rev-parse HEAD)
SEEDS="--set seeds=0,1,2"

run() {  # run <recipe> [--set ...]: trains or resumes, then copies the finished report
    local recipe=$1
    shift
    if [[ -f "$RESULTS/$recipe/results.json" ]]; then
        echo "== $recipe: finished before, its report is in $RESULTS/$recipe"
        return 0
    fi
    echo "== $(date -u +%FT%TZ) $recipe $* (commit $COMMIT)"
    if ! "$PY" recipes/run.py "$recipe" "$@" --runs-dir "$RUNS" --no-progress; then
        echo "== $(date -u +%FT%TZ) $recipe FAILED: the next recipe starts (see its log.txt)"
        return 0
    fi
    local run_dir
    run_dir=$(ls -d "$RUNS/$recipe"-*/ | sort | tail -n 1)
    mkdir -p "$RESULTS/$recipe"
    find "$run_dir" -maxdepth 1 -type f \( -name '*.md' -o -name '*.json' -o -name '*.png' \
        -o -name '*.csv' \) -exec cp {} "$RESULTS/$recipe/" \;
    echo "== $(date -u +%FT%TZ) $recipe done: $RESULTS/$recipe"
}

run seed003_random_sign                # seeds 0-4 and all 10,000 test images: in the recipe
run seed000_ft $SEEDS
run seed000_weighting $SEEDS
run seed002_coarse $SEEDS              # holds seed002_contrastive's variants and claims
run seed000_at $SEEDS
run seed004_free $SEEDS
run seed004_augment $SEEDS
run seed001_compare $SEEDS             # holds seed001_aux's variants and claims
run seed001_ablation $SEEDS
run robust_baselines $SEEDS            # the leaderboard: AutoAttack on 1,000 images
