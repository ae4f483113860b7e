# Appended to clap's fish completion by `clusterctl completions fish`
# (commands/completions.rs).
# Node names from the inventory for --nodes/--node.
complete -c clusterctl -l nodes -x -a '(clusterctl complete-nodes 2>/dev/null)'
complete -c clusterctl -n '__fish_seen_subcommand_from render' -l node -x -a '(clusterctl complete-nodes 2>/dev/null)'
