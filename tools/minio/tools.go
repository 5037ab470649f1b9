//go:build tools

// Package tools pins the MinIO server so `go build` resolves it from go.sum.
package tools

import _ "github.com/minio/minio"
