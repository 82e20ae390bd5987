#!/usr/bin/env bash
# A walk through the data layer on the built-in samples, in a fresh workspace. Prints where the
# report (stats JSON, exports) is at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-walkthrough-out}
rm -rf "$out"; mkdir -p "$out"
export WORKBENCH_HOME="$out/workspace"
wb=.venv/bin/workbench
$wb sample digits digits
$wb sample shapes shapes-detection --count 120
$wb datasets
$wb stats digits
$wb stats shapes --json > "$out/shapes-stats.json"
$wb snapshot shapes -m "first import"
$wb dir mirror shapes review 1-10
$wb dir copy shapes relabel 1-5
$wb dir list shapes
$wb export shapes "$out/shapes-coco" --format coco
$wb export shapes "$out/shapes-yolo" --format yolo --split train
$wb import shapes-again "$out/shapes-coco/annotations.json" --format coco
$wb snapshot shapes-again -m "round trip"
$wb datasets
echo "report: $out/shapes-stats.json (exports in $out/shapes-coco, $out/shapes-yolo)"
