# bash completion for secrets-run                                    -*- shell-script -*-
#
# Completes sub-commands, the options of each sub-command (the same sets as
# `secrets-run COMMAND --help`), the values of --format, --sandbox, --network, --on-leak,
# --tty and --event, the words of `store` and `audit`, and secret names for --only, `rotate` and
# `store get|rm|history|rollback|set`.
#
# Secret names are the keys of the manifest's top-level `secrets:` mapping, read from the file
# with awk: no secrets-run process, no backend, no network, nothing fetched. The manifest is
# the one secrets-run would use: -f/--manifest on the line, else $SECRETS_RUN_MANIFEST, else
# secrets.yaml in the working directory or its nearest parent. Only block-style mappings are
# read (`secrets:` on a line of its own, one key per line); a flow-style `secrets: {...}`
# gives no names.

_secrets_run_manifest_path() {
        local i dir
        for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
                case ${COMP_WORDS[i]} in
                -f | --manifest)
                        printf '%s\n' "${COMP_WORDS[i + 1]/#\~/$HOME}"
                        return
                        ;;
                --manifest=*)
                        printf '%s\n' "${COMP_WORDS[i]#--manifest=}"
                        return
                        ;;
                esac
        done
        if [[ -n ${SECRETS_RUN_MANIFEST-} ]]; then
                printf '%s\n' "$SECRETS_RUN_MANIFEST"
                return
        fi
        dir=$PWD
        while :; do
                if [[ -f $dir/secrets.yaml ]]; then
                        printf '%s\n' "$dir/secrets.yaml"
                        return
                fi
                [[ -z $dir || $dir == / ]] && return
                dir=${dir%/*}
                [[ -z $dir ]] && dir=/
        done
}

# What the manifest names, as "KIND NAME" lines (secret, environment, stage): the keys of the
# top-level `secrets:` and `environments:` mappings (block or flow style), `defaults`'
# environment and stage, and every secret's `environments:` and `stages:` lists. Read with awk
# (the same program as the zsh completion's): nothing is fetched, no secrets-run runs.
# shellcheck disable=SC2016  # an awk program: its $1 and $0 are awk's
_secrets_run_awk='
        function trim(s,   q) { q = sprintf("%c", 39); gsub("^[ \t\"" q "]+|[ \t\"" q "]+$", "", s); return s }
        function flow_list(s, kind,   t, n, parts, i, v) {
                if (!match(s, /\[[^]]*\]/)) return
                t = substr(s, RSTART + 1, RLENGTH - 2)
                n = split(t, parts, ",")
                for (i = 1; i <= n; i++) { v = trim(parts[i]); if (v != "") print kind, v }
        }
        function flow_map(s, kind, want,   depth, i, c, key, val, inval) {
                depth = 0; key = ""; val = ""; inval = 0
                for (i = 1; i <= length(s); i++) {
                        c = substr(s, i, 1)
                        if (c == "{" || c == "[") { depth++; if (depth == 1) { key = ""; inval = 0 } else if (inval) val = val c; continue }
                        if (c == "}" || c == "]") { depth--; if (depth == 0 || (depth == 1 && inval)) { if (inval && depth == 0) flow_pair(key, val, kind, want) } ; if (depth >= 1 && inval) val = val c; continue }
                        if (depth != 1) { if (inval) val = val c; continue }
                        if (c == ":" && !inval) { inval = 1; val = ""; if (want == "") { k = trim(key); if (k != "") print kind, k } continue }
                        if (c == ",") { if (inval) flow_pair(key, val, kind, want); key = ""; val = ""; inval = 0; continue }
                        if (inval) val = val c; else key = key c
                }
        }
        function flow_pair(key, val, kind, want) { if (want != "" && trim(key) == want && trim(val) != "") print kind, trim(val) }
        { sub(/[ \t]#.*$/, ""); sub(/^#.*$/, "") }
        /^[ \t]*$/ { next }
        /^[A-Za-z_]/ {
                top = $0; sub(/[ \t]*:.*$/, "", top)
                rest = $0; sub(/^[^:]*:/, "", rest)
                if (top == "environments" && rest ~ /\{/) flow_map(rest, "environment", "")
                if (top == "defaults" && rest ~ /\{/) { flow_map(rest, "environment", "environment"); flow_map(rest, "stage", "stage") }
                key_indent = -1; list_kind = ""; next
        }
        {
                match($0, /^[ ]*/); ind = RLENGTH
                line = substr($0, ind + 1)
                if (list_kind != "" && ind > list_indent && line ~ /^- /) { v = trim(substr(line, 3)); if (v != "") print list_kind, v; next }
                if (list_kind != "" && ind <= list_indent) list_kind = ""
                if (line !~ /^[A-Za-z_][A-Za-z0-9_-]*[ \t]*:/) next
                key = line; sub(/[ \t]*:.*$/, "", key)
                rest = line; sub(/^[^:]*:/, "", rest)
                if (key_indent < 0) key_indent = ind
                if (ind == key_indent) {
                        if (top == "secrets") print "secret", key
                        else if (top == "environments") print "environment", key
                        else if (top == "defaults" && key == "environment") print "environment", trim(rest)
                        else if (top == "defaults" && key == "stage") print "stage", trim(rest)
                }
                if (top == "secrets" && (key == "environments" || key == "stages")) {
                        kind = key == "stages" ? "stage" : "environment"
                        if (rest ~ /\[/) flow_list(rest, kind)
                        else if (trim(rest) == "") { list_kind = kind; list_indent = ind }
                }
                if (top == "secrets" && ind == key_indent && rest ~ /\{/) {
                        if (match(rest, /environments[ \t]*:[ \t]*\[[^]]*\]/)) flow_list(substr(rest, RSTART, RLENGTH), "environment")
                        if (match(rest, /stages[ \t]*:[ \t]*\[[^]]*\]/)) flow_list(substr(rest, RSTART, RLENGTH), "stage")
                }
        }
'

# The names of one KIND the manifest names, once each.
_secrets_run_names() {
        local manifest
        manifest=$(_secrets_run_manifest_path)
        [[ -n $manifest && -r $manifest ]] || return
        awk "$_secrets_run_awk" "$manifest" 2>/dev/null | awk -v kind="$1" '$1 == kind && !seen[$2]++ { print $2 }'
}

_secrets_run_secret_names() {
        _secrets_run_names secret
}

# The values of option $1 for the word $cur (prefixed with $value_prefix, "--opt=" when the
# value is in the same word); returns 1 when $1 takes no value we complete.
_secrets_run_values() {
        local words=""
        case $1 in
        --format) words="text json" ;;
        --sandbox) words="strict auto off" ;;
        --network | --guard) words="on off" ;;
        --on-leak) words="fail warn" ;;
        --tty) words="auto always never" ;;
        --event) words="push pull_request schedule tag manual" ;;
        -e | --env) words=$(_secrets_run_names environment) ;;
        -s | --stage) words=$(_secrets_run_names stage) ;;
        --only)
                # NAME[,NAME]: complete the part after the last comma
                local done_part="" last=$cur
                if [[ $cur == *,* ]]; then
                        done_part=${cur%,*},
                        last=${cur##*,}
                fi
                mapfile -t COMPREPLY < <(compgen -P "$value_prefix$done_part" -W "$(_secrets_run_secret_names)" -- "$last")
                compopt -o nospace 2>/dev/null
                return 0
                ;;
        -f | --manifest | --audit-log | --secret-file | --store | --public-key | --artifacts | --result-file | --dotenv | --key | -o | --output)
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                [[ -n $value_prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$value_prefix}")
                compopt -o filenames 2>/dev/null
                return 0
                ;;
        --timeout | --to | --identity | --branch) return 0 ;;
        *) return 1 ;;
        esac
        mapfile -t COMPREPLY < <(compgen -P "$value_prefix" -W "$words" -- "$cur")
        return 0
}

_secrets_run() {
        local cur prev cword value_prefix=""
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        cword=$COMP_CWORD
        COMPREPLY=()
        # --opt=value: readline splits it into "--opt" "=" "value" when '=' is in
        # COMP_WORDBREAKS (the default), else it is one word; either way complete the value
        if [[ $prev == = ]] && ((cword >= 2)) && [[ ${COMP_WORDS[cword - 2]} == --* ]]; then
                prev=${COMP_WORDS[cword - 2]}
        elif [[ $cur == = ]] && [[ $prev == --* ]]; then
                cur=""
        elif [[ $cur == --*=* ]]; then
                prev=${cur%%=*}
                value_prefix=$prev=
                cur=${cur#*=}
        fi

        local commands="run check plan apply rotate redact scan store audit doctor init approve explain report version help"
        local with_arg="-f --manifest -e --env -s --stage --format --only --on-leak --sandbox
                        --network --guard --timeout --artifacts --audit-log --tty --secret-file --store --to
                        --public-key --result-file --dotenv --key --identity -o --output --event --branch"
        local common="--format -q --quiet -v --verbose -h --help"
        local manifest_opts="-f --manifest -e --env -s --stage"

        # Values of the option before the cursor.
        _secrets_run_values "$prev" && return

        # The sub-command and the words after it.
        local i w cmd="" cmd_at=0 dashdash=0 run_cmd_at=0
        local -a args=()
        for ((i = 1; i < cword; i++)); do
                w=${COMP_WORDS[i]}
                if ((run_cmd_at)); then
                        break
                fi
                if [[ $w == -- ]]; then
                        dashdash=1
                        [[ -z $cmd ]] && cmd=run
                        continue
                fi
                if ((!dashdash)) && [[ $w == -* ]]; then
                        # its value: the next word, or the one after a split-off "="
                        if [[ " $with_arg " == *" $w "* ]]; then
                                [[ ${COMP_WORDS[i + 1]-} == = ]] && ((i++))
                                ((i++))
                        fi
                        continue
                fi
                if [[ -z $cmd ]]; then
                        if [[ " $commands " == *" $w "* ]]; then
                                cmd=$w
                                cmd_at=$i
                                continue
                        fi
                        cmd=run
                fi
                if [[ $cmd == run ]]; then
                        run_cmd_at=$i
                        continue
                fi
                args+=("$w")
        done

        # Past the command of `run`: its own arguments.
        if ((run_cmd_at)); then
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                compopt -o filenames 2>/dev/null
                return
        fi
        # After `--`, or after run's options, the command to run.
        if ((dashdash)) || { [[ $cmd == run ]] && [[ $cur != -* ]] && ((cmd_at)); }; then
                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
                return
        fi

        local opts
        case $cmd in
        "" | run)
                opts="$common $manifest_opts --only --on-leak --sandbox --network --guard --timeout
                      --artifacts --audit-log --tty --allow-ptrace --dry-run --result-file"
                [[ -z $cmd ]] && opts="$opts --version"
                ;;
        check | rotate | scan) opts="$common $manifest_opts" ;;
        init) opts="$common -f --manifest" ;;
        plan) opts="$common $manifest_opts --all" ;;
        apply) opts="$common $manifest_opts --all --dry-run" ;;
        redact) opts="$common $manifest_opts --on-leak" ;;
        store) opts="$common -f --manifest --store --to --replace --dotenv" ;;
        audit) opts="$common --public-key" ;;
        approve) opts="$common -f --manifest -e --env --key --identity --print-payload -o --output" ;;
        explain) opts="$common $manifest_opts --event --branch --matrix" ;;
        report) opts="$common -f --manifest --audit-log --public-key -o --output" ;;
        *) opts="$common" ;;
        esac
        [[ $cmd == redact || $cmd == scan ]] && opts="$opts --secret-file"

        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
                return
        fi

        case $cmd in
        "")
                mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
                # a word that is no sub-command is the command of `run`
                [[ -n $cur ]] && mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -c -- "$cur")
                ;;
        rotate | approve)
                ((${#args[@]} == 0)) &&
                        mapfile -t COMPREPLY < <(compgen -W "$(_secrets_run_secret_names)" -- "$cur")
                ;;
        store)
                if ((${#args[@]} == 0)); then
                        mapfile -t COMPREPLY < <(compgen -W "init set get list rm history rollback export import" -- "$cur")
                elif ((${#args[@]} == 1)); then
                        case ${args[0]} in
                        set | get | rm | history | rollback)
                                mapfile -t COMPREPLY < <(compgen -W "$(_secrets_run_secret_names)" -- "$cur")
                                ;;
                        export | import)
                                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                                compopt -o filenames 2>/dev/null
                                ;;
                        esac
                fi
                ;;
        audit)
                if ((${#args[@]} == 0)); then
                        mapfile -t COMPREPLY < <(compgen -W "verify keygen" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                        compopt -o filenames 2>/dev/null
                fi
                ;;
        help)
                ((${#args[@]} == 0)) && mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
                ;;
        scan)
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                compopt -o filenames 2>/dev/null
                ;;
        esac
        return 0
}
complete -F _secrets_run secrets-run
