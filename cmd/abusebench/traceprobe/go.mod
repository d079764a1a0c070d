// A module of its own: golang.org/x/exp/trace reads Go 1.26 traces only in a
// newer golang.org/x/exp than the one FerretDB pins in the main module.
module github.com/hindsight-dev/hindsight/cmd/abusebench/traceprobe

go 1.26.0

require golang.org/x/exp v0.0.0-20261113113407-e3970619a1a4
