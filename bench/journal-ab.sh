#!/usr/bin/env bash
# bench/journal-ab.sh: the write journal against the default, measured as in bench/RESULTS.md ("The write journal").
#
#   bench/journal-ab.sh [ROUNDS] [SECONDS]     (default 2 rounds of 15 s per case)
#
# bench/ab.sh does the work (a new 3-node cluster per configuration, alternating; see there).
exec "$(dirname "$0")/ab.sh" -r "${1:-2}" -s "${2:-15}" 'journal||--journal 32M' 'default||'
