#!/usr/bin/env bash
# The README pipeline run by two checkouts, one after the other, with one virtual environment and
# nothing cached: does a redesign change what a user sees? Compare the two reports afterwards
# (search ids, folders and seconds aside) and the proxy sets' bytes.
#
#   benchmarks/pipeline_side_by_side.sh /path/to/old-checkout /path/to/new-checkout /tmp/pipe
#   diff <(sed -E 's/[0-9a-f]{8}/ID/g' /tmp/pipe/old/stdout.txt) <(sed -E 's/[0-9a-f]{8}/ID/g' /tmp/pipe/new/stdout.txt)
#   cmp /tmp/pipe/old/cache/*/images.pt /tmp/pipe/new/cache/*/images.pt
set -u
old=$1 new=$2 out=$3
python=${PYTHON:-$(dirname "$0")/../.venv/bin/python}
for side in old new; do
  code=$old; [ "$side" = new ] && code=$new
  dir=$out/$side
  rm -rf "$dir" && mkdir -p "$dir"
  start=$(date +%s)
  ( cd "$dir" && PYTHONPATH="$code" DMNAS_CACHE="$dir/cache" DMNAS_WORKDIR="$dir/work" \
      "$python" -m dmnas search --space convnet_bench48 --concurrency 2 --ground-truth 0 \
      > "$dir/stdout.txt" 2> "$dir/stderr.txt"; echo "exit $?" > "$dir/exit.txt" )
  echo "$side $(( $(date +%s) - start )) s" | tee -a "$out/times.txt"
done
