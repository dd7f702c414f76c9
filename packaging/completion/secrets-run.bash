# bash completion for secrets-run                                    -*- shell-script -*-
#
# Completes sub-commands, the options of each sub-command (the same sets as
# `secrets-run COMMAND --help`), the values of --format, --sandbox, --network, --on-leak and
# --tty, the words of `store` and `audit`, and secret names for --only, `rotate` and
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

# The keys of the top-level block mapping `secrets:`, one per line.
_secrets_run_secret_names() {
        local manifest
        manifest=$(_secrets_run_manifest_path)
        [[ -n $manifest && -r $manifest ]] || return
        awk '
                /^secrets:[ \t]*(#.*)?$/ { inside = 1; indent = -1; next }
                inside && /^[^ \t#]/     { inside = 0 }
                inside && /^[ ]+[A-Za-z_][A-Za-z0-9_]*[ \t]*:/ {
                        match($0, /^[ ]+/)
                        if (indent < 0) indent = RLENGTH
                        if (RLENGTH == indent) {
                                name = substr($0, RLENGTH + 1)
                                sub(/[ \t]*:.*/, "", name)
                                print name
                        }
                }
        ' "$manifest" 2>/dev/null
}

_secrets_run() {
        local cur prev words cword
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        cword=$COMP_CWORD
        COMPREPLY=()

        local commands="run check plan apply rotate redact scan store audit doctor version help"
        local with_arg="-f --manifest -e --env -s --stage --format --only --on-leak --sandbox
                        --network --guard --timeout --artifacts --audit-log --tty --secret-file --store --to
                        --public-key"
        local common="--format -q --quiet -v --verbose -h --help"
        local manifest_opts="-f --manifest -e --env -s --stage"

        # Values of the option before the cursor.
        case $prev in
        --format) mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur"); return ;;
        --sandbox) mapfile -t COMPREPLY < <(compgen -W "strict auto off" -- "$cur"); return ;;
        --network | --guard) mapfile -t COMPREPLY < <(compgen -W "on off" -- "$cur"); return ;;
        --on-leak) mapfile -t COMPREPLY < <(compgen -W "fail warn" -- "$cur"); return ;;
        --tty) mapfile -t COMPREPLY < <(compgen -W "auto always never" -- "$cur"); return ;;
        --only)
                # NAME[,NAME]: complete the part after the last comma
                local done_part="" last=$cur
                if [[ $cur == *,* ]]; then
                        done_part=${cur%,*},
                        last=${cur##*,}
                fi
                mapfile -t COMPREPLY < <(compgen -P "$done_part" -W "$(_secrets_run_secret_names)" -- "$last")
                compopt -o nospace 2>/dev/null
                return
                ;;
        -f | --manifest | --audit-log | --secret-file | --store | --public-key | --artifacts)
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                compopt -o filenames 2>/dev/null
                return
                ;;
        -e | --env | -s | --stage | --timeout | --to) return ;;
        esac

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
                        [[ " $with_arg " == *" $w "* ]] && ((i++))
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
                      --artifacts --audit-log --tty --allow-ptrace --dry-run"
                [[ -z $cmd ]] && opts="$opts --version"
                ;;
        check | rotate | scan) opts="$common $manifest_opts" ;;
        plan) opts="$common $manifest_opts --all" ;;
        apply) opts="$common $manifest_opts --all --dry-run" ;;
        redact) opts="$common $manifest_opts --on-leak" ;;
        store) opts="$common -f --manifest --store --to --replace" ;;
        audit) opts="$common --public-key" ;;
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
        rotate)
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
