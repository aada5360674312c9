#!/usr/bin/env bash
# Builds every CUDA kernel ahead of time, without a GPU, to catch what NVRTC would only report on a user's
# machine: each kernels/cuda/*.cu goes through nvcc to PTX for every architecture (warnings are errors),
# then ptxas -v assembles the PTX for that architecture and reports registers, shared memory and spills.
#
# The PTX built here is for checking only: nvcc 13 writes PTX ISA 9.0, which CUDA 12 drivers cannot load,
# so the CUDA backend compiles the same sources with NVRTC on the user's machine instead.
#
# Usage: native/build-cuda.sh [--src DIR] [--out DIR] [--arch "75 80 90"] [--maxrregcount N]
#   --src DIR         folder of .cu entry points (default kernels/cuda); kernels/ and kernels/common are
#                     always on the include path, and so is the --src folder itself
#   --out DIR         where PTX, cubins, logs and the report go (default target/cuda)
#   --arch LIST       SM architectures (default "75 80 90")
#   --maxrregcount N  cap registers per thread (only to prove that a spill is caught)
# Environment: CUDA_HOME (default: the folder above nvcc on PATH, else /usr/local/cuda-13.0, /usr/local/cuda).
#
# Exit status: 0 when everything compiled without a warning or a spill; 1 on any compile error, warning,
# spill, double-precision instruction or NVRTC-incompatible include; 2 on bad usage; 3 when nvcc or ptxas
# is absent (the caller may skip). The report ($out/cuda-report.txt, and the same rows as
# $out/cuda-report.tsv) is written in every case except 2 and 3.
set -uo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
src="$here/kernels/cuda"
common="$here/kernels/common"
out="$here/target/cuda"
archs="75 80 90"
maxrreg=""

while [ $# -gt 0 ]; do
    case "$1" in
        --src) src="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --arch) archs="$2"; shift 2 ;;
        --maxrregcount) maxrreg="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build-cuda: unknown argument '$1' (expected --src, --out, --arch, --maxrregcount)" >&2; exit 2 ;;
    esac
done

find_cuda() {
    if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME"; return 0; fi
    local n
    if n=$(command -v nvcc 2>/dev/null); then (cd "$(dirname "$n")/.." && pwd); return 0; fi
    for d in /usr/local/cuda-13.0 /usr/local/cuda; do
        if [ -x "$d/bin/nvcc" ]; then echo "$d"; return 0; fi
    done
    return 1
}

if ! cuda=$(find_cuda); then
    echo "build-cuda: nvcc not found (set CUDA_HOME, put nvcc on PATH, or install the CUDA toolkit in /usr/local/cuda)" >&2
    exit 3
fi
nvcc="$cuda/bin/nvcc"
ptxas="$cuda/bin/ptxas"
if [ ! -x "$ptxas" ]; then
    echo "build-cuda: ptxas not found next to nvcc ($ptxas)" >&2
    exit 3
fi
if [ ! -d "$src" ]; then
    echo "build-cuda: source folder $src does not exist" >&2
    exit 2
fi

shopt -s nullglob
sources=("$src"/*.cu)
if [ ${#sources[@]} -eq 0 ]; then
    echo "build-cuda: no .cu files in $src" >&2
    exit 2
fi

mkdir -p "$out"
report="$out/cuda-report.txt"
rows="$out/cuda-report.tsv"
: > "$rows"
failures=()

# NVRTC has no system headers (and the backend serves only kernels/ to it): a <...> include or a header
# outside kernels/ would compile here and fail on the user's machine.
for f in "${sources[@]}" "$src"/*.h "$common"/*.h; do
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f" >"$out/include-check.txt"; then
        while IFS= read -r line; do
            failures+=("$(basename "$f"):${line%%:*}: system include, unavailable under NVRTC: ${line#*:}")
        done <"$out/include-check.txt"
    fi
done
rm -f "$out/include-check.txt"

# Language flags shared with the NVRTC compile (CudaKernelSources.NVRTC_OPTIONS): keep them in step.
nvcc_flags=(-std=c++17 -Werror all-warnings --Wreorder -I "$here/kernels" -I "$common" -I "$src")

for arch in $archs; do
    mkdir -p "$out/sm_$arch"
    for f in "${sources[@]}"; do
        name="$(basename "$f" .cu)"
        ptx="$out/sm_$arch/$name.ptx"
        log="$out/sm_$arch/$name.log"
        if ! "$nvcc" -ptx -arch="compute_$arch" "${nvcc_flags[@]}" -o "$ptx" "$f" >"$log" 2>&1; then
            failures+=("$name.cu sm_$arch: nvcc failed: $(tr '\n' ' ' <"$log")")
            continue
        fi
        # Doubles in a float32 kernel are a silent 2-64x slowdown on GPUs (a literal missing its f suffix).
        ptxas_flags=(-arch="sm_$arch" -v --warn-on-spills --warn-on-double-precision-use --warning-as-error)
        if [ -n "$maxrreg" ]; then ptxas_flags+=(-maxrregcount "$maxrreg"); fi
        status=0
        "$ptxas" "${ptxas_flags[@]}" -o "$out/sm_$arch/$name.cubin" "$ptx" >>"$log" 2>&1 || status=$?
        # ptxas -v prints, per entry: "Compiling entry function 'k' for 'sm_XX'", then
        # "N bytes stack frame, N bytes spill stores, N bytes spill loads", then
        # "Used N registers, used N barriers[, N bytes smem][, N bytes cmem[0]]".
        awk -v file="$name.cu" -v arch="sm_$arch" '
            function flush() {
                if (k != "") print file "\t" k "\t" arch "\t" regs "\t" smem "\t" stack "\t" sst "\t" sld "\t" bars
                k = ""
            }
            /Compiling entry function/ {
                flush()
                k = $0; sub(/.*Compiling entry function \x27/, "", k); sub(/\x27.*/, "", k)
                regs = 0; smem = 0; stack = 0; sst = 0; sld = 0; bars = 0
            }
            k != "" && /bytes stack frame/ {
                for (i = 1; i <= NF; i++) {
                    if ($(i+1) == "bytes" && $(i+2) == "stack") stack = $i
                    if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^stores/) sst = $i
                    if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^loads/) sld = $i
                }
            }
            k != "" && /Used [0-9]+ registers/ {
                for (i = 1; i <= NF; i++) {
                    if ($(i+1) ~ /^registers/) regs = $i
                    if ($(i+1) ~ /^barriers/) bars = $i
                    if ($(i+1) == "bytes" && $(i+2) ~ /^smem/) smem = $i
                }
            }
            END { flush() }
        ' "$log" >>"$rows"
        if [ "$status" -ne 0 ]; then
            failures+=("$name.cu sm_$arch: ptxas failed (exit $status): $(grep -E 'error|warning|fatal' "$log" | tr '\n' ' ')")
        elif grep -qiE 'warning' "$log"; then
            failures+=("$name.cu sm_$arch: warning: $(grep -iE 'warning' "$log" | tr '\n' ' ')")
        fi
    done
done

# Spills are errors even where ptxas did not flag them (older ptxas without --warn-on-spills).
while IFS=$'\t' read -r file k arch regs smem stack sst sld bars; do
    if [ "$sst" != "0" ] || [ "$sld" != "0" ]; then
        failures+=("$file $arch: kernel $k spills registers ($sst bytes stores, $sld bytes loads)")
    fi
done <"$rows"

{
    echo "# CUDA kernel build report: $("$nvcc" --version | grep -m1 release)"
    echo "# nvcc -ptx ${nvcc_flags[*]}; ptxas -v --warn-on-spills --warn-on-double-precision-use --warning-as-error${maxrreg:+ -maxrregcount $maxrreg}"
    echo "# registers per thread; static shared memory per block (dynamic shared memory is set at launch)"
    printf '%-22s %-32s %-6s %5s %10s %10s %12s %11s %8s\n' \
        file kernel arch regs smem_bytes stack_bytes spill_stores spill_loads barriers
    sort -t$'\t' -k2,2 -k3,3 "$rows" | while IFS=$'\t' read -r file k arch regs smem stack sst sld bars; do
        printf '%-22s %-32s %-6s %5s %10s %10s %12s %11s %8s\n' "$file" "$k" "$arch" "$regs" "$smem" "$stack" "$sst" "$sld" "$bars"
    done
    if [ ${#failures[@]} -eq 0 ]; then
        echo "# result: OK ($(wc -l <"$rows") kernel builds, archs: $archs)"
    else
        echo "# result: FAILED (${#failures[@]} problems)"
        for m in "${failures[@]}"; do echo "FAIL: $m"; done
    fi
} >"$report"

cat "$report"
[ ${#failures[@]} -eq 0 ]
