//go:build !kv_schema1

package kv

// writeSchema is the snapshot version this image writes: the current one.
const (
	writeSchema     = CurrentSchema
	writeSchemaText = "2"
)
