#!/usr/bin/env bash
# A/B builds of the native encoder on the lent GPU host's CPUs (nothing there reaches the network), and a perf
# sampling profile there. Everything the host needs travels in the git-ignored .whl/ folder (the device tool's
# `carry: [".whl"]`, 64 MiB in all with the tree).
#
# Here, once:
#   benchmarks/device_ab.sh wheels        # cp312 wheels of the peers and of our compiled deps, + bpe_openai's ranks
#   benchmarks/device_ab.sh perf          # this machine's perf, its libraries and loader (~33 MB; optional)
# Here, before each device run:
#   benchmarks/device_ab.sh base [REF]    # the encoder sources at REF (default HEAD) -> .whl/base_native, build A
# On the device (one call; the host is released 30 s after a call ends):
#   bash benchmarks/device_ab.sh run "V1=-DFOO=1" "V2=-DBAR=2" -- --mb 3 --rounds 11 [--batch 1] [--vocab o200k_base]
#     builds A from .whl/base_native and each variant from the working tree with its -D flags, then prints
#     benchmarks/ab_native.py's table of each variant against A (ids are checked against tiktoken's first).
#   bash benchmarks/device_ab.sh profile ours|toktok VOCAB CORPUS count|numpy SECONDS
#     perf record (cpu-clock: that VM has no hardware counters) and the top symbols; the annotated disassembly
#     goes to $OUT/annotate.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
W=.whl
N=tokenizer/_native
cmd=${1:-}
shift || true

setup_device() {
    PIP_NO_INDEX=1 python3 -m pip install -q --no-deps $W/*.whl > /dev/null
    mkdir -p /usr/share/mime/packages && cp $W/freedesktop.org.xml /usr/share/mime/packages/
    export PYTHONPATH=.:$W/pkgs OPENBLAS_NUM_THREADS=1
}

case "$cmd" in
wheels)
    mkdir -p $W/pkgs/bpe_openai/data
    pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d $W \
        toktok-rs==0.3.0 quicktok-v1==0.4.0 riptoken==0.2.4 zstandard orjson isal
    src=$(python3 -c "import bpe_openai, os; print(os.path.dirname(bpe_openai.__file__))")
    : > $W/pkgs/bpe_openai/__init__.py  # only the rank files: the wheel (41 MB) would not fit
    cp "$src"/data/{cl100k,o200k}_base.tiktoken.gz $W/pkgs/bpe_openai/data/
    cp /usr/share/mime/packages/freedesktop.org.xml $W/  # the zh corpus's source
    ;;
perf)
    mkdir -p $W/perf/lib
    cp "$(command -v perf)" $W/perf/
    for lib in $(ldd "$(command -v perf)" | awk '$3 ~ /^\// {print $3}'); do cp -L "$lib" $W/perf/lib/; done
    cp -L /lib64/ld-linux-x86-64.so.2 $W/perf/lib/
    ;;
base)
    rm -rf $W/base_native && mkdir -p $W/base_native
    for f in $(git ls-files "$N" | grep -E '\.(h|cc)$'); do
        git show "${1:-HEAD}:$f" > "$W/base_native/$(basename "$f")"
    done
    ;;
run)
    setup_device
    inc=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
    flags=(-O3 -std=c++17 -fPIC -shared -fvisibility=hidden -fwrapv -DNDEBUG)
    build() {  # out.so source-dir [defines...]
        local out=$1 dir=$2
        shift 2
        g++ "${flags[@]}" "$@" -I"$dir" -I"$inc" -o "$out" \
            "$dir"/encoder.cc "$dir"/encoder_batch.cc "$dir"/encoder_packed.cc
    }
    variants=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
    shift || true
    python3 setup.py build_ext --inplace -q > /tmp/build.txt 2>&1  # the tree's own build (ab_native imports it)
    build /tmp/A.so $W/base_native &
    for v in "${variants[@]}"; do
        # shellcheck disable=SC2086  # the defines are words
        build "/tmp/${v%%=*}.so" $N ${v#*=} &
    done
    wait
    for v in "${variants[@]}"; do
        echo "== B=${v%%=*} (${v#*=}) $*"
        python3 benchmarks/ab_native.py /tmp/A.so --b-so "/tmp/${v%%=*}.so" "$@" | grep -E "B/A|MB corpora"
    done
    ;;
profile)
    setup_device
    python3 setup.py build_ext --inplace -q > /tmp/build.txt 2>&1
    P=($W/perf/lib/ld-linux-x86-64.so.2 --library-path $W/perf/lib $W/perf/perf)
    "${P[@]}" record -q -o /tmp/perf.data -F 4000 python3 benchmarks/perf_driver.py "$@"
    "${P[@]}" annotate -i /tmp/perf.data --stdio 2>/dev/null > "${OUT:-/tmp}/annotate.txt"
    "${P[@]}" report -i /tmp/perf.data --stdio --no-children --sort sym 2>/dev/null > /tmp/report.txt
    grep -v '^#' /tmp/report.txt | grep . | sed -n '1,15p'  # (not head: with pipefail, its early exit fails the script)
    ;;
*)
    sed -n '2,20p' "$0"
    exit 2
    ;;
esac
