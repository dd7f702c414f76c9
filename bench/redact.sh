#!/usr/bin/env bash
# Benchmarks the redaction engine: the in-memory figures of bench/redact_bench, then
# `secrets-run redact` against `cat` over the same file, printed as one compact table, and at
# 1,000 secrets against bench/hs_filter: the same pattern set (every form, redact_forms) as one
# Hyperscan literal database in streaming mode, as the same pipeline stage (built only when
# libhs is installed; without it the Hyperscan figures are skipped).
# Builds nothing: build BUILDDIR first (meson setup build-bench --buildtype=release && ninja -C build-bench).
#
# Usage: bench/redact.sh [BUILDDIR]     (default build-bench; REDACT_BENCH_MIB sets the text size, default 256)
# Prints figures and whether each target is met; never fails on a threshold, only on an error.
set -euo pipefail

cd "$(dirname "$0")/.."

build=${1:-build-bench}
mib=${REDACT_BENCH_MIB:-256}
repeats=3
bench=$build/bench/redact_bench
secrets_run=$build/agent/secrets-run
hs_filter=$build/bench/hs_filter

for exe in "$bench" "$secrets_run"; do
        if [ ! -x "$exe" ]; then
                echo "redact.sh: $exe is missing; build it first: meson setup $build --buildtype=release && ninja -C $build" >&2
                exit 2
        fi
done

# Secret files and inputs live in a private directory (mktemp -d makes it 0700), in memory
# when /dev/shm is there, and are deleted whatever happens.
tmp=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/redact-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# kv LINE KEY: the value of KEY in a "key=value ..." line.
kv() {
        local word
        for word in $1; do
                if [ "${word%%=*}" = "$2" ]; then
                        echo "${word#*=}"
                        return 0
                fi
        done
        echo "redact.sh: no $2 in: $1" >&2
        return 1
}

# timed INPUT CMD...: the best of $repeats runs of CMD < INPUT > /dev/null, as
# "elapsed_ns=... maxrss_kib=... status=..." (the largest RSS of the runs).
timed() {
        local input=$1 best="" best_ns=0 rss=0 line ns r st
        shift
        for _ in $(seq "$repeats"); do
                line=$("$bench" --exec "$input" -- "$@")
                ns=$(kv "$line" elapsed_ns)
                r=$(kv "$line" maxrss_kib)
                st=$(kv "$line" status)
                # redact exits 1 when it masked something (on_leak: fail), 0 when it found nothing
                if [ "$st" -gt 1 ]; then
                        echo "redact.sh: '$*' exited with status $st" >&2
                        return 1
                fi
                if [ -z "$best" ] || [ "$ns" -lt "$best_ns" ]; then
                        best=$line best_ns=$ns
                fi
                [ "$r" -gt "$rss" ] && rss=$r
        done
        echo "elapsed_ns=$best_ns maxrss_kib=$rss"
}

mbps() {   # BYTES NS
        awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / ns * 1000 }'
}

echo "redact bench: $(nproc) cores, ${mib} MiB CI-log-like text, secrets 20-48 random bytes of mixed charsets, min_len 8"
start=$(date +%s)

# (1) the in-memory figures
inmem=$("$bench" --size "$mib" --format kv)

# (2) secrets-run redact against cat, per secret count, over the same file
bytes=$((mib * 1024 * 1024))
declare -A pipe_redact pipe_cat pipe_rss
hs=""   # the hs_filter figures at 1000 secrets, when it was built
for n in 10 100 1000; do
        dir=$tmp/secrets-$n
        mkdir -m 0700 "$dir"
        planted=$("$bench" --write-input "$tmp/input" --secret-dir "$dir" --secrets "$n" --size "$mib")
        args=() files=()
        for f in "$dir"/*; do
                args+=(--secret-file "$f")
                files+=("$f")
        done
        c=$(timed "$tmp/input" cat)
        r=$(timed "$tmp/input" "$secrets_run" redact "${args[@]}")
        pipe_cat[$n]=$(mbps "$bytes" "$(kv "$c" elapsed_ns)")
        pipe_redact[$n]=$(mbps "$bytes" "$(kv "$r" elapsed_ns)")
        pipe_rss[$n]=$(kv "$r" maxrss_kib)
        if [ "$n" = 1000 ]; then
                # peak RSS against stream length: a quarter of the same input
                head -c $((bytes / 4)) "$tmp/input" >"$tmp/input-quarter"
                q=$(timed "$tmp/input-quarter" "$secrets_run" redact "${args[@]}")
                rss_quarter=$(kv "$q" maxrss_kib)
                rm -f "$tmp/input-quarter"
                # a coloured log (pytest --color=yes and gcc -fdiagnostics-color, from the
                # corpus, repeated): an escape sequence every 16 bytes or so, which the
                # terminal view parses and searches through
                : >"$tmp/colour"
                while [ "$(stat -c %s "$tmp/colour")" -lt $((bytes / 4)) ]; do
                        cat tests/corpus/pytest-color.log tests/corpus/gcc-color.log tests/corpus/gxx-color.log >>"$tmp/colour"
                done
                colour_bytes=$(stat -c %s "$tmp/colour")
                colour_esc=$(tr -cd '\033' <"$tmp/colour" | wc -c)
                cc=$(timed "$tmp/colour" cat)
                cr=$(timed "$tmp/colour" "$secrets_run" redact "${args[@]}")
                colour="redact=$(mbps "$colour_bytes" "$(kv "$cr" elapsed_ns)") cat=$(mbps "$colour_bytes" "$(kv "$cc" elapsed_ns)")"
                colour="$colour every=$((colour_bytes / colour_esc)) mib=$((colour_bytes / 1024 / 1024))"
                rm -f "$tmp/colour"
                if [ -x "$hs_filter" ]; then
                        # the whole process, as for redact: reading the files, forms, compile, scan
                        h=$(timed "$tmp/input" "$hs_filter" "${files[@]}")
                        # its compile alone (best of $repeats runs over no input) and, over the
                        # input, what it masked; these lines are figures only, never values
                        hs_compile=""
                        for _ in $(seq "$repeats"); do
                                line=$("$hs_filter" "${files[@]}" </dev/null 2>&1 >/dev/null)
                                if [ -z "$hs_compile" ] || awk -v a="$(kv "$line" total_ms)" -v b="$(kv "$hs_compile" total_ms)" 'BEGIN { exit !(a < b) }'; then
                                        hs_compile=$line
                                fi
                        done
                        hs_found=$("$hs_filter" "${files[@]}" <"$tmp/input" 2>&1 >/dev/null)
                        hs="mbps=$(mbps "$bytes" "$(kv "$h" elapsed_ns)") rss_kib=$(kv "$h" maxrss_kib)"
                        hs="$hs patterns=$(kv "$hs_compile" patterns) forms_ms=$(kv "$hs_compile" forms_ms)"
                        hs="$hs compile_ms=$(kv "$hs_compile" compile_ms) total_ms=$(kv "$hs_compile" total_ms)"
                        hs="$hs masked=$(kv "$hs_found" masked) planted=$(kv "$planted" planted)"
                fi
        fi
        rm -rf "$dir" "$tmp/input"
done

# (3) the table
printf '\n%-8s %9s %11s %10s %12s %10s %7s %10s\n' secrets patterns "compile ms" "mem GB/s" "redact MB/s" "cat MB/s" ratio "redact RSS"
for n in 10 100 1000; do
        comp=$(grep "^compile secrets=$n " <<<"$inmem")
        mem=$(grep "^inmem secrets=$n " <<<"$inmem")
        ratio=$(awk -v r="${pipe_redact[$n]}" -v c="${pipe_cat[$n]}" 'BEGIN { printf "%.0f%%", 100 * r / c }')
        printf '%-8s %9s %11s %10s %12s %10s %7s %8.1f M\n' "$n" "$(kv "$mem" patterns)" "$(kv "$comp" total_ms)" \
                "$(kv "$mem" gbps)" "${pipe_redact[$n]}" "${pipe_cat[$n]}" "$ratio" \
                "$(awk -v k="${pipe_rss[$n]}" 'BEGIN { print k / 1024 }')"
done
big=$(grep "^compile " <<<"$inmem" | tail -n 1)
rss=$(grep "^inmem_rss " <<<"$inmem")
mem1000=$(grep "^inmem secrets=1000 " <<<"$inmem")
echo
short=$(grep "^inmem_short " <<<"$inmem")
echo "leaks found/planted in memory, 1000 secrets: $(kv "$mem1000" leaks)/$(kv "$mem1000" planted)"
echo "in-memory, 1000 secrets one of which is $(kv "$short" first_len) bytes long: $(kv "$short" gbps) GB/s (short patterns are scanned in their own index)"
comp1000=$(grep "^compile secrets=1000 " <<<"$inmem")
echo "compile, 1000 secrets, $(kv "$comp1000" patterns) patterns: $(kv "$comp1000" forms_ms) ms forms + $(kv "$comp1000" compile_ms) ms tables = $(kv "$comp1000" total_ms) ms"
echo "compile, $(kv "$big" patterns) patterns ($(kv "$big" secrets) secrets): $(kv "$big" forms_ms) ms forms + $(kv "$big" compile_ms) ms tables = $(kv "$big" total_ms) ms"
echo "coloured log, 1000 secrets, $(kv "$colour" mib) MiB with an escape sequence every $(kv "$colour" every) bytes:" \
        "redact $(kv "$colour" redact) MB/s, cat $(kv "$colour" cat) MB/s (the terminal view at work)"
echo "peak RSS, 1000 secrets: in-memory process $(kv "$rss" short_rss_mib) MiB over $(kv "$rss" short_mib) MiB, $(kv "$rss" long_rss_mib) MiB over $(kv "$rss" long_mib) MiB;" \
        "secrets-run redact $(awk -v k="$rss_quarter" 'BEGIN { printf "%.1f", k / 1024 }') MiB over $((mib / 4)) MiB, $(awk -v k="${pipe_rss[1000]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB over $mib MiB"

if [ -n "$hs" ]; then
        hs_ratio=$(awk -v r="${pipe_redact[1000]}" -v h="$(kv "$hs" mbps)" 'BEGIN { printf "%.2f", r / h }')
        echo
        hs_version=$(pkg-config --modversion libhs 2>/dev/null || echo "?")
        echo "Hyperscan $hs_version (bench/hs_filter: the same forms as $(kv "$hs" patterns) literals, one streaming database), 1000 secrets, through the pipe:"
        echo "  hyperscan $(kv "$hs" mbps) MB/s, redact ${pipe_redact[1000]} MB/s, cat ${pipe_cat[1000]} MB/s; redact/hyperscan = $hs_ratio"
        echo "  compile: redact $(kv "$comp1000" total_ms) ms ($(kv "$comp1000" patterns) patterns), hyperscan $(kv "$hs" total_ms) ms ($(kv "$hs" forms_ms) ms forms + $(kv "$hs" compile_ms) ms hs_compile_lit_multi and scratch)"
        # what each would do on a stream long enough for its compile not to count (elapsed less
        # the compile figure): an estimate beside the measured whole-process figures above
        scan_only() {   # MBPS TOTAL_MS
                awk -v m="$1" -v c="$2" -v b="$bytes" 'BEGIN { ns = b / m * 1000 - c * 1e6; printf "%.0f", (ns > 0 ? b / ns * 1000 : 0) }'
        }
        echo "  less compile (estimate): hyperscan $(scan_only "$(kv "$hs" mbps)" "$(kv "$hs" total_ms)") MB/s, redact $(scan_only "${pipe_redact[1000]}" "$(kv "$comp1000" total_ms)") MB/s"
        echo "  hyperscan RSS $(awk -v k="$(kv "$hs" rss_kib)" 'BEGIN { printf "%.1f", k / 1024 }') MiB; masked runs $(kv "$hs" masked) for $(kv "$hs" planted) planted"
else
        echo
        echo "Hyperscan figures skipped: $hs_filter was not built (install libhyperscan-dev and reconfigure: meson setup --reconfigure $build)"
fi

# (4) targets (reported, never enforced)
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo missed; fi; }
echo
echo "targets:"
target() { printf '  %-55s %s\n' "$1:" "$2"; }
target "in-memory >= 1.5 GB/s at 1000 secrets" "$(verdict "$(kv "$mem1000" gbps) >= 1.5") ($(kv "$mem1000" gbps) GB/s)"
target "redact >= 50% of cat at 1000 secrets" "$(verdict "${pipe_redact[1000]} >= 0.5 * ${pipe_cat[1000]}") (${pipe_redact[1000]} vs ${pipe_cat[1000]} MB/s)"
target "compile < 50 ms at 1000 secrets (all forms)" "$(verdict "$(kv "$comp1000" total_ms) < 50") ($(kv "$comp1000" total_ms) ms, $(kv "$comp1000" patterns) patterns)"
long_rss_kib=$(awk -v m="$(kv "$rss" long_rss_mib)" 'BEGIN { printf "%d", m * 1024 }')
short_rss_kib=$(awk -v m="$(kv "$rss" short_rss_mib)" 'BEGIN { printf "%d", m * 1024 }')
target "RSS < 64 MiB, flat with length" "$(verdict "${pipe_rss[1000]} < 65536 && ${pipe_rss[1000]} <= $rss_quarter + 1024 && $long_rss_kib < 65536 && $long_rss_kib <= $short_rss_kib + 1024")"
if [ -n "$hs" ]; then
        target "redact >= Hyperscan literal matching at 1000 secrets" "$(verdict "${pipe_redact[1000]} >= $(kv "$hs" mbps)") (${pipe_redact[1000]} vs $(kv "$hs" mbps) MB/s)"
else
        target "redact >= Hyperscan literal matching at 1000 secrets" "skipped (no hs_filter)"
fi
echo "done in $(( $(date +%s) - start )) s"
