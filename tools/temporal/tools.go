//go:build tools

// Package tools pins the Temporal CLI so `go build` resolves it from go.sum.
package tools

import _ "github.com/temporalio/cli/cmd/temporal"
