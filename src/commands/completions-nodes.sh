# shellcheck shell=bash
# Appended to clap's bash completion by `clusterctl completions bash`
# (commands/completions.rs).
# Node names from the inventory for --nodes/--node (host lists: after a comma too).
_clusterctl_with_nodes() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" inv="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -i|--inventory) inv="${COMP_WORDS[i+1]}" ;;
        esac
    done
    if [[ "$prev" == "--nodes" || "$prev" == "--node" ]]; then
        local head="" last="$cur"
        if [[ "$cur" == *,* ]]; then head="${cur%,*},"; last="${cur##*,}"; fi
        local names
        names="$(clusterctl complete-nodes ${inv:+-i "$inv"} 2>/dev/null)"
        # shellcheck disable=SC2207 # node names hold no space or glob character (values::Hostname); mapfile needs bash 4
        COMPREPLY=($(compgen -P "$head" -W "$names" -- "$last"))
        compopt -o nospace 2>/dev/null
        return 0
    fi
    _clusterctl "$@"
}
complete -F _clusterctl_with_nodes -o bashdefault -o default clusterctl
